//! Vigie's machine-learning engine: pure algorithms on in-memory data.
//!
//! No I/O and no async here: callers hand in a [`vigie_core::Frame`] and get
//! fitted models, metrics and explanations back; reading files and writing
//! model files to disk is the caller's job (the model format itself,
//! [`format`], works on bytes).
//!
//! The flow is `Frame` → [`transform::Pipeline`] (fitted on training rows
//! only) → [`Matrix`] → an estimator ([`gbdt`], [`forest`], [`linear`],
//! [`mlp`]) → a [`model::Model`] that bundles pipeline, estimator and
//! metadata, predicts single rows without allocating and explains them.

pub mod error;
pub mod estimator;
pub mod forecast;
pub mod forest;
pub mod format;
pub mod gbdt;
pub mod linear;
pub mod matrix;
pub mod metrics;
pub mod mlp;
pub mod model;
pub mod rng;
pub mod saved;
pub mod search;
pub mod split;
pub mod target;
pub mod threshold;
pub mod train;
pub mod transform;
pub mod tree;

pub use error::{MlError, Result};
pub use estimator::{Estimator, TrainSet};
pub use matrix::{FeatureInfo, Link, Matrix, Task};
pub use model::{Model, ModelCard};
pub use saved::SavedModel;
