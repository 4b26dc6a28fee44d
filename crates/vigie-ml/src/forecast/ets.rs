//! Exponential smoothing per series (Holt-Winters in ETS error-correction
//! form, additive errors), fitted by Nelder-Mead on the one-step squared
//! error and chosen among forms by AICc.
//!
//! The forms are level only, additive trend, damped trend, and each of
//! those with an additive or (for positive series) multiplicative season:
//! ETS(A,N,N), (A,A,N), (A,Ad,N), (A,N,A), (A,A,A), (A,Ad,A), (A,N,M),
//! (A,A,M), (A,Ad,M) in Hyndman et al.'s notation ("Forecasting with
//! Exponential Smoothing", 2008, table 2.3), the nine forms with additive
//! errors that R's `forecast::ets` and statsforecast's `AutoETS` choose
//! among. Initial states start from the first two seasons (a classical
//! heuristic); the initial level and slope are then optimised with the
//! smoothing parameters, the seasonal ones are not. All count as parameters
//! in AICc, as in R's `forecast::ets`. Prediction intervals are not derived
//! here: the backtest calibrates them for every strategy alike.

use serde::{Deserialize, Serialize};

use super::calendar::Grid;

/// The trend of an ETS form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TrendKind {
    /// No trend.
    None,
    /// Additive trend damped by `phi` in `[0.8, 0.98]`.
    Damped,
    /// Additive trend, undamped (`phi` = 1): the slope goes on for ever,
    /// which suits short series that are mostly trend.
    Additive,
}

impl TrendKind {
    /// Whether the form has a slope.
    fn has_slope(self) -> bool {
        self != TrendKind::None
    }
}

/// The season of an ETS form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SeasonKind {
    /// No season.
    None,
    /// Seasonal effects added to the level.
    Additive,
    /// Seasonal factors multiplying the level (positive series only).
    Multiplicative,
}

/// A fitted ETS model and its state after the last observed period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct EtsFit {
    pub trend: TrendKind,
    pub season: SeasonKind,
    alpha: f64,
    beta: f64,
    gamma: f64,
    phi: f64,
    level: f64,
    slope: f64,
    /// Seasonal state per position `period mod m` (empty without a season).
    seasonal: Vec<f64>,
    /// Season length.
    m: usize,
    /// The AICc the form was chosen by.
    pub aicc: f64,
}

/// Smoothing parameters in their natural ranges.
#[derive(Debug, Clone, Copy)]
struct Smoothing {
    alpha: f64,
    beta: f64,
    gamma: f64,
    phi: f64,
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn logit(p: f64) -> f64 {
    (p / (1.0 - p)).ln()
}

impl Smoothing {
    /// Maps unconstrained `theta` (alpha, then beta if trended, then gamma if
    /// seasonal, then phi if trended) into `0 < beta < alpha < 1`,
    /// `0 < gamma < 1 - alpha`, `0.8 <= phi <= 0.98`.
    fn from_theta(theta: &[f64], trend: TrendKind, season: SeasonKind) -> Smoothing {
        let mut next = theta.iter().copied();
        let alpha = 1e-4 + (1.0 - 2e-4) * sigmoid(next.next().unwrap_or(0.0));
        let beta_share = if trend.has_slope() { sigmoid(next.next().unwrap_or(0.0)) } else { 0.0 };
        let gamma_share =
            if season != SeasonKind::None { sigmoid(next.next().unwrap_or(0.0)) } else { 0.0 };
        let phi = if trend == TrendKind::Damped {
            0.8 + 0.18 * sigmoid(next.next().unwrap_or(0.0))
        } else {
            1.0
        };
        Smoothing { alpha, beta: alpha * beta_share, gamma: (1.0 - alpha) * gamma_share, phi }
    }

    /// A starting point: alpha 0.3, beta 0.1 alpha, gamma 0.1 (1 - alpha), phi 0.95.
    fn start(trend: TrendKind, season: SeasonKind) -> Vec<f64> {
        let mut theta = vec![logit((0.3 - 1e-4) / (1.0 - 2e-4))];
        if trend.has_slope() {
            theta.push(logit(0.1));
        }
        if season != SeasonKind::None {
            theta.push(logit(0.1));
        }
        if trend == TrendKind::Damped {
            theta.push(logit((0.95 - 0.8) / 0.18));
        }
        theta
    }
}

/// The filter's state.
#[derive(Debug, Clone)]
struct State {
    level: f64,
    slope: f64,
    seasonal: Vec<f64>,
}

/// How far the optimised initial level and slope move from the heuristic
/// ones: `level_shift` and `slope_shift` in units of `unit` (the spread of
/// the first two seasons), so that Nelder-Mead's unit steps fit any scale.
#[derive(Debug, Clone, Copy, Default)]
struct InitialShift {
    level_shift: f64,
    slope_shift: f64,
    unit: f64,
}

impl InitialShift {
    /// The unit of `values`' first two seasons: their standard deviation, else 1.
    fn unit_of(values: &[f64], m: usize) -> f64 {
        let head = &values[..(2 * m).min(values.len())];
        let mean = head.iter().sum::<f64>() / head.len().max(1) as f64;
        let variance =
            head.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / head.len().max(1) as f64;
        let sd = variance.sqrt();
        if sd > 0.0 && sd.is_finite() { sd } else { mean.abs().max(1.0) }
    }

    /// The shifts in `rest` (the level's, then the slope's if trended).
    fn from_theta(rest: &[f64], trend: TrendKind, unit: f64) -> InitialShift {
        let level_shift = rest.first().copied().unwrap_or(0.0);
        let slope_shift = if trend.has_slope() { rest.get(1).copied().unwrap_or(0.0) } else { 0.0 };
        InitialShift { level_shift, slope_shift, unit }
    }

    /// How many shifts a form with `trend` optimises.
    fn count(trend: TrendKind) -> usize {
        1 + usize::from(trend.has_slope())
    }
}

/// A form's filter over one series: its values, the period of the first,
/// the season's length `m`, and the form's trend and season.
#[derive(Debug, Clone, Copy)]
struct Run<'a> {
    values: &'a [f64],
    start: i64,
    m: usize,
    trend: TrendKind,
    season: SeasonKind,
}

/// Initial state from the first two seasons of the run's values (at least
/// `2 m` of them), with the level and slope moved by `shift`.
fn initial_state(run: &Run<'_>, shift: &InitialShift) -> State {
    let Run { values, start, m, trend, season } = *run;
    let mean = |slice: &[f64]| slice.iter().sum::<f64>() / slice.len().max(1) as f64;
    let first = mean(&values[..m]);
    let second = mean(&values[m..2 * m]);
    let slope = if trend.has_slope() { (second - first) / m as f64 } else { 0.0 };
    let centre = (m as f64 - 1.0) / 2.0;
    // The level one period before the first value.
    let level = first - slope * (centre + 1.0);
    let mut seasonal = Vec::new();
    if season != SeasonKind::None {
        seasonal = vec![0.0; m];
        for j in 0..m {
            let mut total = 0.0;
            for k in 0..2 {
                let t = k * m + j;
                let trend_value = first + slope * (t as f64 - centre);
                total += match season {
                    SeasonKind::Multiplicative => values[t] / trend_value,
                    _ => values[t] - trend_value,
                };
            }
            let position = (start + j as i64).rem_euclid(m as i64) as usize;
            seasonal[position] = total / 2.0;
        }
        let average = mean(&seasonal);
        for value in &mut seasonal {
            match season {
                SeasonKind::Multiplicative => *value /= average,
                _ => *value -= average,
            }
        }
    }
    State {
        level: level + shift.level_shift * shift.unit,
        slope: slope + shift.slope_shift * shift.unit / m as f64,
        seasonal,
    }
}

/// A period's place in the season of `m` periods.
fn season_position(period: i64, m: usize) -> usize {
    period.rem_euclid(m.max(1) as i64) as usize
}

/// The season position after `position`, of `m`.
#[inline(always)]
fn next_position(position: usize, m: usize) -> usize {
    if position + 1 == m { 0 } else { position + 1 }
}

/// One filter step at season `position` with observation `value`; returns
/// the one-step error, or `None` if the multiplicative state left its domain.
#[inline(always)]
fn step(
    state: &mut State,
    smoothing: &Smoothing,
    season: SeasonKind,
    position: usize,
    value: f64,
) -> Option<f64> {
    let base = state.level + smoothing.phi * state.slope;
    match season {
        SeasonKind::None => {
            let error = value - base;
            state.level = base + smoothing.alpha * error;
            state.slope = smoothing.phi * state.slope + smoothing.beta * error;
            Some(error)
        }
        SeasonKind::Additive => {
            let seasonal = *state.seasonal.get(position)?;
            let error = value - base - seasonal;
            state.level = base + smoothing.alpha * error;
            state.slope = smoothing.phi * state.slope + smoothing.beta * error;
            state.seasonal[position] = seasonal + smoothing.gamma * error;
            Some(error)
        }
        SeasonKind::Multiplicative => {
            let seasonal = *state.seasonal.get(position)?;
            if !(base > 0.0 && seasonal > 0.0) {
                return None;
            }
            let error = value - base * seasonal;
            state.level = base + smoothing.alpha * error / seasonal;
            state.slope = smoothing.phi * state.slope + smoothing.beta * error / seasonal;
            state.seasonal[position] = seasonal + smoothing.gamma * error / base;
            Some(error)
        }
    }
}

/// Sum of squared one-step errors of a form with `smoothing` over the run,
/// and the final state; `None` when the filter leaves its domain. Run once
/// per fitted form, for its state; the optimiser's evaluations run [`sse`].
fn filter(run: &Run<'_>, smoothing: &Smoothing, shift: &InitialShift) -> Option<(f64, State)> {
    let Run { values, start, m, season, .. } = *run;
    let mut state = initial_state(run, shift);
    let mut sse = 0.0;
    // The season's position advances by one and wraps: no division per step.
    let m = m.max(1);
    let mut position = season_position(start, m);
    for &value in values {
        let error = step(&mut state, smoothing, season, position, value)?;
        sse += error * error;
        position = next_position(position, m);
    }
    sse.is_finite().then_some((sse, state))
}

/// [`filter`]'s sum of squared one-step errors, for Nelder-Mead's
/// hundreds of evaluations per form: the same recursion rearranged so that
/// fewer operations wait on the step before (`f64::INFINITY` where
/// [`filter`] gives `None`). Writing `b` for the level plus the damped
/// slope (the one-step forecast before the season) and `y'` for the value
/// without its season (`y - s`, or `y / s` for a multiplicative one),
/// [`step`]'s updates become `b' = (1 - α - φβ) b + (α + φβ) y' + φ² slope`
/// and `slope' = φ slope + β e`: the chain from one `b` to the next is a
/// multiplication and an addition, where [`step`]'s is six operations
/// (fitting ETS to 1,000 daily series took 5 s of CPU, most of it waiting
/// on that chain). Results agree with [`filter`]'s to rounding.
fn sse(run: &Run<'_>, smoothing: &Smoothing, shift: &InitialShift) -> f64 {
    let Run { values, start, m, season, .. } = *run;
    let State { level, mut slope, mut seasonal } = initial_state(run, shift);
    let Smoothing { alpha, beta, gamma, phi } = *smoothing;
    let m = m.max(1);
    if season != SeasonKind::None && seasonal.len() < m {
        return f64::INFINITY;
    }
    let gain = alpha + phi * beta;
    let trend = TrendStep { keep: 1.0 - gain, gain, phi, phi_squared: phi * phi, beta };
    let mut b = level + phi * slope;
    let mut total = 0.0;
    let mut position = season_position(start, m);
    match season {
        SeasonKind::None => {
            for &y in values {
                let error = y - b;
                total += error * error;
                trend.advance(&mut b, &mut slope, y, error);
            }
        }
        SeasonKind::Additive => {
            for &y in values {
                let s = seasonal[position];
                let adjusted = y - s;
                let error = adjusted - b;
                total += error * error;
                seasonal[position] = s + gamma * error;
                trend.advance(&mut b, &mut slope, adjusted, error);
                position = next_position(position, m);
            }
        }
        SeasonKind::Multiplicative => {
            for &y in values {
                let s = seasonal[position];
                if !(b > 0.0 && s > 0.0) {
                    return f64::INFINITY;
                }
                let adjusted = y / s;
                // The error over the season, which the level and slope take.
                let relative = adjusted - b;
                let error = relative * s;
                total += error * error;
                seasonal[position] = s + gamma * error / b;
                trend.advance(&mut b, &mut slope, adjusted, relative);
                position = next_position(position, m);
            }
        }
    }
    if total.is_finite() { total } else { f64::INFINITY }
}

/// [`sse`]'s update of `b` (level plus damped slope) and the slope, the same
/// for every season form: `b' = keep b + gain y' + φ² slope` and
/// `slope' = φ slope + β e`, where `y'` is the value without its season and
/// `e` the error the slope takes.
struct TrendStep {
    keep: f64,
    gain: f64,
    phi: f64,
    phi_squared: f64,
    beta: f64,
}

impl TrendStep {
    #[inline(always)]
    fn advance(&self, b: &mut f64, slope: &mut f64, adjusted: f64, slope_error: f64) {
        let next_slope = self.phi * *slope + self.beta * slope_error;
        *b = self.keep * *b + (self.gain * adjusted + self.phi_squared * *slope);
        *slope = next_slope;
    }
}

/// Nelder-Mead stops when the squared errors at the simplex's points are
/// within this fraction of each other. 1e-4 of the squared error moves a form's AICc by
/// at most 1e-4 per observation, far below what tells forms apart. R's
/// `optim` default (1.5e-8, which `forecast::ets` uses) spent most of its
/// evaluations there: ETS on the revenue benchmark's 1,000 series took 3.9 s
/// of CPU with it and 1.5 s with 1e-4. ETS's backtest and held-out MASE on
/// the four benchmark data sets moved by less than 0.003, but for bikeshare's
/// held-out (1.714 → 1.685). statsforecast's Theta and CES fits stop their
/// Nelder-Mead at a spread of 1e-4 as well.
const RELATIVE_TOLERANCE: f64 = 1e-4;

/// Minimises `objective` from `start` by Nelder-Mead (standard coefficients),
/// within `max_evaluations`; non-finite values count as +∞.
fn nelder_mead(
    objective: impl Fn(&[f64]) -> f64,
    start: &[f64],
    max_evaluations: usize,
) -> Vec<f64> {
    let dims = start.len();
    let value = |x: &[f64]| {
        let v = objective(x);
        if v.is_finite() { v } else { f64::INFINITY }
    };
    let mut simplex: Vec<(Vec<f64>, f64)> = Vec::with_capacity(dims + 1);
    simplex.push((start.to_vec(), value(start)));
    for d in 0..dims {
        let mut point = start.to_vec();
        point[d] += 1.0;
        let v = value(&point);
        simplex.push((point, v));
    }
    let mut evaluations = dims + 1;
    let combine = |a: &[f64], b: &[f64], t: f64| -> Vec<f64> {
        a.iter().zip(b).map(|(x, y)| x + t * (y - x)).collect()
    };
    while evaluations < max_evaluations {
        simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
        let (best, worst) = (simplex[0].1, simplex[dims].1);
        if worst.is_finite()
            && (worst - best).abs() <= RELATIVE_TOLERANCE * (best.abs() + RELATIVE_TOLERANCE)
        {
            break;
        }
        let mut centroid = vec![0.0; dims];
        for (point, _) in &simplex[..dims] {
            for (c, x) in centroid.iter_mut().zip(point) {
                *c += x / dims as f64;
            }
        }
        let worst_point = simplex[dims].0.clone();
        let reflected = combine(&centroid, &worst_point, -1.0);
        let reflected_value = value(&reflected);
        evaluations += 1;
        if reflected_value < simplex[0].1 {
            let expanded = combine(&centroid, &worst_point, -2.0);
            let expanded_value = value(&expanded);
            evaluations += 1;
            simplex[dims] = if expanded_value < reflected_value {
                (expanded, expanded_value)
            } else {
                (reflected, reflected_value)
            };
        } else if reflected_value < simplex[dims - 1].1 {
            simplex[dims] = (reflected, reflected_value);
        } else {
            let (toward, toward_value) = if reflected_value < simplex[dims].1 {
                (reflected, reflected_value)
            } else {
                (worst_point, simplex[dims].1)
            };
            let contracted = combine(&centroid, &toward, 0.5);
            let contracted_value = value(&contracted);
            evaluations += 1;
            if contracted_value < toward_value {
                simplex[dims] = (contracted, contracted_value);
            } else {
                let best_point = simplex[0].0.clone();
                for entry in simplex.iter_mut().skip(1) {
                    let shrunk = combine(&best_point, &entry.0, 0.5);
                    let v = value(&shrunk);
                    *entry = (shrunk, v);
                }
                evaluations += dims;
            }
        }
    }
    simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
    simplex.swap_remove(0).0
}

/// ETS forms are fitted on at most the last `max(FIT_PERIODS, FIT_SEASONS
/// × m)` periods (250 days of a daily series, 10 days of an hourly one,
/// all of most monthly ones), the state starting from the first two seasons
/// of those. An observation older than that weighs on the final state by
/// `(1 - α)` to that power, nothing for the smoothing values the forms
/// choose, and fitting the longer history costs in proportion (ETS was a
/// fifth of the training of 1,000 daily series).
const FIT_PERIODS: usize = 250;
const FIT_SEASONS: usize = 10;

impl EtsFit {
    /// Fits every applicable form to `values` (starting at period `start`,
    /// at least two seasons of `m`) and keeps the one with the lowest AICc.
    /// Returns `None` only if no form can be fitted (non-finite data).
    pub fn fit(values: &[f64], start: i64, m: usize) -> Option<EtsFit> {
        let m = m.max(1);
        let n = values.len();
        if n < 2 * m {
            return None;
        }
        // Fitted to the last periods only (see FIT_PERIODS): each form's
        // filter runs over them hundreds of times.
        let fitted_from = n.saturating_sub(FIT_PERIODS.max(FIT_SEASONS * m));
        let (values, start) = (&values[fitted_from..], start + fitted_from as i64);
        let positive = values.iter().all(|&v| v > 0.0);
        let mut best: Option<EtsFit> = None;
        for trend in [TrendKind::None, TrendKind::Additive, TrendKind::Damped] {
            for season in [SeasonKind::None, SeasonKind::Additive, SeasonKind::Multiplicative] {
                if season == SeasonKind::Multiplicative && !positive {
                    continue;
                }
                let Some(candidate) = Self::fit_form(values, start, m, trend, season) else {
                    continue;
                };
                if best.as_ref().is_none_or(|b| candidate.aicc < b.aicc) {
                    best = Some(candidate);
                }
            }
        }
        best
    }

    fn fit_form(
        values: &[f64],
        start: i64,
        m: usize,
        trend: TrendKind,
        season: SeasonKind,
    ) -> Option<EtsFit> {
        let n = values.len();
        let unit = InitialShift::unit_of(values, m);
        let n_smoothing = Smoothing::start(trend, season).len();
        // The smoothing parameters, then the initial level and slope shifts.
        let split = |theta: &[f64]| {
            let (smoothing, shifts) = theta.split_at(n_smoothing.min(theta.len()));
            (
                Smoothing::from_theta(smoothing, trend, season),
                InitialShift::from_theta(shifts, trend, unit),
            )
        };
        let run = Run { values, start, m, trend, season };
        let objective = |theta: &[f64]| {
            let (smoothing, shift) = split(theta);
            sse(&run, &smoothing, &shift)
        };
        let mut theta0 = Smoothing::start(trend, season);
        theta0.resize(n_smoothing + InitialShift::count(trend), 0.0);
        let theta = nelder_mead(objective, &theta0, 150 * theta0.len() + 50);
        let (smoothing, shift) = split(&theta);
        let (sse, state) = filter(&run, &smoothing, &shift)?;
        let n_states =
            1 + usize::from(trend.has_slope()) + if season == SeasonKind::None { 0 } else { m - 1 };
        let k = (n_smoothing + n_states + 1) as f64;
        let n_f = n as f64;
        let aicc = if n_f - k - 1.0 > 0.0 {
            n_f * (sse.max(f64::MIN_POSITIVE) / n_f).ln()
                + 2.0 * k
                + 2.0 * k * (k + 1.0) / (n_f - k - 1.0)
        } else {
            f64::INFINITY
        };
        // Level-only smoothing is always kept, so every series gets a fit.
        let simplest = season == SeasonKind::None && trend == TrendKind::None;
        if !(aicc.is_finite() || simplest) {
            return None;
        }
        Some(EtsFit {
            trend,
            season,
            alpha: smoothing.alpha,
            beta: smoothing.beta,
            gamma: smoothing.gamma,
            phi: smoothing.phi,
            level: state.level,
            slope: state.slope,
            seasonal: state.seasonal,
            m,
            aicc,
        })
    }

    /// The form in ETS notation, e.g. `A,Ad,M`.
    pub fn form(&self) -> String {
        let trend = match self.trend {
            TrendKind::None => "N",
            TrendKind::Damped => "Ad",
            TrendKind::Additive => "A",
        };
        let season = match self.season {
            SeasonKind::None => "N",
            SeasonKind::Additive => "A",
            SeasonKind::Multiplicative => "M",
        };
        format!("A,{trend},{season}")
    }

    /// Updates the state with the observation `value` at `period` (the
    /// period after the last one seen). Returns `false` if a multiplicative
    /// state left its domain; the state is then unchanged.
    pub fn update(&mut self, period: i64, value: f64) -> bool {
        let smoothing =
            Smoothing { alpha: self.alpha, beta: self.beta, gamma: self.gamma, phi: self.phi };
        let mut state =
            State { level: self.level, slope: self.slope, seasonal: self.seasonal.clone() };
        let position = season_position(period, self.m);
        if step(&mut state, &smoothing, self.season, position, value).is_none() {
            return false;
        }
        self.level = state.level;
        self.slope = state.slope;
        self.seasonal = state.seasonal;
        true
    }

    /// Point forecasts for the `steps` periods after `last_period`. The seasonal state of
    /// a period is that of the same point of the last observed season,
    /// found a season at a time on `grid` ([`Grid::wall_clock_lag`]): with
    /// a zone's wall clock, 9 a.m. after a change of clocks takes 9 a.m.'s
    /// state, not 8 or 10 a.m.'s.
    pub fn forecast(&self, grid: &Grid, last_period: i64, steps: usize) -> Vec<f64> {
        let mut damping = 0.0;
        let mut power = 1.0;
        let m = self.m.max(1);
        (1..=steps)
            .map(|h| {
                if self.trend.has_slope() {
                    power *= self.phi;
                    damping += power;
                }
                let base = self.level + damping * self.slope;
                let mut observed = last_period + h as i64;
                while observed > last_period {
                    observed -= grid.wall_clock_lag(observed, m) as i64;
                }
                let position = observed.rem_euclid(m as i64) as usize;
                let seasonal = self.seasonal.get(position).copied();
                match (self.season, seasonal) {
                    (SeasonKind::Additive, Some(s)) => base + s,
                    (SeasonKind::Multiplicative, Some(s)) => base * s,
                    _ => base,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A noisy series of level 100 (trended) with a season of 7.
    fn noisy(n: usize) -> Vec<f64> {
        (0..n)
            .map(|t| {
                let t = t as f64;
                (100.0 + 0.4 * t) * (1.0 + 0.2 * (t * std::f64::consts::TAU / 7.0).sin())
                    + 6.0 * (t * 1.37).sin()
            })
            .collect()
    }

    #[test]
    fn the_objective_is_the_filters_sum_of_squared_errors() {
        let values = noisy(250);
        let shift = InitialShift { level_shift: 0.3, slope_shift: -0.2, unit: 5.0 };
        let smoothings = [
            Smoothing { alpha: 0.3, beta: 0.03, gamma: 0.07, phi: 0.95 },
            Smoothing { alpha: 0.9, beta: 0.5, gamma: 0.09, phi: 1.0 },
            Smoothing { alpha: 0.01, beta: 0.001, gamma: 0.9, phi: 0.8 },
        ];
        let mut compared = 0;
        for trend in [TrendKind::None, TrendKind::Additive, TrendKind::Damped] {
            for season in [SeasonKind::None, SeasonKind::Additive, SeasonKind::Multiplicative] {
                for smoothing in &smoothings {
                    let mut smoothing = *smoothing;
                    if !trend.has_slope() {
                        (smoothing.beta, smoothing.phi) = (0.0, 1.0);
                    }
                    if trend == TrendKind::Additive {
                        smoothing.phi = 1.0;
                    }
                    for start in [0, 3] {
                        let run = Run { values: &values, start, m: 7, trend, season };
                        let exact = filter(&run, &smoothing, &shift).map(|(sse, _)| sse);
                        let fast = sse(&run, &smoothing, &shift);
                        match exact {
                            Some(exact) => {
                                assert!(
                                    (fast - exact).abs() <= 1e-9 * exact,
                                    "{trend:?} {season:?} {smoothing:?}: {fast} vs {exact}"
                                );
                                compared += 1;
                            }
                            None => assert_eq!(fast, f64::INFINITY),
                        }
                    }
                }
            }
        }
        assert_eq!(compared, 54);
        // A multiplicative state that leaves its domain is refused by both.
        let negative: Vec<f64> = values.iter().map(|v| v - 150.0).collect();
        let smoothing = smoothings[0];
        let run = Run {
            values: &negative,
            start: 0,
            m: 7,
            trend: TrendKind::Damped,
            season: SeasonKind::Multiplicative,
        };
        assert!(filter(&run, &smoothing, &shift).is_none());
        assert_eq!(sse(&run, &smoothing, &shift), f64::INFINITY);
    }
}
