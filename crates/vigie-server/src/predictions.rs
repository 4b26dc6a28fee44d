//! The prediction store: every prediction copied from the audit log into a
//! MongoDB collection, one document per row, for analysis and monitoring.
//!
//! The audit log is the spool. A forwarder thread follows it from a cursor
//! (segment, byte offset, last record) kept beside it, sends each batch of
//! new records, and moves the cursor only once MongoDB has them. Each
//! document's `_id` is its record's sequence number and row (`"SEQ.ROW"`),
//! and a document already there counts as written, so a batch resent after
//! a failure or a crash lands once. When MongoDB is down, predictions go on
//! being served and audited; the forwarder retries with a growing pause
//! and catches up, in order, when the server returns.

use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::{IntCounter, IntGauge};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json, json};
use vigie_connectors::mongodb::MongoSink;

use crate::audit::segments;
use crate::metrics::Metrics;

/// Where predictions go.
#[derive(Debug, Clone)]
pub struct PredictionStore {
    /// `mongodb://…` (with its password, if any).
    pub url: String,
    /// The database.
    pub database: String,
    /// The collection.
    pub collection: String,
}

/// What the forwarder last saw, for readiness to report. A store that is
/// down never makes the server unready: the audit log spools its predictions.
#[derive(Debug)]
pub struct PredictionStoreState {
    target: String,
    /// Why the last attempt failed, while the store is unreachable.
    outage: Mutex<Option<String>>,
}

impl PredictionStoreState {
    /// `Ok` with where predictions go while they reach it; `Err` with why not
    /// while they are spooled in the audit log.
    pub fn describe(&self) -> Result<String, String> {
        let outage = self.outage.lock().map_or_else(|p| p.into_inner().clone(), |o| o.clone());
        match outage {
            None => Ok(format!("copying predictions to {}", self.target)),
            Some(reason) => Err(format!(
                "{reason}; predictions are spooled in the audit log and sent when it answers"
            )),
        }
    }

    fn set_outage(&self, outage: Option<String>) {
        if let Ok(mut slot) = self.outage.lock() {
            *slot = outage;
        }
    }
}

/// Records sent to MongoDB in one write, at most.
const BATCH_RECORDS: usize = 500;
/// Bytes of the audit log read at a time, at most (whole records only).
const READ_BYTES: u64 = 4 << 20;
/// How often the forwarder looks for new records when it is caught up.
const POLL: Duration = Duration::from_millis(200);
/// The longest pause between two attempts while MongoDB is unavailable.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long one attempt waits for MongoDB.
const SERVER_TIMEOUT: Duration = Duration::from_secs(3);

/// How far the forwarder got, saved beside the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Cursor {
    /// The store this cursor is for (a new store starts from the beginning).
    target: String,
    /// The segment being read.
    segment: u64,
    /// Bytes of it already sent.
    offset: u64,
    /// The last record sent.
    seq: u64,
}

/// The forwarder's counters in `/metrics`.
struct Counters {
    documents: IntCounter,
    failures: IntCounter,
    last_seq: IntGauge,
}

impl Counters {
    fn register(metrics: &Metrics) -> Result<Counters, prometheus::Error> {
        let documents = IntCounter::new(
            "vigie_prediction_store_documents_total",
            "Prediction rows written to the prediction store",
        )?;
        let failures = IntCounter::new(
            "vigie_prediction_store_failures_total",
            "Failed writes to the prediction store (each retried)",
        )?;
        let last_seq = IntGauge::new(
            "vigie_prediction_store_last_seq",
            "The last audit record copied to the prediction store",
        )?;
        metrics.register(Box::new(documents.clone()))?;
        metrics.register(Box::new(failures.clone()))?;
        metrics.register(Box::new(last_seq.clone()))?;
        Ok(Counters { documents, failures, last_seq })
    }
}

impl PredictionStore {
    /// `database.collection`, without credentials, for messages and the cursor.
    pub fn describe(&self) -> String {
        format!(
            "{} {}.{}",
            vigie_connectors::postgres::redact_url(&self.url),
            self.database,
            self.collection
        )
    }

    /// Starts the thread that copies the audit log in `audit_dir` into the
    /// store, for the life of the process; returns what it last saw.
    pub fn start(
        &self,
        audit_dir: &Path,
        metrics: &Metrics,
    ) -> Result<Arc<PredictionStoreState>, String> {
        let sink = MongoSink::new(&self.url, &self.database, &self.collection, SERVER_TIMEOUT)
            .map_err(|e| e.to_string())?;
        let counters = Counters::register(metrics).map_err(|e| e.to_string())?;
        let state =
            Arc::new(PredictionStoreState { target: self.describe(), outage: Mutex::new(None) });
        let forwarder = Forwarder {
            sink,
            target: self.describe(),
            dir: audit_dir.to_owned(),
            counters,
            indexed: false,
            state: Arc::clone(&state),
        };
        std::thread::Builder::new()
            .name("vigie-prediction-store".into())
            .spawn(move || forwarder.run())
            .map_err(|e| format!("cannot start the prediction store's thread: {e}"))?;
        Ok(state)
    }
}

struct Forwarder {
    sink: MongoSink,
    target: String,
    dir: PathBuf,
    counters: Counters,
    indexed: bool,
    state: Arc<PredictionStoreState>,
}

impl Forwarder {
    fn cursor_path(&self) -> PathBuf {
        self.dir.join("predictions-cursor.json")
    }

    fn load_cursor(&self) -> Cursor {
        let start = Cursor { target: self.target.clone(), segment: 1, offset: 0, seq: 0 };
        std::fs::read(self.cursor_path())
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Cursor>(&bytes).ok())
            .filter(|cursor| cursor.target == self.target)
            .unwrap_or(start)
    }

    /// Saves the cursor by rename, so a crash leaves the old or the new one.
    /// It need not be flushed: a cursor that goes back resends documents
    /// the store already has, which it skips.
    fn save_cursor(&self, cursor: &Cursor) -> std::io::Result<()> {
        let path = self.cursor_path();
        let temporary = path.with_extension("json.tmp");
        std::fs::write(&temporary, serde_json::to_vec(cursor)?)?;
        std::fs::rename(&temporary, &path)
    }

    fn run(mut self) {
        let mut cursor = self.load_cursor();
        let mut backoff = POLL;
        let mut outage: Option<String> = None;
        loop {
            let batch = match read_batch(&self.dir, &cursor) {
                Ok(batch) => batch,
                Err(error) => {
                    eprintln!("prediction store: reading the audit log: {error}");
                    std::thread::sleep(MAX_BACKOFF);
                    continue;
                }
            };
            let Some(batch) = batch else {
                std::thread::sleep(POLL);
                continue;
            };
            if batch.records == 0 {
                // Only a move to the next segment.
                cursor = batch.next;
                continue;
            }
            match self.send(&batch.documents) {
                Ok(()) => {
                    if let Some(reason) = outage.take() {
                        eprintln!(
                            "prediction store: {} reachable again after: {reason}; catching up",
                            self.target
                        );
                        self.state.set_outage(None);
                    }
                    backoff = POLL;
                    cursor = batch.next;
                    self.counters.documents.inc_by(batch.documents.len() as u64);
                    self.counters.last_seq.set(i64::try_from(cursor.seq).unwrap_or(i64::MAX));
                    if let Err(error) = self.save_cursor(&cursor) {
                        eprintln!("prediction store: saving the cursor: {error}");
                    }
                }
                Err(reason) => {
                    self.counters.failures.inc();
                    if outage.is_none() {
                        eprintln!(
                            "prediction store: {reason}; predictions stay in the audit log and \
                             are sent when it answers"
                        );
                    }
                    self.state.set_outage(Some(reason.clone()));
                    outage = Some(reason);
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    fn send(&mut self, documents: &[Json]) -> Result<(), String> {
        if !self.indexed {
            self.sink
                .ensure_indexes(&["entity", "time", "model", "version", "request_id"])
                .map_err(|e| e.to_string())?;
            self.indexed = true;
        }
        let sent = self.sink.insert_once(documents).map_err(|e| e.to_string());
        if sent.is_err() {
            // The server may come back as a new one (restored, or one that keeps no index
            // definitions across a restart): the indexes are made again (a no-op when they exist).
            self.indexed = false;
        }
        sent
    }
}

/// New records after a cursor, as documents, and the cursor after them.
struct Batch {
    documents: Vec<Json>,
    records: usize,
    next: Cursor,
}

/// The next batch of whole records after `cursor`: `None` when there is
/// nothing new; a batch of no records when the cursor moves to the next
/// segment.
fn read_batch(dir: &Path, cursor: &Cursor) -> Result<Option<Batch>, String> {
    let path = crate::audit::segment_path(dir, cursor.segment);
    let mut bytes = Vec::new();
    match File::open(&path) {
        Ok(mut file) => {
            file.seek(SeekFrom::Start(cursor.offset))
                .and_then(|_| file.take(READ_BYTES).read_to_end(&mut bytes))
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{}: {e}", path.display())),
    }
    let mut documents = Vec::new();
    let mut next = cursor.clone();
    let mut records = 0;
    let mut consumed = 0;
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        if records == BATCH_RECORDS || !line.ends_with(b"\n") {
            break;
        }
        consumed += line.len();
        let record: Json = serde_json::from_slice(line).map_err(|e| {
            format!("{}: the record after byte {}: {e}", path.display(), next.offset)
        })?;
        documents.extend(documents_of(&record));
        next.seq = record["seq"].as_u64().unwrap_or(next.seq);
        records += 1;
    }
    next.offset += consumed as u64;
    if records > 0 {
        return Ok(Some(Batch { documents, records, next }));
    }
    // Caught up with this segment: move on once a newer one exists.
    let newer = segments(dir)
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|(index, _)| index)
        .find(|index| *index > cursor.segment);
    Ok(newer.map(|segment| Batch {
        documents: Vec::new(),
        records: 0,
        next: Cursor { segment, offset: 0, ..cursor.clone() },
    }))
}

/// One document per row of an audit record.
fn documents_of(record: &Json) -> Vec<Json> {
    let seq = record["seq"].as_u64().unwrap_or(0);
    let rows = record["rows"].as_array().map(Vec::as_slice).unwrap_or_default();
    rows.iter()
        .enumerate()
        .map(|(row, fields)| {
            let mut document = Map::new();
            document.insert("_id".into(), json!(format!("{seq}.{row}")));
            document.insert("seq".into(), json!(seq));
            document.insert("row".into(), json!(row));
            for field in ["request_id", "caller", "route", "model", "version", "variant"] {
                document.insert(field.into(), record[field].clone());
            }
            if let Some(time) = record["ts"].as_str() {
                document.insert("time".into(), json!({ "$date": time }));
            }
            document.insert("threshold".into(), record["threshold"].clone());
            for field in ["entity", "inputs", "outputs"] {
                if let Some(value) = fields.get(field) {
                    document.insert(field.into(), value.clone());
                }
            }
            Json::Object(document)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_becomes_one_document_per_row_keyed_by_seq_and_row() {
        let record = json!({
            "seq": 7, "ts": "2026-11-29T10:00:00.000001Z", "request_id": "r", "caller": "c",
            "route": "/v1/models/{name}/predict", "model": "m", "version": 2, "variant": "champion",
            "threshold": 0.5,
            "rows": [
                {"inputs": {"x": 1.0}, "outputs": {"score": 0.1, "label": "No"}},
                {"inputs": {"x": 2.0}, "outputs": {"score": 0.9, "label": "Yes"}},
            ],
        });
        let documents = documents_of(&record);
        assert_eq!(documents.len(), 2);
        assert_eq!(documents[1]["_id"], json!("7.1"));
        assert_eq!(documents[1]["time"], json!({"$date": "2026-11-29T10:00:00.000001Z"}));
        assert_eq!(documents[1]["outputs"]["label"], json!("Yes"));
        assert_eq!(documents[0]["inputs"], json!({"x": 1.0}));
        assert_eq!(documents[0]["version"], json!(2));
    }
}
