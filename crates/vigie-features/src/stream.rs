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
//! by the next step, before anything more is stored, so no event is read twice.
//!
//! A step that read a full micro-batch reads the next one on a second thread
//! (reading, JSON, checks and conversion to rows) while its own goes through
//! the views and the online store; the next step stores it. Nothing read
//! ahead is stored or committed until then, so a failed step, or a processor
//! dropped, simply reads it again from what is stored.
//!
//! Only one processor runs per project: it holds a lock file while open.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arrow::array::{
    Array, ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray, UInt64Array,
};
use arrow::datatypes::{DataType, SchemaRef};
use serde_json::{Value as Json, json};
use vigie_connectors::kafka::KafkaReader;
use vigie_core::ErrorCode;
use vigie_core::config::{Source, SourceKind, expand_env};
use vigie_online::{LatestRow, OnlineStore};

use crate::engine::{self, Compiled, EventRows, FeatureStore, PreparedPart, format_micros};
use crate::error::{FeatureError, Result};
use crate::events::{Converted, DeadLetter, EventShape, Incoming, LogCursor, lock_file, to_batch};
use crate::offline::SourceState;
use crate::online::cell;
use crate::window::{Cell, Stream};

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
    /// Row-level feature values (in column order) of the events held by the stream, by
    /// arrival; empty for a view without row-level features.
    pending: HashMap<u64, Vec<Json>>,
    /// Key number → its row in the latest rows being collected (`u32::MAX`: none); all
    /// `u32::MAX` between feeds.
    slots: Vec<u32>,
}

/// The latest row of each key of one view that a step computed, for the online store.
#[derive(Debug, Default)]
struct Latest {
    /// Feature names: row-level ones, then aggregations.
    names: Vec<String>,
    /// (key, time, arrival) of each row.
    rows: Vec<(String, i64, u64)>,
    /// Each row's values, one run of `names.len()` per row.
    values: Vec<Json>,
}

/// The latest rows of a feed as they are collected: by key number, each key's row replaced
/// by any later one (rows come in `(time, arrival)` order per key, provisional ones last).
struct Collect<'a> {
    slots: &'a mut Vec<u32>,
    /// Row-level features per row.
    columns: usize,
    /// Values per row: row-level features, then aggregations.
    width: usize,
    keys: Vec<u32>,
    rows: Vec<(i64, u64)>,
    values: Vec<Json>,
}

impl Collect<'_> {
    fn set(&mut self, key: u32, row: (i64, u64), features: &[Json], aggregates: &[f64]) {
        let features = features.iter().cloned().chain(std::iter::repeat(Json::Null));
        let values = features.take(self.columns).chain(aggregates.iter().map(|&v| number(v)));
        let slot = self.slots.get(key as usize).copied().unwrap_or(u32::MAX);
        if slot == u32::MAX {
            if let Some(slot) = self.slots.get_mut(key as usize) {
                *slot = u32::try_from(self.keys.len()).unwrap_or(u32::MAX);
            }
            self.keys.push(key);
            self.rows.push(row);
            self.values.extend(values);
            return;
        }
        let slot = slot as usize;
        if let Some(old) = self.rows.get_mut(slot) {
            *old = row;
        }
        if let Some(old) = self.values.get_mut(slot * self.width..(slot + 1) * self.width) {
            for (old, new) in old.iter_mut().zip(values) {
                *old = new;
            }
        }
    }

    /// The rows, keyed by text; the slots are cleared for the next feed.
    fn finish(self, stream: &Stream, names: Vec<String>) -> Latest {
        for &key in &self.keys {
            if let Some(slot) = self.slots.get_mut(key as usize) {
                *slot = u32::MAX;
            }
        }
        let rows = self
            .keys
            .iter()
            .zip(self.rows)
            .map(|(&key, (time, arrival))| (stream.key_name(key).to_owned(), time, arrival))
            .collect();
        Latest { names, rows, values: self.values }
    }
}

/// What feeding rows to a view gave.
struct Fed {
    /// The latest row of each key.
    latest: Latest,
    /// Arrival numbers the lateness rule refused.
    late: Vec<u64>,
}

impl ViewRun {
    fn new(compiled: Compiled) -> Self {
        let stream = Stream::new(&compiled.specs, compiled.lateness);
        ViewRun { compiled, stream, pending: HashMap::new(), slots: Vec::new() }
    }

    /// Pushes evaluated rows into the windows in arrival order and collects what they release.
    fn feed(&mut self, evaluated: &RecordBatch) -> Result<Fed> {
        let internal = |what: &str| FeatureError::InvalidData(format!("internal: {what}"));
        let keys = arrow::compute::cast(
            evaluated.column_by_name(engine::KEY).ok_or_else(|| internal("no key column"))?,
            &DataType::Utf8,
        )
        .map_err(|e| FeatureError::InvalidData(e.to_string()))?;
        let keys = keys.as_any().downcast_ref::<StringArray>().ok_or_else(|| internal("keys"))?;
        let times = evaluated
            .column_by_name(engine::TIME)
            .and_then(|c| c.as_any().downcast_ref::<TimestampMicrosecondArray>())
            .ok_or_else(|| internal("times"))?;
        let arrivals = evaluated
            .column_by_name(engine::ARRIVAL)
            .and_then(|c| c.as_any().downcast_ref::<UInt64Array>())
            .ok_or_else(|| internal("arrivals"))?;
        if let Some(row) = (0..keys.len()).find(|&i| keys.is_null(i)) {
            return Err(FeatureError::InvalidData(format!(
                "the entity key is empty on ingested row {}",
                arrivals.value(row) + 1
            )));
        }
        let inputs: Vec<Vec<Cell>> = (0..self.compiled.specs.len())
            .map(|idx| {
                evaluated
                    .column_by_name(&format!("_agg{idx}"))
                    .ok_or_else(|| internal("aggregation input"))
                    .and_then(engine::cells)
            })
            .collect::<Result<_>>()?;
        let features: Vec<ArrayRef> = self
            .compiled
            .columns
            .iter()
            .map(|name| {
                let values = evaluated
                    .column_by_name(name)
                    .ok_or_else(|| internal(&format!("feature column {name:?}")))?;
                engine::feature_array(values)
            })
            .collect::<Result<_>>()?;
        let row_values = |row: usize| -> Vec<Json> {
            features.iter().map(|column| cell(column.as_ref(), row)).collect()
        };
        // DataFusion does not keep row order: past its batch size (8192 rows) it splits the
        // input and runs the parts on several threads, so the second half of a micro-batch (or
        // of the history replayed on open) can come back first. The lateness rule must see
        // the events as they arrived, as the batch engine does (`window::batch` sorts them).
        let mut order: Vec<usize> = (0..evaluated.num_rows()).collect();
        if !arrivals.values().is_sorted() {
            order.sort_unstable_by_key(|&row| arrivals.value(row));
        }
        let has_features = !features.is_empty();
        let mut late = Vec::new();
        let mut accepted = Vec::new();
        let mut cells = vec![Cell::Missing; inputs.len()];
        for &row in &order {
            let key = self.stream.key_number(keys.value(row));
            for (slot, input) in cells.iter_mut().zip(&inputs) {
                *slot = input.get(row).copied().unwrap_or(Cell::Missing);
            }
            let arrival = arrivals.value(row);
            if self.stream.push_number(key, times.value(row), arrival, &cells) {
                if has_features {
                    accepted.push(row);
                }
            } else {
                late.push(arrival);
            }
        }
        let ViewRun { compiled, stream, pending, slots } = self;
        slots.resize(stream.key_count(), u32::MAX);
        let mut collect = Collect {
            slots,
            columns: compiled.columns.len(),
            width: compiled.columns.len() + compiled.aggregations.len(),
            keys: Vec::new(),
            rows: Vec::new(),
            values: Vec::new(),
        };
        // The row of an event of this micro-batch, by arrival (`order` is in arrival order).
        let row_of = |arrival: u64| {
            order
                .binary_search_by_key(&arrival, |&row| arrivals.value(row))
                .ok()
                .and_then(|at| order.get(at).copied())
        };
        let mut released_here = HashSet::new();
        stream.release_into(false, |key, time, arrival, aggregates| {
            if has_features {
                released_here.insert(arrival);
                let values = match row_of(arrival) {
                    Some(row) => row_values(row),
                    None => pending.remove(&arrival).unwrap_or_default(),
                };
                collect.set(key, (time, arrival), &values, aggregates);
            } else {
                // Released in (time, arrival) order: the last row of a key is its latest.
                collect.set(key, (time, arrival), &[], aggregates);
            }
        });
        for row in accepted {
            let arrival = arrivals.value(row);
            if !released_here.contains(&arrival) {
                pending.insert(arrival, row_values(row));
            }
        }
        // A key whose newest events wait for its watermark gets their provisional values:
        // what the batch engine computes over the events so far. The final values replace
        // them (same event, same time and arrival) once the watermark passes.
        let mut aggregates = vec![0.0; compiled.specs.len()];
        for &key in stream.holding_numbers() {
            if let Some((time, arrival)) = stream.preview_into(key, &mut aggregates) {
                let features = pending.get(&arrival).map_or(&[][..], Vec::as_slice);
                collect.set(key, (time, arrival), features, &aggregates);
            }
        }
        let names = compiled.columns.iter().chain(&compiled.aggregations).cloned().collect();
        Ok(Fed { latest: collect.finish(stream, names), late })
    }
}

/// One source's incremental execution.
struct SourceRun {
    name: String,
    shape: EventShape,
    input: Input,
    views: Vec<ViewRun>,
    /// The types of the source's stored columns, once a part is stored.
    schema: Option<SchemaRef>,
    /// A micro-batch read ahead (on the second thread), not stored yet.
    ahead: Option<ReadBatch>,
    /// Which events a view's lateness rule may refuse, so their bodies are kept.
    maybe_late: MaybeLate,
}

/// Events read from a source and turned into rows, not stored yet.
struct ReadBatch {
    /// Events read.
    read: u64,
    /// How far the source is read once they are stored.
    position: Position,
    /// Their rows and dead letters.
    converted: Converted,
    /// Their part, made ahead (on the reading thread) when the arrival it starts at was known.
    prepared: Option<PreparedPart>,
}

/// How far a source is read.
#[derive(Debug, Clone)]
enum Position {
    /// An event log: the next sequence number.
    Log(u64),
    /// A topic: the next offset of each partition.
    Kafka(BTreeMap<i32, i64>),
}

impl Position {
    /// Records it in a source's state.
    fn record(self, state: &mut SourceState) {
        match self {
            Position::Log(next) => state.consumed = next,
            Position::Kafka(partitions) => state.partitions = partitions,
        }
    }
}

/// Tells whether an event may be refused as late by one of its source's views, from the
/// latest event time seen before it: a view refuses an event older than its key's latest
/// time minus the allowed lateness, and no key's latest is past the source's. The events
/// that cannot be late need no body for a dead letter, and drop it early.
#[derive(Debug, Clone, Copy)]
struct MaybeLate {
    /// The latest event time read so far.
    newest: Option<i64>,
    /// The smallest allowed lateness of the source's views (`None`: no views).
    lateness: Option<i64>,
}

impl MaybeLate {
    /// Whether the next event, at `time`, may be late; it then counts as seen.
    fn check(&mut self, time: i64) -> bool {
        let maybe = match (self.newest, self.lateness) {
            (Some(newest), Some(lateness)) => time < newest.saturating_sub(lateness),
            _ => false,
        };
        self.newest = Some(self.newest.map_or(time, |newest| newest.max(time)));
        maybe
    }
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

    /// Up to `max` events after the last ones read, turned into rows typed as `schema`
    /// (the source's stored columns, if any), and into their part when its `first` arrival
    /// is known; `None` when there are none.
    fn read_batch(
        &mut self,
        name: &str,
        shape: &EventShape,
        schema: Option<&SchemaRef>,
        max: usize,
        maybe_late: &mut MaybeLate,
        first: Option<u64>,
    ) -> Result<Option<ReadBatch>> {
        let events = self.read(name, max)?;
        let Some(last) = events.last().map(|e| e.sequence) else { return Ok(None) };
        let position = match self {
            Input::Log { .. } => Position::Log(last + 1),
            Input::Kafka { reader, .. } => Position::Kafka(reader.positions().clone()),
        };
        let read = events.len() as u64;
        let converted =
            to_batch(events, shape, schema.map(AsRef::as_ref), &mut |time| maybe_late.check(time))?;
        let prepared = match first {
            Some(first) if converted.batch.num_rows() > 0 => {
                Some(event_rows(&converted, schema).prepare(name, first)?)
            }
            _ => None,
        };
        Ok(Some(ReadBatch { read, position, converted, prepared }))
    }

    /// After a store up to `position`: remembers what is stored, and tidies (prunes the
    /// log's stored segments, commits the topic's offsets). A failed commit is only reported.
    fn stored(&mut self, position: &Position) -> Result<Option<String>> {
        match (self, position) {
            (Input::Log { cursor, stored }, &Position::Log(next)) => {
                *stored = next;
                cursor.prune(next)?;
                Ok(None)
            }
            (Input::Kafka { reader, stored }, Position::Kafka(partitions)) => {
                stored.clone_from(partitions);
                Ok(reader.commit(stored).err().map(|e| e.to_string()))
            }
            _ => Err(FeatureError::InvalidData("internal: a position of another source".into())),
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
    dead: DeadLetters,
    sources: Vec<SourceRun>,
    _lock: File,
}

/// A number as JSON (non-finite as null), as materialisation writes it.
fn number(value: f64) -> Json {
    serde_json::Number::from_f64(value).map_or(Json::Null, Json::Number)
}

/// Takes the project's processor lock (under `log_root`), held while the returned file
/// is open: a second processor, or a change that needs none running (`vigie
/// materialize --refit`), is refused with [`FeatureError::Busy`].
pub fn processor_lock(log_root: &Path) -> Result<File> {
    lock_file(log_root, ".processor.lock", FeatureError::Busy)
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
        let mut dead = DeadLetters::new(dead_dir);
        let mut sources = Vec::new();
        for (name, shape) in EventShape::of(config)? {
            let Some(source) = config.sources.get(&name) else { continue };
            let state = store.offline().state(&name)?;
            let views = config
                .feature_views
                .iter()
                .filter(|(_, view)| view.source.get_ref() == &name)
                .map(|(view, _)| Ok(ViewRun::new(store.compile(view)?)))
                .collect::<Result<Vec<_>>>()?;
            let maybe_late = MaybeLate {
                newest: state.watermark,
                lateness: views.iter().map(|v| v.compiled.lateness).min(),
            };
            let mut run = SourceRun {
                input: Input::open(&name, source, log_root, &state)?,
                name,
                shape,
                views,
                schema: None,
                ahead: None,
                maybe_late,
            };
            let history = store.offline().read_source(&run.name)?;
            if let Some(first) = history.iter().find(|b| b.num_rows() > 0) {
                let schema = first.schema();
                run.schema = Some(schema.clone());
                for view in &mut run.views {
                    let evaluated =
                        store.evaluate(&view.compiled, schema.clone(), history.clone())?;
                    let fed = view.feed(&evaluated)?;
                    write_online(&mut online, &view.compiled.name, &fed.latest)?;
                    if let Some(last_part) = state.last_part {
                        let late = fed.late.iter().copied().filter(|&a| a >= last_part);
                        let event = |arrival| stored_event(&history, arrival);
                        dead.recover(&run.name, &view.compiled, late, event)?;
                    }
                }
            }
            sources.push(run);
        }
        Ok(StreamProcessor {
            store,
            online,
            unwritten: Vec::new(),
            log_root: log_root.to_owned(),
            dead,
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
        // Rows an earlier step could not write go first; nothing is stored until they are in.
        total.updated += write_unwritten(&mut self.online, &mut self.unwritten)?;
        for index in 0..self.sources.len() {
            match self.step_source(index, max) {
                Ok(summary) => total.add(&summary),
                Err(error) => {
                    let source = &mut self.sources[index];
                    source.ahead = None;
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

    /// Stores the next micro-batch of source `index` (read ahead by the last step, or read
    /// now), then, when it was a full one, reads the one after it on a second thread while
    /// this one goes through the views into the online store.
    fn step_source(&mut self, index: usize, max: usize) -> Result<StepSummary> {
        let store = self.store;
        let online = &mut self.online;
        let unwritten = &mut self.unwritten;
        let dead = &mut self.dead;
        let log_root = self.log_root.as_path();
        let Some(source) = self.sources.get_mut(index) else {
            return Ok(StepSummary::default());
        };
        if source.schema.is_none() {
            source.schema = store.offline().source_schema(&source.name)?;
        }
        let batch = match source.ahead.take() {
            Some(batch) => batch,
            None => {
                let read = source.input.read_batch(
                    &source.name,
                    &source.shape,
                    source.schema.as_ref(),
                    max,
                    &mut source.maybe_late,
                    None,
                )?;
                match read {
                    Some(batch) => batch,
                    None => return Ok(StepSummary::default()),
                }
            }
        };
        let ReadBatch { read, position, converted, prepared } = batch;
        dead.append(&source.name, None, &converted.dead)?;
        let stored = store.store_events(
            &source.name,
            &event_rows(&converted, source.schema.as_ref()),
            prepared,
            |state: &mut SourceState| position.clone().record(state),
        )?;
        // The arrival the next part starts at, so the reading thread can make it.
        let next_first = stored.as_ref().and_then(|rows| {
            let arrivals = rows.column_by_name(engine::ARRIVAL)?;
            let arrivals = arrivals.as_any().downcast_ref::<UInt64Array>()?;
            Some(arrivals.values().first()? + rows.num_rows() as u64)
        });
        if source.schema.is_none() {
            source.schema = store.offline().source_schema(&source.name)?;
        }
        let mut summary = StepSummary {
            events: read,
            stored: converted.batch.num_rows() as u64,
            dead_letters: converted.dead.len() as u64,
            ..StepSummary::default()
        };
        // The events are stored: whatever the views and the online store do, they are not
        // read again.
        summary.commit_error = source.input.stored(&position)?;

        let SourceRun { name, shape, input, views, schema, ahead, maybe_late } = source;
        let read_ahead = read >= max as u64;
        let (next, processed) = std::thread::scope(|scope| {
            let reader = read_ahead.then(|| {
                scope.spawn(|| {
                    input.read_batch(name, shape, schema.as_ref(), max, maybe_late, next_first)
                })
            });
            let processed = stored
                .map_or(Ok(0), |rows| {
                    feed_views(store, views, dead, name, &rows, &converted, unwritten)
                })
                .and_then(|late| Ok((late, write_unwritten(online, unwritten)?)));
            let next = reader.map(|reader| {
                reader.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            });
            (next, processed)
        });
        drop(converted);
        match next {
            Some(Ok(batch)) => *ahead = batch,
            // What was read ahead is read again by the next step, which reports the error.
            Some(Err(_)) => input.rewind(name, log_root)?,
            None => {}
        }
        let (late, updated) = processed?;
        summary.late = late;
        summary.updated = updated;
        Ok(summary)
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

/// The rows of converted events, typed as `schema` (the source's stored columns).
fn event_rows<'a>(converted: &'a Converted, schema: Option<&'a SchemaRef>) -> EventRows<'a> {
    EventRows { batch: &converted.batch, times: &converted.times, target: schema }
}

/// Runs stored `rows` of source `source` (converted from the events in `converted`) through
/// its `views`: each view's SQL, windows and lateness rule; late events become dead letters
/// of the view, the latest rows join `unwritten`. Returns how many events were late.
fn feed_views(
    store: &FeatureStore,
    views: &mut [ViewRun],
    dead: &mut DeadLetters,
    source: &str,
    rows: &RecordBatch,
    converted: &Converted,
    unwritten: &mut Vec<(String, Latest)>,
) -> Result<u64> {
    let first_arrival = rows
        .column_by_name(engine::ARRIVAL)
        .and_then(|c| c.as_any().downcast_ref::<UInt64Array>())
        .map_or(0, |a| a.value(0));
    let mut late_count = 0;
    for view in views {
        let evaluated = store.evaluate(&view.compiled, rows.schema(), vec![rows.clone()])?;
        let fed = view.feed(&evaluated)?;
        late_count += fed.late.len() as u64;
        let late: Vec<DeadLetter> = fed
            .late
            .iter()
            .filter_map(|&arrival| {
                let row = usize::try_from(arrival.checked_sub(first_arrival)?).ok()?;
                let (partition, sequence, event) = converted.sequences.get(row)?;
                let time = converted.times.get(row).copied().unwrap_or_default();
                Some(DeadLetter {
                    partition: *partition,
                    sequence: *sequence,
                    reason: late_reason(time, &view.compiled),
                    event: event.clone().unwrap_or(Json::Null),
                    arrival: Some(arrival),
                })
            })
            .collect();
        dead.append(source, Some(&view.compiled.name), &late)?;
        unwritten.push((view.compiled.name.clone(), fed.latest));
    }
    Ok(late_count)
}

/// The stored row of arrival number `arrival` in `history` (a source's stored parts): its
/// event time and its columns as a JSON object.
fn stored_event(history: &[RecordBatch], arrival: u64) -> Option<(i64, Json)> {
    history.iter().rev().find_map(|part| {
        let arrivals =
            part.column_by_name(engine::ARRIVAL)?.as_any().downcast_ref::<UInt64Array>()?;
        let first = *arrivals.values().first()?;
        let row = usize::try_from(arrival.checked_sub(first)?).ok()?;
        if row >= arrivals.len() || arrivals.value(row) != arrival {
            return None;
        }
        let times = part.column_by_name(engine::TIME)?;
        let time = times.as_any().downcast_ref::<TimestampMicrosecondArray>()?.value(row);
        let schema = part.schema();
        let body = schema
            .fields()
            .iter()
            .zip(part.columns())
            .filter(|(field, _)| !field.name().starts_with('_'))
            .map(|(field, column)| (field.name().clone(), cell(column.as_ref(), row)))
            .collect();
        Some((time, Json::Object(body)))
    })
}

/// Why a late event (at `time`, microseconds) became a dead letter of `view`.
fn late_reason(time: i64, view: &Compiled) -> String {
    format!(
        "late: event time {} arrived after the view's watermark had passed it (allowed \
         lateness {} s)",
        format_micros(time),
        view.lateness / 1_000_000
    )
}

/// Writes the rows waiting for the online store, oldest first; those it refuses wait on.
fn write_unwritten(online: &mut OnlineStore, unwritten: &mut Vec<(String, Latest)>) -> Result<u64> {
    let mut written = 0;
    while let Some((view, latest)) = unwritten.first() {
        written += write_online(online, view, latest)?;
        unwritten.remove(0);
    }
    Ok(written)
}

/// Writes the latest rows of `view` into the online store; returns the keys updated.
fn write_online(online: &mut OnlineStore, view: &str, latest: &Latest) -> Result<u64> {
    if latest.rows.is_empty() {
        return Ok(0);
    }
    let width = latest.names.len();
    let rows = latest.rows.iter().enumerate().map(|(index, (key, time, arrival))| {
        let values = latest.values.get(index * width..(index + 1) * width).unwrap_or_default();
        LatestRow {
            key,
            time: *time,
            arrival: i64::try_from(*arrival).unwrap_or(i64::MAX),
            values: latest.names.iter().cloned().zip(values.iter().cloned()).collect(),
        }
    });
    Ok(online.write(view, rows)? as u64)
}

/// The dead-letter files `DEAD/SOURCE.jsonl`, appended to at most once per letter: a
/// micro-batch read again after a crash or a retry (its events stored or not) gives the
/// same letters at the same positions, which are skipped.
struct DeadLetters {
    dir: PathBuf,
    /// Per source, once read from its file: what is written.
    written: HashMap<String, Written>,
}

/// The letters of a source's file.
#[derive(Default)]
struct Written {
    /// Per (view, partition), the highest sequence number. Positions only grow within a
    /// partition, in the order steps read them.
    sequences: HashMap<LetterKey, u64>,
    /// Per view, the highest arrival number of its late events. Stored events are numbered
    /// in the order steps store them.
    late: HashMap<String, u64>,
}

/// Whose letters are ordered together: (view, or none for the source's own checks; partition).
type LetterKey = (Option<String>, Option<i32>);

impl DeadLetters {
    fn new(dir: &Path) -> Self {
        DeadLetters { dir: dir.to_owned(), written: HashMap::new() }
    }

    /// What `source`'s file holds.
    fn read(path: &Path) -> Result<Written> {
        let mut written = Written::default();
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(written),
            Err(e) => return Err(storage(path, e)),
        };
        // A torn last line (a crash mid-append) is not a letter: it is cut, and written again.
        let complete = text.rfind('\n').map_or(0, |at| at + 1);
        if complete < text.len() {
            OpenOptions::new()
                .write(true)
                .open(path)
                .and_then(|file| file.set_len(complete as u64))
                .map_err(|e| storage(path, e))?;
        }
        for line in text[..complete].lines() {
            let Ok(record) = serde_json::from_str::<Json>(line) else { continue };
            let view = record["view"].as_str().map(str::to_owned);
            if let (Some(view), Some(arrival)) = (&view, record["arrival"].as_u64()) {
                let entry = written.late.entry(view.clone()).or_insert(arrival);
                *entry = (*entry).max(arrival);
            }
            // A letter recovered after a crash has no position.
            let Some(sequence) = record["sequence"].as_u64() else { continue };
            let partition = record["partition"].as_i64().and_then(|p| i32::try_from(p).ok());
            let entry = written.sequences.entry((view, partition)).or_insert(sequence);
            *entry = (*entry).max(sequence);
        }
        Ok(written)
    }

    /// What is written of `source`'s letters, read from its file the first time.
    fn written(&mut self, source: &str) -> Result<(PathBuf, &mut Written)> {
        let path = self.dir.join(format!("{source}.jsonl"));
        let written = match self.written.entry(source.to_owned()) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => entry.insert(Self::read(&path)?),
        };
        Ok((path, written))
    }

    /// Appends `lines` (JSON records, one per line) to `path`, durable on return.
    fn write(&self, path: &Path, lines: &[u8]) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(|e| storage(&self.dir, e))?;
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| storage(path, e))?;
        file.write_all(lines).and_then(|()| file.sync_data()).map_err(|e| storage(path, e))
    }

    /// Writes the letters of the late events `late` (arrival numbers) of `view`
    /// that its file lacks: a crash between storing a part and writing its letters leaves
    /// them out, and replaying the stored events on opening finds them again. `event` gives
    /// each one's stored row; its position in the log or topic is not kept, so the letter
    /// has none.
    fn recover(
        &mut self,
        source: &str,
        view: &Compiled,
        late: impl Iterator<Item = u64>,
        mut event: impl FnMut(u64) -> Option<(i64, Json)>,
    ) -> Result<u64> {
        let (path, written) = self.written(source)?;
        let after = written.late.get(&view.name).copied();
        let mut lines = Vec::new();
        let (mut highest, mut count) = (None, 0);
        for arrival in late.filter(|&a| after.is_none_or(|done| a > done)) {
            // A row not found is not dropped: its letter says so.
            let (reason, body) = match event(arrival) {
                Some((time, body)) => (late_reason(time, view), body),
                None => {
                    (format!("late: its stored row (arrival {arrival}) was not found"), Json::Null)
                }
            };
            let record = json!({
                "partition": null,
                "sequence": null,
                "arrival": arrival,
                "view": view.name,
                "reason": reason,
                "recovered": true,
                "event": body,
            });
            serde_json::to_writer(&mut lines, &record).map_err(|e| storage(&path, e))?;
            lines.push(b'\n');
            highest = highest.max(Some(arrival));
            count += 1;
        }
        let Some(highest) = highest else { return Ok(0) };
        self.write(&path, &lines)?;
        if let Some(written) = self.written.get_mut(source) {
            written.late.insert(view.name.clone(), highest);
        }
        Ok(count)
    }

    /// Appends the letters of `source` (refused by `view`, when one did) not written yet.
    fn append(&mut self, source: &str, view: Option<&str>, dead: &[DeadLetter]) -> Result<()> {
        if dead.is_empty() {
            return Ok(());
        }
        let (path, written) = self.written(source)?;
        let view_name = view.map(str::to_owned);
        let mut lines = Vec::new();
        let mut highest: Vec<(LetterKey, u64)> = Vec::new();
        for letter in dead {
            let key = (view_name.clone(), letter.partition);
            if written.sequences.get(&key).is_some_and(|&done| letter.sequence <= done) {
                continue;
            }
            let mut record = json!({
                "partition": letter.partition,
                "sequence": letter.sequence,
                "view": view,
                "reason": letter.reason,
                "event": letter.event,
            });
            if let Some(arrival) = letter.arrival {
                record["arrival"] = json!(arrival);
            }
            serde_json::to_writer(&mut lines, &record).map_err(|e| storage(&path, e))?;
            lines.push(b'\n');
            highest.push((key, letter.sequence));
        }
        if lines.is_empty() {
            return Ok(());
        }
        let late = dead.iter().filter_map(|letter| letter.arrival).max();
        self.write(&path, &lines)?;
        let Some(written) = self.written.get_mut(source) else { return Ok(()) };
        for (key, sequence) in highest {
            let entry = written.sequences.entry(key).or_insert(sequence);
            *entry = (*entry).max(sequence);
        }
        if let (Some(view), Some(late)) = (view_name, late) {
            let entry = written.late.entry(view).or_insert(late);
            *entry = (*entry).max(late);
        }
        Ok(())
    }
}

#[cfg(test)]
mod dead_letter_tests {
    use super::*;

    fn letter(partition: Option<i32>, sequence: u64) -> DeadLetter {
        DeadLetter {
            partition,
            sequence,
            reason: format!("bad {sequence}"),
            event: json!({"n": sequence}),
            arrival: None,
        }
    }

    fn lines(path: &Path) -> Vec<Json> {
        std::fs::read_to_string(path)
            .expect("file")
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect()
    }

    #[test]
    fn letters_given_again_after_a_restart_are_written_once() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("payments.jsonl");
        let mut dead = DeadLetters::new(dir.path());
        dead.append("payments", None, &[letter(None, 3), letter(None, 5)]).expect("append");
        dead.append("payments", Some("live"), &[letter(None, 4)]).expect("append");
        dead.append("payments", None, &[letter(Some(1), 2)]).expect("append");
        // The same micro-batch again in this process, then a torn line and a new process.
        dead.append("payments", None, &[letter(None, 5)]).expect("append");
        OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(b"{\"partition\": null, \"seq"))
            .expect("torn");
        let mut again = DeadLetters::new(dir.path());
        again
            .append("payments", None, &[letter(None, 3), letter(None, 5), letter(None, 6)])
            .expect("append");
        again
            .append("payments", Some("live"), &[letter(None, 4), letter(None, 7)])
            .expect("append");
        again.append("payments", None, &[letter(Some(1), 2), letter(Some(0), 2)]).expect("append");
        let written: Vec<(Json, Json, u64)> = lines(&path)
            .iter()
            .map(|r| {
                (r["view"].clone(), r["partition"].clone(), r["sequence"].as_u64().expect("n"))
            })
            .collect();
        let expected: Vec<(Json, Json, u64)> = vec![
            (Json::Null, Json::Null, 3),
            (Json::Null, Json::Null, 5),
            (json!("live"), Json::Null, 4),
            (Json::Null, json!(1), 2),
            (Json::Null, Json::Null, 6),
            (json!("live"), Json::Null, 7),
            (Json::Null, json!(0), 2),
        ];
        assert_eq!(written, expected);
    }
}
