//! Train/test splits and K-fold schemes, as row-index vectors.
//!
//! Every scheme that draws at random takes a seed and uses [`crate::rng::Rng`],
//! so the same seed gives the same rows on every machine and release and a
//! saved run can say exactly which rows it validated on. The schemes follow
//! scikit-learn's (`train_test_split(stratify=…)`, `StratifiedKFold`, `KFold`,
//! `GroupKFold`, `TimeSeriesSplit`) in what they guarantee, not in which rows
//! a given seed picks. Index vectors come back sorted ascending, so taking
//! the rows reads the matrix in order.
//!
//! Bad parameters (a fold count below 2 or above the row count, a test
//! fraction outside `(0, 1)`, a `NaN` ordering key) are errors, never panics.
//! This module only computes indices: it never copies rows.

use std::collections::BTreeMap;

use crate::error::{MlError, Result};
use crate::rng::Rng;

/// One cross-validation fold: the rows to train on and the rows to score.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fold {
    /// Training row indices, ascending.
    pub train: Vec<usize>,
    /// Test row indices, ascending; disjoint from `train`.
    pub test: Vec<usize>,
}

/// Checks a fold count against the number of rows (or groups) it must split.
fn check_k(k: usize, n_units: usize, unit: &str) -> Result<()> {
    if k < 2 {
        return Err(MlError::param("cv", format!("{k} folds, at least 2 are needed")));
    }
    if k > n_units {
        return Err(MlError::param(
            "cv",
            format!("{k} folds but only {n_units} {unit}, each fold needs at least one"),
        ));
    }
    Ok(())
}

/// The test-set size for `test_fraction` of `n_rows` rows, rounded up like
/// sklearn's `train_test_split`; both sides must keep at least one row.
fn test_size(n_rows: usize, test_fraction: f64) -> Result<usize> {
    if !(test_fraction > 0.0 && test_fraction < 1.0) {
        return Err(MlError::param(
            "test_fraction",
            format!("{test_fraction} is not strictly between 0 and 1"),
        ));
    }
    // The product is below n_rows, so the cast back to usize is exact.
    let n_test = (test_fraction * n_rows as f64).ceil() as usize;
    if n_test == 0 || n_test >= n_rows {
        return Err(MlError::param(
            "test_fraction",
            format!(
                "{test_fraction} of {n_rows} rows leaves {n_test} test and {} training rows, \
                 both need at least one",
                n_rows.saturating_sub(n_test)
            ),
        ));
    }
    Ok(n_test)
}

/// The rows of each class (distinct label value), classes in increasing label order.
fn rows_by_class(y: &[f32]) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..y.len()).collect();
    // total_cmp gives NaN labels a class of their own instead of panicking;
    // the stable sort keeps rows ascending within a class.
    order.sort_by(|&a, &b| y[a].total_cmp(&y[b]));
    let mut classes: Vec<Vec<usize>> = Vec::new();
    let mut previous: Option<f32> = None;
    for row in order {
        let label = y[row];
        match (previous, classes.last_mut()) {
            (Some(prev), Some(class)) if prev.total_cmp(&label).is_eq() => class.push(row),
            _ => classes.push(vec![row]),
        }
        previous = Some(label);
    }
    classes
}

/// Row order by `order_key` (ties by row index); a `NaN` key is an error.
fn rows_by_key(order_key: &[f64]) -> Result<Vec<usize>> {
    if let Some(row) = order_key.iter().position(|key| key.is_nan()) {
        return Err(MlError::InvalidData(format!("ordering key is NaN at row {row}")));
    }
    let mut order: Vec<usize> = (0..order_key.len()).collect();
    order.sort_by(|&a, &b| order_key[a].total_cmp(&order_key[b]));
    Ok(order)
}

/// Marks which rows are in `test` and returns every other row as training rows.
fn complement(n_rows: usize, test: &[usize]) -> Vec<usize> {
    let mut in_test = vec![false; n_rows];
    for &row in test {
        if let Some(flag) = in_test.get_mut(row) {
            *flag = true;
        }
    }
    (0..n_rows).filter(|&row| !in_test[row]).collect()
}

/// A random train/test split of `n_rows` rows (for regression targets, where
/// there are no classes to keep): `ceil(test_fraction * n_rows)` test rows,
/// as in sklearn's `train_test_split`. Returns `(train, test)`.
pub fn train_test(
    n_rows: usize,
    test_fraction: f64,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>)> {
    let n_test = test_size(n_rows, test_fraction)?;
    let mut order: Vec<usize> = (0..n_rows).collect();
    Rng::new(seed).shuffle(&mut order);
    let mut test = order[..n_test].to_vec();
    test.sort_unstable();
    let train = complement(n_rows, &test);
    Ok((train, test))
}

/// A random train/test split that keeps each class's share in both sides.
///
/// The test set has `ceil(test_fraction * n)` rows, as in sklearn's
/// `train_test_split`. Each class gives its proportional share of them,
/// rounded by largest remainder so the total is exact (sklearn's
/// `_approximate_mode`); a class of a single row may therefore land wholly on
/// one side. Classes are the distinct values of `y`. Returns `(train, test)`.
pub fn stratified_train_test(
    y: &[f32],
    test_fraction: f64,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>)> {
    let n_rows = y.len();
    let n_test = test_size(n_rows, test_fraction)?;
    let mut classes = rows_by_class(y);
    let mut rng = Rng::new(seed);

    // Largest-remainder apportionment of n_test over the classes.
    let mut quotas: Vec<usize> = Vec::with_capacity(classes.len());
    let mut remainders: Vec<(usize, usize)> = Vec::with_capacity(classes.len());
    for (class_idx, rows) in classes.iter().enumerate() {
        // Exact in integers: rows.len() * n_test fits, both are at most n_rows.
        let product = rows.len() as u128 * n_test as u128;
        let quota = (product / n_rows as u128) as usize;
        let remainder = (product % n_rows as u128) as usize;
        quotas.push(quota);
        remainders.push((remainder, class_idx));
    }
    let assigned: usize = quotas.iter().sum();
    // Ties between equal remainders are broken at random, so no class is
    // favoured by its label value.
    rng.shuffle(&mut remainders);
    remainders.sort_by_key(|&(remainder, _)| std::cmp::Reverse(remainder));
    for &(_, class_idx) in remainders.iter().take(n_test.saturating_sub(assigned)) {
        if let Some(quota) = quotas.get_mut(class_idx) {
            *quota += 1;
        }
    }

    let mut test = Vec::with_capacity(n_test);
    for (rows, &quota) in classes.iter_mut().zip(&quotas) {
        rng.shuffle(rows);
        test.extend_from_slice(&rows[..quota.min(rows.len())]);
    }
    test.sort_unstable();
    let train = complement(n_rows, &test);
    Ok((train, test))
}

/// A split where the test set is the `ceil(test_fraction * n)` rows with the
/// largest `order_key` (e.g. event time), so a model is validated on data
/// later than anything it trained on. Rows with equal keys are ordered by row
/// index, so one timestamp can straddle the boundary. Returns `(train, test)`.
pub fn time_ordered_train_test(
    order_key: &[f64],
    test_fraction: f64,
) -> Result<(Vec<usize>, Vec<usize>)> {
    let n_rows = order_key.len();
    let n_test = test_size(n_rows, test_fraction)?;
    let order = rows_by_key(order_key)?;
    let (train_part, test_part) = order.split_at(n_rows - n_test);
    let mut train = train_part.to_vec();
    let mut test = test_part.to_vec();
    train.sort_unstable();
    test.sort_unstable();
    Ok((train, test))
}

/// Builds folds from the test fold of every row (`fold_of[row] < k`).
fn folds_from_assignment(fold_of: &[usize], k: usize) -> Vec<Fold> {
    let mut folds: Vec<Fold> = (0..k).map(|_| Fold::default()).collect();
    for (row, &fold_idx) in fold_of.iter().enumerate() {
        for (idx, fold) in folds.iter_mut().enumerate() {
            if idx == fold_idx {
                fold.test.push(row);
            } else {
                fold.train.push(row);
            }
        }
    }
    folds
}

/// Shuffled K-fold: the first `n % k` folds get one row more, as in sklearn's
/// `KFold(shuffle=True)`. Errors when `k < 2` or `k > n_rows`.
pub fn kfold(n_rows: usize, k: usize, seed: u64) -> Result<Vec<Fold>> {
    check_k(k, n_rows, "rows")?;
    let mut order: Vec<usize> = (0..n_rows).collect();
    Rng::new(seed).shuffle(&mut order);
    let mut fold_of = vec![0; n_rows];
    let base = n_rows / k;
    let extra = n_rows % k;
    let mut start = 0;
    for fold_idx in 0..k {
        let size = base + usize::from(fold_idx < extra);
        for &row in &order[start..start + size] {
            fold_of[row] = fold_idx;
        }
        start += size;
    }
    Ok(folds_from_assignment(&fold_of, k))
}

/// Stratified K-fold: each class (distinct value of `y`) is shuffled and dealt
/// round-robin over the folds, continuing from one class to the next, so every
/// fold holds each class's count to within one row and the fold sizes differ by
/// at most one. A class with fewer rows than `k` is spread one row per fold
/// (sklearn warns there; it still works). Errors when `k < 2` or `k > n_rows`.
pub fn stratified_kfold(y: &[f32], k: usize, seed: u64) -> Result<Vec<Fold>> {
    check_k(k, y.len(), "rows")?;
    let mut rng = Rng::new(seed);
    let mut fold_of = vec![0; y.len()];
    // A random first fold, so the folds that get a class's extra row vary with the seed.
    let mut next_fold = rng.below(k);
    for mut rows in rows_by_class(y) {
        rng.shuffle(&mut rows);
        for row in rows {
            fold_of[row] = next_fold;
            next_fold = (next_fold + 1) % k;
        }
    }
    Ok(folds_from_assignment(&fold_of, k))
}

/// Group K-fold: the rows of a group always share a fold. Groups go, largest
/// first (ties by group id), to the fold with the fewest rows so far (the
/// first such fold), as sklearn's `GroupKFold` balances them. Deterministic,
/// no seed. Errors when `k < 2` or there are fewer than `k` distinct groups.
pub fn group_kfold(groups: &[u64], k: usize) -> Result<Vec<Fold>> {
    let mut group_sizes: BTreeMap<u64, usize> = BTreeMap::new();
    for &group in groups {
        *group_sizes.entry(group).or_insert(0) += 1;
    }
    check_k(k, group_sizes.len(), "groups")?;

    let mut by_size: Vec<(u64, usize)> = group_sizes.iter().map(|(&g, &n)| (g, n)).collect();
    by_size.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut fold_rows = vec![0usize; k];
    let mut fold_of_group: BTreeMap<u64, usize> = BTreeMap::new();
    for (group, size) in by_size {
        let lightest = fold_rows
            .iter()
            .enumerate()
            .min_by_key(|&(idx, &rows)| (rows, idx))
            .map_or(0, |(idx, _)| idx);
        fold_rows[lightest] += size;
        fold_of_group.insert(group, lightest);
    }
    let fold_of: Vec<usize> =
        groups.iter().map(|group| fold_of_group.get(group).copied().unwrap_or(0)).collect();
    Ok(folds_from_assignment(&fold_of, k))
}

/// Expanding-window time-series folds, like sklearn's `TimeSeriesSplit(k)`:
/// rows are ordered by `order_key` (ties by row index), cut into `k + 1`
/// blocks of `n / (k + 1)` rows (the remainder goes to the first, training-only
/// block), and fold `i` tests on block `i + 1` after training on every earlier
/// row. Errors when `k < 2`, when `n_rows < k + 1` or on a `NaN` key.
pub fn time_series_split(order_key: &[f64], k: usize) -> Result<Vec<Fold>> {
    let n_rows = order_key.len();
    // k + 1 blocks of at least one row each: the first one only trains.
    check_k(k, n_rows.saturating_sub(1), "rows beyond the first training block")?;
    let order = rows_by_key(order_key)?;
    let block = n_rows / (k + 1);
    let first_test = n_rows - k * block;
    let mut folds = Vec::with_capacity(k);
    for fold_idx in 0..k {
        let start = first_test + fold_idx * block;
        let mut train = order[..start].to_vec();
        let mut test = order[start..start + block].to_vec();
        train.sort_unstable();
        test.sort_unstable();
        folds.push(Fold { train, test });
    }
    Ok(folds)
}
