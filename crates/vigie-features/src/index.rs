//! A view's rows ordered by entity key, then time and arrival, without
//! sorting them: what the point-in-time join searches and what
//! materialisation walks.
//!
//! The batch engine writes a view as one part per event day, each part's
//! rows sorted by key, time and arrival (the window kernel's output order).
//! Read back in day order, a key's rows therefore already come in time order,
//! so grouping the rows by key (a counting sort on interned key numbers,
//! linear in the rows, no comparison of texts) gives the whole order. A part
//! written otherwise is still read right: a key whose rows are found out of
//! order is sorted on its own.
//!
//! It does not read the offline store itself (`FeatureStore::view_index`
//! does) and holds only the columns it was given.

use std::collections::HashMap;

use arrow::array::{
    Array, ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray, UInt64Array,
    new_null_array,
};
use arrow::compute::interleave;

use crate::engine::{ARRIVAL, KEY, TIME};
use crate::error::{FeatureError, Result};

fn invalid(message: impl Into<String>) -> FeatureError {
    FeatureError::InvalidData(message.into())
}

/// Where one view row is: its batch and its row in that batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowAt {
    batch: u32,
    row: u32,
}

/// A view's rows grouped by entity key, each key's rows in `(time, arrival)` order.
#[derive(Debug)]
pub struct ViewIndex {
    batches: Vec<RecordBatch>,
    /// Key text → key number, numbered in order of first appearance. foldhash rather than
    /// SipHash: the keys come from the project's own offline store, and hashing them is
    /// most of the index's work.
    numbers: HashMap<String, u32, foldhash::fast::RandomState>,
    /// The rows of key number `k` are `order[starts[k]..starts[k + 1]]`.
    starts: Vec<usize>,
    /// Every row, grouped by key, each key's in `(time, arrival)` order.
    order: Vec<RowAt>,
    /// The event time of each row of `order`, in that order.
    times: Vec<i64>,
}

fn key_column(batch: &RecordBatch, index: usize) -> Result<&StringArray> {
    batch.column_by_name(KEY).and_then(|c| c.as_any().downcast_ref::<StringArray>()).ok_or_else(
        || invalid(format!("internal: view part {index} has no text key column {KEY:?}")),
    )
}

fn time_column(batch: &RecordBatch, index: usize) -> Result<&TimestampMicrosecondArray> {
    batch
        .column_by_name(TIME)
        .and_then(|c| c.as_any().downcast_ref::<TimestampMicrosecondArray>())
        .ok_or_else(|| invalid(format!("internal: view part {index} has no time column {TIME:?}")))
}

fn arrival_column(batch: &RecordBatch, index: usize) -> Result<&UInt64Array> {
    batch.column_by_name(ARRIVAL).and_then(|c| c.as_any().downcast_ref::<UInt64Array>()).ok_or_else(
        || invalid(format!("internal: view part {index} has no arrival column {ARRIVAL:?}")),
    )
}

impl ViewIndex {
    /// Indexes view rows read part by part in event-day order (`_key`, `_time` and
    /// `_arrival`, and whichever feature columns the caller will gather).
    pub fn new(batches: Vec<RecordBatch>) -> Result<Self> {
        let total: usize = batches.iter().map(RecordBatch::num_rows).sum();
        if u32::try_from(total).is_err() || u32::try_from(batches.len()).is_err() {
            return Err(invalid(format!("a view of {total} rows is more than this join reads")));
        }
        // Pass 1: each row's key number, and how many rows each key has.
        let mut numbers: HashMap<String, u32, _> = HashMap::default();
        let mut key_of_row: Vec<u32> = Vec::with_capacity(total);
        let mut counts: Vec<usize> = Vec::new();
        for (index, batch) in batches.iter().enumerate() {
            let keys = key_column(batch, index)?;
            let mut previous: Option<(&str, u32)> = None;
            for row in 0..keys.len() {
                let key = keys.value(row);
                // A part is sorted by key: a repeated key is usually the one just seen.
                let number = match previous {
                    Some((seen, number)) if seen == key => number,
                    _ => match numbers.get(key) {
                        Some(&number) => number,
                        None => {
                            let number = counts.len() as u32;
                            numbers.insert(key.to_owned(), number);
                            counts.push(0);
                            number
                        }
                    },
                };
                previous = Some((key, number));
                counts[number as usize] += 1;
                key_of_row.push(number);
            }
        }
        let mut starts = Vec::with_capacity(counts.len() + 1);
        let mut sum = 0;
        starts.push(0);
        for count in &counts {
            sum += count;
            starts.push(sum);
        }
        // Pass 2: place the rows, stably, so each key keeps the order it was read in. One
        // record per row, so each placement touches one place in memory.
        let mut next: Vec<usize> = starts[..counts.len()].to_vec();
        let mut placed = vec![(0i64, 0u64, RowAt { batch: 0, row: 0 }); total];
        let mut numbered = key_of_row.iter();
        for (index, batch) in batches.iter().enumerate() {
            let batch_times = time_column(batch, index)?.values();
            let batch_arrivals = arrival_column(batch, index)?.values();
            for (row, (&time, &arrival)) in batch_times.iter().zip(batch_arrivals).enumerate() {
                let Some(&number) = numbered.next() else { break };
                let slot = &mut next[number as usize];
                placed[*slot] = (time, arrival, RowAt { batch: index as u32, row: row as u32 });
                *slot += 1;
            }
        }
        drop(key_of_row);
        // Parts written in day order and sorted within keep each key in time order; any
        // key that is not is sorted alone.
        for pair in starts.windows(2) {
            let rows = &mut placed[pair[0]..pair[1]];
            if !rows.is_sorted_by_key(|&(time, arrival, _)| (time, arrival)) {
                rows.sort_unstable_by_key(|&(time, arrival, _)| (time, arrival));
            }
        }
        let times = placed.iter().map(|&(time, _, _)| time).collect();
        let order = placed.into_iter().map(|(_, _, at)| at).collect();
        Ok(ViewIndex { batches, numbers, starts, order, times })
    }

    /// Rows indexed.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Distinct keys.
    pub fn keys(&self) -> usize {
        self.numbers.len()
    }

    /// For each (key, time) of `keys` and `times`, the row of the same key with the latest
    /// `(time, arrival)` at or before that time, if any and if not older than `ttl`
    /// microseconds.
    pub fn as_of(&self, keys: &StringArray, times: &[i64], ttl: Option<i64>) -> Vec<Option<RowAt>> {
        // Each core searches a run of the rows.
        let rows = keys.len();
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        if threads <= 1 || rows < 65_536 {
            return self.as_of_rows(keys, times, ttl, 0..rows);
        }
        let run = rows.div_ceil(threads);
        std::thread::scope(|scope| {
            let searches: Vec<_> = (0..rows)
                .step_by(run)
                .map(|start| {
                    let range = start..(start + run).min(rows);
                    scope.spawn(move || self.as_of_rows(keys, times, ttl, range))
                })
                .collect();
            searches
                .into_iter()
                .flat_map(|search| {
                    search.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        })
    }

    /// [`ViewIndex::as_of`] for the rows `range`.
    fn as_of_rows(
        &self,
        keys: &StringArray,
        times: &[i64],
        ttl: Option<i64>,
        range: std::ops::Range<usize>,
    ) -> Vec<Option<RowAt>> {
        range
            .map(|row| {
                if keys.is_null(row) {
                    return None;
                }
                let &number = self.numbers.get(keys.value(row))?;
                let (lo, hi) = (self.starts[number as usize], self.starts[number as usize + 1]);
                let time = *times.get(row)?;
                let key_times = &self.times[lo..hi];
                // The number of the key's rows at or before `time`.
                let at_or_before = key_times.partition_point(|&t| t <= time);
                let found = at_or_before.checked_sub(1)?;
                if ttl.is_some_and(|ttl| time - key_times[found] > ttl) {
                    return None;
                }
                Some(self.order[lo + found])
            })
            .collect()
    }

    /// Column `name` at the rows `picks` (null where there is none).
    pub fn gather(&self, name: &str, picks: &[Option<RowAt>]) -> Result<Option<ArrayRef>> {
        let mut sources: Vec<&dyn Array> = Vec::with_capacity(self.batches.len() + 1);
        for batch in &self.batches {
            let Some(column) = batch.column_by_name(name) else { return Ok(None) };
            sources.push(column.as_ref());
        }
        let Some(first) = sources.first() else { return Ok(None) };
        // Rows with no pick read the one null of an extra source.
        let null = new_null_array(first.data_type(), 1);
        let missing = sources.len();
        sources.push(null.as_ref());
        let indices: Vec<(usize, usize)> = picks
            .iter()
            .map(|pick| pick.map_or((missing, 0), |at| (at.batch as usize, at.row as usize)))
            .collect();
        interleave(&sources, &indices).map(Some).map_err(|e| invalid(e.to_string()))
    }

    /// [`ViewIndex::gather`] of each of `names`, the columns shared among the cores.
    pub fn gather_columns(
        &self,
        names: &[&str],
        picks: &[Option<RowAt>],
    ) -> Result<Vec<Option<ArrayRef>>> {
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        if threads <= 1 || names.len() <= 1 {
            return names.iter().map(|name| self.gather(name, picks)).collect();
        }
        let run = names.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let gathers: Vec<_> = names
                .chunks(run)
                .map(|run| {
                    scope.spawn(move || {
                        run.iter().map(|name| self.gather(name, picks)).collect::<Result<Vec<_>>>()
                    })
                })
                .collect();
            let mut columns = Vec::with_capacity(names.len());
            for gather in gathers {
                columns.extend(
                    gather.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))?,
                );
            }
            Ok(columns)
        })
    }

    /// Every row, ordered by key text, then time and arrival.
    pub fn sorted_rows(&self) -> Result<RecordBatch> {
        let Some(first) = self.batches.first() else {
            return Err(invalid("internal: no view rows to sort"));
        };
        let schema = first.schema();
        let mut keys: Vec<(&str, u32)> =
            self.numbers.iter().map(|(key, &number)| (key.as_str(), number)).collect();
        keys.sort_unstable();
        let mut indices: Vec<(usize, usize)> = Vec::with_capacity(self.order.len());
        for (_, number) in keys {
            let (lo, hi) = (self.starts[number as usize], self.starts[number as usize + 1]);
            indices
                .extend(self.order[lo..hi].iter().map(|at| (at.batch as usize, at.row as usize)));
        }
        let columns = (0..schema.fields().len())
            .map(|column| {
                let sources: Vec<&dyn Array> =
                    self.batches.iter().map(|b| b.column(column).as_ref()).collect();
                interleave(&sources, &indices).map_err(|e| invalid(e.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        RecordBatch::try_new(schema, columns).map_err(|e| invalid(e.to_string()))
    }
}
