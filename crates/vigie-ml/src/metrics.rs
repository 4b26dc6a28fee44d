//! Evaluation metrics for binary, multiclass and regression models.
//!
//! The numbers a run reports, the early-stopping and model-selection scores
//! and the live-accuracy monitor all come from here, so each metric follows
//! scikit-learn's definition (checked against sklearn's own outputs in
//! `tests/it/metrics.rs`) and a user can compare a Vigie report with a
//! notebook. [`evaluate`] is the one entry point training code calls; the
//! single metrics are public for reports and tests.
//!
//! Conventions shared by every function:
//! - binary labels are `1.0` for the positive class and `0.0` otherwise; any
//!   label above `0.5` counts as positive;
//! - a binary score is the probability of the positive class, and a row is
//!   predicted positive when `score >= threshold`;
//! - multiclass labels are class indices `0..n_classes` and probabilities are
//!   laid out row-major, `n_classes` values per row;
//! - weights are optional; `None` gives every row weight one;
//! - no input panics: a metric that is undefined for its input (one class
//!   present, no rows, lengths that disagree, a `NaN` score in a ranking,
//!   a label that is not a class index) is `NaN`.
//!
//! This module does no I/O and holds no state.

use std::collections::BTreeMap;

use crate::matrix::Task;

/// Probabilities are clipped to `[CLIP_EPS, 1 - CLIP_EPS]` before taking logs:
/// sklearn 1.x `log_loss` clips with the machine epsilon of the input dtype
/// (`np.finfo(float64).eps`) since the `eps` parameter was removed in 1.5.
const CLIP_EPS: f64 = f64::EPSILON;

/// sklearn's `mean_absolute_percentage_error` divides by
/// `max(|y|, np.finfo(float64).eps)` so that a zero target gives a huge but
/// finite error.
const MAPE_EPS: f64 = f64::EPSILON;

/// Whether a binary label is the positive class.
#[inline]
fn is_positive(label: f32) -> bool {
    label > 0.5
}

/// The weight of row `i`; `weights` was checked to be `None` or as long as the input.
#[inline]
fn weight_at(weights: Option<&[f32]>, i: usize) -> f64 {
    weights.and_then(|w| w.get(i)).map_or(1.0, |&w| f64::from(w))
}

/// Whether `weights` is absent or has one value per row.
#[inline]
fn weights_fit(weights: Option<&[f32]>, n_rows: usize) -> bool {
    weights.is_none_or(|w| w.len() == n_rows)
}

/// The weighted mean of `value(i)` over `n_rows` rows, `NaN` when the total weight is zero.
#[inline]
fn weighted_mean(n_rows: usize, weights: Option<&[f32]>, value: impl Fn(usize) -> f64) -> f64 {
    let mut sum = 0.0;
    let mut total_weight = 0.0;
    for i in 0..n_rows {
        let weight = weight_at(weights, i);
        sum += weight * value(i);
        total_weight += weight;
    }
    if total_weight == 0.0 { f64::NAN } else { sum / total_weight }
}

/// `numerator / denominator`, or zero when the denominator is zero: sklearn's
/// `zero_division="warn"` default, which returns 0.0 for precision, recall and F1.
#[inline]
fn divide_or_zero(numerator: f64, denominator: f64) -> f64 {
    if denominator == 0.0 { 0.0 } else { numerator / denominator }
}

// ---------------------------------------------------------------------------
// Binary ranking metrics.

/// The cumulative counts behind ROC and precision-recall curves: one point per
/// distinct score, highest score first (sklearn's `_binary_clf_curve`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BinaryCurve {
    /// The distinct scores, in decreasing order.
    pub thresholds: Vec<f64>,
    /// Weight of the positive rows whose score is `>= thresholds[i]`.
    pub true_positives: Vec<f64>,
    /// Weight of the negative rows whose score is `>= thresholds[i]`.
    pub false_positives: Vec<f64>,
}

impl BinaryCurve {
    /// The curve of `score` against `y`; `None` when the lengths disagree or a
    /// score is `NaN` (it has no place in a ranking). Sorts once: O(n log n).
    pub fn new(y: &[f32], score: &[f64], weights: Option<&[f32]>) -> Option<Self> {
        if y.len() != score.len() || !weights_fit(weights, y.len()) {
            return None;
        }
        if score.iter().any(|s| s.is_nan()) {
            return None;
        }
        let mut order: Vec<usize> = (0..score.len()).collect();
        // Scores are NaN-free here, so `total_cmp` only separates -0.0 from 0.0,
        // which stay adjacent and are merged below by `!=`.
        order.sort_unstable_by(|&a, &b| score[b].total_cmp(&score[a]));

        let mut curve = BinaryCurve::default();
        let mut true_positives = 0.0;
        let mut false_positives = 0.0;
        for (position, &row) in order.iter().enumerate() {
            let weight = weight_at(weights, row);
            if is_positive(y[row]) {
                true_positives += weight;
            } else {
                false_positives += weight;
            }
            let last_of_tie =
                order.get(position + 1).is_none_or(|&next_row| score[next_row] != score[row]);
            if last_of_tie {
                curve.thresholds.push(score[row]);
                curve.true_positives.push(true_positives);
                curve.false_positives.push(false_positives);
            }
        }
        Some(curve)
    }

    /// Total weight of the positive rows.
    pub fn total_positives(&self) -> f64 {
        self.true_positives.last().copied().unwrap_or(0.0)
    }

    /// Total weight of the negative rows.
    pub fn total_negatives(&self) -> f64 {
        self.false_positives.last().copied().unwrap_or(0.0)
    }

    /// Area under the ROC curve: the trapezoid rule over the distinct
    /// thresholds, so tied scores count half, as in sklearn 1.x
    /// `roc_auc_score`. `NaN` unless both classes have positive weight.
    pub fn roc_auc(&self) -> f64 {
        let positives = self.total_positives();
        let negatives = self.total_negatives();
        if !(positives > 0.0 && negatives > 0.0) {
            return f64::NAN;
        }
        let mut area = 0.0;
        let mut previous_fpr = 0.0;
        let mut previous_tpr = 0.0;
        for (&tp, &fp) in self.true_positives.iter().zip(&self.false_positives) {
            let fpr = fp / negatives;
            let tpr = tp / positives;
            // Same operation order as numpy's trapezoid: dx * (y1 + y0) / 2.
            area += (fpr - previous_fpr) * (tpr + previous_tpr) / 2.0;
            previous_fpr = fpr;
            previous_tpr = tpr;
        }
        area
    }

    /// Average precision: the step-wise sum of precision times recall
    /// increments (sklearn 1.x `average_precision_score`, not the trapezoid).
    /// `NaN` when no positive row has weight (sklearn warns and returns 0).
    pub fn average_precision(&self) -> f64 {
        let positives = self.total_positives();
        if positives.is_nan() || positives <= 0.0 {
            return f64::NAN;
        }
        let mut sum = 0.0;
        let mut previous_recall = 0.0;
        for (&tp, &fp) in self.true_positives.iter().zip(&self.false_positives) {
            let recall = tp / positives;
            let precision = divide_or_zero(tp, tp + fp);
            sum += (recall - previous_recall) * precision;
            previous_recall = recall;
        }
        // sklearn clips the -0.0 that rounding can produce.
        sum.max(0.0)
    }
}

/// Area under the ROC curve, with ties handled as sklearn 1.x `roc_auc_score`
/// (trapezoid over distinct thresholds). `NaN` with one class, no rows,
/// mismatched lengths or a `NaN` score.
pub fn roc_auc(y: &[f32], score: &[f64], weights: Option<&[f32]>) -> f64 {
    BinaryCurve::new(y, score, weights).map_or(f64::NAN, |curve| curve.roc_auc())
}

/// Area under the precision-recall curve as sklearn 1.x
/// `average_precision_score` computes it (step-wise, not trapezoid). `NaN`
/// without positive rows, with mismatched lengths or a `NaN` score.
pub fn pr_auc(y: &[f32], score: &[f64], weights: Option<&[f32]>) -> f64 {
    BinaryCurve::new(y, score, weights).map_or(f64::NAN, |curve| curve.average_precision())
}

/// Mean binary cross-entropy in nats. Probabilities are clipped to
/// `[eps, 1 - eps]` with `eps = f64::EPSILON`, as sklearn 1.x `log_loss` does;
/// unlike sklearn it is also computed when only one class is present and for
/// scores outside `[0, 1]` (they are clipped). `NaN` with no rows or
/// mismatched lengths.
pub fn log_loss(y: &[f32], score: &[f64], weights: Option<&[f32]>) -> f64 {
    if y.len() != score.len() || !weights_fit(weights, y.len()) {
        return f64::NAN;
    }
    weighted_mean(y.len(), weights, |i| {
        // sklearn builds the column [1 - p, p] and clips both before the log.
        let p = if is_positive(y[i]) { score[i] } else { 1.0 - score[i] };
        -p.clamp(CLIP_EPS, 1.0 - CLIP_EPS).ln()
    })
}

/// Brier score: mean squared difference between the label and the
/// probability (sklearn `brier_score_loss`). `NaN` with no rows or
/// mismatched lengths.
pub fn brier(y: &[f32], score: &[f64], weights: Option<&[f32]>) -> f64 {
    if y.len() != score.len() || !weights_fit(weights, y.len()) {
        return f64::NAN;
    }
    weighted_mean(y.len(), weights, |i| {
        let label = if is_positive(y[i]) { 1.0 } else { 0.0 };
        (label - score[i]).powi(2)
    })
}

// ---------------------------------------------------------------------------
// Binary metrics at a threshold.

/// The binary confusion matrix at one threshold, in (weighted) row counts.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct BinaryConfusion {
    /// Negative rows predicted negative.
    pub true_negatives: f64,
    /// Negative rows predicted positive.
    pub false_positives: f64,
    /// Positive rows predicted negative.
    pub false_negatives: f64,
    /// Positive rows predicted positive.
    pub true_positives: f64,
}

impl BinaryConfusion {
    /// Counts rows predicted positive when `score >= threshold` (a `NaN` score
    /// is predicted negative). `None` with no rows or when the lengths disagree.
    pub fn new(y: &[f32], score: &[f64], threshold: f64, weights: Option<&[f32]>) -> Option<Self> {
        if y.is_empty() || y.len() != score.len() || !weights_fit(weights, y.len()) {
            return None;
        }
        let mut confusion = BinaryConfusion::default();
        for (i, (&label, &s)) in y.iter().zip(score).enumerate() {
            let weight = weight_at(weights, i);
            match (is_positive(label), s >= threshold) {
                (false, false) => confusion.true_negatives += weight,
                (false, true) => confusion.false_positives += weight,
                (true, false) => confusion.false_negatives += weight,
                (true, true) => confusion.true_positives += weight,
            }
        }
        Some(confusion)
    }

    /// `tp / (tp + fp)`, zero when nothing is predicted positive (sklearn's
    /// `zero_division` default).
    pub fn precision(&self) -> f64 {
        divide_or_zero(self.true_positives, self.true_positives + self.false_positives)
    }

    /// `tp / (tp + fn)`, zero when there is no positive row (sklearn's default).
    pub fn recall(&self) -> f64 {
        divide_or_zero(self.true_positives, self.true_positives + self.false_negatives)
    }

    /// `fp / (fp + tn)`, zero when there is no negative row.
    pub fn false_positive_rate(&self) -> f64 {
        divide_or_zero(self.false_positives, self.false_positives + self.true_negatives)
    }

    /// `2 tp / (2 tp + fp + fn)`, the form sklearn 1.x uses; zero when there
    /// is neither a positive row nor a positive prediction.
    pub fn f1(&self) -> f64 {
        let positives = self.true_positives + self.false_negatives;
        let predicted = self.true_positives + self.false_positives;
        divide_or_zero(2.0 * self.true_positives, positives + predicted)
    }

    /// The share of rows predicted right; `NaN` with no rows.
    pub fn accuracy(&self) -> f64 {
        let correct = self.true_positives + self.true_negatives;
        let total = correct + self.false_positives + self.false_negatives;
        if total == 0.0 { f64::NAN } else { correct / total }
    }
}

/// F1 of the positive class at `threshold`; `NaN` with no rows or mismatched lengths.
pub fn f1(y: &[f32], score: &[f64], threshold: f64, weights: Option<&[f32]>) -> f64 {
    BinaryConfusion::new(y, score, threshold, weights).map_or(f64::NAN, |c| c.f1())
}

/// Precision at `threshold`; `NaN` with no rows or mismatched lengths.
pub fn precision(y: &[f32], score: &[f64], threshold: f64, weights: Option<&[f32]>) -> f64 {
    BinaryConfusion::new(y, score, threshold, weights).map_or(f64::NAN, |c| c.precision())
}

/// Recall at `threshold`; `NaN` with no rows or mismatched lengths.
pub fn recall(y: &[f32], score: &[f64], threshold: f64, weights: Option<&[f32]>) -> f64 {
    BinaryConfusion::new(y, score, threshold, weights).map_or(f64::NAN, |c| c.recall())
}

/// Accuracy at `threshold`; `NaN` with no rows or mismatched lengths.
pub fn accuracy(y: &[f32], score: &[f64], threshold: f64, weights: Option<&[f32]>) -> f64 {
    BinaryConfusion::new(y, score, threshold, weights).map_or(f64::NAN, |c| c.accuracy())
}

// ---------------------------------------------------------------------------
// Multiclass metrics.

/// The class index a label stands for, if it is one of `0..n_classes`.
#[inline]
fn class_index(label: f32, n_classes: usize) -> Option<usize> {
    let is_index = label.is_finite() && label >= 0.0 && label.fract() == 0.0;
    // The cast is exact: the label is a non-negative whole number (f32 has at
    // most 2^24 consecutive integers, far above any class count).
    let index = label as usize;
    (is_index && index < n_classes).then_some(index)
}

/// The index of the largest value, the first one on ties (numpy's `argmax`);
/// `NaN` values are skipped.
#[inline]
fn argmax(values: &[f64]) -> usize {
    let mut best_idx = 0;
    let mut best = f64::NEG_INFINITY;
    for (idx, &value) in values.iter().enumerate() {
        if value > best {
            best = value;
            best_idx = idx;
        }
    }
    best_idx
}

/// Whether `y`, `proba` and `weights` describe the same rows of `n_classes`
/// probabilities and every label is a class index.
fn multiclass_input_fits(
    y: &[f32],
    proba: &[f64],
    n_classes: usize,
    weights: Option<&[f32]>,
) -> bool {
    n_classes > 0
        && y.len().checked_mul(n_classes) == Some(proba.len())
        && weights_fit(weights, y.len())
        && y.iter().all(|&label| class_index(label, n_classes).is_some())
}

/// Per-class totals behind accuracy and F1: O(n_classes) memory, unlike the
/// full confusion matrix.
struct ClassTotals {
    /// Weight of the rows of class `c` predicted as `c`.
    correct: Vec<f64>,
    /// Weight of the rows of class `c`.
    actual: Vec<f64>,
    /// Weight of the rows predicted as `c`.
    predicted: Vec<f64>,
    /// Whether class `c` occurs as a label or a prediction, whatever its weight:
    /// sklearn averages F1 over those classes only.
    present: Vec<bool>,
}

impl ClassTotals {
    /// `None` with no rows, bad shapes or a label that is not a class index.
    fn new(y: &[f32], proba: &[f64], n_classes: usize, weights: Option<&[f32]>) -> Option<Self> {
        // With at least one row, `n_classes <= proba.len()` bounds the memory.
        if y.is_empty() || !multiclass_input_fits(y, proba, n_classes, weights) {
            return None;
        }
        let mut totals = ClassTotals {
            correct: vec![0.0; n_classes],
            actual: vec![0.0; n_classes],
            predicted: vec![0.0; n_classes],
            present: vec![false; n_classes],
        };
        for (i, (&label, row)) in y.iter().zip(proba.chunks_exact(n_classes)).enumerate() {
            let actual = class_index(label, n_classes)?;
            let predicted = argmax(row);
            let weight = weight_at(weights, i);
            totals.actual[actual] += weight;
            totals.predicted[predicted] += weight;
            if actual == predicted {
                totals.correct[actual] += weight;
            }
            totals.present[actual] = true;
            totals.present[predicted] = true;
        }
        Some(totals)
    }

    fn accuracy(&self) -> f64 {
        let total: f64 = self.actual.iter().sum();
        let correct: f64 = self.correct.iter().sum();
        if total == 0.0 { f64::NAN } else { correct / total }
    }

    /// Per present class: its F1 (`2 tp / (actual + predicted)`, sklearn 1.x)
    /// and its true support.
    fn per_class_f1(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        (0..self.present.len()).filter(|&c| self.present[c]).map(move |c| {
            let f1 = divide_or_zero(2.0 * self.correct[c], self.actual[c] + self.predicted[c]);
            (f1, self.actual[c])
        })
    }

    fn f1_macro(&self) -> f64 {
        let (sum, n_present) =
            self.per_class_f1().fold((0.0, 0usize), |(sum, n), (f1, _)| (sum + f1, n + 1));
        if n_present == 0 { f64::NAN } else { sum / n_present as f64 }
    }

    fn f1_weighted(&self) -> f64 {
        let (sum, total_support) = self
            .per_class_f1()
            .fold((0.0, 0.0), |(sum, total), (f1, support)| (sum + f1 * support, total + support));
        if total_support == 0.0 { f64::NAN } else { sum / total_support }
    }
}

/// The multiclass confusion matrix: true class by row, predicted class (the
/// most probable, the first on ties) by column, in (weighted) row counts.
#[derive(Debug, Clone, PartialEq)]
pub struct MulticlassConfusion {
    n_classes: usize,
    /// `n_classes * n_classes` counts, row-major.
    counts: Vec<f64>,
}

impl MulticlassConfusion {
    /// Counts `y` against the argmax of each row of `proba`. `None` with no
    /// rows, when the shapes disagree, when a label is not a class index in
    /// `0..n_classes` or when `n_classes²` counts cannot be allocated.
    pub fn new(
        y: &[f32],
        proba: &[f64],
        n_classes: usize,
        weights: Option<&[f32]>,
    ) -> Option<Self> {
        if y.is_empty() || !multiclass_input_fits(y, proba, n_classes, weights) {
            return None;
        }
        let n_cells = n_classes.checked_mul(n_classes)?;
        let mut counts = Vec::new();
        counts.try_reserve_exact(n_cells).ok()?;
        counts.resize(n_cells, 0.0);
        for (i, (&label, row)) in y.iter().zip(proba.chunks_exact(n_classes)).enumerate() {
            let actual = class_index(label, n_classes)?;
            counts[actual * n_classes + argmax(row)] += weight_at(weights, i);
        }
        Some(MulticlassConfusion { n_classes, counts })
    }

    /// The number of classes.
    pub fn n_classes(&self) -> usize {
        self.n_classes
    }

    /// The (weighted) count of rows of class `actual` predicted as `predicted`;
    /// zero for an index out of range.
    pub fn count(&self, actual: usize, predicted: usize) -> f64 {
        if actual >= self.n_classes || predicted >= self.n_classes {
            return 0.0;
        }
        self.counts.get(actual * self.n_classes + predicted).copied().unwrap_or(0.0)
    }

    /// The counts row-major, true class by row.
    pub fn counts(&self) -> &[f64] {
        &self.counts
    }
}

/// Multiclass accuracy of the most probable class; `NaN` with no rows, bad
/// shapes or labels.
pub fn multiclass_accuracy(
    y: &[f32],
    proba: &[f64],
    n_classes: usize,
    weights: Option<&[f32]>,
) -> f64 {
    ClassTotals::new(y, proba, n_classes, weights).map_or(f64::NAN, |t| t.accuracy())
}

/// The unweighted mean of the per-class F1 over the classes that occur as a
/// label or a prediction (sklearn `f1_score(average="macro")`); `NaN` with no
/// rows, bad shapes or labels.
pub fn f1_macro(y: &[f32], proba: &[f64], n_classes: usize, weights: Option<&[f32]>) -> f64 {
    ClassTotals::new(y, proba, n_classes, weights).map_or(f64::NAN, |t| t.f1_macro())
}

/// The per-class F1 averaged with the true class supports as weights
/// (sklearn `f1_score(average="weighted")`); `NaN` with no rows, bad shapes or labels.
pub fn f1_weighted(y: &[f32], proba: &[f64], n_classes: usize, weights: Option<&[f32]>) -> f64 {
    ClassTotals::new(y, proba, n_classes, weights).map_or(f64::NAN, |t| t.f1_weighted())
}

/// Mean multiclass cross-entropy in nats, probabilities clipped to
/// `[eps, 1 - eps]` with `eps = f64::EPSILON` and not renormalised, as
/// sklearn 1.x `log_loss(labels=range(n_classes))`. `NaN` with no rows, bad
/// shapes or a label that is not a class index.
pub fn multiclass_log_loss(
    y: &[f32],
    proba: &[f64],
    n_classes: usize,
    weights: Option<&[f32]>,
) -> f64 {
    if !multiclass_input_fits(y, proba, n_classes, weights) {
        return f64::NAN;
    }
    weighted_mean(y.len(), weights, |i| {
        let p = class_index(y[i], n_classes)
            .and_then(|class| proba.get(i * n_classes + class))
            .copied()
            .unwrap_or(f64::NAN);
        -p.clamp(CLIP_EPS, 1.0 - CLIP_EPS).ln()
    })
}

// ---------------------------------------------------------------------------
// Regression metrics.

/// Root mean squared error; `NaN` with no rows or mismatched lengths.
pub fn rmse(y: &[f32], prediction: &[f64], weights: Option<&[f32]>) -> f64 {
    if y.len() != prediction.len() || !weights_fit(weights, y.len()) {
        return f64::NAN;
    }
    weighted_mean(y.len(), weights, |i| (f64::from(y[i]) - prediction[i]).powi(2)).sqrt()
}

/// Mean absolute error; `NaN` with no rows or mismatched lengths.
pub fn mae(y: &[f32], prediction: &[f64], weights: Option<&[f32]>) -> f64 {
    if y.len() != prediction.len() || !weights_fit(weights, y.len()) {
        return f64::NAN;
    }
    weighted_mean(y.len(), weights, |i| (f64::from(y[i]) - prediction[i]).abs())
}

/// Coefficient of determination `1 - SS_res / SS_tot` (sklearn `r2_score`).
/// `NaN` when the target is constant: sklearn's `force_finite` default
/// reports 1.0 or 0.0 there, which would rank a model on an undefined score.
/// Also `NaN` with no rows or mismatched lengths.
pub fn r2(y: &[f32], prediction: &[f64], weights: Option<&[f32]>) -> f64 {
    if y.len() != prediction.len() || !weights_fit(weights, y.len()) {
        return f64::NAN;
    }
    let mean = weighted_mean(y.len(), weights, |i| f64::from(y[i]));
    if mean.is_nan() {
        return f64::NAN;
    }
    let mut residual_sum = 0.0;
    let mut total_sum = 0.0;
    for (i, (&label, &predicted)) in y.iter().zip(prediction).enumerate() {
        let weight = weight_at(weights, i);
        let label = f64::from(label);
        residual_sum += weight * (label - predicted).powi(2);
        total_sum += weight * (label - mean).powi(2);
    }
    if total_sum == 0.0 { f64::NAN } else { 1.0 - residual_sum / total_sum }
}

/// Mean absolute percentage error as a fraction (not times 100), dividing by
/// `max(|y|, f64::EPSILON)` like sklearn `mean_absolute_percentage_error`, so
/// a zero target gives a huge finite error. `NaN` with no rows or mismatched lengths.
pub fn mape(y: &[f32], prediction: &[f64], weights: Option<&[f32]>) -> f64 {
    if y.len() != prediction.len() || !weights_fit(weights, y.len()) {
        return f64::NAN;
    }
    weighted_mean(y.len(), weights, |i| {
        let label = f64::from(y[i]);
        (prediction[i] - label).abs() / label.abs().max(MAPE_EPS)
    })
}

// ---------------------------------------------------------------------------
// The entry point.

/// Every metric of `task` for `predictions` (`task.n_outputs()` values per
/// row: binary P(class 1), multiclass class probabilities row-major,
/// regression the value), unweighted.
///
/// Keys: binary `roc_auc`, `pr_auc`, `log_loss`, `brier`, `f1`, `precision`,
/// `recall`, `accuracy` (the last four at `threshold`); multiclass `accuracy`,
/// `f1_macro`, `f1_weighted`, `log_loss`; regression `rmse`, `mae`, `r2`,
/// `mape`. `threshold` only matters for binary tasks. Every key is always
/// present; an undefined metric is `NaN` (see each function), and all are
/// `NaN` when `predictions` does not hold `n_outputs` values per row.
pub fn evaluate(
    task: Task,
    y: &[f32],
    predictions: &[f64],
    threshold: f64,
) -> BTreeMap<String, f64> {
    let mut metrics = BTreeMap::new();
    let mut put = |name: &str, value: f64| {
        metrics.insert(name.to_owned(), value);
    };
    match task {
        Task::Binary => {
            let curve = BinaryCurve::new(y, predictions, None);
            put("roc_auc", curve.as_ref().map_or(f64::NAN, BinaryCurve::roc_auc));
            put("pr_auc", curve.as_ref().map_or(f64::NAN, BinaryCurve::average_precision));
            put("log_loss", log_loss(y, predictions, None));
            put("brier", brier(y, predictions, None));
            let confusion = BinaryConfusion::new(y, predictions, threshold, None);
            put("f1", confusion.map_or(f64::NAN, |c| c.f1()));
            put("precision", confusion.map_or(f64::NAN, |c| c.precision()));
            put("recall", confusion.map_or(f64::NAN, |c| c.recall()));
            put("accuracy", confusion.map_or(f64::NAN, |c| c.accuracy()));
        }
        Task::Multiclass { n_classes } => {
            let totals = ClassTotals::new(y, predictions, n_classes, None);
            put("accuracy", totals.as_ref().map_or(f64::NAN, ClassTotals::accuracy));
            put("f1_macro", totals.as_ref().map_or(f64::NAN, ClassTotals::f1_macro));
            put("f1_weighted", totals.as_ref().map_or(f64::NAN, ClassTotals::f1_weighted));
            put("log_loss", multiclass_log_loss(y, predictions, n_classes, None));
        }
        Task::Regression => {
            put("rmse", rmse(y, predictions, None));
            put("mae", mae(y, predictions, None));
            put("r2", r2(y, predictions, None));
            put("mape", mape(y, predictions, None));
        }
    }
    metrics
}

/// Whether a larger value of `metric` (a key of [`evaluate`]) is better.
/// Unknown names are treated as losses (`false`).
pub fn higher_is_better(metric: &str) -> bool {
    matches!(
        metric,
        "roc_auc"
            | "pr_auc"
            | "f1"
            | "precision"
            | "recall"
            | "accuracy"
            | "f1_macro"
            | "f1_weighted"
            | "r2"
    )
}

/// The metric model selection ranks by: `roc_auc` for binary, `f1_macro` for
/// multiclass, `rmse` for regression.
pub fn primary_metric(task: Task) -> &'static str {
    match task {
        Task::Binary => "roc_auc",
        Task::Multiclass { .. } => "f1_macro",
        Task::Regression => "rmse",
    }
}
