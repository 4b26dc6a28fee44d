//! Events of the streaming sources: the durable log that `vigie serve` appends
//! posted events to (HTTP sources), the checks an event passes before it is
//! accepted, and their conversion into Arrow rows for the stream processor.
//!
//! ```text
//! LOG/SOURCE/SEQ.jsonl     one JSON object per line; SEQ is the sequence number of the
//!                          segment's first event; a new segment starts past 64 MiB
//! ```
//!
//! An append is written and `fdatasync`ed before it returns, so an event the
//! server acknowledged survives a crash; concurrent requests share one
//! `fdatasync` (group commit); a torn last line (a crash mid-write) is cut
//! when the log is opened again. The processor reads complete lines
//! from a sequence number on and deletes the segments it has stored.
//!
//! A streaming source declares its columns in `fields` (column → dotted path
//! in the event). An event is refused at the door when it is not an object,
//! has a field no declared path reads, or lacks a readable time or an entity
//! key; a value of the wrong type for its column is found by the processor
//! (the column types are those of the first events stored) and becomes a dead
//! letter with its reason.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, RecordBatch, StringBuilder,
    TimestampMicrosecondArray, TimestampMicrosecondBuilder,
};
use arrow::compute::kernels::cast_utils::string_to_timestamp_nanos;
use arrow::datatypes::{DataType, Field, Schema};
use serde_json::Value as Json;
use vigie_core::Config;
use vigie_core::config::SourceKind;

use crate::error::{FeatureError, Result};

/// A segment is closed and a new one started past this size.
const SEGMENT_BYTES: u64 = if cfg!(test) { 200 } else { 64 * 1024 * 1024 };

fn storage(path: &Path, error: impl std::fmt::Display) -> FeatureError {
    FeatureError::storage(path)(error.to_string())
}

/// How the events of one streaming source are read: its columns and the ones an event needs.
#[derive(Debug, Clone, PartialEq)]
pub struct EventShape {
    /// Column → dotted path in the event, in column order.
    pub columns: Vec<(String, String)>,
    /// The event-time column.
    pub timestamp: String,
    /// The entity key columns of the views computed from the source.
    pub keys: Vec<String>,
    /// The first step of every declared path: the fields an event may have.
    roots: BTreeSet<String>,
}

impl EventShape {
    /// The shapes of every streaming source (`kind = "http"` or `"kafka"`) of `config`.
    pub fn of(config: &Config) -> Result<BTreeMap<String, EventShape>> {
        let mut shapes = BTreeMap::new();
        for (name, source) in &config.sources {
            if !matches!(source.kind.get_ref(), SourceKind::Http | SourceKind::Kafka) {
                continue;
            }
            let timestamp = source.timestamp.get_ref().clone();
            if source.fields.is_empty() {
                return Err(FeatureError::InvalidData(format!(
                    "source {name:?}: a streaming source declares its columns in `fields` \
                     (column = \"path.in.event\"), the time {timestamp:?} and entity keys included"
                )));
            }
            if let Some(reserved) = source.fields.keys().find(|c| c.starts_with('_')) {
                return Err(FeatureError::InvalidData(format!(
                    "source {name:?}: column {reserved:?}: names starting with `_` are Vigie's own"
                )));
            }
            let mut columns: Vec<(String, String)> =
                source.fields.iter().map(|(c, p)| (c.clone(), p.clone())).collect();
            if !source.fields.contains_key(&timestamp) {
                columns.push((timestamp.clone(), timestamp.clone()));
            }
            let mut keys = Vec::new();
            for view in config.feature_views.values().filter(|v| v.source.get_ref() == name) {
                if let Some(entity) = config.entities.get(view.entity.get_ref()) {
                    let key = entity.key.get_ref();
                    if !columns.iter().any(|(c, _)| c == key) {
                        return Err(FeatureError::InvalidData(format!(
                            "source {name:?}: `fields` has no column {key:?}, the key of entity {:?}",
                            view.entity.get_ref()
                        )));
                    }
                    if !keys.contains(key) {
                        keys.push(key.clone());
                    }
                }
            }
            let roots = columns
                .iter()
                .map(|(_, path)| path.split('.').next().unwrap_or_default().to_owned())
                .collect();
            shapes.insert(name.clone(), EventShape { columns, timestamp, keys, roots });
        }
        Ok(shapes)
    }

    fn path<'a>(&'a self, column: &'a str) -> &'a str {
        self.columns.iter().find(|(c, _)| c == column).map_or(column, |(_, p)| p.as_str())
    }

    /// Why `event` cannot be accepted, naming the field: not an object, a field no column
    /// reads, no readable time, or a missing entity key.
    pub fn check(&self, event: &Json) -> std::result::Result<(), Refusal> {
        self.checked_time(event).map(|_| ())
    }

    /// [`EventShape::check`], giving the event time (microseconds) it read.
    fn checked_time(&self, event: &Json) -> std::result::Result<i64, Refusal> {
        let Json::Object(fields) = event else {
            return Err(Refusal { field: None, message: "an event is a JSON object".into() });
        };
        if let Some(unknown) = fields.keys().find(|k| !self.roots.contains(*k)) {
            return Err(Refusal {
                field: Some(unknown.clone()),
                message: format!(
                    "unknown field {unknown:?}; the source reads: {}",
                    self.roots.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
            });
        }
        let path = self.path(&self.timestamp);
        let time = match lookup(event, path) {
            Some(Json::String(text)) if let Ok(nanos) = string_to_timestamp_nanos(text) => {
                nanos.div_euclid(1000)
            }
            Some(Json::String(text)) => {
                return Err(Refusal {
                    field: Some(path.to_owned()),
                    message: format!("{text:?} is not a time (write e.g. 2024-03-05T13:00:00Z)"),
                });
            }
            Some(other) => {
                return Err(Refusal {
                    field: Some(path.to_owned()),
                    message: format!("{other} is not a time (write e.g. 2024-03-05T13:00:00Z)"),
                });
            }
            None => {
                return Err(Refusal {
                    field: Some(path.to_owned()),
                    message: "the event time is missing".into(),
                });
            }
        };
        for key in &self.keys {
            let path = self.path(key);
            match lookup(event, path) {
                Some(Json::String(_) | Json::Number(_)) => {}
                Some(Json::Null) | None => {
                    return Err(Refusal {
                        field: Some(path.to_owned()),
                        message: format!("the entity key {key:?} is missing"),
                    });
                }
                Some(other) => {
                    return Err(Refusal {
                        field: Some(path.to_owned()),
                        message: format!(
                            "the entity key {key:?} must be text or a number, not {other}"
                        ),
                    });
                }
            }
        }
        Ok(time)
    }
}

/// Why one event is refused.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// The field at fault (a dotted path), when one is.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// Why an append was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// No such source, or not one that takes posted events.
    #[error("{0}")]
    UnknownSource(String),
    /// Event `index` of the request is refused; nothing of the request was stored.
    #[error("events[{index}]{}: {}", .refusal.field.as_ref().map(|f| format!(".{f}")).unwrap_or_default(), .refusal.message)]
    Refused {
        /// The event's position in the request.
        index: usize,
        /// Why.
        refusal: Refusal,
    },
    /// The log could not be written.
    #[error(transparent)]
    Storage(#[from] FeatureError),
}

/// Where an append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The sequence number of the first event appended.
    pub first: u64,
    /// How many events were appended.
    pub count: u64,
}

/// The open segment of one source's log.
struct Writer {
    dir: PathBuf,
    file: File,
    /// The first sequence number of the segment being written.
    segment: u64,
    /// Bytes written to the segment.
    size: u64,
    /// The sequence number of the next event.
    next: u64,
    /// Events below this sequence number are durable, and the segment's first `durable_size`
    /// bytes with them.
    durable: u64,
    durable_size: u64,
    /// A `fdatasync` runs without the lock held.
    syncing: bool,
    /// Per failed sync, in order, what was durable when it failed (and stays so): a
    /// request that wrote before a failure learns from it whether its events were cut.
    failures: Vec<u64>,
}

/// One source's log writer and the group commit around it: each request writes its lines
/// under the lock, then either finds them durable already, waits for the sync in flight,
/// or runs one `fdatasync` (the lock released meanwhile) that makes everything written
/// so far durable, for every request waiting.
#[derive(Default)]
struct SourceLog {
    writer: Mutex<Option<Writer>>,
    synced: Condvar,
}

/// The event logs of a project's HTTP sources, for appending.
pub struct EventLog {
    root: PathBuf,
    shapes: BTreeMap<String, EventShape>,
    writers: HashMap<String, SourceLog>,
    /// The logs' writer lock (when the project has HTTP sources), held while this is open:
    /// two processes appending to one log would interleave their sequence numbers.
    _lock: Option<File>,
}

/// The segments of a source's log folder: (first sequence number, path), in order.
fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(storage(dir, e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| storage(dir, e))?.path();
        let first = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".jsonl"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(first) = first {
            found.push((first, path));
        }
    }
    found.sort();
    Ok(found)
}

/// Takes the writer lock of the event logs under `root`, held while the returned file is
/// open; a second writer is refused with [`FeatureError::LogBusy`].
fn writer_lock(root: &Path) -> Result<File> {
    lock_file(root, ".writer.lock", FeatureError::LogBusy)
}

/// Takes the lock file `name` in `dir` (made if missing), held while the returned file is
/// open; held by another, it is refused with `busy` of its path.
pub(crate) fn lock_file(dir: &Path, name: &str, busy: fn(PathBuf) -> FeatureError) -> Result<File> {
    fs::create_dir_all(dir).map_err(|e| storage(dir, e))?;
    let path = dir.join(name);
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| storage(&path, e))?;
    lock.try_lock().map_err(|_| busy(path.clone()))?;
    Ok(lock)
}

fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:012}.jsonl"))
}

impl Writer {
    /// Opens the last segment of `dir` for appending, cutting a torn last line.
    fn open(dir: &Path) -> Result<Writer> {
        fs::create_dir_all(dir).map_err(|e| storage(dir, e))?;
        let (first, path) = segments(dir)?.pop().unwrap_or_else(|| (0, segment_path(dir, 0)));
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(|e| storage(&path, e))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(|e| storage(&path, e))?;
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        if complete < bytes.len() {
            file.set_len(complete as u64).map_err(|e| storage(&path, e))?;
        }
        // What an earlier process wrote may not have reached the disk: make it durable.
        file.sync_data().map_err(|e| storage(&path, e))?;
        let lines = bytes[..complete].iter().filter(|&&b| b == b'\n').count() as u64;
        let size = complete as u64;
        Ok(Writer {
            dir: dir.to_owned(),
            file,
            segment: first,
            size,
            next: first + lines,
            durable: first + lines,
            durable_size: size,
            syncing: false,
            failures: Vec::new(),
        })
    }

    /// Writes `count` events' `lines` (not yet durable); returns the first one's sequence
    /// number. A past-full segment is made durable and closed first.
    fn write(&mut self, lines: &[u8], count: u64) -> Result<u64> {
        if self.size > SEGMENT_BYTES {
            if self.durable < self.next {
                // A sync in flight covers at most what was written when it started.
                self.sync_now()?;
            }
            let path = segment_path(&self.dir, self.next);
            self.file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| storage(&path, e))?;
            self.segment = self.next;
            self.size = 0;
            self.durable_size = 0;
            // The new segment's name must survive a crash too.
            File::open(&self.dir).and_then(|d| d.sync_all()).map_err(|e| storage(&self.dir, e))?;
        }
        let first = self.next;
        if let Err(error) = self.file.write_all(lines) {
            // Cut whatever part was written, so the log holds whole events only.
            let _ = self.file.set_len(self.size);
            return Err(storage(&self.dir, error));
        }
        self.size += lines.len() as u64;
        self.next += count;
        Ok(first)
    }

    /// Syncs the segment with the lock held (before a segment is closed).
    fn sync_now(&mut self) -> Result<()> {
        match self.file.sync_data() {
            Ok(()) => {
                self.durable = self.next;
                self.durable_size = self.size;
                Ok(())
            }
            Err(error) => {
                self.forget_undurable();
                Err(storage(&self.dir, error))
            }
        }
    }

    /// After a failed sync: what was written since the last durable point is cut, and the
    /// requests that wrote it get an error.
    fn forget_undurable(&mut self) {
        let _ = self.file.set_len(self.durable_size);
        self.size = self.durable_size;
        self.next = self.durable;
        self.failures.push(self.durable);
    }
}

impl SourceLog {
    /// Writes `lines` and returns once they are durable: the first event's sequence number.
    fn append(&self, dir: &Path, lines: &[u8], count: u64) -> Result<u64> {
        let mut guard = self.writer.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if guard.is_none() {
            *guard = Some(Writer::open(dir)?);
        }
        let Some(writer) = guard.as_mut() else {
            return Err(storage(dir, "the log is not open"));
        };
        let first = writer.write(lines, count)?;
        let (end, failures) = (first + count, writer.failures.len());
        loop {
            let Some(writer) = guard.as_mut() else {
                return Err(storage(dir, "the log is not open"));
            };
            if let Some(&floor) = writer.failures.get(failures) {
                // A sync failed after these events were written: they survived it only if
                // they were durable already; otherwise they were cut.
                if end <= floor {
                    return Ok(first);
                }
                return Err(storage(dir, "fdatasync failed; the events were not stored"));
            }
            if writer.durable >= end {
                return Ok(first);
            }
            if writer.syncing {
                guard = self.synced.wait(guard).unwrap_or_else(std::sync::PoisonError::into_inner);
                continue;
            }
            // Lead a sync for everything written so far.
            writer.syncing = true;
            let (target, target_size, segment) = (writer.next, writer.size, writer.segment);
            let file = writer.file.try_clone().map_err(|e| storage(dir, e));
            drop(guard);
            let synced = file.and_then(|f| f.sync_data().map_err(|e| storage(dir, e)));
            guard = self.writer.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(writer) = guard.as_mut() {
                writer.syncing = false;
                // A segment closed meanwhile was synced whole when it was closed: this
                // sync's outcome says nothing of the segment written now.
                if writer.segment == segment {
                    match &synced {
                        Ok(()) if target > writer.durable => {
                            writer.durable = target;
                            writer.durable_size = target_size;
                        }
                        Ok(()) => {}
                        Err(_) => writer.forget_undurable(),
                    }
                }
            }
            self.synced.notify_all();
        }
    }
}

impl EventLog {
    /// The logs under `root` of the HTTP sources of `config`.
    pub fn open(root: &Path, config: &Config) -> Result<Self> {
        let shapes: BTreeMap<String, EventShape> = EventShape::of(config)?
            .into_iter()
            .filter(|(name, _)| {
                config.sources.get(name).is_some_and(|s| *s.kind.get_ref() == SourceKind::Http)
            })
            .collect();
        let writers = shapes.keys().map(|name| (name.clone(), SourceLog::default())).collect();
        let lock = if shapes.is_empty() { None } else { Some(writer_lock(root)?) };
        Ok(EventLog { root: root.to_owned(), shapes, writers, _lock: lock })
    }

    /// The sources that take posted events.
    pub fn sources(&self) -> impl Iterator<Item = &str> {
        self.shapes.keys().map(String::as_str)
    }

    /// Checks every event of a request, then appends them all (or none), durable on return.
    pub fn append(
        &self,
        source: &str,
        events: &[Json],
    ) -> std::result::Result<Appended, AppendError> {
        let (Some(shape), Some(writer)) = (self.shapes.get(source), self.writers.get(source))
        else {
            let known = self.shapes.keys().cloned().collect::<Vec<_>>();
            return Err(AppendError::UnknownSource(format!(
                "no source {source:?} takes events; the project's HTTP sources are: {}",
                if known.is_empty() { "(none)".to_owned() } else { known.join(", ") }
            )));
        };
        let mut lines = Vec::with_capacity(events.len() * 128);
        for (index, event) in events.iter().enumerate() {
            shape.check(event).map_err(|refusal| AppendError::Refused { index, refusal })?;
            serde_json::to_writer(&mut lines, event)
                .map_err(|e| AppendError::Storage(storage(&self.root, e)))?;
            lines.push(b'\n');
        }
        let count = events.len() as u64;
        if count == 0 {
            return Ok(Appended { first: 0, count: 0 });
        }
        let first = writer.append(&self.root.join(source), &lines, count)?;
        Ok(Appended { first, count })
    }
}

/// A reader of one source's log from a sequence number on.
pub(crate) struct LogCursor {
    dir: PathBuf,
    /// The sequence number of the next event to read.
    next: u64,
    /// The segment being read and the byte offset of event `next` in it.
    at: Option<(u64, u64)>,
}

/// One event read from a log or topic: where it was, and the event or why it is unreadable.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Incoming {
    /// The Kafka partition (none for a log).
    pub(crate) partition: Option<i32>,
    /// The sequence number in the log, or the offset in the partition.
    pub(crate) sequence: u64,
    /// The event, or why it cannot be read.
    pub(crate) event: std::result::Result<Json, String>,
}

impl LogCursor {
    pub(crate) fn new(root: &Path, source: &str, next: u64) -> Self {
        LogCursor { dir: root.join(source), next, at: None }
    }

    /// Up to `max` complete events from the current position.
    pub(crate) fn read(&mut self, max: usize) -> Result<Vec<Incoming>> {
        let mut out = Vec::new();
        let segments = segments(&self.dir)?;
        while out.len() < max {
            let (first, offset) = match self.at {
                Some(at) => at,
                None => {
                    let Some(&(first, _)) = segments.iter().rev().find(|(f, _)| *f <= self.next)
                    else {
                        return Ok(out);
                    };
                    (first, self.skip(first)?)
                }
            };
            let path = segment_path(&self.dir, first);
            let mut file = File::open(&path).map_err(|e| storage(&path, e))?;
            file.seek(SeekFrom::Start(offset)).map_err(|e| storage(&path, e))?;
            let mut reader = BufReader::new(file);
            let mut position = offset;
            let mut line = Vec::new();
            while out.len() < max {
                line.clear();
                let n = reader.read_until(b'\n', &mut line).map_err(|e| storage(&path, e))?;
                if n == 0 || line.last() != Some(&b'\n') {
                    break;
                }
                position += n as u64;
                let event = serde_json::from_slice(&line[..n - 1])
                    .map_err(|e| format!("{}: unreadable line: {e}", path.display()));
                out.push(Incoming { partition: None, sequence: self.next, event });
                self.next += 1;
            }
            self.at = Some((first, position));
            if out.len() >= max {
                break;
            }
            // At the end of this segment: move on if the next one starts here.
            match segments.iter().find(|(f, _)| *f > first) {
                Some(&(following, _)) if following == self.next => {
                    self.at = Some((following, 0));
                }
                _ => break,
            }
        }
        Ok(out)
    }

    /// The byte offset of event `self.next` in segment `first`.
    fn skip(&self, first: u64) -> Result<u64> {
        let path = segment_path(&self.dir, first);
        let file = File::open(&path).map_err(|e| storage(&path, e))?;
        let mut reader = BufReader::new(file);
        let mut offset = 0u64;
        let mut line = Vec::new();
        for _ in first..self.next {
            line.clear();
            let n = reader.read_until(b'\n', &mut line).map_err(|e| storage(&path, e))?;
            if n == 0 {
                break;
            }
            offset += n as u64;
        }
        Ok(offset)
    }

    /// Deletes the segments wholly before sequence number `stored`.
    pub(crate) fn prune(&self, stored: u64) -> Result<()> {
        let segments = segments(&self.dir)?;
        for pair in segments.windows(2) {
            if pair[1].0 <= stored {
                fs::remove_file(&pair[0].1).map_err(|e| storage(&pair[0].1, e))?;
            }
        }
        Ok(())
    }
}

/// An event that cannot be stored, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// The Kafka partition it came from (none for a log).
    pub partition: Option<i32>,
    /// The event's sequence number in its log (or offset in its partition).
    pub sequence: u64,
    /// Why it was set aside.
    pub reason: String,
    /// The event as received (null when unreadable).
    pub event: Json,
    /// The arrival number it was stored under: only events a view refused as late were
    /// stored.
    pub arrival: Option<u64>,
}

/// The value at a dotted path of `event`, if every step is an object.
fn lookup<'e>(event: &'e Json, path: &str) -> Option<&'e Json> {
    let mut value = event;
    for step in path.split('.') {
        value = field(value.as_object()?, step)?;
    }
    Some(value)
}

/// Field `name` of `object`. An event has a handful of fields: comparing their names is
/// cheaper than hashing `name` (the map's SipHash) to probe for it.
fn field<'e>(object: &'e serde_json::Map<String, Json>, name: &str) -> Option<&'e Json> {
    if object.len() <= 16 {
        object.iter().find_map(|(key, value)| (key == name).then_some(value))
    } else {
        object.get(name)
    }
}

/// The type of a column of events when no schema is stored yet: the kind most values have
/// (numbers, booleans or text; a tie is text), so that one stray `"n/a"` among numbers is a
/// dead letter rather than turning the column into text. Numbers are `Float64` (a later
/// `10.5` must fit where `10` came first), but an entity `key` of whole numbers is `Int64`,
/// so that customer 42 is `"42"` and not `"42.0"`.
fn infer(values: &[Option<&Json>], key: bool) -> DataType {
    let (mut ints, mut floats, mut bools, mut others) = (0usize, 0usize, 0usize, 0usize);
    for value in values.iter().flatten() {
        match value {
            Json::Null => {}
            Json::Number(n) if n.is_i64() => ints += 1,
            Json::Number(_) => floats += 1,
            Json::Bool(_) => bools += 1,
            _ => others += 1,
        }
    }
    let numbers = ints + floats;
    if numbers > bools.max(others) {
        if key && floats == 0 { DataType::Int64 } else { DataType::Float64 }
    } else if bools > numbers.max(others) {
        DataType::Boolean
    } else {
        DataType::Utf8
    }
}

/// Why `value` does not fit a column of `data_type`, if it does not.
fn misfit(value: &Json, data_type: &DataType) -> Option<String> {
    let fits = match (value, data_type) {
        (Json::Null, _) => true,
        (Json::Number(n), DataType::Int64) => {
            n.as_i64().is_some() || n.as_f64().is_some_and(|x| x.fract() == 0.0 && x.abs() < 9e15)
        }
        (Json::Number(_), DataType::Float64) => true,
        (Json::Bool(_), DataType::Boolean) => true,
        (Json::String(text), DataType::Timestamp(..)) => string_to_timestamp_nanos(text).is_ok(),
        (Json::String(_) | Json::Number(_) | Json::Bool(_), DataType::Utf8) => true,
        _ => false,
    };
    (!fits).then(|| {
        let wanted = match data_type {
            DataType::Int64 => "an integer",
            DataType::Float64 => "a number",
            DataType::Boolean => "true or false",
            DataType::Timestamp(..) => "a time",
            _ => "text, a number or a boolean",
        };
        format!("{value} is not {wanted}, as the column's earlier values are")
    })
}

fn build(values: &[Option<&Json>], data_type: &DataType) -> ArrayRef {
    let cells = values.iter().map(|v| v.filter(|j| !j.is_null()));
    match data_type {
        DataType::Int64 => {
            let mut b = Int64Builder::with_capacity(values.len());
            for cell in cells {
                b.append_option(
                    cell.and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|x| x as i64))),
                );
            }
            Arc::new(b.finish())
        }
        DataType::Float64 => {
            let mut b = Float64Builder::with_capacity(values.len());
            for cell in cells {
                b.append_option(cell.and_then(Json::as_f64));
            }
            Arc::new(b.finish())
        }
        DataType::Boolean => {
            let mut b = BooleanBuilder::with_capacity(values.len());
            for cell in cells {
                b.append_option(cell.and_then(Json::as_bool));
            }
            Arc::new(b.finish())
        }
        DataType::Timestamp(..) => {
            let mut b = TimestampMicrosecondBuilder::with_capacity(values.len());
            for cell in cells {
                b.append_option(
                    cell.and_then(Json::as_str)
                        .and_then(|t| string_to_timestamp_nanos(t).ok())
                        .map(|nanos| nanos.div_euclid(1000)),
                );
            }
            Arc::new(b.finish())
        }
        _ => {
            let mut b = StringBuilder::with_capacity(values.len(), values.len() * 16);
            for cell in cells {
                match cell {
                    None => b.append_null(),
                    Some(Json::String(text)) => b.append_value(text),
                    Some(other) => b.append_value(other.to_string()),
                }
            }
            Arc::new(b.finish())
        }
    }
}

/// Events turned into source rows.
pub(crate) struct Converted {
    /// The rows of the events that can be stored, in log order.
    pub(crate) batch: RecordBatch,
    /// Where each row's event was (partition, sequence), and its body when the caller
    /// asked to keep it (see [`to_batch`]).
    pub(crate) sequences: Vec<(Option<i32>, u64, Option<Json>)>,
    /// Each row's event time, microseconds.
    pub(crate) times: Vec<i64>,
    /// The events that cannot be stored.
    pub(crate) dead: Vec<DeadLetter>,
}

/// Turns events into source rows of `shape` (typed as `schema`, the source's stored
/// columns, when there is one), setting aside as dead letters the events that cannot be
/// stored: unreadable, failing [`EventShape::check`], or with a value of the wrong type.
/// `keep_body` hears each stored event's time, in order, and says whether to keep its body
/// (for a dead letter a view may still write); the others are dropped here.
pub(crate) fn to_batch(
    events: Vec<Incoming>,
    shape: &EventShape,
    schema: Option<&Schema>,
    keep_body: &mut dyn FnMut(i64) -> bool,
) -> Result<Converted> {
    let mut dead = Vec::new();
    let mut good: Vec<(Option<i32>, u64, Json, i64)> = Vec::with_capacity(events.len());
    for Incoming { partition, sequence, event } in events {
        match event {
            Err(reason) => dead.push(DeadLetter {
                partition,
                sequence,
                reason,
                event: Json::Null,
                arrival: None,
            }),
            Ok(event) => match shape.checked_time(&event) {
                Ok(time) => good.push((partition, sequence, event, time)),
                Err(refusal) => dead.push(DeadLetter {
                    partition,
                    sequence,
                    reason: match refusal.field {
                        Some(field) => format!("{field}: {}", refusal.message),
                        None => refusal.message,
                    },
                    event,
                    arrival: None,
                }),
            },
        }
    }
    let stored_type = |column: &str| {
        schema.and_then(|s| s.field_with_name(column).ok()).map(|f| f.data_type().clone())
    };
    let width = shape.columns.len();
    // Types: the stored ones, else inferred from these events; then drop the misfits.
    let types: Vec<DataType> = shape
        .columns
        .iter()
        .map(|(column, path)| {
            stored_type(column).unwrap_or_else(|| {
                if *column == shape.timestamp {
                    DataType::Utf8
                } else {
                    let values: Vec<Option<&Json>> =
                        good.iter().map(|(_, _, e, _)| lookup(e, path)).collect();
                    infer(&values, shape.keys.contains(column))
                }
            })
        })
        .collect();
    // Each column's value of each event, looked up once: column-major.
    fn lookups<'e>(
        good: &'e [(Option<i32>, u64, Json, i64)],
        columns: &[(String, String)],
    ) -> Vec<Option<&'e Json>> {
        let mut cells = Vec::with_capacity(good.len() * columns.len());
        for (_, path) in columns {
            cells.extend(good.iter().map(|(_, _, e, _)| lookup(e, path)));
        }
        cells
    }
    let cells = lookups(&good, &shape.columns);
    let mut misfits = vec![false; good.len()];
    for (column_index, ((column, _), data_type)) in shape.columns.iter().zip(&types).enumerate() {
        // The event time was read by the check; a text column takes any scalar.
        if *column == shape.timestamp && matches!(data_type, DataType::Timestamp(..)) {
            continue;
        }
        let values = cells.get(column_index * good.len()..).unwrap_or_default();
        for ((value, misfit_flag), event) in values.iter().zip(misfits.iter_mut()).zip(&good) {
            if *misfit_flag {
                continue;
            }
            if let Some(reason) = value.and_then(|v| misfit(v, data_type)) {
                let (partition, sequence, body, _) = event;
                dead.push(DeadLetter {
                    partition: *partition,
                    sequence: *sequence,
                    reason: format!("{column}: {reason}"),
                    event: body.clone(),
                    arrival: None,
                });
                *misfit_flag = true;
            }
        }
    }
    dead.sort_by_key(|d| (d.partition, d.sequence));
    let cells = if misfits.contains(&true) {
        drop(cells);
        let mut keep = misfits.iter();
        good.retain(|_| keep.next().is_some_and(|misfit| !misfit));
        lookups(&good, &shape.columns)
    } else {
        cells
    };
    let times: Vec<i64> = good.iter().map(|&(_, _, _, time)| time).collect();
    let mut fields = Vec::with_capacity(width);
    let mut arrays = Vec::with_capacity(width);
    let rows = good.len();
    for (index, ((column, _), data_type)) in shape.columns.iter().zip(types).enumerate() {
        let values = cells.get(index * rows..(index + 1) * rows).unwrap_or_default();
        let array = if *column == shape.timestamp && matches!(data_type, DataType::Timestamp(..)) {
            Arc::new(TimestampMicrosecondArray::from(times.clone())) as ArrayRef
        } else {
            build(values, &data_type)
        };
        arrays.push(array);
        fields.push(Field::new(column, data_type, true));
    }
    drop(cells);
    let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(good.len()));
    let batch = RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), arrays, &options)
        .map_err(|e| FeatureError::InvalidData(format!("internal: event rows: {e}")))?;
    let sequences = good
        .into_iter()
        .map(|(partition, sequence, event, time)| {
            (partition, sequence, keep_body(time).then_some(event))
        })
        .collect();
    Ok(Converted { batch, sequences, times, dead })
}

#[cfg(test)]
mod tests;
