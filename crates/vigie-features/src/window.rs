//! Sliding-window aggregations per entity, and the lateness rule that decides
//! which events count: the one kernel that the batch engine (history, for
//! training) and the stream processor (events as they arrive, for serving)
//! both run, so the two agree bit for bit by construction.
//!
//! An event at time `t` gets, for each aggregation, the value over the
//! entity's accepted events in `(t - window, t]` processed before it, itself
//! included. Events are processed per entity in `(time, arrival)` order. An
//! event is accepted when its time is at least its entity's watermark at its
//! arrival (the latest time seen for that entity before it, minus the allowed
//! lateness); a later one is a dead letter in both executions. The watermark
//! is per entity so that a stream split into partitions by entity (Kafka's
//! keyed partitions, read interleaved) judges each entity's events in the
//! order they were produced.
//!
//! The stream holds an entity's accepted events until its watermark passes
//! them, so a late-but-allowed event still lands in order; meanwhile
//! [`Stream::preview`] gives the values of its newest held event as if no
//! earlier one were still to come, which is what the batch engine computes
//! over the events received so far.

use std::collections::{BinaryHeap, HashMap, VecDeque};

use vigie_core::config::Function;

/// One input cell of an aggregation: a number, or the hash of a text value
/// (only `count` and `distinct_count` read text).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell {
    /// A number (`NaN` is missing).
    Number(f64),
    /// A text value, by a stable 64-bit hash.
    Text(u64),
    /// No value.
    Missing,
}

impl Cell {
    fn number(self) -> Option<f64> {
        match self {
            Cell::Number(x) if !x.is_nan() => Some(x),
            _ => None,
        }
    }

    fn identity(self) -> Option<u64> {
        match self {
            Cell::Number(x) if !x.is_nan() => Some(x.to_bits()),
            Cell::Text(hash) => Some(hash),
            _ => None,
        }
    }
}

/// A stable 64-bit hash of a text (FNV-1a): the same on every machine and release.
pub fn text_hash(text: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// What one aggregation computes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowSpec {
    /// The function.
    pub function: Function,
    /// The window's length in microseconds.
    pub window: i64,
}

/// The running state of one aggregation for one entity.
#[derive(Debug, Clone)]
struct Running {
    spec: WindowSpec,
    /// Events in the window: time and input.
    events: VecDeque<(i64, Cell)>,
    count: u64,
    /// Sum and count of the numbers in the window (mean, sum).
    sum: f64,
    numbers: u64,
    /// Candidates for min or max, most extreme first.
    extremes: VecDeque<(i64, f64)>,
    /// Occurrences of each value in the window (distinct count).
    distinct: HashMap<u64, u32>,
}

impl Running {
    fn new(spec: WindowSpec) -> Self {
        Running {
            spec,
            events: VecDeque::new(),
            count: 0,
            sum: 0.0,
            numbers: 0,
            extremes: VecDeque::new(),
            distinct: HashMap::new(),
        }
    }

    fn push(&mut self, time: i64, cell: Cell) -> f64 {
        let start = time.saturating_sub(self.spec.window);
        while let Some(&(old_time, old)) = self.events.front() {
            if old_time > start {
                break;
            }
            self.events.pop_front();
            self.count -= 1;
            if let Some(x) = old.number() {
                self.sum -= x;
                self.numbers -= 1;
                // An empty window restarts from an exact zero, so rounding cannot drift forever.
                if self.numbers == 0 {
                    self.sum = 0.0;
                }
            }
            if let Some(key) = old.identity()
                && let Some(n) = self.distinct.get_mut(&key)
            {
                *n -= 1;
                if *n == 0 {
                    self.distinct.remove(&key);
                }
            }
        }
        while self.extremes.front().is_some_and(|&(t, _)| t <= start) {
            self.extremes.pop_front();
        }
        self.events.push_back((time, cell));
        self.count += 1;
        if let Some(x) = cell.number() {
            self.sum += x;
            self.numbers += 1;
            let dominated = |kept: f64| match self.spec.function {
                Function::Min => kept >= x,
                _ => kept <= x,
            };
            while self.extremes.back().is_some_and(|&(_, kept)| dominated(kept)) {
                self.extremes.pop_back();
            }
            self.extremes.push_back((time, x));
        }
        if matches!(self.spec.function, Function::DistinctCount)
            && let Some(key) = cell.identity()
        {
            *self.distinct.entry(key).or_insert(0) += 1;
        }
        self.value()
    }

    fn value(&self) -> f64 {
        match self.spec.function {
            Function::Count => self.count as f64,
            Function::Sum => self.sum,
            Function::Mean if self.numbers == 0 => f64::NAN,
            Function::Mean => self.sum / self.numbers as f64,
            Function::Min | Function::Max => self.extremes.front().map_or(f64::NAN, |&(_, x)| x),
            Function::DistinctCount => self.distinct.len() as f64,
        }
    }
}

/// The aggregations of one entity.
#[derive(Debug, Clone)]
pub struct WindowState {
    running: Vec<Running>,
}

impl WindowState {
    /// Empty windows for `specs`.
    pub fn new(specs: &[WindowSpec]) -> Self {
        WindowState { running: specs.iter().map(|&spec| Running::new(spec)).collect() }
    }

    /// Adds the event at `time` with one input cell per aggregation, writing
    /// each aggregation's value over its window into `out`.
    pub fn push(&mut self, time: i64, cells: &[Cell], out: &mut [f64]) {
        for ((running, &cell), slot) in self.running.iter_mut().zip(cells).zip(out.iter_mut()) {
            *slot = running.push(time, cell);
        }
    }
}

/// Decides which events of one key count, in arrival order: an event is late
/// when its time is before the latest time seen so far minus the allowed lateness.
#[derive(Debug, Clone, Copy)]
pub struct Watermark {
    lateness: i64,
    latest: Option<i64>,
}

impl Watermark {
    /// No event seen yet.
    pub fn new(lateness: i64) -> Self {
        Watermark { lateness, latest: None }
    }

    /// The time before which an arriving event is late.
    pub fn value(&self) -> Option<i64> {
        self.latest.map(|t| t.saturating_sub(self.lateness))
    }

    /// Records an arriving event; `false` when it is late (a dead letter).
    pub fn accept(&mut self, time: i64) -> bool {
        if self.value().is_some_and(|mark| time < mark) {
            return false;
        }
        self.latest = Some(self.latest.map_or(time, |t| t.max(time)));
        true
    }
}

/// Holds accepted events until the watermark passes them, then releases them
/// in `(time, arrival)` order: the stream processor's reordering buffer.
#[derive(Debug)]
pub struct Reorder<T> {
    heap: BinaryHeap<Pending<T>>,
}

#[derive(Debug)]
struct Pending<T> {
    time: i64,
    arrival: u64,
    item: T,
}

impl<T> PartialEq for Pending<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.time, self.arrival) == (other.time, other.arrival)
    }
}
impl<T> Eq for Pending<T> {}
impl<T> PartialOrd for Pending<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Pending<T> {
    // Reversed: the heap pops the earliest first.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.time, other.arrival).cmp(&(self.time, self.arrival))
    }
}

impl<T> Default for Reorder<T> {
    fn default() -> Self {
        Reorder { heap: BinaryHeap::new() }
    }
}

impl<T> Reorder<T> {
    /// Holds an accepted event.
    pub fn hold(&mut self, time: i64, arrival: u64, item: T) {
        self.heap.push(Pending { time, arrival, item });
    }

    /// Events no later event can precede any more: time before `watermark`
    /// (everything when `None`, at the end of a finite stream).
    pub fn release(&mut self, watermark: Option<i64>) -> Vec<(i64, T)> {
        let mut out = Vec::new();
        while self.heap.peek().is_some_and(|p| watermark.is_none_or(|mark| p.time < mark)) {
            if let Some(pending) = self.heap.pop() {
                out.push((pending.time, pending.item));
            }
        }
        out
    }

    /// The events held, in no particular order: `(time, arrival, item)`.
    pub fn iter(&self) -> impl Iterator<Item = (i64, u64, &T)> {
        self.heap.iter().map(|p| (p.time, p.arrival, &p.item))
    }

    /// Events held.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

/// One event as the window kernel sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The entity key.
    pub key: String,
    /// Event time, microseconds.
    pub time: i64,
    /// Arrival number: the order the events reached Vigie.
    pub arrival: u64,
    /// One input cell per aggregation.
    pub cells: Vec<Cell>,
}

/// One computed feature row: which event, and its aggregations.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// The event's arrival number.
    pub arrival: u64,
    /// One value per aggregation.
    pub values: Vec<f64>,
}

/// The batch execution over a history: lateness decided in arrival order per
/// key, then each key's accepted events in `(time, arrival)` order. Returns the
/// outputs sorted by key, time and arrival, and the arrival numbers of the
/// late events.
pub fn batch(events: &[Event], specs: &[WindowSpec], lateness: i64) -> (Vec<Output>, Vec<u64>) {
    let mut by_arrival: Vec<&Event> = events.iter().collect();
    by_arrival.sort_by_key(|e| e.arrival);
    let mut marks: HashMap<&str, Watermark> = HashMap::new();
    let mut late = Vec::new();
    let mut accepted: Vec<&Event> = Vec::with_capacity(events.len());
    for event in by_arrival {
        let mark = marks.entry(event.key.as_str()).or_insert_with(|| Watermark::new(lateness));
        if mark.accept(event.time) {
            accepted.push(event);
        } else {
            late.push(event.arrival);
        }
    }
    accepted.sort_by(|a, b| (&a.key, a.time, a.arrival).cmp(&(&b.key, b.time, b.arrival)));
    let mut outputs = Vec::with_capacity(accepted.len());
    let mut current: Option<(&str, WindowState)> = None;
    for event in accepted {
        if current.as_ref().is_none_or(|(key, _)| *key != event.key) {
            current = Some((event.key.as_str(), WindowState::new(specs)));
        }
        if let Some((_, state)) = current.as_mut() {
            let mut values = vec![0.0; specs.len()];
            state.push(event.time, &event.cells, &mut values);
            outputs.push(Output { arrival: event.arrival, values });
        }
    }
    (outputs, late)
}

/// One key's part of the stream: its watermark, its held events and its windows.
#[derive(Debug)]
struct KeyStream {
    watermark: Watermark,
    pending: Reorder<(u64, Vec<Cell>)>,
    state: WindowState,
}

/// The stream execution: events pushed one at a time as they arrive, held
/// until their key's watermark passes them, then aggregated per key. Gives
/// the same outputs as [`batch`] on the same arrivals.
#[derive(Debug)]
pub struct Stream {
    specs: Vec<WindowSpec>,
    lateness: i64,
    keys: HashMap<String, KeyStream>,
    /// Keys that got an event since the last release (only their watermarks moved).
    touched: Vec<String>,
    /// Keys of the last release's touched ones still holding events.
    holding: Vec<String>,
}

impl Stream {
    /// A stream of `specs` with `lateness` microseconds allowed.
    pub fn new(specs: &[WindowSpec], lateness: i64) -> Self {
        Stream {
            specs: specs.to_vec(),
            lateness,
            keys: HashMap::new(),
            touched: Vec::new(),
            holding: Vec::new(),
        }
    }

    /// Takes an arriving event; `false` when it is late (a dead letter).
    pub fn push(&mut self, event: Event) -> bool {
        let (specs, lateness) = (&self.specs, self.lateness);
        let key = self.keys.entry(event.key.clone()).or_insert_with(|| KeyStream {
            watermark: Watermark::new(lateness),
            pending: Reorder::default(),
            state: WindowState::new(specs),
        });
        if !key.watermark.accept(event.time) {
            return false;
        }
        self.touched.push(event.key.clone());
        key.pending.hold(event.time, event.arrival, (event.arrival, event.cells));
        true
    }

    /// Aggregates the events their key's watermark has passed (all of them when
    /// `end`), returning `(key, time, output)`: per key in `(time, arrival)` order.
    pub fn release(&mut self, end: bool) -> Vec<(String, i64, Output)> {
        let mut keys: Vec<String> = if end {
            self.keys.keys().cloned().collect()
        } else {
            std::mem::take(&mut self.touched)
        };
        keys.sort_unstable();
        keys.dedup();
        self.holding.clear();
        let mut out = Vec::new();
        for name in keys {
            let Some(key) = self.keys.get_mut(&name) else { continue };
            let mark = if end { None } else { key.watermark.value() };
            for (time, (arrival, cells)) in key.pending.release(mark) {
                let mut values = vec![0.0; self.specs.len()];
                key.state.push(time, &cells, &mut values);
                out.push((name.clone(), time, Output { arrival, values }));
            }
            if !key.pending.is_empty() {
                self.holding.push(name);
            }
        }
        if end {
            self.touched.clear();
        }
        out
    }

    /// The keys that got events before the last [`release`](Stream::release) and still
    /// hold some (their watermark has not passed their newest events).
    pub fn holding(&self) -> impl Iterator<Item = &str> {
        self.holding.iter().map(String::as_str)
    }

    /// The values of `key`'s newest held event, computed as if its held events were all
    /// released now (a copy of its windows takes them; the stream is unchanged): the
    /// provisional latest row, as the batch engine computes it over the events so far.
    pub fn preview(&self, key: &str) -> Option<(i64, Output)> {
        let held = self.keys.get(key)?;
        let mut pending: Vec<(i64, u64, &Vec<Cell>)> =
            held.pending.iter().map(|(time, arrival, (_, cells))| (time, arrival, cells)).collect();
        pending.sort_by_key(|&(time, arrival, _)| (time, arrival));
        let mut state = held.state.clone();
        let mut last = None;
        for (time, arrival, cells) in pending {
            let mut values = vec![0.0; self.specs.len()];
            state.push(time, cells, &mut values);
            last = Some((time, Output { arrival, values }));
        }
        last
    }

    /// Events waiting for their key's watermark.
    pub fn waiting(&self) -> usize {
        self.keys.values().map(|k| k.pending.len()).sum()
    }
}
