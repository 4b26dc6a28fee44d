//! The embedded backend: SQLite (`.vigie/online.db`, WAL), one JSON row per
//! view and key. Readers open it read-only, so the server reads while a
//! `vigie materialize` or the stream processor writes.
//!
//! A store written before versions existed (columns `time, arrival`) is
//! upgraded when first opened for writing: each row gets its version from
//! its time and arrival, and the arrival column goes.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use serde_json::{Map, Value as Json};

use crate::error::{OnlineError, Result};
use crate::rows::{OnlineRow, version};

/// One connection to the store's file.
pub struct Embedded {
    conn: Connection,
}

impl Embedded {
    /// Opens (creating) the store at `path` for reading and writing.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder).map_err(|source| OnlineError::Folder {
                path: folder.display().to_string(),
                source,
            })?;
        }
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS features (
                view TEXT NOT NULL, key TEXT NOT NULL, time INTEGER NOT NULL,
                version TEXT NOT NULL, row TEXT NOT NULL,
                PRIMARY KEY (view, key)
            ) WITHOUT ROWID;",
        )?;
        upgrade(&mut conn)?;
        Ok(Embedded { conn })
    }

    /// Opens an existing store at `path` for reading only.
    pub fn open_read_only(path: &Path) -> Result<Self> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(2))?;
        Ok(Embedded { conn })
    }

    /// Upserts `rows` (key, time, version, values) of `view` in one transaction, each only
    /// when its version is greater than the stored one, or equal with other values; returns
    /// the keys written.
    pub fn write<'a>(
        &mut self,
        view: &str,
        rows: impl Iterator<Item = (&'a str, i64, String, Map<String, Json>)>,
    ) -> Result<usize> {
        let tx = self.conn.transaction()?;
        let mut written = 0;
        // One buffer for every row's JSON text (written with `to_writer`, not `Display`).
        let mut text = Vec::with_capacity(256);
        {
            let mut upsert = tx.prepare_cached(
                "INSERT INTO features(view, key, time, version, row) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (view, key) DO UPDATE
                 SET time = excluded.time, version = excluded.version, row = excluded.row
                 WHERE excluded.version > features.version
                    OR (excluded.version = features.version AND excluded.row <> features.row)",
            )?;
            for (key, time, version, values) in rows {
                text.clear();
                serde_json::to_writer(&mut text, &values)
                    .expect("a JSON object always serialises into memory");
                let values = std::str::from_utf8(&text).expect("serde_json writes UTF-8");
                written += upsert.execute(params![view, key, time, version, values])?;
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

/// Gives the rows of a store of the earlier layout (`arrival`, no `version`) their version,
/// once, under the write lock (a second writer opening at the same time finds it done).
fn upgrade(conn: &mut Connection) -> Result<()> {
    if !has_arrival(conn)? {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if has_arrival(&tx)? {
        tx.execute_batch("ALTER TABLE features ADD COLUMN version TEXT NOT NULL DEFAULT ''")?;
        let rows: Vec<(String, String, i64, i64)> = tx
            .prepare("SELECT view, key, time, arrival FROM features")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<rusqlite::Result<_>>()?;
        {
            let mut set =
                tx.prepare("UPDATE features SET version = ?3 WHERE view = ?1 AND key = ?2")?;
            for (view, key, time, arrival) in rows {
                set.execute(params![view, key, version(time, arrival)])?;
            }
        }
        tx.execute_batch("ALTER TABLE features DROP COLUMN arrival")?;
    }
    tx.commit()?;
    Ok(())
}

/// Whether the table has the earlier layout's `arrival` column.
fn has_arrival(conn: &Connection) -> Result<bool> {
    Ok(conn.query_row(
        "SELECT COUNT(*) > 0 FROM pragma_table_info('features') WHERE name = 'arrival'",
        [],
        |r| r.get(0),
    )?)
}
