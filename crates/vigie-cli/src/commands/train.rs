//! `vigie train`: read the table, train, save a new version, print the summary.

use std::time::Duration;

use serde_json::{Map, Value as Json, json};
use vigie_core::config::{ModelSpec, ModelTask};
use vigie_ml::search::{SearchKind, Space};
use vigie_ml::target::TaskChoice;
use vigie_ml::threshold::ThresholdGoal;
use vigie_ml::train::{Algorithm, ClassWeight, FoldScheme, PipelineOverrides, TrainRequest, train};
use vigie_ml::transform::{parse_encoding, parse_impute, parse_scale};

use vigie_ml::train::Trial;
use vigie_ml::{Model, SavedModel};
use vigie_registry::{NewRun, Registry, RunBatch, RunStatus};

use super::{Project, UsageError, column_types, now_rfc3339, read_table};
use crate::cli::{Format, TrainArgs};
use crate::output;
use crate::output::outln;
use crate::progress::{Bars, Spinner};

fn usage<T, E: std::fmt::Display>(flag: &str, result: Result<T, E>) -> anyhow::Result<T> {
    result.map_err(|e| UsageError(format!("{flag}: {e}")).into())
}

pub(crate) fn parse_params(pairs: &[String]) -> anyhow::Result<Map<String, Json>> {
    let mut params = Map::new();
    for pair in pairs {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| UsageError(format!("--param {pair:?}: expected KEY=VALUE")))?;
        // Values are JSON when they parse as JSON (numbers, true, null, [..]), else
        // `none` (null, as in a search space) or strings.
        let value =
            serde_json::from_str(value).unwrap_or_else(|_| vigie_ml::search::parse_scalar(value));
        params.insert(key.trim().to_owned(), value);
    }
    Ok(params)
}

pub fn run(project: &Project, args: TrainArgs) -> anyhow::Result<()> {
    if let Some(model) = &args.from_store {
        let config = project.config()?;
        let spec = config.models.get(model);
        if let Some(forecast) = spec.and_then(ModelSpec::forecast) {
            return super::forecast::train_declared(project, args, forecast);
        }
        if let Some(spec) = spec
            && args.task == "forecast"
        {
            return Err(UsageError(format!(
                "--task forecast: model {model:?} of vigie.toml is a {} model; a forecast model \
                 says task = \"forecast\" there",
                spec.task().name()
            ))
            .into());
        }
    }
    if args.task == "forecast" || (args.task == "auto" && args.target.is_some()) {
        return super::forecast::train(project, args);
    }
    let forecast_flags: Vec<&str> = [
        ("--target", args.target.is_some()),
        ("--time", args.time.is_some()),
        ("--series", !args.series.is_empty()),
        ("--horizon", args.horizon.is_some()),
        ("--frequency", args.frequency.is_some()),
        ("--backtest-windows", args.backtest_windows.is_some()),
        ("--backtest-refit", args.backtest_refit),
        ("--aggregate", args.aggregate.is_some()),
        ("--timezone", args.timezone.is_some()),
        ("--non-negative", args.non_negative),
        ("--strategies", !args.strategies.is_empty()),
        ("--train-window", args.train_window.is_some()),
        ("--covariates", !args.covariates.is_empty()),
        ("--future-covariates", !args.future_covariates.is_empty()),
    ]
    .into_iter()
    .filter_map(|(flag, set)| set.then_some(flag))
    .collect();
    if !forecast_flags.is_empty() {
        return Err(
            UsageError(format!("{}: for --task forecast only", forecast_flags.join(", "))).into()
        );
    }
    let Fitted { trials, best, model, version, run_id, path, refreshed } = fit(project, &args)?;
    let card = &model.card;

    match args.format {
        Format::Json => {
            let cv: Map<String, Json> = card
                .cv
                .iter()
                .map(|(k, m)| (k.clone(), json!({"mean": m.mean, "std": m.std})))
                .collect();
            let trials: Vec<Json> = trials
                .iter()
                .map(|t| json!({"algorithm": t.algorithm.name(), "params": t.params, "score": t.score, "seconds": t.seconds}))
                .collect();
            output::json(&json!({
                "model": card.name,
                "version": card.version,
                "algorithm": card.algorithm,
                "task": card.task.name(),
                "classes": card.classes,
                "params": card.params,
                "cv": cv,
                "cv_folds": card.cv_folds,
                "oob": card.oob,
                "threshold": card.threshold,
                "threshold_goal": card.threshold_goal,
                "train_seconds": card.train_seconds,
                "rows": card.data.rows,
                "data_sha256": card.data.sha256,
                "trials": trials,
                "run_id": run_id,
                "aliases": version.aliases,
                "path": path.display().to_string(),
                "refreshed": refreshed,
            }))?;
        }
        Format::Text => {
            if !refreshed.is_empty() {
                outln!("{}", output::sentence(&refreshed))?;
            }
            outln!(
                "Trained {} v{}: {} {} on {} rows × {} columns in {:.1}s",
                card.name,
                card.version,
                card.algorithm,
                card.task.name(),
                card.data.rows,
                card.data.columns,
                card.train_seconds
            )?;
            if trials.len() > 1 {
                let mut table = output::table(&["#", "algorithm", "score", "seconds"]);
                for (i, t) in trials.iter().enumerate() {
                    let mark = if i == best { " ←" } else { "" };
                    table.add_row(vec![
                        format!("{}{mark}", i + 1),
                        t.algorithm.name().to_owned(),
                        output::metric(t.score),
                        format!("{:.1}", t.seconds),
                    ]);
                }
                outln!("{table}")?;
            }
            let folds = if card.cv_folds >= 2 {
                format!("{}-fold CV", card.cv_folds)
            } else {
                "20% hold-out".to_owned()
            };
            let mut table = output::table(&["metric", &format!("{folds} mean"), "std"]);
            for (name, summary) in &card.cv {
                table.add_row(vec![
                    name.clone(),
                    output::metric(summary.mean),
                    output::metric(summary.std),
                ]);
            }
            outln!("{table}")?;
            if let (Some(threshold), Some(goal)) = (card.threshold, &card.threshold_goal) {
                outln!(
                    "Decision threshold {threshold:.4} (chosen for {goal}); positive class {:?}",
                    card.classes.get(1).cloned().unwrap_or_default()
                )?;
            }
            outln!("{}", output::registered(&version, &run_id))?;
        }
    }
    Ok(())
}

/// What a tabular model of vigie.toml sets, below the command line's flags.
#[derive(Default)]
struct Declared {
    label: Option<String>,
    positive: Option<String>,
    algorithm: Option<String>,
    task: ModelTask,
}

/// A trained and registered version.
pub struct Fitted {
    /// Every candidate tried, in order.
    pub trials: Vec<Trial>,
    /// The index of the winner in `trials`.
    pub best: usize,
    /// The registered model.
    pub model: Model,
    /// Its registry entry.
    pub version: vigie_registry::VersionInfo,
    /// The tracked run.
    pub run_id: String,
    /// Where its file is.
    pub path: std::path::PathBuf,
    /// A model of vigie.toml: what bringing its inputs up to date did, one phrase a step.
    pub refreshed: Vec<String>,
}

/// Trains a tabular model as the arguments say, tracks the run and registers a new version.
pub fn fit(project: &Project, args: &TrainArgs) -> anyhow::Result<Fitted> {
    let mut refreshed = Vec::new();
    // The training table: a file, or a model of vigie.toml built from the feature store.
    let (frame, source, declared, store_inputs) = match (&args.from_store, &args.data) {
        (Some(model), _) => {
            let store = super::features::store(project)?;
            refreshed = super::features::refresh_model_inputs(&store, model)?;
            let spinner =
                Spinner::new("joining the labels with their features as of each row's time");
            let training = store.training_table(model);
            spinner.finish();
            let training = training?;
            let spec = store.config().models.get(model);
            let frame = vigie_connectors::files::frame_from_batches(
                std::path::Path::new("vigie.toml"),
                &training.table.schema(),
                std::slice::from_ref(&training.table),
            )?;
            let declared = Declared {
                label: Some(training.label),
                positive: spec.and_then(|s| s.positive.clone()),
                algorithm: spec.and_then(|s| s.algorithm.clone()),
                task: spec.map_or(ModelTask::Auto, ModelSpec::task),
            };
            (frame, training.source, declared, Some(training.inputs))
        }
        (None, Some(data)) => {
            let frame = read_table(data, &column_types(&args.column_types)?)?;
            (frame, data.display().to_string(), Declared::default(), None)
        }
        (None, None) => {
            return Err(UsageError("give --data FILE or a MODEL of vigie.toml".into()).into());
        }
    };
    let label = args
        .label
        .clone()
        .or(declared.label)
        .ok_or_else(|| UsageError("--label COLUMN is required".into()))?;
    let name = match (&args.name, &args.from_store, &args.data) {
        (Some(name), _, _) => name.clone(),
        (None, Some(model), _) => model.clone(),
        (None, None, Some(data)) => {
            data.file_stem().and_then(|s| s.to_str()).unwrap_or("model").to_owned()
        }
        (None, None, None) => "model".to_owned(),
    };
    vigie_registry::validate_name(&name)?;
    let mut request = TrainRequest::new(&name, &label);
    request.positive = args.positive.clone().or(declared.positive);
    request.ignore = args.ignore.clone();
    // The command line's task, else vigie.toml's.
    let task = if args.task == "auto" { declared.task.name() } else { args.task.as_str() };
    request.task = usage("--task", task.parse::<TaskChoice>())?;
    let algorithm = match (args.algorithm.as_str(), &declared.algorithm) {
        ("auto", Some(from_spec)) => from_spec.as_str(),
        (given, _) => given,
    };
    request.algorithm = match algorithm {
        "auto" => None,
        other => Some(usage("--algorithm", other.parse::<Algorithm>())?),
    };
    request.cv = args.cv;
    request.folds = usage("--folds", args.folds.parse::<FoldScheme>())?;
    request.transforms = PipelineOverrides {
        impute: args.impute.as_deref().map(|t| usage("--impute", parse_impute(t))).transpose()?,
        missing_indicator: args.missing_indicator,
        scale: args.scale.as_deref().map(|t| usage("--scale", parse_scale(t))).transpose()?,
        encoding: args
            .encode
            .as_deref()
            .map(|t| usage("--encode", parse_encoding(t)))
            .transpose()?,
        min_frequency: args.min_frequency,
    };
    request.search = usage("--search", args.search.parse::<SearchKind>())?;
    request.space = args.space.as_deref().map(Space::parse).transpose()?;
    if request.search == SearchKind::None && request.space.is_some() {
        return Err(UsageError("--space needs --search grid or --search random".into()).into());
    }
    if args.trials == 0 {
        return Err(UsageError("--trials must be at least 1".into()).into());
    }
    request.trials = args.trials;
    request.time_budget = match args.time_budget {
        Some(secs) if secs.is_finite() && secs > 0.0 => Some(Duration::from_secs_f64(secs)),
        Some(secs) => {
            return Err(UsageError(format!(
                "--time-budget {secs}: must be a positive number of seconds"
            ))
            .into());
        }
        None => None,
    };
    request.seed = args.seed;
    request.params = parse_params(&args.params)?;
    request.threshold_goal =
        usage("--threshold-goal", args.threshold_goal.parse::<ThresholdGoal>())?;
    request.class_weight = usage("--class-weight", args.class_weight.parse::<ClassWeight>())?;
    request.source = source.clone();

    let mut registry = project.registry()?;
    let experiment = args.experiment.clone().unwrap_or_else(|| name.clone());
    let (run_id, user) =
        project.start_training_run(&mut registry, &name, Some(&experiment), &source)?;
    if let Some(model) = &args.from_store {
        // Lineage: which feature views, at which definition, made the training table.
        let store = super::features::store(project)?;
        let mut tags = Vec::new();
        if let Some(spec) = store.config().models.get(model) {
            let mut views: Vec<&str> = spec
                .features
                .iter()
                .filter_map(|f| f.get_ref().split_once(':'))
                .map(|(v, _)| v)
                .collect();
            views.dedup();
            for view in views {
                tags.push((format!("feature_view.{view}"), store.view_version(view)?));
            }
        }
        registry.set_tags(&run_id, &tags)?;
    }
    let bars = Bars::new();
    let outcome = train(&frame, &request, &bars);
    bars.finish();
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(error) => {
            let error = anyhow::Error::new(error).context(format!("cannot train on {source}"));
            return Err(Project::fail_training_run(&mut registry, &run_id, error));
        }
    };
    let mut model = outcome.model;
    model.card.trained_at = now_rfc3339();
    // What the server needs to read the inputs from the online store by entity key.
    model.card.store = store_inputs;
    let (saved, version) =
        Project::register_run_model(&mut registry, &run_id, &user, |registry| {
            track(
                registry,
                &run_id,
                &experiment,
                &user,
                &request,
                &outcome.trials,
                outcome.best,
                &model,
            )?;
            Ok(SavedModel::from(model))
        })?;
    super::mlflow::mirror(project);
    let model = saved.into_tabular()?;
    let path = registry.artifact_path(&version);
    Ok(Fitted {
        trials: outcome.trials,
        best: outcome.best,
        model,
        version,
        run_id,
        path,
        refreshed,
    })
}

fn json_text(value: &Json) -> String {
    match value {
        Json::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn metric_rows(trial: &Trial) -> Vec<(String, i64, f64)> {
    let mut rows = Vec::new();
    for (name, summary) in &trial.cv {
        rows.push((format!("cv_{name}"), 0, summary.mean));
        rows.push((format!("cv_{name}_std"), 0, summary.std));
    }
    // One step per fold, so the history shows the spread.
    for (fold, metrics) in trial.folds.iter().enumerate() {
        for (name, value) in metrics {
            rows.push((format!("fold_{name}"), fold as i64, *value));
        }
    }
    // Boosting: one step per round, the validation metric averaged over folds.
    if let Some((metric, values)) = &trial.round_history {
        for (round, value) in values.iter().enumerate() {
            rows.push((format!("round_valid_{metric}"), round as i64 + 1, *value));
        }
    }
    rows
}

fn param_rows(params: &Json) -> Vec<(String, String)> {
    match params {
        Json::Object(map) => map.iter().map(|(k, v)| (k.clone(), json_text(v))).collect(),
        _ => Vec::new(),
    }
}

/// Records the run: request, final parameters and metrics, one child run per search trial.
#[allow(clippy::too_many_arguments)]
fn track(
    registry: &mut Registry,
    run_id: &str,
    experiment: &str,
    user: &str,
    request: &TrainRequest,
    trials: &[Trial],
    best: usize,
    model: &Model,
) -> anyhow::Result<()> {
    let card = &model.card;
    let mut params = param_rows(&card.params);
    params.extend([
        ("algorithm".to_owned(), card.algorithm.clone()),
        ("label".to_owned(), card.label.clone()),
        ("cv".to_owned(), request.cv.to_string()),
        ("folds".to_owned(), format!("{:?}", request.folds)),
        ("search".to_owned(), format!("{:?}", request.search).to_lowercase()),
        ("seed".to_owned(), request.seed.to_string()),
        ("class_weight".to_owned(), format!("{:?}", request.class_weight).to_lowercase()),
    ]);
    let mut metrics = trials.get(best).map(metric_rows).unwrap_or_default();
    let mut tags = vec![
        ("task".to_owned(), card.task.name().to_owned()),
        ("model".to_owned(), card.name.clone()),
        ("classes".to_owned(), card.classes.join(",")),
        ("trials".to_owned(), trials.len().to_string()),
        ("vigie_version".to_owned(), card.vigie_version.clone()),
    ];
    if let Some(threshold) = card.threshold {
        tags.push(("threshold".to_owned(), threshold.to_string()));
    }
    if let Some(goal) = &card.threshold_goal {
        tags.push(("threshold_goal".to_owned(), goal.clone()));
    }
    let primary = vigie_ml::metrics::primary_metric(card.task);
    if trials.len() > 1 {
        metrics.extend(
            trials.iter().enumerate().map(|(i, t)| (format!("trial_{primary}"), i as i64, t.score)),
        );
        for (index, trial) in trials.iter().enumerate() {
            let child = registry.start_run(&NewRun {
                experiment: experiment.to_owned(),
                name: format!("trial {} {}", index + 1, trial.algorithm.name()),
                parent: Some(run_id.to_owned()),
                user: user.to_owned(),
                ..NewRun::default()
            })?;
            let mut child_params = param_rows(&trial.params);
            child_params.push(("algorithm".to_owned(), trial.algorithm.name().to_owned()));
            let batch = RunBatch {
                params: &child_params,
                metrics: &metric_rows(trial),
                tags: &[("trial".to_owned(), (index + 1).to_string())],
                data: None,
            };
            registry.log_batch(&child, batch)?;
            registry.end_run(&child, RunStatus::Finished)?;
            if index == best {
                tags.push(("best_trial_run".to_owned(), child));
            }
        }
    }
    let data = Some(super::run_data(&card.data));
    let batch = RunBatch { params: &params, metrics: &metrics, tags: &tags, data };
    registry.log_batch(run_id, batch)?;
    Ok(())
}
