//! The offline store on local disk: Parquet files under one folder.
//!
//! ```text
//! OFFLINE/sources/SOURCE/part-FIRSTARRIVAL.parquet     ingested rows, in arrival order
//! OFFLINE/sources/SOURCE/_state.json                   watermark and next arrival number
//! OFFLINE/views/VIEW/date=YYYY-MM-DD/part-0.parquet    computed feature rows, by event day
//! ```
//!
//! Every file is written under a temporary name and renamed, and a part's
//! name is its first arrival number, so an ingest interrupted between the
//! part and the state is redone into the same file, never twice. S3 is not
//! supported yet.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::{Deserialize, Serialize};

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
}

/// The offline store's folder.
#[derive(Debug, Clone)]
pub struct Offline {
    root: PathBuf,
}

fn storage(path: &Path, error: impl std::fmt::Display) -> FeatureError {
    FeatureError::storage(path)(error.to_string())
}

impl Offline {
    /// The store at `root` (created on first write).
    pub fn new(root: PathBuf) -> Self {
        Offline { root }
    }

    /// The folder of a source's ingested rows.
    pub fn source_dir(&self, source: &str) -> PathBuf {
        self.root.join("sources").join(source)
    }

    /// The folder of a view's feature rows.
    pub fn view_dir(&self, view: &str) -> PathBuf {
        self.root.join("views").join(view)
    }

    /// How far ingest of `source` went.
    pub fn state(&self, source: &str) -> Result<SourceState> {
        let path = self.source_dir(source).join("_state.json");
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| storage(&path, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SourceState::default()),
            Err(e) => Err(storage(&path, e)),
        }
    }

    /// Records how far ingest of `source` went.
    pub fn set_state(&self, source: &str, state: &SourceState) -> Result<()> {
        let path = self.source_dir(source).join("_state.json");
        let bytes = serde_json::to_vec_pretty(state).map_err(|e| storage(&path, e))?;
        write_atomically(&path, |file| {
            use std::io::Write;
            file.write_all(&bytes).map_err(|e| storage(&path, e))
        })
    }

    /// Writes one part of a source's rows.
    pub fn append(
        &self,
        source: &str,
        first_arrival: u64,
        batches: &[RecordBatch],
    ) -> Result<PathBuf> {
        let path = self.source_dir(source).join(format!("part-{first_arrival:012}.parquet"));
        write_parquet(&path, batches)?;
        Ok(path)
    }

    /// The schema of a source's first part, which later parts are cast to.
    pub fn source_schema(&self, source: &str) -> Result<Option<SchemaRef>> {
        let Some(first) = parquet_files(&self.source_dir(source))?.into_iter().next() else {
            return Ok(None);
        };
        let file = File::open(&first).map_err(|e| storage(&first, e))?;
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| storage(&first, e))?;
        Ok(Some(builder.schema().clone()))
    }

    /// Every row of a source or view folder.
    pub fn read_all(&self, dir: &Path) -> Result<Vec<RecordBatch>> {
        let mut batches = Vec::new();
        for path in parquet_files(dir)? {
            let file = File::open(&path).map_err(|e| storage(&path, e))?;
            let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                .and_then(|b| b.with_batch_size(65_536).build())
                .map_err(|e| storage(&path, e))?;
            for batch in reader {
                batches.push(batch.map_err(|e| storage(&path, e))?);
            }
        }
        Ok(batches)
    }

    /// Replaces a view's rows with `parts` (one set of batches per event day).
    pub fn replace_view(&self, view: &str, parts: &[(String, Vec<RecordBatch>)]) -> Result<()> {
        let dir = self.view_dir(view);
        let staging = dir.with_extension("partial");
        if staging.exists() {
            fs::remove_dir_all(&staging).map_err(|e| storage(&staging, e))?;
        }
        for (day, batches) in parts {
            write_parquet(&staging.join(format!("date={day}")).join("part-0.parquet"), batches)?;
        }
        fs::create_dir_all(&staging).map_err(|e| storage(&staging, e))?;
        let old = dir.with_extension("old");
        if dir.exists() {
            if old.exists() {
                fs::remove_dir_all(&old).map_err(|e| storage(&old, e))?;
            }
            fs::rename(&dir, &old).map_err(|e| storage(&dir, e))?;
        }
        fs::rename(&staging, &dir).map_err(|e| storage(&dir, e))?;
        if old.exists() {
            fs::remove_dir_all(&old).map_err(|e| storage(&old, e))?;
        }
        Ok(())
    }
}

/// Parquet files under `dir`, recursively, in name order (so arrival order for sources).
fn parquet_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(folder) = pending.pop() {
        let entries = match fs::read_dir(&folder) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(storage(&folder, e)),
        };
        for entry in entries {
            let path = entry.map_err(|e| storage(&folder, e))?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

fn write_atomically(path: &Path, write: impl FnOnce(&mut File) -> Result<()>) -> Result<()> {
    if let Some(folder) = path.parent() {
        fs::create_dir_all(folder).map_err(|e| storage(folder, e))?;
    }
    let partial = path.with_extension("partial");
    let mut file = File::create(&partial).map_err(|e| storage(&partial, e))?;
    write(&mut file)?;
    file.sync_all().map_err(|e| storage(&partial, e))?;
    fs::rename(&partial, path).map_err(|e| storage(path, e))
}

fn write_parquet(path: &Path, batches: &[RecordBatch]) -> Result<()> {
    let Some(first) = batches.first() else {
        return Ok(());
    };
    let schema = Arc::clone(&first.schema());
    write_atomically(path, |file| {
        let handle = file.try_clone().map_err(|e| storage(path, e))?;
        let mut writer =
            ArrowWriter::try_new(handle, schema, None).map_err(|e| storage(path, e))?;
        for batch in batches {
            writer.write(batch).map_err(|e| storage(path, e))?;
        }
        writer.close().map_err(|e| storage(path, e))?;
        Ok(())
    })
}
