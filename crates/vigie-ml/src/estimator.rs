//! The fitted estimators behind one enum, and the training set they learn from.
//!
//! Every algorithm module exposes `fit(&Params, &TrainSet, Option<&TrainSet>, seed)`
//! returning its fitted form, which converts into an [`Estimator`]. Scoring
//! goes through [`Estimator::predict_raw_into`] (raw outputs: margins or
//! averaged probabilities) and the [`Link`] that turns them into predictions.

use serde::{Deserialize, Serialize};

use crate::error::{MlError, Result};
use crate::linear::LinearModel;
use crate::matrix::{FeatureInfo, Link, Matrix, Task};
use crate::mlp::Mlp;
use crate::tree::{ShapScratch, TreeEnsemble};

/// Rows to learn from: features, targets, optional weights.
#[derive(Debug, Clone, Copy)]
pub struct TrainSet<'a> {
    /// One row per example; `NaN` is missing (only tree learners receive missing values).
    pub x: &'a Matrix,
    /// Binary: 0/1; multiclass: class index; regression: the value.
    pub y: &'a [f32],
    /// Per-row weights (class weights already folded in), or `None` for all ones.
    pub weights: Option<&'a [f32]>,
    /// What each column of `x` is.
    pub features: &'a [FeatureInfo],
    /// What is predicted.
    pub task: Task,
}

impl TrainSet<'_> {
    /// The weight of row `i`.
    #[inline]
    pub fn weight(&self, i: usize) -> f32 {
        self.weights.map_or(1.0, |w| w[i])
    }
}

/// A fitted estimator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Estimator {
    /// Gradient-boosted trees or a random forest.
    Trees(TreeEnsemble),
    /// Logistic, linear/ridge regression or a linear SVM.
    Linear(LinearModel),
    /// A multi-layer perceptron.
    Mlp(Mlp),
}

impl Estimator {
    /// Number of raw outputs per row.
    pub fn n_outputs(&self) -> usize {
        match self {
            Estimator::Trees(e) => e.n_outputs,
            Estimator::Linear(m) => m.n_outputs(),
            Estimator::Mlp(m) => m.n_outputs(),
        }
    }

    /// How raw outputs become predictions.
    pub fn link(&self) -> Link {
        match self {
            Estimator::Trees(e) => e.link,
            Estimator::Linear(m) => m.link(),
            Estimator::Mlp(m) => m.link(),
        }
    }

    /// Raw outputs of one row into `out` (`n_outputs` long), without allocating.
    #[inline]
    pub fn predict_raw_into(&self, row: &[f32], out: &mut [f64]) {
        match self {
            Estimator::Trees(e) => e.predict_raw_into(row, out),
            Estimator::Linear(m) => m.predict_raw_into(row, out),
            Estimator::Mlp(m) => m.predict_raw_into(row, out),
        }
    }

    /// Exact per-feature contributions of one row: `n_outputs * (n_features + 1)`
    /// values, per output, bias last; each output's values sum to its raw output.
    /// `scratch` holds the tree pass's buffers between calls.
    pub fn contributions_into(
        &self,
        row: &[f32],
        out: &mut [f64],
        scratch: &mut ShapScratch,
    ) -> Result<()> {
        match self {
            Estimator::Trees(e) => e.contributions_into(row, out, scratch),
            Estimator::Linear(m) => {
                m.contributions_into(row, out);
                Ok(())
            }
            Estimator::Mlp(_) => Err(MlError::Unsupported(
                "per-feature contributions are for tree and linear models; the MLP's are \
                 per input column (Model::explain)"
                    .into(),
            )),
        }
    }

    /// Checks a deserialized estimator so that prediction cannot index out of bounds.
    pub fn validate(&mut self, n_features: usize) -> Result<()> {
        match self {
            Estimator::Trees(e) => {
                e.validate()?;
                if e.n_features != n_features {
                    return Err(MlError::Corrupted(format!(
                        "trees expect {} features, pipeline makes {n_features}",
                        e.n_features
                    )));
                }
                Ok(())
            }
            Estimator::Linear(m) => m.validate(n_features),
            Estimator::Mlp(m) => m.validate(n_features),
        }
    }
}
