//! What the caller chooses for forecasting, and the checked form `fit` works from.
//!
//! [`ForecastParams`] is plain data (serde, so the CLI can read it from
//! `vigie.toml` or JSON); [`ForecastParams::check`] turns it, once the
//! frequency and covariates are known, into a [`CheckedParams`] whose lags
//! and windows are resolved, so nothing downstream re-validates.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::calendar::Frequency;
use crate::error::{MlError, Result};
use crate::gbdt::GbdtParams;

/// A way of forecasting, chosen by the rolling-origin backtest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Repeat the last season: the forecast for `t` is the value at `t - season`.
    SeasonalNaive,
    /// Exponential smoothing (Holt-Winters: no, additive or damped trend;
    /// no, additive or multiplicative season) fitted per series, the form
    /// picked by AICc.
    Ets,
    /// One gradient-boosted tree model learned across all series on
    /// normalised lags, rolling statistics, calendar and covariates,
    /// forecasting recursively.
    GlobalGbdt,
}

impl Strategy {
    /// All strategies, simplest first (ties in the backtest go to the simpler one).
    pub const ALL: [Strategy; 3] = [Strategy::SeasonalNaive, Strategy::Ets, Strategy::GlobalGbdt];

    /// The name used in reports (`global_gbdt`).
    pub fn name(self) -> &'static str {
        match self {
            Strategy::SeasonalNaive => "seasonal_naive",
            Strategy::Ets => "ets",
            Strategy::GlobalGbdt => "global_gbdt",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Parameters of [`fit`](super::fit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ForecastParams {
    /// How many periods ahead to forecast (and to backtest); must be at least 1.
    /// The default, 0, must be replaced.
    pub horizon: usize,
    /// The series' frequency, or `None` to infer it from the timestamps.
    pub frequency: Option<Frequency>,
    /// Rolling-origin backtest windows of `horizon` periods, the last ones of
    /// the history; `None` for the frequency's default
    /// ([`default_backtest_windows`]).
    pub backtest_windows: Option<usize>,
    /// Fit every strategy again at each backtest origin; by default they are
    /// fitted at the first origin and only read the history up to the later
    /// ones (a `backtest_windows`-th of the fitting).
    pub backtest_refit: bool,
    /// The strategies the backtest chooses among (seasonal naive is always
    /// backtested too, as the reference).
    pub strategies: Vec<Strategy>,
    /// Boosting parameters of the global model.
    pub gbdt: GbdtParams,
    /// Lags (in periods) of the global model's features; `None` for the frequency's default.
    pub lags: Option<Vec<usize>>,
    /// Rolling-mean windows (in periods) of the global model; `None` for the frequency's default.
    pub windows: Option<Vec<usize>>,
    /// Covariates whose future values are not known at forecast time (the
    /// global model then sees only their last value up to the origin). Every
    /// other covariate is known in the future and must be given for the
    /// forecast periods.
    pub past_only_covariates: Vec<String>,
    /// The global model learns from at most this many most recent periods of
    /// each series (its features still read the periods before): `None` for
    /// the frequency's default ([`ForecastParams::train_window_for`]),
    /// `Some(usize::MAX)` for all of them.
    pub train_window: Option<usize>,
    /// Seed of every random choice (row and feature sampling of the trees).
    pub seed: u64,
    /// The zone whose wall clock hourly series' calendar features (hour,
    /// weekday, holidays) and written times follow, daylight saving
    /// included; the periods stay UTC hours. `None`: UTC. Ignored for daily
    /// and coarser series, whose periods are grouped into local dates
    /// instead ([`PeriodGrouping::timezone`](super::PeriodGrouping::timezone)).
    #[serde(default, with = "super::periods::zone_name")]
    pub timezone: Option<vigie_core::zone::TimeZone>,
}

/// Boosting defaults for the global model: shallower, more regularised trees
/// than for business tables, fixed rounds (no validation rows are held out of
/// a history whose last periods matter most). 150 rounds at 0.1 backtest as
/// well as 300 at 0.05 did (revenue 0.608 against 0.609, bikeshare 0.601
/// against 0.619) in half the boosting time, which is most of training.
/// Each tree grows on 80% of the rows: on the benchmark's held-out periods
/// every row in every tree forecast worse (revenue MASE 0.763 against
/// 0.726, bikeshare 0.509 against 0.478) for 6% less training time.
/// Values fall into 63 bins, not 255: split finding scans every bin of
/// every feature at every node, whatever the rows, and was 41% of
/// bikeshare's boosting. On the benchmark (seeds 42, 1 and 2) bikeshare's 15
/// cut-offs scored MASE 0.764 against 0.791 and its fixed cut-off 0.582
/// against 0.576, in 45% less time; revenue's held-out MASE (6 seeds) 0.708
/// against 0.696 (backtest 0.616 against 0.613), its training 11% faster;
/// airline and shampoo unchanged.
///
/// The trees learn from at most [`DEFAULT_MAX_TRAIN_ROWS`] rows, drawn at
/// random from every series' training periods, and only those rows are built.
pub fn default_gbdt_params() -> GbdtParams {
    GbdtParams {
        n_rounds: 150,
        learning_rate: 0.1,
        max_leaves: 31,
        max_depth: None,
        min_child_weight: 20.0,
        l2: 1.0,
        l1: 0.0,
        subsample: 0.8,
        colsample: 0.8,
        max_bins: 63,
        early_stopping_rounds: None,
        max_rows: Some(DEFAULT_MAX_TRAIN_ROWS),
    }
}

/// The most training rows the global model learns from by default. Its
/// features are ratios to each series' level, so rows of different series
/// teach the same patterns, and a sample teaches them nearly as well as all.
/// On the benchmark's revenue series (1,000 series, 400,000 rows in the
/// 400-day window), the mean of three seeds: held-out MASE 0.701 (backtest
/// 0.612) and 2.1 s of training with 50,000 rows, against 0.681 (0.611) and
/// 8.4 s with every row; a trial drawing each row with a fixed chance gave
/// 0.695 in 3.4 s with 100,000 rows, 0.714 with 25,000 and 0.770 with 12,000.
pub const DEFAULT_MAX_TRAIN_ROWS: usize = 50_000;

impl Default for ForecastParams {
    fn default() -> Self {
        ForecastParams {
            horizon: 0,
            frequency: None,
            backtest_windows: None,
            backtest_refit: false,
            strategies: Strategy::ALL.to_vec(),
            gbdt: default_gbdt_params(),
            lags: None,
            windows: None,
            past_only_covariates: Vec::new(),
            train_window: None,
            seed: 0,
            timezone: None,
        }
    }
}

/// How far back the global model's training rows go by default for hourly and
/// daily series: 400 days, a year and the weeks around its anniversary, so that
/// every holiday and season of the year is learned once and the rows of older
/// regimes (structural breaks, stores since refitted) are not. On the
/// benchmark's revenue series (700 days, 1,000 series) it gave a held-out MASE
/// of 0.670 / 0.685 / 0.686 over three seeds against 0.726 / 0.743 / 0.721 with
/// every row, in about 30% less time; 182 and 365 days also forecast better
/// than every row, but leave out last year's holidays.
const DEFAULT_TRAIN_DAYS: usize = 400;

impl ForecastParams {
    /// The defaults with `horizon` periods ahead.
    pub fn new(horizon: usize) -> Self {
        ForecastParams { horizon, ..ForecastParams::default() }
    }

    /// The most recent periods of each series the global model learns from, for
    /// series of `frequency`: the one asked for, else 400 days of hourly or daily
    /// periods ([`DEFAULT_TRAIN_DAYS`]); `None`: all of them (weekly and coarser
    /// series by default: they are short).
    pub fn train_window_for(&self, frequency: Frequency) -> Option<usize> {
        match (self.train_window, frequency) {
            (Some(usize::MAX), _) => None,
            (Some(periods), _) => Some(periods),
            (None, Frequency::Daily) => Some(DEFAULT_TRAIN_DAYS),
            (None, Frequency::Hourly) => Some(DEFAULT_TRAIN_DAYS * 24),
            (None, _) => None,
        }
    }

    /// Checks what does not depend on the data.
    pub(crate) fn check_static(&self) -> Result<()> {
        if self.horizon == 0 {
            return Err(MlError::param("horizon", "must be at least 1 period"));
        }
        if self.backtest_windows == Some(0) {
            return Err(MlError::param(
                "backtest_windows",
                "must be at least 1: the backtest chooses the strategy and calibrates the intervals",
            ));
        }
        if self.strategies.is_empty() {
            return Err(MlError::param("strategies", "name at least one strategy"));
        }
        if self.train_window == Some(0) {
            return Err(MlError::param("train_window", "must be at least 1 period"));
        }
        if self.gbdt.max_rows == Some(0) {
            return Err(MlError::param("max_rows", "must be at least 1 (or none: every row)"));
        }
        Ok(())
    }

    /// The checked parameters for series of `frequency` covering `covered`
    /// periods from the earliest to the latest, with these covariate columns.
    pub(crate) fn check(
        &self,
        frequency: Frequency,
        covered: usize,
        covariates: &[String],
    ) -> Result<CheckedParams> {
        self.check_static()?;
        if self.horizon > covered {
            return Err(MlError::param(
                "horizon",
                format!(
                    "{} periods is longer than the whole history ({covered} {frequency} periods \
                     from the earliest time to the latest)",
                    self.horizon
                ),
            ));
        }
        if let Some(windows) = self.backtest_windows.filter(|&w| w > covered) {
            return Err(MlError::param(
                "backtest_windows",
                format!(
                    "{windows} is more than the history's {covered} {frequency} periods \
                     (from the earliest time to the latest)"
                ),
            ));
        }
        let season = frequency.season_length();
        let periods =
            |name: &str, given: &Option<Vec<usize>>, default: &[usize]| -> Result<Vec<usize>> {
                let mut values = given.clone().unwrap_or_else(|| default.to_vec());
                if let Some(bad) = values.iter().find(|&&v| v == 0 || v > MAX_LOOKBACK) {
                    return Err(MlError::param(
                        name,
                        format!("{bad} is not between 1 and {MAX_LOOKBACK} periods"),
                    ));
                }
                values.sort_unstable();
                values.dedup();
                Ok(values)
            };
        let (default_lags, default_windows) = default_lookbacks(frequency);
        let lags = periods("lags", &self.lags, default_lags)?;
        let windows = periods("windows", &self.windows, default_windows)?;
        for name in &self.past_only_covariates {
            if !covariates.contains(name) {
                return Err(MlError::param(
                    "past_only_covariates",
                    format!(
                        "{name:?} is not a covariate of the table; the covariates are {covariates:?}"
                    ),
                ));
            }
        }
        let past_only = covariates.iter().map(|c| self.past_only_covariates.contains(c)).collect();
        let mut strategies = self.strategies.clone();
        strategies.sort_unstable();
        strategies.dedup();
        let (backtest_windows, backtest_step) = match self.backtest_windows {
            Some(windows) => (windows, self.horizon),
            None => default_backtest_plan(frequency, self.horizon, covered),
        };
        Ok(CheckedParams {
            horizon: self.horizon,
            season,
            backtest_windows,
            backtest_step,
            backtest_refit: self.backtest_refit,
            strategies,
            gbdt: self.gbdt.clone(),
            lags,
            windows,
            past_only,
            train_window: self.train_window_for(frequency),
            seed: self.seed,
        })
    }
}

/// Longest lag or window accepted, in periods (ten years of days).
pub(crate) const MAX_LOOKBACK: usize = 3_660;

/// Backtest windows when the caller names none: 3, and for hourly series
/// as many as make the origins span two weeks (so that every hour of every
/// weekday is forecast at least twice from different origins) when the
/// backtest then takes at most half of the history, never fewer than 3.
/// Hourly windows are cheap (a day or two each) and three of them see one
/// weekday at most once; daily and coarser windows are long enough already.
pub fn default_backtest_windows(frequency: Frequency, horizon: usize, covered: usize) -> usize {
    const AT_LEAST: usize = 3;
    if frequency != Frequency::Hourly || horizon == 0 {
        return AT_LEAST;
    }
    let two_weeks = (2 * 7 * 24_usize).div_ceil(horizon);
    let half_history = covered / 2 / horizon;
    two_weeks.min(half_history).max(AT_LEAST)
}

/// The backtest's origins when the caller names none: the default number of
/// windows, `horizon` periods apart; or, when the history is too short for
/// them after its first two seasons, an origin at every one of the periods
/// left (a short monthly series of 30 months and horizon 6 gets 6 origins
/// one month apart, forecasting 6, 5, … 1 months of its history, where
/// windows of 6 months apart would allow one). Returns (origins, step).
pub fn default_backtest_plan(
    frequency: Frequency,
    horizon: usize,
    covered: usize,
) -> (usize, usize) {
    let windows = default_backtest_windows(frequency, horizon, covered);
    let after_two_seasons = covered.saturating_sub(2 * frequency.season_length());
    if windows * horizon <= after_two_seasons || after_two_seasons == 0 {
        (windows, horizon)
    } else {
        (after_two_seasons, 1)
    }
}

/// Hourly lags: the last day, hour by hour (as mlforecast's usual hourly
/// setup), then the same hour two days and a week before.
const HOURLY_LAGS: [usize; 26] = [
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 48, 168,
];

/// Default lags and rolling windows per frequency: recent periods, the
/// season, and for hourly data the next cycle up (a week). Daily data's year
/// ago is not a lag but a week's mean (`FeatureSpec::year_ago`): the
/// same weekday a year ago may have been a holiday that moved.
fn default_lookbacks(frequency: Frequency) -> (&'static [usize], &'static [usize]) {
    match frequency {
        Frequency::Hourly => (&HOURLY_LAGS, &[6, 24, 168]),
        Frequency::Daily => (&[1, 2, 3, 4, 5, 6, 7, 14, 21, 28], &[28, 91]),
        Frequency::Weekly => (&[1, 2, 3, 4, 52], &[4, 13]),
        Frequency::Monthly => (&[1, 2, 3, 6, 12], &[3]),
        Frequency::Quarterly => (&[1, 2, 3, 4, 8], &[2]),
    }
}

/// Parameters checked against the data's frequency and covariates.
#[derive(Debug, Clone)]
pub(crate) struct CheckedParams {
    pub horizon: usize,
    pub season: usize,
    pub backtest_windows: usize,
    /// Periods between two origins: `horizon`, or 1 for a short history
    /// ([`default_backtest_plan`]).
    pub backtest_step: usize,
    /// Fit at every backtest origin rather than at the first only.
    pub backtest_refit: bool,
    /// Sorted, distinct, simplest first.
    pub strategies: Vec<Strategy>,
    pub gbdt: GbdtParams,
    /// Sorted, distinct, each in `1..=MAX_LOOKBACK`.
    pub lags: Vec<usize>,
    pub windows: Vec<usize>,
    /// Per covariate column: whether only past values are known.
    pub past_only: Vec<bool>,
    pub train_window: Option<usize>,
    pub seed: u64,
}
