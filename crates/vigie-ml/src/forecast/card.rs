//! A forecast model as it is saved and registered: the fitted
//! [`ForecastModel`], the card that says how it was trained, and the values
//! of the series columns behind each series key, so forecasts are written
//! back in the user's columns; and [`NewerRows`], the one reading of the
//! newer rows a forecast is given (a file for `vigie forecast --data`, a
//! request's rows for the server).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use vigie_core::{Column, ColumnData, Frame};

use super::data::{CovariateTable, SeriesTable};
use super::frame::{ColumnRoles, split_frame_after};
use super::model::{ForecastModel, ForecastRow};
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

/// The rows given to a forecast besides the saved history, split by
/// [`Forecaster::newer_rows`].
#[derive(Debug, Clone, Default)]
pub struct NewerRows {
    /// Observations after the model's history (rows with a target).
    pub history: Option<SeriesTable>,
    /// Covariate values of the periods to forecast (rows without a target).
    pub future: Option<CovariateTable>,
    /// Rows with a target the model already knew (at or before its last time of
    /// their series), left out.
    pub skipped: usize,
}

impl Forecaster {
    /// The time zone the model was given: whose local periods its rows were
    /// grouped into, or whose clock its hourly periods are read on.
    pub fn timezone(&self) -> Option<vigie_core::zone::TimeZone> {
        self.card.columns.group.and_then(|g| g.timezone).or(self.model.hourly_zone())
    }

    /// Splits a table of the training columns into newer history and future
    /// covariates. The target column may be left out (future rows only, and then
    /// no column the model does not know may be there), and so may covariates the
    /// rows do not give; rows the model already knows are skipped.
    /// Errors name the data row (1 is the table's first).
    pub fn newer_rows(&self, frame: &Frame) -> Result<NewerRows> {
        let roles = &self.card.columns;
        let mut columns = frame.columns().to_vec();
        if frame.column(&roles.target).is_err() {
            // Rows without the target column are all future covariates: with a column the
            // model does not know beside them, the target is more likely misspelt.
            let known = roles.columns();
            if let Some(other) = frame.names().into_iter().find(|name| !known.contains(name)) {
                return Err(MlError::InvalidData(format!(
                    "no target column {:?} but a column {other:?} the model does not know; \
                     without the target every row would be read as future covariates. The \
                     model's columns are: {}",
                    roles.target,
                    known.join(", ")
                )));
            }
            columns.push(Column {
                name: roles.target.clone(),
                data: ColumnData::Numeric(vec![f64::NAN; frame.n_rows()]),
            });
        }
        let frame = Frame::new(columns).map_err(|e| MlError::InvalidData(e.to_string()))?;
        let mut present = roles.clone();
        present.covariates.retain(|name| frame.column(name).is_ok());
        let (tables, left_out) =
            split_frame_after(&frame, &present, &|key| self.model.last_time(key))?;
        if let Some(refused) = tables.written.refused_by(self.model.frequency()) {
            return Err(MlError::InvalidData(format!("column {:?}: {refused}", roles.time)));
        }
        let history = &tables.history;
        // Rows of events were grouped into periods first: the periods the model knew are left
        // out here. Rows usually come series by series: the last time is looked up once per
        // run of a key.
        let mut known: Option<(&str, Option<f64>)> = None;
        let newer = history.filter(|row| {
            let key: &str = &history.series[row];
            let last = match known {
                Some((previous, last)) if previous == key => last,
                _ => {
                    let last = self.model.last_time(key);
                    known = Some((key, last));
                    last
                }
            };
            last.is_none_or(|last| history.times[row] > last)
        });
        Ok(NewerRows {
            skipped: left_out + history.series.len() - newer.series.len(),
            history: (!newer.series.is_empty()).then_some(newer),
            future: (!tables.future.series.is_empty()).then_some(tables.future),
        })
    }

    /// Forecasts each series (those whose keys are in `only`, else all) `horizon`
    /// periods after its last known period: the saved history moved forward by
    /// `rows` (no refitting), with their future covariates.
    pub fn forecast(
        &self,
        horizon: usize,
        rows: &NewerRows,
        only: Option<&[String]>,
    ) -> Result<Vec<ForecastRow>> {
        self.model.forecast_series(horizon, rows.history.as_ref(), rows.future.as_ref(), only)
    }

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

    /// The key of the series whose series columns have `values` (in the card's column
    /// order), if the model forecasts it.
    pub fn key_of(&self, values: &[&str]) -> Option<&str> {
        self.keys
            .iter()
            .find(|(_, known)| known.iter().map(String::as_str).eq(values.iter().copied()))
            .map(|(key, _)| key.as_str())
    }

    /// One forecast row as a record in the user's columns: the series columns' values, the
    /// time column written as the training data's frequency writes it, and `forecast`,
    /// `lo80`, `hi80`, `lo95`, `hi95` (null when not finite).
    pub fn record(&self, row: &ForecastRow) -> serde_json::Map<String, serde_json::Value> {
        use serde_json::Value as Json;
        let mut record = serde_json::Map::new();
        let values = self.keys.get(&row.series);
        for (idx, column) in self.card.columns.series.iter().enumerate() {
            let value =
                values.and_then(|v| v.get(idx)).map_or(Json::Null, |v| Json::from(v.as_str()));
            record.insert(column.clone(), value);
        }
        record.insert(self.card.columns.time.clone(), Json::from(self.model.format_time(row.time)));
        let number = |x: f64| serde_json::Number::from_f64(x).map_or(Json::Null, Json::Number);
        for (name, value) in [
            ("forecast", row.forecast),
            ("lo80", row.lo80),
            ("hi80", row.hi80),
            ("lo95", row.lo95),
            ("hi95", row.hi95),
        ] {
            record.insert(name.to_owned(), number(value));
        }
        record
    }
}
