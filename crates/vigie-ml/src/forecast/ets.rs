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
use super::simplex::NelderMead;

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

/// [`sse_lanes`] of one run.
#[cfg(test)]
fn sse(run: &Run<'_>, smoothing: &Smoothing, shift: &InitialShift) -> f64 {
    let [total] = sse_lanes([(run, *smoothing, *shift)]);
    total
}

/// [`filter`]'s sum of squared one-step errors of `K` runs (each with its
/// smoothing and shifts; all of one season kind and length of season), for
/// Nelder-Mead's hundreds of evaluations per form (`f64::INFINITY` where
/// [`filter`] gives `None`). Results agree with [`filter`]'s to rounding.
///
/// Two ways of keeping the processor busy. First, the recursion is
/// rearranged so that fewer operations wait on the step before. Writing `b`
/// for the level plus the damped slope (the one-step forecast before the
/// season) and `y'` for the value without its season (`y - s`, or `y / s`
/// for a multiplicative one), [`step`]'s updates become
/// `b' = (1 - α - φβ) b + (α + φβ) y' + φ² slope` and `slope' = φ slope + β e`:
/// the chain from one `b` to the next is a multiplication and an addition,
/// where [`step`]'s is six operations (fitting ETS to 1,000 daily series
/// took 5 s of CPU, most of it waiting on that chain). Second, the lanes'
/// steps are interleaved: while one lane's step waits on its step before,
/// the processor works on the others'. Each lane's arithmetic is its own,
/// so its total is the same, bit for bit, whatever runs beside it. On a
/// daily series of 250 values a step took 5.2 ns alone, 2.5 ns in two
/// lanes and 1.7 ns in four.
fn sse_lanes<const K: usize>(lanes: [(&Run<'_>, Smoothing, InitialShift); K]) -> [f64; K] {
    let Some(&(first, ..)) = lanes.first() else { return [f64::INFINITY; K] };
    let (season, m) = (first.season, first.m.max(1));
    debug_assert!(lanes.iter().all(|(run, ..)| run.season == season && run.m.max(1) == m));
    // Each lane's state in arrays of locals, which the compiler keeps in
    // registers once the loop over lanes is unrolled; the lanes' seasons in
    // one buffer, each turned so that its first value is its first step's:
    // all lanes then share one position in the season.
    let trend: [TrendStep; K] = lanes.map(|(_, smoothing, _)| TrendStep::of(&smoothing));
    let gamma: [f64; K] = lanes.map(|(_, smoothing, _)| smoothing.gamma);
    let mut in_domain = [true; K];
    let mut slope = [0.0; K];
    let mut b = [0.0; K];
    let seasonal_len = if season == SeasonKind::None { 0 } else { m };
    let mut seasonal = vec![0.0; K * seasonal_len];
    for (k, (run, smoothing, shift)) in lanes.iter().enumerate() {
        let state = initial_state(run, shift);
        slope[k] = state.slope;
        b[k] = state.level + smoothing.phi * state.slope;
        if seasonal_len == 0 {
            continue;
        }
        if state.seasonal.len() < m {
            // Out of the domain; a season of zeros still gives every step a place.
            in_domain[k] = false;
            continue;
        }
        let first = season_position(run.start, m);
        let turned = state.seasonal[first..].iter().chain(&state.seasonal[..first]);
        for (slot, &value) in seasonal[k * m..(k + 1) * m].iter_mut().zip(turned) {
            *slot = value;
        }
    }
    let mut total = [0.0; K];
    let together = lanes.iter().map(|(run, ..)| run.values.len()).min().unwrap_or(0);
    let head: [&[f64]; K] = lanes.map(|(run, ..)| &run.values[..together]);
    // The lanes' first `together` values interleaved, then each lane's rest alone.
    macro_rules! run_lanes {
        (|$k:ident, $y:ident, $position:ident| $step:block) => {{
            let mut $position = 0;
            for i in 0..together {
                for $k in 0..K {
                    let $y = head[$k][i];
                    $step
                }
                $position = next_position($position, m);
            }
            let after = $position;
            for ($k, (run, ..)) in lanes.iter().enumerate() {
                $position = after;
                for &$y in &run.values[together..] {
                    $step
                    $position = next_position($position, m);
                }
            }
        }};
    }
    match season {
        SeasonKind::None => run_lanes!(|k, y, _position| {
            let error = y - b[k];
            total[k] += error * error;
            trend[k].advance(&mut b[k], &mut slope[k], y, error);
        }),
        SeasonKind::Additive => run_lanes!(|k, y, position| {
            let s = &mut seasonal[k * m + position];
            let adjusted = y - *s;
            let error = adjusted - b[k];
            total[k] += error * error;
            *s += gamma[k] * error;
            trend[k].advance(&mut b[k], &mut slope[k], adjusted, error);
        }),
        SeasonKind::Multiplicative => run_lanes!(|k, y, position| {
            let s = &mut seasonal[k * m + position];
            in_domain[k] &= b[k] > 0.0 && *s > 0.0;
            let adjusted = y / *s;
            // The error over the season, which the level and slope take.
            let relative = adjusted - b[k];
            let error = relative * *s;
            total[k] += error * error;
            *s += gamma[k] * error / b[k];
            trend[k].advance(&mut b[k], &mut slope[k], adjusted, relative);
        }),
    }
    std::array::from_fn(
        |k| {
            if in_domain[k] && total[k].is_finite() { total[k] } else { f64::INFINITY }
        },
    )
}

/// [`sse_lanes`]'s update of `b` (level plus damped slope) and the slope, the same
/// for every season form: `b' = keep b + gain y' + φ² slope` and
/// `slope' = φ slope + β e`, where `y'` is the value without its season and
/// `e` the error the slope takes.
#[derive(Debug, Clone, Copy)]
struct TrendStep {
    keep: f64,
    gain: f64,
    phi: f64,
    phi_squared: f64,
    beta: f64,
}

impl TrendStep {
    fn of(smoothing: &Smoothing) -> TrendStep {
        let Smoothing { alpha, beta, phi, .. } = *smoothing;
        let gain = alpha + phi * beta;
        TrendStep { keep: 1.0 - gain, gain, phi, phi_squared: phi * phi, beta }
    }

    #[inline(always)]
    fn advance(&self, b: &mut f64, slope: &mut f64, adjusted: f64, slope_error: f64) {
        let next_slope = self.phi * *slope + self.beta * slope_error;
        *b = self.keep * *b + (self.gain * adjusted + self.phi_squared * *slope);
        *slope = next_slope;
    }
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

/// One form's fit to one run: the minimisation of its squared one-step
/// errors over `theta`, the smoothing values (unconstrained, see
/// [`Smoothing::from_theta`]) and then the initial level's and slope's shifts.
struct FormProblem<'a> {
    run: Run<'a>,
    unit: f64,
    n_smoothing: usize,
}

impl<'a> FormProblem<'a> {
    fn new(run: Run<'a>) -> FormProblem<'a> {
        FormProblem {
            unit: InitialShift::unit_of(run.values, run.m),
            n_smoothing: Smoothing::start(run.trend, run.season).len(),
            run,
        }
    }

    /// `theta`'s smoothing values and initial shifts.
    fn split(&self, theta: &[f64]) -> (Smoothing, InitialShift) {
        let Run { trend, season, .. } = self.run;
        let (smoothing, shifts) = theta.split_at(self.n_smoothing.min(theta.len()));
        (
            Smoothing::from_theta(smoothing, trend, season),
            InitialShift::from_theta(shifts, trend, self.unit),
        )
    }

    /// The minimisation, from the usual smoothing values and no shift.
    fn minimiser(&self) -> NelderMead {
        let mut theta = Smoothing::start(self.run.trend, self.run.season);
        theta.resize(self.n_smoothing + InitialShift::count(self.run.trend), 0.0);
        NelderMead::new(&theta, 150 * theta.len() + 50)
    }

    /// The form fitted with `theta` (the minimum) and its AICc; `None` when
    /// its filter leaves the domain or, but for level-only smoothing (kept
    /// so that every series gets a fit), the AICc is not finite.
    fn fitted(&self, theta: &[f64]) -> Option<EtsFit> {
        let Run { values, m, trend, season, .. } = self.run;
        let (smoothing, shift) = self.split(theta);
        let (sse, state) = filter(&self.run, &smoothing, &shift)?;
        let n_states =
            1 + usize::from(trend.has_slope()) + if season == SeasonKind::None { 0 } else { m - 1 };
        let k = (self.n_smoothing + n_states + 1) as f64;
        let n = values.len() as f64;
        let aicc = if n - k - 1.0 > 0.0 {
            n * (sse.max(f64::MIN_POSITIVE) / n).ln()
                + 2.0 * k
                + 2.0 * k * (k + 1.0) / (n - k - 1.0)
        } else {
            f64::INFINITY
        };
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
}

/// How many minimisations [`minimise_together`] advances at once.
const LANES: usize = 4;

/// The minimum `theta` of each of `problems` (all of one season kind and
/// length of season), their minimisations advanced [`LANES`] at a time: each
/// round evaluates every lane's next point in one [`sse_lanes`] pass, and a
/// lane whose minimisation is over takes the next problem.
fn minimise_together<'p, 'a: 'p>(
    problems: impl Iterator<Item = &'p FormProblem<'a>>,
) -> Vec<Vec<f64>> {
    let problems: Vec<&FormProblem<'a>> = problems.collect();
    let mut minima = vec![Vec::new(); problems.len()];
    let mut queue = problems.iter().enumerate();
    let mut lanes: Vec<(usize, NelderMead)> = Vec::with_capacity(LANES);
    loop {
        lanes.retain(|(i, nelder)| {
            let going = nelder.ask().is_some();
            if !going {
                minima[*i] = nelder.best().to_vec();
            }
            going
        });
        while lanes.len() < LANES {
            let Some((i, problem)) = queue.next() else { break };
            lanes.push((i, problem.minimiser()));
        }
        let input = |k: usize| {
            let (i, nelder) = &lanes[k];
            let problem = problems[*i];
            let (smoothing, shift) = problem.split(nelder.ask().unwrap_or_default());
            (&problem.run, smoothing, shift)
        };
        let mut values = [f64::INFINITY; LANES];
        match lanes.len() {
            0 => break,
            1 => values[..1].copy_from_slice(&sse_lanes::<1>(std::array::from_fn(input))),
            2 => values[..2].copy_from_slice(&sse_lanes::<2>(std::array::from_fn(input))),
            3 => values[..3].copy_from_slice(&sse_lanes::<3>(std::array::from_fn(input))),
            _ => values = sse_lanes::<LANES>(std::array::from_fn(input)),
        }
        for ((_, nelder), value) in lanes.iter_mut().zip(values) {
            nelder.tell(value);
        }
    }
    minima
}

impl EtsFit {
    /// Fits every applicable form to `values` (starting at period `start`,
    /// at least two seasons of `m`) and keeps the one with the lowest AICc.
    /// Returns `None` only if no form can be fitted (non-finite data).
    pub fn fit(values: &[f64], start: i64, m: usize) -> Option<EtsFit> {
        Self::fit_many(&[(values, start)], m).pop().flatten()
    }

    /// [`EtsFit::fit`] of each series `(values, start)`, all with a season
    /// of `m`, their forms' minimisations run [`LANES`] at a time
    /// ([`sse_lanes`]); each fit is the one [`EtsFit::fit`] makes alone.
    pub fn fit_many(series: &[(&[f64], i64)], m: usize) -> Vec<Option<EtsFit>> {
        let m = m.max(1);
        // Fitted to the last periods only (see FIT_PERIODS): each form's
        // filter runs over them hundreds of times.
        let runs: Vec<Option<(&[f64], i64)>> = series
            .iter()
            .map(|&(values, start)| {
                let n = values.len();
                let fitted_from = n.saturating_sub(FIT_PERIODS.max(FIT_SEASONS * m));
                (n >= 2 * m).then(|| (&values[fitted_from..], start + fitted_from as i64))
            })
            .collect();
        const TRENDS: [TrendKind; 3] = [TrendKind::None, TrendKind::Additive, TrendKind::Damped];
        const SEASONS: [SeasonKind; 3] =
            [SeasonKind::None, SeasonKind::Additive, SeasonKind::Multiplicative];
        // Per series, the fit of each form (trend-major), `None` where it failed or does not apply.
        let mut forms: Vec<Vec<Option<EtsFit>>> = vec![vec![None; 9]; series.len()];
        // One season kind at a time: the lanes of a pass share it.
        for (s, season) in SEASONS.into_iter().enumerate() {
            let problems: Vec<(usize, usize, FormProblem<'_>)> = runs
                .iter()
                .enumerate()
                .filter_map(|(i, run)| run.map(|run| (i, run)))
                .filter(|(_, (values, _))| {
                    season != SeasonKind::Multiplicative || values.iter().all(|&v| v > 0.0)
                })
                .flat_map(|(i, (values, start))| {
                    TRENDS.into_iter().enumerate().map(move |(t, trend)| {
                        (i, 3 * t + s, FormProblem::new(Run { values, start, m, trend, season }))
                    })
                })
                .collect();
            let minima = minimise_together(problems.iter().map(|(.., problem)| problem));
            for ((i, form, problem), theta) in problems.iter().zip(minima) {
                forms[*i][*form] = problem.fitted(&theta);
            }
        }
        // The lowest AICc, ties to the form met first, as [`EtsFit::fit`] compares them.
        forms
            .into_iter()
            .map(|fits| {
                fits.into_iter().flatten().fold(None, |best: Option<EtsFit>, candidate| {
                    if best.as_ref().is_none_or(|b| candidate.aicc < b.aicc) {
                        Some(candidate)
                    } else {
                        best
                    }
                })
            })
            .collect()
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
    fn series_fitted_together_get_the_fits_each_gets_alone() {
        // Lengths that differ (and a history past FIT_PERIODS, cut to it),
        // starts at different points of the season, a series that is not
        // positive (no multiplicative forms), one too short to fit.
        let long = noisy(300);
        let trended = noisy(120);
        let flat: Vec<f64> = noisy(60).iter().map(|v| v - 130.0).collect();
        let short = noisy(13);
        let series: Vec<(&[f64], i64)> = vec![
            (&long, 0),
            (&trended, 3),
            (&flat, 5),
            (&short, 0),
            (&long[40..], 2),
            (&trended, 6),
        ];
        let together = EtsFit::fit_many(&series, 7);
        let alone: Vec<Option<EtsFit>> =
            series.iter().map(|&(values, start)| EtsFit::fit(values, start, 7)).collect();
        assert_eq!(together, alone);
        assert!(together[3].is_none());
        assert!(together.iter().enumerate().all(|(i, fit)| i == 3 || fit.is_some()));
        assert_ne!(together[2].as_ref().map(|fit| fit.season), Some(SeasonKind::Multiplicative));
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
