//! Quantile binning of the training matrix, done once for the whole forest.
//!
//! Split search may read a feature's `u8` bin codes instead of its floats and
//! build a small histogram per node. A numeric feature's bins are delimited
//! by `edges`, real feature values chosen so that `x < edges[b]` holds exactly
//! for the values of bins `0..=b`, so a cut between bins saved as a threshold
//! routes raw floats as training routed codes, for training rows and new rows
//! alike. The raw values are kept beside the codes, column after column, for
//! exact splits and for partitioning. This module neither samples rows for
//! trees nor grows them.

use rayon::prelude::*;

use crate::matrix::{FeatureInfo, Matrix};
use crate::rng::Rng;

/// The code of a missing value (`NaN`), kept apart from every real bin.
pub(super) const MISSING_BIN: u8 = u8::MAX;

/// At most this many rows are sorted to place a feature's edges (LightGBM's
/// `bin_construct_sample_cnt` default); rows outside the sample are still
/// binned exactly, by the edges.
const EDGE_SAMPLE_ROWS: usize = 200_000;

/// How a feature's values map to bins.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum BinKind {
    /// Ordered bins separated by `edges` (strictly increasing, one fewer than the bins).
    Numeric {
        /// `edges[b]` separates bin `b` from bin `b + 1`.
        edges: Vec<f32>,
    },
    /// Code `c` sits in bin `c` for `c < n_categories`; any other non-missing
    /// value (negative, fractional, too large) sits in bin `n_categories`, which
    /// a categorical split never sends left, as prediction does.
    Categorical {
        /// The number of known category codes.
        n_categories: u32,
    },
}

/// One feature's binning.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct FeatureBins {
    /// How values map to bins.
    pub kind: BinKind,
    /// Number of non-missing bins (codes `0..n_bins`), at least 1.
    pub n_bins: usize,
    /// Whether any training value is missing.
    pub has_missing: bool,
    /// Whether every distinct training value has a bin of its own, so that
    /// codes lose nothing (always true of categories).
    pub exact: bool,
}

impl FeatureBins {
    /// The threshold sending bins `0..=bin` left: `edges[bin]` of a numeric feature.
    pub fn edge_after(&self, bin: usize) -> f32 {
        match &self.kind {
            BinKind::Numeric { edges } => edges.get(bin).copied().unwrap_or(f32::INFINITY),
            BinKind::Categorical { .. } => f32::INFINITY,
        }
    }
}

/// The training matrix column after column, as bin codes and as raw values.
#[derive(Debug, Clone)]
pub(super) struct BinnedMatrix {
    /// Number of rows.
    pub n_rows: usize,
    /// Per feature, how its values were binned.
    pub features: Vec<FeatureBins>,
    /// `n_features * n_rows` codes, feature-major, so one feature's codes are contiguous.
    codes: Vec<u8>,
    /// The raw values in the same layout, for exact splits of small nodes.
    values: Vec<f32>,
}

impl BinnedMatrix {
    /// Bins every column of `x`; `max_bins` (2..=255) bounds the non-missing bins per feature.
    pub fn build(
        x: &Matrix,
        infos: &[FeatureInfo],
        max_bins: usize,
        rng: &mut Rng,
    ) -> BinnedMatrix {
        let n_rows = x.n_rows;
        let sample = edge_sample(n_rows, rng);
        let column_len = n_rows.max(1);
        let mut codes = vec![0u8; n_rows * x.n_cols];
        let mut values = vec![0f32; n_rows * x.n_cols];
        let features: Vec<FeatureBins> = codes
            .par_chunks_mut(column_len)
            .zip(values.par_chunks_mut(column_len))
            .enumerate()
            .map(|(feature, (codes, values))| {
                for (row, value) in values.iter_mut().enumerate() {
                    *value = x.values.get(row * x.n_cols + feature).copied().unwrap_or(f32::NAN);
                }
                let n_categories = infos.get(feature).and_then(|info| info.categories);
                bin_column(values, n_categories, max_bins, sample.as_deref(), codes)
            })
            .collect();
        BinnedMatrix { n_rows, features, codes, values }
    }

    /// The codes of feature `feature`, one per row.
    #[inline]
    pub fn codes(&self, feature: usize) -> &[u8] {
        &self.codes[feature * self.n_rows..(feature + 1) * self.n_rows]
    }

    /// The raw values of feature `feature`, one per row.
    #[inline]
    pub fn values(&self, feature: usize) -> &[f32] {
        &self.values[feature * self.n_rows..(feature + 1) * self.n_rows]
    }
}

/// The rows used to place edges: all of them, or a sorted random subset.
fn edge_sample(n_rows: usize, rng: &mut Rng) -> Option<Vec<usize>> {
    if n_rows <= EDGE_SAMPLE_ROWS {
        return None;
    }
    let mut rows: Vec<usize> = (0..n_rows).collect();
    // A partial Fisher-Yates shuffle: the first EDGE_SAMPLE_ROWS slots end up a uniform sample.
    for i in 0..EDGE_SAMPLE_ROWS {
        let j = i + rng.below(n_rows - i);
        rows.swap(i, j);
    }
    rows.truncate(EDGE_SAMPLE_ROWS);
    rows.sort_unstable();
    Some(rows)
}

/// Bins one column's `values` into `codes` and says how.
fn bin_column(
    values: &[f32],
    n_categories: Option<u32>,
    max_bins: usize,
    sample: Option<&[usize]>,
    codes: &mut [u8],
) -> FeatureBins {
    let has_missing = values.iter().any(|value| value.is_nan());
    // Categories fit when their codes and the "unknown" bin stay below MISSING_BIN.
    if let Some(n_categories) = n_categories.filter(|&n| (n as usize) < max_bins) {
        for (code, &value) in codes.iter_mut().zip(values) {
            *code = if value.is_nan() {
                MISSING_BIN
            } else if value >= 0.0 && value.fract() == 0.0 && value < n_categories as f32 {
                value as u8
            } else {
                n_categories as u8
            };
        }
        let kind = BinKind::Categorical { n_categories };
        return FeatureBins { kind, n_bins: n_categories as usize + 1, has_missing, exact: true };
    }

    let mut sorted: Vec<f32> = match sample {
        Some(rows) => rows
            .iter()
            .filter_map(|&row| values.get(row).copied())
            .filter(|v| !v.is_nan())
            .collect(),
        None => values.iter().copied().filter(|v| !v.is_nan()).collect(),
    };
    sorted.sort_unstable_by(f32::total_cmp);
    let (edges, every_value_binned) = quantile_edges(&sorted, max_bins);
    for (code, &value) in codes.iter_mut().zip(values) {
        // The number of edges at or below the value: at most 254, so never MISSING_BIN.
        *code = if value.is_nan() {
            MISSING_BIN
        } else {
            edges.partition_point(|&edge| edge <= value) as u8
        };
    }
    let exact = every_value_binned && sample.is_none();
    FeatureBins { n_bins: edges.len() + 1, kind: BinKind::Numeric { edges }, has_missing, exact }
}

/// Edges splitting `sorted` (ascending, no `NaN`) into at most `max_bins` bins of
/// about equal counts, and whether each distinct value got its own bin (when they are few).
pub(super) fn quantile_edges(sorted: &[f32], max_bins: usize) -> (Vec<f32>, bool) {
    let mut distinct: Vec<(f32, usize)> = Vec::new();
    for &value in sorted {
        match distinct.last_mut() {
            // `==` merges -0.0 and 0.0, which compare equal at prediction too.
            Some((last, count)) if *last == value => *count += 1,
            _ => distinct.push((value, 1)),
        }
    }
    let mut edges = Vec::new();
    if distinct.len() <= max_bins {
        for pair in distinct.windows(2) {
            edges.push(edge_between(pair[0].0, pair[1].0));
        }
        return (edges, true);
    }
    // Greedy: close a bin once it holds its share of what remains, so that one
    // heavy value does not leave a run of near-empty bins behind it.
    let mut bins_left = max_bins;
    let mut remaining = sorted.len();
    let mut in_bin = 0;
    for pair in distinct.windows(2) {
        in_bin += pair[0].1;
        let share = remaining as f64 / bins_left as f64;
        if in_bin as f64 >= share {
            edges.push(edge_between(pair[0].0, pair[1].0));
            remaining -= in_bin;
            in_bin = 0;
            bins_left -= 1;
            if bins_left == 1 {
                break;
            }
        }
    }
    (edges, false)
}

/// A split point `t` between two consecutive distinct values `low < high` with
/// `low < t <= high`: their midpoint (like scikit-learn) when `f32` can hold one, else `high`.
pub(super) fn edge_between(low: f32, high: f32) -> f32 {
    let mid = low * 0.5 + high * 0.5;
    if mid > low && mid <= high { mid } else { high }
}
