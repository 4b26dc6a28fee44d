//! A small multi-layer perceptron. (Interface stub: a helper fills this in.)

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::matrix::Link;

/// A fitted MLP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mlp {}

impl Mlp {
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
    /// Checks a deserialized model.
    pub fn validate(&mut self, _n_features: usize) -> Result<()> {
        unimplemented!()
    }
}
