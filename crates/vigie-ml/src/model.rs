//! A trained model: the fitted pipeline, the estimator and the card that says
//! what it is, how it was trained and how well it did.

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use vigie_core::{ColumnData, Frame, Value};

use crate::error::{MlError, Result};
use crate::estimator::Estimator;
use crate::matrix::Task;
use crate::transform::Pipeline;
use crate::tree::ShapScratch;

/// Mean and standard deviation of a metric over cross-validation folds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MetricSummary {
    /// Mean over folds.
    pub mean: f64,
    /// Population standard deviation over folds.
    pub std: f64,
}

impl MetricSummary {
    /// Summarises fold values, ignoring undefined (NaN) ones.
    pub fn of(values: &[f64]) -> Self {
        let defined: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
        if defined.is_empty() {
            return MetricSummary { mean: f64::NAN, std: f64::NAN };
        }
        let n = defined.len() as f64;
        let mean = defined.iter().sum::<f64>() / n;
        let std = (defined.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        MetricSummary { mean, std }
    }
}

/// What the training data was, without keeping it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataFingerprint {
    /// SHA-256 over column names, types and every value, in row order.
    pub sha256: String,
    /// Rows used.
    pub rows: usize,
    /// Columns read (features and label).
    pub columns: usize,
    /// Where the data came from, as the caller named it (a file path, a feature view).
    pub source: String,
}

/// SHA-256 fed through a buffer of [`BufferedHasher::BLOCK`] bytes: the
/// digest's cost per call, not per byte, was most of fingerprinting a table
/// eight bytes at a time (672,000 rows: 0.1 s of CPU). The digest is that
/// of the same bytes fed one by one.
#[derive(Default)]
struct BufferedHasher {
    hasher: Sha256,
    buffer: Vec<u8>,
}

impl BufferedHasher {
    const BLOCK: usize = 1 << 16;

    #[inline]
    fn update(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= Self::BLOCK {
            self.hasher.update(&self.buffer);
            self.buffer.clear();
        }
    }

    fn finish(mut self) -> Sha256 {
        self.hasher.update(&self.buffer);
        self.hasher
    }
}

impl DataFingerprint {
    /// Fingerprints the columns `names` of `frame`.
    pub fn of(frame: &Frame, names: &[&str], source: &str) -> Self {
        let mut hasher = BufferedHasher::default();
        for column in frame.columns().iter().filter(|c| names.contains(&c.name.as_str())) {
            hasher.update(&(column.name.len() as u64).to_le_bytes());
            hasher.update(column.name.as_bytes());
            hasher.update(column.data.kind().to_string().as_bytes());
            match &column.data {
                ColumnData::Numeric(values) | ColumnData::Boolean(values) => {
                    for value in values {
                        hasher.update(&value.to_bits().to_le_bytes());
                    }
                }
                ColumnData::Text(text) => {
                    for i in 0..text.codes.len() {
                        match text.get(i) {
                            None => hasher.update(&[0u8]),
                            Some(value) => {
                                hasher.update(&[1u8]);
                                hasher.update(&(value.len() as u64).to_le_bytes());
                                hasher.update(value.as_bytes());
                            }
                        }
                    }
                }
            }
        }
        let hasher = hasher.finish();
        let sha256 = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
        DataFingerprint {
            sha256,
            rows: frame.n_rows(),
            columns: names.len(),
            source: source.to_owned(),
        }
    }
}

/// Everything about a model except its numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    /// The model's name.
    pub name: String,
    /// Its version within the name (assigned when saved; 0 before).
    pub version: u32,
    /// The algorithm (`gbdt`, `random-forest`, `logistic`, `linear-svm`, `mlp`, `linear`).
    pub algorithm: String,
    /// What it predicts.
    pub task: Task,
    /// The label column.
    pub label: String,
    /// Class names in output order; binary: `[negative, positive]`. Empty for regression.
    pub classes: Vec<String>,
    /// The hyper-parameters of the final fit.
    pub params: serde_json::Value,
    /// Cross-validated metrics.
    pub cv: BTreeMap<String, MetricSummary>,
    /// Number of cross-validation folds (0 when none ran).
    pub cv_folds: usize,
    /// Out-of-bag metrics of a random forest's final fit (empty for other algorithms).
    #[serde(default)]
    pub oob: BTreeMap<String, f64>,
    /// Binary decision threshold on the positive-class probability.
    pub threshold: Option<f64>,
    /// The goal the threshold was chosen for (`max-f1`, `recall:0.9`, `fpr:0.01`).
    pub threshold_goal: Option<String>,
    /// The training data.
    pub data: DataFingerprint,
    /// Seed of every random choice.
    pub seed: u64,
    /// Seconds spent in `train` (cross-validation, search and final fit).
    pub train_seconds: f64,
    /// When training finished (RFC 3339, UTC), as the caller's clock said.
    pub trained_at: String,
    /// The Vigie version that trained it.
    pub vigie_version: String,
    /// Where the inputs come from, when trained from the feature store
    /// (absent in files written before it was recorded).
    #[serde(default)]
    pub store: Option<vigie_core::lineage::StoreInputs>,
}

/// A trained model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// What it is.
    pub card: ModelCard,
    /// The fitted transforms.
    pub pipeline: Pipeline,
    /// The fitted estimator.
    pub estimator: Estimator,
}

/// Reusable buffers for scoring one row at a time without allocating.
#[derive(Debug, Clone)]
pub struct RowScratch {
    features: Vec<f32>,
    outputs: Vec<f64>,
}

/// Per-input-column contributions of a batch of rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// Input column names, in the order of each row's values.
    pub columns: Vec<String>,
    /// Per row, per output, per input column; the bias is in `bias`.
    pub contributions: Vec<f64>,
    /// Per row and output, the expected raw output (the part no column explains).
    pub bias: Vec<f64>,
    /// Raw outputs per row explained.
    pub n_outputs: usize,
}

impl Model {
    /// Checks a loaded model's parts against each other.
    pub fn validate(&mut self) -> Result<()> {
        let n_features = self.pipeline.n_features();
        self.estimator.validate(n_features)?;
        if self.estimator.n_outputs() != self.card.task.n_outputs() {
            return Err(MlError::Corrupted(format!(
                "estimator has {} outputs, task {} needs {}",
                self.estimator.n_outputs(),
                self.card.task.name(),
                self.card.task.n_outputs()
            )));
        }
        Ok(())
    }

    /// Predictions per output (probabilities for classification), for one row of
    /// values in [`Pipeline::inputs`] order. No allocation once `scratch` exists.
    pub fn predict_row<'s>(
        &self,
        values: &[Value],
        scratch: &'s mut RowScratch,
    ) -> Result<&'s [f64]> {
        self.pipeline.transform_row_into(values, &mut scratch.features)?;
        self.estimator.predict_raw_into(&scratch.features, &mut scratch.outputs);
        self.estimator.link().apply(&mut scratch.outputs);
        Ok(&scratch.outputs)
    }

    /// Buffers for [`Model::predict_row`].
    pub fn scratch(&self) -> RowScratch {
        RowScratch {
            features: vec![0.0; self.pipeline.n_features()],
            outputs: vec![0.0; self.estimator.n_outputs()],
        }
    }

    /// Predictions for every row of `frame`: `n_outputs` values per row, in parallel.
    pub fn predict(&self, frame: &Frame) -> Result<Vec<f64>> {
        let matrix = self.pipeline.transform(frame)?;
        Ok(self.predict_matrix(&matrix))
    }

    /// Predictions for already-encoded rows.
    pub fn predict_matrix(&self, matrix: &crate::Matrix) -> Vec<f64> {
        predict_estimator(&self.estimator, matrix)
    }

    /// The decision for one row's predictions: the class name, or the value for regression.
    pub fn decide(&self, predictions: &[f64]) -> Value {
        match self.card.task {
            Task::Regression => Value::Number(predictions.first().copied().unwrap_or(f64::NAN)),
            Task::Binary => {
                let positive = predictions.first().copied().unwrap_or(f64::NAN)
                    >= self.card.threshold.unwrap_or(0.5);
                let class =
                    self.card.classes.get(usize::from(positive)).cloned().unwrap_or_default();
                Value::Text(class)
            }
            Task::Multiclass { .. } => {
                let best = predictions
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .map_or(0, |(k, _)| k);
                Value::Text(self.card.classes.get(best).cloned().unwrap_or_default())
            }
        }
    }

    /// Per-input-column contributions for every row of `frame` (raw-output scale): exact
    /// for trees (TreeSHAP) and linear models; Shapley values against a reference row for
    /// the MLP ([`crate::mlp::Mlp::shapley_into`]: exact up to 10 input columns, sampled
    /// beyond). Each row's contributions and bias sum to its raw output.
    pub fn explain(&self, frame: &Frame) -> Result<Explanation> {
        let matrix = self.pipeline.transform(frame)?;
        let n_outputs = self.estimator.n_outputs();
        let n_features = self.pipeline.n_features();
        let n_inputs = self.pipeline.inputs.len();
        let width = n_features + 1;
        let group_of: Vec<usize> = self.pipeline.features.iter().map(|f| f.source).collect();
        let rows: Vec<Result<(Vec<f64>, Vec<f64>)>> = (0..matrix.n_rows)
            .into_par_iter()
            .map_init(ShapScratch::default, |scratch, i| {
                if let Estimator::Mlp(mlp) = &self.estimator {
                    let mut values = vec![0.0; n_outputs * (n_inputs + 1)];
                    mlp.shapley_into(matrix.row(i), &group_of, n_inputs, &mut values);
                    let mut per_input = Vec::with_capacity(n_outputs * n_inputs);
                    let mut bias = Vec::with_capacity(n_outputs);
                    for block in values.chunks_exact(n_inputs + 1) {
                        per_input.extend_from_slice(&block[..n_inputs]);
                        bias.push(block[n_inputs]);
                    }
                    return Ok((per_input, bias));
                }
                let mut per_feature = vec![0.0; n_outputs * width];
                self.estimator.contributions_into(matrix.row(i), &mut per_feature, scratch)?;
                let mut per_input = vec![0.0; n_outputs * n_inputs];
                let mut bias = vec![0.0; n_outputs];
                for k in 0..n_outputs {
                    let block = &per_feature[k * width..(k + 1) * width];
                    self.pipeline.fold_contributions(
                        &block[..n_features],
                        &mut per_input[k * n_inputs..(k + 1) * n_inputs],
                    );
                    bias[k] = block[n_features];
                }
                Ok((per_input, bias))
            })
            .collect();
        let mut contributions = Vec::with_capacity(matrix.n_rows * n_outputs * n_inputs);
        let mut bias = Vec::with_capacity(matrix.n_rows * n_outputs);
        for row in rows {
            let (c, b) = row?;
            contributions.extend(c);
            bias.extend(b);
        }
        Ok(Explanation {
            columns: self.pipeline.inputs.iter().map(|c| c.name.clone()).collect(),
            contributions,
            bias,
            n_outputs,
        })
    }
}

/// Rows scored together by one task of batch prediction.
const BLOCK_ROWS: usize = 256;

/// Predictions (after the link) of an estimator for every row of `matrix`, in parallel.
pub fn predict_estimator(estimator: &Estimator, matrix: &crate::Matrix) -> Vec<f64> {
    let n_outputs = estimator.n_outputs();
    let link = estimator.link();
    let mut out = vec![0.0; matrix.n_rows * n_outputs];
    out.par_chunks_mut(n_outputs.max(1) * BLOCK_ROWS).enumerate().for_each(|(chunk, block)| {
        let first = chunk * BLOCK_ROWS;
        match estimator {
            // Tree after tree over the block, so one tree's nodes stay in cache for every row.
            Estimator::Trees(ensemble) => ensemble.predict_block_into(matrix, first, block),
            _ => {
                for (j, row_out) in block.chunks_mut(n_outputs).enumerate() {
                    estimator.predict_raw_into(matrix.row(first + j), row_out);
                }
            }
        }
        for row_out in block.chunks_mut(n_outputs) {
            link.apply(row_out);
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use vigie_core::{Column, ColumnKind, TextColumn};

    use super::*;

    #[test]
    fn a_fingerprint_digests_each_column_value_by_value() {
        // Enough rows that the buffer is flushed several times, mid-value.
        let n = 30_001;
        let numbers: Vec<f64> = (0..n).map(|i| i as f64 * 0.5 - 7.0).collect();
        let words: Vec<Option<String>> =
            (0..n).map(|i| (i % 7 != 3).then(|| format!("store-{}", i % 13))).collect();
        let frame = Frame::new(vec![
            Column { name: "amount".into(), data: ColumnData::Numeric(numbers.clone()) },
            Column {
                name: "store".into(),
                data: ColumnData::Text(TextColumn::from_values(words.iter().map(|w| w.as_deref()))),
            },
            Column { name: "left_out".into(), data: ColumnData::Numeric(vec![1.0; n]) },
        ])
        .unwrap();
        let fingerprint = DataFingerprint::of(&frame, &["amount", "store"], "rows.csv");
        // The same bytes, fed one value at a time.
        let mut hasher = Sha256::new();
        hasher.update(6u64.to_le_bytes());
        hasher.update(b"amount");
        hasher.update(ColumnKind::Numeric.to_string().as_bytes());
        for value in &numbers {
            hasher.update(value.to_bits().to_le_bytes());
        }
        hasher.update(5u64.to_le_bytes());
        hasher.update(b"store");
        hasher.update(ColumnKind::Text.to_string().as_bytes());
        for word in &words {
            match word {
                None => hasher.update([0u8]),
                Some(word) => {
                    hasher.update([1u8]);
                    hasher.update((word.len() as u64).to_le_bytes());
                    hasher.update(word.as_bytes());
                }
            }
        }
        let expected: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(fingerprint.sha256, expected);
        assert_eq!((fingerprint.rows, fingerprint.columns), (n, 2));
    }
}
