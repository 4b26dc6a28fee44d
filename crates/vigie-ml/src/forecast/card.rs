//! A forecast model as it is saved and registered: the fitted
//! [`ForecastModel`], the card that says how it was trained, and the values
//! of the series columns behind each series key, so forecasts are written
//! back in the user's columns.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::frame::ColumnRoles;
use super::model::ForecastModel;
use crate::error::{MlError, Result};
use crate::model::DataFingerprint;

/// Everything about a forecast model except its numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForecastCard {
    /// The model's name.
    pub name: String,
    /// Its version within the name (assigned when registered; 0 before).
    pub version: u32,
    /// The columns of the training table and their roles.
    pub columns: ColumnRoles,
    /// Covariates whose future values are not known ahead.
    pub past_only_covariates: Vec<String>,
    /// Rolling-origin backtest windows.
    pub backtest_windows: usize,
    /// The training data.
    pub data: DataFingerprint,
    /// Seed of every random choice.
    pub seed: u64,
    /// Seconds spent backtesting and fitting.
    pub train_seconds: f64,
    /// When training finished (RFC 3339, UTC), as the caller's clock said.
    pub trained_at: String,
    /// The Vigie version that trained it.
    pub vigie_version: String,
}

/// A trained forecast model with its card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forecaster {
    /// What it is.
    pub card: ForecastCard,
    /// For each series key, its values of the series columns.
    pub keys: BTreeMap<String, Vec<String>>,
    /// The fitted model.
    pub model: ForecastModel,
}

impl Forecaster {
    /// Checks a loaded forecaster's parts against each other.
    pub fn validate(&self) -> Result<()> {
        let width = self.card.columns.series.len();
        for key in self.model.series_keys() {
            match self.keys.get(key) {
                Some(values) if values.len() == width => {}
                Some(values) => {
                    return Err(MlError::Corrupted(format!(
                        "forecast model: series {key:?} has {} column values for {width} series columns",
                        values.len()
                    )));
                }
                None => {
                    return Err(MlError::Corrupted(format!(
                        "forecast model: series {key:?} has no column values"
                    )));
                }
            }
        }
        Ok(())
    }
}
