//! A blocking PostgreSQL client for metadata that several Vigie processes share (the
//! registry today) and rows of a feature-store source ([`read_since`], as Arrow record batches):
//! connect from a URL, run statements with [`SqlValue`] parameters, read
//! owned [`SqlRow`]s, group statements in a transaction.
//!
//! A thin layer over the `postgres` crate (which drives `tokio-postgres` on its own runtime)
//! so no other crate links a PostgreSQL client. Errors name the server by its URL without the
//! password. What it does not do: TLS (the connection is plain; use it on a trusted network or
//! through a local proxy), pooling, or retrying a statement.

use std::time::Duration;

use bytes::BytesMut;
use postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use postgres::{Client, Config, NoTls, Transaction};

use crate::ConnectorError;
use crate::sql::{SqlRow, SqlValue};

mod source;
pub use source::{PgRelation, read_since};

/// How long to wait for a server and for locks.
#[derive(Debug, Clone, Copy)]
pub struct PgOptions {
    /// Giving up on a server that does not answer (unless the URL sets `connect_timeout`).
    pub connect_timeout: Duration,
    /// Giving up on a lock another session holds (PostgreSQL's `lock_timeout`).
    pub lock_timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            connect_timeout: Duration::from_secs(10),
            lock_timeout: Duration::from_secs(30),
        }
    }
}

/// A connection to a PostgreSQL server.
pub struct PgClient {
    client: Client,
    location: String,
    options: PgOptions,
}

/// An open transaction: committed by [`PgTransaction::commit`], rolled back when dropped.
pub struct PgTransaction<'a> {
    tx: Transaction<'a>,
    location: &'a str,
    options: PgOptions,
}

/// `url` with any password removed (from the user part and from a `password=` parameter), for
/// messages and logs.
pub fn redact_url(url: &str) -> String {
    let (before_query, query) = match url.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (url, None),
    };
    let mut redacted = match before_query.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((user_info, host)) => {
                let user = user_info.split(':').next().unwrap_or_default();
                format!("{scheme}://{user}@{host}")
            }
            None => before_query.to_owned(),
        },
        None => before_query.to_owned(),
    };
    if let Some(query) = query {
        let kept: Vec<&str> = query
            .split('&')
            .filter(|pair| !pair.to_ascii_lowercase().starts_with("password="))
            .collect();
        if !kept.is_empty() {
            redacted.push('?');
            redacted.push_str(&kept.join("&"));
        }
    }
    redacted
}

impl PgClient {
    /// Connects to the server of `url` (`postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?…]`)
    /// and sets the session's lock timeout.
    pub fn connect(url: &str, options: PgOptions) -> Result<Self, ConnectorError> {
        let location = redact_url(url);
        let mut config: Config = url.parse().map_err(|source: postgres::Error| {
            ConnectorError::PostgresUrl {
                location: location.clone(),
                message: format!("not a PostgreSQL URL ({source}); expected postgres://USER:PASSWORD@HOST:PORT/DATABASE"),
            }
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.connect_timeout);
        }
        if config.get_application_name().is_none() {
            config.application_name("vigie");
        }
        let mut client = config.connect(NoTls).map_err(|source| ConnectorError::Postgres {
            location: location.clone(),
            message: format!(
                "cannot connect ({}); check that the server is running and accepts this user from here",
                with_causes(&source)
            ),
        })?;
        let lock_ms = options.lock_timeout.as_millis();
        client
            .batch_execute(&format!("SET lock_timeout = {lock_ms}"))
            .map_err(|source| error(&location, options, &source))?;
        Ok(PgClient { client, location, options })
    }

    /// The server's URL without the password.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Runs a query; `$1`, `$2`… in `sql` take `params`.
    pub fn query(&mut self, sql: &str, params: &[SqlValue]) -> Result<Vec<SqlRow>, ConnectorError> {
        let rows = self
            .client
            .query(sql, &references(params))
            .map_err(|source| error(&self.location, self.options, &source))?;
        rows.iter().map(owned_row).collect()
    }

    /// Runs a statement; returns the number of rows it changed.
    pub fn execute(&mut self, sql: &str, params: &[SqlValue]) -> Result<u64, ConnectorError> {
        self.client
            .execute(sql, &references(params))
            .map_err(|source| error(&self.location, self.options, &source))
    }

    /// Runs several `;`-separated statements without parameters (a schema).
    pub fn batch_execute(&mut self, sql: &str) -> Result<(), ConnectorError> {
        self.client
            .batch_execute(sql)
            .map_err(|source| error(&self.location, self.options, &source))
    }

    /// Starts a transaction (READ COMMITTED).
    pub fn transaction(&mut self) -> Result<PgTransaction<'_>, ConnectorError> {
        let options = self.options;
        let tx =
            self.client.transaction().map_err(|source| error(&self.location, options, &source))?;
        Ok(PgTransaction { tx, location: &self.location, options })
    }
}

impl PgTransaction<'_> {
    /// Runs a query inside the transaction.
    pub fn query(&mut self, sql: &str, params: &[SqlValue]) -> Result<Vec<SqlRow>, ConnectorError> {
        let rows = self
            .tx
            .query(sql, &references(params))
            .map_err(|source| error(self.location, self.options, &source))?;
        rows.iter().map(owned_row).collect()
    }

    /// Runs a statement inside the transaction; returns the number of rows it changed.
    pub fn execute(&mut self, sql: &str, params: &[SqlValue]) -> Result<u64, ConnectorError> {
        self.tx
            .execute(sql, &references(params))
            .map_err(|source| error(self.location, self.options, &source))
    }

    /// Runs several statements without parameters inside the transaction.
    pub fn batch_execute(&mut self, sql: &str) -> Result<(), ConnectorError> {
        self.tx.batch_execute(sql).map_err(|source| error(self.location, self.options, &source))
    }

    /// Commits: all of the transaction is written, or (on error) none of it.
    pub fn commit(self) -> Result<(), ConnectorError> {
        let (location, options) = (self.location, self.options);
        self.tx.commit().map_err(|source| error(location, options, &source))
    }
}

/// An error's message followed by its causes' (`error connecting to server: Connection refused`).
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let text = inner.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        cause = inner.source();
    }
    message
}

fn references(params: &[SqlValue]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|value| value as &(dyn ToSql + Sync)).collect()
}

/// A client error in words a user can act on.
fn error(location: &str, options: PgOptions, source: &postgres::Error) -> ConnectorError {
    let message = if let Some(db) = source.as_db_error() {
        if db.code() == &postgres::error::SqlState::LOCK_NOT_AVAILABLE {
            format!(
                "another writer held the lock for more than {} s (lock_timeout); nothing was written, try again",
                options.lock_timeout.as_secs_f64()
            )
        } else {
            format!("{}: {} (SQLSTATE {})", db.severity(), db.message(), db.code().code())
        }
    } else if source.is_closed() {
        format!(
            "the connection was lost ({}); nothing of the unfinished change was written",
            with_causes(source)
        )
    } else {
        with_causes(source)
    };
    ConnectorError::Postgres { location: location.to_owned(), message }
}

/// A server row as owned values, by column type.
fn owned_row(row: &postgres::Row) -> Result<SqlRow, ConnectorError> {
    let mut values = Vec::with_capacity(row.len());
    for (index, column) in row.columns().iter().enumerate() {
        let unreadable = |source: postgres::Error| ConnectorError::SqlType {
            column: index,
            message: source.to_string(),
        };
        let value = match *column.type_() {
            Type::INT2 => row
                .try_get::<_, Option<i16>>(index)
                .map_err(unreadable)?
                .map(|v| SqlValue::Int(v.into())),
            Type::INT4 => row
                .try_get::<_, Option<i32>>(index)
                .map_err(unreadable)?
                .map(|v| SqlValue::Int(v.into())),
            Type::INT8 => {
                row.try_get::<_, Option<i64>>(index).map_err(unreadable)?.map(SqlValue::Int)
            }
            Type::BOOL => row
                .try_get::<_, Option<bool>>(index)
                .map_err(unreadable)?
                .map(|v| SqlValue::Int(v.into())),
            Type::FLOAT4 => row
                .try_get::<_, Option<f32>>(index)
                .map_err(unreadable)?
                .map(|v| SqlValue::Real(v.into())),
            Type::FLOAT8 => {
                row.try_get::<_, Option<f64>>(index).map_err(unreadable)?.map(SqlValue::Real)
            }
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => {
                row.try_get::<_, Option<String>>(index).map_err(unreadable)?.map(SqlValue::Text)
            }
            ref other => {
                return Err(ConnectorError::SqlType {
                    column: index,
                    message: format!(
                        "column {:?} has type {other}, which is not read",
                        column.name()
                    ),
                });
            }
        };
        values.push(value.unwrap_or(SqlValue::Null));
    }
    Ok(SqlRow { values })
}

/// Parameters take the type the server infers for their place (`INTEGER` or `BIGINT`,
/// `REAL` or `DOUBLE PRECISION`, any text type); other combinations are refused, never sent
/// as bytes of the wrong width.
impl ToSql for SqlValue {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match (self, ty) {
            (SqlValue::Null, _) => Ok(IsNull::Yes),
            (SqlValue::Int(value), &Type::INT2) => i16::try_from(*value)?.to_sql(ty, out),
            (SqlValue::Int(value), &Type::INT4) => i32::try_from(*value)?.to_sql(ty, out),
            (SqlValue::Int(value), &Type::INT8) => value.to_sql(ty, out),
            (SqlValue::Int(value), &Type::FLOAT8) => (*value as f64).to_sql(ty, out),
            (SqlValue::Real(value), &Type::FLOAT8) => value.to_sql(ty, out),
            (SqlValue::Real(value), &Type::FLOAT4) => (*value as f32).to_sql(ty, out),
            (SqlValue::Text(value), _) if <String as ToSql>::accepts(ty) => value.to_sql(ty, out),
            (value, _) => Err(format!("cannot send {value:?} as a PostgreSQL {ty}").into()),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

#[cfg(test)]
mod tests;
