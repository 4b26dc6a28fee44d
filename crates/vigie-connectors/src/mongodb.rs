//! MongoDB: the feature store's source, [`MongoSink`], where the server
//! copies its predictions, and [`MongoLatest`] (module `latest`), the online store's
//! collection of each entity's latest features.
//!
//! The source: the documents of a collection whose timestamp is later than a
//! watermark, flattened into columns of Arrow record batches.
//!
//! The watermark is merged into the query (`{$and: [FILTER, {TS: {$gt: WATERMARK}}]}`, sorted
//! by the timestamp), so an incremental ingest reads only new documents. Columns are the
//! declared `fields` (column → dotted path such as `device.country`), else the top-level scalar
//! fields in order of first appearance. Types are chosen per column over the documents read:
//! only integers → Int64; numbers (double, int32, int64, decimal128) → Float64; bool; date →
//! Timestamp(µs, UTC); object id → its hex text; anything else (strings, mixed types, arrays,
//! sub-documents) → Utf8 (relaxed extended JSON for arrays and sub-documents). A missing field
//! or null is a null.
//!
//! The official driver's blocking API (`mongodb::sync`, which runs the driver's own runtime).
//! What it does not do: read documents whose timestamp is missing or not a BSON date (they have
//! no place in event time; store event times as dates), walk into arrays along a path, hold less
//! than the whole result in memory, or resolve `mongodb+srv://` URLs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use mongodb::bson::{Bson, DateTime, Document, doc};
use mongodb::options::ClientOptions;
use mongodb::sync::Client;

use crate::postgres::redact_url;
use crate::{ConnectorError, SourceRows};

mod latest;
pub use latest::{LatestDocument, LatestRead, MongoLatest};

/// What a MongoDB source reads.
#[derive(Debug, Clone, Copy)]
pub struct MongoSource<'a> {
    /// `mongodb://USER:PASSWORD@HOST:PORT/?…`.
    pub url: &'a str,
    /// The database.
    pub database: &'a str,
    /// The collection.
    pub collection: &'a str,
    /// A filter document as JSON (extended JSON: `{"$date": …}` is a date), ANDed with the
    /// watermark.
    pub filter: Option<&'a str>,
    /// Column name → dotted path; empty: the top-level scalar fields.
    pub fields: &'a BTreeMap<String, String>,
    /// The event-time column: a key of `fields`, else a path that is also the column's name.
    pub timestamp: &'a str,
}

/// How long to wait for a server that does not answer, unless the URL says
/// (`serverSelectionTimeoutMS`, `connectTimeoutMS`).
const TIMEOUT: Duration = Duration::from_secs(10);

/// A client of the server at `url`, waiting at most `timeout` for it unless
/// the URL says otherwise.
fn client(url: &str, timeout: Duration) -> Result<Client, ConnectorError> {
    let mut options = ClientOptions::parse(url).run().map_err(|e| ConnectorError::SourceInput {
        system: "mongodb",
        location: redact_url(url),
        message: format!(
            "not a MongoDB URL ({}); expected mongodb://USER:PASSWORD@HOST:PORT/?OPTIONS",
            e.kind
        ),
    })?;
    options.server_selection_timeout.get_or_insert(timeout);
    options.connect_timeout.get_or_insert(timeout);
    options.app_name.get_or_insert_with(|| "vigie".to_owned());
    Client::with_options(options).map_err(|e| ConnectorError::Mongo {
        location: redact_url(url),
        message: format!("cannot start the client ({})", e.kind),
    })
}

/// A collection that receives documents exactly once: each document has an
/// `_id` chosen by the writer, and a document whose `_id` is already there
/// counts as written, so a batch resent after a failure adds nothing twice.
pub struct MongoSink {
    collection: mongodb::sync::Collection<Document>,
    location: String,
    what: String,
}

/// The server's code for a duplicate key.
const DUPLICATE_KEY: i32 = 11000;

impl MongoSink {
    /// A sink into `database.collection` at `url`. Connecting is lazy: an
    /// absent server is an error of the first write, after `timeout`.
    pub fn new(
        url: &str,
        database: &str,
        collection: &str,
        timeout: Duration,
    ) -> Result<MongoSink, ConnectorError> {
        let client = client(url, timeout)?;
        Ok(MongoSink {
            collection: client.database(database).collection(collection),
            what: format!("{database}.{collection}"),
            location: redact_url(url),
        })
    }

    fn failed(&self, doing: &str, error: &mongodb::error::Error) -> ConnectorError {
        ConnectorError::Mongo {
            location: self.location.clone(),
            message: format!("{doing} {}: {}", self.what, error.kind),
        }
    }

    /// Creates ascending indexes on each of `fields` (a no-op when they exist).
    pub fn ensure_indexes(&self, fields: &[&str]) -> Result<(), ConnectorError> {
        let indexes: Vec<mongodb::IndexModel> = fields
            .iter()
            .map(|field| mongodb::IndexModel::builder().keys(doc! { *field: 1 }).build())
            .collect();
        self.collection
            .create_indexes(indexes)
            .run()
            .map(drop)
            .map_err(|e| self.failed("creating the indexes of", &e))
    }

    /// Writes `documents` (JSON objects, each with its `_id`; extended JSON
    /// such as `{"$date": "…"}` becomes BSON), skipping any already written.
    pub fn insert_once(&self, documents: &[serde_json::Value]) -> Result<(), ConnectorError> {
        if documents.is_empty() {
            return Ok(());
        }
        let documents = documents
            .iter()
            .map(|json| match Bson::try_from(json.clone()) {
                Ok(Bson::Document(document)) => Ok(document),
                Ok(_) => Err(format!("not a JSON object: {json}")),
                Err(e) => Err(format!("{e}: {json}")),
            })
            .collect::<Result<Vec<Document>, String>>()
            .map_err(|message| ConnectorError::SourceInput {
                system: "mongodb",
                location: self.location.clone(),
                message,
            })?;
        match self.collection.insert_many(documents).ordered(false).run() {
            Ok(_) => Ok(()),
            Err(error) => match error.kind.as_ref() {
                mongodb::error::ErrorKind::InsertMany(failure)
                    if failure.write_concern_error.is_none()
                        && failure
                            .write_errors
                            .iter()
                            .flatten()
                            .all(|e| e.code == DUPLICATE_KEY) =>
                {
                    Ok(())
                }
                _ => Err(self.failed("writing to", &error)),
            },
        }
    }

    /// How many documents the collection holds.
    pub fn count(&self) -> Result<u64, ConnectorError> {
        self.collection
            .count_documents(doc! {})
            .run()
            .map_err(|e| self.failed("counting the documents of", &e))
    }
}

/// The value at a dotted path of `document`, if every step is a sub-document.
fn lookup<'d>(document: &'d Document, path: &str) -> Option<&'d Bson> {
    let mut steps = path.split('.');
    let mut value = document.get(steps.next()?)?;
    for step in steps {
        value = match value {
            Bson::Document(inner) => inner.get(step)?,
            _ => return None,
        };
    }
    Some(value)
}

/// Whether a top-level value becomes a column when no `fields` are declared.
fn scalar(value: &Bson) -> bool {
    !matches!(value, Bson::Document(_) | Bson::Array(_))
}

/// The Arrow type of a column from the values read (nulls and missing values ignored).
fn column_type(values: &[Option<Bson>]) -> DataType {
    let (mut ints, mut numbers, mut bools, mut dates, mut others) = (0, 0, 0, 0, 0);
    for value in values.iter().flatten() {
        match value {
            Bson::Null | Bson::Undefined => {}
            Bson::Int32(_) | Bson::Int64(_) => ints += 1,
            Bson::Double(_) | Bson::Decimal128(_) => numbers += 1,
            Bson::Boolean(_) => bools += 1,
            Bson::DateTime(_) => dates += 1,
            _ => others += 1,
        }
    }
    let kinds = [ints + numbers > 0, bools > 0, dates > 0, others > 0];
    match kinds {
        _ if kinds.iter().filter(|k| **k).count() != 1 => DataType::Utf8,
        [true, ..] if numbers == 0 => DataType::Int64,
        [true, ..] => DataType::Float64,
        [_, true, ..] => DataType::Boolean,
        [_, _, true, _] => DataType::Timestamp(TimeUnit::Microsecond, None),
        _ => DataType::Utf8,
    }
}

fn number(value: &Bson) -> Option<f64> {
    match value {
        Bson::Int32(v) => Some(f64::from(*v)),
        Bson::Int64(v) => Some(*v as f64),
        Bson::Double(v) => Some(*v),
        Bson::Decimal128(v) => v.to_string().parse().ok(),
        _ => None,
    }
}

fn text(value: &Bson) -> Option<String> {
    match value {
        Bson::Null | Bson::Undefined => None,
        Bson::String(s) => Some(s.clone()),
        Bson::ObjectId(id) => Some(id.to_hex()),
        Bson::DateTime(d) => d.try_to_rfc3339_string().ok(),
        other => Some(other.clone().into_relaxed_extjson().to_string()),
    }
}

fn build(values: &[Option<Bson>], data_type: &DataType) -> ArrayRef {
    let cells = values.iter().map(|v| v.as_ref().filter(|b| !matches!(b, Bson::Null)));
    match data_type {
        DataType::Int64 => {
            let mut b = Int64Builder::with_capacity(values.len());
            for cell in cells {
                b.append_option(cell.and_then(|v| match v {
                    Bson::Int32(v) => Some(i64::from(*v)),
                    Bson::Int64(v) => Some(*v),
                    _ => None,
                }));
            }
            Arc::new(b.finish())
        }
        DataType::Float64 => {
            let mut b = Float64Builder::with_capacity(values.len());
            for cell in cells {
                b.append_option(cell.and_then(number));
            }
            Arc::new(b.finish())
        }
        DataType::Boolean => {
            let mut b = BooleanBuilder::with_capacity(values.len());
            for cell in cells {
                b.append_option(cell.and_then(|v| v.as_bool()));
            }
            Arc::new(b.finish())
        }
        DataType::Timestamp(..) => {
            let mut b = TimestampMicrosecondBuilder::with_capacity(values.len());
            for cell in cells {
                b.append_option(cell.and_then(|v| match v {
                    Bson::DateTime(d) => d.timestamp_millis().checked_mul(1000),
                    _ => None,
                }));
            }
            Arc::new(b.finish())
        }
        _ => {
            let mut b = StringBuilder::with_capacity(values.len(), values.len() * 16);
            for cell in cells {
                b.append_option(cell.and_then(text));
            }
            Arc::new(b.finish())
        }
    }
}

/// Reads the documents of `source` whose timestamp is later than `watermark` (microseconds
/// since 1970-01-01 UTC; none reads every document), in timestamp order, as one record batch.
/// Documents whose timestamp is missing or not a date are not read; they are counted in
/// [`SourceRows::untimed`].
pub fn read_since(
    source: &MongoSource<'_>,
    watermark: Option<i64>,
) -> Result<SourceRows, ConnectorError> {
    let location = redact_url(source.url);
    let refused = |message: String| ConnectorError::SourceInput {
        system: "mongodb",
        location: location.clone(),
        message,
    };
    let unavailable =
        |message: String| ConnectorError::Mongo { location: location.clone(), message };
    let client = client(source.url, TIMEOUT)?;

    let time_path = source.fields.get(source.timestamp).map_or(source.timestamp, String::as_str);
    let mut conditions: Vec<Document> = Vec::new();
    if let Some(filter) = source.filter {
        let json: serde_json::Value = serde_json::from_str(filter)
            .map_err(|e| refused(format!("filter: not JSON ({e}): {filter}")))?;
        match Bson::try_from(json) {
            Ok(Bson::Document(document)) => conditions.push(document),
            Ok(_) => return Err(refused(format!("filter: not a JSON object: {filter}"))),
            Err(e) => return Err(refused(format!("filter: {e}: {filter}"))),
        }
    }
    let mut untimed_query = conditions.clone();
    untimed_query.push(doc! { time_path: { "$not": { "$type": "date" } } });
    if let Some(mark) = watermark {
        // BSON dates count milliseconds: a watermark inside a millisecond compares to its start.
        let millis = mark.div_euclid(1000);
        conditions.push(doc! { time_path: { "$gt": DateTime::from_millis(millis) } });
    }
    let query = match conditions.len() {
        0 => Document::new(),
        1 => conditions.remove(0),
        _ => doc! { "$and": conditions },
    };
    let collection = client.database(source.database).collection::<Document>(source.collection);
    let what = format!("{}.{}", source.database, source.collection);
    let failed = |e: mongodb::error::Error| match *e.kind {
        mongodb::error::ErrorKind::Command(ref command) => {
            refused(format!("reading {what}: the server refused the query: {}", command.message))
        }
        ref kind => unavailable(format!(
            "reading {what}: {kind}; check that the server is running and reachable from here"
        )),
    };
    let cursor = collection.find(query).sort(doc! { time_path: 1 }).run().map_err(&failed)?;

    let mut columns: Vec<(String, Vec<Option<Bson>>)> =
        source.fields.keys().map(|name| (name.clone(), Vec::new())).collect();
    if !source.fields.is_empty() && !source.fields.contains_key(source.timestamp) {
        columns.push((source.timestamp.to_owned(), Vec::new()));
    }
    let mut rows = 0;
    for document in cursor {
        let document = document.map_err(&failed)?;
        if !matches!(lookup(&document, time_path), Some(Bson::DateTime(_))) {
            continue;
        }
        if source.fields.is_empty() {
            for (name, value) in &document {
                if scalar(value) && !columns.iter().any(|(column, _)| column == name) {
                    columns.push((name.clone(), vec![None; rows]));
                }
            }
            for (name, values) in &mut columns {
                values.push(document.get(name.as_str()).filter(|v| scalar(v)).cloned());
            }
        } else {
            for (name, values) in &mut columns {
                let path = source.fields.get(name).map_or(name.as_str(), String::as_str);
                values.push(lookup(&document, path).cloned());
            }
        }
        rows += 1;
    }
    let mut fields = Vec::with_capacity(columns.len());
    let mut arrays = Vec::with_capacity(columns.len());
    for (name, values) in &columns {
        let data_type = if name == source.timestamp {
            DataType::Timestamp(TimeUnit::Microsecond, None)
        } else {
            column_type(values)
        };
        arrays.push(build(values, &data_type));
        fields.push(Field::new(name, data_type, true));
    }
    let batch = if fields.is_empty() {
        RecordBatch::new_empty(Arc::new(Schema::empty()))
    } else {
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
            .map_err(|e| refused(format!("reading {what}: {e}")))?
    };
    let untimed =
        collection.count_documents(doc! { "$and": untimed_query }).run().map_err(&failed)?;
    Ok(SourceRows { batches: vec![batch], untimed })
}

#[cfg(test)]
mod tests;
