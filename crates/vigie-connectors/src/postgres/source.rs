//! The feature store's PostgreSQL source: the rows of a table or query whose timestamp is later
//! than a watermark, as Arrow record batches.
//!
//! The watermark is pushed into SQL (`WHERE ts > $1 ORDER BY ts`), so an incremental ingest
//! reads only new rows and an index on the timestamp column serves it. The session runs in UTC
//! and read-only, so a `timestamp` without time zone is read as UTC and a source's query cannot
//! change the database. Column types are read from the prepared statement: integers → Int64,
//! `real`/`double precision`/`numeric` → Float64 (numeric through a `float8` cast in SQL), bool,
//! text types → Utf8, `timestamp`/`timestamptz`/`date` → Timestamp(µs, UTC); every other type
//! (uuid, json, interval…) is read as its text. NULLs stay nulls.
//! What it does not do: read rows whose timestamp is NULL (they have no place in event time),
//! page through a result bigger than memory, or use TLS.

use std::sync::Arc;

use arrow::array::{
    ArrayBuilder, ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, RecordBatch,
    StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use bytes::BytesMut;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

use super::{PgClient, PgOptions, with_causes};
use crate::{ConnectorError, SourceRows};

/// What a PostgreSQL source reads: a table (`events` or `schema.events`) or a query.
#[derive(Debug, Clone, Copy)]
pub enum PgRelation<'a> {
    /// A table or view, optionally qualified by its schema.
    Table(&'a str),
    /// A `SELECT` whose result is read as a table.
    Query(&'a str),
}

/// Rows per record batch.
const BATCH_ROWS: usize = 8192;

/// Microseconds between 1970-01-01 and 2000-01-01, PostgreSQL's epoch.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// A `timestamp`, `timestamptz` or `date` as microseconds since 1970-01-01 UTC, read and sent
/// in PostgreSQL's binary format without a calendar library.
#[derive(Debug, Clone, Copy)]
struct Micros(i64);

impl<'a> FromSql<'a> for Micros {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        if *ty == Type::DATE {
            let days = i32::from_sql(&Type::INT4, raw)?;
            return Ok(Micros(i64::from(days) * 86_400_000_000 + PG_EPOCH_MICROS));
        }
        let since_2000 = i64::from_sql(&Type::INT8, raw)?;
        // ±infinity are i64::MAX and MIN: saturate rather than wrap.
        Ok(Micros(since_2000.saturating_add(PG_EPOCH_MICROS)))
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::TIMESTAMP | Type::TIMESTAMPTZ | Type::DATE)
    }
}

impl ToSql for Micros {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        self.0.saturating_sub(PG_EPOCH_MICROS).to_sql(&Type::INT8, out)
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::TIMESTAMP | Type::TIMESTAMPTZ)
    }

    to_sql_checked!();
}

/// `"name"`: an identifier, quoted so that case and spaces survive.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// How a column is read into Arrow.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Bool,
    Text,
    Time,
}

impl Kind {
    /// The kind of a server type, and the cast (if any) the select list applies first.
    fn of(ty: &Type) -> (Kind, Option<&'static str>) {
        match *ty {
            Type::INT2 => (Kind::Int16, None),
            Type::INT4 => (Kind::Int32, None),
            Type::INT8 => (Kind::Int64, None),
            Type::FLOAT4 => (Kind::Float32, None),
            Type::FLOAT8 => (Kind::Float64, None),
            Type::NUMERIC => (Kind::Float64, Some("float8")),
            Type::BOOL => (Kind::Bool, None),
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => (Kind::Text, None),
            Type::TIMESTAMP | Type::TIMESTAMPTZ | Type::DATE => (Kind::Time, None),
            _ => (Kind::Text, Some("text")),
        }
    }

    fn data_type(self) -> DataType {
        match self {
            Kind::Int16 | Kind::Int32 | Kind::Int64 => DataType::Int64,
            Kind::Float32 | Kind::Float64 => DataType::Float64,
            Kind::Bool => DataType::Boolean,
            Kind::Text => DataType::Utf8,
            Kind::Time => DataType::Timestamp(TimeUnit::Microsecond, None),
        }
    }

    fn builder(self) -> Box<dyn ArrayBuilder> {
        match self {
            Kind::Int16 | Kind::Int32 | Kind::Int64 => {
                Box::new(Int64Builder::with_capacity(BATCH_ROWS))
            }
            Kind::Float32 | Kind::Float64 => Box::new(Float64Builder::with_capacity(BATCH_ROWS)),
            Kind::Bool => Box::new(BooleanBuilder::with_capacity(BATCH_ROWS)),
            Kind::Text => Box::new(StringBuilder::with_capacity(BATCH_ROWS, BATCH_ROWS * 16)),
            Kind::Time => Box::new(TimestampMicrosecondBuilder::with_capacity(BATCH_ROWS)),
        }
    }
}

/// Appends cell `index` of `row` to `builder`, which [`Kind::builder`] made for `kind`.
fn append(
    kind: Kind,
    builder: &mut dyn ArrayBuilder,
    row: &postgres::Row,
    index: usize,
) -> Result<(), postgres::Error> {
    fn typed<B: 'static>(builder: &mut dyn ArrayBuilder) -> &mut B {
        // Kind::builder made this builder for this kind; the two matches below agree.
        builder.as_any_mut().downcast_mut::<B>().expect("a builder of the column's kind")
    }
    match kind {
        Kind::Int16 => typed::<Int64Builder>(builder)
            .append_option(row.try_get::<_, Option<i16>>(index)?.map(i64::from)),
        Kind::Int32 => typed::<Int64Builder>(builder)
            .append_option(row.try_get::<_, Option<i32>>(index)?.map(i64::from)),
        Kind::Int64 => typed::<Int64Builder>(builder).append_option(row.try_get(index)?),
        Kind::Float32 => typed::<Float64Builder>(builder)
            .append_option(row.try_get::<_, Option<f32>>(index)?.map(f64::from)),
        Kind::Float64 => typed::<Float64Builder>(builder).append_option(row.try_get(index)?),
        Kind::Bool => typed::<BooleanBuilder>(builder).append_option(row.try_get(index)?),
        Kind::Text => {
            typed::<StringBuilder>(builder).append_option(row.try_get::<_, Option<&str>>(index)?)
        }
        Kind::Time => typed::<TimestampMicrosecondBuilder>(builder)
            .append_option(row.try_get::<_, Option<Micros>>(index)?.map(|m| m.0)),
    }
    Ok(())
}

fn finish(
    schema: &SchemaRef,
    builders: &mut [Box<dyn ArrayBuilder>],
) -> Result<RecordBatch, String> {
    let columns: Vec<ArrayRef> = builders.iter_mut().map(|b| b.finish()).collect();
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| e.to_string())
}

/// Reads the rows of `relation` on the server of `url` whose `timestamp` column is later than
/// `watermark` (microseconds since 1970-01-01 UTC; none reads every row), in timestamp order.
/// Rows whose timestamp is NULL are not read; they are counted in [`SourceRows::untimed`].
pub fn read_since(
    url: &str,
    relation: PgRelation<'_>,
    timestamp: &str,
    watermark: Option<i64>,
) -> Result<SourceRows, ConnectorError> {
    let mut client = PgClient::connect(url, PgOptions::default())?;
    client.batch_execute("SET TIME ZONE 'UTC'; SET default_transaction_read_only = on")?;
    let location = client.location().to_owned();
    let refused = |message: String| ConnectorError::SourceInput {
        system: "postgresql",
        location: location.clone(),
        message,
    };
    let server_error = |what: &str, source: &postgres::Error| -> ConnectorError {
        match source.as_db_error() {
            // Connection exceptions, lack of resources, operator intervention (a shutdown, a
            // terminated session), system errors: the server's state, not the definition's.
            Some(db)
                if !source.is_closed()
                    && !["08", "53", "57", "58"]
                        .contains(&db.code().code().get(..2).unwrap_or_default()) =>
            {
                // The server refused the SQL built from the source's definition: the user's to fix.
                refused(format!(
                    "{what}: {}: {} (SQLSTATE {})",
                    db.severity(),
                    db.message(),
                    db.code().code()
                ))
            }
            _ => ConnectorError::Postgres {
                location: location.clone(),
                message: format!(
                    "{what}: {}; check that the server is running and reachable from here",
                    with_causes(source)
                ),
            },
        }
    };
    let (from, what) = match relation {
        PgRelation::Table(table) => {
            (table.split('.').map(quote).collect::<Vec<_>>().join("."), format!("table {table:?}"))
        }
        PgRelation::Query(query) => {
            (format!("({})", query.trim().trim_end_matches(';')), "the source's query".to_owned())
        }
    };
    let probe = client
        .client
        .prepare(&format!("SELECT * FROM {from} AS vigie_source"))
        .map_err(|e| server_error(&format!("cannot read {what}"), &e))?;
    let names: Vec<&str> = probe.columns().iter().map(|c| c.name()).collect();
    if let Some(duplicate) = names.iter().enumerate().find(|(i, n)| names[..*i].contains(*n)) {
        return Err(refused(format!(
            "{what} returns two columns named {:?}; rename one with AS",
            duplicate.1
        )));
    }
    let Some(time_column) = probe.columns().iter().find(|c| c.name() == timestamp) else {
        return Err(refused(format!(
            "{what} has no timestamp column {timestamp:?}; its columns are: {}",
            names.join(", ")
        )));
    };
    if !matches!(*time_column.type_(), Type::TIMESTAMP | Type::TIMESTAMPTZ | Type::DATE) {
        return Err(refused(format!(
            "column {timestamp:?} of {what} has type {}; the timestamp column must be timestamp, \
             timestamptz or date (in a `query`, convert it, e.g. `{timestamp}::timestamptz AS {timestamp}`)",
            time_column.type_()
        )));
    }
    let select: Vec<String> = probe
        .columns()
        .iter()
        .map(|c| match Kind::of(c.type_()) {
            (_, Some(cast)) => format!("{}::{cast} AS {}", quote(c.name()), quote(c.name())),
            (_, None) => quote(c.name()),
        })
        .collect();
    let ts = quote(timestamp);
    let condition = match watermark {
        Some(_) => format!("{ts} > $1::timestamptz"),
        None => format!("{ts} IS NOT NULL"),
    };
    let sql = format!(
        "SELECT {} FROM {from} AS vigie_source WHERE {condition} ORDER BY {ts}",
        select.join(", ")
    );
    let statement = client
        .client
        .prepare(&sql)
        .map_err(|e| server_error(&format!("cannot read {what}"), &e))?;
    let kinds: Vec<Kind> = statement.columns().iter().map(|c| Kind::of(c.type_()).0).collect();
    let schema: SchemaRef = Arc::new(Schema::new(
        statement
            .columns()
            .iter()
            .zip(&kinds)
            .map(|(c, kind)| Field::new(c.name(), kind.data_type(), true))
            .collect::<Vec<_>>(),
    ));
    let params: Vec<Micros> = watermark.map(Micros).into_iter().collect();
    let reading = format!("reading {what}");
    let lost = |e: &postgres::Error| server_error(&reading, e);
    let mut rows = client.client.query_raw(&statement, params.iter()).map_err(|e| lost(&e))?;
    let mut builders: Vec<Box<dyn ArrayBuilder>> = kinds.iter().map(|k| k.builder()).collect();
    let mut batches = Vec::new();
    let mut pending = 0;
    while let Some(row) = rows.next().map_err(|e| lost(&e))? {
        for (index, (kind, builder)) in kinds.iter().zip(builders.iter_mut()).enumerate() {
            append(*kind, builder.as_mut(), &row, index).map_err(|e| {
                refused(format!("column {:?}: {}", statement.columns()[index].name(), e))
            })?;
        }
        pending += 1;
        if pending == BATCH_ROWS {
            batches.push(finish(&schema, &mut builders).map_err(&refused)?);
            pending = 0;
        }
    }
    if pending > 0 || batches.is_empty() {
        batches.push(finish(&schema, &mut builders).map_err(&refused)?);
    }
    drop(rows);
    let untimed: i64 = client
        .client
        .query_one(&format!("SELECT count(*) FROM {from} AS vigie_source WHERE {ts} IS NULL"), &[])
        .and_then(|row| row.try_get(0))
        .map_err(|e| lost(&e))?;
    Ok(SourceRows { batches, untimed: u64::try_from(untimed).unwrap_or(0) })
}
