//! The audit log of every prediction: who asked, which model version and
//! routing variant answered, the inputs it received, what it said and at
//! which threshold. Append-only and tamper-evident (each record carries the
//! SHA-256 of the one before), and durable before the reply is sent.
//!
//! A scoring handler calls [`AuditLog::record`] once per request (one
//! record holds all its rows, kept apart) and answers only after the record
//! is on disk. A shadow version's scores of the same request are a second
//! record with the same request id and the variant `shadow`
//! ([`AuditLog::record_shadow`]), written after the reply and never awaited
//! by it. The record goes through a bounded queue to the one writer
//! thread (`writer.rs`), which commits everything queued with a single
//! `fdatasync`. A full queue is refused at once with 503 (load shedding,
//! no unbounded memory); a failed write is a 503 too, never a silent drop.
//!
//! The log lives in the project's `.vigie/audit/` as segment files of JSON
//! lines (`audit-000001.jsonl`, …), a new one once a segment passes
//! [`AuditOptions::segment_bytes`]; `chain.rs` has the line format, the
//! readers and [`verify`]. Not yet: encryption per data subject.

mod chain;
#[cfg(test)]
mod tests;
mod writer;

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use axum::http::HeaderValue;
use axum::response::{IntoResponseParts, ResponseParts};
use serde::Serialize;
use serde_json::{Map, Value as Json};
use tokio::sync::{mpsc, oneshot};
use vigie_core::{ErrorCode, Frame, Value};
use vigie_ml::Task;

/// For the feedback index, which checks the records it reads back.
pub(crate) use chain::check_line;
pub(crate) use chain::segment_path;
pub use chain::{GENESIS_HASH, StoredRecord, TornTail, Verified, read, scan, segments, verify};

use crate::catalog::Served;
use crate::error::ApiError;
use crate::metrics::{Metrics, ServedLabels};
use writer::{Submission, Writer};

/// The caller recorded for a request that no one authenticated.
pub const ANONYMOUS: &str = "anonymous";

/// The routing variant of a request served by the model's serving version.
pub const CHAMPION: &str = "champion";

/// The routing variant of a request that named its version.
pub const PINNED: &str = "pinned";

/// How the log is written.
#[derive(Debug, Clone, Copy)]
pub struct AuditOptions {
    /// Records waiting for the writer before requests are refused with 503.
    pub queue_capacity: usize,
    /// A new segment file is started once the current one is this large.
    pub segment_bytes: u64,
    /// Most records in one commit.
    pub max_batch: usize,
    /// When a record counts as durable, so when its request is answered.
    pub durability: Durability,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            queue_capacity: 4096,
            segment_bytes: 64 * 1024 * 1024,
            max_batch: 1024,
            durability: Durability::Disk,
        }
    }
}

/// When an audit record is acknowledged, so when its request is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Once its commit is `fdatasync`ed: the record survives a power loss.
    Disk,
    /// Once its commit is written to the operating system: the record
    /// survives the process being killed (`kill -9`, a panic, the OOM
    /// killer), and a flusher thread `fdatasync`s the log every
    /// `flush_every`, so a power loss or a kernel crash loses at most that
    /// last interval's records. The reply no longer waits for the disk's
    /// flush, whose latency (and its rare stalls of tens of milliseconds)
    /// is otherwise every request's floor.
    Process {
        /// The longest time between two flushes.
        flush_every: std::time::Duration,
    },
}

/// Why the log cannot be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A file of the log could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// A record is not as it was written, or not where it belongs: the first break of the chain.
    #[error("{}:{line}: {reason}", path.display())]
    Broken {
        /// The segment file.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// Another process holds the log's lock.
    #[error("{}: another `vigie serve` writes this audit log", path.display())]
    Locked {
        /// The log's folder.
        path: PathBuf,
    },
    /// The queue to the writer is full.
    #[error("the audit log is behind ({capacity} predictions waiting); retry shortly")]
    QueueFull {
        /// The queue's capacity.
        capacity: usize,
    },
    /// The writer failed or stopped, so no prediction can be recorded.
    #[error("the audit log cannot be written: {0}")]
    Unwritable(String),
}

impl AuditError {
    /// The shared error code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            AuditError::Io { .. } => ErrorCode::Internal,
            AuditError::Broken { .. } => ErrorCode::Corrupted,
            AuditError::Locked { .. } => ErrorCode::Conflict,
            AuditError::QueueFull { .. } | AuditError::Unwritable(_) => ErrorCode::Unavailable,
        }
    }
}

impl From<AuditError> for ApiError {
    fn from(error: AuditError) -> Self {
        // To a client every audit failure is the server being unavailable: retry later.
        ApiError::from_code(ErrorCode::Unavailable, error.to_string())
    }
}

/// What opening the log found.
#[derive(Debug, Clone)]
pub struct Recovery {
    /// The segment appended to.
    pub segment: PathBuf,
    /// Records already in the log.
    pub records: u64,
    /// Bytes of a torn last record cut off (never acknowledged).
    pub truncated_bytes: u64,
}

/// One answered request, as the handler hands it to [`AuditLog::record`].
pub struct Prediction<'a> {
    /// The request id returned to the client.
    pub request_id: &'a str,
    /// Who asked: the token's subject, or [`ANONYMOUS`].
    pub caller: &'a str,
    /// The route pattern, e.g. `/v1/models/{name}/predict`.
    pub route: &'a str,
    /// The routing variant: [`CHAMPION`], [`PINNED`], a canary's or A/B variant's
    /// name, or `shadow` ([`AuditLog::record_shadow`]).
    pub variant: &'a str,
    /// The model version that answered.
    pub served: &'a Served,
    /// The model's inputs, typed, one row per prediction.
    pub inputs: &'a Frame,
    /// The model's outputs per row.
    pub outputs: &'a [Vec<f64>],
}

/// One answered forecast request, as the forecast route hands it to
/// [`AuditLog::record_forecast`]: one record row per series, its key columns and
/// the horizon in, its forecast rows out.
pub struct ForecastAnswer<'a> {
    /// The request id returned to the client.
    pub request_id: &'a str,
    /// Who asked.
    pub caller: &'a str,
    /// The forecast model's serving version.
    pub served: &'a crate::catalog::ServedForecast,
    /// Per series: `{"inputs": {series columns, "horizon"}, "outputs": [forecast rows]}`.
    pub rows: Vec<Json>,
}

/// Proof that a prediction is on disk, added to the reply: an
/// `x-request-id` header, and the labels the metrics middleware counts by.
#[derive(Debug)]
pub struct Audited {
    request_id: String,
    labels: ServedLabels,
}

impl IntoResponseParts for Audited {
    type Error = Infallible;

    fn into_response_parts(self, mut parts: ResponseParts) -> Result<ResponseParts, Infallible> {
        if let Ok(id) = HeaderValue::from_str(&self.request_id) {
            parts.headers_mut().insert("x-request-id", id);
        }
        parts.extensions_mut().insert(self.labels);
        Ok(parts)
    }
}

/// The fields of a record, before the writer chains it.
#[derive(Serialize)]
struct RecordFields<'a> {
    ts: String,
    request_id: &'a str,
    caller: &'a str,
    route: &'a str,
    model: &'a str,
    version: u32,
    variant: &'a str,
    threshold: Option<f64>,
    rows: Vec<Json>,
}

/// The handle handlers record through; shared behind an `Arc`. Dropping
/// the last handle lets the writer finish its batch and waits for it.
pub struct AuditLog {
    /// The writer thread's queue ([`Durability::Disk`]).
    queue: Option<mpsc::Sender<Submission>>,
    capacity: usize,
    metrics: Arc<Metrics>,
    writer: Option<std::thread::JoinHandle<()>>,
    /// The writer each request appends through ([`Durability::Process`]).
    direct: Option<writer::Direct>,
    /// Why the writer refuses every record, once a write or flush failed.
    failure: Arc<OnceLock<String>>,
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        // Close the queue (this handle holds its only sender), then wait for the writer.
        drop(self.queue.take());
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl AuditLog {
    /// Opens (or creates) the log in `dir`, recovers it and starts its
    /// writer thread (or, durable once written, its flusher thread).
    pub fn open(
        dir: &Path,
        options: AuditOptions,
        metrics: Arc<Metrics>,
    ) -> Result<(Arc<AuditLog>, Recovery), AuditError> {
        let capacity = options.queue_capacity.max(1);
        let (writer, recovery) = Writer::recover(dir, options, metrics.clone())?;
        let failure = writer.failure();
        let thread_error = |source| AuditError::Io { path: dir.to_owned(), source };
        let log = match options.durability {
            Durability::Disk => {
                let (queue, receiver) = mpsc::channel(capacity);
                let writer = std::thread::Builder::new()
                    .name("vigie-audit-writer".into())
                    .spawn(move || writer.run(receiver))
                    .map_err(thread_error)?;
                AuditLog {
                    queue: Some(queue),
                    capacity,
                    metrics,
                    writer: Some(writer),
                    direct: None,
                    failure,
                }
            }
            Durability::Process { flush_every } => AuditLog {
                queue: None,
                capacity,
                metrics,
                writer: None,
                direct: Some(writer.into_direct(flush_every).map_err(thread_error)?),
                failure,
            },
        };
        Ok((Arc::new(log), recovery))
    }

    /// Records one answered request and waits until it is durable; then
    /// observes its scores and missing inputs in the metrics. A client that
    /// leaves while it waits may leave a record of a reply it never got.
    pub async fn record(&self, prediction: Prediction<'_>) -> Result<Audited, ApiError> {
        let served = prediction.served;
        let labels = ServedLabels {
            model: served.name.clone(),
            version: served.version.to_string(),
            variant: prediction.variant.to_owned(),
        };
        self.submit(encode(&prediction)?).await?;
        // Counted once recorded: the metrics describe predictions that were answered.
        let task = served.model.card.task;
        self.metrics.observe_prediction(
            &labels,
            prediction.inputs,
            prediction.outputs.iter().filter_map(|row| observed_score(task, row)),
        );
        Ok(Audited { request_id: prediction.request_id.to_owned(), labels })
    }

    /// Records one answered forecast request and waits until it is durable.
    pub async fn record_forecast(&self, answer: ForecastAnswer<'_>) -> Result<Audited, ApiError> {
        let served = answer.served;
        let labels = ServedLabels {
            model: served.name.clone(),
            version: served.version.to_string(),
            variant: CHAMPION.to_owned(),
        };
        let fields = RecordFields {
            ts: humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string(),
            request_id: answer.request_id,
            caller: answer.caller,
            route: "/v1/models/{name}/forecast",
            model: &served.name,
            version: served.version,
            variant: CHAMPION,
            threshold: None,
            rows: answer.rows,
        };
        let line = serde_json::to_string(&fields).map_err(|e| {
            ApiError::from_code(ErrorCode::Internal, format!("cannot encode the audit record: {e}"))
        })?;
        self.submit(line).await?;
        Ok(Audited { request_id: answer.request_id.to_owned(), labels })
    }

    /// Records a shadow version's scores of a request already answered (its
    /// variant is `shadow`) and waits until they are durable. Nothing is
    /// answered from them, so the metrics do not observe them.
    pub async fn record_shadow(&self, prediction: Prediction<'_>) -> Result<(), ApiError> {
        self.submit(encode(&prediction)?).await?;
        Ok(())
    }

    /// Whether the writer takes records: why not when it stopped or a write failed.
    pub fn health(&self) -> Result<(), String> {
        if let Some(reason) = self.failure.get() {
            return Err(format!(
                "a write failed, every record is refused until restarted: {reason}"
            ));
        }
        if let Some(direct) = &self.direct {
            return direct.health();
        }
        let stopped = self.writer.as_ref().is_none_or(std::thread::JoinHandle::is_finished);
        if stopped || self.queue.as_ref().is_none_or(mpsc::Sender::is_closed) {
            return Err("the writer thread stopped".to_owned());
        }
        Ok(())
    }

    /// Queues one record's fields for the writer and waits until they are
    /// durable; returns the record's seq number.
    async fn submit(&self, fields: String) -> Result<u64, AuditError> {
        if let Some(direct) = &self.direct {
            return direct.append(&fields).map_err(AuditError::Unwritable);
        }
        let Some(queue) = &self.queue else {
            return Err(AuditError::Unwritable("the writer stopped".to_owned()));
        };
        let (ack, acked) = oneshot::channel();
        self.metrics.audit_queue_depth.inc();
        if let Err(refused) = queue.try_send(Submission { fields, ack }) {
            self.metrics.audit_queue_depth.dec();
            return Err(match refused {
                mpsc::error::TrySendError::Full(_) => {
                    AuditError::QueueFull { capacity: self.capacity }
                }
                mpsc::error::TrySendError::Closed(_) => {
                    AuditError::Unwritable("the writer stopped".to_owned())
                }
            });
        }
        match acked.await {
            Ok(Ok(seq)) => Ok(seq),
            Ok(Err(reason)) => Err(AuditError::Unwritable(reason)),
            Err(_) => Err(AuditError::Unwritable("the writer stopped".to_owned())),
        }
    }
}

/// The score a row adds to the score histogram: the positive class'
/// probability (binary), the chosen class' (multiclass); none for regression,
/// whose values have no common scale.
fn observed_score(task: Task, outputs: &[f64]) -> Option<f64> {
    match task {
        Task::Binary => outputs.first().copied(),
        Task::Multiclass { .. } => outputs.iter().copied().reduce(f64::max),
        Task::Regression => None,
    }
}

/// A record's fields as the compact JSON the writer chains.
fn encode(prediction: &Prediction<'_>) -> Result<String, ApiError> {
    serde_json::to_string(&fields(prediction)).map_err(|e| {
        ApiError::from_code(ErrorCode::Internal, format!("cannot encode the audit record: {e}"))
    })
}

fn fields<'a>(prediction: &Prediction<'a>) -> RecordFields<'a> {
    let served = prediction.served;
    let inputs = prediction.inputs;
    let rows = prediction
        .outputs
        .iter()
        .enumerate()
        .map(|(row, outputs)| {
            let received: Map<String, Json> = inputs
                .columns()
                .iter()
                .map(|column| (column.name.clone(), json_value(column.data.value(row))))
                .collect();
            let mut row_json = Map::new();
            row_json.insert("inputs".to_owned(), Json::Object(received));
            row_json.insert("outputs".to_owned(), crate::rows::prediction(&served.model, outputs));
            Json::Object(row_json)
        })
        .collect();
    RecordFields {
        ts: humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string(),
        request_id: prediction.request_id,
        caller: prediction.caller,
        route: prediction.route,
        model: &served.name,
        version: served.version,
        variant: prediction.variant,
        threshold: served.model.card.threshold,
        rows,
    }
}

fn json_value(value: Value) -> Json {
    match value {
        Value::Missing => Json::Null,
        Value::Bool(b) => Json::Bool(b),
        Value::Number(x) => serde_json::Number::from_f64(x).map_or(Json::Null, Json::Number),
        Value::Text(s) => Json::String(s),
    }
}
