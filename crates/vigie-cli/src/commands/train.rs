//! `vigie train`: read the table, train, save a new version, print the summary.

use std::time::Duration;

use serde_json::{Map, Value as Json, json};
use vigie_ml::search::{SearchKind, Space};
use vigie_ml::target::TaskChoice;
use vigie_ml::threshold::ThresholdGoal;
use vigie_ml::train::{Algorithm, ClassWeight, FoldScheme, PipelineOverrides, TrainRequest, train};
use vigie_ml::transform::{parse_encoding, parse_impute, parse_scale};

use super::{Project, UsageError, column_types, now_rfc3339, read_table};
use crate::cli::{Format, TrainArgs};
use crate::output;
use crate::progress::Bars;

fn usage<T, E: std::fmt::Display>(flag: &str, result: Result<T, E>) -> anyhow::Result<T> {
    result.map_err(|e| UsageError(format!("{flag}: {e}")).into())
}

fn parse_params(pairs: &[String]) -> anyhow::Result<Map<String, Json>> {
    let mut params = Map::new();
    for pair in pairs {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| UsageError(format!("--param {pair:?}: expected KEY=VALUE")))?;
        // Values are JSON when they parse as JSON (numbers, true, null, [..]), else strings.
        let value = serde_json::from_str(value).unwrap_or_else(|_| Json::from(value));
        params.insert(key.trim().to_owned(), value);
    }
    Ok(params)
}

pub fn run(project: &Project, args: TrainArgs) -> anyhow::Result<()> {
    let name = match &args.name {
        Some(name) => name.clone(),
        None => args.data.file_stem().and_then(|s| s.to_str()).unwrap_or("model").to_owned(),
    };
    vigie_registry::store::validate_name(&name)?;
    let mut request = TrainRequest::new(&name, &args.label);
    request.positive = args.positive.clone();
    request.ignore = args.ignore.clone();
    request.task = usage("--task", args.task.parse::<TaskChoice>())?;
    request.algorithm = match args.algorithm.as_str() {
        "auto" => None,
        other => Some(usage("--algorithm", other.parse::<Algorithm>())?),
    };
    request.cv = args.cv;
    request.folds = usage("--folds", args.folds.parse::<FoldScheme>())?;
    request.transforms = PipelineOverrides {
        impute: args.impute.as_deref().map(|t| usage("--impute", parse_impute(t))).transpose()?,
        missing_indicator: args.missing_indicator,
        scale: args.scale.as_deref().map(|t| usage("--scale", parse_scale(t))).transpose()?,
        encoding: args.encode.as_deref().map(|t| usage("--encode", parse_encoding(t))).transpose()?,
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
    request.source = args.data.display().to_string();

    let frame = read_table(&args.data, &column_types(&args.column_types)?)?;
    let bars = Bars::new();
    let outcome = train(&frame, &request, &bars);
    bars.finish();
    let outcome = outcome.map_err(|e| {
        anyhow::Error::new(e).context(format!("cannot train on {}", args.data.display()))
    })?;
    let mut model = outcome.model;
    model.card.trained_at = now_rfc3339();
    let stored = project.models().save(&mut model)?;
    let card = &model.card;

    match args.format {
        Format::Json => {
            let cv: Map<String, Json> = card
                .cv
                .iter()
                .map(|(k, m)| (k.clone(), json!({"mean": m.mean, "std": m.std})))
                .collect();
            let trials: Vec<Json> = outcome
                .trials
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
                "threshold": card.threshold,
                "threshold_goal": card.threshold_goal,
                "train_seconds": card.train_seconds,
                "rows": card.data.rows,
                "data_sha256": card.data.sha256,
                "trials": trials,
                "path": stored.path.display().to_string(),
            }))?;
        }
        Format::Text => {
            println!(
                "Trained {} v{}: {} {} on {} rows × {} columns in {:.1}s",
                card.name,
                card.version,
                card.algorithm,
                card.task.name(),
                card.data.rows,
                card.data.columns,
                card.train_seconds
            );
            if outcome.trials.len() > 1 {
                let mut table = output::table(&["#", "algorithm", "score", "seconds"]);
                for (i, t) in outcome.trials.iter().enumerate() {
                    let mark = if i == outcome.best { " ←" } else { "" };
                    table.add_row(vec![
                        format!("{}{mark}", i + 1),
                        t.algorithm.name().to_owned(),
                        output::metric(t.score),
                        format!("{:.1}", t.seconds),
                    ]);
                }
                println!("{table}");
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
            println!("{table}");
            if let (Some(threshold), Some(goal)) = (card.threshold, &card.threshold_goal) {
                println!(
                    "Decision threshold {threshold:.4} (chosen for {goal}); positive class {:?}",
                    card.classes.get(1).cloned().unwrap_or_default()
                );
            }
            println!("Saved {}", stored.path.display());
        }
    }
    Ok(())
}
