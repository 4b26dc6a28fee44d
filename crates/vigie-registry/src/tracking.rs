//! Runs: what was trained, with what, by whom, and how it scored.

use vigie_connectors::sql::SqlRow;

use crate::db::Sql;
use crate::registry::{Registry, now};
use crate::{RegistryError, Result};

/// What [`Registry::log_batch`] records at once: parameters and tags (a key
/// given twice keeps its last value), metric values `(key, step, value)` and,
/// once known, the data the run trained on.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunBatch<'a> {
    /// Parameters `(key, value)`.
    pub params: &'a [(String, String)],
    /// Metric values `(key, step, value)`.
    pub metrics: &'a [(String, i64, f64)],
    /// Tags `(key, value)`.
    pub tags: &'a [(String, String)],
    /// The training data (replacing what the run recorded before).
    pub data: Option<RunData<'a>>,
}

/// The data a run trained on.
#[derive(Debug, Clone, Copy)]
pub struct RunData<'a> {
    /// SHA-256 of the columns read.
    pub sha256: &'a str,
    /// Where they were read from.
    pub source: &'a str,
    /// How many rows.
    pub rows: u64,
}

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
fn run_summary(db: &impl Sql, row: &SqlRow) -> Result<RunSummary> {
    Ok(RunSummary {
        id: db.read(row.text(0))?,
        experiment: db.read(row.text(1))?,
        name: db.read(row.text(2))?,
        parent: db.read(row.opt_text(3))?,
        status: db.read(row.text(4))?,
        user: db.read(row.text(5))?,
        started_at: db.read(row.text(6))?,
        ended_at: db.read(row.opt_text(7))?,
    })
}

fn db_value(value: f64) -> Option<f64> {
    value.is_finite().then_some(value)
}

/// Ends `run` with `status`, in `tx`.
pub(crate) fn end_run(tx: &impl Sql, run: &str, status: RunStatus) -> Result<()> {
    let changed = tx.execute(
        "UPDATE runs SET status = $2, ended_at = $3 WHERE id = $1",
        &[run.into(), status.as_str().into(), now().into()],
    )?;
    if changed == 0 {
        return Err(RegistryError::UnknownRun(run.to_owned()));
    }
    Ok(())
}

impl Registry {
    /// Starts a run and returns its id.
    pub fn start_run(&mut self, run: &NewRun) -> Result<String> {
        crate::validate_name(&run.experiment)?;
        let id = new_run_id();
        self.db.transaction(|tx| {
            let started = now();
            tx.execute(
                "INSERT INTO experiments(name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                &[(&run.experiment).into(), (&started).into()],
            )?;
            let experiment = tx.read(
                tx.query_one("SELECT id FROM experiments WHERE name = $1", &[(&run.experiment).into()])?
                    .int(0),
            )?;
            tx.execute(
                "INSERT INTO runs(id, experiment_id, parent_id, name, status, user_name, git_commit, started_at, data_sha256, data_source, data_rows)
                 VALUES ($1, $2, $3, $4, 'RUNNING', $5, $6, $7, $8, $9, $10)",
                &[
                    (&id).into(),
                    experiment.into(),
                    run.parent.as_ref().into(),
                    (&run.name).into(),
                    (&run.user).into(),
                    run.git_commit.as_ref().into(),
                    (&started).into(),
                    run.data_sha256.as_ref().into(),
                    run.data_source.as_ref().into(),
                    run.data_rows.map(|n| n as i64).into(),
                ],
            )?;
            Ok(())
        })?;
        Ok(id)
    }

    /// Records parameters (a key logged twice keeps its last value).
    pub fn log_params(&mut self, run: &str, values: &[(String, String)]) -> Result<()> {
        self.log_batch(run, RunBatch { params: values, ..RunBatch::default() })
    }

    /// Records tags (a key set twice keeps its last value).
    pub fn set_tags(&mut self, run: &str, values: &[(String, String)]) -> Result<()> {
        self.log_batch(run, RunBatch { tags: values, ..RunBatch::default() })
    }

    /// Records metric values `(key, step, value)`.
    pub fn log_metrics(&mut self, run: &str, values: &[(String, i64, f64)]) -> Result<()> {
        self.log_batch(run, RunBatch { metrics: values, ..RunBatch::default() })
    }

    /// Records parameters, metrics, tags and the training data in one
    /// transaction (MLflow's `log-batch`): one commit, so one disk flush,
    /// where a call for each would take one each.
    pub fn log_batch(&mut self, run: &str, batch: RunBatch<'_>) -> Result<()> {
        let pairs = |table: &str| {
            format!(
                "INSERT INTO {table}(run_id, key, value) VALUES ($1, $2, $3)
                 ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value"
            )
        };
        let (params_sql, tags_sql) = (pairs("params"), pairs("tags"));
        self.db.transaction(|tx| {
            if let Some(data) = batch.data {
                let changed = tx.execute(
                    "UPDATE runs SET data_sha256 = $2, data_source = $3, data_rows = $4 WHERE id = $1",
                    &[run.into(), data.sha256.into(), data.source.into(), (data.rows as i64).into()],
                )?;
                if changed == 0 {
                    return Err(RegistryError::UnknownRun(run.to_owned()));
                }
            }
            for (sql, values) in [(&params_sql, batch.params), (&tags_sql, batch.tags)] {
                for (key, value) in values {
                    tx.execute(sql, &[run.into(), key.into(), value.into()])?;
                }
            }
            for (key, step, value) in batch.metrics {
                tx.execute(
                    "INSERT INTO metrics(run_id, key, step, value) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (run_id, key, step) DO UPDATE SET value = excluded.value",
                    &[run.into(), key.into(), (*step).into(), db_value(*value).into()],
                )?;
            }
            Ok(())
        })
    }

    /// Records what data a run trained on, once it is known.
    pub fn set_run_data(&mut self, run: &str, sha256: &str, source: &str, rows: u64) -> Result<()> {
        let data = RunData { sha256, source, rows };
        self.log_batch(run, RunBatch { data: Some(data), ..RunBatch::default() })
    }

    /// Ends a run.
    pub fn end_run(&mut self, run: &str, status: RunStatus) -> Result<()> {
        self.db.transaction(|tx| end_run(tx, run, status))
    }

    /// Runs, newest first, optionally of one experiment.
    pub fn runs(&self, experiment: Option<&str>, limit: usize) -> Result<Vec<RunSummary>> {
        let rows = self.db.query(
            "SELECT r.id, e.name, r.name, r.parent_id, r.status, r.user_name, r.started_at, r.ended_at
             FROM runs r JOIN experiments e ON e.id = r.experiment_id
             WHERE (CAST($1 AS TEXT) IS NULL OR e.name = $1)
             ORDER BY r.started_at DESC, r.id DESC LIMIT $2",
            &[experiment.into(), (limit.min(i64::MAX as usize) as i64).into()],
        )?;
        rows.iter().map(|row| run_summary(&self.db, row)).collect()
    }

    /// A run in full. `id` may be a unique prefix of at least 6 characters.
    pub fn run(&self, id: &str) -> Result<RunDetail> {
        if id.len() < 6 || !id.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(RegistryError::UnknownRun(id.to_owned()));
        }
        // Ids are lowercase hex; LIKE is case-sensitive in PostgreSQL.
        let pattern = format!("{}%", id.to_ascii_lowercase());
        let db = &self.db;
        let mut found = db.query(
            "SELECT r.id, e.name, r.name, r.parent_id, r.status, r.user_name, r.started_at, r.ended_at,
                    r.git_commit, r.data_sha256, r.data_source, r.data_rows
             FROM runs r JOIN experiments e ON e.id = r.experiment_id WHERE r.id LIKE $1 LIMIT 2",
            &[pattern.into()],
        )?;
        if found.len() > 1 {
            return Err(RegistryError::Conflict(format!(
                "run id prefix {id:?} is ambiguous; give more characters"
            )));
        }
        let Some(row) = found.pop() else {
            return Err(RegistryError::UnknownRun(id.to_owned()));
        };
        let summary = run_summary(db, &row)?;
        let pairs = |sql: &str| -> Result<Vec<(String, String)>> {
            db.query(sql, &[(&summary.id).into()])?
                .iter()
                .map(|row| Ok((db.read(row.text(0))?, db.read(row.text(1))?)))
                .collect()
        };
        let params = pairs("SELECT key, value FROM params WHERE run_id = $1 ORDER BY key")?;
        let tags = pairs("SELECT key, value FROM tags WHERE run_id = $1 ORDER BY key")?;
        let artifacts =
            pairs("SELECT path, sha256 FROM artifacts WHERE run_id = $1 ORDER BY path")?;
        let mut metrics: Vec<(String, Vec<MetricPoint>)> = Vec::new();
        let points = db.query(
            "SELECT key, step, value FROM metrics WHERE run_id = $1 ORDER BY key, step",
            &[(&summary.id).into()],
        )?;
        for point in &points {
            let key = db.read(point.text(0))?;
            let point = MetricPoint {
                step: db.read(point.int(1))?,
                value: db.read(point.opt_real(2))?.unwrap_or(f64::NAN),
            };
            match metrics.last_mut() {
                Some((last, history)) if *last == key => history.push(point),
                _ => metrics.push((key, vec![point])),
            }
        }
        let children = db
            .query(
                "SELECT id FROM runs WHERE parent_id = $1 ORDER BY started_at, id",
                &[(&summary.id).into()],
            )?
            .iter()
            .map(|row| db.read(row.text(0)))
            .collect::<Result<Vec<String>>>()?;
        Ok(RunDetail {
            git_commit: db.read(row.opt_text(8))?,
            data_sha256: db.read(row.opt_text(9))?,
            data_source: db.read(row.opt_text(10))?,
            data_rows: db.read(row.opt_int(11))?.map(|n| n.max(0) as u64),
            summary,
            params,
            tags,
            metrics,
            artifacts,
            children,
        })
    }

    /// The run a model version came from.
    pub fn run_of_version(&self, model: &str, version: u32) -> Result<Option<String>> {
        match self.db.query_opt(
            "SELECT run_id FROM versions WHERE model = $1 AND version = $2",
            &[model.into(), version.into()],
        )? {
            Some(row) => Ok(Some(self.db.read(row.text(0))?)),
            None => Ok(None),
        }
    }
}
