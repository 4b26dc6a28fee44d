//! Runs: what was trained, with what, by whom, and how it scored.

use rusqlite::{OptionalExtension, params};

use crate::registry::{Registry, now, transaction};
use crate::{RegistryError, Result};

/// How a run ended (or that it has not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// Still going (or died without saying).
    Running,
    /// Finished.
    Finished,
    /// Failed.
    Failed,
}

impl RunStatus {
    fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "RUNNING",
            RunStatus::Finished => "FINISHED",
            RunStatus::Failed => "FAILED",
        }
    }
}

/// What a new run records at its start.
#[derive(Debug, Clone, Default)]
pub struct NewRun {
    /// The experiment (created when new).
    pub experiment: String,
    /// A readable name.
    pub name: String,
    /// The parent run (a search's run for its trials).
    pub parent: Option<String>,
    /// Who started it.
    pub user: String,
    /// The code version (git commit) when known.
    pub git_commit: Option<String>,
    /// Fingerprint of the training data.
    pub data_sha256: Option<String>,
    /// Where the data came from.
    pub data_source: Option<String>,
    /// How many rows.
    pub data_rows: Option<u64>,
}

/// One line of `vigie runs list`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    /// Run id.
    pub id: String,
    /// Experiment name.
    pub experiment: String,
    /// Run name.
    pub name: String,
    /// Parent run id.
    pub parent: Option<String>,
    /// RUNNING, FINISHED or FAILED.
    pub status: String,
    /// Who ran it.
    pub user: String,
    /// Start (RFC 3339).
    pub started_at: String,
    /// End (RFC 3339).
    pub ended_at: Option<String>,
}

/// One value of a metric's history.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricPoint {
    /// Step (fold, trial or boosting round).
    pub step: i64,
    /// The value (NaN when undefined).
    pub value: f64,
}

/// Everything about a run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunDetail {
    /// The summary.
    pub summary: RunSummary,
    /// Code version.
    pub git_commit: Option<String>,
    /// Data fingerprint.
    pub data_sha256: Option<String>,
    /// Data location.
    pub data_source: Option<String>,
    /// Data rows.
    pub data_rows: Option<u64>,
    /// Parameters, by key.
    pub params: Vec<(String, String)>,
    /// Tags, by key.
    pub tags: Vec<(String, String)>,
    /// Metric histories, by key, by step.
    pub metrics: Vec<(String, Vec<MetricPoint>)>,
    /// Artifact paths relative to the state folder, with their SHA-256.
    pub artifacts: Vec<(String, String)>,
    /// Child runs' ids.
    pub children: Vec<String>,
}

/// A random run id: 32 hex digits from the OS's randomness via the std hasher seed and the clock.
fn new_run_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::with_capacity(32);
    for part in 0..2u64 {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        hasher.write_u32(std::process::id());
        hasher.write_u64(part);
        out.push_str(&format!("{:016x}", hasher.finish()));
    }
    out
}

/// A [`RunSummary`] from the first eight columns of a runs query (id, experiment,
/// name, parent, status, user, start, end).
fn run_summary(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunSummary> {
    Ok(RunSummary {
        id: r.get(0)?,
        experiment: r.get(1)?,
        name: r.get(2)?,
        parent: r.get(3)?,
        status: r.get(4)?,
        user: r.get(5)?,
        started_at: r.get(6)?,
        ended_at: r.get(7)?,
    })
}

fn db_value(value: f64) -> Option<f64> {
    value.is_finite().then_some(value)
}

impl Registry {
    /// Starts a run and returns its id.
    pub fn start_run(&mut self, run: &NewRun) -> Result<String> {
        crate::validate_name(&run.experiment)?;
        let id = new_run_id();
        transaction(&mut self.conn, |tx| {
            let started = now();
            tx.execute(
                "INSERT OR IGNORE INTO experiments(name, created_at) VALUES (?1, ?2)",
                params![run.experiment, started],
            )?;
            let experiment: i64 = tx.query_row(
                "SELECT id FROM experiments WHERE name = ?1",
                [&run.experiment],
                |r| r.get(0),
            )?;
            tx.execute(
                "INSERT INTO runs(id, experiment_id, parent_id, name, status, user_name, git_commit, started_at, data_sha256, data_source, data_rows)
                 VALUES (?1, ?2, ?3, ?4, 'RUNNING', ?5, ?6, ?7, ?8, ?9, ?10)",
                params![id, experiment, run.parent, run.name, run.user, run.git_commit, started, run.data_sha256, run.data_source, run.data_rows.map(|n| n as i64)],
            )?;
            Ok(())
        })?;
        Ok(id)
    }

    /// Records parameters (a key logged twice keeps its last value).
    pub fn log_params(&mut self, run: &str, values: &[(String, String)]) -> Result<()> {
        self.upsert_pairs(
            "INSERT OR REPLACE INTO params(run_id, key, value) VALUES (?1, ?2, ?3)",
            run,
            values,
        )
    }

    /// Records tags (a key set twice keeps its last value).
    pub fn set_tags(&mut self, run: &str, values: &[(String, String)]) -> Result<()> {
        self.upsert_pairs(
            "INSERT OR REPLACE INTO tags(run_id, key, value) VALUES (?1, ?2, ?3)",
            run,
            values,
        )
    }

    fn upsert_pairs(&mut self, sql: &str, run: &str, values: &[(String, String)]) -> Result<()> {
        transaction(&mut self.conn, |tx| {
            let mut statement = tx.prepare(sql)?;
            for (key, value) in values {
                statement.execute(params![run, key, value])?;
            }
            Ok(())
        })
    }

    /// Records metric values `(key, step, value)`.
    pub fn log_metrics(&mut self, run: &str, values: &[(String, i64, f64)]) -> Result<()> {
        transaction(&mut self.conn, |tx| {
            for (key, step, value) in values {
                tx.execute(
                    "INSERT OR REPLACE INTO metrics(run_id, key, step, value) VALUES (?1, ?2, ?3, ?4)",
                    params![run, key, step, db_value(*value)],
                )?;
            }
            Ok(())
        })
    }

    /// Records what data a run trained on, once it is known.
    pub fn set_run_data(&mut self, run: &str, sha256: &str, source: &str, rows: u64) -> Result<()> {
        let changed = self.conn.execute(
            "UPDATE runs SET data_sha256 = ?2, data_source = ?3, data_rows = ?4 WHERE id = ?1",
            params![run, sha256, source, rows as i64],
        )?;
        if changed == 0 {
            return Err(RegistryError::UnknownRun(run.to_owned()));
        }
        Ok(())
    }

    /// Ends a run.
    pub fn end_run(&mut self, run: &str, status: RunStatus) -> Result<()> {
        let changed = self.conn.execute(
            "UPDATE runs SET status = ?2, ended_at = ?3 WHERE id = ?1",
            params![run, status.as_str(), now()],
        )?;
        if changed == 0 {
            return Err(RegistryError::UnknownRun(run.to_owned()));
        }
        Ok(())
    }

    /// Runs, newest first, optionally of one experiment.
    pub fn runs(&self, experiment: Option<&str>, limit: usize) -> Result<Vec<RunSummary>> {
        let mut statement = self.conn.prepare(
            "SELECT r.id, e.name, r.name, r.parent_id, r.status, r.user_name, r.started_at, r.ended_at
             FROM runs r JOIN experiments e ON e.id = r.experiment_id
             WHERE (?1 IS NULL OR e.name = ?1)
             ORDER BY r.started_at DESC, r.rowid DESC LIMIT ?2",
        )?;
        let rows = statement.query_map(params![experiment, limit as i64], run_summary)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// A run in full. `id` may be a unique prefix of at least 6 characters.
    pub fn run(&self, id: &str) -> Result<RunDetail> {
        if id.len() < 6 || !id.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(RegistryError::UnknownRun(id.to_owned()));
        }
        let pattern = format!("{id}%");
        let mut statement = self.conn.prepare(
            "SELECT r.id, e.name, r.name, r.parent_id, r.status, r.user_name, r.started_at, r.ended_at,
                    r.git_commit, r.data_sha256, r.data_source, r.data_rows
             FROM runs r JOIN experiments e ON e.id = r.experiment_id WHERE r.id LIKE ?1 LIMIT 2",
        )?;
        let mut found = statement
            .query_map([&pattern], |r| {
                Ok((
                    run_summary(r)?,
                    r.get::<_, Option<String>>(8)?,
                    r.get::<_, Option<String>>(9)?,
                    r.get::<_, Option<String>>(10)?,
                    r.get::<_, Option<i64>>(11)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        if found.len() > 1 {
            return Err(RegistryError::Conflict(format!(
                "run id prefix {id:?} is ambiguous; give more characters"
            )));
        }
        let Some((summary, git_commit, data_sha256, data_source, data_rows)) = found.pop() else {
            return Err(RegistryError::UnknownRun(id.to_owned()));
        };
        let pairs = |sql: &str| -> Result<Vec<(String, String)>> {
            let mut statement = self.conn.prepare(sql)?;
            let rows = statement.query_map([&summary.id], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        };
        let params = pairs("SELECT key, value FROM params WHERE run_id = ?1 ORDER BY key")?;
        let tags = pairs("SELECT key, value FROM tags WHERE run_id = ?1 ORDER BY key")?;
        let artifacts =
            pairs("SELECT path, sha256 FROM artifacts WHERE run_id = ?1 ORDER BY path")?;
        let mut statement = self
            .conn
            .prepare("SELECT key, step, value FROM metrics WHERE run_id = ?1 ORDER BY key, step")?;
        let points = statement
            .query_map([&summary.id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    MetricPoint {
                        step: r.get(1)?,
                        value: r.get::<_, Option<f64>>(2)?.unwrap_or(f64::NAN),
                    },
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut metrics: Vec<(String, Vec<MetricPoint>)> = Vec::new();
        for (key, point) in points {
            match metrics.last_mut() {
                Some((last, history)) if *last == key => history.push(point),
                _ => metrics.push((key, vec![point])),
            }
        }
        let mut statement = self
            .conn
            .prepare("SELECT id FROM runs WHERE parent_id = ?1 ORDER BY started_at, rowid")?;
        let children = statement
            .query_map([&summary.id], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(RunDetail {
            summary,
            git_commit,
            data_sha256,
            data_source,
            data_rows: data_rows.map(|n| n.max(0) as u64),
            params,
            tags,
            metrics,
            artifacts,
            children,
        })
    }

    /// The run a model version came from.
    pub fn run_of_version(&self, model: &str, version: u32) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT run_id FROM versions WHERE model = ?1 AND version = ?2",
                params![model, version],
                |r| r.get(0),
            )
            .optional()?)
    }
}
