//! `vigie models list|show|compare|promote|rollback|alias|route`.

use std::collections::BTreeMap;

use serde_json::{Map, Value as Json, json};
use vigie_ml::forecast::Forecaster;
use vigie_ml::model::MetricSummary;
use vigie_ml::{Model, SavedModel};
use vigie_registry::{AliasMove, ModelRef, Registry, VersionInfo};

use super::{Project, user};
use crate::cli::{Format, ModelsCommand};
use crate::output;
use crate::output::outln;

/// Metric summaries as `{NAME: {"mean", "std"}}`.
pub fn metrics_json(metrics: &BTreeMap<String, MetricSummary>) -> Map<String, Json> {
    metrics.iter().map(|(k, m)| (k.clone(), json!({"mean": m.mean, "std": m.std}))).collect()
}

/// The metric that ranks versions of a model: the task's primary CV metric, MASE for forecasts.
fn primary_metric(model: &SavedModel) -> &'static str {
    match model {
        SavedModel::Tabular(m) => vigie_ml::metrics::primary_metric(m.card.task),
        SavedModel::Forecast(_) => "mase",
    }
}

fn history_table(history: &[AliasMove]) -> comfy_table::Table {
    let mut moves = output::table(&["when", "alias", "from", "to", "kind", "who", "why"]);
    let version = |v: Option<u32>| v.map_or("-".to_owned(), |v| format!("v{v}"));
    for m in history {
        moves.add_row(vec![
            m.at.clone(),
            m.alias.clone(),
            version(m.from_version),
            version(m.to_version),
            m.kind.clone(),
            m.user.clone(),
            m.reason.clone(),
        ]);
    }
    moves
}

fn move_json(m: &AliasMove) -> Json {
    json!({
        "model": m.model, "alias": m.alias, "from_version": m.from_version, "to_version": m.to_version,
        "kind": m.kind, "user": m.user, "at": m.at, "reason": m.reason,
    })
}

fn print_move(m: &AliasMove, format: Format) -> anyhow::Result<()> {
    match format {
        Format::Json => output::json(&move_json(m)),
        Format::Text => {
            let version = |v: Option<u32>| v.map_or("none".to_owned(), |v| format!("v{v}"));
            outln!(
                "{}@{}: {} → {} ({})",
                m.model,
                m.alias,
                version(m.from_version),
                version(m.to_version),
                m.kind
            )?;
            Ok(())
        }
    }
}

fn resolve(registry: &Registry, text: &str) -> anyhow::Result<(VersionInfo, SavedModel)> {
    let reference: ModelRef = text.parse()?;
    let info = registry.resolve(&reference)?;
    let model = registry.load(&info)?;
    Ok((info, model))
}

pub fn run(project: &Project, command: ModelsCommand) -> anyhow::Result<()> {
    let mut registry = project.registry()?;
    match command {
        ModelsCommand::List { format } => {
            let mut rows = Vec::new();
            for summary in registry.models()? {
                let versions = registry.versions(&summary.name)?;
                let Some(latest) = versions.last() else { continue };
                let model = registry.load(latest)?;
                let primary = primary_metric(&model);
                rows.push(json!({
                    "name": summary.name,
                    "versions": summary.versions,
                    "latest": summary.latest,
                    "aliases": summary.aliases.iter().map(|(a, v)| (a.clone(), json!(v))).collect::<Map<_, _>>(),
                    "algorithm": model.algorithm(),
                    "task": model.task(),
                    "metric": primary,
                    "score": model.metrics().get(primary).map_or(f64::NAN, |m| m.mean),
                    "trained_at": model.trained_at(),
                }));
            }
            match format {
                Format::Json => output::json(&Json::Array(rows)),
                Format::Text => {
                    if rows.is_empty() {
                        outln!(
                            "No model registered yet in {}; run `vigie train`.",
                            project.dir.display()
                        )?;
                        return Ok(());
                    }
                    let mut table = output::table(&[
                        "name",
                        "versions",
                        "aliases",
                        "latest",
                        "algorithm",
                        "task",
                        "score",
                    ]);
                    for row in &rows {
                        let text = |key: &str| row[key].as_str().unwrap_or_default().to_owned();
                        let aliases = row["aliases"]
                            .as_object()
                            .map(|m| {
                                m.iter()
                                    .map(|(a, v)| format!("@{a}=v{v}"))
                                    .collect::<Vec<_>>()
                                    .join(" ")
                            })
                            .unwrap_or_default();
                        table.add_row(vec![
                            text("name"),
                            row["versions"].to_string(),
                            aliases,
                            format!("v{}", row["latest"]),
                            text("algorithm"),
                            text("task"),
                            format!(
                                "{} {}",
                                text("metric"),
                                output::metric(row["score"].as_f64().unwrap_or(f64::NAN))
                            ),
                        ]);
                    }
                    outln!("{table}")?;
                    Ok(())
                }
            }
        }
        ModelsCommand::Show { model, format } => {
            let (info, model) = resolve(&registry, &model)?;
            let history: Vec<AliasMove> = registry.alias_history(&info.model)?;
            let path = registry.artifact_path(&info).display().to_string();
            match model {
                SavedModel::Tabular(model) => {
                    show_tabular(&registry, &info, &model, &history, &path, format)
                }
                SavedModel::Forecast(forecaster) => {
                    show_forecast(&info, &forecaster, &history, &path, format)
                }
            }
        }
        ModelsCommand::Compare { models, format } => {
            let mut loaded = Vec::new();
            for text in &models {
                loaded.push(resolve(&registry, text)?);
            }
            let mut metric_names: Vec<String> =
                loaded.iter().flat_map(|(_, m)| m.metrics().keys().cloned()).collect();
            metric_names.sort();
            metric_names.dedup();
            match format {
                Format::Json => output::json(&Json::Array(
                    loaded
                        .iter()
                        .map(|(info, m)| {
                            let mut entry = json!({
                                "model": info.model, "version": info.version, "aliases": info.aliases, "algorithm": m.algorithm(),
                                "task": m.task(), "threshold": threshold(m),
                                "data_sha256": m.data().sha256, "rows": m.data().rows, "run_id": info.run_id,
                            });
                            // Tabular models report cross-validation, forecasts their backtest.
                            let key = match m {
                                SavedModel::Tabular(_) => "cv",
                                SavedModel::Forecast(_) => "backtest",
                            };
                            entry[key] = Json::Object(metrics_json(m.metrics()));
                            if let SavedModel::Forecast(f) = m {
                                entry["horizon"] = json!(f.model.horizon());
                                entry["frequency"] = json!(f.model.frequency().code());
                            }
                            entry
                        })
                        .collect(),
                )),
                Format::Text => {
                    let mut header = vec!["".to_owned()];
                    header.extend(loaded.iter().map(|(info, _)| format!("{} v{}", info.model, info.version)));
                    let header_refs: Vec<&str> = header.iter().map(String::as_str).collect();
                    let mut table = output::table(&header_refs);
                    let row = |label: &str, f: &dyn Fn(&VersionInfo, &SavedModel) -> String| {
                        let mut cells = vec![label.to_owned()];
                        cells.extend(loaded.iter().map(|(i, m)| f(i, m)));
                        cells
                    };
                    table.add_row(row("task", &|_, m| m.task().to_owned()));
                    table.add_row(row("algorithm", &|_, m| m.algorithm().to_owned()));
                    // A forecast's scores hold for its horizon: compare them at the same one.
                    if loaded.iter().any(|(_, m)| matches!(m, SavedModel::Forecast(_))) {
                        table.add_row(row("horizon", &|_, m| match m {
                            SavedModel::Forecast(f) => {
                                format!("{} {} periods", f.model.horizon(), f.model.frequency())
                            }
                            SavedModel::Tabular(_) => "-".to_owned(),
                        }));
                    }
                    table.add_row(row("aliases", &|i, _| i.aliases.iter().map(|a| format!("@{a}")).collect::<Vec<_>>().join(" ")));
                    for name in &metric_names {
                        table.add_row(row(name, &|_, m| m.metrics().get(name).map_or("-".to_owned(), |s| output::metric(s.mean))));
                    }
                    table.add_row(row("threshold", &|_, m| threshold(m).map_or("-".to_owned(), output::metric)));
                    table.add_row(row("rows", &|_, m| m.data().rows.to_string()));
                    table.add_row(row("data sha256", &|_, m| m.data().sha256.chars().take(12).collect()));
                    outln!("{table}")?;
                    Ok(())
                }
            }
        }
        ModelsCommand::Promote { name, version, alias, reason, format } => {
            let moved = registry.set_alias(&name, &alias, version, &user(), &reason)?;
            super::mlflow::mirror(project);
            print_move(&moved, format)
        }
        ModelsCommand::Rollback { name, alias, reason, format } => {
            let moved = registry.rollback(&name, &alias, &user(), &reason)?;
            super::mlflow::mirror(project);
            print_move(&moved, format)
        }
        ModelsCommand::Delete { name, version, format } => {
            registry.delete_version(&name, version)?;
            match format {
                Format::Json => {
                    output::json(&json!({"model": name, "version": version, "deleted": true}))
                }
                Format::Text => {
                    outln!(
                        "Deleted {name} v{version} from the registry (its run and file are kept)"
                    )?;
                    Ok(())
                }
            }
        }
        ModelsCommand::Route(args) => super::routing::route(&mut registry, args),
        ModelsCommand::Alias { name, alias, version, delete, reason, format } => {
            let moved = match (delete, version) {
                (true, _) => registry.delete_alias(&name, &alias, &user(), &reason)?,
                (false, Some(version)) => {
                    registry.set_alias(&name, &alias, version, &user(), &reason)?
                }
                (false, None) => {
                    return Err(super::UsageError("give a VERSION or --delete".into()).into());
                }
            };
            super::mlflow::mirror(project);
            print_move(&moved, format)
        }
    }
}

/// A tabular model's binary decision threshold.
fn threshold(model: &SavedModel) -> Option<f64> {
    match model {
        SavedModel::Tabular(m) => m.card.threshold,
        SavedModel::Forecast(_) => None,
    }
}

fn show_tabular(
    registry: &Registry,
    info: &VersionInfo,
    model: &Model,
    history: &[AliasMove],
    path: &str,
    format: Format,
) -> anyhow::Result<()> {
    let card = &model.card;
    let transforms = model.pipeline.describe();
    match format {
        Format::Json => output::json(&json!({
            "routing": super::routing::show_json(registry, &info.model)?,
            "model": card.name,
            "version": card.version,
            "aliases": info.aliases,
            "run_id": info.run_id,
            "algorithm": card.algorithm,
            "task": card.task.name(),
            "label": card.label,
            "classes": card.classes,
            "params": card.params,
            "cv": metrics_json(&card.cv),
            "cv_folds": card.cv_folds,
            "oob": card.oob,
            "threshold": card.threshold,
            "threshold_goal": card.threshold_goal,
            "data": {"sha256": card.data.sha256, "rows": card.data.rows, "columns": card.data.columns, "source": card.data.source},
            "inputs": model.pipeline.inputs.iter().map(|i| json!({"name": i.name, "type": i.kind})).collect::<Vec<_>>(),
            "features": model.pipeline.n_features(),
            "transforms": transforms,
            "seed": card.seed,
            "train_seconds": card.train_seconds,
            "trained_at": card.trained_at,
            "vigie_version": card.vigie_version,
            "sha256": info.sha256,
            "path": path,
            "alias_history": history.iter().map(move_json).collect::<Vec<_>>(),
        })),
        Format::Text => {
            let aliases: String = info.aliases.iter().map(|a| format!(" @{a}")).collect();
            outln!(
                "{} v{}{aliases}: {} {} (label {:?})",
                card.name,
                card.version,
                card.algorithm,
                card.task.name(),
                card.label
            )?;
            if !card.classes.is_empty() {
                outln!("classes: {}", card.classes.join(", "))?;
            }
            outln!(
                "run {} · trained {} in {:.1}s by vigie {}, seed {}",
                info.run_id,
                card.trained_at,
                card.train_seconds,
                card.vigie_version,
                card.seed
            )?;
            outln!(
                "data: {} ({} rows, {} columns, sha256 {})",
                card.data.source,
                card.data.rows,
                card.data.columns,
                card.data.sha256
            )?;
            if let (Some(threshold), Some(goal)) = (card.threshold, &card.threshold_goal) {
                outln!("threshold: {threshold:.4} ({goal})")?;
            }
            let mut metrics = output::table(&["metric", "cv mean", "std"]);
            for (name, summary) in &card.cv {
                metrics.add_row(vec![
                    name.clone(),
                    output::metric(summary.mean),
                    output::metric(summary.std),
                ]);
            }
            outln!("{metrics}")?;
            let mut inputs = output::table(&["input column", "transform"]);
            for (name, text) in &transforms {
                inputs.add_row(vec![name.clone(), text.clone()]);
            }
            outln!("{inputs}")?;
            outln!("params: {}", card.params)?;
            if !history.is_empty() {
                outln!("{}", history_table(history))?;
            }
            super::routing::show_text(registry, &info.model)?;
            outln!("file: {path}")?;
            Ok(())
        }
    }
}

fn show_forecast(
    info: &VersionInfo,
    forecaster: &Forecaster,
    history: &[AliasMove],
    path: &str,
    format: Format,
) -> anyhow::Result<()> {
    let card = &forecaster.card;
    let model = &forecaster.model;
    let report = model.report();
    match format {
        Format::Json => output::json(&json!({
            "model": card.name,
            "version": card.version,
            "aliases": info.aliases,
            "run_id": info.run_id,
            "task": "forecast",
            "strategy": model.strategy().name(),
            "why": report.why,
            "horizon": model.horizon(),
            "frequency": model.frequency().code(),
            "columns": card.columns,
            "timezone": forecaster.timezone().map(|zone| zone.name()),
            "past_only_covariates": card.past_only_covariates,
            "future_covariates": model.required_future_covariates(),
            "series": forecaster.keys.len(),
            "backtest": metrics_json(&report.overall),
            "backtest_windows": card.backtest_windows,
            "interval_level_power": model.interval_widths().level_power,
            "per_series": super::forecast::per_series_json(forecaster),
            "baselines": report.strategies.iter().map(|(name, m)| (name.clone(), Json::Object(metrics_json(m)))).collect::<Map<_, _>>(),
            "data": {"sha256": card.data.sha256, "rows": card.data.rows, "columns": card.data.columns, "source": card.data.source},
            "seed": card.seed,
            "train_seconds": card.train_seconds,
            "trained_at": card.trained_at,
            "vigie_version": card.vigie_version,
            "sha256": info.sha256,
            "path": path,
            "alias_history": history.iter().map(move_json).collect::<Vec<_>>(),
        })),
        Format::Text => {
            let aliases: String = info.aliases.iter().map(|a| format!(" @{a}")).collect();
            outln!(
                "{} v{}{aliases}: forecast, {} ({} series, {}, horizon {})",
                card.name,
                card.version,
                model.strategy().name(),
                forecaster.keys.len(),
                model.frequency(),
                model.horizon()
            )?;
            outln!("{}", report.why)?;
            outln!(
                "run {} · trained {} in {:.1}s by vigie {}, seed {}",
                info.run_id,
                card.trained_at,
                card.train_seconds,
                card.vigie_version,
                card.seed
            )?;
            outln!(
                "data: {} ({} rows, sha256 {}); time {:?}, target {:?}, series {:?}, covariates {:?}",
                card.data.source,
                card.data.rows,
                card.data.sha256,
                card.columns.time,
                card.columns.target,
                card.columns.series,
                card.columns.covariates
            )?;
            match (card.columns.group, forecaster.model.hourly_zone()) {
                (Some(group), _) => outln!(
                    "rows grouped into {} periods ({}) by {}",
                    group.frequency,
                    group.zone_label(),
                    group.target
                )?,
                (None, Some(zone)) => outln!("hourly periods read on {}'s clock", zone.name())?,
                (None, None) => {}
            }
            if card.columns.non_negative {
                outln!("target non-negative: a negative value is refused")?;
            }
            outln!("{}", super::forecast::backtest_table(report))?;
            if let Some(line) = super::forecast::hardest_series_line(report) {
                outln!("{line}")?;
            }
            outln!("{}", model.interval_widths().describe())?;
            if !history.is_empty() {
                outln!("{}", history_table(history))?;
            }
            outln!("file: {path}")?;
            Ok(())
        }
    }
}
