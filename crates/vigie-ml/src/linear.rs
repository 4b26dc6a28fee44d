//! Linear models: logistic regression, linear/ridge regression, linear SVM. (Interface stub: a helper fills this in.)

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::estimator::TrainSet;
use crate::matrix::Link;

/// A fitted linear model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearModel {}

impl LinearModel {
    /// Number of raw outputs.
    pub fn n_outputs(&self) -> usize {
        unimplemented!()
    }
    /// Link from raw outputs to predictions.
    pub fn link(&self) -> Link {
        unimplemented!()
    }
    /// Raw outputs of one row.
    pub fn predict_raw_into(&self, _row: &[f32], _out: &mut [f64]) {
        unimplemented!()
    }
    /// Exact contributions, `n_outputs * (n_features + 1)`, bias last.
    pub fn contributions_into(&self, _row: &[f32], _out: &mut [f64]) {
        unimplemented!()
    }
    /// Checks a deserialized model.
    pub fn validate(&mut self, _n_features: usize) -> Result<()> {
        unimplemented!()
    }
}

/// Hyper-parameters of logistic regression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct LogisticParams {}

/// Fits a logistic regression.
pub fn fit_logistic(_params: &LogisticParams, _train: &TrainSet<'_>, _seed: u64) -> Result<LinearModel> {
    unimplemented!()
}
