//! `vigie-bench`: trains Vigie's gradient-boosted trees and random forest on a
//! training file, scores a test file, and prints one JSON object of timings
//! and quality that `bench/compare.py` puts next to LightGBM, XGBoost and
//! scikit-learn.
//!
//! What is timed, per model:
//! - training: fitting the pipeline, encoding the training rows and fitting
//!   the estimator (reading the file is not timed, as for the peers);
//! - one-row prediction: [`Model::predict_row`] with a reused [`RowScratch`],
//!   the path a server takes for one request, one call per test row;
//! - batch throughput: [`Pipeline::transform`] plus [`predict_estimator`] over
//!   the whole test frame;
//! - TreeSHAP for one row: encoding the row, exact per-feature contributions
//!   and folding them back onto input columns.
//!
//! Timings never appear in tests; this binary is only run by `bench/run.sh`.

use std::collections::HashMap;
use std::fs::File;
use std::hint::black_box;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Parser;
use serde_json::{Value as Json, json};
use vigie_core::{Frame, Value};
use vigie_ml::estimator::{Estimator, TrainSet};
use vigie_ml::forest::{self, ForestParams, MaxFeatures};
use vigie_ml::gbdt::{self, GbdtParams};
use vigie_ml::model::{DataFingerprint, Model, ModelCard, RowScratch, predict_estimator};
use vigie_ml::target::{self, TaskChoice};
use vigie_ml::transform::{Pipeline, PipelineSpec, Target};
use vigie_ml::tree::ShapScratch;
use vigie_ml::{Task, metrics};

/// Command-line arguments.
#[derive(Debug, Parser)]
#[command(about = "Times Vigie's GBDT and random forest on a train/test split; prints JSON")]
struct Args {
    /// Training table (CSV or Parquet).
    #[arg(long)]
    train: PathBuf,
    /// Test table with the same columns.
    #[arg(long)]
    test: PathBuf,
    /// The binary label column.
    #[arg(long)]
    label: String,
    /// Boosting rounds (no early stopping).
    #[arg(long, default_value_t = 100)]
    rounds: usize,
    /// Most leaves per boosted tree.
    #[arg(long, default_value_t = 31)]
    leaves: usize,
    /// Boosting learning rate.
    #[arg(long, default_value_t = 0.1)]
    learning_rate: f64,
    /// Least hessian sum in a boosted leaf (XGBoost's default; LightGBM uses 20 rows instead).
    #[arg(long, default_value_t = 1.0)]
    min_child_weight: f64,
    /// L2 penalty on boosted leaf values (XGBoost's default; LightGBM's is 0).
    #[arg(long, default_value_t = 1.0)]
    l2: f64,
    /// Trees in the random forest.
    #[arg(long, default_value_t = 100)]
    trees: usize,
    /// Test rows scored one at a time for the latency figures.
    #[arg(long, default_value_t = 2000)]
    latency_rows: usize,
    /// Test rows explained one at a time for the random forest's TreeSHAP figure
    /// (fully grown trees are deep, so this is kept small).
    #[arg(long, default_value_t = 100)]
    forest_shap_rows: usize,
    /// Times the whole test set is scored for throughput (the median counts).
    #[arg(long, default_value_t = 3)]
    batch_repeats: usize,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Models to run, comma-separated: `gbdt`, `random_forest`.
    #[arg(long, value_delimiter = ',', default_value = "gbdt,random_forest")]
    models: Vec<String>,
    /// Where to write the test-set probabilities (CSV, one column per model).
    #[arg(long)]
    predictions: Option<PathBuf>,
}

/// Timing summary of repeated single calls, in microseconds.
fn summarize(mut nanos: Vec<f64>) -> Json {
    if nanos.is_empty() {
        return Json::Null;
    }
    nanos.sort_by(f64::total_cmp);
    let n = nanos.len();
    let quantile = |q: f64| nanos[((q * (n - 1) as f64).round() as usize).min(n - 1)] / 1e3;
    let mean = nanos.iter().sum::<f64>() / n as f64 / 1e3;
    json!({
        "median": quantile(0.5),
        "p99": quantile(0.99),
        "mean": mean,
        "min": nanos[0] / 1e3,
        "calls": n,
    })
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Peak resident memory of this process in MiB, where the OS tells it.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// The test rows as request values, in the pipeline's input order.
fn request_rows(pipeline: &Pipeline, frame: &Frame, n: usize) -> Result<Vec<Vec<Value>>> {
    let columns = pipeline
        .inputs
        .iter()
        .map(|input| frame.column(&input.name).map(|c| &c.data))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok((0..n.min(frame.n_rows())).map(|i| columns.iter().map(|c| c.value(i)).collect()).collect())
}

/// A fitted pipeline and estimator wrapped as a [`Model`], so that scoring
/// goes through the same `predict_row` a server calls.
fn wrap(
    pipeline: Pipeline,
    estimator: Estimator,
    algorithm: &str,
    label: &str,
    classes: &[String],
) -> Model {
    Model {
        card: ModelCard {
            name: format!("bench-{algorithm}"),
            version: 0,
            algorithm: algorithm.to_owned(),
            task: Task::Binary,
            label: label.to_owned(),
            classes: classes.to_vec(),
            params: Json::Null,
            cv: Default::default(),
            cv_folds: 0,
            oob: Default::default(),
            threshold: None,
            threshold_goal: None,
            data: DataFingerprint {
                sha256: String::new(),
                rows: 0,
                columns: pipeline.inputs.len() + 1,
                source: "bench".into(),
            },
            seed: 0,
            train_seconds: 0.0,
            store: None,
            trained_at: String::new(),
            vigie_version: env!("CARGO_PKG_VERSION").into(),
        },
        pipeline,
        estimator,
    }
}

/// The data both models learn from and are measured on.
struct Data {
    train: Frame,
    test: Frame,
    inputs: Vec<String>,
    y_train: Vec<f32>,
    y_test: Vec<f32>,
    classes: Vec<String>,
}

impl Data {
    fn load(args: &Args) -> Result<Self> {
        let read = |path: &Path| {
            vigie_connectors::files::read_table(path, &HashMap::new())
                .with_context(|| format!("reading {}", path.display()))
        };
        let train = read(&args.train)?;
        let test = read(&args.test)?;
        let target = target::prepare(&train, &args.label, TaskChoice::Auto, None)?;
        if target.task != Task::Binary {
            bail!(
                "label {:?} is not binary; this benchmark compares binary classifiers",
                args.label
            );
        }
        let positive = target.classes.get(1).context("a binary target has two classes")?;
        let test_target = target::prepare(&test, &args.label, TaskChoice::Binary, Some(positive))?;
        let inputs =
            train.names().into_iter().filter(|n| *n != args.label).map(str::to_owned).collect();
        Ok(Data {
            train,
            test,
            inputs,
            y_train: target.y,
            y_test: test_target.y,
            classes: target.classes,
        })
    }
}

/// What training produced, and how long each part took.
struct Trained {
    model: Model,
    prepare_seconds: f64,
    fit_seconds: f64,
    params: Json,
}

fn train(data: &Data, args: &Args, algorithm: &str) -> Result<Trained> {
    let start = Instant::now();
    let rows: Vec<usize> = (0..data.train.n_rows()).collect();
    let inputs: Vec<&str> = data.inputs.iter().map(String::as_str).collect();
    let target = Target { y: &data.y_train, task: Task::Binary };
    let pipeline =
        Pipeline::fit(&PipelineSpec::for_trees(), &data.train, &inputs, &rows, target, args.seed)?;
    let x = pipeline.transform_training(&data.train, &rows)?;
    let prepare_seconds = start.elapsed().as_secs_f64();
    let set = TrainSet {
        x: &x,
        y: &data.y_train,
        weights: None,
        features: &pipeline.features,
        task: Task::Binary,
    };
    let start = Instant::now();
    let (estimator, params): (Estimator, Json) = match algorithm {
        "gbdt" => {
            let params = GbdtParams {
                n_rounds: args.rounds,
                learning_rate: args.learning_rate,
                max_leaves: args.leaves,
                max_depth: None,
                min_child_weight: args.min_child_weight,
                l2: args.l2,
                l1: 0.0,
                subsample: 1.0,
                colsample: 1.0,
                max_bins: 255,
                early_stopping_rounds: None,
                max_rows: None,
            };
            let fitted = gbdt::fit(&params, &set, None, args.seed)?;
            (Estimator::Trees(fitted.ensemble), serde_json::to_value(&params)?)
        }
        "random_forest" => {
            let params = ForestParams {
                n_trees: args.trees,
                max_depth: None,
                min_samples_leaf: 1,
                max_features: MaxFeatures::Sqrt,
                bootstrap: true,
                max_bins: 255,
                oob_score: false,
                histogram_above_rows: None,
            };
            let fitted = forest::fit(&params, &set, args.seed)?;
            (fitted.into(), serde_json::to_value(&params)?)
        }
        other => bail!("unknown model {other:?}; expected gbdt or random_forest"),
    };
    let fit_seconds = start.elapsed().as_secs_f64();
    let model = wrap(pipeline, estimator, algorithm, &args.label, &data.classes);
    Ok(Trained { model, prepare_seconds, fit_seconds, params })
}

/// Per-call latency of [`Model::predict_row`], after one warm-up pass.
fn single_row_latency(model: &Model, rows: &[Vec<Value>]) -> Result<(Json, Vec<f64>)> {
    let mut scratch: RowScratch = model.scratch();
    for values in rows {
        black_box(model.predict_row(black_box(values), &mut scratch)?);
    }
    let mut nanos = Vec::with_capacity(rows.len());
    let mut predictions = Vec::with_capacity(rows.len());
    for values in rows {
        let start = Instant::now();
        let out = model.predict_row(black_box(values), &mut scratch)?;
        let p = black_box(out[0]);
        nanos.push(start.elapsed().as_nanos() as f64);
        predictions.push(p);
    }
    Ok((summarize(nanos), predictions))
}

/// Per-call latency of exact TreeSHAP for one row, folded onto input columns.
fn shap_latency(model: &Model, rows: &[Vec<Value>]) -> Result<Json> {
    let n_features = model.pipeline.n_features();
    let n_outputs = model.estimator.n_outputs();
    let mut features = vec![0.0f32; n_features];
    let mut per_feature = vec![0.0f64; n_outputs * (n_features + 1)];
    let mut per_input = vec![0.0f64; model.pipeline.inputs.len()];
    let mut scratch = ShapScratch::default();
    let mut explain = |values: &[Value]| -> Result<f64> {
        model.pipeline.transform_row_into(values, &mut features)?;
        model.estimator.contributions_into(&features, &mut per_feature, &mut scratch)?;
        model.pipeline.fold_contributions(&per_feature[..n_features], &mut per_input);
        Ok(per_input.iter().sum::<f64>() + per_feature[n_features])
    };
    for values in rows.iter().take(rows.len().min(50)) {
        black_box(explain(black_box(values))?);
    }
    let mut nanos = Vec::with_capacity(rows.len());
    for values in rows {
        let start = Instant::now();
        black_box(explain(black_box(values))?);
        nanos.push(start.elapsed().as_nanos() as f64);
    }
    Ok(summarize(nanos))
}

fn measure(data: &Data, args: &Args, algorithm: &str) -> Result<(Json, Vec<f64>)> {
    let trained = train(data, args, algorithm)?;
    let model = &trained.model;

    // Quality and batch throughput over the whole test set.
    let n_test = data.test.n_rows();
    let mut batch_seconds = Vec::with_capacity(args.batch_repeats);
    let mut probabilities = Vec::new();
    for _ in 0..args.batch_repeats.max(1) {
        let start = Instant::now();
        let matrix = model.pipeline.transform(black_box(&data.test))?;
        let p = predict_estimator(&model.estimator, &matrix);
        batch_seconds.push(start.elapsed().as_secs_f64());
        probabilities = black_box(p);
    }
    let batch_seconds = median(batch_seconds);
    let roc_auc = metrics::roc_auc(&data.y_test, &probabilities, None);
    let pr_auc = metrics::pr_auc(&data.y_test, &probabilities, None);

    // One row at a time, as a server scores requests.
    let rows = request_rows(&model.pipeline, &data.test, args.latency_rows)?;
    let (latency, single) = single_row_latency(model, &rows)?;
    let max_diff =
        single.iter().zip(&probabilities).map(|(a, b)| (a - b).abs()).fold(0.0f64, f64::max);
    let shap_rows = if algorithm == "random_forest" {
        &rows[..rows.len().min(args.forest_shap_rows)]
    } else {
        &rows[..]
    };
    let shap = shap_latency(model, shap_rows)?;

    let Estimator::Trees(ensemble) = &model.estimator else {
        bail!("{algorithm} did not produce trees");
    };
    let result = json!({
        "params": trained.params,
        "train_seconds": trained.prepare_seconds + trained.fit_seconds,
        "prepare_seconds": trained.prepare_seconds,
        "fit_seconds": trained.fit_seconds,
        "roc_auc": roc_auc,
        "pr_auc": pr_auc,
        "latency_us": latency,
        "batch_seconds": batch_seconds,
        "batch_rows_per_s": n_test as f64 / batch_seconds,
        "shap_us": shap,
        "single_vs_batch_max_abs_diff": max_diff,
        "n_trees": ensemble.n_trees(),
        "n_nodes": ensemble.nodes.len(),
        "max_depth": ensemble.max_depth,
        "n_features": model.pipeline.n_features(),
    });
    Ok((result, probabilities))
}

fn write_predictions(path: &Path, columns: &[(String, Vec<f64>)]) -> Result<()> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = BufWriter::new(file);
    let header: Vec<&str> = columns.iter().map(|(name, _)| name.as_str()).collect();
    writeln!(out, "{}", header.join(","))?;
    let n = columns.first().map_or(0, |(_, v)| v.len());
    for i in 0..n {
        let line: Vec<String> = columns.iter().map(|(_, v)| format!("{:.17e}", v[i])).collect();
        writeln!(out, "{}", line.join(","))?;
    }
    out.flush()?;
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    let data = Data::load(&args)?;
    let mut report = serde_json::Map::new();
    report.insert("vigie_version".into(), json!(env!("CARGO_PKG_VERSION")));
    report.insert(
        "threads".into(),
        json!(std::thread::available_parallelism().map(usize::from).unwrap_or(1)),
    );
    report.insert("train_rows".into(), json!(data.train.n_rows()));
    report.insert("test_rows".into(), json!(data.test.n_rows()));
    report.insert("inputs".into(), json!(data.inputs.len()));
    report.insert("positive_class".into(), json!(data.classes.get(1)));
    let mut predictions = Vec::new();
    for algorithm in &args.models {
        let (result, probabilities) = measure(&data, &args, algorithm)?;
        report.insert(algorithm.clone(), result);
        predictions.push((algorithm.clone(), probabilities));
    }
    report.insert("peak_rss_mib".into(), json!(peak_rss_mib()));
    if let Some(path) = &args.predictions {
        write_predictions(path, &predictions)?;
    }
    println!("{}", serde_json::to_string_pretty(&Json::Object(report))?);
    Ok(())
}
