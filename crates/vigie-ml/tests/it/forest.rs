//! Tests of the random forest: what it learns, that it is deterministic, and
//! that the saved trees route raw floats exactly as training routed bins.

use vigie_ml::estimator::TrainSet;
use vigie_ml::forest::{self, FittedForest, ForestParams, MaxFeatures};
use vigie_ml::matrix::{FeatureInfo, Matrix, Task};
use vigie_ml::rng::Rng;
use vigie_ml::tree::TreeEnsemble;

/// A table with its targets.
struct Table {
    x: Matrix,
    y: Vec<f32>,
    features: Vec<FeatureInfo>,
}

fn numeric_features(n_features: usize) -> Vec<FeatureInfo> {
    (0..n_features)
        .map(|idx| FeatureInfo { name: format!("x{idx}"), source: idx, categories: None })
        .collect()
}

/// A noisy nonlinear binary problem: an interaction, a sine, a square and a
/// linear term carry the signal, the other features are noise. A share
/// `missing_rate` of the values is replaced by `NaN`.
fn binary_problem(n_rows: usize, n_features: usize, missing_rate: f64, seed: u64) -> Table {
    let mut rng = Rng::new(seed);
    let mut x = Matrix::zeros(n_rows, n_features);
    let mut y = Vec::with_capacity(n_rows);
    for row in 0..n_rows {
        let values = x.row_mut(row);
        for value in values.iter_mut() {
            *value = rng.normal() as f32;
        }
        let v = |idx: usize| f64::from(values[idx.min(n_features - 1)]);
        let logit = 1.5 * v(0) * v(1) + 2.0 * (2.0 * v(2)).sin() + v(3) * v(3) - 1.0 + 0.8 * v(4);
        let probability = 1.0 / (1.0 + (-logit).exp());
        y.push(if rng.next_f64() < probability { 1.0 } else { 0.0 });
        for value in values.iter_mut() {
            if rng.next_f64() < missing_rate {
                *value = f32::NAN;
            }
        }
    }
    Table { x, y, features: numeric_features(n_features) }
}

fn train_set(table: &Table, task: Task) -> TrainSet<'_> {
    TrainSet { x: &table.x, y: &table.y, weights: None, features: &table.features, task }
}

fn fit(params: &ForestParams, table: &Table, task: Task, seed: u64) -> FittedForest {
    forest::fit(params, &train_set(table, task), seed).unwrap()
}

fn predict(ensemble: &TreeEnsemble, x: &Matrix) -> Vec<f64> {
    let mut out = vec![0.0; ensemble.n_outputs];
    let mut predictions = Vec::with_capacity(x.n_rows * ensemble.n_outputs);
    for row in 0..x.n_rows {
        ensemble.predict_raw_into(x.row(row), &mut out);
        predictions.extend_from_slice(&out);
    }
    predictions
}

/// ROC AUC by counting ordered pairs (ties count half).
fn auc(scores: &[f64], labels: &[f32]) -> f64 {
    let positives: Vec<f64> =
        scores.iter().zip(labels).filter(|(_, y)| **y == 1.0).map(|(s, _)| *s).collect();
    let negatives: Vec<f64> =
        scores.iter().zip(labels).filter(|(_, y)| **y == 0.0).map(|(s, _)| *s).collect();
    let mut wins = 0.0;
    for p in &positives {
        for n in &negatives {
            wins += if p > n {
                1.0
            } else if p == n {
                0.5
            } else {
                0.0
            };
        }
    }
    wins / (positives.len() * negatives.len()) as f64
}

#[test]
fn timing_200k_by_30() {
    if std::env::var("VIGIE_FOREST_TIMING").is_err() {
        return;
    }
    let n_trees: usize =
        std::env::var("VIGIE_FOREST_TREES").ok().and_then(|v| v.parse().ok()).unwrap_or(100);
    let all = binary_problem(250_000, 30, 0.0, 42);
    let train_rows: Vec<usize> = (0..200_000).collect();
    let test_rows: Vec<usize> = (200_000..250_000).collect();
    let train = Table {
        x: all.x.take_rows(&train_rows),
        y: train_rows.iter().map(|&r| all.y[r]).collect(),
        features: all.features.clone(),
    };
    let test = Table {
        x: all.x.take_rows(&test_rows),
        y: test_rows.iter().map(|&r| all.y[r]).collect(),
        features: all.features.clone(),
    };
    if let Ok(path) = std::env::var("VIGIE_FOREST_DUMP") {
        use std::io::Write;
        let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
        for row in 0..all.x.n_rows {
            let line: Vec<String> = all.x.row(row).iter().map(|v| v.to_string()).collect();
            writeln!(file, "{},{}", line.join(","), all.y[row]).unwrap();
        }
    }
    let oob = std::env::var("VIGIE_FOREST_OOB").is_ok();
    let params = ForestParams { n_trees, oob_score: oob, ..ForestParams::default() };
    let start = std::time::Instant::now();
    let fitted = fit(&params, &train, Task::Binary, 7);
    let elapsed = start.elapsed();
    let start = std::time::Instant::now();
    let scores = predict(&fitted.ensemble, &test.x);
    let predict_elapsed = start.elapsed();
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Rank-based AUC with average ranks for ties.
    let mut ranks = vec![0.0; scores.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for k in i..=j {
            ranks[order[k]] = rank;
        }
        i = j + 1;
    }
    let n_pos = test.y.iter().filter(|&&y| y == 1.0).count() as f64;
    let n_neg = test.y.len() as f64 - n_pos;
    let rank_sum: f64 = ranks.iter().zip(&test.y).filter(|(_, y)| **y == 1.0).map(|(r, _)| r).sum();
    let test_auc = (rank_sum - n_pos * (n_pos + 1.0) / 2.0) / (n_pos * n_neg);
    println!(
        "forest: {n_trees} trees fit {:.2}s (oob {oob}), predict 50k {:.2}s, nodes {}, depth {}, test AUC {test_auc:.4}",
        elapsed.as_secs_f64(),
        predict_elapsed.as_secs_f64(),
        fitted.ensemble.nodes.len(),
        fitted.ensemble.max_depth
    );
}
