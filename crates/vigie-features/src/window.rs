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

use std::collections::{HashMap, VecDeque};

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

    /// The value after pushing the events `held` (`(time, arrival)` in that order, no earlier
    /// than any event pushed so far; `cell(i)` is the input of the `i`th), without pushing
    /// them: the same operations as [`Running::push`] in the same order, so the same bits,
    /// on copies of the running sums.
    fn preview(&self, held: &[(i64, u64)], cell: impl Fn(usize) -> Cell) -> f64 {
        let Some(&(last, _)) = held.last() else { return self.value() };
        let stored = self.events.len();
        // The window's events as a push would see them: the stored ones, then the held ones.
        let event = |i: usize| match self.events.get(i) {
            Some(&stored_event) => stored_event,
            None => (held.get(i - stored).map_or(i64::MAX, |&(time, _)| time), cell(i - stored)),
        };
        let (mut count, mut sum, mut numbers) = (self.count, self.sum, self.numbers);
        let counts_distinct = matches!(self.spec.function, Function::DistinctCount);
        let mut distinct = self.distinct.len();
        // Occurrences added (+) or evicted (-) per value, over the stored ones.
        let mut changes: HashMap<u64, i64> = HashMap::new();
        let mut occurrences = |key: u64, change: i64, distinct: &mut usize| {
            let before = self.distinct.get(&key).map_or(0, |&n| i64::from(n));
            let delta = changes.entry(key).or_insert(0);
            let was = before + *delta;
            *delta += change;
            match (was, was + change) {
                (0, 1..) => *distinct += 1,
                (1.., 0) => *distinct -= 1,
                _ => {}
            }
        };
        let mut front = 0;
        for (index, &(time, _)) in held.iter().enumerate() {
            let start = time.saturating_sub(self.spec.window);
            while front < stored + index {
                let (old_time, old) = event(front);
                if old_time > start {
                    break;
                }
                front += 1;
                count -= 1;
                if let Some(x) = old.number() {
                    sum -= x;
                    numbers -= 1;
                    if numbers == 0 {
                        sum = 0.0;
                    }
                }
                if counts_distinct && let Some(key) = old.identity() {
                    occurrences(key, -1, &mut distinct);
                }
            }
            let input = cell(index);
            count += 1;
            if let Some(x) = input.number() {
                sum += x;
                numbers += 1;
            }
            if counts_distinct && let Some(key) = input.identity() {
                occurrences(key, 1, &mut distinct);
            }
        }
        match self.spec.function {
            Function::Count => count as f64,
            Function::Sum => sum,
            Function::Mean if numbers == 0 => f64::NAN,
            Function::Mean => sum / numbers as f64,
            Function::Min | Function::Max => {
                // The kept candidates are in time order, most extreme first: the first one
                // still in the window is the stored events' extreme. A held value at least as
                // extreme replaces it, as a push would pop it.
                let start = last.saturating_sub(self.spec.window);
                let mut best = self.extremes.iter().find(|&&(t, _)| t > start).map(|&(_, x)| x);
                for (index, &(time, _)) in held.iter().enumerate() {
                    let Some(x) = cell(index).number().filter(|_| time > start) else { continue };
                    let replaces = best.is_none_or(|kept| match self.spec.function {
                        Function::Min => kept >= x,
                        _ => kept <= x,
                    });
                    if replaces {
                        best = Some(x);
                    }
                }
                best.unwrap_or(f64::NAN)
            }
            Function::DistinctCount => distinct as f64,
        }
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

    /// Each aggregation's value, written into `out`, after the events `held` (`(time,
    /// arrival)`, in that order, none earlier than those pushed so far) with their cells
    /// `cells` (one run per event, one cell per aggregation), without pushing them.
    fn preview(&self, held: &[(i64, u64)], cells: &[Cell], out: &mut [f64]) {
        let width = self.running.len();
        for (index, (running, slot)) in self.running.iter().zip(out.iter_mut()).enumerate() {
            let cell =
                |event: usize| cells.get(event * width + index).copied().unwrap_or(Cell::Missing);
            *slot = running.preview(held, cell);
        }
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
    /// Accepted events not released yet, as `(time, arrival)`, in that order.
    held: Vec<(i64, u64)>,
    /// Their input cells: one run of `specs.len()` per held event, in the same order.
    held_cells: Vec<Cell>,
    state: WindowState,
    /// Whether the key is listed in `Stream::touched`.
    touched: bool,
}

/// The stream execution: events pushed one at a time as they arrive, held
/// until their key's watermark passes them, then aggregated per key. Gives
/// the same outputs as [`batch`] on the same arrivals.
///
/// Keys are numbered on first sight ([`Stream::key_number`]); the per-event
/// methods take the number, so an event costs one hash of its key and no
/// allocation once its key's buffers have grown.
#[derive(Debug)]
pub struct Stream {
    specs: Vec<WindowSpec>,
    lateness: i64,
    /// Key text → key number.
    numbers: HashMap<String, u32>,
    /// Key number → key text.
    names: Vec<String>,
    /// Key number → its part of the stream.
    keys: Vec<KeyStream>,
    /// Keys that got an event since the last release (only their watermarks moved).
    touched: Vec<u32>,
    /// Keys of the last release's touched ones still holding events.
    holding: Vec<u32>,
}

impl Stream {
    /// A stream of `specs` with `lateness` microseconds allowed.
    pub fn new(specs: &[WindowSpec], lateness: i64) -> Self {
        Stream {
            specs: specs.to_vec(),
            lateness,
            numbers: HashMap::new(),
            names: Vec::new(),
            keys: Vec::new(),
            touched: Vec::new(),
            holding: Vec::new(),
        }
    }

    /// The number of `key`, given on its first sight.
    pub fn key_number(&mut self, key: &str) -> u32 {
        if let Some(&number) = self.numbers.get(key) {
            return number;
        }
        let number = u32::try_from(self.names.len()).expect("fewer than 2^32 keys in one stream");
        self.numbers.insert(key.to_owned(), number);
        self.names.push(key.to_owned());
        self.keys.push(KeyStream {
            watermark: Watermark::new(self.lateness),
            held: Vec::new(),
            held_cells: Vec::new(),
            state: WindowState::new(&self.specs),
            touched: false,
        });
        number
    }

    /// How many keys the stream has numbered.
    pub fn key_count(&self) -> usize {
        self.names.len()
    }

    /// The text of key number `number` (empty for a number this stream never gave).
    pub fn key_name(&self, number: u32) -> &str {
        self.names.get(number as usize).map_or("", String::as_str)
    }

    /// Takes an arriving event; `false` when it is late (a dead letter).
    pub fn push(&mut self, event: Event) -> bool {
        let number = self.key_number(&event.key);
        self.push_number(number, event.time, event.arrival, &event.cells)
    }

    /// Takes an arriving event of key number `key` (from [`Stream::key_number`]) with one
    /// input cell per aggregation; `false` when it is late (a dead letter).
    pub fn push_number(&mut self, key: u32, time: i64, arrival: u64, cells: &[Cell]) -> bool {
        let width = self.specs.len();
        let Some(stream) = self.keys.get_mut(key as usize) else {
            debug_assert!(false, "key number {key} was not given by this stream");
            return false;
        };
        if !stream.watermark.accept(time) {
            return false;
        }
        // Events mostly arrive in time order: the place is found from the back.
        let mut at = stream.held.len();
        while at > 0 && stream.held[at - 1] > (time, arrival) {
            at -= 1;
        }
        stream.held.insert(at, (time, arrival));
        let padded = cells.iter().copied().chain(std::iter::repeat(Cell::Missing)).take(width);
        stream.held_cells.splice(at * width..at * width, padded);
        if !stream.touched {
            stream.touched = true;
            self.touched.push(key);
        }
        true
    }

    /// Aggregates the events their key's watermark has passed (all of them when
    /// `end`), returning `(key, time, output)`: per key in `(time, arrival)` order.
    pub fn release(&mut self, end: bool) -> Vec<(String, i64, Output)> {
        let mut out = Vec::new();
        let mut released = Vec::new();
        self.release_into(end, |key, time, arrival, values| {
            released.push((key, time, Output { arrival, values: values.to_vec() }));
        });
        for (key, time, output) in released {
            out.push((self.key_name(key).to_owned(), time, output));
        }
        out
    }

    /// Aggregates the events their key's watermark has passed (all of them when `end`),
    /// handing each to `released` as (key number, time, arrival, one value per
    /// aggregation): per key in `(time, arrival)` order.
    pub fn release_into(&mut self, end: bool, mut released: impl FnMut(u32, i64, u64, &[f64])) {
        let mut keys = std::mem::take(&mut self.touched);
        if end {
            keys = (0..self.keys.len()).filter_map(|k| u32::try_from(k).ok()).collect();
        }
        self.holding.clear();
        let width = self.specs.len();
        let mut values = vec![0.0; width];
        for &key in &keys {
            let Some(KeyStream { watermark, held, held_cells, state, touched }) =
                self.keys.get_mut(key as usize)
            else {
                continue;
            };
            *touched = false;
            let mark = if end { None } else { watermark.value() };
            let ready = held.partition_point(|&(time, _)| mark.is_none_or(|mark| time < mark));
            for (i, &(time, arrival)) in held[..ready].iter().enumerate() {
                let cells = held_cells.get(i * width..(i + 1) * width).unwrap_or_default();
                state.push(time, cells, &mut values);
                released(key, time, arrival, &values);
            }
            held.drain(..ready);
            held_cells.drain(..ready * width);
            if !held.is_empty() {
                self.holding.push(key);
            }
        }
        keys.clear();
        self.touched = keys;
    }

    /// The keys that got events before the last [`release`](Stream::release) and still
    /// hold some (their watermark has not passed their newest events).
    pub fn holding(&self) -> impl Iterator<Item = &str> {
        self.holding.iter().map(|&key| self.key_name(key))
    }

    /// The numbers of the keys [`Stream::holding`] lists.
    pub fn holding_numbers(&self) -> &[u32] {
        &self.holding
    }

    /// The values of `key`'s newest held event, computed as if its held events were all
    /// released now (the stream is unchanged): the provisional latest row, as the batch
    /// engine computes it over the events so far.
    pub fn preview(&self, key: &str) -> Option<(i64, Output)> {
        let &number = self.numbers.get(key)?;
        let mut values = vec![0.0; self.specs.len()];
        let (time, arrival) = self.preview_into(number, &mut values)?;
        Some((time, Output { arrival, values }))
    }

    /// [`Stream::preview`] of key number `key`, its values written into `values`: the
    /// newest held event's time and arrival, or `None` when the key holds none.
    pub fn preview_into(&self, key: u32, values: &mut [f64]) -> Option<(i64, u64)> {
        let stream = self.keys.get(key as usize)?;
        let &(time, arrival) = stream.held.last()?;
        stream.state.preview(&stream.held, &stream.held_cells, values);
        Some((time, arrival))
    }

    /// Events waiting for their key's watermark.
    pub fn waiting(&self) -> usize {
        self.keys.iter().map(|k| k.held.len()).sum()
    }
}
