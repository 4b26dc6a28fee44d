//! The feedback table: ground truth given for past predictions, one row
//! per (request id, prediction row), in SQLite (`.vigie/feedback.db`). The
//! primary key refuses a second label for the same prediction row; the
//! per-version sums seed the live metrics when `vigie serve` starts.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode as SqliteCode, params};

/// One feedback, as stored.
pub struct Stored<'a> {
    /// The prediction's request id.
    pub request_id: &'a str,
    /// The row within the request.
    pub row: u64,
    /// The model, version and routing variant that predicted.
    pub model: &'a str,
    /// The model version.
    pub version: u32,
    /// The routing variant.
    pub variant: &'a str,
    /// The true label, as JSON.
    pub label: String,
    /// Classification: whether the decided label was the true one.
    pub correct: Option<bool>,
    /// Classification: the log loss of the row's probabilities.
    pub log_loss: Option<f64>,
    /// Regression: |prediction − truth|.
    pub absolute_error: Option<f64>,
}

/// Sums of the feedback of one model version and variant.
pub struct Totals {
    /// Model, version, variant.
    pub labels: [String; 3],
    /// Feedback rows.
    pub count: u64,
    /// Correct decisions (classification).
    pub correct: u64,
    /// Sum of log losses (classification).
    pub log_loss: f64,
    /// Sum of absolute errors (regression).
    pub absolute_error: f64,
}

/// The feedback table.
pub struct FeedbackStore {
    conn: Connection,
}

/// Why feedback could not be stored.
pub enum StoreError {
    /// That prediction row already has feedback.
    Duplicate,
    /// SQLite failed.
    Sqlite(rusqlite::Error),
}

impl FeedbackStore {
    /// Opens (creating) the table at `path`.
    pub fn open(path: &Path) -> rusqlite::Result<FeedbackStore> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS feedback (
                request_id TEXT NOT NULL, row INTEGER NOT NULL,
                model TEXT NOT NULL, version INTEGER NOT NULL, variant TEXT NOT NULL,
                label TEXT NOT NULL, correct INTEGER, log_loss REAL, absolute_error REAL,
                received TEXT NOT NULL,
                PRIMARY KEY (request_id, row)
            ) WITHOUT ROWID;",
        )?;
        Ok(FeedbackStore { conn })
    }

    /// Stores one feedback, durably (a committed SQLite transaction).
    pub fn insert(&self, feedback: &Stored<'_>) -> Result<(), StoreError> {
        let received = humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string();
        let inserted = self.conn.execute(
            "INSERT INTO feedback(request_id, row, model, version, variant, label, correct,
                                  log_loss, absolute_error, received)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                feedback.request_id,
                i64::try_from(feedback.row).unwrap_or(i64::MAX),
                feedback.model,
                feedback.version,
                feedback.variant,
                feedback.label,
                feedback.correct,
                feedback.log_loss,
                feedback.absolute_error,
                received
            ],
        );
        match inserted {
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(error, _))
                if error.code == SqliteCode::ConstraintViolation =>
            {
                Err(StoreError::Duplicate)
            }
            Err(error) => Err(StoreError::Sqlite(error)),
        }
    }

    /// The sums per model, version and variant.
    pub fn totals(&self) -> rusqlite::Result<Vec<Totals>> {
        let mut statement = self.conn.prepare(
            "SELECT model, version, variant, COUNT(*), COALESCE(SUM(correct), 0),
                    COALESCE(SUM(log_loss), 0.0), COALESCE(SUM(absolute_error), 0.0)
             FROM feedback GROUP BY model, version, variant",
        )?;
        let rows = statement.query_map([], |r| {
            Ok(Totals {
                labels: [r.get(0)?, r.get::<_, i64>(1)?.to_string(), r.get(2)?],
                count: u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
                correct: u64::try_from(r.get::<_, i64>(4)?).unwrap_or(0),
                log_loss: r.get(5)?,
                absolute_error: r.get(6)?,
            })
        })?;
        rows.collect()
    }
}
