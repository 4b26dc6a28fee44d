//! Numeric and boolean columns: imputation, missing indicator, scaling.

use serde::{Deserialize, Serialize};

use super::NumericRecipe;

/// How missing numbers are filled.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "strategy", content = "value")]
pub enum Impute {
    /// The training mean.
    Mean,
    /// The training median.
    Median,
    /// The most frequent training value.
    MostFrequent,
    /// A fixed value.
    Constant(f64),
}

/// How numbers are rescaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scale {
    /// Subtract the mean, divide by the standard deviation.
    Standard,
    /// Map the training range onto [0, 1].
    MinMax,
    /// Subtract the median, divide by the inter-quartile range.
    Robust,
}

/// A fitted numeric encoder: `value → (value - center) / scale`, missing → fill (or NaN), plus an optional indicator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedNumeric {
    /// Value used for missing inputs; `None` keeps them missing.
    pub fill: Option<f64>,
    /// Whether a 0/1 missing indicator follows the value.
    pub indicator: bool,
    /// Subtracted before scaling.
    pub center: f64,
    /// Divided by after centering (never 0).
    pub scale: f64,
    /// Name of the scaling, for descriptions.
    pub scaling: Option<Scale>,
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    // Linear interpolation between closest ranks, as numpy's default.
    let position = q * (sorted.len() - 1) as f64;
    let low = position.floor() as usize;
    let high = position.ceil() as usize;
    let fraction = position - low as f64;
    sorted[low] + (sorted[high] - sorted[low]) * fraction
}

impl FittedNumeric {
    /// Learns fill value and scale from `values[rows]`.
    pub fn fit(recipe: &NumericRecipe, values: &[f64], rows: &[usize]) -> Self {
        if recipe.impute.is_none() && recipe.scale.is_none() {
            // The tree recipe keeps values as they are: only whether any is missing matters.
            let any_missing = rows.iter().any(|&i| values.get(i).is_none_or(|x| x.is_nan()));
            return FittedNumeric {
                fill: None,
                indicator: recipe.missing_indicator && any_missing,
                center: 0.0,
                scale: 1.0,
                scaling: None,
            };
        }
        let mut present: Vec<f64> =
            rows.iter().filter_map(|&i| values.get(i).copied()).filter(|x| !x.is_nan()).collect();
        let any_missing = present.len() < rows.len();
        present.sort_by(f64::total_cmp);
        let mean = if present.is_empty() {
            0.0
        } else {
            present.iter().sum::<f64>() / present.len() as f64
        };
        let fill = recipe.impute.map(|impute| match impute {
            Impute::Mean => mean,
            Impute::Median => quantile(&present, 0.5),
            Impute::Constant(value) => value,
            Impute::MostFrequent => {
                // Smallest of the most frequent values, as scikit-learn's SimpleImputer.
                let (mut best, mut best_count, mut idx) = (0.0, 0usize, 0);
                while idx < present.len() {
                    let run = present[idx..].iter().take_while(|&&x| x == present[idx]).count();
                    if run > best_count {
                        best = present[idx];
                        best_count = run;
                    }
                    idx += run;
                }
                best
            }
        });
        let (center, scale) = match recipe.scale {
            None => (0.0, 1.0),
            Some(Scale::Standard) => {
                let variance = if present.is_empty() {
                    0.0
                } else {
                    present.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / present.len() as f64
                };
                (mean, variance.sqrt())
            }
            Some(Scale::MinMax) => {
                let (min, max) = (
                    present.first().copied().unwrap_or(0.0),
                    present.last().copied().unwrap_or(0.0),
                );
                (min, max - min)
            }
            Some(Scale::Robust) => {
                (quantile(&present, 0.5), quantile(&present, 0.75) - quantile(&present, 0.25))
            }
        };
        // A constant column keeps scale 1, as scikit-learn's scalers do.
        let scale = if scale > 0.0 && scale.is_finite() { scale } else { 1.0 };
        FittedNumeric {
            fill,
            indicator: recipe.missing_indicator && any_missing,
            center,
            scale,
            scaling: recipe.scale,
        }
    }

    /// Output columns this encoder writes.
    pub fn width(&self) -> usize {
        1 + usize::from(self.indicator)
    }

    /// Output feature names.
    pub fn feature_names(&self, name: &str) -> Vec<String> {
        let mut names = vec![name.to_owned()];
        if self.indicator {
            names.push(format!("{name}_missing"));
        }
        names
    }

    /// Encodes one value into `out` (`width` long).
    #[inline]
    pub fn encode(&self, x: f64, out: &mut [f32]) {
        if self.fill.is_none() && !self.indicator && self.center == 0.0 && self.scale == 1.0 {
            // The tree recipe: the value as it is (the general formula gives the
            // same bits, a division later).
            out[0] = if x.is_finite() { x as f32 } else { f32::NAN };
            return;
        }
        out[0] = self.value(x) as f32;
        if self.indicator {
            out[1] = f32::from(u8::from(x.is_nan() || x.is_infinite()));
        }
    }

    /// `x` filled when missing (NaN or infinite; NaN when nothing fills it), then rescaled:
    /// the first output of [`FittedNumeric::encode`], in full precision.
    #[inline]
    pub fn value(&self, x: f64) -> f64 {
        let missing = x.is_nan() || x.is_infinite();
        let value = if missing { self.fill.unwrap_or(f64::NAN) } else { x };
        (value - self.center) / self.scale
    }

    /// A one-line description.
    pub fn describe(&self) -> String {
        let mut parts = vec!["numeric".to_owned()];
        if let Some(fill) = self.fill {
            parts.push(format!("missing → {fill}"));
        } else {
            parts.push("missing kept".to_owned());
        }
        if self.indicator {
            parts.push("missing indicator".to_owned());
        }
        if let Some(scaling) = self.scaling {
            parts.push(
                format!("{scaling:?} scaling (center {:.4}, scale {:.4})", self.center, self.scale)
                    .to_lowercase(),
            );
        }
        parts.join(", ")
    }
}
