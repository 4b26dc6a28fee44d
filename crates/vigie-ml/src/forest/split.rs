//! The best split of one feature at one node.
//!
//! Every task uses one criterion: the weighted squared error of the rows'
//! targets over `n_channels` channels (the value for regression, the 0/1 label
//! for binary, the one-hot class for multiclass). For classification its
//! decrease is exactly the decrease of weighted Gini impurity, so the split
//! maximising `Σ_children Σ_k S_k² / W` (`S_k` the weighted channel sum, `W`
//! the weight) is scikit-learn's Gini-best split.
//!
//! Rows are first grouped by value, then every cut between consecutive groups
//! is scored. By default a node sorts its raw values and cuts halfway
//! between neighbours, exactly as scikit-learn does. When the forest is asked
//! to (`histogram_above_rows`), a larger node groups rows by a histogram of
//! bin codes instead, linear in its rows, and the feature's best bin cut is
//! then refined on the raw values of the two bins around it. Features whose
//! every value has a bin (categories among them) always stay on codes, sorted
//! rather than histogrammed in tiny nodes. Missing values are tried on both
//! sides of every cut and alone; categories are ordered by their target mean
//! within the node and cut as a prefix of that order. This module does not
//! move rows.

use super::binning::{BinKind, FeatureBins, MISSING_BIN, edge_between};

/// Bins per histogram: every code, `MISSING_BIN` included.
const HISTOGRAM_BINS: usize = 256;

/// A node whose rows number less than `n_bins / SORT_BELOW_BINS_PER_ROW` is
/// grouped by sorting its codes instead of by a histogram.
const SORT_BELOW_BINS_PER_ROW: usize = 4;
/// Fewest keys [`sort_keys`] sorts by radix rather than by comparison.
const RADIX_MIN_KEYS: usize = 512;

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

/// What a split tests on non-missing values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum SplitTest {
    /// `x < threshold` goes left (`-inf` sends every non-missing value right).
    LessThan(f32),
    /// Codes whose bit is set (bit `c % 64` of word `c / 64`) go left: a categorical split.
    InSet([u64; 4]),
}

/// A split of a node: a feature, its test, and where missing values go.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct SplitRule {
    /// The feature tested.
    pub feature: u32,
    /// The test of non-missing values.
    pub test: SplitTest,
    /// Whether missing values go left.
    pub missing_left: bool,
}

impl SplitRule {
    /// Whether a row goes left, given the feature's code and raw value for it.
    #[inline]
    pub fn goes_left(&self, code: u8, value: f32) -> bool {
        if value.is_nan() {
            return self.missing_left;
        }
        match &self.test {
            SplitTest::LessThan(threshold) => value < *threshold,
            SplitTest::InSet(set) => set[usize::from(code) / 64] >> (code % 64) & 1 == 1,
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
    /// For a cut found on bins, the occupied bins either side of it, whose
    /// rows [`SplitFinder::refine`] may cut more finely.
    pub bin_cut: Option<(u8, u8)>,
}

/// Whether a feature took more than one value (missing included) among the node's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Spread {
    /// One value only: no split possible.
    Constant,
    /// At least two.
    Varied,
}

/// Where the cut between two consecutive groups of rows goes.
#[derive(Debug, Clone, Copy)]
enum CutPoints<'a> {
    /// Groups are bins: cut at the bin edge halfway between them.
    Bins { bins: &'a [u8], feature: &'a FeatureBins },
    /// Groups are distinct raw values: cut halfway between them.
    Values(&'a [f32]),
}

impl CutPoints<'_> {
    /// The threshold between group `group - 1` and group `group`.
    fn threshold(&self, group: usize) -> f32 {
        match self {
            CutPoints::Bins { bins, feature } => {
                // Any bin edge between the two splits the rows alike; the middle
                // one puts the saved threshold halfway, as scikit-learn does.
                let low = usize::from(bins[group - 1]);
                let high = usize::from(bins[group]);
                feature.edge_after((low + high) / 2)
            }
            CutPoints::Values(values) => edge_between(values[group - 1], values[group]),
        }
    }
}

/// Reusable buffers for split search. Statistics are `[count, weight, S_0 .. S_k]`
/// (`stride = 2 + n_channels` numbers) per group, per side or per node.
#[derive(Debug)]
pub(super) struct SplitFinder {
    n_channels: usize,
    stride: usize,
    min_leaf: f64,
    /// Nodes with more rows than this split numeric features on bins.
    exact_max_rows: usize,
    histogram: Vec<f64>,
    sort_keys: Vec<u64>,
    /// Scratch space of the radix sort of `sort_keys`.
    radix_scratch: Vec<u64>,
    /// The node's non-missing groups of rows, ascending: their code or value, and statistics.
    group_bins: Vec<u8>,
    group_values: Vec<f32>,
    group_stats: Vec<f64>,
    missing: Vec<f64>,
    prefix: Vec<f64>,
    category_order: Vec<(f64, u32)>,
}

impl SplitFinder {
    /// Buffers for `n_channels` target channels; each side of a split keeps at
    /// least `min_leaf` rows; nodes of more than `exact_max_rows` rows split
    /// numeric features on bins.
    pub fn new(n_channels: usize, min_leaf: usize, exact_max_rows: usize) -> Self {
        let stride = n_channels + 2;
        SplitFinder {
            n_channels,
            stride,
            min_leaf: min_leaf as f64,
            exact_max_rows,
            histogram: vec![0.0; HISTOGRAM_BINS * stride],
            sort_keys: Vec::new(),
            radix_scratch: Vec::new(),
            group_bins: Vec::with_capacity(HISTOGRAM_BINS),
            group_values: Vec::new(),
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
    /// it if found. `codes` and `values` hold the feature for every training
    /// row, `totals` the node's statistics.
    #[allow(clippy::too_many_arguments)]
    pub fn search(
        &mut self,
        feature: usize,
        bins: &FeatureBins,
        codes: &[u8],
        values: &[f32],
        rows: &[InBagRow],
        totals: &[f64],
        best: &mut Option<BestSplit>,
    ) -> Spread {
        let by_value = !bins.exact && rows.len() <= self.exact_max_rows;
        if by_value {
            self.group_by_value(values, rows);
        } else {
            self.group_by_code(codes, rows, bins.n_bins);
        }
        let has_missing = self.missing[0] > 0.0;
        let n_groups = self.group_stats.len() / self.stride;
        if n_groups + usize::from(has_missing) < 2 {
            return Spread::Constant;
        }
        let feature_idx = feature as u32;
        match bins.kind {
            // Categories are always exact, so grouped by code.
            BinKind::Categorical { n_categories } => {
                self.scan_categories(feature_idx, n_categories, totals, best);
            }
            BinKind::Numeric { .. } if by_value => {
                let scan = Scan {
                    stride: self.stride,
                    min_leaf: self.min_leaf,
                    totals,
                    missing: &self.missing,
                };
                self.prefix.fill(0.0);
                scan.cuts(
                    feature_idx,
                    &mut self.prefix,
                    &self.group_stats,
                    CutPoints::Values(&self.group_values),
                    best,
                );
            }
            BinKind::Numeric { .. } => {
                // The feature's own best cut on bins, then re-cut on raw values
                // (refining only the node's overall best split measurably gained
                // nothing: the bins also skew which feature wins).
                let mut feature_best = None;
                let scan = Scan {
                    stride: self.stride,
                    min_leaf: self.min_leaf,
                    totals,
                    missing: &self.missing,
                };
                self.prefix.fill(0.0);
                let cuts = CutPoints::Bins { bins: &self.group_bins, feature: bins };
                scan.cuts(
                    feature_idx,
                    &mut self.prefix,
                    &self.group_stats,
                    cuts,
                    &mut feature_best,
                );
                if !bins.exact {
                    self.refine(codes, values, rows, totals, &mut feature_best);
                }
                if let Some(found) = feature_best
                    && best.as_ref().is_none_or(|best| found.score > best.score)
                {
                    *best = Some(found);
                }
            }
        }
        if has_missing && n_groups > 0 {
            let rule = SplitRule {
                feature: feature_idx,
                test: SplitTest::LessThan(f32::NEG_INFINITY),
                missing_left: true,
            };
            consider(&self.missing, None, totals, self.min_leaf, rule, best);
        }
        Spread::Varied
    }

    /// Re-cuts `best`, a cut found on this node's bins, on raw values: the rows
    /// of the two occupied bins around the cut are sorted and every cut
    /// between them tried. Uses the groups and missing statistics left by
    /// [`SplitFinder::group_by_code`]; one more pass over the node's codes.
    fn refine(
        &mut self,
        codes: &[u8],
        values: &[f32],
        rows: &[InBagRow],
        totals: &[f64],
        best: &mut Option<BestSplit>,
    ) {
        let Some(BestSplit { rule, bin_cut: Some((low, high)), .. }) = *best else {
            return;
        };
        let stride = self.stride;
        self.prefix.fill(0.0);
        for (&bin, stats) in self.group_bins.iter().zip(self.group_stats.chunks_exact(stride)) {
            if bin >= low {
                break;
            }
            accumulate(&mut self.prefix, stats);
        }
        self.sort_keys.clear();
        for (pos, row) in rows.iter().enumerate() {
            let code = codes[row.row as usize];
            if code == low || code == high {
                self.sort_keys
                    .push(u64::from(ordered_bits(values[row.row as usize])) << 32 | pos as u64);
            }
        }
        self.group_values.clear();
        self.group_stats.clear();
        sort_keys(&mut self.sort_keys, &mut self.radix_scratch);
        for &key in &self.sort_keys {
            let value = from_ordered_bits((key >> 32) as u32);
            if self.group_values.last().is_none_or(|&last| last != value) {
                self.group_values.push(value);
                self.group_stats.resize(self.group_stats.len() + stride, 0.0);
            }
            let len = self.group_stats.len();
            add_row(
                &mut self.group_stats[len - stride..],
                &rows[key as u32 as usize],
                self.n_channels,
            );
        }
        let scan = Scan { stride, min_leaf: self.min_leaf, totals, missing: &self.missing };
        scan.cuts(
            rule.feature,
            &mut self.prefix,
            &self.group_stats,
            CutPoints::Values(&self.group_values),
            best,
        );
    }

    /// Fills `group_bins`, `group_stats` and `missing` from the rows' codes.
    fn group_by_code(&mut self, codes: &[u8], rows: &[InBagRow], n_bins: usize) {
        let stride = self.stride;
        self.group_bins.clear();
        self.group_stats.clear();
        if rows.len() * SORT_BELOW_BINS_PER_ROW < n_bins {
            self.sort_keys.clear();
            self.sort_keys.extend(
                rows.iter()
                    .enumerate()
                    .map(|(pos, row)| u64::from(codes[row.row as usize]) << 32 | pos as u64),
            );
            sort_keys(&mut self.sort_keys, &mut self.radix_scratch);
            self.missing.fill(0.0);
            for &key in &self.sort_keys {
                let code = (key >> 32) as u8;
                let row = &rows[key as u32 as usize];
                let cell = if code == MISSING_BIN {
                    &mut self.missing[..]
                } else {
                    if self.group_bins.last() != Some(&code) {
                        self.group_bins.push(code);
                        self.group_stats.resize(self.group_stats.len() + stride, 0.0);
                    }
                    let len = self.group_stats.len();
                    &mut self.group_stats[len - stride..]
                };
                add_row(cell, row, self.n_channels);
            }
            return;
        }
        let n_bins = n_bins.min(HISTOGRAM_BINS - 1);
        let histogram = &mut self.histogram;
        histogram[..n_bins * stride].fill(0.0);
        histogram[usize::from(MISSING_BIN) * stride..].fill(0.0);
        if self.n_channels == 1 {
            for row in rows {
                let code = usize::from(codes[row.row as usize]);
                let cell = &mut histogram[code * 3..code * 3 + 3];
                let weight = f64::from(row.weight);
                cell[0] += 1.0;
                cell[1] += weight;
                cell[2] += weight * f64::from(row.target);
            }
        } else {
            for row in rows {
                let code = usize::from(codes[row.row as usize]);
                add_row(&mut histogram[code * stride..(code + 1) * stride], row, self.n_channels);
            }
        }
        for (code, cell) in histogram[..n_bins * stride].chunks_exact(stride).enumerate() {
            if cell[0] > 0.0 {
                self.group_bins.push(code as u8);
                self.group_stats.extend_from_slice(cell);
            }
        }
        self.missing.copy_from_slice(&histogram[usize::from(MISSING_BIN) * stride..]);
    }

    /// Fills `group_values`, `group_stats` and `missing` by sorting the rows' raw values.
    fn group_by_value(&mut self, values: &[f32], rows: &[InBagRow]) {
        let stride = self.stride;
        self.group_values.clear();
        self.group_stats.clear();
        self.missing.fill(0.0);
        self.sort_keys.clear();
        for (pos, row) in rows.iter().enumerate() {
            let value = values[row.row as usize];
            if value.is_nan() {
                add_row(&mut self.missing, row, self.n_channels);
            } else {
                self.sort_keys.push(u64::from(ordered_bits(value)) << 32 | pos as u64);
            }
        }
        sort_keys(&mut self.sort_keys, &mut self.radix_scratch);
        for &key in &self.sort_keys {
            let value = from_ordered_bits((key >> 32) as u32);
            let row = &rows[key as u32 as usize];
            // `!=` rather than bits: -0.0 and 0.0 are one value to a threshold.
            if self.group_values.last().is_none_or(|&last| last != value) {
                self.group_values.push(value);
                self.group_stats.resize(self.group_stats.len() + stride, 0.0);
            }
            let len = self.group_stats.len();
            add_row(&mut self.group_stats[len - stride..], row, self.n_channels);
        }
    }

    /// Orders the node's categories by each channel's mean (one order suffices
    /// for up to two channels) and tries every prefix of each order as the left set.
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
                let code = usize::from(self.group_bins[group]);
                left_set[code / 64] |= 1 << (code % 64);
                accumulate(
                    &mut self.prefix,
                    &self.group_stats[group * stride..(group + 1) * stride],
                );
                let rule =
                    SplitRule { feature, test: SplitTest::InSet(left_set), missing_left: false };
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

/// What every candidate cut of one node is scored against.
struct Scan<'a> {
    stride: usize,
    min_leaf: f64,
    totals: &'a [f64],
    missing: &'a [f64],
}

impl Scan<'_> {
    /// Tries every cut between consecutive groups, missing values on either
    /// side; `prefix` holds what lies left of the first group.
    fn cuts(
        &self,
        feature: u32,
        prefix: &mut [f64],
        group_stats: &[f64],
        cuts: CutPoints<'_>,
        best: &mut Option<BestSplit>,
    ) {
        let has_missing = self.missing[0] > 0.0;
        for (group, stats) in group_stats.chunks_exact(self.stride).enumerate() {
            if group > 0 {
                let rule = SplitRule {
                    feature,
                    test: SplitTest::LessThan(cuts.threshold(group)),
                    missing_left: false,
                };
                let mut improved = consider(prefix, None, self.totals, self.min_leaf, rule, best);
                if has_missing {
                    let rule = SplitRule { missing_left: true, ..rule };
                    improved |= consider(
                        prefix,
                        Some(self.missing),
                        self.totals,
                        self.min_leaf,
                        rule,
                        best,
                    );
                }
                if let (true, CutPoints::Bins { bins, .. }, Some(best)) =
                    (improved, cuts, best.as_mut())
                {
                    best.bin_cut = Some((bins[group - 1], bins[group]));
                }
            }
            accumulate(prefix, stats);
        }
    }
}

/// Sorts `keys`, each a 32-bit sort key in the high half and a position in the low half,
/// pushed in ascending position, into ascending order: the order `sort_unstable` gives.
/// Long runs are sorted by a stable radix sort on the high half, a byte per pass (a byte
/// every key shares is skipped): positions stay ascending among equal values, so the
/// result is the same, in a third of the time of pdqsort on the forest's nodes.
fn sort_keys(keys: &mut Vec<u64>, scratch: &mut Vec<u64>) {
    let len = keys.len();
    if len < RADIX_MIN_KEYS {
        keys.sort_unstable();
        return;
    }
    let mut counts = [[0usize; 256]; 4];
    for &key in keys.iter() {
        for (pass, count) in counts.iter_mut().enumerate() {
            count[(key >> (32 + 8 * pass)) as usize & 0xFF] += 1;
        }
    }
    // Every slot is written before it is read: only new ones need a value.
    scratch.resize(len, 0);
    for (pass, count) in counts.iter().enumerate() {
        if count.contains(&len) {
            continue;
        }
        let mut next = [0usize; 256];
        let mut start = 0;
        for (slot, &n) in next.iter_mut().zip(count) {
            *slot = start;
            start += n;
        }
        for &key in keys.iter() {
            let slot = &mut next[(key >> (32 + 8 * pass)) as usize & 0xFF];
            scratch[*slot] = key;
            *slot += 1;
        }
        std::mem::swap(keys, scratch);
    }
}

/// `f32` bits mapped so that unsigned order is numeric order (no `NaN` given).
#[inline]
fn ordered_bits(value: f32) -> u32 {
    let bits = value.to_bits();
    if bits >> 31 == 1 { !bits } else { bits | 0x8000_0000 }
}

/// The inverse of [`ordered_bits`].
#[inline]
fn from_ordered_bits(bits: u32) -> f32 {
    f32::from_bits(if bits >> 31 == 1 { bits & 0x7FFF_FFFF } else { !bits })
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

/// Scores the split whose left side is `left` (plus `extra`) and keeps it if
/// it beats `best`, saying whether it did.
#[inline]
fn consider(
    left: &[f64],
    extra: Option<&[f64]>,
    totals: &[f64],
    min_leaf: f64,
    rule: SplitRule,
    best: &mut Option<BestSplit>,
) -> bool {
    let left_at = |idx: usize| left[idx] + extra.map_or(0.0, |extra| extra[idx]);
    let left_count = left_at(0);
    if left_count < min_leaf || totals[0] - left_count < min_leaf {
        return false;
    }
    let left_weight = left_at(1);
    let right_weight = totals[1] - left_weight;
    if left_weight <= 0.0 || right_weight <= 0.0 {
        return false;
    }
    let mut score = 0.0;
    for (idx, &total) in totals.iter().enumerate().skip(2) {
        let left_sum = left_at(idx);
        let right_sum = total - left_sum;
        score += left_sum * left_sum / left_weight + right_sum * right_sum / right_weight;
    }
    if best.as_ref().is_none_or(|best| score > best.score) {
        *best = Some(BestSplit { rule, score, bin_cut: None });
        return true;
    }
    false
}

#[cfg(test)]
mod sort_tests {
    use proptest::prelude::*;

    use super::{RADIX_MIN_KEYS, ordered_bits, sort_keys};

    proptest! {
        /// The radix sort gives `sort_unstable`'s order, ties on the value included, for
        /// values drawn from few or many distinct ones (bytes shared by all or not).
        #[test]
        fn radix_sort_orders_keys_as_the_comparison_sort_does(
            values in prop::collection::vec(
                prop_oneof![
                    (-3i32..3).prop_map(|v| v as f32),
                    any::<f32>().prop_filter("a number", |v| !v.is_nan()),
                ],
                0..RADIX_MIN_KEYS * 3,
            ),
        ) {
            let keys: Vec<u64> = values
                .iter()
                .enumerate()
                .map(|(pos, &v)| u64::from(ordered_bits(v)) << 32 | pos as u64)
                .collect();
            let mut expected = keys.clone();
            expected.sort_unstable();
            let (mut sorted, mut scratch) = (keys, Vec::new());
            sort_keys(&mut sorted, &mut scratch);
            prop_assert_eq!(sorted, expected);
        }
    }
}
