//! Linear models: logistic regression (binary and multinomial), linear/ridge
//! regression and a linear SVM with Platt calibration, fitted to convergence.
//!
//! Every objective is a weighted *mean* loss plus penalties on the
//! coefficients, never on the intercepts:
//! `Σ s_i loss_i / Σ s_i + l2/2 ‖w‖² + l1 ‖w‖₁`. So `l2 = 1 / (C Σ s_i)`
//! reproduces scikit-learn's `C` (`1 / (C n)` without weights), and a
//! penalty keeps its meaning when the number of rows changes.
//!
//! Solvers: L-BFGS for smooth objectives, OWL-QN (its orthant-wise variant,
//! Andrew & Gao 2007) when `l1 > 0`, and Cholesky on the normal equations
//! for ridge regression up to [`CLOSED_FORM_MAX_FEATURES`] features. Sums
//! over rows run in parallel over chunks that depend on the row count alone
//! and are added in chunk order, so a data set gives the same model on any
//! number of threads.
//!
//! This module neither imputes nor scales: the caller hands in imputed,
//! scaled features, and a non-finite value is rejected, not learnt from.

use std::collections::VecDeque;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{MlError, Result};
use crate::estimator::TrainSet;
use crate::matrix::{Link, Matrix, Task, sigmoid};
use crate::rng::Rng;

/// Above this many features, ridge regression is solved by L-BFGS instead
/// of forming the `d × d` normal equations (memory `8 d²` bytes, time `n d²`).
pub const CLOSED_FORM_MAX_FEATURES: usize = 2048;

/// Correction pairs kept by L-BFGS.
const LBFGS_MEMORY: usize = 10;
/// Halvings tried by the backtracking line search before giving up.
const MAX_LINE_SEARCH_STEPS: usize = 60;
/// Armijo's sufficient-decrease constant.
const ARMIJO: f64 = 1e-4;
/// Rows per parallel chunk, at least; chunks depend on the row count only.
const MIN_CHUNK_ROWS: usize = 1024;
/// At most this many chunks, so per-chunk gradients stay small in memory.
const MAX_CHUNKS: usize = 256;
/// Rows per block when accumulating the normal equations.
const GRAM_BLOCK_ROWS: usize = 256;
/// Internal folds for the SVM's out-of-fold Platt margins, as scikit-learn's
/// `CalibratedClassifierCV` default.
const PLATT_FOLDS: usize = 3;
/// Settings of ridge regression when it falls back to L-BFGS (on a
/// standardised target, so the tolerance is relative).
const RIDGE_LBFGS_MAX_ITER: usize = 10_000;
const RIDGE_LBFGS_TOL: f64 = 1e-9;

/// Which algorithm fitted a [`LinearModel`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinearAlgorithm {
    /// Logistic regression: [`Link::Logistic`] or [`Link::Softmax`].
    Logistic,
    /// Linear or ridge regression: [`Link::Identity`].
    Regression,
    /// Linear SVM with Platt calibration: [`Link::Platt`], raw output is the margin.
    Svm,
}

/// A fitted linear model: `raw_k = intercept_k + Σ_j w_kj x_j` per output `k`.
///
/// Built by [`fit_logistic`], [`fit_linear`] or [`fit_svm`]; a deserialized
/// one must pass [`LinearModel::validate`] before it predicts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearModel {
    /// Which algorithm fitted it.
    pub algorithm: LinearAlgorithm,
    /// Number of input features.
    pub n_features: usize,
    /// `n_outputs * n_features` coefficients, output after output.
    pub coefficients: Vec<f64>,
    /// One intercept per output.
    pub intercepts: Vec<f64>,
    /// Unweighted mean of each feature over the training rows: the baseline
    /// of [`LinearModel::contributions_into`].
    pub feature_means: Vec<f64>,
    /// How raw outputs become predictions.
    pub link: Link,
}

impl LinearModel {
    /// Number of raw outputs (1, or the number of classes for multinomial logistic).
    pub fn n_outputs(&self) -> usize {
        self.intercepts.len()
    }

    /// Link from raw outputs to predictions.
    pub fn link(&self) -> Link {
        self.link
    }

    /// The coefficients of output `output` (empty if out of range).
    pub fn coefficients_of(&self, output: usize) -> &[f64] {
        let start = output.saturating_mul(self.n_features);
        self.coefficients.get(start..start.saturating_add(self.n_features)).unwrap_or(&[])
    }

    /// Raw outputs of one row (`n_features` long) into `out` (`n_outputs`
    /// long), without allocating.
    #[inline]
    pub fn predict_raw_into(&self, row: &[f32], out: &mut [f64]) {
        debug_assert_eq!(row.len(), self.n_features);
        debug_assert_eq!(out.len(), self.n_outputs());
        for (output, (slot, intercept)) in out.iter_mut().zip(&self.intercepts).enumerate() {
            *slot = intercept + dot_f32(self.coefficients_of(output), row);
        }
    }

    /// Exact contributions of one row: `n_outputs * (n_features + 1)` values;
    /// per output, `w_j (x_j - mean_j)` for each feature, then the bias
    /// `intercept + Σ_j w_j mean_j` last. Each output's values sum to its raw
    /// output up to rounding.
    pub fn contributions_into(&self, row: &[f32], out: &mut [f64]) {
        debug_assert_eq!(row.len(), self.n_features);
        debug_assert_eq!(out.len(), self.n_outputs() * (self.n_features + 1));
        for (output, (slots, intercept)) in
            out.chunks_mut(self.n_features + 1).zip(&self.intercepts).enumerate()
        {
            let (feature_slots, bias_slot) = slots.split_at_mut(self.n_features.min(slots.len()));
            let mut bias = *intercept;
            let weighted = self.coefficients_of(output).iter().zip(&self.feature_means).zip(row);
            for (slot, ((weight, mean), value)) in feature_slots.iter_mut().zip(weighted) {
                *slot = weight * (f64::from(*value) - mean);
                bias += weight * mean;
            }
            if let Some(slot) = bias_slot.first_mut() {
                *slot = bias;
            }
        }
    }

    /// Checks a deserialized model against the pipeline's `n_features`:
    /// array lengths, finiteness, and a link that fits its kind.
    pub fn validate(&mut self, n_features: usize) -> Result<()> {
        let bad = |what: String| Err(MlError::Corrupted(format!("linear model: {what}")));
        if self.n_features != n_features {
            return bad(format!(
                "expects {} features, pipeline makes {n_features}",
                self.n_features
            ));
        }
        let n_outputs = self.n_outputs();
        if n_outputs == 0 {
            return bad("no outputs".into());
        }
        if n_outputs.checked_mul(n_features) != Some(self.coefficients.len()) {
            return bad(format!(
                "{} coefficients for {n_outputs} outputs of {n_features} features",
                self.coefficients.len()
            ));
        }
        if self.feature_means.len() != n_features {
            return bad(format!(
                "{} feature means for {n_features} features",
                self.feature_means.len()
            ));
        }
        let all_values =
            self.coefficients.iter().chain(&self.intercepts).chain(&self.feature_means);
        if let Some(value) = all_values.copied().find(|value| !value.is_finite()) {
            return bad(format!("non-finite value {value}"));
        }
        let link_fits = match (self.algorithm, self.link) {
            (LinearAlgorithm::Logistic, Link::Logistic) => n_outputs == 1,
            (LinearAlgorithm::Logistic, Link::Softmax) => n_outputs >= 2,
            (LinearAlgorithm::Regression, Link::Identity) => n_outputs == 1,
            (LinearAlgorithm::Svm, Link::Platt { a, b }) => {
                n_outputs == 1 && a.is_finite() && b.is_finite()
            }
            _ => false,
        };
        if !link_fits {
            return bad(format!(
                "link {:?} does not fit a {:?} model with {n_outputs} outputs",
                self.link, self.algorithm
            ));
        }
        Ok(())
    }
}

/// Hyper-parameters of logistic regression (binary, or multinomial softmax
/// for a multiclass task).
///
/// Objective: weighted mean log-loss `+ l2/2 ‖w‖² + l1 ‖w‖₁`, intercepts
/// unpenalized. scikit-learn's `C` (no weights) is `l2 = 1 / (C n)`; its
/// elastic net with `l1_ratio = ρ` is `l1 = ρ / (C n)`, `l2 = (1 - ρ) / (C n)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogisticParams {
    /// Ridge penalty strength per mean loss, `>= 0`.
    pub l2: f64,
    /// Lasso penalty strength per mean loss, `>= 0`; `> 0` switches to OWL-QN
    /// and yields exact zeros.
    pub l1: f64,
    /// Maximum solver iterations, `>= 1`.
    pub max_iter: usize,
    /// Stop when the largest (pseudo-)gradient component is at most this, `> 0`.
    pub tol: f64,
}

impl Default for LogisticParams {
    fn default() -> Self {
        LogisticParams { l2: 1e-4, l1: 0.0, max_iter: 1000, tol: 1e-6 }
    }
}

impl LogisticParams {
    fn check(&self) -> Result<()> {
        check_penalty("l2", self.l2)?;
        check_penalty("l1", self.l1)?;
        check_solver(self.max_iter, self.tol)
    }
}

/// Hyper-parameters of linear (ridge) regression.
///
/// Objective: weighted mean of `(y - ŷ)² / 2` `+ l2/2 ‖w‖²`, intercept
/// unpenalized. scikit-learn's `Ridge(alpha)` (no weights) is `l2 = alpha / n`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinearParams {
    /// Ridge penalty strength per mean loss, `>= 0` (`0` is ordinary least squares).
    pub l2: f64,
}

impl Default for LinearParams {
    fn default() -> Self {
        // Nearly least squares on scaled features, but keeps collinear inputs solvable.
        LinearParams { l2: 1e-4 }
    }
}

/// Hyper-parameters of the linear SVM (squared hinge loss, L2 penalty).
///
/// Objective: weighted mean of `max(0, 1 - y f)²` `+ l2/2 ‖w‖²`, intercept
/// unpenalized. scikit-learn's `LinearSVC(C)` (no weights) is `l2 = 1 / (C n)`,
/// except that LinearSVC also penalizes its intercept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SvmParams {
    /// Ridge penalty strength per mean loss, `> 0`.
    pub l2: f64,
    /// Maximum solver iterations per fit, `>= 1`.
    pub max_iter: usize,
    /// Stop when the largest gradient component is at most this, `> 0`.
    pub tol: f64,
}

impl Default for SvmParams {
    fn default() -> Self {
        SvmParams { l2: 1e-4, max_iter: 1000, tol: 1e-6 }
    }
}

impl SvmParams {
    fn check(&self) -> Result<()> {
        if !(self.l2.is_finite() && self.l2 > 0.0) {
            return Err(MlError::param(
                "l2",
                format!("must be a finite number > 0, got {}", self.l2),
            ));
        }
        check_solver(self.max_iter, self.tol)
    }
}

fn check_penalty(name: &str, value: f64) -> Result<()> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(MlError::param(name, format!("must be a finite number >= 0, got {value}")))
    }
}

fn check_solver(max_iter: usize, tol: f64) -> Result<()> {
    if max_iter == 0 {
        return Err(MlError::param("max_iter", "must be at least 1"));
    }
    if !(tol.is_finite() && tol > 0.0) {
        return Err(MlError::param("tol", format!("must be a finite number > 0, got {tol}")));
    }
    Ok(())
}

/// Fits a logistic regression: binary ([`Link::Logistic`], one output) or
/// multinomial ([`Link::Softmax`], one output per class, intercepts centred
/// to sum to zero). The solver is deterministic; `seed` is unused and kept
/// for a uniform signature. Returns the last iterate if `max_iter` is hit.
pub fn fit_logistic(
    params: &LogisticParams,
    train: &TrainSet<'_>,
    _seed: u64,
) -> Result<LinearModel> {
    params.check()?;
    let (loss, n_outputs, link) =
        match train.task {
            Task::Binary => (Loss::Logistic, 1, Link::Logistic),
            Task::Multiclass { n_classes } => (Loss::Softmax, n_classes, Link::Softmax),
            Task::Regression => return Err(MlError::Unsupported(
                "logistic regression predicts classes; use linear regression for a regression task"
                    .into(),
            )),
        };
    check_train_set(train, "logistic regression")?;
    let targets: Vec<f64> = train.y.iter().map(|&y| f64::from(y)).collect();
    let rows: Vec<usize> = (0..train.x.n_rows).collect();
    let problem = Problem::new(
        train.x,
        rows,
        &targets,
        train.weights,
        loss,
        n_outputs,
        params.l2,
        params.l1,
    )?;
    let mut theta = problem.initial_point();
    minimize(&problem, &mut theta, params.max_iter, params.tol);
    let n_features = train.x.n_cols;
    let (coefficients, intercepts) = theta.split_at_mut(n_outputs * n_features);
    if n_outputs > 1 {
        // Softmax is unchanged by a shift common to all classes: pick the
        // centred representative (for the coefficients only without L1,
        // which would lose its zeros).
        center_across_outputs(intercepts, 1);
        if params.l1 == 0.0 {
            center_across_outputs(coefficients, n_features);
        }
    }
    finish_model(LinearAlgorithm::Logistic, link, train, theta)
}

/// Fits linear regression with an optional ridge penalty ([`Link::Identity`]):
/// Cholesky on the weighted, centred normal equations up to
/// [`CLOSED_FORM_MAX_FEATURES`] features (a tiny diagonal jitter is added
/// when they are singular, e.g. collinear features with `l2 = 0`), L-BFGS
/// above. `seed` is unused and kept for a uniform signature.
pub fn fit_linear(params: &LinearParams, train: &TrainSet<'_>, _seed: u64) -> Result<LinearModel> {
    check_penalty("l2", params.l2)?;
    if train.task != Task::Regression {
        return Err(MlError::Unsupported(format!(
            "linear regression predicts numbers, the task is {}; use logistic regression for classes",
            train.task.name()
        )));
    }
    check_train_set(train, "linear regression")?;
    let theta = if train.x.n_cols <= CLOSED_FORM_MAX_FEATURES {
        ridge_closed_form(train, params.l2)?
    } else {
        ridge_lbfgs(train, params.l2)?
    };
    finish_model(LinearAlgorithm::Regression, Link::Identity, train, theta)
}

/// Fits a linear SVM (squared hinge, L2) for a binary task, then Platt
/// calibration ([`platt_calibration`]) on out-of-fold margins: the rows are
/// split into 3 stratified folds drawn with `seed`, a model fitted on two
/// folds scores the third, and the final model is refitted on all rows
/// (scikit-learn's `CalibratedClassifierCV(ensemble=False)`). The raw output
/// is the margin; the link is [`Link::Platt`].
pub fn fit_svm(params: &SvmParams, train: &TrainSet<'_>, seed: u64) -> Result<LinearModel> {
    params.check()?;
    if train.task != Task::Binary {
        return Err(MlError::Unsupported(format!(
            "the linear SVM handles binary classification, the task is {}; use logistic regression",
            train.task.name()
        )));
    }
    check_train_set(train, "linear svm")?;
    let n_rows = train.x.n_rows;
    let n_features = train.x.n_cols;
    let signs: Vec<f64> = train.y.iter().map(|&y| if y > 0.5 { 1.0 } else { -1.0 }).collect();
    let (folds, n_folds) = stratified_folds(train.y, PLATT_FOLDS, seed)?;

    let mut margins = vec![0.0; n_rows];
    for fold in 0..n_folds {
        let rows: Vec<usize> = (0..n_rows).filter(|&row| folds[row] != fold).collect();
        let problem = Problem::new(
            train.x,
            rows,
            &signs,
            train.weights,
            Loss::SquaredHinge,
            1,
            params.l2,
            0.0,
        )?;
        let mut theta = problem.initial_point();
        minimize(&problem, &mut theta, params.max_iter, params.tol);
        let (weights, intercept) = theta.split_at(n_features);
        let intercept = intercept.first().copied().unwrap_or(0.0);
        for row in (0..n_rows).filter(|&row| folds[row] == fold) {
            margins[row] = intercept + dot_f32(weights, train.x.row(row));
        }
    }
    let link = platt_calibration(&margins, train.y, train.weights)?;

    let rows: Vec<usize> = (0..n_rows).collect();
    let problem =
        Problem::new(train.x, rows, &signs, train.weights, Loss::SquaredHinge, 1, params.l2, 0.0)?;
    let mut theta = problem.initial_point();
    minimize(&problem, &mut theta, params.max_iter, params.tol);
    finish_model(LinearAlgorithm::Svm, link, train, theta)
}

/// Platt scaling: fits `p = sigmoid(a * margin + b)` to 0/1 `targets` by
/// Newton's method with backtracking (Lin, Lin & Weng 2007), on Platt's
/// smoothed targets `(N₊ + 1) / (N₊ + 2)` and `1 / (N₋ + 2)`, where `N₊`,
/// `N₋` are the classes' weight sums (as scikit-learn 1.9's
/// `_sigmoid_calibration`; its `A`, `B` are `-a`, `-b`). Returns [`Link::Platt`].
pub fn platt_calibration(
    margins: &[f64],
    targets: &[f32],
    weights: Option<&[f32]>,
) -> Result<Link> {
    if margins.len() != targets.len() || weights.is_some_and(|w| w.len() != targets.len()) {
        return Err(MlError::InvalidData(
            "platt calibration: margins, targets and weights differ in length".into(),
        ));
    }
    if let Some(row) = margins.iter().position(|m| !m.is_finite()) {
        return Err(MlError::InvalidData(format!(
            "platt calibration: margin of row {row} is not finite"
        )));
    }
    let weight = |row: usize| weights.and_then(|w| w.get(row)).map_or(1.0, |&w| f64::from(w));
    let (mut prior_negative, mut prior_positive) = (0.0, 0.0);
    for (row, &target) in targets.iter().enumerate() {
        let w = weight(row);
        if !(w.is_finite() && w >= 0.0) {
            return Err(MlError::InvalidData(format!(
                "platt calibration: weight of row {row} is {w}"
            )));
        }
        match target {
            0.0 => prior_negative += w,
            1.0 => prior_positive += w,
            other => {
                return Err(MlError::InvalidData(format!(
                    "platt calibration: target of row {row} is {other}, not 0 or 1"
                )));
            }
        }
    }
    if prior_negative <= 0.0 || prior_positive <= 0.0 {
        return Err(MlError::InvalidData("platt calibration needs weight on both classes".into()));
    }
    let high = (prior_positive + 1.0) / (prior_positive + 2.0);
    let low = 1.0 / (prior_negative + 2.0);
    let total = prior_negative + prior_positive;
    let smoothed: Vec<f64> = targets.iter().map(|&t| if t == 1.0 { high } else { low }).collect();

    // Mean smoothed log-loss at (a, b), with its gradient and Hessian.
    let evaluate = |a: f64, b: f64| {
        let (mut loss, mut g_a, mut g_b, mut h_aa, mut h_ab, mut h_bb) =
            (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
        for (row, (&margin, &target)) in margins.iter().zip(&smoothed).enumerate() {
            let w = weight(row) / total;
            let z = a * margin + b;
            let p = sigmoid(z);
            loss += w * (softplus(z) - target * z);
            let residual = w * (p - target);
            g_a += residual * margin;
            g_b += residual;
            let curvature = w * p * (1.0 - p);
            h_aa += curvature * margin * margin;
            h_ab += curvature * margin;
            h_bb += curvature;
        }
        (loss, [g_a, g_b], [h_aa, h_ab, h_bb])
    };

    let (mut a, mut b) = (0.0, ((prior_positive + 1.0) / (prior_negative + 1.0)).ln());
    let (mut loss, mut grad, mut hessian) = evaluate(a, b);
    for _ in 0..100 {
        // The mean gradient cannot get much below 1e-12: rounding of the sums.
        if grad[0].abs().max(grad[1].abs()) < 1e-10 {
            break;
        }
        // A small ridge keeps the 2×2 system solvable when all margins are equal.
        let [h_aa, h_ab, h_bb] = [hessian[0] + 1e-12, hessian[1], hessian[2] + 1e-12];
        let det = h_aa * h_bb - h_ab * h_ab;
        let step_a = -(h_bb * grad[0] - h_ab * grad[1]) / det;
        let step_b = -(h_aa * grad[1] - h_ab * grad[0]) / det;
        let slope = grad[0] * step_a + grad[1] * step_b;
        let mut step = 1.0;
        let mut accepted = None;
        while step >= 1e-10 {
            let trial = evaluate(a + step * step_a, b + step * step_b);
            if trial.0 <= loss + ARMIJO * step * slope {
                accepted = Some(trial);
                break;
            }
            step *= 0.5;
        }
        let Some(trial) = accepted else { break };
        a += step * step_a;
        b += step * step_b;
        let previous = loss;
        (loss, grad, hessian) = trial;
        if previous - loss <= f64::EPSILON * previous.abs() {
            break;
        }
    }
    if !(a.is_finite() && b.is_finite()) {
        return Err(MlError::InvalidData("platt calibration did not converge".into()));
    }
    Ok(Link::Platt { a, b })
}

/// Checks shapes, weights, finiteness and targets of a training set for a
/// learner that needs imputed inputs; errors name the feature and row.
pub(crate) fn check_train_set(train: &TrainSet<'_>, model: &str) -> Result<()> {
    let x = train.x;
    let invalid = |what: String| Err(MlError::InvalidData(format!("{model}: {what}")));
    if x.n_rows == 0 {
        return invalid("no training rows".into());
    }
    if x.n_cols == 0 {
        return invalid("no feature columns".into());
    }
    if x.n_rows.checked_mul(x.n_cols) != Some(x.values.len()) {
        return invalid(format!(
            "matrix holds {} values, not {} × {}",
            x.values.len(),
            x.n_rows,
            x.n_cols
        ));
    }
    if train.features.len() != x.n_cols {
        return invalid(format!(
            "{} feature descriptions for {} columns",
            train.features.len(),
            x.n_cols
        ));
    }
    if train.y.len() != x.n_rows {
        return invalid(format!("{} targets for {} rows", train.y.len(), x.n_rows));
    }
    if let Some(weights) = train.weights {
        if weights.len() != x.n_rows {
            return invalid(format!("{} weights for {} rows", weights.len(), x.n_rows));
        }
        if let Some(row) = weights.iter().position(|w| !(w.is_finite() && *w >= 0.0)) {
            return invalid(format!(
                "weight of row {row} is {}, expected a finite number >= 0",
                weights[row]
            ));
        }
        if !weights.iter().any(|&w| w > 0.0) {
            return invalid("all weights are zero".into());
        }
    }
    if let Some(idx) = x.values.iter().position(|v| !v.is_finite()) {
        let (row, col) = (idx / x.n_cols, idx % x.n_cols);
        let name = train.features.get(col).map_or("?", |f| f.name.as_str());
        return invalid(format!(
            "feature {name:?} is {} at row {row}; impute and scale the inputs first",
            x.values[idx]
        ));
    }
    match train.task {
        Task::Binary => {
            if let Some(row) = train.y.iter().position(|&y| y != 0.0 && y != 1.0) {
                return invalid(format!(
                    "binary target of row {row} is {}, expected 0 or 1",
                    train.y[row]
                ));
            }
            if !train.y.contains(&0.0) || !train.y.contains(&1.0) {
                return invalid("the binary target has a single class".into());
            }
        }
        Task::Multiclass { n_classes } => {
            if n_classes < 2 {
                return invalid(format!(
                    "a multiclass task needs at least 2 classes, got {n_classes}"
                ));
            }
            let is_class = |y: f32| y >= 0.0 && y.fract() == 0.0 && (y as usize) < n_classes;
            if let Some(row) = train.y.iter().position(|&y| !is_class(y)) {
                return invalid(format!(
                    "class of row {row} is {}, expected 0 to {}",
                    train.y[row],
                    n_classes - 1
                ));
            }
            let first = train.y[0];
            if train.y.iter().all(|&y| y == first) {
                return invalid("the target has a single class".into());
            }
        }
        Task::Regression => {
            if let Some(row) = train.y.iter().position(|y| !y.is_finite()) {
                return invalid(format!("target of row {row} is {}", train.y[row]));
            }
        }
    }
    Ok(())
}

/// Packs the solver's `[coefficients…, intercepts…]` into a model.
fn finish_model(
    algorithm: LinearAlgorithm,
    link: Link,
    train: &TrainSet<'_>,
    mut theta: Vec<f64>,
) -> Result<LinearModel> {
    let n_features = train.x.n_cols;
    if let Some(value) = theta.iter().find(|v| !v.is_finite()) {
        return Err(MlError::InvalidData(format!(
            "{algorithm:?} fit diverged to a non-finite weight ({value}); check the scaling of the inputs"
        )));
    }
    let n_outputs = theta.len() / (n_features + 1);
    let intercepts = theta.split_off(n_outputs * n_features);
    Ok(LinearModel {
        algorithm,
        n_features,
        coefficients: theta,
        intercepts,
        feature_means: column_means(train.x),
        link,
    })
}

/// Unweighted column means, in `f64`.
fn column_means(x: &Matrix) -> Vec<f64> {
    let mut sums = vec![0.0; x.n_cols];
    for row in x.values.chunks_exact(x.n_cols.max(1)) {
        for (sum, &value) in sums.iter_mut().zip(row) {
            *sum += f64::from(value);
        }
    }
    let n_rows = x.n_rows.max(1) as f64;
    sums.iter().map(|sum| sum / n_rows).collect()
}

/// Subtracts, for each of `width` positions, the mean over the blocks of
/// `width` values (one block per output).
fn center_across_outputs(values: &mut [f64], width: usize) {
    let n_blocks = values.len() / width.max(1);
    if n_blocks == 0 {
        return;
    }
    for position in 0..width {
        let mean = values.iter().skip(position).step_by(width).sum::<f64>() / n_blocks as f64;
        for value in values.iter_mut().skip(position).step_by(width) {
            *value -= mean;
        }
    }
}

/// Assigns each row to one of `n_folds` folds, stratified by the 0/1
/// target; fewer folds when a class has fewer rows than folds.
fn stratified_folds(targets: &[f32], n_folds: usize, seed: u64) -> Result<(Vec<usize>, usize)> {
    let mut rng = Rng::new(seed);
    let mut negatives: Vec<usize> = (0..targets.len()).filter(|&row| targets[row] == 0.0).collect();
    let mut positives: Vec<usize> = (0..targets.len()).filter(|&row| targets[row] != 0.0).collect();
    let n_folds = n_folds.min(negatives.len()).min(positives.len());
    if n_folds < 2 {
        return Err(MlError::InvalidData(
            "linear svm: the Platt calibration needs at least 2 rows of each class".into(),
        ));
    }
    rng.shuffle(&mut negatives);
    rng.shuffle(&mut positives);
    let mut folds = vec![0; targets.len()];
    for class_rows in [&negatives, &positives] {
        for (position, &row) in class_rows.iter().enumerate() {
            folds[row] = position % n_folds;
        }
    }
    Ok((folds, n_folds))
}

/// Ridge regression by the centred, weighted normal equations:
/// `(Xcᵀ S Xc + l2 I) w = Xcᵀ S yc` with `Σ s = 1`, then `b = ȳ - x̄·w`.
fn ridge_closed_form(train: &TrainSet<'_>, l2: f64) -> Result<Vec<f64>> {
    let x = train.x;
    let n_features = x.n_cols;
    let weights = normalized_weights(train.weights, x.n_rows)?;
    let mut x_mean = vec![0.0; n_features];
    let mut y_mean = 0.0;
    for ((row, &y), &weight) in x.values.chunks_exact(n_features).zip(train.y).zip(&weights) {
        for (mean, &value) in x_mean.iter_mut().zip(row) {
            *mean += weight * f64::from(value);
        }
        y_mean += weight * f64::from(y);
    }

    let mut gram = vec![0.0; n_features * n_features];
    let mut rhs = vec![0.0; n_features];
    let mut block = vec![0.0; GRAM_BLOCK_ROWS * n_features];
    let mut block_y = vec![0.0; GRAM_BLOCK_ROWS];
    let row_blocks = x.values.chunks(GRAM_BLOCK_ROWS * n_features);
    for ((rows, ys), block_weights) in
        row_blocks.zip(train.y.chunks(GRAM_BLOCK_ROWS)).zip(weights.chunks(GRAM_BLOCK_ROWS))
    {
        let n_block = block_weights.len();
        for (((row, &y), &weight), (centred, centred_y)) in rows
            .chunks_exact(n_features)
            .zip(ys)
            .zip(block_weights)
            .zip(block.chunks_exact_mut(n_features).zip(block_y.iter_mut()))
        {
            let scale = weight.sqrt();
            for ((out, &value), mean) in centred.iter_mut().zip(row).zip(&x_mean) {
                *out = scale * (f64::from(value) - mean);
            }
            *centred_y = scale * (f64::from(y) - y_mean);
        }
        let block = &block[..n_block * n_features];
        for (row, &y) in block.chunks_exact(n_features).zip(&block_y) {
            for (r, &value) in rhs.iter_mut().zip(row) {
                *r += value * y;
            }
        }
        // Upper triangle, one Gram row per task: each entry sums rows in order.
        let update_row = |(j, gram_row): (usize, &mut [f64])| {
            for row in block.chunks_exact(n_features) {
                let a = row[j];
                if a != 0.0 {
                    for (g, &value) in gram_row[j..].iter_mut().zip(&row[j..]) {
                        *g += a * value;
                    }
                }
            }
        };
        if n_features >= 64 {
            gram.par_chunks_mut(n_features).enumerate().for_each(update_row);
        } else {
            gram.chunks_mut(n_features).enumerate().for_each(update_row);
        }
    }
    for j in 0..n_features {
        for k in 0..j {
            gram[j * n_features + k] = gram[k * n_features + j];
        }
        gram[j * n_features + j] += l2;
    }

    let coefficients = solve_with_jitter(&gram, &rhs, n_features).ok_or_else(|| {
        MlError::InvalidData(
            "linear regression: the normal equations are singular; add an l2 penalty".into(),
        )
    })?;
    let intercept = y_mean - dot(&coefficients, &x_mean);
    let mut theta = coefficients;
    theta.push(intercept);
    Ok(theta)
}

/// Ridge regression by L-BFGS, on a standardised target.
fn ridge_lbfgs(train: &TrainSet<'_>, l2: f64) -> Result<Vec<f64>> {
    let weights = normalized_weights(train.weights, train.x.n_rows)?;
    let y_mean: f64 = train.y.iter().zip(&weights).map(|(&y, w)| w * f64::from(y)).sum();
    let variance: f64 =
        train.y.iter().zip(&weights).map(|(&y, w)| w * (f64::from(y) - y_mean).powi(2)).sum();
    let y_scale = if variance > 0.0 { variance.sqrt() } else { 1.0 };
    let targets: Vec<f64> = train.y.iter().map(|&y| (f64::from(y) - y_mean) / y_scale).collect();
    let rows: Vec<usize> = (0..train.x.n_rows).collect();
    let problem = Problem::new(train.x, rows, &targets, train.weights, Loss::Squared, 1, l2, 0.0)?;
    let mut theta = problem.initial_point();
    minimize(&problem, &mut theta, RIDGE_LBFGS_MAX_ITER, RIDGE_LBFGS_TOL);
    let n_features = train.x.n_cols;
    for value in &mut theta[..n_features] {
        *value *= y_scale;
    }
    if let Some(intercept) = theta.get_mut(n_features) {
        *intercept = *intercept * y_scale + y_mean;
    }
    Ok(theta)
}

/// Weights scaled to sum to one (all ones when `None`).
fn normalized_weights(weights: Option<&[f32]>, n_rows: usize) -> Result<Vec<f64>> {
    let raw: Vec<f64> = match weights {
        Some(weights) => weights.iter().map(|&w| f64::from(w)).collect(),
        None => vec![1.0; n_rows],
    };
    let total: f64 = raw.iter().sum();
    if !(total.is_finite() && total > 0.0) {
        return Err(MlError::InvalidData(format!(
            "weights sum to {total}, expected a finite number > 0"
        )));
    }
    Ok(raw.into_iter().map(|w| w / total).collect())
}

/// Solves the symmetric positive definite system `matrix · x = rhs`,
/// adding a growing diagonal jitter when Cholesky meets a non-positive pivot.
fn solve_with_jitter(matrix: &[f64], rhs: &[f64], n: usize) -> Option<Vec<f64>> {
    let mean_diagonal = (0..n).map(|j| matrix[j * n + j]).sum::<f64>() / n.max(1) as f64;
    let base = mean_diagonal.abs().max(f64::MIN_POSITIVE);
    let mut factor = matrix.to_vec();
    // No jitter first, then 1e-12, 1e-10, … of the mean diagonal.
    for attempt in 0..8 {
        if attempt > 0 {
            let jitter = base * 1e-12 * 100f64.powi(attempt - 1);
            factor.copy_from_slice(matrix);
            for j in 0..n {
                factor[j * n + j] += jitter;
            }
        }
        if cholesky_in_place(&mut factor, n, base * 1e-13) {
            return Some(cholesky_solve(&factor, rhs, n));
        }
    }
    None
}

/// Overwrites the lower triangle of `matrix` (row-major `n × n`) with its
/// Cholesky factor; false when a pivot is below `min_pivot`.
fn cholesky_in_place(matrix: &mut [f64], n: usize, min_pivot: f64) -> bool {
    for j in 0..n {
        let (done, rest) = matrix.split_at_mut((j + 1) * n);
        let row_j = &mut done[j * n..];
        let pivot = row_j[j] - dot(&row_j[..j], &row_j[..j]);
        if pivot.is_nan() || pivot <= min_pivot {
            return false;
        }
        let diagonal = pivot.sqrt();
        row_j[j] = diagonal;
        let row_j = &row_j[..j];
        let eliminate = |row_i: &mut [f64]| {
            row_i[j] = (row_i[j] - dot(&row_i[..j], row_j)) / diagonal;
        };
        if n - j > 128 {
            rest.par_chunks_mut(n).for_each(eliminate);
        } else {
            rest.chunks_mut(n).for_each(eliminate);
        }
    }
    true
}

/// Solves `L Lᵀ x = rhs` with the factor left by [`cholesky_in_place`].
fn cholesky_solve(factor: &[f64], rhs: &[f64], n: usize) -> Vec<f64> {
    let mut solution = rhs.to_vec();
    for i in 0..n {
        let row = &factor[i * n..i * n + i];
        solution[i] = (solution[i] - dot(row, &solution[..i])) / factor[i * n + i];
    }
    for i in (0..n).rev() {
        let mut value = solution[i];
        for k in i + 1..n {
            value -= factor[k * n + i] * solution[k];
        }
        solution[i] = value / factor[i * n + i];
    }
    solution
}

/// The per-row loss of a [`Problem`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loss {
    /// Binary log-loss on one output; targets 0/1.
    Logistic,
    /// Multinomial log-loss on one output per class; targets are class indices.
    Softmax,
    /// Half squared error; real targets.
    Squared,
    /// `max(0, 1 - y z)²`; targets ±1.
    SquaredHinge,
}

impl Loss {
    /// The loss at raw outputs `z`, which are overwritten by the loss's
    /// derivative with respect to them.
    #[inline]
    fn value_and_derivative(self, z: &mut [f64], target: f64) -> f64 {
        match self {
            Loss::Logistic => {
                let Some(z) = z.first_mut() else { return 0.0 };
                let loss = softplus(*z) - target * *z;
                *z = sigmoid(*z) - target;
                loss
            }
            Loss::Softmax => {
                let class = target as usize;
                let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let log_sum = max + z.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
                let loss = log_sum - z.get(class).copied().unwrap_or(max);
                for (c, v) in z.iter_mut().enumerate() {
                    *v = (*v - log_sum).exp() - if c == class { 1.0 } else { 0.0 };
                }
                loss
            }
            Loss::Squared => {
                let Some(z) = z.first_mut() else { return 0.0 };
                let residual = *z - target;
                *z = residual;
                0.5 * residual * residual
            }
            Loss::SquaredHinge => {
                let Some(z) = z.first_mut() else { return 0.0 };
                let slack = 1.0 - target * *z;
                if slack > 0.0 {
                    *z = -2.0 * target * slack;
                    slack * slack
                } else {
                    *z = 0.0;
                    0.0
                }
            }
        }
    }
}

/// A penalized empirical-risk problem over the rows `rows` of `x`.
///
/// Parameters are laid out `[w_0 (d values), …, w_{k-1}, b_0, …, b_{k-1}]`.
struct Problem<'a> {
    x: &'a Matrix,
    rows: Vec<usize>,
    /// Target of each row of `rows`.
    targets: Vec<f64>,
    /// Weight of each row of `rows`, summing to one.
    weights: Vec<f64>,
    loss: Loss,
    n_outputs: usize,
    l2: f64,
    l1: f64,
}

impl<'a> Problem<'a> {
    /// `targets` and `weights` are indexed by row of `x`; `rows` must be in range.
    #[expect(
        clippy::too_many_arguments,
        reason = "private constructor; each call site names its loss and penalties"
    )]
    fn new(
        x: &'a Matrix,
        rows: Vec<usize>,
        targets: &[f64],
        weights: Option<&[f32]>,
        loss: Loss,
        n_outputs: usize,
        l2: f64,
        l1: f64,
    ) -> Result<Self> {
        let row_targets: Vec<f64> = rows.iter().map(|&row| targets[row]).collect();
        let raw_weights: Option<Vec<f32>> =
            weights.map(|w| rows.iter().map(|&row| w[row]).collect());
        let weights = normalized_weights(raw_weights.as_deref(), rows.len())?;
        Ok(Problem { x, rows, targets: row_targets, weights, loss, n_outputs, l2, l1 })
    }

    fn n_params(&self) -> usize {
        self.n_outputs * (self.x.n_cols + 1)
    }

    fn n_penalized(&self) -> usize {
        self.n_outputs * self.x.n_cols
    }

    /// Zero coefficients and the intercepts of the best constant model.
    fn initial_point(&self) -> Vec<f64> {
        let mut theta = vec![0.0; self.n_params()];
        let intercepts = &mut theta[self.n_penalized()..];
        let weighted = || self.targets.iter().zip(&self.weights);
        match self.loss {
            Loss::Logistic => {
                let rate = weighted().map(|(t, w)| t * w).sum::<f64>().clamp(1e-12, 1.0 - 1e-12);
                intercepts.fill((rate / (1.0 - rate)).ln());
            }
            Loss::Softmax => {
                let mut priors = vec![0.0; self.n_outputs];
                for (&target, &weight) in weighted() {
                    if let Some(prior) = priors.get_mut(target as usize) {
                        *prior += weight;
                    }
                }
                for (intercept, prior) in intercepts.iter_mut().zip(&priors) {
                    *intercept = prior.max(1e-12).ln();
                }
                center_across_outputs(intercepts, 1);
            }
            Loss::Squared => intercepts.fill(weighted().map(|(t, w)| t * w).sum()),
            Loss::SquaredHinge => {}
        }
        theta
    }

    /// The smooth part of the objective (mean loss and L2) at `theta`, and
    /// its gradient into `grad`.
    fn smooth_value_grad(&self, theta: &[f64], grad: &mut [f64]) -> f64 {
        let n_features = self.x.n_cols;
        let n_penalized = self.n_penalized();
        let chunk = chunk_rows(self.rows.len());
        let partials: Vec<(f64, Vec<f64>)> = self
            .rows
            .par_chunks(chunk)
            .zip(self.targets.par_chunks(chunk))
            .zip(self.weights.par_chunks(chunk))
            .map(|((rows, targets), weights)| {
                let mut chunk_grad = vec![0.0; theta.len()];
                let mut raw = vec![0.0; self.n_outputs];
                let mut loss = 0.0;
                for ((&row_idx, &target), &weight) in rows.iter().zip(targets).zip(weights) {
                    if weight == 0.0 {
                        continue;
                    }
                    let row = self.x.row(row_idx);
                    let coefficients = theta[..n_penalized].chunks_exact(n_features);
                    for ((z, w), b) in raw.iter_mut().zip(coefficients).zip(&theta[n_penalized..]) {
                        *z = b + dot_f32(w, row);
                    }
                    loss += weight * self.loss.value_and_derivative(&mut raw, target);
                    let (grad_w, grad_b) = chunk_grad.split_at_mut(n_penalized);
                    for ((&dz, g_w), g_b) in
                        raw.iter().zip(grad_w.chunks_exact_mut(n_features)).zip(grad_b)
                    {
                        if dz != 0.0 {
                            let scaled = weight * dz;
                            for (g, &value) in g_w.iter_mut().zip(row) {
                                *g += scaled * f64::from(value);
                            }
                            *g_b += scaled;
                        }
                    }
                }
                (loss, chunk_grad)
            })
            .collect();
        grad.fill(0.0);
        let mut value = 0.0;
        for (loss, chunk_grad) in &partials {
            value += loss;
            for (g, c) in grad.iter_mut().zip(chunk_grad) {
                *g += c;
            }
        }
        if self.l2 > 0.0 {
            for (g, &w) in grad[..n_penalized].iter_mut().zip(&theta[..n_penalized]) {
                value += 0.5 * self.l2 * w * w;
                *g += self.l2 * w;
            }
        }
        value
    }
}

/// Rows per parallel chunk for `n_rows` rows: a function of `n_rows` only,
/// so sums are added in the same order on any number of threads.
fn chunk_rows(n_rows: usize) -> usize {
    MIN_CHUNK_ROWS.max(n_rows.div_ceil(MAX_CHUNKS))
}

/// One L-BFGS correction pair.
struct Correction {
    step: Vec<f64>,
    grad_change: Vec<f64>,
    /// `1 / (step · grad_change)`.
    rho: f64,
}

/// Minimizes `problem`'s objective (plus `l1 ‖w‖₁` when `problem.l1 > 0`)
/// from `theta`, in place, by L-BFGS / OWL-QN with a backtracking Armijo line
/// search. Stops when the largest pseudo-gradient component is at most
/// `tol`, when the objective stops decreasing (relative change under
/// `64 ε`, like scikit-learn's `ftol`), when no step decreases it, or after
/// `max_iter` iterations.
fn minimize(problem: &Problem<'_>, theta: &mut [f64], max_iter: usize, tol: f64) {
    let n_params = theta.len();
    let l1 = problem.l1;
    let n_l1 = if l1 > 0.0 { problem.n_penalized() } else { 0 };
    let objective = |point: &[f64], grad: &mut [f64]| {
        problem.smooth_value_grad(point, grad)
            + l1 * point[..n_l1].iter().map(|v| v.abs()).sum::<f64>()
    };
    let mut grad = vec![0.0; n_params];
    let mut value = objective(theta, &mut grad);
    let mut pseudo = vec![0.0; n_params];
    pseudo_gradient(theta, &grad, l1, n_l1, &mut pseudo);
    let mut memory: VecDeque<Correction> = VecDeque::with_capacity(LBFGS_MEMORY);
    let mut alphas = vec![0.0; LBFGS_MEMORY];
    let mut direction = vec![0.0; n_params];
    let mut trial = vec![0.0; n_params];
    let mut trial_grad = vec![0.0; n_params];

    for _ in 0..max_iter {
        if max_abs(&pseudo) <= tol {
            break;
        }
        lbfgs_direction(&memory, &pseudo, &mut direction, &mut alphas);
        // OWL-QN: keep only components that descend along the pseudo-gradient.
        for (d, &p) in direction[..n_l1].iter_mut().zip(&pseudo[..n_l1]) {
            if *d * p >= 0.0 {
                *d = 0.0;
            }
        }
        if dot(&direction, &pseudo) >= 0.0 {
            memory.clear();
            for (d, &p) in direction.iter_mut().zip(&pseudo) {
                *d = -p;
            }
        }
        let mut step = if memory.is_empty() { 1.0 / norm(&pseudo).max(1.0) } else { 1.0 };
        let mut accepted = None;
        for _ in 0..MAX_LINE_SEARCH_STEPS {
            for ((t, &x), &d) in trial.iter_mut().zip(theta.iter()).zip(&direction) {
                *t = x + step * d;
            }
            // OWL-QN: stay in the orthant of the current point (or of the
            // steepest descent where a coordinate is zero).
            for ((t, &x), &p) in trial[..n_l1].iter_mut().zip(&theta[..n_l1]).zip(&pseudo[..n_l1]) {
                let orthant = if x != 0.0 { x.signum() } else { -p.signum() };
                if *t * orthant <= 0.0 {
                    *t = 0.0;
                }
            }
            let trial_value = objective(&trial, &mut trial_grad);
            let decrease: f64 = pseudo
                .iter()
                .zip(trial.iter().zip(theta.iter()))
                .map(|(p, (t, x))| p * (t - x))
                .sum();
            if trial_value <= value + ARMIJO * decrease {
                accepted = Some(trial_value);
                break;
            }
            step *= 0.5;
        }
        let Some(trial_value) = accepted else { break };

        let mut correction = if memory.len() == LBFGS_MEMORY { memory.pop_front() } else { None }
            .unwrap_or_else(|| Correction {
                step: vec![0.0; n_params],
                grad_change: vec![0.0; n_params],
                rho: 0.0,
            });
        for (s, (t, x)) in correction.step.iter_mut().zip(trial.iter().zip(theta.iter())) {
            *s = t - x;
        }
        for (y, (t, g)) in correction.grad_change.iter_mut().zip(trial_grad.iter().zip(&grad)) {
            *y = t - g;
        }
        let curvature = dot(&correction.step, &correction.grad_change);
        if curvature > f64::EPSILON * dot(&correction.grad_change, &correction.grad_change)
            && curvature > 0.0
        {
            correction.rho = 1.0 / curvature;
            memory.push_back(correction);
        }

        theta.copy_from_slice(&trial);
        std::mem::swap(&mut grad, &mut trial_grad);
        let previous = value;
        value = trial_value;
        pseudo_gradient(theta, &grad, l1, n_l1, &mut pseudo);
        if previous - value <= 64.0 * f64::EPSILON * previous.abs().max(value.abs()).max(1.0) {
            break;
        }
    }
}

/// The gradient of `smooth + l1 ‖θ[..n_l1]‖₁` where it exists, else its
/// minimum-norm subgradient (OWL-QN's pseudo-gradient).
fn pseudo_gradient(theta: &[f64], grad: &[f64], l1: f64, n_l1: usize, pseudo: &mut [f64]) {
    pseudo.copy_from_slice(grad);
    for ((p, &x), &g) in pseudo[..n_l1].iter_mut().zip(&theta[..n_l1]).zip(&grad[..n_l1]) {
        *p = if x > 0.0 {
            g + l1
        } else if x < 0.0 {
            g - l1
        } else if g + l1 < 0.0 {
            g + l1
        } else if g - l1 > 0.0 {
            g - l1
        } else {
            0.0
        };
    }
}

/// `direction = -H · gradient` by the L-BFGS two-loop recursion.
fn lbfgs_direction(
    memory: &VecDeque<Correction>,
    gradient: &[f64],
    direction: &mut [f64],
    alphas: &mut [f64],
) {
    direction.copy_from_slice(gradient);
    for (correction, alpha) in memory.iter().zip(alphas.iter_mut()).rev() {
        *alpha = correction.rho * dot(&correction.step, direction);
        axpy(direction, -*alpha, &correction.grad_change);
    }
    if let Some(last) = memory.back() {
        let gamma = 1.0 / (last.rho * dot(&last.grad_change, &last.grad_change));
        direction.iter_mut().for_each(|d| *d *= gamma);
    }
    for (correction, &alpha) in memory.iter().zip(alphas.iter()) {
        let beta = correction.rho * dot(&correction.grad_change, direction);
        axpy(direction, alpha - beta, &correction.step);
    }
    direction.iter_mut().for_each(|d| *d = -*d);
}

/// `log(1 + e^z)` without overflow.
#[inline]
fn softplus(z: f64) -> f64 {
    if z > 0.0 { z + (-z).exp().ln_1p() } else { z.exp().ln_1p() }
}

/// `Σ w_j x_j` in `f64`, with four partial sums (fixed order, so the same
/// on every machine) to keep the adder pipeline busy.
#[inline]
fn dot_f32(weights: &[f64], row: &[f32]) -> f64 {
    let mut lanes = [0.0f64; 4];
    let (weight_chunks, row_chunks) = (weights.chunks_exact(4), row.chunks_exact(4));
    let tail: f64 = weight_chunks
        .remainder()
        .iter()
        .zip(row_chunks.remainder())
        .map(|(w, &x)| w * f64::from(x))
        .sum();
    for (w, x) in weight_chunks.zip(row_chunks) {
        for ((lane, wi), &xi) in lanes.iter_mut().zip(w).zip(x) {
            *lane += wi * f64::from(xi);
        }
    }
    (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]) + tail
}

#[inline]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[inline]
fn axpy(y: &mut [f64], a: f64, x: &[f64]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

fn norm(v: &[f64]) -> f64 {
    dot(v, v).sqrt()
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |acc, x| acc.max(x.abs()))
}
