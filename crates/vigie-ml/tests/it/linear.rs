//! Tests of the linear models and the MLP: coefficients against
//! scikit-learn and closed forms, what they learn on synthetic data, exact
//! contributions, determinism, and errors on bad parameters and bad data.

use vigie_ml::MlError;
use vigie_ml::estimator::Estimator;
use vigie_ml::linear::{
    self, CLOSED_FORM_MAX_FEATURES, LinearAlgorithm, LinearModel, LinearParams, LogisticParams,
    SvmParams,
};
use vigie_ml::matrix::{Link, Matrix, Task};
use vigie_ml::mlp::{self, Mlp, MlpParams};
use vigie_ml::rng::Rng;
use vigie_ml::tree::ShapScratch;

use crate::support::Table;

impl Table {
    fn from_rows(values: &[f64], n_cols: usize, y: &[f64], task: Task) -> Self {
        let x =
            Matrix { n_rows: y.len(), n_cols, values: values.iter().map(|&v| v as f32).collect() };
        Table::new(x, y.iter().map(|&v| v as f32).collect(), task)
    }

    fn with_weights(mut self, weights: &[f64]) -> Self {
        self.weights = Some(weights.iter().map(|&w| w as f32).collect());
        self
    }
}

/// Asserts `actual` is within `tol` of `expected` everywhere, printing both in full.
fn assert_close(actual: &[f64], expected: &[f64], tol: f64, what: &str) {
    let close = actual.len() == expected.len()
        && actual.iter().zip(expected).all(|(a, e)| (a - e).abs() <= tol);
    assert!(
        close,
        "{what}: differ by more than {tol}\n  actual:   {actual:?}\n  expected: {expected:?}"
    );
}

fn raw(model: &LinearModel, row: &[f32]) -> Vec<f64> {
    let mut out = vec![0.0; model.n_outputs()];
    model.predict_raw_into(row, &mut out);
    out
}

/// Gaussian features, and `y = x·beta + intercept` passed through `target`.
fn linear_table(
    n_rows: usize,
    beta: &[f64],
    intercept: f64,
    seed: u64,
    task: Task,
    target: impl Fn(f64, &mut Rng) -> f32,
) -> Table {
    let mut rng = Rng::new(seed);
    let mut x = Matrix::zeros(n_rows, beta.len());
    let mut y = Vec::with_capacity(n_rows);
    for row in 0..n_rows {
        let values = x.row_mut(row);
        let mut z = intercept;
        for (value, b) in values.iter_mut().zip(beta) {
            *value = rng.normal() as f32;
            z += b * f64::from(*value);
        }
        y.push(target(z, &mut rng));
    }
    Table::new(x, y, task)
}

fn bernoulli(z: f64, rng: &mut Rng) -> f32 {
    if rng.next_f64() < 1.0 / (1.0 + (-z).exp()) { 1.0 } else { 0.0 }
}

// A small fixed data set and scikit-learn 1.9.1's fits on it (numpy
// 2.x; rows drawn with `default_rng(20240601)`, values multiples of 1/64 so
// that f32 holds them exactly). Settings are given at each use.
const SK_X: [f64; 120] = [
    0.640625, 0.46875, -0.640625, -1.171875, -0.140625, 1.203125, 1.328125, 0.90625, 0.34375,
    1.59375, 1.234375, -0.21875, -1.0625, -0.359375, -0.421875, 0.6875, -1.90625, -0.1875,
    1.671875, -0.921875, -0.765625, -0.078125, -1.421875, -0.125, -0.015625, -0.0, -0.984375,
    -0.359375, 0.65625, -0.71875, 0.546875, 0.65625, -1.421875, -0.640625, 0.65625, 0.5, 0.171875,
    -0.34375, 0.109375, 1.875, -0.21875, 0.578125, -0.421875, -0.203125, 0.640625, -0.921875,
    -0.25, -0.609375, -0.859375, 0.171875, 1.234375, 0.21875, -0.375, -1.453125, 0.8125, 0.203125,
    -0.625, 0.859375, 1.578125, -1.625, 0.59375, 0.84375, 0.578125, 1.609375, 0.625, -0.90625,
    3.796875, 0.140625, 1.484375, 1.96875, 0.875, -1.796875, -1.703125, -0.671875, 0.03125,
    -1.390625, -0.9375, -0.4375, -0.46875, 0.1875, 0.078125, -0.03125, -0.625, -0.828125, -1.90625,
    1.265625, 0.203125, 0.375, -1.71875, 0.75, -0.09375, 0.96875, -0.6875, 1.0, 1.4375, -0.171875,
    -0.296875, -0.40625, 0.140625, 2.734375, -0.046875, 0.65625, -1.484375, -2.328125, 0.15625,
    -0.09375, 1.21875, -2.328125, 0.421875, -1.75, 1.765625, 0.765625, -0.984375, 0.734375,
    0.890625, 0.125, 1.546875, 0.96875, -0.078125, -0.4375,
];
const SK_Y: [f64; 40] = [
    0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0,
    0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0,
    1.0, 1.0,
];
const SK_W: [f64; 40] = [
    2.0, 1.0, 2.0, 1.0, 1.0, 2.0, 1.0, 2.0, 1.0, 1.0, 1.0, 1.0, 2.0, 1.0, 1.0, 1.0, 2.0, 1.0, 1.0,
    2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 1.0, 1.0, 2.0,
    1.0, 1.0,
];
const SK_CLASSES: [f64; 40] = [
    0.0, 2.0, 0.0, 0.0, 2.0, 2.0, 0.0, 2.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 2.0, 1.0, 1.0, 0.0,
    0.0, 1.0, 0.0, 0.0, 0.0, 2.0, 2.0, 0.0, 2.0, 1.0, 2.0, 1.0, 0.0, 0.0, 0.0, 2.0, 1.0, 2.0, 2.0,
    2.0, 0.0,
];
const SK_TARGET: [f64; 40] = [
    2.71875, -3.421875, 2.703125, 3.84375, -1.484375, 2.0625, 4.46875, 0.890625, 1.40625, 0.6875,
    2.984375, -1.171875, 0.671875, 3.640625, -0.78125, -0.78125, -2.59375, 2.5625, 2.8125,
    3.828125, 0.75, 4.8125, 6.453125, 6.015625, -2.84375, -1.640625, -0.40625, 1.25, -3.3125,
    0.515625, 1.1875, 2.734375, -0.125, 5.53125, -2.453125, 2.546875, -0.4375, 0.9375, 0.859375,
    2.6875,
];
const SK_MARGINS: [f64; 40] = [
    0.1875, -0.828125, 0.765625, 0.6875, -0.890625, 1.984375, 2.15625, 0.890625, -0.21875,
    -0.96875, -0.203125, -1.0, 0.4375, 2.140625, -0.15625, -0.875, -0.734375, 0.1875, 0.546875,
    -0.5625, 0.125, 0.984375, 4.0, 1.0, -1.21875, -0.828125, -0.578125, 0.234375, -2.75, 1.734375,
    -0.90625, -0.046875, 0.015625, 2.90625, 0.171875, -1.40625, 2.0, 1.59375, 1.109375, 0.9375,
];

fn tight(l2: f64, l1: f64) -> LogisticParams {
    LogisticParams { l2, l1, max_iter: 10_000, tol: 1e-10 }
}

#[test]
fn logistic_matches_sklearn_binary_l2_with_weights() {
    // LogisticRegression(C=0.5, tol=1e-12, max_iter=100000) (lbfgs),
    // fit with sample_weight=SK_W: l2 = 1 / (C Σw) = 1 / (0.5 * 51).
    let table = Table::from_rows(&SK_X, 3, &SK_Y, Task::Binary).with_weights(&SK_W);
    let model =
        linear::fit_logistic(&tight(1.0 / (0.5 * 51.0), 0.0), &table.train_set(), 0).unwrap();
    assert_eq!(model.link, Link::Logistic);
    assert_close(
        &model.coefficients,
        &[1.135816355296345, -1.0426297012610501, 0.6838950611414679],
        1e-6,
        "coef",
    );
    assert_close(&model.intercepts, &[0.647195363829715], 1e-6, "intercept");
}

#[test]
fn logistic_matches_sklearn_binary_l1() {
    // LogisticRegression(C=0.5, l1_ratio=1.0, solver="saga", tol=1e-14,
    // max_iter=10**7), no weights: l1 = 1 / (C n) = 1 / 20.
    let table = Table::from_rows(&SK_X, 3, &SK_Y, Task::Binary);
    let model = linear::fit_logistic(&tight(0.0, 0.05), &table.train_set(), 0).unwrap();
    assert_close(
        &model.coefficients,
        &[1.1069116805211452, -0.817440170931174, 0.3321401697543575],
        1e-5,
        "coef",
    );
    assert_close(&model.intercepts, &[0.4331509206542755], 1e-5, "intercept");
}

#[test]
fn logistic_matches_sklearn_multinomial() {
    // LogisticRegression(C=2.0, tol=1e-12, max_iter=100000) (lbfgs,
    // multinomial), no weights: l2 = 1 / (C n) = 1 / 80. Intercepts centred.
    let table = Table::from_rows(&SK_X, 3, &SK_CLASSES, Task::Multiclass { n_classes: 3 });
    let model = linear::fit_logistic(&tight(0.0125, 0.0), &table.train_set(), 0).unwrap();
    assert_eq!((model.link, model.n_outputs()), (Link::Softmax, 3));
    let expected = [
        1.3319126973592106,
        0.6120261353078748,
        -0.48348794776412163,
        -0.6294119252824703,
        1.1735568573167068,
        -0.03878162236813316,
        -0.7025007720767401,
        -1.785582992624581,
        0.5222695701322538,
    ];
    assert_close(&model.coefficients, &expected, 1e-6, "coef");
    assert_close(
        &model.intercepts,
        &[0.005491777568138366, 0.20196791650375065, -0.207459694071889],
        1e-6,
        "intercept",
    );
}

#[test]
fn platt_calibration_matches_sklearn() {
    // sklearn.calibration._sigmoid_calibration(SK_MARGINS, SK_Y,
    // sample_weight=SK_W) returns A, B of 1 / (1 + exp(A f + B)): a = -A, b = -B.
    let targets: Vec<f32> = SK_Y.iter().map(|&y| y as f32).collect();
    let weights: Vec<f32> = SK_W.iter().map(|&w| w as f32).collect();
    let Link::Platt { a, b } =
        linear::platt_calibration(&SK_MARGINS, &targets, Some(&weights)).unwrap()
    else {
        panic!("not a Platt link");
    };
    assert_close(&[a, b], &[1.7517875417363307, 0.5728947614029828], 1e-6, "platt");
}

#[test]
fn ridge_matches_sklearn_with_weights() {
    // Ridge(alpha=3.0, solver="cholesky") fit with sample_weight=SK_W:
    // l2 = alpha / Σw = 3 / 51.
    let table = Table::from_rows(&SK_X, 3, &SK_TARGET, Task::Regression).with_weights(&SK_W);
    let model =
        linear::fit_linear(&LinearParams { l2: 3.0 / 51.0 }, &table.train_set(), 0).unwrap();
    assert_eq!(model.link, Link::Identity);
    assert_close(
        &model.coefficients,
        &[1.8800737869262547, 0.019579584935251745, -0.9582560638775209],
        1e-9,
        "coef",
    );
    assert_close(&model.intercepts, &[0.5511285864134681], 1e-9, "intercept");
}

/// Solves `a x = b` by Gauss-Jordan elimination with partial pivoting.
fn solve_dense(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
    let n = b.len();
    for col in 0..n {
        let pivot =
            (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs())).unwrap_or(col);
        a.swap(col, pivot);
        b.swap(col, pivot);
        let (pivot_row, pivot_b) = (a[col].clone(), b[col]);
        for (row, (a_row, b_row)) in a.iter_mut().zip(b.iter_mut()).enumerate() {
            if row != col {
                let factor = a_row[col] / pivot_row[col];
                for (value, pivot_value) in a_row.iter_mut().zip(&pivot_row).skip(col) {
                    *value -= factor * pivot_value;
                }
                *b_row -= factor * pivot_b;
            }
        }
    }
    (0..n).map(|i| b[i] / a[i][i]).collect()
}

#[test]
fn ridge_matches_the_closed_form() {
    // Unpenalized intercept: augment x with a column of ones and solve
    // (Aᵀ A / n + l2 diag(1, …, 1, 0)) θ = Aᵀ y / n.
    let beta = [1.0, -2.0, 0.0, 0.5];
    let table = linear_table(300, &beta, 3.0, 11, Task::Regression, |z, rng| {
        (z + 0.5 * rng.normal()) as f32
    });
    let l2 = 0.3;
    let (n, d) = (table.x.n_rows, table.x.n_cols);
    let mut normal = vec![vec![0.0; d + 1]; d + 1];
    let mut rhs = vec![0.0; d + 1];
    for row in 0..n {
        let augmented: Vec<f64> =
            table.x.row(row).iter().map(|&v| f64::from(v)).chain([1.0]).collect();
        for i in 0..=d {
            rhs[i] += augmented[i] * f64::from(table.y[row]) / n as f64;
            for j in 0..=d {
                normal[i][j] += augmented[i] * augmented[j] / n as f64;
            }
        }
    }
    for (i, row) in normal.iter_mut().enumerate().take(d) {
        row[i] += l2;
    }
    let expected = solve_dense(normal, rhs);
    let model = linear::fit_linear(&LinearParams { l2 }, &table.train_set(), 0).unwrap();
    let actual: Vec<f64> = model.coefficients.iter().chain(&model.intercepts).copied().collect();
    assert_close(&actual, &expected, 1e-9, "ridge");
}

#[test]
fn ridge_with_many_features_is_solved_by_lbfgs() {
    // Above the closed-form limit, a noiseless target is recovered exactly.
    let n_features = CLOSED_FORM_MAX_FEATURES + 52;
    let mut rng = Rng::new(5);
    let beta: Vec<f64> = (0..n_features).map(|_| rng.normal()).collect();
    let table = linear_table(3 * n_features, &beta, -2.0, 6, Task::Regression, |z, _| z as f32);
    let model = linear::fit_linear(&LinearParams { l2: 0.0 }, &table.train_set(), 0).unwrap();
    assert_close(&model.coefficients, &beta, 1e-3, "coef");
    assert_close(&model.intercepts, &[-2.0], 1e-3, "intercept");
}

#[test]
fn ridge_solves_collinear_features_without_penalty() {
    // x1 = x0: the normal equations are singular, the jitter splits the weight.
    let mut table = linear_table(200, &[1.0, 0.0], 0.0, 3, Task::Regression, |z, _| z as f32);
    for row in 0..table.x.n_rows {
        let values = table.x.row_mut(row);
        values[1] = values[0];
    }
    let model = linear::fit_linear(&LinearParams { l2: 0.0 }, &table.train_set(), 0).unwrap();
    assert_close(&model.coefficients, &[0.5, 0.5], 1e-4, "coef");
}

#[test]
fn logistic_recovers_known_coefficients() {
    let beta = [1.0, -2.0, 0.5, 0.0, 3.0];
    let table = linear_table(50_000, &beta, -0.5, 1, Task::Binary, bernoulli);
    let model = linear::fit_logistic(&tight(0.0, 0.0), &table.train_set(), 0).unwrap();
    // Standard errors are about 0.01 to 0.03 at this size.
    assert_close(&model.coefficients, &beta, 0.1, "coef");
    assert_close(&model.intercepts, &[-0.5], 0.1, "intercept");
}

#[test]
fn multinomial_recovers_class_structure() {
    // Softmax scores x·w_k with centred true weights; the fit should find them.
    let weights = [[2.0, 0.0], [-1.0, 1.5], [-1.0, -1.5]];
    let mut rng = Rng::new(9);
    let n_rows = 30_000;
    let mut x = Matrix::zeros(n_rows, 2);
    let mut y = Vec::new();
    for row in 0..n_rows {
        let values = x.row_mut(row);
        values[0] = rng.normal() as f32;
        values[1] = rng.normal() as f32;
        let mut scores: Vec<f64> = weights
            .iter()
            .map(|w| w[0] * f64::from(values[0]) + w[1] * f64::from(values[1]))
            .collect();
        Link::Softmax.apply(&mut scores);
        let draw = rng.next_f64();
        let class = if draw < scores[0] {
            0
        } else if draw < scores[0] + scores[1] {
            1
        } else {
            2
        };
        y.push(class as f32);
    }
    let table = Table::new(x, y, Task::Multiclass { n_classes: 3 });
    let model = linear::fit_logistic(&tight(0.0, 0.0), &table.train_set(), 0).unwrap();
    let expected: Vec<f64> = weights.iter().flatten().copied().collect();
    assert_close(&model.coefficients, &expected, 0.1, "coef");
    assert_close(&model.intercepts, &[0.0, 0.0, 0.0], 0.1, "intercept");
}

#[test]
fn l1_zeroes_irrelevant_features() {
    let beta = [1.5, -1.0, 0.8, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
    let table = linear_table(5_000, &beta, 0.2, 2, Task::Binary, bernoulli);
    let params = LogisticParams { l1: 0.02, ..LogisticParams::default() };
    let model = linear::fit_logistic(&params, &table.train_set(), 0).unwrap();
    for (idx, (&w, &b)) in model.coefficients.iter().zip(&beta).enumerate() {
        if b == 0.0 {
            assert_eq!(
                w, 0.0,
                "irrelevant feature {idx} kept weight {w}: {:?}",
                model.coefficients
            );
        } else {
            assert!(w.signum() == b.signum() && w.abs() > 0.3, "feature {idx}: {w}");
        }
    }
    // Elastic net: both penalties together still zero the noise.
    let params = LogisticParams { l1: 0.02, l2: 0.05, ..LogisticParams::default() };
    let model = linear::fit_logistic(&params, &table.train_set(), 0).unwrap();
    assert!(model.coefficients[3..].iter().all(|&w| w == 0.0), "{:?}", model.coefficients);
}

#[test]
fn svm_separates_a_separable_set_with_monotone_probabilities() {
    // Labels by the sign of 2 x0 - x1 + 0.3, rows within 0.2 of the boundary dropped.
    let table = linear_table(2_000, &[2.0, -1.0, 0.0], 0.3, 4, Task::Binary, |z, _| {
        if z > 0.0 { 1.0 } else { 0.0 }
    });
    let keep: Vec<usize> = (0..table.x.n_rows)
        .filter(|&row| {
            let v = table.x.row(row);
            (2.0 * f64::from(v[0]) - f64::from(v[1]) + 0.3).abs() > 0.2
        })
        .collect();
    let table = Table::new(
        table.x.take_rows(&keep),
        keep.iter().map(|&row| table.y[row]).collect(),
        Task::Binary,
    );
    let model = linear::fit_svm(&SvmParams::default(), &table.train_set(), 7).unwrap();
    assert_eq!(model.algorithm, LinearAlgorithm::Svm);
    let Link::Platt { a, .. } = model.link else { panic!("link {:?}", model.link) };
    assert!(a > 0.0, "slope {a}");

    let mut scored: Vec<(f64, f64)> = Vec::new();
    for (row, &y) in table.y.iter().enumerate() {
        let margin = raw(&model, table.x.row(row))[0];
        assert_eq!(margin > 0.0, y == 1.0, "row {row} margin {margin}");
        let mut probability = [margin];
        model.link.apply(&mut probability);
        scored.push((margin, probability[0]));
    }
    scored.sort_by(|p, q| p.0.total_cmp(&q.0));
    assert!(
        scored.windows(2).all(|pair| pair[0].1 <= pair[1].1),
        "probabilities not monotone in the margin"
    );
    assert!(
        scored[0].1 < 0.05 && scored[scored.len() - 1].1 > 0.95,
        "{:?} {:?}",
        scored[0],
        scored.last()
    );
}

#[test]
fn contributions_sum_to_the_raw_output() {
    let mut rng = Rng::new(12);
    let beta = [0.7, -1.3, 2.1, 0.0];
    let binary = linear_table(500, &beta, 0.4, 13, Task::Binary, bernoulli);
    let regression =
        linear_table(500, &beta, 10.0, 14, Task::Regression, |z, rng| (z + rng.normal()) as f32);
    let classes = linear_table(500, &beta, 0.0, 15, Task::Multiclass { n_classes: 3 }, |z, _| {
        if z < -1.0 {
            0.0
        } else if z < 1.0 {
            1.0
        } else {
            2.0
        }
    });
    let models = [
        linear::fit_logistic(&LogisticParams::default(), &binary.train_set(), 0).unwrap(),
        linear::fit_logistic(&LogisticParams::default(), &classes.train_set(), 0).unwrap(),
        linear::fit_linear(&LinearParams::default(), &regression.train_set(), 0).unwrap(),
        linear::fit_svm(&SvmParams::default(), &binary.train_set(), 0).unwrap(),
    ];
    for model in models {
        let estimator = Estimator::Linear(model.clone());
        let width = model.n_features + 1;
        for _ in 0..50 {
            let row: Vec<f32> =
                (0..model.n_features).map(|_| (3.0 * rng.normal()) as f32).collect();
            let raw_outputs = raw(&model, &row);
            let mut contributions = vec![f64::NAN; model.n_outputs() * width];
            estimator
                .contributions_into(&row, &mut contributions, &mut ShapScratch::default())
                .unwrap();
            for (output, slice) in contributions.chunks(width).enumerate() {
                let sum: f64 = slice.iter().sum();
                assert!(
                    (sum - raw_outputs[output]).abs() <= 1e-9,
                    "{:?}: {sum} vs {}",
                    model.algorithm,
                    raw_outputs[output]
                );
                let feature_1 =
                    model.coefficients_of(output)[1] * (f64::from(row[1]) - model.feature_means[1]);
                assert!((slice[1] - feature_1).abs() <= 1e-12);
            }
        }
        // At the training means, every feature contributes zero.
        let means: Vec<f32> = model.feature_means.iter().map(|&m| m as f32).collect();
        let mut contributions = vec![0.0; model.n_outputs() * width];
        model.contributions_into(&means, &mut contributions);
        assert!(contributions.chunks(width).all(|s| s[..width - 1].iter().all(|c| c.abs() < 1e-6)));
    }
}

#[test]
fn fits_do_not_depend_on_the_thread_count() {
    let table = linear_table(20_000, &[1.0, -1.0, 0.5], 0.1, 21, Task::Binary, bernoulli);
    let fit_with = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let logistic =
                linear::fit_logistic(&LogisticParams::default(), &table.train_set(), 0).unwrap();
            let svm = linear::fit_svm(&SvmParams::default(), &table.train_set(), 3).unwrap();
            let small = MlpParams { hidden: vec![8], max_epochs: 3, ..MlpParams::default() };
            let mlp = mlp::fit(&small, &table.train_set(), 3).unwrap();
            (logistic, svm, mlp)
        })
    };
    assert!(fit_with(1) == fit_with(4), "a fit changed with the number of threads");
}

/// XOR-like quadrants: the class is the sign of x0 · x1, plus noise features.
fn xor_table(n_rows: usize, seed: u64) -> Table {
    let mut rng = Rng::new(seed);
    let mut x = Matrix::zeros(n_rows, 4);
    let mut y = Vec::new();
    for row in 0..n_rows {
        let values = x.row_mut(row);
        for value in values.iter_mut() {
            *value = (2.0 * rng.next_f64() - 1.0) as f32 * 1.7;
        }
        y.push(if values[0] * values[1] > 0.0 { 1.0 } else { 0.0 });
    }
    Table::new(x, y, Task::Binary)
}

fn accuracy(estimator: &Estimator, table: &Table) -> f64 {
    let mut out = vec![0.0; estimator.n_outputs()];
    let correct = (0..table.x.n_rows)
        .filter(|&row| {
            estimator.predict_raw_into(table.x.row(row), &mut out);
            estimator.link().apply(&mut out);
            (out[0] > 0.5) == (table.y[row] == 1.0)
        })
        .count();
    correct as f64 / table.x.n_rows as f64
}

fn quick_mlp() -> MlpParams {
    MlpParams {
        hidden: vec![32, 16],
        learning_rate: 1e-2,
        batch_size: 64,
        max_epochs: 100,
        ..MlpParams::default()
    }
}

#[test]
fn mlp_learns_xor_where_logistic_cannot() {
    let train = xor_table(3_000, 31);
    let test = xor_table(2_000, 32);
    let network = mlp::fit(&quick_mlp(), &train.train_set(), 1).unwrap();
    let logistic = linear::fit_logistic(&LogisticParams::default(), &train.train_set(), 1).unwrap();
    let mlp_accuracy = accuracy(&Estimator::Mlp(network), &test);
    let logistic_accuracy = accuracy(&Estimator::Linear(logistic), &test);
    assert!(mlp_accuracy > 0.93, "mlp accuracy {mlp_accuracy}");
    assert!(logistic_accuracy < 0.6, "logistic accuracy {logistic_accuracy}");
}

#[test]
fn mlp_fits_multiclass_and_unscaled_regression() {
    // Class by quadrant, as three classes.
    let mut table = xor_table(3_000, 41);
    for row in 0..table.x.n_rows {
        let v = table.x.row(row);
        table.y[row] = if v[0] > 0.0 {
            0.0
        } else if v[1] > 0.0 {
            1.0
        } else {
            2.0
        };
    }
    table.task = Task::Multiclass { n_classes: 3 };
    let network = mlp::fit(&quick_mlp(), &table.train_set(), 2).unwrap();
    assert_eq!((network.n_outputs(), network.link()), (3, Link::Softmax));
    let mut out = [0.0; 3];
    let correct = (0..table.x.n_rows)
        .filter(|&row| {
            network.predict_raw_into(table.x.row(row), &mut out);
            let best = (0..3).max_by(|&i, &j| out[i].total_cmp(&out[j])).unwrap();
            best as f32 == table.y[row]
        })
        .count();
    assert!(correct as f64 / table.x.n_rows as f64 > 0.95, "multiclass accuracy {correct}");

    // A target in the thousands: learnt on a standardised scale, returned in the original.
    for row in 0..table.x.n_rows {
        let v = table.x.row(row);
        table.y[row] = 5_000.0 + 1_000.0 * (v[0] * v[1] + (2.0 * v[2]).sin());
    }
    table.task = Task::Regression;
    let network = mlp::fit(&quick_mlp(), &table.train_set(), 3).unwrap();
    let mean = table.y.iter().map(|&y| f64::from(y)).sum::<f64>() / table.y.len() as f64;
    let (mut residual, mut total) = (0.0, 0.0);
    let mut out = [0.0];
    for row in 0..table.x.n_rows {
        network.predict_raw_into(table.x.row(row), &mut out);
        residual += (out[0] - f64::from(table.y[row])).powi(2);
        total += (f64::from(table.y[row]) - mean).powi(2);
    }
    let r2 = 1.0 - residual / total;
    assert!(r2 > 0.9, "regression r² {r2}");
}

#[test]
fn mlp_is_deterministic_for_a_seed() {
    let table = xor_table(1_000, 51);
    let params = MlpParams { hidden: vec![16, 8], max_epochs: 5, ..MlpParams::default() };
    let first = mlp::fit(&params, &table.train_set(), 8).unwrap();
    let second = mlp::fit(&params, &table.train_set(), 8).unwrap();
    let other = mlp::fit(&params, &table.train_set(), 9).unwrap();
    assert_eq!(first, second);
    assert_ne!(first, other);
}

#[test]
fn models_round_trip_and_validate() {
    let table = xor_table(400, 61);
    let linear_model =
        linear::fit_logistic(&LogisticParams::default(), &table.train_set(), 0).unwrap();
    let network =
        mlp::fit(&MlpParams { max_epochs: 2, ..MlpParams::default() }, &table.train_set(), 0)
            .unwrap();
    for estimator in [Estimator::Linear(linear_model), Estimator::Mlp(network)] {
        let json = serde_json::to_string(&estimator).unwrap();
        let mut loaded: Estimator = serde_json::from_str(&json).unwrap();
        loaded.validate(4).unwrap();
        assert_eq!(loaded, estimator);
        assert!(matches!(loaded.validate(5), Err(MlError::Corrupted(_))));
    }
}

#[test]
fn validate_rejects_corrupted_models() {
    let table = xor_table(400, 62);
    let good = linear::fit_svm(&SvmParams::default(), &table.train_set(), 0).unwrap();
    let corruptions: [fn(&mut LinearModel); 5] = [
        |m| {
            m.coefficients.pop();
        },
        |m| m.intercepts[0] = f64::NAN,
        |m| m.feature_means.clear(),
        |m| m.link = Link::Softmax,
        |m| m.link = Link::Platt { a: f64::INFINITY, b: 0.0 },
    ];
    for corrupt in corruptions {
        let mut model = good.clone();
        corrupt(&mut model);
        assert!(matches!(model.validate(4), Err(MlError::Corrupted(_))), "{model:?}");
    }

    let good = mlp::fit(
        &MlpParams { hidden: vec![4], max_epochs: 1, ..MlpParams::default() },
        &table.train_set(),
        0,
    )
    .unwrap();
    let corruptions: [fn(&mut Mlp); 5] = [
        |m| m.layers[0].weights[0] = f32::NAN,
        |m| m.layers[1].n_inputs = 5,
        |m| m.layers[1].biases.push(0.0),
        |m| m.link = Link::Softmax,
        |m| m.layers.clear(),
    ];
    for corrupt in corruptions {
        let mut network = good.clone();
        corrupt(&mut network);
        assert!(matches!(network.validate(4), Err(MlError::Corrupted(_))), "{network:?}");
    }
}

fn assert_invalid_parameter<T: std::fmt::Debug>(result: vigie_ml::Result<T>, expected: &str) {
    match result {
        Err(MlError::InvalidParameter { name, .. }) => assert_eq!(name, expected),
        other => panic!("expected an invalid {expected}, got {other:?}"),
    }
}

#[test]
fn invalid_parameters_are_named() {
    let table = xor_table(200, 71);
    let train = table.train_set();
    let logistic = |params: LogisticParams| linear::fit_logistic(&params, &train, 0);
    assert_invalid_parameter(logistic(LogisticParams { l2: -1.0, ..Default::default() }), "l2");
    assert_invalid_parameter(logistic(LogisticParams { l1: f64::NAN, ..Default::default() }), "l1");
    assert_invalid_parameter(
        logistic(LogisticParams { max_iter: 0, ..Default::default() }),
        "max_iter",
    );
    assert_invalid_parameter(logistic(LogisticParams { tol: 0.0, ..Default::default() }), "tol");
    let mut regression = xor_table(200, 72);
    regression.task = Task::Regression;
    assert_invalid_parameter(
        linear::fit_linear(&LinearParams { l2: f64::INFINITY }, &regression.train_set(), 0),
        "l2",
    );
    let svm = |params: SvmParams| linear::fit_svm(&params, &train, 0);
    assert_invalid_parameter(svm(SvmParams { l2: 0.0, ..Default::default() }), "l2");
    assert_invalid_parameter(svm(SvmParams { tol: -1.0, ..Default::default() }), "tol");
    let network = |params: MlpParams| mlp::fit(&params, &train, 0);
    assert_invalid_parameter(
        network(MlpParams { hidden: vec![64, 0], ..Default::default() }),
        "hidden",
    );
    assert_invalid_parameter(
        network(MlpParams { hidden: vec![257], ..Default::default() }),
        "hidden",
    );
    assert_invalid_parameter(
        network(MlpParams { learning_rate: 0.0, ..Default::default() }),
        "learning_rate",
    );
    assert_invalid_parameter(network(MlpParams { l2: -0.1, ..Default::default() }), "l2");
    assert_invalid_parameter(
        network(MlpParams { batch_size: 0, ..Default::default() }),
        "batch_size",
    );
    assert_invalid_parameter(
        network(MlpParams { max_epochs: 0, ..Default::default() }),
        "max_epochs",
    );
    assert_invalid_parameter(network(MlpParams { patience: 0, ..Default::default() }), "patience");
    assert_invalid_parameter(
        network(MlpParams { validation_fraction: 0.9, ..Default::default() }),
        "validation_fraction",
    );

    // Unknown keys are refused, missing keys take the defaults.
    assert!(serde_json::from_str::<LogisticParams>(r#"{"C": 1.0}"#).is_err());
    let params: MlpParams = serde_json::from_str(r#"{"l2": 0.5}"#).unwrap();
    assert_eq!(params, MlpParams { l2: 0.5, ..MlpParams::default() });
    assert_eq!(params.hidden, vec![64, 32]);
}

#[test]
fn bad_data_is_invalid_data_naming_the_column() {
    let mut table = xor_table(200, 81);
    table.features[2].name = "amount".into();
    table.x.row_mut(17)[2] = f32::NAN;
    let message = |result: vigie_ml::Result<()>| match result {
        Err(MlError::InvalidData(message)) => message,
        other => panic!("expected invalid data, got {other:?}"),
    };
    let train = table.train_set();
    let fits: [vigie_ml::Result<()>; 3] = [
        linear::fit_logistic(&LogisticParams::default(), &train, 0).map(drop),
        linear::fit_svm(&SvmParams::default(), &train, 0).map(drop),
        mlp::fit(&MlpParams::default(), &train, 0).map(drop),
    ];
    for fit in fits {
        let text = message(fit);
        assert!(text.contains("\"amount\"") && text.contains("row 17"), "{text}");
    }
    table.task = Task::Regression;
    let text =
        message(linear::fit_linear(&LinearParams::default(), &table.train_set(), 0).map(drop));
    assert!(text.contains("\"amount\""), "{text}");

    // Targets that do not fit the task, and bad weights.
    let mut table = xor_table(200, 82);
    table.y[3] = 2.0;
    assert!(
        message(linear::fit_logistic(&LogisticParams::default(), &table.train_set(), 0).map(drop))
            .contains("row 3")
    );
    table.y.iter_mut().for_each(|y| *y = 1.0);
    assert!(
        message(linear::fit_svm(&SvmParams::default(), &table.train_set(), 0).map(drop))
            .contains("single class")
    );
    let mut table = xor_table(200, 83);
    table.weights = Some(vec![0.0; 200]);
    assert!(
        message(mlp::fit(&MlpParams::default(), &table.train_set(), 0).map(drop)).contains("zero")
    );
    table.weights = Some(vec![1.0; 199]);
    assert!(
        message(linear::fit_logistic(&LogisticParams::default(), &table.train_set(), 0).map(drop))
            .contains("weights")
    );
}

#[test]
fn tasks_each_model_cannot_do_are_unsupported() {
    let mut table = xor_table(200, 91);
    assert!(matches!(
        linear::fit_linear(&LinearParams::default(), &table.train_set(), 0),
        Err(MlError::Unsupported(_))
    ));
    table.task = Task::Multiclass { n_classes: 2 };
    assert!(matches!(
        linear::fit_svm(&SvmParams::default(), &table.train_set(), 0),
        Err(MlError::Unsupported(_))
    ));
    table.task = Task::Regression;
    assert!(matches!(
        linear::fit_logistic(&LogisticParams::default(), &table.train_set(), 0),
        Err(MlError::Unsupported(_))
    ));
}
