//! The offline store: Parquet files in a folder on local disk or under an S3
//! prefix, through one object-store API (`vigie_connectors::artifacts`), so
//! both behave alike.
//!
//! ```text
//! ROOT/sources/SOURCE/part-FIRSTARRIVAL.parquet       ingested rows, in arrival order
//! ROOT/sources/SOURCE/_state.json                     watermark, next arrival, log position
//! ROOT/views/VIEW/_current.json                       which generation readers read
//! ROOT/views/VIEW/_cleaning.json                      the view's learned cleaning, if any
//! ROOT/views/VIEW/gen-N/date=YYYY-MM-DD/part-0.parquet  computed feature rows, by event day
//! ```
//!
//! Every object is written whole (on disk: a temporary file renamed), and a
//! part's name is its first arrival number, so an ingest interrupted between
//! the part and the state is redone into the same object, never twice. A
//! view is replaced by writing a new generation and then its pointer, so a
//! reader sees the old rows or the new ones, never a mix, on S3 as on disk.

use std::path::Path;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::{ArrowWriter, ProjectionMask};
use serde::{Deserialize, Serialize};
use vigie_connectors::artifacts::{ArtifactStore, S3Options};

use crate::clean::Cleaning;
use crate::error::{FeatureError, Result};

/// Where an ingest of one source stands.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceState {
    /// The latest event time ingested, in microseconds since the epoch.
    pub watermark: Option<i64>,
    /// The arrival number of the next row.
    pub next_arrival: u64,
    /// Events of the source's event log (HTTP sources) stored so far: the log's next
    /// sequence number to read.
    #[serde(default)]
    pub consumed: u64,
    /// Kafka sources: the next offset of each partition stored so far.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub partitions: std::collections::BTreeMap<i32, i64>,
    /// The arrival number of the first row of the last part, when the stream processor
    /// stored it: the one part whose late events' dead letters a crash may have left
    /// unwritten.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_part: Option<u64>,
}

/// Which generation of a view's rows readers read.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct Current {
    generation: u64,
}

/// The offline store.
pub struct Offline {
    objects: ArtifactStore,
}

fn failed(error: vigie_connectors::ConnectorError) -> FeatureError {
    FeatureError::Storage { path: "offline store".into(), message: error.to_string() }
}

fn storage(location: &str, error: impl std::fmt::Display) -> FeatureError {
    FeatureError::Storage { path: location.into(), message: error.to_string() }
}

impl Offline {
    /// The store in the folder `root` (created on first write).
    pub fn local(root: &Path) -> Result<Self> {
        Ok(Offline { objects: ArtifactStore::local(root).map_err(failed)? })
    }

    /// The store under `url` (`s3://BUCKET/PREFIX`), with the `AWS_*` environment's settings.
    pub fn s3(url: &str) -> Result<Self> {
        Ok(Offline { objects: ArtifactStore::s3(url, &S3Options::default()).map_err(failed)? })
    }

    /// Where an object of the store is, for messages.
    pub fn location(&self, key: &str) -> String {
        self.objects.location(key)
    }

    fn source_prefix(source: &str) -> String {
        format!("sources/{source}/")
    }

    fn state_key(source: &str) -> String {
        format!("sources/{source}/_state.json")
    }

    /// How far ingest of `source` went.
    pub fn state(&self, source: &str) -> Result<SourceState> {
        Ok(self.get_json(&Self::state_key(source))?.unwrap_or_default())
    }

    /// Records how far ingest of `source` went.
    pub fn set_state(&self, source: &str, state: &SourceState) -> Result<()> {
        self.put_json(&Self::state_key(source), state)
    }

    fn cleaning_key(view: &str) -> String {
        format!("views/{view}/_cleaning.json")
    }

    /// The learned cleaning of `view`, if any was stored.
    pub fn cleaning(&self, view: &str) -> Result<Option<Cleaning>> {
        self.get_json(&Self::cleaning_key(view))
    }

    /// Stores the learned cleaning of `view`.
    pub fn set_cleaning(&self, view: &str, cleaning: &Cleaning) -> Result<()> {
        self.put_json(&Self::cleaning_key(view), cleaning)
    }

    /// Forgets the learned cleaning of `view` (the next computation learns it again).
    pub fn forget_cleaning(&self, view: &str) -> Result<()> {
        match self.objects.delete(&Self::cleaning_key(view)) {
            Err(e) if e.code() != vigie_core::ErrorCode::NotFound => Err(failed(e)),
            _ => Ok(()),
        }
    }

    /// The JSON object `key`, or `None` when there is none.
    fn get_json<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self.objects.get(key) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| storage(&self.location(key), e)),
            Err(e) if e.code() == vigie_core::ErrorCode::NotFound => Ok(None),
            Err(e) => Err(failed(e)),
        }
    }

    fn put_json<T: Serialize>(&self, key: &str, value: &T) -> Result<()> {
        let bytes =
            serde_json::to_vec_pretty(value).map_err(|e| storage(&self.location(key), e))?;
        self.objects.put(key, bytes).map_err(failed)
    }

    /// Writes one part of a source's rows.
    pub fn append(&self, source: &str, first_arrival: u64, batches: &[RecordBatch]) -> Result<()> {
        let bytes = encode_parquet(batches)
            .map_err(|e| storage(&self.location(&Self::part_key(source, first_arrival)), e))?;
        self.append_encoded(source, first_arrival, bytes)
    }

    /// Writes one part of a source's rows already encoded by [`encode_parquet`].
    pub fn append_encoded(&self, source: &str, first_arrival: u64, bytes: Vec<u8>) -> Result<()> {
        self.objects.put(&Self::part_key(source, first_arrival), bytes).map_err(failed)
    }

    fn part_key(source: &str, first_arrival: u64) -> String {
        format!("sources/{source}/part-{first_arrival:012}.parquet")
    }

    /// Whether any row of `source` is stored.
    pub fn has_source(&self, source: &str) -> Result<bool> {
        Ok(!self.parquet_keys(&Self::source_prefix(source))?.is_empty())
    }

    /// The schema of a source's first part, which later parts are cast to.
    pub fn source_schema(&self, source: &str) -> Result<Option<SchemaRef>> {
        let Some(first) = self.parquet_keys(&Self::source_prefix(source))?.into_iter().next()
        else {
            return Ok(None);
        };
        let bytes = self.objects.get(&first).map_err(failed)?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
            .map_err(|e| storage(&self.location(&first), e))?;
        Ok(Some(builder.schema().clone()))
    }

    /// Every stored row of `source`, in arrival order.
    pub fn read_source(&self, source: &str) -> Result<Vec<RecordBatch>> {
        self.read_all(&Self::source_prefix(source))
    }

    /// Every computed row of `view` (none before its first computation), part by part in
    /// event-day order.
    pub fn read_view(&self, view: &str) -> Result<Vec<RecordBatch>> {
        self.read_view_columns(view, None)
    }

    /// The columns `columns` (every column when `None`) of every computed row of `view`,
    /// part by part in event-day order; a named column that a part lacks is left out, so
    /// the caller finds it missing. Only the named columns are decoded.
    pub fn read_view_columns(
        &self,
        view: &str,
        columns: Option<&[&str]>,
    ) -> Result<Vec<RecordBatch>> {
        let Some(current) = self.current(view)? else { return Ok(Vec::new()) };
        let keys = self.parquet_keys(&format!("views/{view}/gen-{}/", current.generation))?;
        // The parts are independent: each thread reads and decodes a run of them.
        let threads = std::thread::available_parallelism().map_or(1, usize::from).min(keys.len());
        if threads <= 1 {
            let mut batches = Vec::new();
            for key in &keys {
                self.read_part(key, columns, &mut batches)?;
            }
            return Ok(batches);
        }
        let runs: Vec<Result<Vec<RecordBatch>>> = std::thread::scope(|scope| {
            let readers: Vec<_> = keys
                .chunks(keys.len().div_ceil(threads))
                .map(|run| {
                    scope.spawn(move || {
                        let mut batches = Vec::new();
                        for key in run {
                            self.read_part(key, columns, &mut batches)?;
                        }
                        Ok(batches)
                    })
                })
                .collect();
            readers
                .into_iter()
                .map(|reader| {
                    reader.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        });
        let mut batches = Vec::new();
        for run in runs {
            batches.extend(run?);
        }
        Ok(batches)
    }

    /// Replaces a view's rows with `parts` (one set of batches per event day): a new
    /// generation, then the pointer to it, then the old generations are deleted.
    pub fn replace_view(&self, view: &str, parts: &[(String, Vec<RecordBatch>)]) -> Result<()> {
        let previous = self.current(view)?;
        let generation = previous.map_or(1, |c| c.generation + 1);
        let prefix = format!("views/{view}/gen-{generation}/");
        // A generation left by an interrupted replace is overwritten whole.
        for stale in self.objects.list(&prefix).map_err(failed)? {
            self.objects.delete(&stale).map_err(failed)?;
        }
        for (day, batches) in parts {
            self.put_parquet(&format!("{prefix}date={day}/part-0.parquet"), batches)?;
        }
        self.put_json(&format!("views/{view}/_current.json"), &Current { generation })?;
        for old in self.objects.list(&format!("views/{view}/")).map_err(failed)? {
            if old.contains("/gen-") && !old.starts_with(&prefix) {
                self.objects.delete(&old).map_err(failed)?;
            }
        }
        Ok(())
    }

    fn current(&self, view: &str) -> Result<Option<Current>> {
        self.get_json(&format!("views/{view}/_current.json"))
    }

    /// The Parquet objects under `prefix`, in name order (so arrival order for sources).
    fn parquet_keys(&self, prefix: &str) -> Result<Vec<String>> {
        let mut keys = self.objects.list(prefix).map_err(failed)?;
        keys.retain(|key| key.ends_with(".parquet"));
        Ok(keys)
    }

    fn read_all(&self, prefix: &str) -> Result<Vec<RecordBatch>> {
        let mut batches = Vec::new();
        for key in self.parquet_keys(prefix)? {
            self.read_part(&key, None, &mut batches)?;
        }
        Ok(batches)
    }

    /// Appends the rows of the Parquet object `key` to `batches`: the columns `columns`
    /// (those the object has), or all of them.
    fn read_part(
        &self,
        key: &str,
        columns: Option<&[&str]>,
        batches: &mut Vec<RecordBatch>,
    ) -> Result<()> {
        let fail = |e: parquet::errors::ParquetError| storage(&self.location(key), e);
        let bytes = self.objects.get_bytes(key).map_err(failed)?;
        let mut builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(fail)?;
        if let Some(columns) = columns {
            let schema = builder.schema();
            let wanted: Vec<usize> =
                columns.iter().filter_map(|name| schema.index_of(name).ok()).collect();
            let mask = ProjectionMask::roots(builder.parquet_schema(), wanted);
            builder = builder.with_projection(mask);
        }
        for batch in builder.with_batch_size(65_536).build().map_err(fail)? {
            batches.push(batch.map_err(|e| storage(&self.location(key), e))?);
        }
        Ok(())
    }

    fn put_parquet(&self, key: &str, batches: &[RecordBatch]) -> Result<()> {
        if batches.is_empty() {
            return Ok(());
        }
        let bytes = encode_parquet(batches).map_err(|e| storage(&self.location(key), e))?;
        self.objects.put(key, bytes).map_err(failed)
    }
}

/// `batches` (of one schema) as the bytes of a Parquet object; nothing for no batches. Pure
/// computation: the stream processor runs it on its reading thread.
pub fn encode_parquet(
    batches: &[RecordBatch],
) -> std::result::Result<Vec<u8>, parquet::errors::ParquetError> {
    let mut bytes = Vec::new();
    let Some(first) = batches.first() else { return Ok(bytes) };
    let mut writer = ArrowWriter::try_new(&mut bytes, Arc::clone(&first.schema()), None)?;
    for batch in batches {
        writer.write(batch)?;
    }
    writer.close()?;
    Ok(bytes)
}
