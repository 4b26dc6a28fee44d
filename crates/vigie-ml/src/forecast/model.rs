//! The fitted forecaster: what is saved, and how it forecasts from its
//! stored state, optionally moved forward by newer observations.
//!
//! A [`ForecastModel`] keeps per series only what the chosen strategy needs
//! (the last values, running sums, the ETS state), the global trees when
//! they won, the calibrated interval widths and the backtest report. It is
//! `Serialize + Deserialize`; deserialising checks the trees against their
//! features, so a loaded model cannot index out of bounds. Saving it to a
//! file is the caller's job.

use rayon::prelude::*;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::backtest::BacktestReport;
use super::calendar::{Frequency, Grid};
use super::data::{CovariateTable, FutureValues, Panel, SeriesTable, data_row};
use super::ets::EtsFit;
use super::global::{GlobalModel, Known};
use super::interval::{IntervalWidths, relative_level};
use super::params::{MAX_LOOKBACK, Strategy};
use super::state::History;
use crate::error::{MlError, Result};

/// One series as a strategy forecasts it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SeriesModel {
    /// The series' key.
    pub key: String,
    /// Its state at the last observed period.
    pub history: History,
    /// Its ETS fit, when the strategy is ETS.
    pub ets: Option<EtsFit>,
}

/// Point forecasts of `series` for `steps` periods with `strategy`; a
/// series that never went negative is clipped at zero. `future(step,
/// column)` gives the global model's future-known covariates.
pub(crate) fn point_forecast(
    strategy: Strategy,
    global: Option<&GlobalModel>,
    grid: &Grid,
    series: &SeriesModel,
    steps: usize,
    future: &mut dyn FnMut(usize, usize) -> Result<f64>,
) -> Result<Vec<f64>> {
    let history = &series.history;
    let missing = |what: &str| {
        MlError::Corrupted(format!("forecast model: series {:?} has no {what}", series.key))
    };
    let mut forecasts = match strategy {
        Strategy::SeasonalNaive => {
            // Each step repeats the value a season before it, which may be
            // an earlier step's forecast: `values` is the recent history
            // followed by the forecasts so far, `values[i]` at period
            // `first + i`.
            let season = history.season().max(1);
            let mut values = history.recent().to_vec();
            if values.len() < season {
                return Err(missing("full last season"));
            }
            let first = history.last_period + 1 - values.len() as i64;
            for step in 1..=steps as i64 {
                let period = history.last_period + step;
                let at = |before: i64| {
                    usize::try_from(before - first).ok().filter(|&at| at < values.len())
                };
                let at = at(period - grid.wall_clock_lag(period, season) as i64)
                    .or_else(|| at(period - season as i64))
                    .ok_or_else(|| missing("last season"))?;
                values.push(values[at]);
            }
            values.split_off(values.len() - steps)
        }
        Strategy::Ets => series
            .ets
            .as_ref()
            .ok_or_else(|| {
                MlError::InvalidData(format!(
                    "series {:?}: no ETS form could be fitted",
                    series.key
                ))
            })?
            .forecast(grid, history.last_period, steps),
        Strategy::GlobalGbdt => {
            let before: Vec<&[f64]> = history.covariate_tails.iter().map(Vec::as_slice).collect();
            let known = Known {
                recent: history.recent(),
                summary: &history.summary,
                past_covariates: &history.past_covariates,
                covariates_before: &before,
            };
            global.ok_or_else(|| missing("global trees"))?.forecast(
                grid,
                &known,
                history.last_period,
                steps,
                future,
            )?
        }
    };
    if let Some(step) = forecasts.iter().position(|f| !f.is_finite()) {
        return Err(MlError::InvalidData(format!(
            "series {:?}: the {strategy} forecast is not finite at step {}",
            series.key,
            step + 1
        )));
    }
    if history.summary.non_negative {
        for forecast in &mut forecasts {
            *forecast = forecast.max(0.0);
        }
    }
    Ok(forecasts)
}

/// One forecast period of one series, with its prediction intervals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForecastRow {
    /// The series' key.
    pub series: String,
    /// Periods after the series' last observation (1 is the next period).
    pub step: usize,
    /// The period's timestamp, seconds since the Unix epoch.
    pub time: f64,
    /// The point forecast.
    pub forecast: f64,
    /// Lower bound of the 80% interval.
    pub lo80: f64,
    /// Upper bound of the 80% interval.
    pub hi80: f64,
    /// Lower bound of the 95% interval.
    pub lo95: f64,
    /// Upper bound of the 95% interval.
    pub hi95: f64,
}

/// A covariate column the model was fitted with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CovariateRole {
    /// The column's name.
    pub name: String,
    /// Whether only its past values are known (else it must be given for forecast periods).
    pub past_only: bool,
}

/// The global model, checked on deserialisation: the trees have one output
/// and read only the features the spec writes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CheckedGlobal(pub GlobalModel);

impl TryFrom<GlobalModel> for CheckedGlobal {
    type Error = MlError;

    fn try_from(mut model: GlobalModel) -> Result<Self> {
        model.trees.validate()?;
        if model.trees.n_outputs != 1 {
            return Err(MlError::Corrupted(format!(
                "forecast model: the global trees have {} outputs, not 1",
                model.trees.n_outputs
            )));
        }
        let spec = &model.spec;
        let mut lookbacks = std::iter::once(&spec.season).chain(&spec.lags).chain(&spec.windows);
        if lookbacks.any(|&periods| periods == 0 || periods > MAX_LOOKBACK)
            || spec.year_ago > MAX_LOOKBACK
            || spec.season.saturating_mul(spec.seasonal_mean) > MAX_LOOKBACK
        {
            return Err(MlError::Corrupted(format!(
                "forecast model: the global model's season, lags, windows, year ago or seasonal \
                 mean are not between 1 and {MAX_LOOKBACK} periods"
            )));
        }
        if model.trees.n_features != model.spec.n_features() {
            return Err(MlError::Corrupted(format!(
                "forecast model: the global trees read {} features, the spec writes {}",
                model.trees.n_features,
                model.spec.n_features()
            )));
        }
        Ok(CheckedGlobal(model))
    }
}

impl Serialize for CheckedGlobal {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for CheckedGlobal {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let model = GlobalModel::deserialize(deserializer)?;
        CheckedGlobal::try_from(model).map_err(serde::de::Error::custom)
    }
}

/// A fitted forecaster for a set of series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForecastModel {
    strategy: Strategy,
    horizon: usize,
    grid: Grid,
    covariates: Vec<CovariateRole>,
    /// Sorted by key.
    series: Vec<SeriesModel>,
    global: Option<CheckedGlobal>,
    intervals: IntervalWidths,
    report: BacktestReport,
}

impl ForecastModel {
    /// Assembles a model; `series` must be sorted by key.
    #[expect(
        clippy::too_many_arguments,
        reason = "one argument per part of the model, named at the call"
    )]
    pub(crate) fn new(
        strategy: Strategy,
        horizon: usize,
        grid: Grid,
        covariates: Vec<CovariateRole>,
        series: Vec<SeriesModel>,
        global: Option<GlobalModel>,
        intervals: IntervalWidths,
        report: BacktestReport,
    ) -> Result<Self> {
        debug_assert!(series.windows(2).all(|pair| pair[0].key < pair[1].key));
        Ok(ForecastModel {
            strategy,
            horizon,
            grid,
            covariates,
            series,
            global: global.map(CheckedGlobal::try_from).transpose()?,
            intervals,
            report,
        })
    }

    /// The strategy the backtest chose.
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// The series' frequency.
    pub fn frequency(&self) -> Frequency {
        self.grid.frequency
    }

    /// A forecast row's time as the tables write it: a date for daily and
    /// longer periods, a UTC time for hourly ones (`2024-03-05T13:00:00Z`),
    /// or the wall-clock time and offset of the model's zone
    /// (`2024-03-05T08:00:00-05:00`).
    pub fn format_time(&self, time: f64) -> String {
        self.grid.format(time)
    }

    /// Writes times as a training table wrote them all
    /// ([`FrameTables::written`](super::FrameTables::written)): monthly and
    /// quarterly ones as their month (`2024-03`), quarterly ones as their
    /// quarter (`2024-Q1`).
    pub fn write_times(&mut self, writing: super::TimeWriting) {
        self.grid = self.grid.written_as(writing);
    }

    /// The zone whose clock an hourly model reads its periods on, if any.
    pub fn hourly_zone(&self) -> Option<vigie_core::zone::TimeZone> {
        self.grid.zone()
    }

    /// The longest horizon the intervals were calibrated for.
    pub fn horizon(&self) -> usize {
        self.horizon
    }

    /// The backtest that chose the strategy and calibrated the intervals.
    pub fn report(&self) -> &BacktestReport {
        &self.report
    }

    /// The covariate columns of the training table and their roles.
    pub fn covariates(&self) -> &[CovariateRole] {
        &self.covariates
    }

    /// The covariates that must be given for every forecast period (empty
    /// unless the global model won and uses future-known covariates).
    pub fn required_future_covariates(&self) -> &[String] {
        match (&self.global, self.strategy) {
            (Some(global), Strategy::GlobalGbdt) => &global.0.spec.future_covariates,
            _ => &[],
        }
    }

    /// The keys of the series the model forecasts, sorted.
    pub fn series_keys(&self) -> impl Iterator<Item = &str> {
        self.series.iter().map(|s| s.key.as_str())
    }

    /// The time of the last value the model knows of series `key`.
    pub fn last_time(&self, key: &str) -> Option<f64> {
        let idx = self.series.binary_search_by(|s| s.key.as_str().cmp(key)).ok()?;
        Some(self.grid.time(self.series[idx].history.last_period))
    }

    /// The half-widths of the intervals per step, in units of each series' scale.
    pub fn interval_widths(&self) -> &IntervalWidths {
        &self.intervals
    }

    /// Forecasts every series `horizon` periods (at most the fitted horizon)
    /// after its last known period.
    ///
    /// `newer_history` holds observations after the training data (same
    /// columns, continuing each series without a gap); the model's state
    /// moves forward through them without refitting. `future` holds the
    /// future-known covariates for every series and forecast period when
    /// [`ForecastModel::required_future_covariates`] is not empty.
    pub fn forecast(
        &self,
        horizon: usize,
        newer_history: Option<&SeriesTable>,
        future: Option<&CovariateTable>,
    ) -> Result<Vec<ForecastRow>> {
        self.forecast_series(horizon, newer_history, future, None)
    }

    /// [`ForecastModel::forecast`] of the series whose keys are in `only` (every
    /// series when `None`); future covariates are needed for those series alone.
    pub fn forecast_series(
        &self,
        horizon: usize,
        newer_history: Option<&SeriesTable>,
        future: Option<&CovariateTable>,
        only: Option<&[String]>,
    ) -> Result<Vec<ForecastRow>> {
        if horizon == 0 || horizon > self.horizon {
            return Err(MlError::param(
                "horizon",
                format!(
                    "must be between 1 and {}, the horizon the model was fitted for",
                    self.horizon
                ),
            ));
        }
        let calibrated = self.intervals.width_80.len().min(self.intervals.width_95.len());
        if calibrated < self.horizon {
            return Err(MlError::Corrupted(format!(
                "forecast model: intervals are calibrated for {calibrated} steps, not the horizon {}",
                self.horizon
            )));
        }
        let mut series = self.series.clone();
        if let Some(newer) = newer_history {
            self.advance(&mut series, newer)?;
        }
        let required = self.required_future_covariates();
        let future_values = match (required.is_empty(), future) {
            (true, _) => None,
            (false, None) => {
                return Err(MlError::InvalidData(format!(
                    "the model uses the future-known covariates {required:?}: give their values for \
                     every series and forecast period"
                )));
            }
            (false, Some(table)) => Some(FutureValues::build(table, &self.grid)?),
        };
        let columns: Vec<usize> = match &future_values {
            None => Vec::new(),
            Some(values) => required
                .iter()
                .map(|name| {
                    values.column(name).ok_or_else(|| {
                        MlError::MissingColumn(format!("{name} (future covariates table)"))
                    })
                })
                .collect::<Result<_>>()?,
        };
        let global = self.global.as_ref().map(|g| &g.0);
        let wanted = |key: &str| only.is_none_or(|keys| keys.iter().any(|k| k == key));
        // Each series on its own, in parallel; the first error in series order is reported.
        let per_series: Vec<Result<Vec<ForecastRow>>> = series
            .par_iter()
            .filter(|model| wanted(&model.key))
            .map(|model| -> Result<Vec<ForecastRow>> {
            let mut rows = Vec::with_capacity(horizon);
            let last = model.history.last_period;
            let mut lookup = |step: usize, column: usize| -> Result<f64> {
                let period = last + step as i64;
                let name = required.get(column).map_or("?", String::as_str);
                future_values
                    .as_ref()
                    .zip(columns.get(column))
                    .and_then(|(values, &idx)| values.value(idx, &model.key, period))
                    // An empty cell is as missing as an absent row: the trees would read it
                    // as "unknown" where the user means to give it.
                    .filter(|value| !value.is_nan())
                    .ok_or_else(|| {
                        MlError::InvalidData(format!(
                            "future covariate {name:?} is missing for series {:?} at {} (step {step} of \
                             {horizon})",
                            model.key,
                            self.grid.format(self.grid.time(period))
                        ))
                    })
            };
            let forecasts =
                point_forecast(self.strategy, global, &self.grid, model, horizon, &mut lookup)?;
            let scale =
                self.intervals.scale(&model.history) * self.intervals.series_factor(&model.key);
            let interval_level = model.history.interval_level();
            let clip = model.history.summary.non_negative;
            for (idx, forecast) in forecasts.into_iter().enumerate() {
                let step = idx + 1;
                let level = relative_level(forecast, interval_level);
                let (width_80, width_95) = self.intervals.at_level(step, level).ok_or_else(|| {
                    MlError::Corrupted(format!("forecast model: no interval width for step {step}"))
                })?;
                let bound = |value: f64| if clip { value.max(0.0) } else { value };
                rows.push(ForecastRow {
                    series: model.key.clone(),
                    step,
                    time: self.grid.time(last + step as i64),
                    forecast,
                    lo80: bound(forecast - width_80 * scale),
                    hi80: forecast + width_80 * scale,
                    lo95: bound(forecast - width_95 * scale),
                    hi95: forecast + width_95 * scale,
                });
            }
            Ok(rows)
            })
            .collect();
        let mut rows = Vec::with_capacity(per_series.len() * horizon);
        for series_rows in per_series {
            rows.extend(series_rows?);
        }
        Ok(rows)
    }

    /// Moves each series' state through its newer observations.
    fn advance(&self, series: &mut [SeriesModel], newer: &SeriesTable) -> Result<()> {
        let panel = Panel::build(newer, None, Some(self.grid), None)?;
        let past_columns: Vec<usize> = self
            .covariates
            .iter()
            .filter(|c| c.past_only)
            .map(|c| {
                panel.covariate_names.iter().position(|n| *n == c.name).ok_or_else(|| {
                    MlError::MissingColumn(format!(
                        "{} (past-only covariate of the newer history)",
                        c.name
                    ))
                })
            })
            .collect::<Result<_>>()?;
        // The future-known covariates' columns, when the model keeps their last values.
        let future_columns: Vec<Option<usize>> = self
            .covariates
            .iter()
            .filter(|c| !c.past_only)
            .map(|c| panel.covariate_names.iter().position(|n| *n == c.name))
            .collect();
        let mut past = vec![f64::NAN; past_columns.len()];
        let mut future = vec![f64::NAN; future_columns.len()];
        for newer_series in &panel.series {
            let first_row = newer_series.rows.first().copied().unwrap_or(0);
            let Ok(idx) = series.binary_search_by(|s| s.key.as_str().cmp(&newer_series.key)) else {
                return Err(MlError::InvalidData(format!(
                    "series {:?} ({}) is not in the training data; refit to forecast a new series",
                    newer_series.key,
                    data_row(first_row)
                )));
            };
            let model = &mut series[idx];
            let last = model.history.last_period;
            if newer_series.start <= last {
                return Err(MlError::InvalidData(format!(
                    "series {:?}: time {} at {} is not after {}, the last time the model knows",
                    newer_series.key,
                    self.grid.format(self.grid.time(newer_series.start)),
                    data_row(first_row),
                    self.grid.format(self.grid.time(last))
                )));
            }
            if newer_series.start > last + 1 {
                return Err(MlError::InvalidData(format!(
                    "series {:?}: gap between {}, the last time the model knows, and {} at {}",
                    newer_series.key,
                    self.grid.format(self.grid.time(last)),
                    self.grid.format(self.grid.time(newer_series.start)),
                    data_row(first_row)
                )));
            }
            for (t, &value) in newer_series.values.iter().enumerate() {
                let at = |column: Option<usize>| {
                    column
                        .and_then(|column| newer_series.covariates.get(column))
                        .and_then(|c| c.get(t))
                        .copied()
                        .unwrap_or(f64::NAN)
                };
                for (slot, &column) in past.iter_mut().zip(&past_columns) {
                    *slot = at(Some(column));
                }
                for (slot, &column) in future.iter_mut().zip(&future_columns) {
                    *slot = at(column);
                }
                let period = model.history.last_period + 1;
                if let Some(ets) = &mut model.ets
                    && !ets.update(period, value)
                {
                    return Err(MlError::InvalidData(format!(
                        "series {:?}: the multiplicative ETS state cannot take the value {value} at {}; refit",
                        newer_series.key,
                        data_row(newer_series.rows.get(t).copied().unwrap_or(first_row))
                    )));
                }
                model.history.push(value, &past, &future);
            }
            model.history.compact();
        }
        Ok(())
    }
}
