//! The embedded online store: the latest feature row of each entity key per
//! view, in SQLite (`.vigie/online.db`, WAL), read by key in microseconds.
//!
//! It is its own small crate (SQLite and JSON only) so that both the
//! feature store, which writes it, and the prediction server, which reads
//! it, can use the same code without the server linking DataFusion. Turning
//! a computed view into rows is the feature store's job
//! (`vigie_features::online::materialize`); this crate stores and reads rows.
//!
//! A write upserts a key's row only when it is newer than the stored one (by
//! event time, then arrival) or is the same event with other values (the
//! stream processor's final values after its provisional ones), so writing
//! the same or older history again changes nothing. MongoDB or Redis as an online store
//! is not written yet.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde_json::{Map, Value as Json};
use vigie_core::ErrorCode;

/// One entity's latest features, as read.
#[derive(Debug, Clone, PartialEq)]
pub struct OnlineRow {
    /// The event time of the row, microseconds since the epoch.
    pub time: i64,
    /// Feature name → value (numbers, text, or null).
    pub values: Map<String, Json>,
}

/// One entity's latest features, as written.
#[derive(Debug, Clone, PartialEq)]
pub struct LatestRow<'a> {
    /// The entity key.
    pub key: &'a str,
    /// The event time of the row, microseconds since the epoch.
    pub time: i64,
    /// Arrival order among rows of the same time (later wins).
    pub arrival: i64,
    /// Feature name → value.
    pub values: Map<String, Json>,
}

/// Why the online store cannot be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum OnlineError {
    /// SQLite refused or failed.
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The store's folder could not be made.
    #[error("{path}: {source}")]
    Folder {
        /// The folder.
        path: String,
        /// The system's error.
        source: std::io::Error,
    },
    /// A stored row is not a JSON object.
    #[error("the row of {view:?} {key:?} is unreadable")]
    Unreadable {
        /// The view.
        view: String,
        /// The entity key.
        key: String,
    },
}

impl OnlineError {
    /// The shared classification of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            OnlineError::Sqlite(_) | OnlineError::Folder { .. } => ErrorCode::Unavailable,
            OnlineError::Unreadable { .. } => ErrorCode::Corrupted,
        }
    }
}

/// Results of the online store.
pub type Result<T> = std::result::Result<T, OnlineError>;

/// The embedded online store.
pub struct OnlineStore {
    conn: Connection,
}

impl OnlineStore {
    /// Opens (creating) the store at `path` for reading and writing.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder).map_err(|source| OnlineError::Folder {
                path: folder.display().to_string(),
                source,
            })?;
        }
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS features (
                view TEXT NOT NULL, key TEXT NOT NULL, time INTEGER NOT NULL,
                arrival INTEGER NOT NULL, row TEXT NOT NULL,
                PRIMARY KEY (view, key)
            ) WITHOUT ROWID;",
        )?;
        Ok(OnlineStore { conn })
    }

    /// Opens an existing store at `path` for reading only, as the server
    /// does: a `vigie materialize` may write it meanwhile (WAL lets readers
    /// and the writer proceed together).
    pub fn open_read_only(path: &Path) -> Result<Self> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(2))?;
        Ok(OnlineStore { conn })
    }

    /// Upserts `rows` of `view` in one transaction, each only when newer than the stored
    /// row of its key (or the same event with other values); returns the keys written.
    pub fn write<'a>(
        &mut self,
        view: &str,
        rows: impl IntoIterator<Item = LatestRow<'a>>,
    ) -> Result<usize> {
        let tx = self.conn.transaction()?;
        let mut written = 0;
        {
            let mut upsert = tx.prepare(
                "INSERT INTO features(view, key, time, arrival, row) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (view, key) DO UPDATE SET time = excluded.time, arrival = excluded.arrival, row = excluded.row
                 WHERE excluded.time > features.time
                    OR (excluded.time = features.time AND excluded.arrival > features.arrival)
                    OR (excluded.time = features.time AND excluded.arrival = features.arrival
                        AND excluded.row <> features.row)",
            )?;
            for row in rows {
                let values = Json::Object(row.values).to_string();
                written += upsert.execute(params![view, row.key, row.time, row.arrival, values])?;
            }
        }
        tx.commit()?;
        Ok(written)
    }

    /// The latest row of `key` in `view`, if any.
    pub fn get(&self, view: &str, key: &str) -> Result<Option<OnlineRow>> {
        let mut statement = self
            .conn
            .prepare_cached("SELECT time, row FROM features WHERE view = ?1 AND key = ?2")?;
        let found = statement
            .query_row(params![view, key], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
            .optional()?;
        let Some((time, row)) = found else { return Ok(None) };
        match serde_json::from_str(&row) {
            Ok(Json::Object(values)) => Ok(Some(OnlineRow { time, values })),
            _ => Err(OnlineError::Unreadable { view: view.to_owned(), key: key.to_owned() }),
        }
    }

    /// Keys stored for `view`.
    pub fn count(&self, view: &str) -> Result<u64> {
        let count: i64 =
            self.conn
                .query_row("SELECT COUNT(*) FROM features WHERE view = ?1", [view], |r| r.get(0))?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// The views that have at least one row, by name.
    pub fn views(&self) -> Result<Vec<String>> {
        let mut statement =
            self.conn.prepare_cached("SELECT DISTINCT view FROM features ORDER BY view")?;
        let views = statement.query_map([], |r| r.get::<_, String>(0))?;
        Ok(views.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests;
