//! Column transforms fitted on training rows only and saved inside the model,
//! so that serving applies exactly the pipeline training used.
//!
//! A [`PipelineSpec`] is the recipe (impute, scale, normalise text, encode);
//! [`Pipeline::fit`] learns its statistics from the training rows of a
//! [`Frame`] and [`Pipeline::transform`] / [`Pipeline::transform_row_into`]
//! turn a frame or one row into the estimator's [`Matrix`] row(s), through
//! the same per-column encoders. Every output feature records the input
//! column it came from, so explanations map back to input columns.

mod encode;
mod numeric;

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use vigie_core::{ColumnData, ColumnKind, Frame, Value};

pub use encode::{Encoding, FittedText, TextNormalize};
pub use numeric::{FittedNumeric, Impute, Scale};

use crate::error::{MlError, Result};
use crate::matrix::{FeatureInfo, Matrix, Task};

/// How numeric and boolean columns are prepared; the default changes nothing.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NumericRecipe {
    /// Fill missing values, or keep them missing (trees route them).
    pub impute: Option<Impute>,
    /// Add a 0/1 column saying the value was missing (only for columns with missing training values).
    pub missing_indicator: bool,
    /// Rescale, or not.
    pub scale: Option<Scale>,
}

/// How string columns are prepared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TextRecipe {
    /// Trimming and case folding applied before anything else.
    pub normalize: TextNormalize,
    /// Categories seen on fewer training rows than this share one "rare" bucket.
    pub min_frequency: usize,
    /// At most this many categories are kept (the most frequent); the rest are rare.
    pub max_categories: usize,
    /// How categories become numbers.
    pub encoding: Encoding,
}

impl Default for TextRecipe {
    fn default() -> Self {
        TextRecipe {
            normalize: TextNormalize::default(),
            min_frequency: 5,
            max_categories: 256,
            encoding: Encoding::Native,
        }
    }
}

/// The whole recipe.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineSpec {
    /// Numeric and boolean columns.
    pub numeric: NumericRecipe,
    /// String columns.
    pub text: TextRecipe,
}

impl PipelineSpec {
    /// The recipe for tree learners: missing values kept, categories native.
    pub fn for_trees() -> Self {
        PipelineSpec::default()
    }

    /// The recipe for linear models and the MLP: median imputation with an
    /// indicator, standard scaling, one-hot categories.
    pub fn for_linear() -> Self {
        PipelineSpec {
            numeric: NumericRecipe {
                impute: Some(Impute::Median),
                missing_indicator: true,
                scale: Some(Scale::Standard),
            },
            text: TextRecipe {
                max_categories: 50,
                encoding: Encoding::OneHot,
                ..TextRecipe::default()
            },
        }
    }
}

/// One input column the model reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputColumn {
    /// Its name.
    pub name: String,
    /// Its type at training time.
    pub kind: ColumnKind,
}

/// The fitted encoder of one input column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum FittedColumn {
    Numeric(FittedNumeric),
    Text(FittedText),
}

impl FittedColumn {
    fn width(&self) -> usize {
        match self {
            FittedColumn::Numeric(n) => n.width(),
            FittedColumn::Text(t) => t.width(),
        }
    }
}

/// A fitted pipeline: input schema and one encoder per input column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pipeline {
    /// The columns read, in order.
    pub inputs: Vec<InputColumn>,
    /// The output features, in order.
    pub features: Vec<FeatureInfo>,
    columns: Vec<FittedColumn>,
}

/// What the target looks like to target encoding: one value per row and per
/// encoded output (binary and regression: 1; multiclass: one per class).
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The encoded target of each training row.
    pub y: &'a [f32],
    /// The task, which says how many statistics target encoding keeps.
    pub task: Task,
}

impl Pipeline {
    /// Learns the pipeline from the rows `rows` of `frame` (the training fold),
    /// reading the columns `inputs`. Target encoding uses `target` (aligned with `rows`).
    pub fn fit(
        spec: &PipelineSpec,
        frame: &Frame,
        inputs: &[&str],
        rows: &[usize],
        target: Target<'_>,
        seed: u64,
    ) -> Result<Self> {
        // Columns are fitted independently, in parallel (numeric fits sort, text fits count).
        let fitted: Vec<(FittedColumn, ColumnKind)> = inputs
            .par_iter()
            .map(|name| {
                let column = frame.column(name).map_err(|e| MlError::InvalidData(e.to_string()))?;
                let fitted = match &column.data {
                    ColumnData::Numeric(values) | ColumnData::Boolean(values) => {
                        FittedColumn::Numeric(FittedNumeric::fit(&spec.numeric, values, rows))
                    }
                    ColumnData::Text(text) => {
                        FittedColumn::Text(FittedText::fit(&spec.text, text, rows, target, seed)?)
                    }
                };
                Ok((fitted, column.data.kind()))
            })
            .collect::<Result<_>>()?;
        let mut columns = Vec::with_capacity(inputs.len());
        let mut input_columns = Vec::with_capacity(inputs.len());
        let mut features = Vec::new();
        for (source, (name, (fitted, kind))) in inputs.iter().zip(fitted).enumerate() {
            let names = match &fitted {
                FittedColumn::Numeric(n) => n.feature_names(name),
                FittedColumn::Text(t) => t.feature_names(name),
            };
            let categories = match &fitted {
                FittedColumn::Text(t) => t.native_categories(),
                FittedColumn::Numeric(_) => None,
            };
            for feature_name in names {
                features.push(FeatureInfo { name: feature_name, source, categories });
            }
            input_columns.push(InputColumn { name: (*name).to_owned(), kind });
            columns.push(fitted);
        }
        Ok(Pipeline { inputs: input_columns, features, columns })
    }

    /// Number of output features.
    pub fn n_features(&self) -> usize {
        self.features.len()
    }

    /// Checks the input frame against the training schema: every column present, of a compatible type.
    fn resolve<'f>(&self, frame: &'f Frame) -> Result<Vec<&'f ColumnData>> {
        self.inputs
            .iter()
            .map(|input| {
                let column = frame.column(&input.name).map_err(|_| MlError::MissingColumn(input.name.clone()))?;
                let got = column.data.kind();
                let compatible = got == input.kind
                    || matches!((got, input.kind), (ColumnKind::Boolean, ColumnKind::Numeric) | (ColumnKind::Numeric, ColumnKind::Boolean))
                    // A column that is missing on every row reads as numeric.
                    || column.data.missing_count() == column.data.len();
                if !compatible {
                    return Err(MlError::WrongColumnType {
                        column: input.name.clone(),
                        got: got.to_string(),
                        expected: input.kind.to_string(),
                    });
                }
                Ok(&column.data)
            })
            .collect()
    }

    /// Encodes every row of `frame` with the training-time statistics.
    pub fn transform(&self, frame: &Frame) -> Result<Matrix> {
        let data = self.resolve(frame)?;
        self.encode(&data, frame.n_rows(), false)
    }

    /// Encodes the training rows `rows` of `frame`; target encoding uses
    /// out-of-fold statistics here so no row sees its own label.
    pub fn transform_training(&self, frame: &Frame, rows: &[usize]) -> Result<Matrix> {
        let data = self.resolve(frame)?;
        let taken: Vec<ColumnData> = data.iter().map(|c| c.take(rows)).collect();
        let refs: Vec<&ColumnData> = taken.iter().collect();
        self.encode(&refs, rows.len(), true)
    }

    fn encode(&self, data: &[&ColumnData], n_rows: usize, out_of_fold: bool) -> Result<Matrix> {
        let n_cols = self.n_features();
        let mut matrix = Matrix::zeros(n_rows, n_cols);
        let mut offset = 0;
        for (fitted, column) in self.columns.iter().zip(data) {
            let width = fitted.width();
            match (fitted, column) {
                (
                    FittedColumn::Numeric(n),
                    ColumnData::Numeric(values) | ColumnData::Boolean(values),
                ) => {
                    for (i, &x) in values.iter().enumerate() {
                        n.encode(x, &mut matrix.row_mut(i)[offset..offset + width]);
                    }
                }
                (FittedColumn::Numeric(n), ColumnData::Text(_)) => {
                    // Entirely missing column read as text: every value is missing.
                    for i in 0..n_rows {
                        n.encode(f64::NAN, &mut matrix.row_mut(i)[offset..offset + width]);
                    }
                }
                (FittedColumn::Text(t), ColumnData::Text(text)) => {
                    t.encode_column(text, out_of_fold, &mut matrix, offset)?;
                }
                (FittedColumn::Text(t), ColumnData::Numeric(_) | ColumnData::Boolean(_)) => {
                    for i in 0..n_rows {
                        t.encode(None, &mut matrix.row_mut(i)[offset..offset + width]);
                    }
                }
            }
            offset += width;
        }
        Ok(matrix)
    }

    /// Encodes one row given as values in the order of [`Pipeline::inputs`] into `out`
    /// (`n_features` long). Allocates nothing.
    pub fn transform_row_into(&self, values: &[Value], out: &mut [f32]) -> Result<()> {
        if values.len() != self.inputs.len() || out.len() != self.n_features() {
            return Err(MlError::InvalidData(format!(
                "expected {} input values and {} outputs, got {} and {}",
                self.inputs.len(),
                self.n_features(),
                values.len(),
                out.len()
            )));
        }
        let mut offset = 0;
        for ((fitted, value), input) in self.columns.iter().zip(values).zip(&self.inputs) {
            let width = fitted.width();
            let slot = &mut out[offset..offset + width];
            match fitted {
                FittedColumn::Numeric(n) => {
                    let x = match value {
                        Value::Missing => f64::NAN,
                        Value::Number(x) => *x,
                        Value::Bool(b) => f64::from(u8::from(*b)),
                        Value::Text(_) => {
                            return Err(MlError::WrongColumnType {
                                column: input.name.clone(),
                                got: "text".into(),
                                expected: input.kind.to_string(),
                            });
                        }
                    };
                    n.encode(x, slot);
                }
                FittedColumn::Text(t) => match value {
                    Value::Text(s) => t.encode(Some(s), slot),
                    Value::Missing => t.encode(None, slot),
                    Value::Number(_) | Value::Bool(_) => {
                        return Err(MlError::WrongColumnType {
                            column: input.name.clone(),
                            got: "numeric".into(),
                            expected: "text".into(),
                        });
                    }
                },
            }
            offset += width;
        }
        Ok(())
    }

    /// Sums per-feature contributions into per-input-column ones (`n_inputs` long, bias not included).
    pub fn fold_contributions(&self, per_feature: &[f64], per_input: &mut [f64]) {
        per_input.fill(0.0);
        for (feature, value) in self.features.iter().zip(per_feature) {
            if let Some(slot) = per_input.get_mut(feature.source) {
                *slot += value;
            }
        }
    }

    /// A short description of each input column's encoder, for `vigie models show`.
    pub fn describe(&self) -> BTreeMap<String, String> {
        self.inputs
            .iter()
            .zip(&self.columns)
            .map(|(input, fitted)| {
                let text = match fitted {
                    FittedColumn::Numeric(n) => n.describe(),
                    FittedColumn::Text(t) => t.describe(),
                };
                (input.name.clone(), text)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;

/// Parses `none`, `mean`, `median`, `most-frequent` or `constant:VALUE` (`none` keeps values missing).
pub fn parse_impute(text: &str) -> std::result::Result<Option<Impute>, String> {
    match text {
        "none" => Ok(None),
        "mean" => Ok(Some(Impute::Mean)),
        "median" => Ok(Some(Impute::Median)),
        "most-frequent" => Ok(Some(Impute::MostFrequent)),
        other => match other.strip_prefix("constant:").map(str::parse::<f64>) {
            Some(Ok(value)) if value.is_finite() => Ok(Some(Impute::Constant(value))),
            _ => Err(format!(
                "unknown imputation {other:?}, expected none, mean, median, most-frequent or constant:VALUE"
            )),
        },
    }
}

/// Parses `none`, `standard`, `minmax` or `robust`.
pub fn parse_scale(text: &str) -> std::result::Result<Option<Scale>, String> {
    match text {
        "none" => Ok(None),
        "standard" => Ok(Some(Scale::Standard)),
        "minmax" => Ok(Some(Scale::MinMax)),
        "robust" => Ok(Some(Scale::Robust)),
        other => {
            Err(format!("unknown scaling {other:?}, expected none, standard, minmax or robust"))
        }
    }
}

/// Parses `native`, `onehot`, `ordinal`, `target` or `hashing:BUCKETS`.
pub fn parse_encoding(text: &str) -> std::result::Result<Encoding, String> {
    match text {
        "native" => Ok(Encoding::Native),
        "onehot" | "one-hot" => Ok(Encoding::OneHot),
        "ordinal" => Ok(Encoding::Ordinal),
        "target" => Ok(Encoding::Target { smoothing: 10.0, folds: 5 }),
        other => match other.strip_prefix("hashing:").map(str::parse::<usize>) {
            Some(Ok(buckets)) if buckets > 0 => Ok(Encoding::Hashing { buckets }),
            _ => Err(format!(
                "unknown encoding {other:?}, expected native, onehot, ordinal, target or hashing:BUCKETS"
            )),
        },
    }
}
