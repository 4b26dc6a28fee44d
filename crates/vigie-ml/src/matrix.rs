//! The dense numeric matrix every estimator trains on and predicts from.

use serde::{Deserialize, Serialize};

/// A row-major `f32` matrix; `NaN` marks a missing value (trees route it by a
/// learned default direction, other estimators never see one after imputation).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Matrix {
    /// Number of rows.
    pub n_rows: usize,
    /// Number of columns (features).
    pub n_cols: usize,
    /// `n_rows * n_cols` values, row after row.
    pub values: Vec<f32>,
}

impl Matrix {
    /// A matrix of zeros.
    pub fn zeros(n_rows: usize, n_cols: usize) -> Self {
        Matrix { n_rows, n_cols, values: vec![0.0; n_rows * n_cols] }
    }

    /// Row `i`.
    #[inline]
    pub fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.n_cols..(i + 1) * self.n_cols]
    }

    /// Row `i`, mutable.
    #[inline]
    pub fn row_mut(&mut self, i: usize) -> &mut [f32] {
        &mut self.values[i * self.n_cols..(i + 1) * self.n_cols]
    }

    /// The rows at `indices`, in that order.
    pub fn take_rows(&self, indices: &[usize]) -> Matrix {
        let mut values = Vec::with_capacity(indices.len() * self.n_cols);
        for &i in indices {
            values.extend_from_slice(self.row(i));
        }
        Matrix { n_rows: indices.len(), n_cols: self.n_cols, values }
    }
}

/// What a column of the [`Matrix`] is, and which input column it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureInfo {
    /// A readable name (`amount`, `country=FR`, `amount_missing`).
    pub name: String,
    /// Index of the input column it was derived from, so explanations map back.
    pub source: usize,
    /// For a native categorical feature, the number of categories (values are codes `0..n`).
    pub categories: Option<u32>,
}

/// What the model predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Task {
    /// Two classes; the target is 1.0 for the positive class, 0.0 otherwise.
    Binary,
    /// `n_classes` classes; the target is the class index.
    Multiclass {
        /// How many classes.
        n_classes: usize,
    },
    /// A real number.
    Regression,
}

impl Task {
    /// How many raw outputs a model of this task produces per row.
    pub fn n_outputs(self) -> usize {
        match self {
            Task::Multiclass { n_classes } => n_classes,
            Task::Binary | Task::Regression => 1,
        }
    }

    /// The task's name as the CLI prints it.
    pub fn name(self) -> &'static str {
        match self {
            Task::Binary => "binary",
            Task::Multiclass { .. } => "multiclass",
            Task::Regression => "regression",
        }
    }

    /// Whether the task is a classification.
    pub fn is_classification(self) -> bool {
        !matches!(self, Task::Regression)
    }
}

/// How raw outputs become a prediction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Link {
    /// The raw output is the prediction (regression, or an averaged probability).
    Identity,
    /// The logistic function of the single raw output.
    Logistic,
    /// The softmax of the raw outputs.
    Softmax,
    /// Platt scaling `1 / (1 + exp(-(a * raw + b)))`, for margins such as an SVM's.
    Platt {
        /// Slope.
        a: f64,
        /// Intercept.
        b: f64,
    },
}

impl Link {
    /// Turns raw outputs into predictions, in place.
    #[inline]
    pub fn apply(self, raw: &mut [f64]) {
        match self {
            Link::Identity => {}
            Link::Logistic => {
                for x in raw.iter_mut() {
                    *x = sigmoid(*x);
                }
            }
            Link::Platt { a, b } => {
                for x in raw.iter_mut() {
                    *x = sigmoid(a * *x + b);
                }
            }
            Link::Softmax => {
                let max = raw.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let mut sum = 0.0;
                for x in raw.iter_mut() {
                    *x = (*x - max).exp();
                    sum += *x;
                }
                for x in raw.iter_mut() {
                    *x /= sum;
                }
            }
        }
    }
}

/// The logistic function, stable for large magnitudes.
#[inline]
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}
