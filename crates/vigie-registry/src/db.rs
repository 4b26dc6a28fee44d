//! The registry's metadata database: SQLite (one file, the embedded default) or PostgreSQL
//! (shared by several Vigie processes), behind one small API so that every query of the
//! registry is written once.
//!
//! The SQL is the part both dialects accept: `$1` placeholders (rewritten `?1` for SQLite),
//! `ON CONFLICT … DO NOTHING / DO UPDATE`, `BIGINT`, `DOUBLE PRECISION`, `CAST`. The schema
//! differs in one place only, the auto-numbered id columns.
//!
//! Every change is one transaction that takes the database's single write lock first:
//! `BEGIN IMMEDIATE` on SQLite, a transaction-scoped advisory lock on PostgreSQL. Writers
//! therefore queue one behind another on both backends (a registry's writes are few and
//! short), a transaction body sees no concurrent change between its reads and its writes, and
//! none needs a retry: a refused or failed change rolls back whole. Readers never wait.
//! Waiting for the lock is bounded (`lock_timeout`); past it the change fails with a message
//! saying nothing was written.

use std::cell::RefCell;
use std::path::Path;
use std::time::Duration;

use rusqlite::TransactionBehavior;
use rusqlite::types::{Value as SqliteValue, ValueRef};
use vigie_connectors::ConnectorError;
use vigie_connectors::postgres::{PgClient, PgOptions, PgTransaction};
use vigie_connectors::sql::{SqlRow, SqlValue};

use crate::{RegistryError, Result};

/// The key of the advisory lock that serialises registry writers on PostgreSQL (any fixed
/// number; advisory locks are per database). "VIGIEREG" in ASCII. Public so that an operator's
/// script can hold it (`SELECT pg_advisory_lock(KEY)`) to pause every writer of a registry.
pub const WRITE_LOCK_KEY: i64 = 0x5649_4749_4552_4547;

/// Which SQL dialect a database speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// An open metadata database.
pub(crate) struct Db {
    /// The file or the URL without password, for messages.
    location: String,
    /// How long a change waits for the write lock.
    lock_timeout: Duration,
    backend: Backend,
}

enum Backend {
    Sqlite(rusqlite::Connection),
    // Reads take `&self` (as rusqlite's do); the client needs `&mut` for every statement.
    // Boxed: the client is three times the size of a SQLite connection.
    Postgres(Box<RefCell<PgClient>>),
}

/// One transaction, holding the write lock until it commits or is dropped.
pub(crate) struct Tx<'a> {
    location: &'a str,
    lock_timeout: Duration,
    inner: TxInner<'a>,
}

enum TxInner<'a> {
    Sqlite(rusqlite::Transaction<'a>),
    Postgres(RefCell<PgTransaction<'a>>),
}

/// Statements that run the same on a database outside a transaction (reads) and inside one.
pub(crate) trait Sql {
    /// The rows of a query; `$1`, `$2`… take `params`.
    fn query(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<SqlRow>>;
    /// Runs a statement; returns how many rows it changed.
    fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<u64>;
    /// The file or URL, for messages.
    fn location(&self) -> &str;

    /// The first row of a query, if any.
    fn query_opt(&self, sql: &str, params: &[SqlValue]) -> Result<Option<SqlRow>> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// The first row of a query that always returns one (an aggregate).
    fn query_one(&self, sql: &str, params: &[SqlValue]) -> Result<SqlRow> {
        self.query_opt(sql, params)?.ok_or_else(|| RegistryError::Database {
            location: self.location().to_owned(),
            message: "a query that always returns a row returned none".to_owned(),
        })
    }

    /// Reads a value of a row, turning a type mismatch into a database error.
    fn read<T>(&self, value: std::result::Result<T, ConnectorError>) -> Result<T> {
        value.map_err(|source| database_error(self.location(), source))
    }
}

/// A connector's error as the registry's, keeping the connector's words.
pub(crate) fn database_error(location: &str, source: ConnectorError) -> RegistryError {
    match source {
        ConnectorError::Postgres { location, message } => {
            RegistryError::Database { location, message }
        }
        ConnectorError::PostgresUrl { location, message } => {
            RegistryError::Location(format!("registry database {location}: {message}"))
        }
        other => {
            RegistryError::Database { location: location.to_owned(), message: other.to_string() }
        }
    }
}

fn sqlite_error(location: &str, lock_timeout: Duration, source: rusqlite::Error) -> RegistryError {
    let busy = matches!(
        source.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    );
    let message = if busy {
        format!(
            "another writer held the database for more than {} s; nothing was written, try again",
            lock_timeout.as_secs_f64()
        )
    } else {
        source.to_string()
    };
    RegistryError::Database { location: location.to_owned(), message }
}

/// `$1` placeholders as SQLite's `?1` (SQLite's own `$1` would be a *named* parameter
/// numbered by first appearance, not by its digits).
fn sqlite_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

fn sqlite_params(params: &[SqlValue]) -> Vec<SqliteValue> {
    params
        .iter()
        .map(|value| match value {
            SqlValue::Null => SqliteValue::Null,
            SqlValue::Int(v) => SqliteValue::Integer(*v),
            SqlValue::Real(v) => SqliteValue::Real(*v),
            SqlValue::Text(v) => SqliteValue::Text(v.clone()),
        })
        .collect()
}

fn sqlite_query(
    conn: &rusqlite::Connection,
    location: &str,
    lock_timeout: Duration,
    sql: &str,
    params: &[SqlValue],
) -> Result<Vec<SqlRow>> {
    let failed = |source| sqlite_error(location, lock_timeout, source);
    let mut statement = conn.prepare_cached(&sqlite_sql(sql)).map_err(failed)?;
    let columns = statement.column_count();
    let mut rows =
        statement.query(rusqlite::params_from_iter(sqlite_params(params))).map_err(failed)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(failed)? {
        let mut values = Vec::with_capacity(columns);
        for index in 0..columns {
            values.push(match row.get_ref(index).map_err(failed)? {
                ValueRef::Null => SqlValue::Null,
                ValueRef::Integer(v) => SqlValue::Int(v),
                ValueRef::Real(v) => SqlValue::Real(v),
                ValueRef::Text(v) => SqlValue::Text(String::from_utf8_lossy(v).into_owned()),
                ValueRef::Blob(_) => {
                    return Err(RegistryError::Database {
                        location: location.to_owned(),
                        message: format!("unexpected binary value in column {index} of {sql:?}"),
                    });
                }
            });
        }
        out.push(SqlRow { values });
    }
    Ok(out)
}

fn sqlite_execute(
    conn: &rusqlite::Connection,
    location: &str,
    lock_timeout: Duration,
    sql: &str,
    params: &[SqlValue],
) -> Result<u64> {
    let mut statement = conn
        .prepare_cached(&sqlite_sql(sql))
        .map_err(|source| sqlite_error(location, lock_timeout, source))?;
    let changed = statement
        .execute(rusqlite::params_from_iter(sqlite_params(params)))
        .map_err(|source| sqlite_error(location, lock_timeout, source))?;
    Ok(changed as u64)
}

impl Db {
    /// Opens (creating) the SQLite database file at `path`, in WAL mode with foreign keys on.
    pub fn open_sqlite(path: &Path, lock_timeout: Duration) -> Result<Db> {
        let location = path.display().to_string();
        let failed = |source| sqlite_error(&location, lock_timeout, source);
        // A new (empty) file holds nothing a crash could lose: SQLite's switch of it to
        // WAL then needs no rollback journal flushed to disk (four of the 18 flushes a
        // first `vigie train` made); one flush of the file after the switch is enough.
        // Any other file switches with SQLite's full care.
        let new = std::fs::metadata(path).map_or(true, |meta| meta.len() == 0);
        let conn = rusqlite::Connection::open(path).map_err(failed)?;
        conn.busy_timeout(lock_timeout).map_err(failed)?;
        if new {
            conn.pragma_update(None, "synchronous", "OFF").map_err(failed)?;
        }
        conn.pragma_update(None, "journal_mode", "WAL").map_err(failed)?;
        if new {
            conn.pragma_update(None, "synchronous", "FULL").map_err(failed)?;
            std::fs::File::open(path).and_then(|file| file.sync_all()).map_err(|source| {
                RegistryError::Database {
                    location: location.clone(),
                    message: format!("flushing the new database to disk: {source}"),
                }
            })?;
        }
        conn.pragma_update(None, "foreign_keys", "ON").map_err(failed)?;
        Ok(Db { location, lock_timeout, backend: Backend::Sqlite(conn) })
    }

    /// Connects to the PostgreSQL database of `url`.
    pub fn connect_postgres(url: &str, lock_timeout: Duration) -> Result<Db> {
        let options = PgOptions { lock_timeout, ..PgOptions::default() };
        let client = PgClient::connect(url, options).map_err(|source| {
            database_error(&vigie_connectors::postgres::redact_url(url), source)
        })?;
        Ok(Db {
            location: client.location().to_owned(),
            lock_timeout,
            backend: Backend::Postgres(Box::new(RefCell::new(client))),
        })
    }

    /// The dialect.
    pub fn dialect(&self) -> Dialect {
        match self.backend {
            Backend::Sqlite(_) => Dialect::Sqlite,
            Backend::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Runs `f` in one transaction holding the write lock: all of it is written, or none.
    pub fn transaction<T>(&mut self, f: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        let (location, lock_timeout) = (self.location.as_str(), self.lock_timeout);
        let inner = match &mut self.backend {
            Backend::Sqlite(conn) => TxInner::Sqlite(
                conn.transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(|source| sqlite_error(location, lock_timeout, source))?,
            ),
            Backend::Postgres(client) => {
                let mut tx = client
                    .get_mut()
                    .transaction()
                    .map_err(|source| database_error(location, source))?;
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[SqlValue::Int(WRITE_LOCK_KEY)])
                    .map_err(|source| database_error(location, source))?;
                TxInner::Postgres(RefCell::new(tx))
            }
        };
        let tx = Tx { location, lock_timeout, inner };
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    }
}

impl Sql for Db {
    fn query(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<SqlRow>> {
        match &self.backend {
            Backend::Sqlite(conn) => {
                sqlite_query(conn, &self.location, self.lock_timeout, sql, params)
            }
            Backend::Postgres(client) => client
                .borrow_mut()
                .query(sql, params)
                .map_err(|source| database_error(&self.location, source)),
        }
    }

    fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<u64> {
        match &self.backend {
            Backend::Sqlite(conn) => {
                sqlite_execute(conn, &self.location, self.lock_timeout, sql, params)
            }
            Backend::Postgres(client) => client
                .borrow_mut()
                .execute(sql, params)
                .map_err(|source| database_error(&self.location, source)),
        }
    }

    fn location(&self) -> &str {
        &self.location
    }
}

impl Tx<'_> {
    fn commit(self) -> Result<()> {
        match self.inner {
            TxInner::Sqlite(tx) => {
                tx.commit().map_err(|source| sqlite_error(self.location, self.lock_timeout, source))
            }
            TxInner::Postgres(tx) => {
                tx.into_inner().commit().map_err(|source| database_error(self.location, source))
            }
        }
    }

    /// Runs `;`-separated statements without parameters (the schema).
    pub fn batch(&self, sql: &str) -> Result<()> {
        match &self.inner {
            TxInner::Sqlite(tx) => tx
                .execute_batch(sql)
                .map_err(|source| sqlite_error(self.location, self.lock_timeout, source)),
            TxInner::Postgres(tx) => tx
                .borrow_mut()
                .batch_execute(sql)
                .map_err(|source| database_error(self.location, source)),
        }
    }
}

impl Sql for Tx<'_> {
    fn query(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<SqlRow>> {
        match &self.inner {
            TxInner::Sqlite(tx) => sqlite_query(tx, self.location, self.lock_timeout, sql, params),
            TxInner::Postgres(tx) => tx
                .borrow_mut()
                .query(sql, params)
                .map_err(|source| database_error(self.location, source)),
        }
    }

    fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<u64> {
        match &self.inner {
            TxInner::Sqlite(tx) => {
                sqlite_execute(tx, self.location, self.lock_timeout, sql, params)
            }
            TxInner::Postgres(tx) => tx
                .borrow_mut()
                .execute(sql, params)
                .map_err(|source| database_error(self.location, source)),
        }
    }

    fn location(&self) -> &str {
        self.location
    }
}

#[cfg(test)]
mod tests;
