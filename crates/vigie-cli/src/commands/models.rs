//! `vigie models list|show`.

use serde_json::{Value as Json, json};
use vigie_registry::ModelRef;

use super::Project;
use crate::cli::{Format, ModelsCommand};
use crate::output;

pub fn run(project: &Project, command: ModelsCommand) -> anyhow::Result<()> {
    let store = project.models();
    match command {
        ModelsCommand::List { format } => {
            let mut rows = Vec::new();
            for name in store.names()? {
                let versions = store.versions(&name)?;
                let Some(latest) = versions.last() else { continue };
                let model = store.load(latest)?;
                let card = model.card;
                let primary = vigie_ml::metrics::primary_metric(card.task);
                let score = card.cv.get(primary).map_or(f64::NAN, |m| m.mean);
                rows.push(json!({
                    "name": name,
                    "versions": versions.len(),
                    "latest": card.version,
                    "algorithm": card.algorithm,
                    "task": card.task.name(),
                    "metric": primary,
                    "score": score,
                    "trained_at": card.trained_at,
                }));
            }
            match format {
                Format::Json => output::json(&Json::Array(rows)),
                Format::Text => {
                    if rows.is_empty() {
                        println!(
                            "No model saved yet in {}; run `vigie train`.",
                            project.dir.display()
                        );
                        return Ok(());
                    }
                    let mut table = output::table(&[
                        "name",
                        "versions",
                        "latest",
                        "algorithm",
                        "task",
                        "cv score",
                        "trained at",
                    ]);
                    for row in &rows {
                        let text = |key: &str| row[key].as_str().unwrap_or_default().to_owned();
                        table.add_row(vec![
                            text("name"),
                            row["versions"].to_string(),
                            format!("v{}", row["latest"]),
                            text("algorithm"),
                            text("task"),
                            format!(
                                "{} {}",
                                text("metric"),
                                output::metric(row["score"].as_f64().unwrap_or(f64::NAN))
                            ),
                            text("trained_at"),
                        ]);
                    }
                    println!("{table}");
                    Ok(())
                }
            }
        }
        ModelsCommand::Show { model, format } => {
            let reference: ModelRef = model.parse()?;
            let stored = store.resolve(&reference)?;
            let model = store.load(&stored)?;
            let card = &model.card;
            let transforms = model.pipeline.describe();
            match format {
                Format::Json => output::json(&json!({
                    "model": card.name,
                    "version": card.version,
                    "algorithm": card.algorithm,
                    "task": card.task.name(),
                    "label": card.label,
                    "classes": card.classes,
                    "params": card.params,
                    "cv": card.cv.iter().map(|(k, m)| (k.clone(), json!({"mean": m.mean, "std": m.std}))).collect::<serde_json::Map<_, _>>(),
                    "cv_folds": card.cv_folds,
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
                    "path": stored.path.display().to_string(),
                })),
                Format::Text => {
                    println!(
                        "{} v{}: {} {} (label {:?})",
                        card.name,
                        card.version,
                        card.algorithm,
                        card.task.name(),
                        card.label
                    );
                    if !card.classes.is_empty() {
                        println!("classes: {}", card.classes.join(", "));
                    }
                    println!(
                        "trained {} in {:.1}s by vigie {}, seed {}",
                        card.trained_at, card.train_seconds, card.vigie_version, card.seed
                    );
                    println!(
                        "data: {} ({} rows, {} columns, sha256 {})",
                        card.data.source, card.data.rows, card.data.columns, card.data.sha256
                    );
                    if let (Some(threshold), Some(goal)) = (card.threshold, &card.threshold_goal) {
                        println!("threshold: {threshold:.4} ({goal})");
                    }
                    let mut metrics = output::table(&["metric", "cv mean", "std"]);
                    for (name, summary) in &card.cv {
                        metrics.add_row(vec![
                            name.clone(),
                            output::metric(summary.mean),
                            output::metric(summary.std),
                        ]);
                    }
                    println!("{metrics}");
                    let mut inputs = output::table(&["input column", "transform"]);
                    for (name, text) in &transforms {
                        inputs.add_row(vec![name.clone(), text.clone()]);
                    }
                    println!("{inputs}");
                    println!("params: {}", card.params);
                    println!("file: {}", stored.path.display());
                    Ok(())
                }
            }
        }
    }
}
