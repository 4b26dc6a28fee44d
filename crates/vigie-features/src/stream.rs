//! The stream processor: events of the streaming sources, as they arrive,
//! into the offline store (so training sees them) and through the views'
//! windows into the online store (so serving sees them), with the same
//! compiled view and the same window kernel as the batch engine.
//!
//! One step reads a micro-batch from each HTTP source's [event log](crate::events)
//! and each Kafka source's topic (in a consumer group, through
//! `vigie_connectors::kafka`): the events that cannot be stored become dead letters
//! (`DEAD/SOURCE.jsonl`, with the reason); the others are stored as one part
//! of the source, numbered in arrival order, together with the log position
//! or partition offsets they reach (one state file, written after the part);
//! a topic's offsets are committed to the group only then, and messages
//! before the stored offsets are skipped when redelivered, so an event never
//! counts twice. Then each view runs
//! its SQL over the part, pushes the rows into its [`window::Stream`], and
//! writes the latest released row of each key to the online store. Events
//! the view's lateness rule refuses are dead letters too, and the batch
//! engine refuses the same ones.
//!
//! The window state is not saved: opening the processor replays the source's
//! stored history through the same kernel, which rebuilds it exactly
//! (pending events included) and rewrites each key's latest row, so a crash
//! anywhere between the part and the online write loses nothing. An online
//! store that fails (a MongoDB that is down) fails the step after the events
//! are stored: the rows it did not take wait in memory and are written first
//! by the next step, before anything more is read, so no event is read twice.
//!
//! Only one processor runs per project: it holds a lock file while open.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arrow::array::{Array, ArrayRef, Float64Array, RecordBatch, StringArray};
use serde_json::{Map, Value as Json, json};
use vigie_connectors::kafka::KafkaReader;
use vigie_core::ErrorCode;
use vigie_core::config::{Source, SourceKind, expand_env};
use vigie_online::{LatestRow, OnlineStore};

use crate::engine::{self, Compiled, FeatureStore, format_micros};
use crate::error::{FeatureError, Result};
use crate::events::{DeadLetter, EventShape, Incoming, LogCursor, to_batch};
use crate::offline::SourceState;
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
    /// Why the last commit of a topic's offsets failed, if it did (the stored offsets stay
    /// the authority; the next commit catches up).
    pub commit_error: Option<String>,
}

impl StepSummary {
    /// Adds the counts of `other` (its waiting count replaces this one's).
    pub fn add(&mut self, other: &StepSummary) {
        self.events += other.events;
        self.stored += other.stored;
        self.dead_letters += other.dead_letters;
        self.late += other.late;
        self.updated += other.updated;
        self.waiting = other.waiting;
        if other.commit_error.is_some() {
            self.commit_error.clone_from(&other.commit_error);
        }
    }
}

/// One view's incremental execution.
struct ViewRun {
    compiled: Compiled,
    stream: Stream,
    /// Row-level feature values of the events held by the stream, by arrival.
    pending: HashMap<u64, Map<String, Json>>,
}

/// The latest released row of each key: key → (time, arrival, values).
type Latest = HashMap<String, (i64, u64, Map<String, Json>)>;

/// What feeding rows to a view gave.
struct Fed {
    /// The latest released row of each key.
    latest: Latest,
    /// Arrival numbers the lateness rule refused.
    late: Vec<u64>,
}

impl ViewRun {
    /// Pushes evaluated rows into the windows in arrival order and collects what they release.
    fn feed(&mut self, evaluated: &RecordBatch) -> Result<Fed> {
        let mut events = engine::events(evaluated, self.compiled.specs.len())?;
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
        // DataFusion does not keep row order: past its batch size (8192 rows) it splits the
        // input and runs the parts on several threads, so the second half of a micro-batch (or
        // of the history replayed on open) can come back first. The lateness rule must see
        // the events as they arrived, as the batch engine does (`window::batch` sorts them).
        events.sort_by_key(|event| event.arrival);
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
        // A key whose newest events wait for its watermark gets their provisional values:
        // what the batch engine computes over the events so far. The final values replace
        // them (same event, same time and arrival) once the watermark passes.
        for key in self.stream.holding() {
            if let Some((time, Output { arrival, values: aggregates })) = self.stream.preview(key) {
                let mut values = self.pending.get(&arrival).cloned().unwrap_or_default();
                for (name, value) in self.compiled.aggregations.iter().zip(aggregates) {
                    values.insert(name.clone(), number(value));
                }
                latest.insert(key.to_owned(), (time, arrival, values));
            }
        }
        Ok(Fed { latest, late })
    }
}

/// One source's incremental execution.
struct SourceRun {
    name: String,
    shape: EventShape,
    input: Input,
    views: Vec<ViewRun>,
}

/// Where a source's events come from, and how far they are stored.
enum Input {
    /// An HTTP source's log; `stored` is the next sequence number not stored.
    Log { cursor: LogCursor, stored: u64 },
    /// A Kafka topic; `stored` is the next offset of each partition not stored.
    Kafka { reader: Box<KafkaReader>, stored: BTreeMap<i32, i64> },
}

/// How long a step waits for the first message of a topic.
const KAFKA_WAIT: Duration = Duration::from_millis(100);

impl Input {
    fn open(name: &str, source: &Source, log_root: &Path, state: &SourceState) -> Result<Input> {
        if *source.kind.get_ref() == SourceKind::Http {
            return Ok(Input::Log {
                cursor: LogCursor::new(log_root, name, state.consumed),
                stored: state.consumed,
            });
        }
        let text = |field: &Option<toml::Spanned<String>>, key: &str| {
            field.as_ref().map(|v| v.get_ref().clone()).ok_or_else(|| {
                FeatureError::InvalidData(format!("source {name:?}: a kafka source needs `{key}`"))
            })
        };
        let brokers = expand_env(&text(&source.brokers, "brokers")?)
            .map_err(|e| FeatureError::InvalidData(format!("source {name:?}: brokers: {e}")))?;
        let topic = text(&source.topic, "topic")?;
        let group =
            source.group.as_ref().map_or_else(|| format!("vigie-{name}"), |g| g.get_ref().clone());
        let reader = KafkaReader::open(&brokers, &topic, &group, state.partitions.clone())
            .map_err(|error| FeatureError::Source { name: name.to_owned(), error })?;
        Ok(Input::Kafka { reader: Box::new(reader), stored: state.partitions.clone() })
    }

    /// Up to `max` events after the last ones read.
    fn read(&mut self, name: &str, max: usize) -> Result<Vec<Incoming>> {
        match self {
            Input::Log { cursor, .. } => cursor.read(max),
            Input::Kafka { reader, .. } => Ok(reader
                .poll(max, KAFKA_WAIT)
                .map_err(|error| FeatureError::Source { name: name.to_owned(), error })?
                .into_iter()
                .map(|m| Incoming {
                    partition: Some(m.partition),
                    sequence: u64::try_from(m.offset).unwrap_or_default(),
                    event: m.event,
                })
                .collect()),
        }
    }

    /// Records in `state` how far the events read so far go.
    fn position(&self, last: u64) -> impl FnOnce(&mut SourceState) + use<> {
        let partitions = match self {
            Input::Kafka { reader, .. } => Some(reader.positions().clone()),
            Input::Log { .. } => None,
        };
        move |state: &mut SourceState| match partitions {
            Some(partitions) => state.partitions = partitions,
            None => state.consumed = last + 1,
        }
    }

    /// After a store: remembers what is stored, and tidies (prunes the log's stored
    /// segments, commits the topic's offsets). A failed commit is only reported.
    fn stored(&mut self, last: u64) -> Result<Option<String>> {
        match self {
            Input::Log { cursor, stored } => {
                *stored = last + 1;
                cursor.prune(*stored)?;
                Ok(None)
            }
            Input::Kafka { reader, stored } => {
                *stored = reader.positions().clone();
                Ok(reader.commit(stored).err().map(|e| e.to_string()))
            }
        }
    }

    /// Whether everything the source held when asked has been read.
    fn caught_up(&self, name: &str, read_nothing: bool) -> Result<bool> {
        match self {
            Input::Log { .. } => Ok(read_nothing),
            Input::Kafka { reader, .. } => reader
                .caught_up()
                .map_err(|error| FeatureError::Source { name: name.to_owned(), error }),
        }
    }

    /// After a failed step: reads again from what is stored, so nothing read is skipped.
    fn rewind(&mut self, name: &str, log_root: &Path) -> Result<()> {
        match self {
            Input::Log { cursor, stored } => {
                *cursor = LogCursor::new(log_root, name, *stored);
                Ok(())
            }
            Input::Kafka { reader, stored } => reader
                .rewind(stored.clone())
                .map_err(|error| FeatureError::Source { name: name.to_owned(), error }),
        }
    }
}

/// The stream processor of a project's streaming sources (HTTP and Kafka).
pub struct StreamProcessor<'s> {
    store: &'s FeatureStore,
    online: OnlineStore,
    /// Latest rows per view released by a step whose online write failed, in release order.
    unwritten: Vec<(String, Latest)>,
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

/// Takes the project's processor lock (under `log_root`), held while the returned file
/// is open: a second processor, or a change that needs none running (`vigie
/// materialize --refit`), is refused with [`FeatureError::Busy`].
pub fn processor_lock(log_root: &Path) -> Result<std::fs::File> {
    std::fs::create_dir_all(log_root).map_err(|e| storage(log_root, e))?;
    let lock_path = log_root.join(".processor.lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| storage(&lock_path, e))?;
    lock.try_lock().map_err(|_| FeatureError::Busy(lock_path.clone()))?;
    Ok(lock)
}

impl<'s> StreamProcessor<'s> {
    /// Opens the processor of `store`'s streaming sources (HTTP sources, whose logs are
    /// under `log_root`, and Kafka topics); dead letters go under `dead_dir`. Takes the
    /// project's processor lock, joins the topics' groups, then replays each source's stored
    /// history to rebuild the windows and the online rows.
    pub fn open(
        store: &'s FeatureStore,
        log_root: &Path,
        dead_dir: &Path,
        mut online: OnlineStore,
    ) -> Result<Self> {
        let lock = processor_lock(log_root)?;
        let config = store.config();
        let mut sources = Vec::new();
        for (name, shape) in EventShape::of(config)? {
            let Some(source) = config.sources.get(&name) else { continue };
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
                input: Input::open(&name, source, log_root, &state)?,
                name,
                shape,
                views,
            };
            let history = store.offline().read_source(&run.name)?;
            if let Some(first) = history.iter().find(|b| b.num_rows() > 0) {
                let schema = first.schema();
                for view in &mut run.views {
                    let evaluated =
                        store.evaluate(&view.compiled, schema.clone(), history.clone())?;
                    let fed = view.feed(&evaluated)?;
                    write_online(&mut online, &view.compiled.name, &fed.latest)?;
                }
            }
            sources.push(run);
        }
        Ok(StreamProcessor {
            store,
            online,
            unwritten: Vec::new(),
            log_root: log_root.to_owned(),
            dead_dir: dead_dir.to_owned(),
            sources,
            _lock: lock,
        })
    }

    /// The sources processed.
    pub fn sources(&self) -> impl Iterator<Item = &str> {
        self.sources.iter().map(|s| s.name.as_str())
    }

    /// Processes up to `max` new events of each source.
    pub fn step(&mut self, max: usize) -> Result<StepSummary> {
        let mut total = StepSummary::default();
        // Rows an earlier step could not write go first; nothing is read until they are in.
        total.updated += self.write_unwritten()?;
        for index in 0..self.sources.len() {
            match self.step_source(index, max) {
                Ok(summary) => total.add(&summary),
                Err(error) => {
                    let source = &mut self.sources[index];
                    source.input.rewind(&source.name, &self.log_root)?;
                    return Err(error);
                }
            }
        }
        total.waiting = self.waiting();
        Ok(total)
    }

    /// Steps until every source has been read up to where it stood when asked (the end of
    /// each log, each partition's high watermark); returns the totals.
    pub fn catch_up(&mut self, mut report: impl FnMut(&StepSummary)) -> Result<StepSummary> {
        let mut total = StepSummary::default();
        loop {
            let step = self.step(MICRO_BATCH)?;
            if step.events > 0 {
                total.add(&step);
                report(&step);
                continue;
            }
            let mut done = true;
            for source in &self.sources {
                done &= source.input.caught_up(&source.name, true)?;
            }
            if done {
                total.waiting = self.waiting();
                return Ok(total);
            }
        }
    }

    /// Events held until the watermark passes them, over every view.
    pub fn waiting(&self) -> u64 {
        self.sources.iter().flat_map(|s| &s.views).map(|v| v.stream.waiting() as u64).sum()
    }

    fn step_source(&mut self, index: usize, max: usize) -> Result<StepSummary> {
        let store = self.store;
        let source = &mut self.sources[index];
        let events = source.input.read(&source.name, max)?;
        let Some(last) = events.last().map(|e| e.sequence) else {
            return Ok(StepSummary::default());
        };
        let read = events.len() as u64;
        let schema = store.offline().source_schema(&source.name)?;
        let converted = to_batch(events, &source.shape, schema.as_deref())?;
        append_dead(&self.dead_dir, &source.name, None, &converted.dead)?;
        let stored =
            store.store_events(&source.name, &converted.batch, source.input.position(last))?;
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
                        let (partition, sequence, event) = converted.sequences.get(row)?.clone();
                        let time = converted.times.get(row).copied().unwrap_or_default();
                        Some(DeadLetter {
                            partition,
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
                self.unwritten.push((view.compiled.name.clone(), fed.latest));
            }
        }
        // The events are stored: whatever the online store does, they are not read again.
        summary.commit_error = source.input.stored(last)?;
        summary.updated += self.write_unwritten()?;
        Ok(summary)
    }

    /// Writes the rows waiting for the online store, oldest first; those it refuses wait on.
    fn write_unwritten(&mut self) -> Result<u64> {
        let mut written = 0;
        while let Some((view, latest)) = self.unwritten.first() {
            written += write_online(&mut self.online, view, latest)?;
            self.unwritten.remove(0);
        }
        Ok(written)
    }

    /// Steps until `stop` is set, waiting `poll` whenever the sources have nothing new.
    /// `report` hears of each step that read events, and of each failed step: a source or
    /// store that is unavailable (a broker away, a full disk) is retried after a pause, from
    /// what is stored; any other error ends the run.
    pub fn run(
        &mut self,
        stop: &AtomicBool,
        poll: Duration,
        mut report: impl FnMut(Progress<'_>),
    ) -> Result<StepSummary> {
        let mut total = StepSummary::default();
        while !stop.load(Ordering::Relaxed) {
            let step = match self.step(MICRO_BATCH) {
                Ok(step) => step,
                Err(error) if error.code() == ErrorCode::Unavailable => {
                    report(Progress::Retrying(&error));
                    for _ in 0..20 {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        std::thread::sleep(poll);
                    }
                    continue;
                }
                Err(error) => return Err(error),
            };
            if step.events == 0 {
                std::thread::sleep(poll);
                continue;
            }
            total.add(&step);
            report(Progress::Step(&step));
        }
        Ok(total)
    }
}

/// What [`StreamProcessor::run`] reports.
#[derive(Debug)]
pub enum Progress<'a> {
    /// A step that read events.
    Step(&'a StepSummary),
    /// A step failed on an unavailable source or store; it is tried again.
    Retrying(&'a FeatureError),
}

/// Writes the latest rows of `view` into the online store; returns the keys updated.
fn write_online(online: &mut OnlineStore, view: &str, latest: &Latest) -> Result<u64> {
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
            "partition": letter.partition,
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
