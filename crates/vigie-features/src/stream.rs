//! The stream processor: events of the streaming sources, as they arrive,
//! into the offline store (so training sees them) and through the views'
//! windows into the online store (so serving sees them), with the same
//! compiled view and the same window kernel as the batch engine.
//!
//! One step reads a micro-batch from each HTTP source's [event log](crate::events):
//! the events that cannot be stored become dead letters
//! (`DEAD/SOURCE.jsonl`, with the reason); the others are stored as one part
//! of the source, numbered in arrival order, together with the log position
//! they reach (one state file, written after the part); then each view runs
//! its SQL over the part, pushes the rows into its [`window::Stream`], and
//! writes the latest released row of each key to the online store. Events
//! the view's lateness rule refuses are dead letters too, and the batch
//! engine refuses the same ones.
//!
//! The window state is not saved: opening the processor replays the source's
//! stored history through the same kernel, which rebuilds it exactly
//! (pending events included) and rewrites each key's latest row, so a crash
//! anywhere between the part and the online write loses nothing.
//!
//! Only one processor runs per project: it holds a lock file while open.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arrow::array::{Array, ArrayRef, Float64Array, RecordBatch, StringArray};
use serde_json::{Map, Value as Json, json};
use vigie_core::config::SourceKind;
use vigie_online::{LatestRow, OnlineStore};

use crate::engine::{self, Compiled, FeatureStore, format_micros};
use crate::error::{FeatureError, Result};
use crate::events::{DeadLetter, EventShape, LogCursor, to_batch};
use crate::window::{Output, Stream};

/// Events read per source and step.
pub const MICRO_BATCH: usize = 16_384;

fn storage(path: &Path, error: impl std::fmt::Display) -> FeatureError {
    FeatureError::storage(path)(error.to_string())
}

/// What one step (or a whole run) did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepSummary {
    /// Events read from the logs.
    pub events: u64,
    /// Events stored in the offline store.
    pub stored: u64,
    /// Events set aside as dead letters because they cannot be stored.
    pub dead_letters: u64,
    /// Stored events that a view's lateness rule refused (dead letters of that view).
    pub late: u64,
    /// Online rows written (latest row of a key of a view).
    pub updated: u64,
    /// Events held until the watermark passes them, over every view.
    pub waiting: u64,
}

impl StepSummary {
    fn add(&mut self, other: &StepSummary) {
        self.events += other.events;
        self.stored += other.stored;
        self.dead_letters += other.dead_letters;
        self.late += other.late;
        self.updated += other.updated;
        self.waiting = other.waiting;
    }
}

/// One view's incremental execution.
struct ViewRun {
    compiled: Compiled,
    stream: Stream,
    /// Row-level feature values of the events held by the stream, by arrival.
    pending: HashMap<u64, Map<String, Json>>,
}

/// What feeding rows to a view gave.
struct Fed {
    /// The latest released row of each key: key → (time, arrival, values).
    latest: HashMap<String, (i64, u64, Map<String, Json>)>,
    /// Arrival numbers the lateness rule refused.
    late: Vec<u64>,
}

impl ViewRun {
    /// Pushes evaluated rows (in arrival order) into the windows and collects what they release.
    fn feed(&mut self, evaluated: &RecordBatch) -> Result<Fed> {
        let events = engine::events(evaluated, self.compiled.specs.len())?;
        let features: Vec<(String, ArrayRef)> = self
            .compiled
            .columns
            .iter()
            .map(|name| {
                let values = evaluated.column_by_name(name).ok_or_else(|| {
                    FeatureError::InvalidData(format!("internal: feature column {name:?}"))
                })?;
                Ok((name.clone(), engine::feature_array(values)?))
            })
            .collect::<Result<_>>()?;
        let row_of: HashMap<u64, usize> =
            events.iter().enumerate().map(|(row, e)| (e.arrival, row)).collect();
        let mut late = Vec::new();
        let mut accepted = Vec::with_capacity(events.len());
        for event in events {
            let arrival = event.arrival;
            if self.stream.push(event) {
                accepted.push(arrival);
            } else {
                late.push(arrival);
            }
        }
        let row_values = |row: usize| {
            let mut values = Map::new();
            for (name, column) in &features {
                values.insert(name.clone(), cell(column.as_ref(), row));
            }
            values
        };
        let mut latest = HashMap::new();
        let mut released = HashSet::new();
        for (key, time, Output { arrival, values: aggregates }) in self.stream.release(false) {
            released.insert(arrival);
            let mut values = match row_of.get(&arrival) {
                Some(&row) => row_values(row),
                None => self.pending.remove(&arrival).unwrap_or_default(),
            };
            for (name, value) in self.compiled.aggregations.iter().zip(aggregates) {
                values.insert(name.clone(), number(value));
            }
            // Released in (time, arrival) order: the last row of a key is its latest.
            latest.insert(key, (time, arrival, values));
        }
        for arrival in accepted.into_iter().filter(|a| !released.contains(a)) {
            if let Some(&row) = row_of.get(&arrival) {
                self.pending.insert(arrival, row_values(row));
            }
        }
        Ok(Fed { latest, late })
    }
}

/// One source's incremental execution.
struct SourceRun {
    name: String,
    shape: EventShape,
    cursor: LogCursor,
    /// The log position stored in the offline store's state.
    consumed: u64,
    views: Vec<ViewRun>,
}

/// The stream processor of a project's HTTP sources.
pub struct StreamProcessor<'s> {
    store: &'s FeatureStore,
    online: OnlineStore,
    log_root: PathBuf,
    dead_dir: PathBuf,
    sources: Vec<SourceRun>,
    _lock: File,
}

/// A number as JSON (non-finite as null), as materialisation writes it.
fn number(value: f64) -> Json {
    serde_json::Number::from_f64(value).map_or(Json::Null, Json::Number)
}

/// One cell as JSON, as materialisation writes it.
fn cell(column: &dyn Array, row: usize) -> Json {
    if column.is_null(row) {
        return Json::Null;
    }
    if let Some(numbers) = column.as_any().downcast_ref::<Float64Array>() {
        return number(numbers.value(row));
    }
    if let Some(text) = column.as_any().downcast_ref::<StringArray>() {
        return Json::String(text.value(row).to_owned());
    }
    match arrow::util::display::array_value_to_string(column, row) {
        Ok(text) => Json::String(text),
        Err(_) => Json::Null,
    }
}

impl<'s> StreamProcessor<'s> {
    /// Opens the processor of `store`'s HTTP sources, whose logs are under `log_root` and
    /// dead letters go under `dead_dir`: takes the project's processor lock, then replays
    /// each source's stored history to rebuild the windows and the online rows.
    pub fn open(
        store: &'s FeatureStore,
        log_root: &Path,
        dead_dir: &Path,
        mut online: OnlineStore,
    ) -> Result<Self> {
        std::fs::create_dir_all(log_root).map_err(|e| storage(log_root, e))?;
        let lock_path = log_root.join(".processor.lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| storage(&lock_path, e))?;
        lock.try_lock().map_err(|_| FeatureError::Busy(lock_path.clone()))?;
        let config = store.config();
        let mut sources = Vec::new();
        for (name, shape) in EventShape::of(config)? {
            if config.sources.get(&name).is_none_or(|s| *s.kind.get_ref() != SourceKind::Http) {
                continue;
            }
            let state = store.offline().state(&name)?;
            let views = config
                .feature_views
                .iter()
                .filter(|(_, view)| view.source.get_ref() == &name)
                .map(|(view, _)| {
                    let compiled = store.compile(view)?;
                    let stream = Stream::new(&compiled.specs, compiled.lateness);
                    Ok(ViewRun { compiled, stream, pending: HashMap::new() })
                })
                .collect::<Result<Vec<_>>>()?;
            let mut run = SourceRun {
                cursor: LogCursor::new(log_root, &name, state.consumed),
                consumed: state.consumed,
                name,
                shape,
                views,
            };
            let history = store.offline().read_all(&store.offline().source_dir(&run.name))?;
            if let Some(first) = history.iter().find(|b| b.num_rows() > 0) {
                let schema = first.schema();
                for view in &mut run.views {
                    let evaluated =
                        store.evaluate(&view.compiled, schema.clone(), history.clone())?;
                    let fed = view.feed(&evaluated)?;
                    write_online(&mut online, &view.compiled.name, fed.latest)?;
                }
            }
            sources.push(run);
        }
        Ok(StreamProcessor {
            store,
            online,
            log_root: log_root.to_owned(),
            dead_dir: dead_dir.to_owned(),
            sources,
            _lock: lock,
        })
    }

    /// The HTTP sources processed.
    pub fn sources(&self) -> impl Iterator<Item = &str> {
        self.sources.iter().map(|s| s.name.as_str())
    }

    /// Processes up to `max` new events of each source.
    pub fn step(&mut self, max: usize) -> Result<StepSummary> {
        let mut total = StepSummary::default();
        for index in 0..self.sources.len() {
            match self.step_source(index, max) {
                Ok(summary) => total.add(&summary),
                Err(error) => {
                    // Read again from what is stored, so nothing read is skipped.
                    let source = &mut self.sources[index];
                    source.cursor = LogCursor::new(&self.log_root, &source.name, source.consumed);
                    return Err(error);
                }
            }
        }
        total.waiting = self.waiting();
        Ok(total)
    }

    /// Events held until the watermark passes them, over every view.
    pub fn waiting(&self) -> u64 {
        self.sources.iter().flat_map(|s| &s.views).map(|v| v.stream.waiting() as u64).sum()
    }

    fn step_source(&mut self, index: usize, max: usize) -> Result<StepSummary> {
        let store = self.store;
        let source = &mut self.sources[index];
        let events = source.cursor.read(max)?;
        let Some(&(last, _)) = events.last() else {
            return Ok(StepSummary::default());
        };
        let read = events.len() as u64;
        let schema = store.offline().source_schema(&source.name)?;
        let converted = to_batch(events, &source.shape, schema.as_deref())?;
        append_dead(&self.dead_dir, &source.name, None, &converted.dead)?;
        let stored = store.store_events(&source.name, &converted.batch, last + 1)?;
        source.consumed = last + 1;
        let mut summary = StepSummary {
            events: read,
            stored: converted.batch.num_rows() as u64,
            dead_letters: converted.dead.len() as u64,
            ..StepSummary::default()
        };
        if let Some(rows) = stored {
            let first_arrival = rows
                .column_by_name(engine::ARRIVAL)
                .and_then(|c| c.as_any().downcast_ref::<arrow::array::UInt64Array>())
                .map_or(0, |a| a.value(0));
            for view in &mut source.views {
                let evaluated =
                    store.evaluate(&view.compiled, rows.schema(), vec![rows.clone()])?;
                let fed = view.feed(&evaluated)?;
                summary.late += fed.late.len() as u64;
                let late: Vec<DeadLetter> = fed
                    .late
                    .iter()
                    .filter_map(|&arrival| {
                        let row = usize::try_from(arrival.checked_sub(first_arrival)?).ok()?;
                        let (sequence, event) = converted.sequences.get(row)?.clone();
                        let time = converted.times.get(row).copied().unwrap_or_default();
                        Some(DeadLetter {
                            sequence,
                            reason: format!(
                                "late: event time {} arrived after the view's watermark had passed it \
                                 (allowed lateness {} s)",
                                format_micros(time),
                                view.compiled.lateness / 1_000_000
                            ),
                            event,
                        })
                    })
                    .collect();
                append_dead(&self.dead_dir, &source.name, Some(&view.compiled.name), &late)?;
                summary.updated += write_online(&mut self.online, &view.compiled.name, fed.latest)?;
            }
        }
        source.cursor.prune(source.consumed)?;
        Ok(summary)
    }

    /// Steps until `stop` is set, waiting `poll` whenever the logs have nothing new; calls
    /// `report` after each step that read events. Returns the totals.
    pub fn run(
        &mut self,
        stop: &AtomicBool,
        poll: Duration,
        mut report: impl FnMut(&StepSummary),
    ) -> Result<StepSummary> {
        let mut total = StepSummary::default();
        while !stop.load(Ordering::Relaxed) {
            let step = self.step(MICRO_BATCH)?;
            if step.events == 0 {
                std::thread::sleep(poll);
                continue;
            }
            total.add(&step);
            report(&step);
        }
        Ok(total)
    }
}

/// Writes the latest rows of `view` into the online store; returns the keys updated.
fn write_online(
    online: &mut OnlineStore,
    view: &str,
    latest: HashMap<String, (i64, u64, Map<String, Json>)>,
) -> Result<u64> {
    if latest.is_empty() {
        return Ok(0);
    }
    let rows = latest.iter().map(|(key, (time, arrival, values))| LatestRow {
        key,
        time: *time,
        arrival: i64::try_from(*arrival).unwrap_or(i64::MAX),
        values: values.clone(),
    });
    Ok(online.write(view, rows)? as u64)
}

/// Appends dead letters of `source` (refused by `view`, when one did) to `DEAD/SOURCE.jsonl`.
fn append_dead(dir: &Path, source: &str, view: Option<&str>, dead: &[DeadLetter]) -> Result<()> {
    if dead.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|e| storage(dir, e))?;
    let path = dir.join(format!("{source}.jsonl"));
    let mut lines = Vec::new();
    for letter in dead {
        let record = json!({
            "sequence": letter.sequence,
            "view": view,
            "reason": letter.reason,
            "event": letter.event,
        });
        serde_json::to_writer(&mut lines, &record).map_err(|e| storage(&path, e))?;
        lines.push(b'\n');
    }
    let mut file =
        OpenOptions::new().create(true).append(true).open(&path).map_err(|e| storage(&path, e))?;
    file.write_all(&lines).and_then(|()| file.sync_data()).map_err(|e| storage(&path, e))
}
