//! The embedded online store: the latest feature row of each entity key per
//! view, in SQLite (`.vigie/online.db`, WAL), read by key in microseconds.
//!
//! Materialisation upserts a key's row only when it is newer than the stored
//! one (by event time, then arrival), so running it twice, or on overlapping
//! history, changes nothing. MongoDB as an online store is not written yet.

use std::path::Path;

use arrow::array::{
    Array, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray, UInt64Array,
};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value as Json};

use crate::engine::{ARRIVAL, KEY, TIME};
use crate::error::{FeatureError, Result};

/// One entity's latest features.
#[derive(Debug, Clone, PartialEq)]
pub struct OnlineRow {
    /// The event time of the row, microseconds since the epoch.
    pub time: i64,
    /// Feature name → value (numbers, text, or null).
    pub values: Map<String, Json>,
}

/// The embedded online store.
pub struct OnlineStore {
    conn: Connection,
}

fn invalid(message: impl Into<String>) -> FeatureError {
    FeatureError::InvalidData(message.into())
}

impl OnlineStore {
    /// Opens (creating) the store at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder)
                .map_err(|e| FeatureError::storage(folder)(e.to_string()))?;
        }
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
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

    /// Upserts the latest row of every key of `rows` (a view's rows, sorted by
    /// key, time, arrival) for the features `names`; returns the keys written.
    pub fn materialize(
        &mut self,
        view: &str,
        rows: &RecordBatch,
        names: &[String],
    ) -> Result<usize> {
        let keys = rows
            .column_by_name(KEY)
            .and_then(|c| c.as_any().downcast_ref::<StringArray>())
            .ok_or_else(|| invalid("internal: view keys"))?;
        let times = rows
            .column_by_name(TIME)
            .and_then(|c| c.as_any().downcast_ref::<TimestampMicrosecondArray>())
            .ok_or_else(|| invalid("internal: view times"))?;
        let arrivals = rows
            .column_by_name(ARRIVAL)
            .and_then(|c| c.as_any().downcast_ref::<UInt64Array>())
            .ok_or_else(|| invalid("internal: view arrivals"))?;
        let columns: Vec<(&String, &dyn Array)> = names
            .iter()
            .map(|name| {
                rows.column_by_name(name)
                    .map(|c| (name, c.as_ref()))
                    .ok_or_else(|| invalid(format!("view {view:?} has no column {name:?}")))
            })
            .collect::<Result<_>>()?;
        let tx = self.conn.transaction()?;
        let mut written = 0;
        {
            let mut upsert = tx.prepare(
                "INSERT INTO features(view, key, time, arrival, row) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (view, key) DO UPDATE SET time = excluded.time, arrival = excluded.arrival, row = excluded.row
                 WHERE excluded.time > features.time
                    OR (excluded.time = features.time AND excluded.arrival > features.arrival)",
            )?;
            let n = rows.num_rows();
            for i in 0..n {
                // The last row of each key is its latest.
                if i + 1 < n && keys.value(i + 1) == keys.value(i) {
                    continue;
                }
                let mut values = Map::new();
                for (name, column) in &columns {
                    values.insert((*name).clone(), cell(*column, i));
                }
                let row = Json::Object(values).to_string();
                written += upsert.execute(params![
                    view,
                    keys.value(i),
                    times.value(i),
                    i64::try_from(arrivals.value(i)).unwrap_or(i64::MAX),
                    row
                ])?;
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
        let values = match serde_json::from_str(&row) {
            Ok(Json::Object(values)) => values,
            _ => {
                return Err(invalid(format!(
                    "online store: the row of {view:?} {key:?} is unreadable"
                )));
            }
        };
        Ok(Some(OnlineRow { time, values }))
    }

    /// Keys stored for `view`.
    pub fn count(&self, view: &str) -> Result<u64> {
        let count: i64 =
            self.conn
                .query_row("SELECT COUNT(*) FROM features WHERE view = ?1", [view], |r| r.get(0))?;
        Ok(u64::try_from(count).unwrap_or(0))
    }
}

/// One cell as JSON: numbers (non-finite as null), text, or null.
fn cell(column: &dyn Array, row: usize) -> Json {
    if column.is_null(row) {
        return Json::Null;
    }
    if let Some(numbers) = column.as_any().downcast_ref::<Float64Array>() {
        return serde_json::Number::from_f64(numbers.value(row)).map_or(Json::Null, Json::Number);
    }
    if let Some(text) = column.as_any().downcast_ref::<StringArray>() {
        return Json::String(text.value(row).to_owned());
    }
    match arrow::util::display::array_value_to_string(column, row) {
        Ok(text) => Json::String(text),
        Err(_) => Json::Null,
    }
}
