//! Nelder-Mead minimisation told one value at a time, so that several
//! minimisations can advance side by side: ETS evaluates the points of up to
//! four forms or series in one pass over their values (`ets.rs`).

/// Nelder-Mead stops when the values at the simplex's points are within this
/// fraction of each other. For ETS's squared errors, 1e-4 moves a form's
/// AICc by at most 1e-4 per observation, far below what tells forms apart.
/// R's `optim` default (1.5e-8, which `forecast::ets` uses) spent most of its
/// evaluations there: ETS on the revenue benchmark's 1,000 series took 3.9 s
/// of CPU with it and 1.5 s with 1e-4. ETS's backtest and held-out MASE on
/// the four benchmark data sets moved by less than 0.003, but for bikeshare's
/// held-out (1.714 → 1.685). statsforecast's Theta and CES fits stop their
/// Nelder-Mead at a spread of 1e-4 as well.
const RELATIVE_TOLERANCE: f64 = 1e-4;

/// A Nelder-Mead minimisation (standard coefficients) in progress: [`ask`]
/// gives the next point to evaluate, [`tell`] takes its value (non-finite
/// values count as +∞). It makes the same moves, evaluation for evaluation,
/// as the loop that calls the objective itself.
///
/// [`ask`]: NelderMead::ask
/// [`tell`]: NelderMead::tell
#[derive(Debug, Clone)]
pub(super) struct NelderMead {
    start: Vec<f64>,
    /// The points evaluated so far and their values, best first once sorted.
    simplex: Vec<(Vec<f64>, f64)>,
    centroid: Vec<f64>,
    /// The point [`ask`](NelderMead::ask) gives.
    pending: Vec<f64>,
    phase: Phase,
    evaluations: usize,
    max_evaluations: usize,
}

/// What the pending point is.
#[derive(Debug, Clone)]
enum Phase {
    /// The simplex's `n`-th starting point (the start, then the start moved
    /// by one along each axis).
    Initial(usize),
    /// The worst point reflected through the centroid of the others.
    Reflect,
    /// The reflection taken twice as far, the reflection (and its value)
    /// being better than every point.
    Expand {
        reflected: Vec<f64>,
        value: f64,
    },
    /// Halfway from the centroid to the better of the worst point and its
    /// reflection, whose value is `toward`.
    Contract {
        toward: f64,
    },
    /// Point `vertex` moved halfway to `best`.
    Shrink {
        vertex: usize,
        best: Vec<f64>,
    },
    Done,
}

impl NelderMead {
    /// A minimisation from `start` (at least one dimension), within `max_evaluations`.
    pub(super) fn new(start: &[f64], max_evaluations: usize) -> NelderMead {
        NelderMead {
            start: start.to_vec(),
            simplex: Vec::with_capacity(start.len() + 1),
            centroid: vec![0.0; start.len()],
            pending: start.to_vec(),
            phase: Phase::Initial(0),
            evaluations: 0,
            max_evaluations,
        }
    }

    /// The point whose value [`tell`](NelderMead::tell) takes next; `None`
    /// once the minimisation is over.
    pub(super) fn ask(&self) -> Option<&[f64]> {
        (!matches!(self.phase, Phase::Done)).then_some(self.pending.as_slice())
    }

    /// The value at the point [`ask`](NelderMead::ask) gave.
    pub(super) fn tell(&mut self, value: f64) {
        let value = if value.is_finite() { value } else { f64::INFINITY };
        let dims = self.start.len();
        let point = std::mem::take(&mut self.pending);
        match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Initial(vertex) => {
                self.simplex.push((point, value));
                if vertex < dims {
                    self.pending = self.start.clone();
                    self.pending[vertex] += 1.0;
                    self.phase = Phase::Initial(vertex + 1);
                } else {
                    self.evaluations = dims + 1;
                    self.next_iteration();
                }
            }
            Phase::Reflect => {
                self.evaluations += 1;
                if value < self.simplex[0].1 {
                    self.pending = self.toward_worst(-2.0);
                    self.phase = Phase::Expand { reflected: point, value };
                } else if value < self.simplex[dims - 1].1 {
                    self.simplex[dims] = (point, value);
                    self.next_iteration();
                } else {
                    let worst = &self.simplex[dims];
                    let (toward, toward_value) =
                        if value < worst.1 { (point, value) } else { (worst.0.clone(), worst.1) };
                    self.pending = combine(&self.centroid, &toward, 0.5);
                    self.phase = Phase::Contract { toward: toward_value };
                }
            }
            Phase::Expand { reflected, value: reflected_value } => {
                self.evaluations += 1;
                self.simplex[dims] = if value < reflected_value {
                    (point, value)
                } else {
                    (reflected, reflected_value)
                };
                self.next_iteration();
            }
            Phase::Contract { toward } => {
                self.evaluations += 1;
                if value < toward {
                    self.simplex[dims] = (point, value);
                    self.next_iteration();
                } else {
                    let best = self.simplex[0].0.clone();
                    self.pending = combine(&best, &self.simplex[1].0, 0.5);
                    self.phase = Phase::Shrink { vertex: 1, best };
                }
            }
            Phase::Shrink { vertex, best } => {
                self.simplex[vertex] = (point, value);
                if vertex < dims {
                    self.pending = combine(&best, &self.simplex[vertex + 1].0, 0.5);
                    self.phase = Phase::Shrink { vertex: vertex + 1, best };
                } else {
                    self.evaluations += dims;
                    self.next_iteration();
                }
            }
            Phase::Done => {}
        }
    }

    /// The best point found.
    pub(super) fn best(&self) -> &[f64] {
        self.simplex.first().map_or(self.start.as_slice(), |(point, _)| point)
    }

    /// Sorts the simplex and stops, or asks for the worst point's reflection.
    fn next_iteration(&mut self) {
        self.simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
        let dims = self.start.len();
        let (best, worst) = (self.simplex[0].1, self.simplex[dims].1);
        let converged = worst.is_finite()
            && (worst - best).abs() <= RELATIVE_TOLERANCE * (best.abs() + RELATIVE_TOLERANCE);
        if self.evaluations >= self.max_evaluations || converged {
            self.phase = Phase::Done;
            return;
        }
        self.centroid.fill(0.0);
        for (point, _) in &self.simplex[..dims] {
            for (c, x) in self.centroid.iter_mut().zip(point) {
                *c += x / dims as f64;
            }
        }
        self.pending = self.toward_worst(-1.0);
        self.phase = Phase::Reflect;
    }

    /// The centroid moved `t` times the way to the worst point.
    fn toward_worst(&self, t: f64) -> Vec<f64> {
        combine(&self.centroid, &self.simplex[self.start.len()].0, t)
    }
}

/// `a + t (b - a)`.
fn combine(a: &[f64], b: &[f64], t: f64) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x + t * (y - x)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `nelder` to the end on `objective`; returns the best point and the evaluations.
    fn minimise(objective: impl Fn(&[f64]) -> f64, start: &[f64], max: usize) -> (Vec<f64>, usize) {
        let mut nelder = NelderMead::new(start, max);
        let mut evaluations = 0;
        while let Some(point) = nelder.ask() {
            let value = objective(point);
            nelder.tell(value);
            evaluations += 1;
        }
        (nelder.best().to_vec(), evaluations)
    }

    #[test]
    fn finds_the_minimum_of_a_valley_and_stops_within_its_budget() {
        // Rosenbrock's valley, minimum 0 at (1, 1).
        let rosenbrock = |x: &[f64]| (1.0 - x[0]).powi(2) + 100.0 * (x[1] - x[0] * x[0]).powi(2);
        let (best, evaluations) = minimise(rosenbrock, &[-1.2, 1.0], 2_000);
        assert!((best[0] - 1.0).abs() < 0.05 && (best[1] - 1.0).abs() < 0.1, "{best:?}");
        assert!(evaluations < 2_000, "{evaluations}");
        // A budget too small to converge stops it, a shrink's few extra points at most.
        let (_, evaluations) = minimise(rosenbrock, &[-1.2, 1.0], 20);
        assert!((20..=22).contains(&evaluations), "{evaluations}");
    }

    #[test]
    fn non_finite_values_count_as_worse_than_any() {
        // Outside the unit disc the objective is NaN; the minimum (0.5, 0) lies inside.
        let bowl = |x: &[f64]| {
            if x[0] * x[0] + x[1] * x[1] > 1.0 {
                f64::NAN
            } else {
                (x[0] - 0.5).powi(2) + x[1] * x[1]
            }
        };
        let (best, _) = minimise(bowl, &[0.0, 0.0], 500);
        assert!((best[0] - 0.5).abs() < 0.02 && best[1].abs() < 0.02, "{best:?}");
    }
}
