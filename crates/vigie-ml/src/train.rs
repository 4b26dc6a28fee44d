//! Training end to end: target, cross-validation, algorithm choice and
//! hyper-parameter search, decision threshold, final fit, model card.
//!
//! Every fold fits its own [`Pipeline`] on its training rows only, so no
//! statistic of a test row (mean, category list, target mean) leaks into the
//! model that scores it. The final model is refitted on every row with the
//! winning candidate's parameters.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Map, Value as Json};
use vigie_core::Frame;

use crate::error::{MlError, Result};
use crate::estimator::{Estimator, TrainSet};
use crate::matrix::{Matrix, Task};
use crate::metrics;
use crate::model::{DataFingerprint, MetricSummary, Model, ModelCard, predict_estimator};
use crate::search::{SearchKind, Space, merge};
use crate::split::{self, Fold};
use crate::target::{self, TaskChoice};
use crate::threshold::{ThresholdGoal, choose_threshold};
use crate::transform::{Encoding, Impute, Pipeline, PipelineSpec, Scale, Target};
use crate::{forest, gbdt, linear, mlp};

/// The learning algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// Gradient-boosted trees.
    Gbdt,
    /// Random forest.
    RandomForest,
    /// Logistic regression.
    Logistic,
    /// Linear SVM with calibrated probabilities.
    LinearSvm,
    /// Multi-layer perceptron.
    Mlp,
    /// Linear (ridge) regression.
    Linear,
}

impl std::str::FromStr for Algorithm {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Ok(match s {
            "gbdt" => Algorithm::Gbdt,
            "random-forest" => Algorithm::RandomForest,
            "logistic" => Algorithm::Logistic,
            "linear-svm" => Algorithm::LinearSvm,
            "mlp" => Algorithm::Mlp,
            "linear" => Algorithm::Linear,
            other => {
                return Err(format!(
                    "unknown algorithm {other:?}, expected auto, gbdt, random-forest, logistic, linear-svm, mlp or linear"
                ));
            }
        })
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Json {
    serde_json::to_value(value).unwrap_or(Json::Null)
}

fn from_json<T: serde::de::DeserializeOwned>(algorithm: Algorithm, params: &Json) -> Result<T> {
    serde_json::from_value(params.clone())
        .map_err(|e| MlError::param(algorithm.name(), e.to_string()))
}

impl Algorithm {
    /// The name used on the command line and in model cards.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Gbdt => "gbdt",
            Algorithm::RandomForest => "random-forest",
            Algorithm::Logistic => "logistic",
            Algorithm::LinearSvm => "linear-svm",
            Algorithm::Mlp => "mlp",
            Algorithm::Linear => "linear",
        }
    }

    /// Whether the algorithm handles `task`.
    pub fn supports(self, task: Task) -> bool {
        match self {
            Algorithm::Gbdt | Algorithm::RandomForest | Algorithm::Mlp => true,
            Algorithm::Logistic => task.is_classification(),
            Algorithm::LinearSvm => task == Task::Binary,
            Algorithm::Linear => task == Task::Regression,
        }
    }

    /// Default hyper-parameters as JSON.
    pub fn default_params(self) -> Json {
        match self {
            Algorithm::Gbdt => to_json(&gbdt::GbdtParams::default()),
            Algorithm::RandomForest => to_json(&forest::ForestParams::default()),
            Algorithm::Logistic => to_json(&linear::LogisticParams::default()),
            Algorithm::LinearSvm => to_json(&linear::SvmParams::default()),
            Algorithm::Mlp => to_json(&mlp::MlpParams::default()),
            Algorithm::Linear => to_json(&linear::LinearParams::default()),
        }
    }

    /// The space searched when none is declared.
    pub fn default_space(self) -> Space {
        let text = match self {
            Algorithm::Gbdt => {
                "learning_rate=0.02..0.2;max_leaves=8..96;min_child_weight=0.1..20.0;l2=0.01..10.0;subsample=0.6..1.0;colsample=0.5..1.0"
            }
            Algorithm::RandomForest => "n_trees=100,200,400;min_samples_leaf=1..20",
            Algorithm::Logistic => "l2=0.00001..1.0",
            Algorithm::LinearSvm => "l2=0.00001..1.0",
            Algorithm::Mlp => "learning_rate=0.0003..0.01;l2=0.000001..0.01",
            Algorithm::Linear => "l2=0.0..10.0",
        };
        Space::parse(text).unwrap_or_default()
    }

    /// The transforms the algorithm wants.
    pub fn pipeline_spec(self) -> PipelineSpec {
        match self {
            Algorithm::Gbdt | Algorithm::RandomForest => PipelineSpec::for_trees(),
            Algorithm::Logistic | Algorithm::LinearSvm | Algorithm::Mlp | Algorithm::Linear => {
                PipelineSpec::for_linear()
            }
        }
    }
}

/// Weighting of classes for imbalanced data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClassWeight {
    /// Every row counts once.
    #[default]
    None,
    /// Each class weighs as much as the others in total (`n / (k * count)`).
    Balanced,
}

impl std::str::FromStr for ClassWeight {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "none" => Ok(ClassWeight::None),
            "balanced" => Ok(ClassWeight::Balanced),
            other => Err(format!("unknown class weight {other:?}, expected none or balanced")),
        }
    }
}

/// How rows are split into folds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum FoldScheme {
    /// Stratified by class for classification, shuffled K-fold for regression.
    #[default]
    Auto,
    /// Rows sharing a value of this column stay in one fold (e.g. a customer id).
    Group(String),
    /// Ordered by this column: each fold tests on rows later than its training rows.
    Time(String),
}

impl std::str::FromStr for FoldScheme {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.split_once(':') {
            None if s == "auto" || s == "stratified" => Ok(FoldScheme::Auto),
            Some(("group", column)) if !column.is_empty() => {
                Ok(FoldScheme::Group(column.to_owned()))
            }
            Some(("time", column)) if !column.is_empty() => Ok(FoldScheme::Time(column.to_owned())),
            _ => Err(format!(
                "unknown fold scheme {s:?}, expected stratified, group:COLUMN or time:COLUMN"
            )),
        }
    }
}

/// Changes to the algorithm's transform recipe.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PipelineOverrides {
    /// Missing-number filling (`Some(None)` keeps them missing).
    pub impute: Option<Option<Impute>>,
    /// Add missing indicators.
    pub missing_indicator: Option<bool>,
    /// Scaling (`Some(None)` turns it off).
    pub scale: Option<Option<Scale>>,
    /// Category encoding.
    pub encoding: Option<Encoding>,
    /// Rare-category threshold.
    pub min_frequency: Option<usize>,
}

impl PipelineOverrides {
    fn apply(&self, mut spec: PipelineSpec) -> PipelineSpec {
        if let Some(impute) = self.impute {
            spec.numeric.impute = impute;
        }
        if let Some(indicator) = self.missing_indicator {
            spec.numeric.missing_indicator = indicator;
        }
        if let Some(scale) = self.scale {
            spec.numeric.scale = scale;
        }
        if let Some(encoding) = self.encoding {
            spec.text.encoding = encoding;
        }
        if let Some(min_frequency) = self.min_frequency {
            spec.text.min_frequency = min_frequency;
        }
        spec
    }
}

/// What to train.
#[derive(Debug, Clone)]
pub struct TrainRequest {
    /// Model name.
    pub name: String,
    /// Label column.
    pub label: String,
    /// Positive class of a binary task (default: the minority class).
    pub positive: Option<String>,
    /// Columns not to use as features.
    pub ignore: Vec<String>,
    /// The task.
    pub task: TaskChoice,
    /// The algorithm, or `None` to pick the best by cross-validation.
    pub algorithm: Option<Algorithm>,
    /// Hyper-parameters set by the user, over the algorithm's defaults.
    pub params: Map<String, Json>,
    /// Folds (below 2: one 80/20 hold-out, stratified or time-ordered).
    pub cv: usize,
    /// How rows are split into folds.
    pub folds: FoldScheme,
    /// Changes to the transform recipe.
    pub transforms: PipelineOverrides,
    /// Search strategy.
    pub search: SearchKind,
    /// The space searched (default: the algorithm's).
    pub space: Option<Space>,
    /// Most candidates tried.
    pub trials: usize,
    /// No new candidate starts after this long.
    pub time_budget: Option<Duration>,
    /// Seed of every random choice.
    pub seed: u64,
    /// What the binary decision threshold is chosen for.
    pub threshold_goal: ThresholdGoal,
    /// Class weighting.
    pub class_weight: ClassWeight,
    /// Where the data came from (for the card).
    pub source: String,
}

impl TrainRequest {
    /// A request with Vigie's defaults.
    pub fn new(name: &str, label: &str) -> Self {
        TrainRequest {
            name: name.to_owned(),
            label: label.to_owned(),
            positive: None,
            ignore: Vec::new(),
            task: TaskChoice::Auto,
            algorithm: None,
            params: Map::new(),
            cv: 5,
            folds: FoldScheme::Auto,
            transforms: PipelineOverrides::default(),
            search: SearchKind::None,
            space: None,
            trials: 20,
            time_budget: None,
            seed: 42,
            threshold_goal: ThresholdGoal::MaxF1,
            class_weight: ClassWeight::None,
            source: String::new(),
        }
    }
}

/// Progress reports from a long training (the CLI draws bars from them).
pub trait Progress: Sync {
    /// A stage of `total` steps starts.
    fn stage(&self, name: &str, total: u64);
    /// One step of the current stage is done.
    fn advance(&self);
    /// Something worth telling the user.
    fn note(&self, text: &str);
}

/// Progress that goes nowhere.
pub struct NoProgress;

impl Progress for NoProgress {
    fn stage(&self, _: &str, _: u64) {}
    fn advance(&self) {}
    fn note(&self, _: &str) {}
}

/// One candidate's cross-validated result.
#[derive(Debug, Clone, PartialEq)]
pub struct Trial {
    /// Its algorithm.
    pub algorithm: Algorithm,
    /// Its full parameters.
    pub params: Json,
    /// Its metrics over folds.
    pub cv: BTreeMap<String, MetricSummary>,
    /// Per-fold metrics, in fold order.
    pub folds: Vec<BTreeMap<String, f64>>,
    /// The primary metric's mean (what candidates are ranked by).
    pub score: f64,
    /// The threshold chosen on its out-of-fold predictions.
    pub threshold: Option<f64>,
    /// Seconds it took.
    pub seconds: f64,
    /// Boosting rounds per fold (early stopping), when relevant.
    rounds: Vec<usize>,
    /// Boosting: the validation metric's name and, per round, its mean over
    /// the folds that reached that round (early stopping ends folds apart).
    pub round_history: Option<(String, Vec<f64>)>,
}

/// The result of [`train`].
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// The final model (version 0 until saved).
    pub model: Model,
    /// Every candidate tried, in order.
    pub trials: Vec<Trial>,
    /// The index of the winner in `trials`.
    pub best: usize,
}

struct Context<'a> {
    frame: &'a Frame,
    inputs: Vec<&'a str>,
    y: Vec<f32>,
    weights: Option<Vec<f32>>,
    task: Task,
    folds: Vec<Fold>,
    seed: u64,
    goal: ThresholdGoal,
    transforms: PipelineOverrides,
}

impl Context<'_> {
    fn subset(&self, rows: &[usize]) -> (Vec<f32>, Option<Vec<f32>>) {
        let y = rows.iter().map(|&i| self.y[i]).collect();
        let w = self.weights.as_ref().map(|w| rows.iter().map(|&i| w[i]).collect());
        (y, w)
    }
}

/// A fitted estimator with what its training learned along the way.
struct Fitted {
    estimator: Estimator,
    /// Boosting rounds kept (early stopping).
    rounds: Option<usize>,
    /// The validation metric after each boosting round, and its name.
    history: Option<(String, Vec<f64>)>,
    /// A forest's out-of-bag predictions per training row (NaN where never out of bag).
    oob: Option<Vec<f64>>,
}

/// Fits one estimator; GBDT with early stopping carves its own validation rows out of `train`.
fn fit_estimator(
    algorithm: Algorithm,
    params: &Json,
    train: &TrainSet<'_>,
    seed: u64,
) -> Result<Fitted> {
    match algorithm {
        Algorithm::Gbdt => {
            let params: gbdt::GbdtParams = from_json(algorithm, params)?;
            if params.early_stopping_rounds.is_some() && train.x.n_rows >= 50 {
                let (inner, valid) = if train.task.is_classification() {
                    split::stratified_train_test(train.y, 0.1, seed ^ 0xE5)?
                } else {
                    split::train_test(train.y.len(), 0.1, seed ^ 0xE5)?
                };
                let pick = |rows: &[usize]| -> (Matrix, Vec<f32>, Option<Vec<f32>>) {
                    (
                        train.x.take_rows(rows),
                        rows.iter().map(|&i| train.y[i]).collect(),
                        train.weights.map(|w| rows.iter().map(|&i| w[i]).collect()),
                    )
                };
                let (xi, yi, wi) = pick(&inner);
                let (xv, yv, wv) = pick(&valid);
                let inner_set = TrainSet { x: &xi, y: &yi, weights: wi.as_deref(), ..*train };
                let valid_set = TrainSet { x: &xv, y: &yv, weights: wv.as_deref(), ..*train };
                let fitted = gbdt::fit(&params, &inner_set, Some(&valid_set), seed)?;
                Ok(Fitted {
                    estimator: Estimator::Trees(fitted.ensemble),
                    rounds: Some(fitted.rounds),
                    history: Some((fitted.history_metric, fitted.history)),
                    oob: None,
                })
            } else {
                let fitted = gbdt::fit(&params, train, None, seed)?;
                Ok(Fitted {
                    estimator: Estimator::Trees(fitted.ensemble),
                    rounds: Some(fitted.rounds),
                    history: None,
                    oob: None,
                })
            }
        }
        Algorithm::RandomForest => {
            let params: forest::ForestParams = from_json(algorithm, params)?;
            let fitted = forest::fit(&params, train, seed)?;
            Ok(Fitted {
                estimator: Estimator::Trees(fitted.ensemble),
                rounds: None,
                history: None,
                oob: fitted.oob_predictions,
            })
        }
        Algorithm::Logistic => {
            let params: linear::LogisticParams = from_json(algorithm, params)?;
            Ok(Fitted {
                estimator: Estimator::Linear(linear::fit_logistic(&params, train, seed)?),
                rounds: None,
                history: None,
                oob: None,
            })
        }
        Algorithm::LinearSvm => {
            let params: linear::SvmParams = from_json(algorithm, params)?;
            Ok(Fitted {
                estimator: Estimator::Linear(linear::fit_svm(&params, train, seed)?),
                rounds: None,
                history: None,
                oob: None,
            })
        }
        Algorithm::Linear => {
            let params: linear::LinearParams = from_json(algorithm, params)?;
            Ok(Fitted {
                estimator: Estimator::Linear(linear::fit_linear(&params, train, seed)?),
                rounds: None,
                history: None,
                oob: None,
            })
        }
        Algorithm::Mlp => {
            let params: mlp::MlpParams = from_json(algorithm, params)?;
            Ok(Fitted {
                estimator: Estimator::Mlp(mlp::fit(&params, train, seed)?),
                rounds: None,
                history: None,
                oob: None,
            })
        }
    }
}

/// Fits pipeline and estimator on `rows` of the frame.
fn fit_rows(
    ctx: &Context<'_>,
    algorithm: Algorithm,
    params: &Json,
    rows: &[usize],
) -> Result<(Pipeline, Fitted)> {
    let (y, w) = ctx.subset(rows);
    let pipeline = Pipeline::fit(
        &ctx.transforms.apply(algorithm.pipeline_spec()),
        ctx.frame,
        &ctx.inputs,
        rows,
        Target { y: &y, task: ctx.task },
        ctx.seed,
    )?;
    let x = pipeline.transform_training(ctx.frame, rows)?;
    let set = TrainSet {
        x: &x,
        y: &y,
        weights: w.as_deref(),
        features: &pipeline.features,
        task: ctx.task,
    };
    let fitted = fit_estimator(algorithm, params, &set, ctx.seed)?;
    Ok((pipeline, fitted))
}

fn cross_validate(
    ctx: &Context<'_>,
    algorithm: Algorithm,
    params: &Json,
    progress: &dyn Progress,
) -> Result<Trial> {
    let started = Instant::now();
    let n_outputs = ctx.task.n_outputs();
    let mut oof = vec![f64::NAN; ctx.y.len() * n_outputs];
    let mut rounds = Vec::new();
    let mut histories: Vec<(String, Vec<f64>)> = Vec::new();
    for fold in &ctx.folds {
        let (pipeline, fitted) = fit_rows(ctx, algorithm, params, &fold.train)?;
        let x_test = pipeline.transform(&ctx.frame.take(&fold.test))?;
        let predictions = predict_estimator(&fitted.estimator, &x_test);
        for (j, &row) in fold.test.iter().enumerate() {
            oof[row * n_outputs..(row + 1) * n_outputs]
                .copy_from_slice(&predictions[j * n_outputs..(j + 1) * n_outputs]);
        }
        rounds.extend(fitted.rounds);
        histories.extend(fitted.history.filter(|(_, values)| !values.is_empty()));
        progress.advance();
    }
    let round_history = histories.first().map(|(metric, _)| {
        let longest = histories.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
        let means = (0..longest)
            .map(|round| {
                let reached: Vec<f64> =
                    histories.iter().filter_map(|(_, v)| v.get(round).copied()).collect();
                reached.iter().sum::<f64>() / reached.len() as f64
            })
            .collect();
        (metric.clone(), means)
    });
    // The threshold is chosen once on all out-of-fold predictions, then every fold is scored at it.
    let scored: Vec<usize> = (0..ctx.y.len()).filter(|&i| !oof[i * n_outputs].is_nan()).collect();
    let threshold = (ctx.task == Task::Binary).then(|| {
        let y: Vec<f32> = scored.iter().map(|&i| ctx.y[i]).collect();
        let p: Vec<f64> = scored.iter().map(|&i| oof[i]).collect();
        choose_threshold(&y, &p, ctx.goal)
    });
    let folds: Vec<BTreeMap<String, f64>> = ctx
        .folds
        .iter()
        .map(|fold| {
            let y: Vec<f32> = fold.test.iter().map(|&i| ctx.y[i]).collect();
            let p: Vec<f64> = fold
                .test
                .iter()
                .flat_map(|&i| oof[i * n_outputs..(i + 1) * n_outputs].iter().copied())
                .collect();
            metrics::evaluate(ctx.task, &y, &p, threshold.unwrap_or(0.5))
        })
        .collect();
    let mut cv = BTreeMap::new();
    if let Some(first) = folds.first() {
        for name in first.keys() {
            let values: Vec<f64> =
                folds.iter().map(|f| f.get(name).copied().unwrap_or(f64::NAN)).collect();
            cv.insert(name.clone(), MetricSummary::of(&values));
        }
    }
    let primary = metrics::primary_metric(ctx.task);
    let score = cv.get(primary).map_or(f64::NAN, |m| m.mean);
    Ok(Trial {
        algorithm,
        params: params.clone(),
        cv,
        folds,
        score,
        threshold,
        seconds: started.elapsed().as_secs_f64(),
        rounds,
        round_history,
    })
}

fn make_folds(
    frame: &Frame,
    y: &[f32],
    task: Task,
    cv: usize,
    scheme: &FoldScheme,
    seed: u64,
) -> Result<Vec<Fold>> {
    let column_values = |name: &str| -> Result<&vigie_core::ColumnData> {
        Ok(&frame.column(name).map_err(|e| MlError::InvalidData(format!("--folds: {e}")))?.data)
    };
    match scheme {
        FoldScheme::Auto if cv >= 2 => {
            if task.is_classification() {
                split::stratified_kfold(y, cv, seed)
            } else {
                split::kfold(y.len(), cv, seed)
            }
        }
        FoldScheme::Auto => {
            let (train, test) = if task.is_classification() {
                split::stratified_train_test(y, 0.2, seed)?
            } else {
                split::train_test(y.len(), 0.2, seed)?
            };
            Ok(vec![Fold { train, test }])
        }
        FoldScheme::Group(name) => {
            let groups: Vec<u64> = match column_values(name)? {
                vigie_core::ColumnData::Text(text) => {
                    text.codes.iter().map(|&c| u64::from(c)).collect()
                }
                vigie_core::ColumnData::Numeric(v) | vigie_core::ColumnData::Boolean(v) => {
                    v.iter().map(|x| x.to_bits()).collect()
                }
            };
            split::group_kfold(&groups, cv.max(2))
        }
        FoldScheme::Time(name) => {
            let order: Vec<f64> = match column_values(name)? {
                vigie_core::ColumnData::Numeric(v) | vigie_core::ColumnData::Boolean(v) => {
                    v.clone()
                }
                vigie_core::ColumnData::Text(_) => {
                    return Err(MlError::InvalidData(format!(
                        "--folds time:{name}: the column must hold numbers, dates or timestamps"
                    )));
                }
            };
            if cv >= 2 {
                split::time_series_split(&order, cv)
            } else {
                let (train, test) = split::time_ordered_train_test(&order, 0.2)?;
                Ok(vec![Fold { train, test }])
            }
        }
    }
}

fn better(a: f64, b: f64, higher: bool) -> bool {
    if b.is_nan() {
        return !a.is_nan();
    }
    if higher { a > b } else { a < b }
}

/// Trains a model on `frame` as `request` says, reporting to `progress`.
pub fn train(
    frame: &Frame,
    request: &TrainRequest,
    progress: &dyn Progress,
) -> Result<TrainOutcome> {
    let started = Instant::now();
    for name in &request.ignore {
        frame.column(name).map_err(|e| MlError::InvalidData(format!("--ignore: {e}")))?;
    }
    let target = target::prepare(frame, &request.label, request.task, request.positive.as_deref())?;
    let inputs: Vec<&str> = frame
        .columns()
        .iter()
        .map(|c| c.name.as_str())
        .filter(|name| *name != request.label && !request.ignore.iter().any(|i| i == name))
        // The column that defines folds is not a feature: a group id or a timestamp would leak.
        .filter(|name| !matches!(&request.folds, FoldScheme::Group(c) | FoldScheme::Time(c) if c == name))
        .collect();
    if inputs.is_empty() {
        return Err(MlError::InvalidData(
            "no feature columns left after the label and --ignore".into(),
        ));
    }
    let task = target.task;
    let weights = match request.class_weight {
        ClassWeight::Balanced if task.is_classification() => {
            let k = task.n_outputs().max(2);
            let mut counts = vec![0usize; k];
            for &y in &target.y {
                counts[(y as usize).min(k - 1)] += 1;
            }
            let n = target.y.len() as f32;
            Some(
                target
                    .y
                    .iter()
                    .map(|&y| n / (k as f32 * counts[(y as usize).min(k - 1)] as f32))
                    .collect(),
            )
        }
        _ => None,
    };
    let folds = make_folds(frame, &target.y, task, request.cv, &request.folds, request.seed)?;
    let ctx = Context {
        frame,
        inputs,
        y: target.y.clone(),
        weights,
        task,
        folds,
        seed: request.seed,
        goal: request.threshold_goal,
        transforms: request.transforms.clone(),
    };

    // The candidates: (algorithm, full parameters).
    let algorithms: Vec<Algorithm> = match request.algorithm {
        Some(algorithm) => {
            if !algorithm.supports(task) {
                return Err(MlError::InvalidData(format!(
                    "algorithm {} cannot learn a {} task",
                    algorithm.name(),
                    task.name()
                )));
            }
            vec![algorithm]
        }
        None if request.search != SearchKind::None => vec![Algorithm::Gbdt],
        None if task == Task::Regression => {
            vec![Algorithm::Gbdt, Algorithm::RandomForest, Algorithm::Linear]
        }
        None => vec![Algorithm::Gbdt, Algorithm::RandomForest, Algorithm::Logistic],
    };
    let mut candidates: Vec<(Algorithm, Json)> = Vec::new();
    for &algorithm in &algorithms {
        let base = merge(&algorithm.default_params(), &request.params);
        match request.search {
            SearchKind::None => candidates.push((algorithm, base)),
            kind => {
                let space = request.space.clone().unwrap_or_else(|| algorithm.default_space());
                let draws = if kind == SearchKind::Grid {
                    space.grid(request.trials)
                } else {
                    space.random(request.trials, request.seed)
                };
                candidates.extend(draws.iter().map(|draw| (algorithm, merge(&base, draw))));
            }
        }
    }
    if candidates.is_empty() {
        return Err(MlError::param("trials", "the search produced no candidate"));
    }

    let primary = metrics::primary_metric(task);
    let higher = metrics::higher_is_better(primary);
    progress.stage(
        &format!("cross-validating {} candidate(s)", candidates.len()),
        (candidates.len() * ctx.folds.len()) as u64,
    );
    let mut trials: Vec<Trial> = Vec::new();
    let mut best = 0;
    for (index, (algorithm, params)) in candidates.iter().enumerate() {
        if let Some(budget) = request.time_budget
            && !trials.is_empty()
            && started.elapsed() >= budget
        {
            progress.note(&format!(
                "time budget reached after {} of {} candidates",
                trials.len(),
                candidates.len()
            ));
            break;
        }
        let trial = cross_validate(&ctx, *algorithm, params, progress)?;
        progress.note(&format!(
            "{} #{}: {primary} {:.5}",
            algorithm.name(),
            index + 1,
            trial.score
        ));
        if trials.is_empty() || better(trial.score, trials[best].score, higher) {
            best = trials.len();
        }
        trials.push(trial);
    }
    let winner = &trials[best];

    // Final fit on every row; boosting uses the rounds early stopping found in the folds.
    progress.stage(&format!("fitting final {} on all rows", winner.algorithm.name()), 1);
    let mut final_params = winner.params.clone();
    if winner.algorithm == Algorithm::Gbdt
        && !winner.rounds.is_empty()
        && let Json::Object(map) = &mut final_params
    {
        let mut rounds = winner.rounds.clone();
        rounds.sort_unstable();
        let median = rounds[rounds.len() / 2].max(1);
        map.insert("n_rounds".into(), Json::from(median));
        map.insert("early_stopping_rounds".into(), Json::Null);
    }
    let all: Vec<usize> = (0..frame.n_rows()).collect();
    let (pipeline, fitted) = fit_rows(&ctx, winner.algorithm, &final_params, &all)?;
    progress.advance();
    // A forest scores itself on the rows each tree did not see.
    let oob = fitted
        .oob
        .map(|predictions| {
            let n_outputs = task.n_outputs();
            let scored: Vec<usize> = (0..ctx.y.len())
                .filter(|&i| predictions.get(i * n_outputs).is_some_and(|p| !p.is_nan()))
                .collect();
            let y: Vec<f32> = scored.iter().map(|&i| ctx.y[i]).collect();
            let p: Vec<f64> = scored
                .iter()
                .flat_map(|&i| predictions[i * n_outputs..(i + 1) * n_outputs].iter().copied())
                .collect();
            metrics::evaluate(task, &y, &p, winner.threshold.unwrap_or(0.5))
        })
        .unwrap_or_default();

    let mut used: Vec<&str> = ctx.inputs.clone();
    used.push(&request.label);
    let card = ModelCard {
        name: request.name.clone(),
        version: 0,
        algorithm: winner.algorithm.name().to_owned(),
        task,
        label: request.label.clone(),
        classes: target.classes,
        params: final_params,
        cv: winner.cv.clone(),
        cv_folds: if ctx.folds.len() >= 2 { ctx.folds.len() } else { 0 },
        oob,
        threshold: winner.threshold,
        threshold_goal: (task == Task::Binary).then(|| request.threshold_goal.to_string()),
        data: DataFingerprint::of(frame, &used, &request.source),
        seed: request.seed,
        train_seconds: started.elapsed().as_secs_f64(),
        trained_at: String::new(),
        vigie_version: env!("CARGO_PKG_VERSION").to_owned(),
        store: None,
    };
    let mut model = Model { card, pipeline, estimator: fitted.estimator };
    model.validate()?;
    Ok(TrainOutcome { model, trials, best })
}
