//! Rolling-origin backtest: fit every strategy on the history up to the
//! first of the last `W` origins, forecast the next `horizon` periods from
//! each origin, score them, pick the strategy and calibrate its intervals.
//!
//! The models are fitted once, at the first origin, as mlforecast's and
//! statsforecast's `refit=False` do: at each later origin the global model
//! reads the history up to that origin, and each series' ETS state runs on
//! over the periods in between with the smoothing fitted at the first.
//! Later windows thus score models a little older than the final fit will
//! be, so their errors, and the intervals calibrated on them, lean to the
//! cautious side; [`CheckedParams::backtest_refit`] fits again at every
//! origin instead, for `W` times the fitting.
//!
//! Origins are common times, not per-series positions: window `w` of `W`
//! ends `(W - w) * horizon` periods before the latest period of the table,
//! and every series, and the global model, sees only periods up to that
//! time. A series is scored in a window when it has two seasons of history
//! before the origin and at least one period after it; otherwise the pair is
//! counted as skipped. Scores: MAE, RMSE, sMAPE (in percent) and MASE (scaled
//! by the series' in-sample seasonal-naive MAE up to the origin), per window
//! over all scored points, then mean and standard deviation over windows.
//! Interval coverage is measured leaving one window out: each window's
//! intervals are calibrated on the other windows' residuals.

use std::collections::{BTreeMap, HashMap};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::calendar::Frequency;
use super::data::Panel;
use super::ets::EtsFit;
use super::global::{FeatureSpec, GlobalModel, SeriesView};
use super::interval::{IntervalWidths, Residual, interval_score, relative_level};
use super::model::{SeriesModel, point_forecast};
use super::params::{CheckedParams, Strategy};
use super::state::{CovariateColumns, History};
use crate::error::{MlError, Result};
use crate::model::MetricSummary;
use crate::rng::Rng;
use crate::train::Progress;

/// One series in one backtest window: what happened and what each strategy forecast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesBacktest {
    /// The series' key.
    pub series: String,
    /// Its error scale at the origin (in-sample seasonal-naive MAE,
    /// [`Summary::scale`](super::state::Summary::scale)); `None` when every
    /// value before the origin was 0, and the series is left out of MASE.
    pub scale: Option<f64>,
    /// The scale its interval widths are in units of at the origin
    /// ([`History::interval_scale`](super::state::History::interval_scale)).
    pub interval_scale: f64,
    /// Its mean absolute value over the season before the origin, which
    /// interval widths may scale with; 0 for no scaling (a series with a
    /// negative value, or a backtest saved before it existed).
    #[serde(default)]
    pub level: f64,
    /// The actual values after the origin (up to `horizon`, fewer if the series ends).
    pub actual: Vec<f64>,
    /// Each strategy's forecasts of the same periods, by strategy name.
    pub forecasts: BTreeMap<String, Vec<f64>>,
}

/// One rolling origin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BacktestWindow {
    /// Timestamp of the last period every model was fitted on.
    pub origin: f64,
    /// The series scored in this window, sorted by key.
    pub series: Vec<SeriesBacktest>,
}

/// Every forecast of the rolling-origin backtest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Backtest {
    /// The series' frequency.
    pub frequency: Frequency,
    /// Periods forecast from each origin.
    pub horizon: usize,
    /// Periods between two origins: `horizon`, or fewer for a short history
    /// (the later windows then end with the history; 0 in models saved
    /// before it was recorded, which used `horizon`).
    #[serde(default)]
    pub step: usize,
    /// The strategies the choice is made among (seasonal naive is always forecast too).
    pub candidates: Vec<Strategy>,
    /// The windows, oldest origin first.
    pub windows: Vec<BacktestWindow>,
    /// Series-window pairs not scored for lack of history before the origin.
    pub skipped: usize,
    /// How many series each ETS form was chosen for at the last origin.
    pub ets_forms: BTreeMap<String, usize>,
}

/// What the backtest found and why the strategy was chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BacktestReport {
    /// The strategy used.
    pub strategy: Strategy,
    /// One sentence saying why.
    pub why: String,
    /// The series' frequency.
    pub frequency: Frequency,
    /// Periods forecast from each origin.
    pub horizon: usize,
    /// Timestamps of the origins, oldest first.
    pub origins: Vec<f64>,
    /// Series-window pairs scored.
    pub scored: usize,
    /// Series-window pairs not scored for lack of history before the origin.
    pub skipped: usize,
    /// Series-window pairs scored without MASE and MSIS: every value before
    /// the origin was 0, so there is no scale to divide by. Their errors
    /// count in MAE, RMSE, sMAPE and coverage.
    #[serde(default)]
    pub unscaled: usize,
    /// The chosen strategy's scores: `mae`, `rmse`, `smape`, `mase`,
    /// `coverage_80`, `coverage_95`, `msis_80`, `msis_95` (the intervals'
    /// mean scaled interval score, as M4's: width plus `2 / (1 - level)`
    /// times the miss, over the series' scale), mean and standard deviation
    /// over windows.
    pub overall: BTreeMap<String, MetricSummary>,
    /// The chosen strategy's scores per series, over all its windows.
    pub per_series: BTreeMap<String, BTreeMap<String, f64>>,
    /// Every backtested strategy's scores (without coverage), by strategy name.
    pub strategies: BTreeMap<String, BTreeMap<String, MetricSummary>>,
    /// Whether coverage was measured on the residuals the intervals were
    /// calibrated on (only with a single window), so is optimistic.
    pub coverage_in_sample: bool,
    /// How many series each ETS form was chosen for at the last origin.
    pub ets_forms: BTreeMap<String, usize>,
}

/// Fitted pieces of the strategies `strategies` on the history of each series up to `cut[i]` periods.
pub(crate) struct Fitted {
    /// Per series, `None` when it has no history at the cut.
    pub series: Vec<Option<SeriesModel>>,
    /// The global model, when asked for.
    pub global: Option<GlobalModel>,
}

/// Fits `strategies` on `panel` cut after `cut[i]` values of series `i`;
/// ETS only for the series where `wanted[i]` (it is the costly part).
pub(crate) fn fit_at(
    panel: &Panel,
    params: &CheckedParams,
    spec: &FeatureSpec,
    strategies: &[Strategy],
    cut: &[usize],
    wanted: &[bool],
    seed: u64,
) -> Result<Fitted> {
    let with_ets = strategies.contains(&Strategy::Ets);
    let (past_columns, future_columns) = covariate_columns(panel, params);
    // Each task fits ETS to a few series at once, their forms' minimisations
    // side by side ([`EtsFit::fit_many`]), while leaving every core a share of tasks.
    let chunk = (panel.series.len() / (4 * rayon::current_num_threads())).clamp(1, 8);
    let fit_series = || -> Vec<Option<SeriesModel>> {
        panel
            .series
            .par_chunks(chunk)
            .zip(cut.par_chunks(chunk))
            .zip(wanted.par_chunks(chunk))
            .flat_map_iter(|((series, cut), wanted)| {
                let fit_ets: Vec<bool> = cut
                    .iter()
                    .zip(wanted)
                    .map(|(&cut, &wanted)| with_ets && wanted && cut > 0)
                    .collect();
                let inputs: Vec<(&[f64], i64)> = series
                    .iter()
                    .zip(cut)
                    .zip(&fit_ets)
                    .filter(|(_, fit)| **fit)
                    .map(|((series, &cut), _)| (&series.values[..cut], series.start))
                    .collect();
                let mut fits = EtsFit::fit_many(&inputs, params.season).into_iter();
                series
                    .iter()
                    .zip(cut)
                    .zip(fit_ets)
                    .map(|((series, &cut), fit_ets)| {
                        let ets = if fit_ets { fits.next().flatten() } else { None };
                        (cut > 0).then(|| {
                            let columns = (past_columns.as_slice(), future_columns.as_slice());
                            series_at(params, spec, columns, series, cut, ets)
                        })
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let fit_global = || -> Result<Option<GlobalModel>> {
        if !strategies.contains(&Strategy::GlobalGbdt) {
            return Ok(None);
        }
        let views: Vec<SeriesView<'_>> = panel
            .series
            .iter()
            .zip(cut)
            .filter(|(_, cut)| **cut > 0)
            .map(|(series, &cut)| SeriesView {
                start: series.start,
                values: &series.values[..cut],
                future: future_columns.iter().map(|&c| &series.covariates[c][..cut]).collect(),
                past: past_columns.iter().map(|&c| &series.covariates[c][..cut]).collect(),
            })
            .collect();
        GlobalModel::fit(spec.clone(), &panel.grid, &views, &params.gbdt, params.train_window, seed)
            .map(Some)
    };
    // The boosting fit starts first and the series' ETS fits fill the other
    // core: fitted one after the other, the fit started only when the last
    // ETS form was done, and a core idled at the end of it (0.3 s of the
    // 1,000 revenue series' training).
    let (global, series) = rayon::join(fit_global, fit_series);
    Ok(Fitted { series, global: global? })
}

/// `earlier` (fitted at `from[i]` values of series `i`) moved on to `cut[i]`
/// values without refitting, as the backtest does after its first window:
/// the global model is kept, each series' history is rebuilt at the new
/// cut, and its ETS state runs on over the values in between with the
/// smoothing it was fitted with. A series with no earlier ETS fit where one
/// is `wanted` now (too short at the earlier origin), or whose state leaves
/// its domain, is fitted at the new cut.
fn advance(
    panel: &Panel,
    params: &CheckedParams,
    spec: &FeatureSpec,
    earlier: Fitted,
    from: &[usize],
    cut: &[usize],
    wanted: &[bool],
) -> Fitted {
    let with_ets = params.strategies.contains(&Strategy::Ets);
    let (past_columns, future_columns) = covariate_columns(panel, params);
    let columns = (past_columns.as_slice(), future_columns.as_slice());
    let series = earlier
        .series
        .into_par_iter()
        .zip(&panel.series)
        .zip(from.par_iter().zip(cut))
        .zip(wanted)
        .map(|(((model, series), (&from, &cut)), &wanted)| {
            if cut == 0 {
                return None;
            }
            let ets = (with_ets && wanted).then(|| {
                let moved = model.and_then(|m| m.ets).and_then(|mut ets| {
                    let moved =
                        (from..cut).all(|t| ets.update(series.start + t as i64, series.values[t]));
                    moved.then_some(ets)
                });
                moved.or_else(|| EtsFit::fit(&series.values[..cut], series.start, params.season))
            });
            Some(series_at(params, spec, columns, series, cut, ets.flatten()))
        })
        .collect();
    Fitted { series, global: earlier.global }
}

/// One series' model at `cut` values: its history there (with the
/// covariates `past_columns`), and its ETS fit `ets`.
fn series_at(
    params: &CheckedParams,
    spec: &FeatureSpec,
    (past_columns, future_columns): (&[usize], &[usize]),
    series: &super::data::Series,
    cut: usize,
    ets: Option<EtsFit>,
) -> SeriesModel {
    let values = &series.values[..cut];
    let columns = |columns: &[usize]| -> Vec<&[f64]> {
        columns.iter().map(|&c| series.covariates[c].as_slice()).collect()
    };
    let (past, future) = (columns(past_columns), columns(future_columns));
    let covariates =
        CovariateColumns { past: &past, future: &future, future_keep: spec.covariate_keep() };
    let history = History::of(series.start, values, covariates, spec.keep(), params.season);
    SeriesModel { key: series.key.clone(), history, ets }
}

/// The covariate columns known only in the past, and those known in the future.
fn covariate_columns(panel: &Panel, params: &CheckedParams) -> (Vec<usize>, Vec<usize>) {
    (0..panel.covariate_names.len()).partition(|&c| params.past_only[c])
}

/// The seed of the model fitted at window `window` (`None`: the final fit).
pub(crate) fn window_seed(seed: u64, window: Option<usize>) -> u64 {
    let stream = window.map_or(u64::MAX, |w| w as u64);
    Rng::new(seed).fork(stream).next_u64()
}

/// Runs the rolling-origin backtest of `params.strategies` (and seasonal naive).
pub(crate) fn run(
    panel: &Panel,
    params: &CheckedParams,
    spec: &FeatureSpec,
    progress: &dyn Progress,
) -> Result<Backtest> {
    let horizon = params.horizon;
    let season = params.season;
    let mut strategies = params.strategies.clone();
    if !strategies.contains(&Strategy::SeasonalNaive) {
        strategies.insert(0, Strategy::SeasonalNaive);
    }
    let last_period = panel.series.iter().map(|s| s.end()).max().unwrap_or(0);
    let (_, future_columns) = covariate_columns(panel, params);
    let earliest = panel.series.iter().map(|s| s.start).min().unwrap_or(0);
    let covered = usize::try_from(last_period - earliest + 1).unwrap_or(0);
    let step = params.backtest_step;
    let needed = params.backtest_windows.saturating_mul(step).saturating_add(2 * season);
    if needed > covered {
        return Err(MlError::param(
            "backtest_windows",
            format!(
                "{} windows of {horizon} periods after two seasons of history need {needed} {} periods; \
                 the table covers {covered}",
                params.backtest_windows, panel.grid.frequency
            ),
        ));
    }
    // Origins one period apart (a short history) must still leave the first a whole
    // horizon to forecast, or the later steps' intervals would be calibrated on nothing.
    let span = params.backtest_windows.saturating_mul(step);
    if span < horizon {
        return Err(MlError::InvalidData(format!(
            "the backtest needs {} {} periods (two seasons of {season}, then the horizon of \
             {horizon} to forecast and score); the table covers {covered}: use a shorter horizon",
            2 * season + horizon,
            panel.grid.frequency
        )));
    }
    let mut windows = Vec::with_capacity(params.backtest_windows);
    let mut skipped = 0;
    let mut ets_forms = BTreeMap::new();
    // The models of the last window and where they were cut.
    let mut earlier: Option<(Fitted, Vec<usize>)> = None;
    progress.stage(
        &format!("backtesting {} strategies on {} series", strategies.len(), panel.series.len()),
        params.backtest_windows as u64,
    );
    for window in 0..params.backtest_windows {
        let back = (params.backtest_windows - window) as i64 * step as i64;
        let origin = last_period - back;
        let cut: Vec<usize> = panel
            .series
            .iter()
            .map(|s| usize::try_from(origin - s.start + 1).unwrap_or(0).min(s.values.len()))
            .collect();
        let scored: Vec<bool> = panel
            .series
            .iter()
            .zip(&cut)
            .map(|(s, &cut)| cut >= 2 * season && cut < s.values.len())
            .collect();
        skipped += panel
            .series
            .iter()
            .zip(&cut)
            .zip(&scored)
            .filter(|&((s, &cut), &scored)| !scored && cut < s.values.len() && s.end() > origin)
            .count();
        if !scored.contains(&true) {
            progress.advance();
            continue;
        }
        let fitted = match earlier.take() {
            Some((fitted, from)) if !params.backtest_refit => {
                advance(panel, params, spec, fitted, &from, &cut, &scored)
            }
            _ => {
                let seed = window_seed(params.seed, Some(window));
                fit_at(panel, params, spec, &strategies, &cut, &scored, seed)?
            }
        };
        if window + 1 == params.backtest_windows && strategies.contains(&Strategy::Ets) {
            ets_forms.clear();
            for model in fitted.series.iter().flatten() {
                if let Some(ets) = &model.ets {
                    *ets_forms.entry(ets.form()).or_insert(0) += 1;
                }
            }
        }
        // Each series forecast on its own (in parallel), in the panel's order.
        let scored_series = panel
            .series
            .par_iter()
            .enumerate()
            .filter_map(|(idx, series)| match (fitted.series.get(idx), scored[idx]) {
                (Some(Some(model)), true) => Some((series, model, cut[idx])),
                _ => None,
            })
            .map(|(series, model, cut)| -> Result<SeriesBacktest> {
                let steps = horizon.min(series.values.len() - cut);
                let mut forecasts = BTreeMap::new();
                for &strategy in &strategies {
                    let mut lookup = |step: usize, column: usize| -> Result<f64> {
                        future_columns
                            .get(column)
                            .and_then(|&c| series.covariates.get(c))
                            .and_then(|values| values.get(cut + step - 1))
                            .copied()
                            .ok_or_else(|| {
                                MlError::InvalidData("future covariate out of range".into())
                            })
                    };
                    let forecast = point_forecast(
                        strategy,
                        fitted.global.as_ref(),
                        &panel.grid,
                        model,
                        steps,
                        &mut lookup,
                    )?;
                    forecasts.insert(strategy.name().to_owned(), forecast);
                }
                Ok(SeriesBacktest {
                    series: series.key.clone(),
                    scale: model.history.summary.scale(),
                    interval_scale: model.history.interval_scale(),
                    level: model.history.interval_level(),
                    actual: series.values[cut..cut + steps].to_vec(),
                    forecasts,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        windows.push(BacktestWindow { origin: panel.grid.time(origin), series: scored_series });
        earlier = Some((fitted, cut));
        progress.advance();
    }
    if windows.is_empty() {
        let first_origin = last_period - params.backtest_windows as i64 * step as i64;
        return Err(MlError::InvalidData(format!(
            "no series has two seasons ({} {} periods) of history before the first backtest origin {}; \
             use fewer backtest windows or a shorter horizon",
            2 * season,
            panel.grid.frequency,
            panel.grid.format(panel.grid.time(first_origin))
        )));
    }
    Ok(Backtest {
        frequency: panel.grid.frequency,
        horizon,
        step,
        candidates: params.strategies.clone(),
        windows,
        skipped,
        ets_forms,
    })
}

/// Error sums over scored points.
#[derive(Debug, Clone, Copy, Default)]
struct Errors {
    points: usize,
    abs: f64,
    squared: f64,
    smape: f64,
    scaled: f64,
    /// Points of series with a MASE scale ([`SeriesBacktest::scale`]).
    scaled_points: usize,
    covered_80: usize,
    covered_95: usize,
    /// Sums of the 80% and 95% intervals' scores, in units of the series' scale.
    interval_score_80: f64,
    interval_score_95: f64,
}

impl Errors {
    fn add(&mut self, actual: &[f64], forecast: &[f64], scale: Option<f64>) {
        for (&y, &f) in actual.iter().zip(forecast) {
            let error = y - f;
            self.points += 1;
            self.abs += error.abs();
            self.squared += error * error;
            let denominator = y.abs() + f.abs();
            if denominator > 0.0 {
                self.smape += 200.0 * error.abs() / denominator;
            }
            if let Some(scale) = scale {
                self.scaled += error.abs() / scale;
                self.scaled_points += 1;
            }
        }
    }

    /// Counts the points `forecast`'s intervals cover and adds their
    /// interval scores, in units of MASE's scale (M4's MSIS; series
    /// without one add no score).
    fn add_coverage(&mut self, series: &SeriesBacktest, forecast: &[f64], widths: &IntervalWidths) {
        let scale = series.interval_scale * widths.series_factor(&series.series);
        for (step, (&y, &f)) in series.actual.iter().zip(forecast).enumerate() {
            if let Some((width_80, width_95)) =
                widths.at_level(step + 1, relative_level(f, series.level))
            {
                let (half_80, half_95) = (width_80 * scale, width_95 * scale);
                let error = (y - f).abs();
                self.covered_80 += usize::from(error <= half_80);
                self.covered_95 += usize::from(error <= half_95);
                if let Some(scale) = series.scale {
                    self.interval_score_80 += interval_score(half_80, error, 0.8) / scale;
                    self.interval_score_95 += interval_score(half_95, error, 0.95) / scale;
                }
            }
        }
    }

    fn metrics(&self, with_coverage: bool) -> BTreeMap<String, f64> {
        let n = self.points.max(1) as f64;
        let mut metrics = BTreeMap::from([
            ("mae".to_owned(), self.abs / n),
            ("rmse".to_owned(), (self.squared / n).sqrt()),
            ("smape".to_owned(), self.smape / n),
        ]);
        let scaled_n = self.scaled_points as f64;
        if self.scaled_points > 0 {
            metrics.insert("mase".into(), self.scaled / scaled_n);
        }
        if with_coverage {
            metrics.insert("coverage_80".into(), self.covered_80 as f64 / n);
            metrics.insert("coverage_95".into(), self.covered_95 as f64 / n);
            if self.scaled_points > 0 {
                metrics.insert("msis_80".into(), self.interval_score_80 / scaled_n);
                metrics.insert("msis_95".into(), self.interval_score_95 / scaled_n);
            }
        }
        metrics
    }
}

/// Scaled absolute residuals of `strategy` per step, with the forecasts'
/// relative levels, from the windows `windows`, and the keys of the series
/// they are of. Series that were all 0 before the origin are left out: their
/// interval scale is a stand-in.
fn residuals<'a>(
    windows: impl Iterator<Item = &'a BacktestWindow>,
    strategy: Strategy,
    horizon: usize,
) -> (Vec<Vec<Residual>>, Vec<String>) {
    let mut by_step = vec![Vec::new(); horizon];
    let mut keys: Vec<String> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for window in windows {
        for series in window.series.iter().filter(|s| s.scale.is_some()) {
            let Some(forecast) = series.forecasts.get(strategy.name()) else { continue };
            let id = *index.entry(series.series.as_str()).or_insert_with(|| {
                keys.push(series.series.clone());
                keys.len() - 1
            });
            for (step, (&y, &f)) in series.actual.iter().zip(forecast).enumerate() {
                if let Some(slot) = by_step.get_mut(step) {
                    slot.push(Residual {
                        scaled: (y - f).abs() / series.interval_scale,
                        level: relative_level(f, series.level),
                        series: id,
                    });
                }
            }
        }
    }
    (by_step, keys)
}

/// Calibrates the intervals of `strategy` on the residuals of `windows`.
fn calibrate<'a>(
    windows: impl Iterator<Item = &'a BacktestWindow>,
    strategy: Strategy,
    horizon: usize,
) -> Option<IntervalWidths> {
    let (by_step, keys) = residuals(windows, strategy, horizon);
    IntervalWidths::calibrate(&by_step, &keys)
}

/// Mean and standard deviation over windows of each metric.
fn summarise_windows(per_window: &[BTreeMap<String, f64>]) -> BTreeMap<String, MetricSummary> {
    let mut names: Vec<&String> = per_window.iter().flat_map(|m| m.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let values: Vec<f64> = per_window.iter().filter_map(|m| m.get(name).copied()).collect();
            (name.clone(), MetricSummary::of(&values))
        })
        .collect()
}

/// Scores the backtest, chooses the strategy (lowest mean MASE over windows;
/// ties go to the simpler strategy) and calibrates its intervals on all windows.
pub(crate) fn summarise(backtest: &Backtest) -> Result<(BacktestReport, IntervalWidths)> {
    let horizon = backtest.horizon;
    let mut backtested: Vec<Strategy> = backtest.candidates.clone();
    if !backtested.contains(&Strategy::SeasonalNaive) {
        backtested.insert(0, Strategy::SeasonalNaive);
    }
    let mut strategies = BTreeMap::new();
    for &strategy in &backtested {
        let per_window: Vec<BTreeMap<String, f64>> = backtest
            .windows
            .iter()
            .map(|window| {
                let mut errors = Errors::default();
                for series in &window.series {
                    if let Some(forecast) = series.forecasts.get(strategy.name()) {
                        errors.add(&series.actual, forecast, series.scale);
                    }
                }
                errors.metrics(false)
            })
            .collect();
        strategies.insert(strategy.name().to_owned(), summarise_windows(&per_window));
    }
    let mean_mase = |strategy: Strategy| {
        strategies
            .get(strategy.name())
            .and_then(|m| m.get("mase"))
            .map_or(f64::INFINITY, |s| if s.mean.is_nan() { f64::INFINITY } else { s.mean })
    };
    // Candidates are sorted simplest first, so a strict `<` keeps the simpler on ties.
    let mut chosen = *backtest
        .candidates
        .first()
        .ok_or_else(|| MlError::param("strategies", "name at least one strategy"))?;
    for &candidate in &backtest.candidates {
        if mean_mase(candidate) < mean_mase(chosen) * (1.0 - 1e-12) {
            chosen = candidate;
        }
    }
    // The intervals, calibrated on every window, and for coverage each window's, calibrated
    // on the other windows (a single window is scored with the intervals themselves):
    // independent calibrations, computed side by side.
    let n_windows = backtest.windows.len();
    let mut calibrated: Vec<Option<IntervalWidths>> = (0..=n_windows)
        .into_par_iter()
        .map(|held_out| {
            if held_out < n_windows && n_windows < 2 {
                return None;
            }
            let used = backtest.windows.iter().enumerate().filter(|&(idx, _)| idx != held_out);
            calibrate(used.map(|(_, w)| w), chosen, horizon)
        })
        .collect();
    let intervals = calibrated.pop().flatten().ok_or_else(|| {
        MlError::InvalidData("the backtest scored no period; intervals cannot be calibrated".into())
    })?;
    let mut per_window = Vec::with_capacity(backtest.windows.len());
    let mut per_series: BTreeMap<String, Errors> = BTreeMap::new();
    for (window, widths) in backtest.windows.iter().zip(calibrated) {
        let widths = widths.unwrap_or_else(|| intervals.clone());
        let mut errors = Errors::default();
        for series in &window.series {
            let Some(forecast) = series.forecasts.get(chosen.name()) else { continue };
            errors.add(&series.actual, forecast, series.scale);
            errors.add_coverage(series, forecast, &widths);
            let entry = per_series.entry(series.series.clone()).or_default();
            entry.add(&series.actual, forecast, series.scale);
            entry.add_coverage(series, forecast, &widths);
        }
        per_window.push(errors.metrics(true));
    }
    let overall = summarise_windows(&per_window);
    let why = explain(chosen, backtest, &strategies);
    let report = BacktestReport {
        strategy: chosen,
        why,
        frequency: backtest.frequency,
        horizon,
        origins: backtest.windows.iter().map(|w| w.origin).collect(),
        scored: backtest.windows.iter().map(|w| w.series.len()).sum(),
        skipped: backtest.skipped,
        unscaled: backtest
            .windows
            .iter()
            .flat_map(|w| &w.series)
            .filter(|s| s.scale.is_none())
            .count(),
        overall,
        per_series: per_series
            .into_iter()
            .map(|(key, errors)| (key, errors.metrics(true)))
            .collect(),
        strategies,
        coverage_in_sample: n_windows < 2,
        ets_forms: backtest.ets_forms.clone(),
    };
    Ok((report, intervals))
}

/// The sentence saying why `chosen` won.
fn explain(
    chosen: Strategy,
    backtest: &Backtest,
    strategies: &BTreeMap<String, BTreeMap<String, MetricSummary>>,
) -> String {
    let mase = |strategy: Strategy| {
        strategies
            .get(strategy.name())
            .and_then(|m| m.get("mase"))
            .copied()
            .unwrap_or(MetricSummary { mean: f64::NAN, std: f64::NAN })
    };
    let chosen_mase = mase(chosen);
    let windows = backtest.windows.len();
    let others: Vec<String> = Strategy::ALL
        .into_iter()
        .filter(|&s| s != chosen && strategies.contains_key(s.name()))
        .map(|s| {
            let note = if backtest.candidates.contains(&s) { "" } else { " (reference only)" };
            format!("{s} {:.3}{note}", mase(s).mean)
        })
        .collect();
    let lead = if backtest.candidates.len() == 1 {
        format!("{chosen} was the only candidate strategy")
    } else {
        format!("{chosen} had the lowest mean MASE")
    };
    let spacing = if backtest.step == 0 || backtest.step == backtest.horizon {
        String::new()
    } else {
        format!(
            " (origins {} {} period{} apart, as the history is short)",
            backtest.step,
            backtest.frequency,
            if backtest.step == 1 { "" } else { "s" }
        )
    };
    format!(
        "{lead} over {windows} rolling-origin window{} of {} {} periods{spacing}: {:.3} ± {:.3}{}{}",
        if windows == 1 { "" } else { "s" },
        backtest.horizon,
        backtest.frequency,
        chosen_mase.mean,
        chosen_mase.std,
        if others.is_empty() { "" } else { ", against " },
        others.join(", ")
    )
}
