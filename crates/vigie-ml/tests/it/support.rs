//! What several test modules share: a table of features, targets and weights.

use vigie_ml::estimator::TrainSet;
use vigie_ml::matrix::{FeatureInfo, Matrix, Task};

/// A table with its targets, optional weights and task; features are named `x0`, `x1`…
pub struct Table {
    pub x: Matrix,
    pub y: Vec<f32>,
    pub weights: Option<Vec<f32>>,
    pub features: Vec<FeatureInfo>,
    pub task: Task,
}

impl Table {
    /// A table of numeric features without weights.
    pub fn new(x: Matrix, y: Vec<f32>, task: Task) -> Self {
        let features = (0..x.n_cols)
            .map(|idx| FeatureInfo { name: format!("x{idx}"), source: idx, categories: None })
            .collect();
        Table { x, y, weights: None, features, task }
    }

    /// The table as estimators take it.
    pub fn train_set(&self) -> TrainSet<'_> {
        TrainSet {
            x: &self.x,
            y: &self.y,
            weights: self.weights.as_deref(),
            features: &self.features,
            task: self.task,
        }
    }
}
