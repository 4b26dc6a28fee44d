//! Learned cleaning of a view's row-level features (`[feature_views.V.clean]`).
//!
//! The statistics (a fill value, a scale, the kept categories) are learned
//! once from the view's evaluated rows by the ML engine's own transforms
//! (`vigie_ml::transform`), stored beside the view in the offline store, and
//! from then on applied as they are by both executions, the batch engine and
//! the stream processor, so that both give the same values. They are learned
//! again only when the view's cleaning or a cleaned expression changes, or on
//! `vigie materialize --refit`.
//!
//! A cleaned feature is cleaned wherever it is read: in the view's rows and
//! as the input of the view's aggregations.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float64Array, RecordBatch, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema};
use serde::{Deserialize, Serialize};
use vigie_core::TextColumn;
use vigie_core::config::{Clean, CleanFill, CleanImpute, CleanScale, FeatureView};
use vigie_ml::Task;
use vigie_ml::transform::{
    Encoding, FittedNumeric, FittedText, Impute, NumericRecipe, Scale, Target, TextNormalize,
    TextRecipe,
};

use crate::error::{FeatureError, Result};

/// What rare and unseen text values become unless `rare` says otherwise.
const RARE: &str = "other";

/// The learned cleaning of one view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cleaning {
    /// The view's cleaning and cleaned expressions when learned: a different
    /// definition is learned again.
    definition: String,
    /// Rows the statistics were learned from.
    pub rows: usize,
    /// Feature → its fitted cleaner.
    features: BTreeMap<String, Cleaner>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Cleaner {
    Numeric {
        fitted: FittedNumeric,
    },
    Text {
        fitted: FittedText,
        /// What missing values become (`None`: they stay missing).
        fill: Option<String>,
        /// What rare and unseen values become.
        rare: String,
    },
}

fn invalid(view: &str, feature: &str, message: impl std::fmt::Display) -> FeatureError {
    FeatureError::InvalidData(format!("[feature_views.{view}.clean] {feature}: {message}"))
}

fn is_text(data_type: &DataType) -> bool {
    matches!(data_type, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

fn is_number(data_type: &DataType) -> bool {
    data_type.is_numeric() || *data_type == DataType::Boolean
}

/// The view's cleaning, as learned statistics depend on it: the `clean`
/// section and the SQL of each cleaned feature.
pub fn definition(view: &FeatureView) -> String {
    let cleaned: BTreeMap<&String, (&Clean, Option<&String>)> = view
        .clean
        .iter()
        .map(|(feature, clean)| {
            (feature, (clean.get_ref(), view.columns.get(feature).map(|e| e.get_ref())))
        })
        .collect();
    serde_json::to_string(&cleaned).unwrap_or_default()
}

/// A numeric column as `f64`, missing values as NaN.
fn numbers(values: &ArrayRef) -> std::result::Result<Vec<f64>, String> {
    let floats = cast(values, &DataType::Float64).map_err(|e| e.to_string())?;
    let floats = floats
        .as_any()
        .downcast_ref::<Float64Array>()
        .ok_or_else(|| "internal: cast to Float64".to_owned())?;
    Ok((0..floats.len())
        .map(|i| if floats.is_null(i) { f64::NAN } else { floats.value(i) })
        .collect())
}

fn strings(values: &ArrayRef) -> std::result::Result<StringArray, String> {
    let text = cast(values, &DataType::Utf8).map_err(|e| e.to_string())?;
    text.as_any()
        .downcast_ref::<StringArray>()
        .cloned()
        .ok_or_else(|| "internal: cast to Utf8".to_owned())
}

impl Cleaning {
    /// Whether these statistics were learned for `view` as it is now defined.
    pub fn fits(&self, view: &FeatureView) -> bool {
        self.definition == definition(view)
    }

    /// Learns the cleaning of view `name` from its evaluated rows.
    pub fn fit(name: &str, view: &FeatureView, rows: &RecordBatch) -> Result<Cleaning> {
        let all: Vec<usize> = (0..rows.num_rows()).collect();
        let mut features = BTreeMap::new();
        for (feature, clean) in &view.clean {
            let clean = clean.get_ref();
            let values = rows
                .column_by_name(feature)
                .ok_or_else(|| invalid(name, feature, "the view computes no such feature"))?;
            let data_type = values.data_type();
            let cleaner = if is_text(data_type) {
                if clean.has_numeric_keys() {
                    return Err(invalid(
                        name,
                        feature,
                        "the feature is text; scale, impute = \"mean\"/\"median\" and a numeric \
                         fill are for numbers",
                    ));
                }
                fit_text(clean, &strings(values).map_err(|e| invalid(name, feature, e))?, &all)
                    .map_err(|e| invalid(name, feature, e))?
            } else if is_number(data_type) {
                if clean.has_text_keys() {
                    return Err(invalid(
                        name,
                        feature,
                        format!(
                            "the feature is a number ({data_type}); trim, lowercase, \
                             min_frequency, max_categories, rare and a text fill are for text"
                        ),
                    ));
                }
                let values = numbers(values).map_err(|e| invalid(name, feature, e))?;
                Cleaner::Numeric {
                    fitted: FittedNumeric::fit(&numeric_recipe(clean), &values, &all),
                }
            } else {
                return Err(invalid(
                    name,
                    feature,
                    format!("a {data_type} feature cannot be cleaned (numbers and text can)"),
                ));
            };
            features.insert(feature.clone(), cleaner);
        }
        Ok(Cleaning { definition: definition(view), rows: rows.num_rows(), features })
    }

    /// `rows` (a view's evaluated rows) with every cleaned feature, and every
    /// aggregation input that reads one, cleaned.
    pub fn apply(&self, name: &str, view: &FeatureView, rows: RecordBatch) -> Result<RecordBatch> {
        // The evaluated columns each cleaner rewrites: the feature and its aggregation inputs.
        let mut targets: Vec<(String, &str)> = Vec::new();
        for feature in self.features.keys() {
            targets.push((feature.clone(), feature));
            for (idx, aggregation) in view.aggregations.iter().enumerate() {
                if aggregation.column.as_ref().is_some_and(|c| c.get_ref() == feature) {
                    targets.push((format!("_agg{idx}"), feature));
                }
            }
        }
        let schema = rows.schema();
        let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        let mut columns: Vec<ArrayRef> = rows.columns().to_vec();
        for (column, feature) in targets {
            let Ok(at) = schema.index_of(&column) else { continue };
            let cleaner = &self.features[feature];
            let cleaned = cleaner.apply(&columns[at]).map_err(|e| invalid(name, feature, e))?;
            fields[at] = Field::new(column, cleaned.data_type().clone(), true);
            columns[at] = cleaned;
        }
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
            .map_err(|e| FeatureError::InvalidData(format!("feature view {name:?}: {e}")))
    }
}

fn numeric_recipe(clean: &Clean) -> NumericRecipe {
    let impute = match (&clean.fill, clean.impute.unwrap_or(CleanImpute::None)) {
        (Some(CleanFill::Number(value)), _) => Some(Impute::Constant(*value)),
        (_, CleanImpute::None) => None,
        (_, CleanImpute::Mean) => Some(Impute::Mean),
        (_, CleanImpute::Median) => Some(Impute::Median),
        (_, CleanImpute::MostFrequent) => Some(Impute::MostFrequent),
    };
    let scale = match clean.scale.unwrap_or(CleanScale::None) {
        CleanScale::None => None,
        CleanScale::Standard => Some(Scale::Standard),
        CleanScale::Minmax => Some(Scale::MinMax),
        CleanScale::Robust => Some(Scale::Robust),
    };
    NumericRecipe { impute, missing_indicator: false, scale }
}

fn fit_text(
    clean: &Clean,
    values: &StringArray,
    rows: &[usize],
) -> std::result::Result<Cleaner, String> {
    let recipe = TextRecipe {
        normalize: TextNormalize {
            trim: clean.trim.unwrap_or(true),
            lowercase: clean.lowercase.unwrap_or(true),
        },
        min_frequency: clean.min_frequency.unwrap_or(TextRecipe::default().min_frequency),
        max_categories: clean.max_categories.unwrap_or(TextRecipe::default().max_categories),
        encoding: Encoding::Native,
    };
    let column = TextColumn::from_values(values.iter());
    // Categories are counted without a target (native codes use none).
    let no_target = Target { y: &[], task: Task::Binary };
    let fitted =
        FittedText::fit(&recipe, &column, rows, no_target, 0).map_err(|e| e.to_string())?;
    let fill = match (&clean.fill, clean.impute.unwrap_or(CleanImpute::None)) {
        (Some(CleanFill::Text(text)), _) => Some(text.clone()),
        (_, CleanImpute::MostFrequent) => {
            // The kept category of the most rows; ties go to the first in sorted order.
            let mut counts = vec![0usize; fitted.categories().len()];
            for raw in values.iter().flatten() {
                if let Some(category) = fitted.category(raw)
                    && let Ok(at) =
                        fitted.categories().binary_search_by(|c| c.as_str().cmp(category))
                {
                    counts[at] += 1;
                }
            }
            let best = counts.iter().enumerate().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(&a.0)));
            best.filter(|(_, count)| **count > 0).map(|(at, _)| fitted.categories()[at].clone())
        }
        _ => None,
    };
    Ok(Cleaner::Text { fitted, fill, rare: clean.rare.clone().unwrap_or_else(|| RARE.to_owned()) })
}

impl Cleaner {
    fn apply(&self, values: &ArrayRef) -> std::result::Result<ArrayRef, String> {
        match self {
            Cleaner::Numeric { fitted } => {
                if is_text(values.data_type()) {
                    return Err("the feature was learned as a number and is now text".into());
                }
                let cleaned: Float64Array = numbers(values)?
                    .into_iter()
                    .map(|x| Some(fitted.value(x)).filter(|v| !v.is_nan()))
                    .collect();
                Ok(Arc::new(cleaned))
            }
            Cleaner::Text { fitted, fill, rare } => {
                if !is_text(values.data_type()) {
                    return Err("the feature was learned as text and is now a number".into());
                }
                let cleaned: StringArray = strings(values)?
                    .iter()
                    .map(|raw| match raw {
                        None => fill.as_deref(),
                        Some(raw) => Some(fitted.category(raw).unwrap_or(rare)),
                    })
                    .collect();
                Ok(Arc::new(cleaned))
            }
        }
    }
}
