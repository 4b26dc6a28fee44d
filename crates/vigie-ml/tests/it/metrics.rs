//! Tests of the metrics, split and threshold modules.
//!
//! Metric values are checked against scikit-learn's on the seeded arrays in
//! `tests/data/sklearn_metrics.json` (written by
//! `scripts/make_sklearn_reference.py`, which records the sklearn version);
//! where a simple oracle exists (pair counting for ROC AUC, brute-force
//! counting for average precision, partitions for folds) proptest compares
//! against it on random small inputs.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use serde::Deserialize;
use vigie_ml::MlError;
use vigie_ml::Task;
use vigie_ml::metrics::{self, BinaryConfusion, BinaryCurve, MulticlassConfusion};
use vigie_ml::split::{self, Fold};
use vigie_ml::threshold::{ThresholdGoal, choose_threshold};

// ---------------------------------------------------------------------------
// scikit-learn reference values.

/// Relative tolerance (absolute for values below 1). sklearn sums in another
/// order (pairwise, over reversed arrays) but the formulas are the same; with
/// scikit-learn 1.9.1 every value, log loss included, agrees within 1e-15.
const REL_TOL: f64 = 1e-12;

#[derive(Deserialize)]
struct Reference {
    sklearn_version: String,
    binary: BinaryCase,
    binary_weighted: BinaryCase,
    multiclass: MulticlassCase,
    multiclass_absent_class: MulticlassCase,
    regression: RegressionCase,
}

#[derive(Deserialize)]
struct BinaryCase {
    y: Vec<f32>,
    score: Vec<f64>,
    weights: Option<Vec<f32>>,
    expected: BinaryExpected,
}

#[derive(Deserialize)]
struct BinaryExpected {
    roc_auc: f64,
    pr_auc: f64,
    log_loss: f64,
    brier: f64,
    at_threshold: Vec<AtThreshold>,
}

#[derive(Deserialize)]
struct AtThreshold {
    threshold: f64,
    f1: f64,
    precision: f64,
    recall: f64,
    accuracy: f64,
    /// tn, fp, fn, tp.
    confusion: [f64; 4],
}

#[derive(Deserialize)]
struct MulticlassCase {
    n_classes: usize,
    y: Vec<f32>,
    proba: Vec<f64>,
    expected: MulticlassExpected,
}

#[derive(Deserialize)]
struct MulticlassExpected {
    accuracy: f64,
    f1_macro: f64,
    f1_weighted: f64,
    log_loss: f64,
    confusion: Vec<f64>,
}

#[derive(Deserialize)]
struct RegressionCase {
    y: Vec<f32>,
    prediction: Vec<f64>,
    expected: RegressionExpected,
}

#[derive(Deserialize)]
struct RegressionExpected {
    rmse: f64,
    mae: f64,
    r2: f64,
    mape: f64,
}

fn reference() -> Reference {
    serde_json::from_str(include_str!("../data/sklearn_metrics.json"))
        .expect("tests/data/sklearn_metrics.json matches make_sklearn_reference.py's layout")
}

/// Asserts `actual` is within `rel_tol` of sklearn's `expected`, relative to its size.
#[track_caller]
fn check(name: &str, actual: f64, expected: f64, rel_tol: f64) {
    let tolerance = rel_tol * expected.abs().max(1.0);
    assert!(
        (actual - expected).abs() <= tolerance,
        "{name}: vigie {actual:e}, sklearn {} {expected:e}, diff {:e}",
        reference().sklearn_version,
        (actual - expected).abs()
    );
}

fn check_binary(case_name: &str, case: &BinaryCase) {
    let (y, score, weights) = (&case.y, &case.score, case.weights.as_deref());
    let expected = &case.expected;
    check(
        &format!("{case_name} roc_auc"),
        metrics::roc_auc(y, score, weights),
        expected.roc_auc,
        REL_TOL,
    );
    check(
        &format!("{case_name} pr_auc"),
        metrics::pr_auc(y, score, weights),
        expected.pr_auc,
        REL_TOL,
    );
    check(
        &format!("{case_name} log_loss"),
        metrics::log_loss(y, score, weights),
        expected.log_loss,
        REL_TOL,
    );
    check(
        &format!("{case_name} brier"),
        metrics::brier(y, score, weights),
        expected.brier,
        REL_TOL,
    );
    for at in &expected.at_threshold {
        let t = at.threshold;
        let name = |metric: &str| format!("{case_name} {metric} at {t}");
        check(&name("f1"), metrics::f1(y, score, t, weights), at.f1, REL_TOL);
        check(&name("precision"), metrics::precision(y, score, t, weights), at.precision, REL_TOL);
        check(&name("recall"), metrics::recall(y, score, t, weights), at.recall, REL_TOL);
        check(&name("accuracy"), metrics::accuracy(y, score, t, weights), at.accuracy, REL_TOL);
        let confusion =
            BinaryConfusion::new(y, score, t, weights).expect("reference lengths agree");
        let counts = [
            confusion.true_negatives,
            confusion.false_positives,
            confusion.false_negatives,
            confusion.true_positives,
        ];
        assert_eq!(counts, at.confusion, "{}", name("confusion (tn, fp, fn, tp)"));
    }
}

#[test]
fn binary_metrics_match_sklearn() {
    let reference = reference();
    check_binary("binary", &reference.binary);
    check_binary("binary_weighted", &reference.binary_weighted);
}

#[test]
fn binary_evaluate_matches_sklearn() {
    let case = reference().binary;
    let expected = &case.expected;
    let at = &expected.at_threshold[0];
    let got = metrics::evaluate(Task::Binary, &case.y, &case.score, at.threshold);
    let keys: Vec<&str> = got.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["accuracy", "brier", "f1", "log_loss", "pr_auc", "precision", "recall", "roc_auc"]
    );
    check("roc_auc", got["roc_auc"], expected.roc_auc, REL_TOL);
    check("pr_auc", got["pr_auc"], expected.pr_auc, REL_TOL);
    check("log_loss", got["log_loss"], expected.log_loss, REL_TOL);
    check("brier", got["brier"], expected.brier, REL_TOL);
    check("f1", got["f1"], at.f1, REL_TOL);
    check("precision", got["precision"], at.precision, REL_TOL);
    check("recall", got["recall"], at.recall, REL_TOL);
    check("accuracy", got["accuracy"], at.accuracy, REL_TOL);
}

fn check_multiclass(case_name: &str, case: &MulticlassCase) {
    let (y, proba, k) = (&case.y, &case.proba, case.n_classes);
    let expected = &case.expected;
    let name = |metric: &str| format!("{case_name} {metric}");
    check(
        &name("accuracy"),
        metrics::multiclass_accuracy(y, proba, k, None),
        expected.accuracy,
        REL_TOL,
    );
    check(&name("f1_macro"), metrics::f1_macro(y, proba, k, None), expected.f1_macro, REL_TOL);
    check(
        &name("f1_weighted"),
        metrics::f1_weighted(y, proba, k, None),
        expected.f1_weighted,
        REL_TOL,
    );
    check(
        &name("log_loss"),
        metrics::multiclass_log_loss(y, proba, k, None),
        expected.log_loss,
        REL_TOL,
    );
    let confusion = MulticlassConfusion::new(y, proba, k, None).expect("reference shapes agree");
    assert_eq!(confusion.n_classes(), k);
    assert_eq!(confusion.counts(), expected.confusion.as_slice(), "{}", name("confusion"));

    let got = metrics::evaluate(Task::Multiclass { n_classes: k }, y, proba, 0.5);
    let keys: Vec<&str> = got.keys().map(String::as_str).collect();
    assert_eq!(keys, ["accuracy", "f1_macro", "f1_weighted", "log_loss"]);
    check(&name("evaluate accuracy"), got["accuracy"], expected.accuracy, REL_TOL);
    check(&name("evaluate f1_macro"), got["f1_macro"], expected.f1_macro, REL_TOL);
    check(&name("evaluate f1_weighted"), got["f1_weighted"], expected.f1_weighted, REL_TOL);
    check(&name("evaluate log_loss"), got["log_loss"], expected.log_loss, REL_TOL);
}

#[test]
fn multiclass_metrics_match_sklearn() {
    let reference = reference();
    check_multiclass("multiclass", &reference.multiclass);
    check_multiclass("multiclass_absent_class", &reference.multiclass_absent_class);
}

#[test]
fn regression_metrics_match_sklearn() {
    let case = reference().regression;
    let (y, prediction, expected) = (&case.y, &case.prediction, &case.expected);
    check("rmse", metrics::rmse(y, prediction, None), expected.rmse, REL_TOL);
    check("mae", metrics::mae(y, prediction, None), expected.mae, REL_TOL);
    check("r2", metrics::r2(y, prediction, None), expected.r2, REL_TOL);
    // y[0] = 0, so this is dominated by |error| / f64::EPSILON, as in sklearn.
    check("mape", metrics::mape(y, prediction, None), expected.mape, REL_TOL);

    let got = metrics::evaluate(Task::Regression, y, prediction, 0.5);
    let keys: Vec<&str> = got.keys().map(String::as_str).collect();
    assert_eq!(keys, ["mae", "mape", "r2", "rmse"]);
    check("evaluate rmse", got["rmse"], expected.rmse, REL_TOL);
    check("evaluate mae", got["mae"], expected.mae, REL_TOL);
    check("evaluate r2", got["r2"], expected.r2, REL_TOL);
    check("evaluate mape", got["mape"], expected.mape, REL_TOL);
}

// ---------------------------------------------------------------------------
// Degenerate inputs: NaN, never a panic.

#[test]
fn undefined_metrics_are_nan() {
    let one_class = [1.0f32, 1.0, 1.0];
    let score = [0.2, 0.7, 0.7];
    assert!(metrics::roc_auc(&one_class, &score, None).is_nan());
    assert!(metrics::roc_auc(&[0.0, 0.0], &[0.1, 0.2], None).is_nan());
    assert!(metrics::pr_auc(&[0.0, 0.0], &[0.1, 0.2], None).is_nan());
    // Only positives: every threshold has precision 1, as sklearn says.
    assert_eq!(metrics::pr_auc(&one_class, &score, None), 1.0);
    assert!(metrics::roc_auc(&[0.0, 1.0], &[0.1, f64::NAN], None).is_nan());
    assert!(metrics::roc_auc(&[0.0, 1.0], &[0.1], None).is_nan());
    assert!(metrics::log_loss(&[0.0, 1.0], &[0.1], None).is_nan());
    assert!(metrics::brier(&[0.0, 1.0], &[0.1, 0.2], Some(&[1.0])).is_nan());
    assert!(metrics::r2(&[2.0, 2.0], &[2.0, 2.0], None).is_nan());
    assert!(metrics::multiclass_log_loss(&[0.0, 3.0], &[0.5; 6], 3, None).is_nan());
    assert!(metrics::f1_macro(&[0.0, 0.5], &[0.5; 6], 3, None).is_nan());
    assert!(metrics::multiclass_accuracy(&[0.0], &[0.5; 3], 2, None).is_nan());
    assert!(MulticlassConfusion::new(&[], &[], usize::MAX, None).is_none());

    for task in [Task::Binary, Task::Multiclass { n_classes: 3 }, Task::Regression] {
        let empty = metrics::evaluate(task, &[], &[], 0.5);
        assert!(!empty.is_empty());
        for (key, value) in &empty {
            assert!(value.is_nan(), "{} {key} on no rows is {value}", task.name());
        }
        let mismatched = metrics::evaluate(task, &[0.0, 1.0], &[0.5], 0.5);
        for (key, value) in &mismatched {
            assert!(value.is_nan(), "{} {key} on mismatched lengths is {value}", task.name());
        }
    }
    // Zero weights everywhere leave nothing to average.
    assert!(metrics::rmse(&[1.0, 2.0], &[1.0, 2.0], Some(&[0.0, 0.0])).is_nan());
}

#[test]
fn threshold_metrics_follow_sklearn_zero_division() {
    // No positive prediction and no positive row: sklearn's zero_division default gives 0.
    let confusion = BinaryConfusion::new(&[0.0, 0.0], &[0.1, 0.2], 0.5, None).unwrap();
    assert_eq!(confusion.precision(), 0.0);
    assert_eq!(confusion.recall(), 0.0);
    assert_eq!(confusion.f1(), 0.0);
    assert_eq!(confusion.accuracy(), 1.0);
    // score >= threshold is positive, so a score equal to the threshold counts.
    assert_eq!(metrics::recall(&[1.0], &[0.5], 0.5, None), 1.0);
}

#[test]
fn metric_directions_cover_every_evaluated_key() {
    let lower = ["log_loss", "brier", "rmse", "mae", "mape"];
    for task in [Task::Binary, Task::Multiclass { n_classes: 2 }, Task::Regression] {
        let y = [0.0, 1.0, 1.0];
        let predictions = vec![0.5; y.len() * task.n_outputs()];
        let evaluated = metrics::evaluate(task, &y, &predictions, 0.5);
        assert!(evaluated.contains_key(metrics::primary_metric(task)));
        for key in evaluated.keys() {
            assert_eq!(metrics::higher_is_better(key), !lower.contains(&key.as_str()), "{key}");
        }
    }
    assert_eq!(metrics::primary_metric(Task::Binary), "roc_auc");
    assert_eq!(metrics::primary_metric(Task::Multiclass { n_classes: 3 }), "f1_macro");
    assert_eq!(metrics::primary_metric(Task::Regression), "rmse");
}

// ---------------------------------------------------------------------------
// Oracles for ranking metrics.

/// ROC AUC as the Mann-Whitney statistic: the share of (positive, negative)
/// pairs ranked right, ties counting half.
fn mann_whitney_auc(y: &[f32], score: &[f64]) -> f64 {
    let mut wins = 0.0;
    let mut pairs = 0.0;
    for (i, &label_i) in y.iter().enumerate() {
        for (j, &label_j) in y.iter().enumerate() {
            if label_i == 1.0 && label_j == 0.0 {
                pairs += 1.0;
                if score[i] > score[j] {
                    wins += 1.0;
                } else if score[i] == score[j] {
                    wins += 0.5;
                }
            }
        }
    }
    wins / pairs
}

/// Average precision by counting at every distinct score, without sorting rows.
fn brute_force_average_precision(y: &[f32], score: &[f64]) -> f64 {
    let positives = y.iter().filter(|&&label| label == 1.0).count() as f64;
    let thresholds: BTreeSet<u64> = score.iter().map(|s| s.to_bits()).collect();
    let mut sum = 0.0;
    let mut previous_recall = 0.0;
    // Scores here are non-negative, so bit order is numeric order; highest first.
    for bits in thresholds.into_iter().rev() {
        let threshold = f64::from_bits(bits);
        let confusion =
            BinaryConfusion::new(y, score, threshold, None).expect("oracle input is non-empty");
        let recall = confusion.true_positives / positives;
        sum += (recall - previous_recall) * confusion.precision();
        previous_recall = recall;
    }
    sum
}

/// Labels with both classes, and scores on a coarse grid so that ties are common.
fn binary_rows(max_rows: usize) -> impl Strategy<Value = (Vec<f32>, Vec<f64>)> {
    prop::collection::vec((any::<bool>(), 0u8..8), 2..max_rows)
        .prop_filter("both classes", |rows| rows.iter().any(|r| r.0) && rows.iter().any(|r| !r.0))
        .prop_map(|rows| {
            let y = rows.iter().map(|r| f32::from(u8::from(r.0))).collect();
            let score = rows.iter().map(|r| f64::from(r.1) / 7.0).collect();
            (y, score)
        })
}

proptest! {
    #[test]
    fn roc_auc_equals_mann_whitney((y, score) in binary_rows(40)) {
        let auc = metrics::roc_auc(&y, &score, None);
        prop_assert!((auc - mann_whitney_auc(&y, &score)).abs() < 1e-12);
    }

    #[test]
    fn average_precision_equals_brute_force((y, score) in binary_rows(40)) {
        let ap = metrics::pr_auc(&y, &score, None);
        prop_assert!((ap - brute_force_average_precision(&y, &score)).abs() < 1e-12);
    }

    #[test]
    fn integer_weights_equal_repeated_rows(
        (y, score) in binary_rows(30),
        seed in any::<u64>(),
    ) {
        let weights: Vec<f32> = (0..y.len()).map(|i| ((seed >> (i % 60)) & 3) as f32 + 1.0).collect();
        let mut y_repeated = Vec::new();
        let mut score_repeated = Vec::new();
        for ((&label, &s), &w) in y.iter().zip(&score).zip(&weights) {
            for _ in 0..w as usize {
                y_repeated.push(label);
                score_repeated.push(s);
            }
        }
        let pairs = [
            (metrics::roc_auc(&y, &score, Some(&weights)), metrics::roc_auc(&y_repeated, &score_repeated, None)),
            (metrics::pr_auc(&y, &score, Some(&weights)), metrics::pr_auc(&y_repeated, &score_repeated, None)),
            (metrics::log_loss(&y, &score, Some(&weights)), metrics::log_loss(&y_repeated, &score_repeated, None)),
            (metrics::f1(&y, &score, 0.5, Some(&weights)), metrics::f1(&y_repeated, &score_repeated, 0.5, None)),
        ];
        for (weighted, repeated) in pairs {
            prop_assert!((weighted - repeated).abs() < 1e-12, "{} vs {}", weighted, repeated);
        }
    }

    #[test]
    fn binary_curve_ends_at_class_totals((y, score) in binary_rows(40)) {
        let curve = BinaryCurve::new(&y, &score, None).unwrap();
        let positives = y.iter().filter(|&&label| label == 1.0).count() as f64;
        prop_assert_eq!(curve.total_positives(), positives);
        prop_assert_eq!(curve.total_negatives(), y.len() as f64 - positives);
        prop_assert!(curve.thresholds.windows(2).all(|pair| pair[0] > pair[1]));
    }

    #[test]
    fn metrics_never_panic(
        y in prop::collection::vec(prop_oneof![Just(0.0f32), Just(1.0), Just(2.0), Just(f32::NAN), Just(-1.0)], 0..12),
        score in prop::collection::vec(prop_oneof![Just(f64::NAN), Just(-1.0), Just(0.0), Just(0.5), Just(1.0), Just(f64::INFINITY)], 0..12),
        threshold in prop_oneof![Just(0.5), Just(f64::NAN), Just(f64::NEG_INFINITY)],
    ) {
        for task in [Task::Binary, Task::Multiclass { n_classes: 2 }, Task::Multiclass { n_classes: 0 }, Task::Regression] {
            let evaluated = metrics::evaluate(task, &y, &score, threshold);
            prop_assert!(!evaluated.is_empty());
        }
        for goal in [ThresholdGoal::MaxF1, ThresholdGoal::Recall(0.9), ThresholdGoal::MaxFalsePositiveRate(0.1)] {
            let _ = choose_threshold(&y, &score, goal);
        }
    }
}

// ---------------------------------------------------------------------------
// Splits.

/// Asserts that the folds' test sets partition `0..n_rows` and each train set
/// is exactly the complement of its test set, both ascending.
#[track_caller]
fn check_partition(folds: &[Fold], n_rows: usize) {
    let mut times_tested = vec![0usize; n_rows];
    for fold in folds {
        assert!(!fold.test.is_empty(), "empty test fold");
        assert!(fold.train.windows(2).all(|pair| pair[0] < pair[1]), "train not ascending");
        assert!(fold.test.windows(2).all(|pair| pair[0] < pair[1]), "test not ascending");
        for &row in &fold.test {
            times_tested[row] += 1;
        }
        let mut all: Vec<usize> = fold.train.iter().chain(&fold.test).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..n_rows).collect::<Vec<_>>(), "train and test must split all rows");
    }
    assert!(times_tested.iter().all(|&n| n == 1), "every row in exactly one test fold");
}

/// Asserts that `train` and `test` split `0..n_rows` exactly.
#[track_caller]
fn check_two_way(train: &[usize], test: &[usize], n_rows: usize) {
    check_partition(
        &[
            Fold { train: train.to_vec(), test: test.to_vec() },
            Fold { train: test.to_vec(), test: train.to_vec() },
        ],
        n_rows,
    );
}

fn count_of(y: &[f32], rows: &[usize], label: f32) -> usize {
    rows.iter().filter(|&&row| y[row] == label).count()
}

#[track_caller]
fn assert_cv_error<T: std::fmt::Debug>(result: Result<T, MlError>, parameter: &str) {
    match result {
        Err(MlError::InvalidParameter { name, reason }) => {
            assert_eq!(name, parameter);
            assert!(!reason.is_empty() && !reason.ends_with('.'), "{reason:?}");
        }
        other => panic!("expected an invalid {parameter} error, got {other:?}"),
    }
}

#[test]
fn invalid_split_parameters_are_errors() {
    let y = [0.0f32, 1.0, 0.0, 1.0];
    let keys = [1.0, 2.0, 3.0, 4.0];
    assert_cv_error(split::kfold(4, 1, 0), "cv");
    assert_cv_error(split::kfold(4, 5, 0), "cv");
    assert_cv_error(split::kfold(0, 2, 0), "cv");
    assert_cv_error(split::stratified_kfold(&y, 0, 0), "cv");
    assert_cv_error(split::stratified_kfold(&y, 5, 0), "cv");
    assert_cv_error(split::group_kfold(&[1, 1, 2, 2], 3), "cv");
    assert_cv_error(split::time_series_split(&keys, 4), "cv");
    assert_cv_error(split::time_series_split(&keys, 1), "cv");
    assert_cv_error(split::stratified_train_test(&y, 0.0, 0), "test_fraction");
    assert_cv_error(split::stratified_train_test(&y, f64::NAN, 0), "test_fraction");
    assert_cv_error(split::train_test(4, 1.0, 0), "test_fraction");
    assert_cv_error(split::train_test(1, 0.5, 0), "test_fraction");
    assert_cv_error(split::time_ordered_train_test(&keys, -0.1), "test_fraction");
    assert!(matches!(
        split::time_series_split(&[1.0, f64::NAN, 3.0], 2),
        Err(MlError::InvalidData(_))
    ));
    assert!(matches!(
        split::time_ordered_train_test(&[1.0, f64::NAN, 3.0], 0.3),
        Err(MlError::InvalidData(_))
    ));
}

#[test]
fn time_series_split_matches_sklearn_layout() {
    // sklearn TimeSeriesSplit(n_splits=3) on 10 rows: test blocks [4,5] [6,7] [8,9].
    let keys: Vec<f64> = (0..10).map(|i| f64::from(9 - i)).collect();
    let folds = split::time_series_split(&keys, 3).unwrap();
    // Row r has key 9 - r, so the latest rows by key are the lowest indices.
    let tests: Vec<Vec<usize>> = folds.iter().map(|fold| fold.test.clone()).collect();
    assert_eq!(tests, [vec![4, 5], vec![2, 3], vec![0, 1]]);
    assert_eq!(folds[0].train, [6, 7, 8, 9]);
    assert_eq!(folds[2].train, [2, 3, 4, 5, 6, 7, 8, 9]);
}

#[test]
fn stratified_kfold_spreads_a_small_class() {
    // One row of class 2 with k = 3: allowed, it lands in one fold.
    let y = [0.0f32, 0.0, 0.0, 1.0, 1.0, 1.0, 2.0];
    let folds = split::stratified_kfold(&y, 3, 7).unwrap();
    check_partition(&folds, y.len());
    let class_two: usize = folds.iter().map(|fold| count_of(&y, &fold.test, 2.0)).sum();
    assert_eq!(class_two, 1);
}

#[test]
fn splits_are_reproducible() {
    let y: Vec<f32> = (0..50).map(|i| (i % 3) as f32).collect();
    assert_eq!(
        split::stratified_kfold(&y, 5, 11).unwrap(),
        split::stratified_kfold(&y, 5, 11).unwrap()
    );
    assert_eq!(split::kfold(50, 5, 11).unwrap(), split::kfold(50, 5, 11).unwrap());
    assert_ne!(split::kfold(50, 5, 11).unwrap(), split::kfold(50, 5, 12).unwrap());
    assert_eq!(
        split::stratified_train_test(&y, 0.2, 3).unwrap(),
        split::stratified_train_test(&y, 0.2, 3).unwrap()
    );
}

proptest! {
    #[test]
    fn kfold_partitions_rows(n_rows in 2usize..60, k in 2usize..8, seed in any::<u64>()) {
        prop_assume!(k <= n_rows);
        let folds = split::kfold(n_rows, k, seed).unwrap();
        prop_assert_eq!(folds.len(), k);
        check_partition(&folds, n_rows);
        let sizes: Vec<usize> = folds.iter().map(|fold| fold.test.len()).collect();
        prop_assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1);
    }

    #[test]
    fn stratified_kfold_keeps_class_ratios(
        y in prop::collection::vec(0u8..4, 2..80),
        k in 2usize..7,
        seed in any::<u64>(),
    ) {
        let y: Vec<f32> = y.into_iter().map(f32::from).collect();
        prop_assume!(k <= y.len());
        let folds = split::stratified_kfold(&y, k, seed).unwrap();
        prop_assert_eq!(folds.len(), k);
        check_partition(&folds, y.len());
        for label in 0..4 {
            let label = f32::from(label as u8);
            let total = count_of(&y, &(0..y.len()).collect::<Vec<_>>(), label);
            for fold in &folds {
                // Each fold holds floor or ceil of the class's share.
                let in_fold = count_of(&y, &fold.test, label);
                prop_assert!(in_fold == total / k || in_fold == total.div_ceil(k), "{} of {} in a fold, k = {}", in_fold, total, k);
            }
        }
        let sizes: Vec<usize> = folds.iter().map(|fold| fold.test.len()).collect();
        prop_assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1);
    }

    #[test]
    fn group_kfold_never_splits_a_group(
        groups in prop::collection::vec(0u64..12, 2..80),
        k in 2usize..6,
    ) {
        let n_groups = groups.iter().collect::<BTreeSet<_>>().len();
        let result = split::group_kfold(&groups, k);
        if n_groups < k {
            prop_assert!(result.is_err());
            return Ok(());
        }
        let folds = result.unwrap();
        prop_assert_eq!(folds.len(), k);
        check_partition(&folds, groups.len());
        let mut fold_of_group: BTreeMap<u64, usize> = BTreeMap::new();
        for (fold_idx, fold) in folds.iter().enumerate() {
            for &row in &fold.test {
                let first = *fold_of_group.entry(groups[row]).or_insert(fold_idx);
                prop_assert_eq!(first, fold_idx, "group {} in two folds", groups[row]);
            }
        }
    }

    #[test]
    fn time_series_split_trains_only_on_earlier_rows(
        keys in prop::collection::vec(0u16..50, 3..80),
        k in 2usize..6,
    ) {
        let keys: Vec<f64> = keys.into_iter().map(f64::from).collect();
        prop_assume!(k < keys.len());
        let folds = split::time_series_split(&keys, k).unwrap();
        prop_assert_eq!(folds.len(), k);
        let block = keys.len() / (k + 1);
        let mut tested = BTreeSet::new();
        for (fold_idx, fold) in folds.iter().enumerate() {
            prop_assert_eq!(fold.test.len(), block);
            // Expanding window: train is every row not tested in this fold or later.
            prop_assert_eq!(fold.train.len(), keys.len() - (k - fold_idx) * block);
            let latest_train = fold.train.iter().map(|&row| keys[row]).fold(f64::NEG_INFINITY, f64::max);
            let earliest_test = fold.test.iter().map(|&row| keys[row]).fold(f64::INFINITY, f64::min);
            prop_assert!(latest_train <= earliest_test);
            prop_assert!(fold.train.iter().all(|row| !fold.test.contains(row)));
            for &row in &fold.test {
                prop_assert!(tested.insert(row), "row {} tested twice", row);
            }
        }
    }

    #[test]
    fn stratified_train_test_keeps_class_ratios(
        y in prop::collection::vec(0u8..3, 2..100),
        test_fraction in 0.05f64..0.6,
        seed in any::<u64>(),
    ) {
        let y: Vec<f32> = y.into_iter().map(f32::from).collect();
        let n_test = (test_fraction * y.len() as f64).ceil() as usize;
        prop_assume!(n_test < y.len());
        let (train, test) = split::stratified_train_test(&y, test_fraction, seed).unwrap();
        check_two_way(&train, &test, y.len());
        prop_assert_eq!(test.len(), n_test);
        for label in [0.0, 1.0, 2.0] {
            let total = count_of(&y, &(0..y.len()).collect::<Vec<_>>(), label);
            let share = total as f64 * n_test as f64 / y.len() as f64;
            let in_test = count_of(&y, &test, label) as f64;
            prop_assert!((in_test - share).abs() < 1.0, "{} of class {} in test, share {}", in_test, label, share);
        }
    }

    #[test]
    fn train_test_splits_keep_sizes(
        keys in prop::collection::vec(0u16..30, 2..60),
        test_fraction in 0.05f64..0.6,
        seed in any::<u64>(),
    ) {
        let keys: Vec<f64> = keys.into_iter().map(f64::from).collect();
        let n_test = (test_fraction * keys.len() as f64).ceil() as usize;
        prop_assume!(n_test < keys.len());
        let (train, test) = split::train_test(keys.len(), test_fraction, seed).unwrap();
        check_two_way(&train, &test, keys.len());
        prop_assert_eq!(test.len(), n_test);
        let (train, test) = split::time_ordered_train_test(&keys, test_fraction).unwrap();
        check_two_way(&train, &test, keys.len());
        prop_assert_eq!(test.len(), n_test);
        let latest_train = train.iter().map(|&row| keys[row]).fold(f64::NEG_INFINITY, f64::max);
        let earliest_test = test.iter().map(|&row| keys[row]).fold(f64::INFINITY, f64::min);
        prop_assert!(latest_train <= earliest_test);
    }
}

// ---------------------------------------------------------------------------
// Thresholds.

#[test]
fn threshold_goals_parse_print_and_serialize() {
    let cases = [
        ("max-f1", ThresholdGoal::MaxF1, r#"{"kind":"max_f1"}"#),
        ("recall:0.9", ThresholdGoal::Recall(0.9), r#"{"kind":"recall","value":0.9}"#),
        (
            "fpr:0.01",
            ThresholdGoal::MaxFalsePositiveRate(0.01),
            r#"{"kind":"max_false_positive_rate","value":0.01}"#,
        ),
    ];
    for (text, goal, json) in cases {
        assert_eq!(text.parse::<ThresholdGoal>().unwrap(), goal);
        assert_eq!(goal.to_string(), text);
        assert_eq!(serde_json::to_string(&goal).unwrap(), json);
        assert_eq!(serde_json::from_str::<ThresholdGoal>(json).unwrap(), goal);
    }
    for bad in
        ["", "max_f1", "recall", "recall:", "recall:1.5", "fpr:-0.1", "fpr:NaN", "precision:0.9"]
    {
        assert_cv_error(bad.parse::<ThresholdGoal>(), "threshold");
    }
}

#[test]
fn undefined_threshold_goals_give_one_half() {
    for goal in
        [ThresholdGoal::MaxF1, ThresholdGoal::Recall(0.9), ThresholdGoal::MaxFalsePositiveRate(0.1)]
    {
        assert_eq!(choose_threshold(&[1.0, 1.0], &[0.2, 0.9], goal), 0.5);
        assert_eq!(choose_threshold(&[], &[], goal), 0.5);
        assert_eq!(choose_threshold(&[0.0, 1.0], &[0.2], goal), 0.5);
        assert_eq!(choose_threshold(&[0.0, 1.0], &[0.2, f64::NAN], goal), 0.5);
    }
}

#[test]
fn strict_false_positive_goal_predicts_nothing() {
    // The top score is a negative: no score reaches FPR 0, so the threshold
    // sits just above it.
    let threshold =
        choose_threshold(&[0.0, 1.0], &[0.9, 0.4], ThresholdGoal::MaxFalsePositiveRate(0.0));
    assert!(threshold > 0.9);
    assert_eq!(metrics::recall(&[0.0, 1.0], &[0.9, 0.4], threshold, None), 0.0);
}

fn distinct_scores(score: &[f64]) -> Vec<f64> {
    let mut distinct = score.to_vec();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup();
    distinct
}

proptest! {
    #[test]
    fn recall_threshold_is_the_highest_reaching_the_recall(
        (y, score) in binary_rows(40),
        min_recall in 0.0f64..=1.0,
    ) {
        let threshold = choose_threshold(&y, &score, ThresholdGoal::Recall(min_recall));
        prop_assert!(score.contains(&threshold));
        prop_assert!(metrics::recall(&y, &score, threshold, None) >= min_recall);
        for candidate in distinct_scores(&score).into_iter().filter(|&s| s > threshold) {
            prop_assert!(metrics::recall(&y, &score, candidate, None) < min_recall);
        }
    }

    #[test]
    fn fpr_threshold_is_the_lowest_within_the_rate(
        (y, score) in binary_rows(40),
        max_rate in 0.0f64..=1.0,
    ) {
        let threshold = choose_threshold(&y, &score, ThresholdGoal::MaxFalsePositiveRate(max_rate));
        let rate = |t: f64| BinaryConfusion::new(&y, &score, t, None).unwrap().false_positive_rate();
        prop_assert!(rate(threshold) <= max_rate);
        for candidate in distinct_scores(&score).into_iter().filter(|&s| s < threshold) {
            prop_assert!(rate(candidate) > max_rate);
        }
    }

    #[test]
    fn max_f1_threshold_beats_every_score((y, score) in binary_rows(40)) {
        let threshold = choose_threshold(&y, &score, ThresholdGoal::MaxF1);
        let best = metrics::f1(&y, &score, threshold, None);
        for candidate in distinct_scores(&score) {
            prop_assert!(metrics::f1(&y, &score, candidate, None) <= best + 1e-15);
        }
    }
}
