//! Out-of-bag predictions, summed while trees train in parallel.
//!
//! Each tree adds its prediction for the rows its bootstrap did not draw.
//! Trees finish in an order that depends on the thread count, and float sums
//! depend on their order, so values are added as 32.32 fixed-point integers:
//! integer addition is exact and commutative, so the result is the same bits
//! on any number of threads. Predictions are first mapped onto `[0, 1]` (they
//! already are probabilities for classification; regression means lie within
//! the target's range), which keeps the rounding error below `2^-33` of that
//! range.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// One unit in fixed point: `2^32`.
const FIXED_ONE: f64 = 4_294_967_296.0;

/// Per row and output, the sum of out-of-bag tree predictions, and per row their count.
#[derive(Debug)]
pub(super) struct OobAccumulator {
    n_outputs: usize,
    /// Predictions are stored as `(value - low) / span`.
    low: f64,
    span: f64,
    sums: Vec<AtomicU64>,
    votes: Vec<AtomicU32>,
}

impl OobAccumulator {
    /// An empty accumulator for `n_rows` rows whose predictions lie in `low..=low + span`.
    pub fn new(n_rows: usize, n_outputs: usize, low: f64, span: f64) -> Self {
        OobAccumulator {
            n_outputs,
            low,
            span,
            sums: (0..n_rows * n_outputs).map(|_| AtomicU64::new(0)).collect(),
            votes: (0..n_rows).map(|_| AtomicU32::new(0)).collect(),
        }
    }

    /// Adds one tree's prediction for `row`, given as its leaf's `[weight, S_0 .. S_k]`
    /// (one channel per output).
    pub fn add(&self, row: usize, leaf_sums: &[f64]) {
        let weight = leaf_sums[0];
        for (output, channel_sum) in leaf_sums[1..].iter().take(self.n_outputs).enumerate() {
            let mean = if weight > 0.0 { channel_sum / weight } else { self.low };
            let unit =
                if self.span > 0.0 { ((mean - self.low) / self.span).clamp(0.0, 1.0) } else { 0.0 };
            // At most 2^32 per tree and a million trees: far below u64::MAX.
            self.sums[row * self.n_outputs + output]
                .fetch_add((unit * FIXED_ONE).round() as u64, Ordering::Relaxed);
        }
        self.votes[row].fetch_add(1, Ordering::Relaxed);
    }

    /// Per row, `n_outputs` averaged predictions; `NaN` for rows no tree left out.
    pub fn finish(self) -> Vec<f64> {
        let votes: Vec<u32> = self.votes.into_iter().map(AtomicU32::into_inner).collect();
        self.sums
            .into_iter()
            .enumerate()
            .map(|(idx, sum)| {
                let votes = votes[idx / self.n_outputs];
                if votes == 0 {
                    return f64::NAN;
                }
                self.low + self.span * (sum.into_inner() as f64 / f64::from(votes) / FIXED_ONE)
            })
            .collect()
    }
}
