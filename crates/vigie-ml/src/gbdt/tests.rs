use super::*;
use crate::matrix::{FeatureInfo, Matrix};
use crate::rng::Rng;

fn synthetic(n: usize, seed: u64, categorical: bool) -> (Matrix, Vec<f32>, Vec<FeatureInfo>) {
    let mut rng = Rng::new(seed);
    let n_cols = 4;
    let mut x = Matrix::zeros(n, n_cols);
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let row = x.row_mut(i);
        row[0] = rng.normal() as f32;
        row[1] = rng.normal() as f32;
        row[2] = if rng.below(10) == 0 { f32::NAN } else { rng.normal() as f32 };
        row[3] = rng.below(5) as f32;
        let logit = 1.5 * row[0] - row[1]
            + if row[3] == 2.0 { 2.0 } else { 0.0 }
            + 0.3 * rng.normal() as f32;
        y.push(if logit > 0.5 { 1.0 } else { 0.0 });
    }
    let features = (0..n_cols)
        .map(|j| FeatureInfo {
            name: format!("f{j}"),
            source: j,
            categories: (categorical && j == 3).then_some(5),
        })
        .collect();
    (x, y, features)
}

#[test]
fn compiled_trees_reproduce_hessboost_margins() {
    for task in [Task::Binary, Task::Regression, Task::Multiclass { n_classes: 3 }] {
        let (x, mut y, features) = synthetic(2000, 1, true);
        if let Task::Multiclass { .. } = task {
            for (i, v) in y.iter_mut().enumerate() {
                *v = ((i % 3) as f32 + *v).min(2.0);
            }
        }
        let set = TrainSet { x: &x, y: &y, weights: None, features: &features, task };
        let params =
            GbdtParams { n_rounds: 20, early_stopping_rounds: None, ..GbdtParams::default() };
        let training_params = TrainingParams::builder()
            .objective(match task {
                Task::Binary => Objective::BinaryLogistic(RegLoss::default()),
                Task::Multiclass { n_classes } => {
                    Objective::Softprob(Multiclass::new(n_classes).unwrap())
                }
                Task::Regression => Objective::SquaredError(RegLoss::default()),
            })
            .tree_method(TreeMethod::Hist)
            .grow_policy(GrowPolicy::LossGuide)
            .max_leaves(params.max_leaves)
            .unlimited_depth()
            .eta(params.learning_rate)
            .min_child_weight(params.min_child_weight)
            .lambda(params.l2)
            .subsample(params.subsample)
            .colsample_bytree(params.colsample)
            .seed(3)
            .global_pool()
            .build()
            .unwrap();
        let model = train(&training_params, &dmatrix(&set).unwrap(), 20).unwrap();
        let ensemble = compile(&model, 20, Link::Identity, None).unwrap();
        let n_out = task.n_outputs();
        let mut ours = vec![0.0; n_out];
        let mut theirs = vec![0.0f32; n_out];
        for i in 0..200 {
            ensemble.predict_raw_into(x.row(i), &mut ours);
            model.predict_margin_row_into(x.row(i), Iterations::Best, &mut theirs).unwrap();
            for k in 0..n_out {
                assert!(
                    (ours[k] - f64::from(theirs[k])).abs() < 1e-4,
                    "{task:?} row {i}: {ours:?} vs {theirs:?}"
                );
            }
        }
    }
}

#[test]
fn early_stopping_keeps_best_rounds_and_learns() {
    let (x, y, features) = synthetic(3000, 2, true);
    let (train_idx, valid_idx): (Vec<usize>, Vec<usize>) = (0..3000).partition(|i| i % 5 != 0);
    let (xt, xv) = (x.take_rows(&train_idx), x.take_rows(&valid_idx));
    let yt: Vec<f32> = train_idx.iter().map(|&i| y[i]).collect();
    let yv: Vec<f32> = valid_idx.iter().map(|&i| y[i]).collect();
    let train_set =
        TrainSet { x: &xt, y: &yt, weights: None, features: &features, task: Task::Binary };
    let valid_set =
        TrainSet { x: &xv, y: &yv, weights: None, features: &features, task: Task::Binary };
    let fitted = fit(&GbdtParams::default(), &train_set, Some(&valid_set), 7).unwrap();
    assert!(
        fitted.rounds < 500,
        "early stopping should stop before 500 rounds, kept {}",
        fitted.rounds
    );
    assert_eq!(fitted.ensemble.n_trees(), fitted.rounds);
    let mut correct = 0;
    let mut out = [0.0];
    for (i, &label) in yv.iter().enumerate() {
        fitted.ensemble.predict_raw_into(xv.row(i), &mut out);
        correct += usize::from((out[0] > 0.0) == (label == 1.0));
    }
    assert!(correct as f64 / yv.len() as f64 > 0.85, "accuracy {correct}/{}", yv.len());
}

#[test]
fn contributions_sum_to_margin_on_boosted_trees() {
    let (x, y, features) = synthetic(1000, 4, true);
    let set = TrainSet { x: &x, y: &y, weights: None, features: &features, task: Task::Binary };
    let fitted = fit(&GbdtParams { n_rounds: 50, ..GbdtParams::default() }, &set, None, 1).unwrap();
    let mut raw = [0.0];
    let mut phi = vec![0.0; 5];
    let mut scratch = crate::tree::ShapScratch::default();
    for i in 0..100 {
        fitted.ensemble.predict_raw_into(x.row(i), &mut raw);
        fitted.ensemble.contributions_into(x.row(i), &mut phi, &mut scratch).unwrap();
        let sum: f64 = phi.iter().sum();
        assert!((sum - raw[0]).abs() <= 1e-6 * raw[0].abs().max(1.0), "{sum} vs {}", raw[0]);
    }
}

#[test]
fn bad_parameters_are_named() {
    let (x, y, features) = synthetic(10, 4, false);
    let set = TrainSet { x: &x, y: &y, weights: None, features: &features, task: Task::Binary };
    let error = fit(&GbdtParams { learning_rate: 0.0, ..GbdtParams::default() }, &set, None, 1)
        .unwrap_err();
    assert!(error.to_string().contains("learning_rate"), "{error}");
}

#[test]
fn max_rows_trains_on_a_seeded_sample_of_every_part_of_the_table() {
    // Rows in order of x, y = 10x: a sample of the first rows only would
    // never see x near 1 and predict about 5 there.
    let n = 4_000;
    let mut x = Matrix::zeros(n, 1);
    let y: Vec<f32> = (0..n)
        .map(|i| {
            let v = i as f32 / n as f32;
            x.row_mut(i)[0] = v;
            10.0 * v
        })
        .collect();
    let features = vec![FeatureInfo { name: "x".into(), source: 0, categories: None }];
    let set = TrainSet { x: &x, y: &y, weights: None, features: &features, task: Task::Regression };
    let params = |max_rows| GbdtParams {
        n_rounds: 60,
        learning_rate: 0.3,
        early_stopping_rounds: None,
        max_rows,
        ..GbdtParams::default()
    };
    let sampled = fit(&params(Some(400)), &set, None, 7).unwrap().ensemble;
    let mut out = [0.0];
    for v in [0.05f32, 0.5, 0.95] {
        sampled.predict_raw_into(&[v], &mut out);
        assert!((out[0] - 10.0 * f64::from(v)).abs() < 0.6, "at {v}: {}", out[0]);
    }
    assert_eq!(fit(&params(Some(400)), &set, None, 7).unwrap().ensemble, sampled);
    let every_row = fit(&params(None), &set, None, 7).unwrap().ensemble;
    assert_ne!(every_row, sampled);
    assert_eq!(fit(&params(Some(n)), &set, None, 7).unwrap().ensemble, every_row);
    let error = fit(&params(Some(0)), &set, None, 7).unwrap_err();
    assert!(error.to_string().contains("max_rows"), "{error}");
}

#[test]
fn total_order_keys_sort_as_total_cmp_sorts_and_give_the_floats_back() {
    let mut values = vec![
        f32::NEG_INFINITY,
        -3.5e30,
        -1.0,
        -f32::MIN_POSITIVE,
        -1e-45,
        -0.0,
        0.0,
        1e-45,
        f32::MIN_POSITIVE,
        0.1,
        1.0,
        7.25e12,
        f32::MAX,
        f32::INFINITY,
    ];
    let mut rng = Rng::new(3);
    values.extend((0..2000).map(|_| f32::from_bits(rng.next_u64() as u32)).filter(|v| !v.is_nan()));
    for &value in &values {
        assert_eq!(from_total_order_key(total_order_key(value)).to_bits(), value.to_bits());
    }
    let mut by_floats = values.clone();
    by_floats.sort_unstable_by(f32::total_cmp);
    let mut by_keys: Vec<u32> = values.iter().copied().map(total_order_key).collect();
    by_keys.sort_unstable();
    let by_keys: Vec<u32> =
        by_keys.into_iter().map(|k| from_total_order_key(k).to_bits()).collect();
    let by_floats: Vec<u32> = by_floats.iter().map(|v| v.to_bits()).collect();
    assert_eq!(by_keys, by_floats);
}
