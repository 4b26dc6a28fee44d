//! What a model file holds: a tabular model (classification or regression on
//! rows) or a forecast model (many time series). The registry stores, versions
//! and aliases both alike; a command that needs one kind asks for it and gets
//! a message naming the other when it is given the wrong one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{MlError, Result};
use crate::forecast::Forecaster;
use crate::model::{DataFingerprint, MetricSummary, Model};

/// A saved model of either kind.
///
/// Externally tagged (`{"tabular": …}`), so reading a large forest needs no
/// buffering of the whole payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SavedModel {
    /// Scores rows: binary, multiclass or regression.
    Tabular(Box<Model>),
    /// Forecasts time series.
    Forecast(Box<Forecaster>),
}

impl From<Model> for SavedModel {
    fn from(model: Model) -> Self {
        SavedModel::Tabular(Box::new(model))
    }
}

impl From<Forecaster> for SavedModel {
    fn from(forecaster: Forecaster) -> Self {
        SavedModel::Forecast(Box::new(forecaster))
    }
}

impl SavedModel {
    /// The model's name.
    pub fn name(&self) -> &str {
        match self {
            SavedModel::Tabular(m) => &m.card.name,
            SavedModel::Forecast(f) => &f.card.name,
        }
    }

    /// Its version (0 before it is registered).
    pub fn version(&self) -> u32 {
        match self {
            SavedModel::Tabular(m) => m.card.version,
            SavedModel::Forecast(f) => f.card.version,
        }
    }

    /// Sets the version the registry assigned.
    pub fn set_version(&mut self, version: u32) {
        match self {
            SavedModel::Tabular(m) => m.card.version = version,
            SavedModel::Forecast(f) => f.card.version = version,
        }
    }

    /// The algorithm, or the forecasting strategy the backtest chose.
    pub fn algorithm(&self) -> &str {
        match self {
            SavedModel::Tabular(m) => &m.card.algorithm,
            SavedModel::Forecast(f) => f.model.strategy().name(),
        }
    }

    /// The task: `binary`, `multiclass`, `regression` or `forecast`.
    pub fn task(&self) -> &'static str {
        match self {
            SavedModel::Tabular(m) => m.card.task.name(),
            SavedModel::Forecast(_) => "forecast",
        }
    }

    /// The estimated quality: cross-validated metrics, or the backtest's.
    pub fn metrics(&self) -> &BTreeMap<String, MetricSummary> {
        match self {
            SavedModel::Tabular(m) => &m.card.cv,
            SavedModel::Forecast(f) => &f.model.report().overall,
        }
    }

    /// The training data.
    pub fn data(&self) -> &DataFingerprint {
        match self {
            SavedModel::Tabular(m) => &m.card.data,
            SavedModel::Forecast(f) => &f.card.data,
        }
    }

    /// When training finished (RFC 3339, UTC).
    pub fn trained_at(&self) -> &str {
        match self {
            SavedModel::Tabular(m) => &m.card.trained_at,
            SavedModel::Forecast(f) => &f.card.trained_at,
        }
    }

    /// Checks a loaded model's parts against each other.
    pub fn validate(&mut self) -> Result<()> {
        match self {
            SavedModel::Tabular(m) => m.validate(),
            SavedModel::Forecast(f) => f.validate(),
        }
    }

    /// The tabular model, or an error saying this one forecasts.
    pub fn into_tabular(self) -> Result<Model> {
        match self {
            SavedModel::Tabular(m) => Ok(*m),
            SavedModel::Forecast(f) => Err(MlError::WrongKind(format!(
                "{} v{} is a forecast model: use `vigie forecast --model {}`",
                f.card.name, f.card.version, f.card.name
            ))),
        }
    }

    /// The forecast model, or an error saying this one scores rows.
    pub fn into_forecast(self) -> Result<Forecaster> {
        match self {
            SavedModel::Forecast(f) => Ok(*f),
            SavedModel::Tabular(m) => Err(MlError::WrongKind(format!(
                "{} v{} is a {} model, not a forecast model: use `vigie predict --model {}`",
                m.card.name,
                m.card.version,
                m.card.task.name(),
                m.card.name
            ))),
        }
    }
}
