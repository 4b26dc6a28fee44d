//! Where a model's inputs come from when it was trained from the feature
//! store: for each input column, the feature view and feature it was read
//! from and the entity key that view is looked up by. The training command
//! records it in the model card; the server reads it to fetch a request's
//! features from the online store by entity key. Plain data, no I/O.

use serde::{Deserialize, Serialize};

/// The feature-store origin of a model's inputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreInputs {
    /// The model's entity, as named in `vigie.toml` (`customer`).
    pub entity: String,
    /// The entity's key column (`customer_id`): requests name entities by it.
    pub key: String,
    /// One entry per model input read from a feature view.
    pub inputs: Vec<StoreInput>,
}

/// One model input read from a feature view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreInput {
    /// The feature view.
    pub view: String,
    /// The feature within the view.
    pub feature: String,
    /// The model's input column (the feature's name, or `VIEW:FEATURE` when
    /// two views share a feature name).
    pub column: String,
    /// The key column the view is looked up by.
    pub key: String,
    /// The view's time-to-live in microseconds: a row older than this was
    /// missing at training.
    pub ttl_micros: Option<i64>,
}
