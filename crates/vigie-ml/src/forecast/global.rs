//! The global model: one gradient-boosted tree ensemble learned across all
//! series, forecasting recursively.
//!
//! **Recursive, one step at a time.** The trees learn the next period from
//! the past; to forecast `h` periods the prediction for `t` is appended to the
//! series and becomes a lag of `t + 1`. One model serves every horizon and
//! the rows it learns from are the history itself (a direct model per step
//! would need `horizon` times the rows).
//!
//! **Leakage is impossible by construction.** [`FeatureSpec::write_row`] is the
//! only place features are made, and it receives the values *before* the
//! target period (a slice that ends there), the [`Summary`] of those values,
//! the target period's calendar and future-known covariates, and the last
//! value of each past-only covariate. Training passes the true prefix; the
//! forecast passes the history up to the origin followed by its own
//! predictions. Nothing after the origin reaches it.
//!
//! **Normalisation.** Every row is divided by its *level*, the mean absolute
//! value of the last season before the target period: lags, rolling means
//! and standard deviations become ratios to the level, the target is
//! `y_t / level`, and the prediction is multiplied back. Series of any size
//! share one model, a series times 1000 gets the forecast times 1000, and a
//! trend shows as ratios above one. Features are scale-free on purpose: no
//! raw level, no series identifier.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::calendar::{Frequency, Grid};
use super::state::{Summary, season_level};
use crate::error::{MlError, Result};
use crate::estimator::TrainSet;
use crate::gbdt::{self, GbdtParams};
use crate::matrix::{FeatureInfo, Matrix, Task};
use crate::rng::Rng;
use crate::tree::TreeEnsemble;

/// The features of the global model: which lags, windows, calendar fields and covariates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct FeatureSpec {
    pub frequency: Frequency,
    pub season: usize,
    pub lags: Vec<usize>,
    pub windows: Vec<usize>,
    /// Names of the covariates read at the target period.
    pub future_covariates: Vec<String>,
    /// Names of the covariates read at their last value before the target period.
    pub past_covariates: Vec<String>,
    /// Whether the rows hold the days to the nearest moving holidays
    /// ([`Grid::holidays_into`]); models saved before these features existed
    /// read `false`.
    #[serde(default)]
    pub holidays: bool,
    /// When not 0, the periods back to the same point a year ago (364 days,
    /// the same weekday): the mean of the season centred there is a feature.
    /// A year-ago lag would carry last year's moving holidays onto this
    /// year's ordinary days (Black Friday 2023 falls 364 days before the
    /// Friday a week ahead of Black Friday 2024); a week's mean keeps the
    /// yearly level and blurs single days.
    #[serde(default)]
    pub year_ago: usize,
    /// Whether daily rows hold the day of the year. New models do not: with
    /// a year or two of history it names single days (binned, two or three
    /// at a time), so the trees learn last year's moving holidays as dates,
    /// while month and day of month place the fixed ones. Models saved
    /// before read `true`.
    #[serde(default = "day_of_year_by_default")]
    pub day_of_year: bool,
    /// When not 0, the mean of the values one, two, ... this many seasons
    /// before the target period is a feature: for hourly series, the same
    /// hour on each of the last seven days, the daily profile smoothed over
    /// a week. Models saved before it existed read 0.
    #[serde(default)]
    pub seasonal_mean: usize,
    /// Whether lags of whole days, and the seasonal mean, read the same
    /// hour on the wall clock of the grid's zone ([`Grid::wall_clock_lag`]):
    /// after a daylight-saving change, 9 a.m. then reads 9 a.m. of the days
    /// before, not 8 or 10. Models saved before it existed read UTC hours.
    #[serde(default)]
    pub wall_clock_lags: bool,
    /// Lags at which every future-known covariate is also a feature: the
    /// promotion or the weather of the day a lag of the target was read on,
    /// so that the trees can tell a lag lifted by last week's promotion, or
    /// sunk by last week's rain, from a change of level. Models saved before
    /// these features existed read none.
    #[serde(default)]
    pub covariate_lags: Vec<usize>,
}

/// What a model saved before `FeatureSpec::day_of_year` existed used.
fn day_of_year_by_default() -> bool {
    true
}

/// What is known before a target period: the values before it (at least the
/// last [`FeatureSpec::keep`], last one last), their [`Summary`], the last
/// value of each past-only covariate, and the values of each future-known
/// covariate before it (at least the last [`FeatureSpec::covariate_keep`],
/// last one last; none when the spec has no covariate lags).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Known<'a> {
    pub recent: &'a [f64],
    pub summary: &'a Summary,
    pub past_covariates: &'a [f64],
    pub covariates_before: &'a [&'a [f64]],
}

/// What one series contributes to a training set: values before the cut and aligned covariates.
pub(crate) struct SeriesView<'a> {
    /// Period of `values[0]`.
    pub start: i64,
    /// The target up to the origin.
    pub values: &'a [f64],
    /// Future-known covariates, each at least as long as `values`.
    pub future: Vec<&'a [f64]>,
    /// Past-only covariates, each at least as long as `values`.
    pub past: Vec<&'a [f64]>,
}

impl FeatureSpec {
    /// How many last values the features read.
    pub fn keep(&self) -> usize {
        let longest_lag = self.lags.iter().copied().max().unwrap_or(0);
        let longest_window = self.windows.iter().copied().max().unwrap_or(0);
        let year_ago = if self.year_ago > 0 { self.year_ago + self.season / 2 } else { 0 };
        let longest = longest_lag
            .max(longest_window)
            .max(self.season)
            .max(self.season.saturating_mul(self.seasonal_mean))
            .max(year_ago);
        // A lag of whole days may reach an hour further across a change of clocks.
        longest + usize::from(self.wall_clock_lags)
    }

    /// How many last values of each future-known covariate the features read.
    pub fn covariate_keep(&self) -> usize {
        let longest = self.covariate_lags.iter().copied().max().unwrap_or(0);
        if longest == 0 { 0 } else { longest + usize::from(self.wall_clock_lags) }
    }

    /// How many periods back `lag` reads for the target `period`.
    fn lag_at(&self, grid: &Grid, period: i64, lag: usize) -> usize {
        if self.wall_clock_lags { grid.wall_clock_lag(period, lag) } else { lag }
    }

    /// Number of feature columns.
    pub fn n_features(&self) -> usize {
        self.lags.len()
            + self.windows.len()
            + usize::from(self.year_ago > 0)
            + usize::from(self.seasonal_mean > 0)
            + 3
            + self.calendar_names().count()
            + if self.holidays { Grid::HOLIDAY_NAMES.len() } else { 0 }
            + self.future_covariates.len()
            + self.past_covariates.len()
            + self.future_covariates.len() * self.covariate_lags.len()
    }

    /// What each column is, in [`FeatureSpec::write_row`] order.
    pub fn feature_infos(&self) -> Vec<FeatureInfo> {
        let mut names: Vec<String> = Vec::with_capacity(self.n_features());
        names.extend(self.lags.iter().map(|lag| format!("lag_{lag}")));
        names.extend(self.windows.iter().map(|w| format!("rolling_mean_{w}")));
        if self.year_ago > 0 {
            names.push(format!("year_ago_mean_{}", self.season));
        }
        if self.seasonal_mean > 0 {
            names.push(format!("seasonal_mean_{}", self.seasonal_mean));
        }
        names.push(format!("rolling_std_{}", self.season));
        names.push("history_mean".into());
        names.push("history_std".into());
        names.extend(self.calendar_names().map(str::to_owned));
        if self.holidays {
            names.extend(Grid::HOLIDAY_NAMES.iter().map(|&n| n.to_owned()));
        }
        names.extend(self.future_covariates.iter().cloned());
        names.extend(self.past_covariates.iter().map(|n| format!("{n}_last")));
        for name in &self.future_covariates {
            names.extend(self.covariate_lags.iter().map(|lag| format!("{name}_lag_{lag}")));
        }
        names
            .into_iter()
            .enumerate()
            .map(|(source, name)| FeatureInfo { name, source, categories: None })
            .collect()
    }

    /// The calendar features of the rows, in [`FeatureSpec::write_row`] order.
    fn calendar_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        Grid::calendar_names(self.frequency)
            .iter()
            .copied()
            .filter(|&name| self.day_of_year || name != "day_of_year")
    }

    /// Writes the features of the target `period` into `out` from what is
    /// `known` before it and its `future`-known covariates; returns the level.
    pub fn write_row(
        &self,
        grid: &Grid,
        known: &Known<'_>,
        period: i64,
        future: &[f64],
        out: &mut [f32],
    ) -> f64 {
        let Known { recent, summary, past_covariates: past, covariates_before } = *known;
        let level = season_level(recent, self.season, summary);
        let ratio = |value: f64| (value / level) as f32;
        let n = recent.len();
        let mut slots = out.iter_mut();
        let mut put = |value: f32| {
            if let Some(slot) = slots.next() {
                *slot = value;
            }
        };
        for &lag in &self.lags {
            let lag = self.lag_at(grid, period, lag);
            put(if lag <= n { ratio(recent[n - lag]) } else { f32::NAN });
        }
        for &window in &self.windows {
            put(if window <= n {
                ratio(recent[n - window..].iter().sum::<f64>() / window as f64)
            } else {
                f32::NAN
            });
        }
        if self.year_ago > 0 {
            // The season centred `year_ago` periods before the target.
            let half = self.season / 2;
            let newest = self.year_ago.saturating_sub(half).max(1);
            let oldest = self.year_ago + half;
            put(if oldest <= n {
                let window = &recent[n - oldest..=n - newest];
                ratio(window.iter().sum::<f64>() / window.len() as f64)
            } else {
                f32::NAN
            });
        }
        if self.seasonal_mean > 0 {
            // Over the seasons there are values for (none: unknown).
            let season = self.season.max(1);
            let (sum, count) = (1..=self.seasonal_mean)
                .map_while(|k| n.checked_sub(self.lag_at(grid, period, k * season)))
                .fold((0.0, 0usize), |(sum, count), at| (sum + recent[at], count + 1));
            put(if count == 0 { f32::NAN } else { ratio(sum / count as f64) });
        }
        let last_season = &recent[n.saturating_sub(self.season)..];
        put(if last_season.len() >= 2 {
            let mean = last_season.iter().sum::<f64>() / last_season.len() as f64;
            let variance = last_season.iter().map(|v| (v - mean).powi(2)).sum::<f64>()
                / last_season.len() as f64;
            ratio(variance.sqrt())
        } else {
            f32::NAN
        });
        put(ratio(summary.mean()));
        put(ratio(summary.std()));
        let mut calendar = [0f32; 4];
        let names = Grid::calendar_names(self.frequency);
        let n_calendar = names.len().min(calendar.len());
        grid.calendar_into(period, &mut calendar[..n_calendar]);
        for (&value, &name) in calendar[..n_calendar].iter().zip(names) {
            if self.day_of_year || name != "day_of_year" {
                put(value);
            }
        }
        if self.holidays {
            let mut holidays = [0f32; Grid::HOLIDAY_NAMES.len()];
            grid.holidays_into(period, &mut holidays);
            for value in holidays {
                put(value);
            }
        }
        for &value in future.iter().chain(past) {
            put(value as f32);
        }
        for j in 0..self.future_covariates.len() {
            let before = covariates_before.get(j).copied().unwrap_or_default();
            for &lag in &self.covariate_lags {
                let lag = self.lag_at(grid, period, lag);
                let n = before.len();
                put(if lag <= n { before[n - lag] as f32 } else { f32::NAN });
            }
        }
        level
    }

    /// The training rows of `series`: every period from the second season on
    /// (within the last `train_window` periods), target `y_t / level`. Each
    /// series writes its own block of rows, in parallel.
    fn training_set(
        &self,
        grid: &Grid,
        series: &[SeriesView<'_>],
        train_window: Option<usize>,
        max_rows: Option<usize>,
        seed: u64,
    ) -> (Matrix, Vec<f32>) {
        let n_features = self.n_features();
        let firsts: Vec<usize> = series
            .iter()
            .map(|s| first_training_row(s.values.len(), self.season, train_window))
            .collect();
        let eligible: Vec<usize> = series
            .iter()
            .zip(&firsts)
            .map(|(s, &first)| s.values.len().saturating_sub(first))
            .collect();
        // Which eligible periods become rows: all, or `max_rows` of them drawn
        // as the boosting would draw them, and only those are built.
        let total: usize = eligible.iter().sum();
        let mask = Rng::new(seed)
            .fork(gbdt::SAMPLE_STREAM)
            .sample_mask(total, max_rows.unwrap_or(usize::MAX));
        let mut rest = mask.as_slice();
        let kept: Vec<&[bool]> = eligible
            .iter()
            .map(|&count| {
                let (this, after) = rest.split_at(count);
                rest = after;
                this
            })
            .collect();
        let counts: Vec<usize> =
            kept.iter().map(|kept| kept.iter().filter(|&&k| k).count()).collect();
        let n_rows: usize = counts.iter().sum();
        let mut x = Matrix::zeros(n_rows, n_features);
        let mut y = vec![0f32; n_rows];
        let mut blocks = Vec::with_capacity(series.len());
        let (mut x_rest, mut y_rest) = (x.values.as_mut_slice(), y.as_mut_slice());
        for &count in &counts {
            let (x_block, x_after) = x_rest.split_at_mut(count * n_features);
            let (y_block, y_after) = y_rest.split_at_mut(count);
            blocks.push((x_block, y_block));
            (x_rest, y_rest) = (x_after, y_after);
        }
        blocks.into_par_iter().zip(series).zip(&firsts).zip(&kept).for_each(
            |((((x_block, y_block), view), &first), kept)| {
                let mut future = Vec::with_capacity(view.future.len());
                let mut past = Vec::with_capacity(view.past.len());
                let lagged = !self.covariate_lags.is_empty();
                let mut before: Vec<&[f64]> = Vec::with_capacity(view.future.len());
                let mut summary = Summary::new();
                let typical = view.values.iter().map(|v| v.abs()).sum::<f64>()
                    / view.values.len().max(1) as f64;
                let mut rows = x_block.chunks_exact_mut(n_features.max(1)).zip(y_block.iter_mut());
                for (t, &value) in view.values.iter().enumerate() {
                    if t >= first && kept[t - first] {
                        let Some((row, target)) = rows.next() else { break };
                        future.clear();
                        future.extend(
                            view.future.iter().map(|c| c.get(t).copied().unwrap_or(f64::NAN)),
                        );
                        past.clear();
                        past.extend(view.past.iter().map(|c| {
                            t.checked_sub(1)
                                .and_then(|before| c.get(before))
                                .copied()
                                .unwrap_or(f64::NAN)
                        }));
                        before.clear();
                        if lagged {
                            before.extend(view.future.iter().map(|c| &c[..t.min(c.len())]));
                        }
                        let known = Known {
                            recent: &view.values[..t],
                            summary: &summary,
                            past_covariates: &past,
                            covariates_before: &before,
                        };
                        let level =
                            self.write_row(grid, &known, view.start + t as i64, &future, row);
                        // A row whose level, or the season's before it, is a sliver of
                        // the series' usual size is left out (NaN, dropped below).
                        let before = &view.values
                            [t.saturating_sub(2 * self.season)..t.saturating_sub(self.season)];
                        let level_before = before.iter().map(|v| v.abs()).sum::<f64>()
                            / before.len().max(1) as f64;
                        let low = LOW_LEVEL * typical;
                        *target = if level < low || (!before.is_empty() && level_before < low) {
                            f32::NAN
                        } else {
                            (value / level) as f32
                        };
                    }
                    summary.push(&view.values[..t], value, self.season);
                }
            },
        );
        drop_nan_targets(x, y)
    }
}

/// A training row is left out of the training set when its level, or the
/// mean absolute value of the season before that level's, is less than
/// this share of its series' mean absolute value (over the history the
/// model is fitted on). Such rows are a product's first two seasons of sales
/// after months of 0 (or after one stray sale, whose level is a hundredth of
/// a unit): their targets are several, up to hundreds of, levels, and the
/// trees learnt from them that lags above the level foretell more growth.
/// Recursive forecasts of steady series then ran away: in a tester's six
/// SKUs selling 10 to 110 a day, one launched six days before the end after
/// a stray sale, every other SKU's 14-day forecast rose to hundreds or
/// thousands (five launch rows among 600 did it). A tenth also left out
/// bikeshare's cold and rainy days (casual riders a few an hour), which the
/// model needs: it raised the benchmark's 15 bikeshare cut-offs' mean MASE by 0.037.
const LOW_LEVEL: f64 = 0.01;

/// The rows of `x` and `y` whose target is not NaN.
fn drop_nan_targets(mut x: Matrix, y: Vec<f32>) -> (Matrix, Vec<f32>) {
    if !y.iter().any(|v| v.is_nan()) {
        return (x, y);
    }
    let n_cols = x.n_cols;
    let mut kept = 0;
    for (row, target) in y.iter().enumerate() {
        if !target.is_nan() {
            x.values.copy_within(row * n_cols..(row + 1) * n_cols, kept * n_cols);
            kept += 1;
        }
    }
    x.values.truncate(kept * n_cols);
    x.n_rows = kept;
    (x, y.into_iter().filter(|v| !v.is_nan()).collect())
}

/// The first period of a series of `len` values that becomes a training row.
fn first_training_row(len: usize, season: usize, train_window: Option<usize>) -> usize {
    let from_window = train_window.map_or(0, |w| len.saturating_sub(w));
    season.max(1).max(from_window)
}

/// How far past the 99th percentile of the training targets' sizes (in
/// units of their level) a target may lie before it is brought back to
/// that bound ([`target_bound`]).
const TARGET_BOUND_FACTOR: f32 = 10.0;

/// The largest size a training target keeps, and a prediction may take:
/// [`TARGET_BOUND_FACTOR`] times the 99th percentile of `|y / level|`
/// over the rows, at least 10. One day of 1,000,000 in a week of 10 to 70
/// is a target of 25,000 levels; learnt as is, the leaves it falls in
/// (with 19 ordinary rows, of every series) predicted hundreds of levels
/// for ordinary rows, and the recursion fed those back as lags until the
/// forecasts reached 1e25. Intermittent series, whose sales are many
/// times their level, keep theirs: they make the percentile.
fn target_bound(targets: &[f32]) -> f32 {
    let mut sizes: Vec<f32> = targets.iter().map(|y| y.abs()).filter(|y| y.is_finite()).collect();
    if sizes.is_empty() {
        return f32::INFINITY;
    }
    let at = ((sizes.len() - 1) as f64 * 0.99).round() as usize;
    let (_, &mut percentile, _) = sizes.select_nth_unstable_by(at, f32::total_cmp);
    (percentile * TARGET_BOUND_FACTOR).max(10.0)
}

/// What a model saved before targets were bounded reads: no bound.
fn no_bound() -> f32 {
    f32::INFINITY
}

/// The fitted global model: its features and trees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct GlobalModel {
    pub spec: FeatureSpec,
    pub trees: TreeEnsemble,
    /// The size of a target, in units of its level, beyond which training
    /// targets were brought back and predictions are ([`target_bound`]).
    #[serde(default = "no_bound")]
    pub target_bound: f32,
}

impl GlobalModel {
    /// Learns one model from all `series`.
    pub fn fit(
        spec: FeatureSpec,
        grid: &Grid,
        series: &[SeriesView<'_>],
        params: &GbdtParams,
        train_window: Option<usize>,
        seed: u64,
    ) -> Result<GlobalModel> {
        let (x, mut y) = spec.training_set(grid, series, train_window, params.max_rows, seed);
        let bound = target_bound(&y);
        for target in &mut y {
            *target = target.clamp(-bound, bound);
        }
        if x.n_rows == 0 {
            return Err(MlError::InvalidData(format!(
                "the global model has no training rows: every series needs more than one season ({} periods)",
                spec.season
            )));
        }
        let features = spec.feature_infos();
        let set =
            TrainSet { x: &x, y: &y, weights: None, features: &features, task: Task::Regression };
        let fitted = gbdt::fit(params, &set, None, seed)?;
        Ok(GlobalModel { spec, trees: fitted.ensemble, target_bound: bound })
    }

    /// Forecasts `steps` periods after `last_period` from what is `known`
    /// there; `future(step, column)` gives the future-known covariates of
    /// step `1..=steps`. Each prediction is appended to the values the next
    /// step's features read.
    pub fn forecast(
        &self,
        grid: &Grid,
        known: &Known<'_>,
        last_period: i64,
        steps: usize,
        future: &mut dyn FnMut(usize, usize) -> Result<f64>,
    ) -> Result<Vec<f64>> {
        let keep = self.spec.keep();
        let mut buffer: Vec<f64> = Vec::with_capacity(keep + steps);
        buffer.extend_from_slice(&known.recent[known.recent.len().saturating_sub(keep)..]);
        let mut summary = *known.summary;
        let mut row = vec![0f32; self.spec.n_features()];
        let mut future_row = vec![0.0; self.spec.future_covariates.len()];
        // Each future-known covariate's values before the step: the known
        // ones, then those of the steps forecast so far.
        let covariate_keep = self.spec.covariate_keep();
        let mut covariates: Vec<Vec<f64>> = if covariate_keep == 0 {
            Vec::new()
        } else {
            (0..future_row.len())
                .map(|j| {
                    let known = known.covariates_before.get(j).copied().unwrap_or_default();
                    let mut values = Vec::with_capacity(covariate_keep + steps);
                    values.extend_from_slice(&known[known.len().saturating_sub(covariate_keep)..]);
                    values
                })
                .collect()
        };
        let mut raw = [0.0f64; 1];
        let mut forecasts = Vec::with_capacity(steps);
        for step in 1..=steps {
            for (column, slot) in future_row.iter_mut().enumerate() {
                *slot = future(step, column)?;
            }
            let before: Vec<&[f64]> = covariates.iter().map(Vec::as_slice).collect();
            let now = Known {
                recent: &buffer,
                summary: &summary,
                past_covariates: known.past_covariates,
                covariates_before: &before,
            };
            let level =
                self.spec.write_row(grid, &now, last_period + step as i64, &future_row, &mut row);
            self.trees.predict_raw_into(&row, &mut raw);
            let bound = f64::from(self.target_bound);
            let prediction = raw[0].clamp(-bound, bound) * level;
            summary.push(&buffer, prediction, self.spec.season);
            buffer.push(prediction);
            forecasts.push(prediction);
            for (values, &value) in covariates.iter_mut().zip(&future_row) {
                values.push(value);
            }
        }
        Ok(forecasts)
    }
}
