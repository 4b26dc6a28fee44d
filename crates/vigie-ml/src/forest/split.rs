//! The best split of one feature at one node, found from its rows' bin codes.
//!
//! Every task uses one criterion: the weighted squared error of the rows'
//! targets over `n_channels` channels (the value for regression, the 0/1 label
//! for binary, the one-hot class for multiclass). For classification its
//! decrease is exactly the decrease of weighted Gini impurity, so the split
//! maximising `Σ_children Σ_k S_k² / W` (`S_k` the weighted channel sum, `W`
//! the weight) is scikit-learn's Gini-best split.
//!
//! Rows are first grouped by bin: with a histogram for a large node, by
//! sorting codes for a small one, where clearing and scanning 255 bins would
//! cost more than the rows. Missing values are tried on both sides of every
//! cut and alone; categories are ordered by their target mean within the node
//! and cut as a prefix of that order. This module does not move rows.

use super::binning::{BinKind, FeatureBins, MISSING_BIN};

/// Bins per histogram: every code, `MISSING_BIN` included.
const HISTOGRAM_BINS: usize = 256;

/// A node whose rows number less than `n_bins / SORT_BELOW_BINS_PER_ROW` is
/// grouped by sorting its codes instead of by a histogram (measured on 255 bins).
const SORT_BELOW_BINS_PER_ROW: usize = 4;

/// One in-bag row of a tree.
#[derive(Debug, Clone, Copy)]
pub(super) struct InBagRow {
    /// Index of the row in the training matrix.
    pub row: u32,
    /// Its sample weight times the number of times the bootstrap drew it.
    pub weight: f32,
    /// The regression value or 0/1 label, or the class index for multiclass.
    pub target: f32,
}

/// Which non-missing bins a split sends left.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum BinRule {
    /// Bins `< below` (a numeric cut; `Below(0)` sends every non-missing value right).
    Below(u16),
    /// Bins whose bit is set (bit `b % 64` of word `b / 64`): a categorical split.
    InSet([u64; 4]),
}

/// A split of a node: a feature, the bins going left, and where missing values go.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct SplitRule {
    /// The feature tested.
    pub feature: u32,
    /// The non-missing bins sent left.
    pub bins: BinRule,
    /// Whether missing values go left.
    pub missing_left: bool,
}

impl SplitRule {
    /// Whether a row with code `bin` goes left.
    #[inline]
    pub fn goes_left(&self, bin: u8) -> bool {
        if bin == MISSING_BIN {
            return self.missing_left;
        }
        match &self.bins {
            BinRule::Below(below) => u16::from(bin) < *below,
            BinRule::InSet(set) => set[usize::from(bin) / 64] >> (bin % 64) & 1 == 1,
        }
    }
}

/// The best split found so far at a node and its criterion value.
#[derive(Debug, Clone, Copy)]
pub(super) struct BestSplit {
    /// The split.
    pub rule: SplitRule,
    /// `Σ_children Σ_k S_k² / W`; larger is better.
    pub score: f64,
}

/// Whether a feature took more than one value (bin or missing) among the node's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Spread {
    /// One bin only: no split possible, and the feature does not count as tried.
    Constant,
    /// At least two bins.
    Varied,
}

/// Reusable buffers for split search. Statistics are `[count, weight, S_0 .. S_k]`
/// (`stride = 2 + n_channels` numbers) per bin, per side or per node.
#[derive(Debug)]
pub(super) struct SplitFinder {
    n_channels: usize,
    stride: usize,
    min_leaf: f64,
    histogram: Vec<f64>,
    sort_keys: Vec<u32>,
    /// The node's non-missing bins that hold rows, ascending, and their statistics.
    group_bins: Vec<u8>,
    group_stats: Vec<f64>,
    missing: Vec<f64>,
    prefix: Vec<f64>,
    category_order: Vec<(f64, u32)>,
}

impl SplitFinder {
    /// Buffers for `n_channels` target channels; each side of a split keeps at least `min_leaf` rows.
    pub fn new(n_channels: usize, min_leaf: usize) -> Self {
        let stride = n_channels + 2;
        SplitFinder {
            n_channels,
            stride,
            min_leaf: min_leaf as f64,
            histogram: vec![0.0; HISTOGRAM_BINS * stride],
            sort_keys: Vec::new(),
            group_bins: Vec::with_capacity(HISTOGRAM_BINS),
            group_stats: Vec::with_capacity(HISTOGRAM_BINS * stride),
            missing: vec![0.0; stride],
            prefix: vec![0.0; stride],
            category_order: Vec::with_capacity(HISTOGRAM_BINS),
        }
    }

    /// Numbers per statistics record.
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Looks for a split of `rows` on `feature` better than `best`, replacing
    /// it if found. `column` holds the feature's codes for every training row,
    /// `totals` the node's statistics.
    pub fn search(
        &mut self,
        feature: usize,
        bins: &FeatureBins,
        column: &[u8],
        rows: &[InBagRow],
        totals: &[f64],
        best: &mut Option<BestSplit>,
    ) -> Spread {
        self.group_rows(column, rows, bins.n_bins);
        let missing_count = self.missing[0];
        let n_groups = self.group_bins.len();
        if n_groups + usize::from(missing_count > 0.0) < 2 {
            return Spread::Constant;
        }
        let feature = feature as u32;
        match bins.kind {
            BinKind::Numeric { .. } => self.scan_cuts(feature, totals, best),
            BinKind::Categorical { n_categories } => {
                self.scan_categories(feature, n_categories, totals, best)
            }
        }
        if missing_count > 0.0 && n_groups > 0 {
            let rule = SplitRule { feature, bins: BinRule::Below(0), missing_left: true };
            consider(&self.missing, None, totals, self.min_leaf, rule, best);
        }
        Spread::Varied
    }

    /// Fills `group_bins`, `group_stats` and `missing` from the rows' codes.
    fn group_rows(&mut self, column: &[u8], rows: &[InBagRow], n_bins: usize) {
        let stride = self.stride;
        self.group_bins.clear();
        self.group_stats.clear();
        if rows.len() * SORT_BELOW_BINS_PER_ROW < n_bins {
            self.group_by_sorting(column, rows);
            return;
        }
        let n_bins = n_bins.min(HISTOGRAM_BINS - 1);
        let histogram = &mut self.histogram;
        histogram[..n_bins * stride].fill(0.0);
        histogram[usize::from(MISSING_BIN) * stride..].fill(0.0);
        if self.n_channels == 1 {
            for row in rows {
                let bin = usize::from(column[row.row as usize]);
                let cell = &mut histogram[bin * 3..bin * 3 + 3];
                let weight = f64::from(row.weight);
                cell[0] += 1.0;
                cell[1] += weight;
                cell[2] += weight * f64::from(row.target);
            }
        } else {
            for row in rows {
                let bin = usize::from(column[row.row as usize]);
                add_row(&mut histogram[bin * stride..(bin + 1) * stride], row, self.n_channels);
            }
        }
        for (bin, cell) in histogram[..n_bins * stride].chunks_exact(stride).enumerate() {
            if cell[0] > 0.0 {
                self.group_bins.push(bin as u8);
                self.group_stats.extend_from_slice(cell);
            }
        }
        self.missing.copy_from_slice(&histogram[usize::from(MISSING_BIN) * stride..]);
    }

    /// Groups a few rows by sorting `code << 24 | position` keys.
    fn group_by_sorting(&mut self, column: &[u8], rows: &[InBagRow]) {
        debug_assert!(rows.len() < 1 << 24, "the sorting path only sees small nodes");
        let stride = self.stride;
        self.sort_keys.clear();
        self.sort_keys.extend(
            rows.iter()
                .enumerate()
                .map(|(pos, row)| u32::from(column[row.row as usize]) << 24 | pos as u32),
        );
        self.sort_keys.sort_unstable();
        self.missing.fill(0.0);
        for &key in &self.sort_keys {
            let bin = (key >> 24) as u8;
            let row = &rows[(key & 0x00FF_FFFF) as usize];
            let cell = if bin == MISSING_BIN {
                &mut self.missing[..]
            } else {
                if self.group_bins.last() != Some(&bin) {
                    self.group_bins.push(bin);
                    self.group_stats.resize(self.group_stats.len() + stride, 0.0);
                }
                let len = self.group_stats.len();
                &mut self.group_stats[len - stride..]
            };
            add_row(cell, row, self.n_channels);
        }
    }

    /// Tries every cut between consecutive occupied bins, missing values on either side.
    fn scan_cuts(&mut self, feature: u32, totals: &[f64], best: &mut Option<BestSplit>) {
        let stride = self.stride;
        let has_missing = self.missing[0] > 0.0;
        self.prefix.fill(0.0);
        for (group, stats) in self.group_stats.chunks_exact(stride).enumerate() {
            if group > 0 {
                // Any cut between the two occupied bins splits the rows alike; the
                // middle one puts the saved threshold halfway, as scikit-learn does.
                let low = usize::from(self.group_bins[group - 1]);
                let high = usize::from(self.group_bins[group]);
                let below = BinRule::Below(((low + high) / 2 + 1) as u16);
                let rule = SplitRule { feature, bins: below, missing_left: false };
                consider(&self.prefix, None, totals, self.min_leaf, rule, best);
                if has_missing {
                    let rule = SplitRule { missing_left: true, ..rule };
                    consider(&self.prefix, Some(&self.missing), totals, self.min_leaf, rule, best);
                }
            }
            accumulate(&mut self.prefix, stats);
        }
    }

    /// Orders the node's categories by each channel's mean (one order suffices
    /// for a single channel) and tries every prefix of each order as the left set.
    /// The bin of unknown codes always stays right, as prediction sends them.
    fn scan_categories(
        &mut self,
        feature: u32,
        n_categories: u32,
        totals: &[f64],
        best: &mut Option<BestSplit>,
    ) {
        let stride = self.stride;
        let has_missing = self.missing[0] > 0.0;
        for channel in 0..self.n_channels {
            self.category_order.clear();
            for (group, stats) in self.group_stats.chunks_exact(stride).enumerate() {
                if u32::from(self.group_bins[group]) < n_categories {
                    self.category_order.push((stats[2 + channel] / stats[1], group as u32));
                }
            }
            self.category_order.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            self.prefix.fill(0.0);
            let mut left_set = [0u64; 4];
            for &(_, group) in &self.category_order {
                let group = group as usize;
                let bin = usize::from(self.group_bins[group]);
                left_set[bin / 64] |= 1 << (bin % 64);
                accumulate(
                    &mut self.prefix,
                    &self.group_stats[group * stride..(group + 1) * stride],
                );
                let rule =
                    SplitRule { feature, bins: BinRule::InSet(left_set), missing_left: false };
                consider(&self.prefix, None, totals, self.min_leaf, rule, best);
                if has_missing {
                    let rule = SplitRule { missing_left: true, ..rule };
                    consider(&self.prefix, Some(&self.missing), totals, self.min_leaf, rule, best);
                }
            }
            if self.n_channels == 2 {
                // With two classes the second order is the first reversed: same splits.
                break;
            }
        }
    }
}

/// Adds one row to a statistics record.
#[inline]
fn add_row(stats: &mut [f64], row: &InBagRow, n_channels: usize) {
    let weight = f64::from(row.weight);
    stats[0] += 1.0;
    stats[1] += weight;
    if n_channels == 1 {
        stats[2] += weight * f64::from(row.target);
    } else if let Some(class_sum) = stats.get_mut(2 + row.target as usize) {
        *class_sum += weight;
    }
}

#[inline]
fn accumulate(sum: &mut [f64], stats: &[f64]) {
    for (total, value) in sum.iter_mut().zip(stats) {
        *total += value;
    }
}

/// Scores the split whose left side is `left` (plus `extra`) and keeps it if it beats `best`.
#[inline]
fn consider(
    left: &[f64],
    extra: Option<&[f64]>,
    totals: &[f64],
    min_leaf: f64,
    rule: SplitRule,
    best: &mut Option<BestSplit>,
) {
    let left_at = |idx: usize| left[idx] + extra.map_or(0.0, |extra| extra[idx]);
    let left_count = left_at(0);
    if left_count < min_leaf || totals[0] - left_count < min_leaf {
        return;
    }
    let left_weight = left_at(1);
    let right_weight = totals[1] - left_weight;
    if left_weight <= 0.0 || right_weight <= 0.0 {
        return;
    }
    let mut score = 0.0;
    for idx in 2..totals.len() {
        let left_sum = left_at(idx);
        let right_sum = totals[idx] - left_sum;
        score += left_sum * left_sum / left_weight + right_sum * right_sum / right_weight;
    }
    if best.as_ref().is_none_or(|best| score > best.score) {
        *best = Some(BestSplit { rule, score });
    }
}
