//! `vigie runs list|show|compare`.

use serde_json::{Map, Value as Json, json};
use vigie_registry::RunDetail;

use super::Project;
use crate::cli::{Format, RunsCommand};
use crate::output;
use crate::output::outln;

fn metric_value(value: f64) -> Json {
    if value.is_finite() { json!(value) } else { Json::Null }
}

fn detail_json(detail: &RunDetail) -> Json {
    let s = &detail.summary;
    json!({
        "id": s.id, "experiment": s.experiment, "name": s.name, "parent": s.parent, "status": s.status, "user": s.user,
        "started_at": s.started_at, "ended_at": s.ended_at, "git_commit": detail.git_commit,
        "data": {"sha256": detail.data_sha256, "source": detail.data_source, "rows": detail.data_rows},
        "params": detail.params.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<Map<_, _>>(),
        "tags": detail.tags.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<Map<_, _>>(),
        "metrics": detail.metrics.iter().map(|(k, history)| {
            (k.clone(), Json::Array(history.iter().map(|p| json!({"step": p.step, "value": metric_value(p.value)})).collect()))
        }).collect::<Map<_, _>>(),
        "artifacts": detail.artifacts.iter().map(|(p, sha)| json!({"path": p, "sha256": sha})).collect::<Vec<_>>(),
        "children": detail.children,
    })
}

/// The last value of each metric (the final one for histories).
fn final_metrics(detail: &RunDetail) -> Vec<(String, f64)> {
    detail.metrics.iter().filter_map(|(k, h)| h.last().map(|p| (k.clone(), p.value))).collect()
}

pub fn run(project: &Project, command: RunsCommand) -> anyhow::Result<()> {
    let registry = project.registry()?;
    match command {
        RunsCommand::List { experiment, limit, format } => {
            let runs = registry.runs(experiment.as_deref(), limit)?;
            match format {
                Format::Json => output::json(&Json::Array(
                    runs.iter()
                        .map(|r| {
                            json!({"id": r.id, "experiment": r.experiment, "name": r.name, "parent": r.parent, "status": r.status,
                                   "user": r.user, "started_at": r.started_at, "ended_at": r.ended_at})
                        })
                        .collect(),
                )),
                Format::Text => {
                    let mut table = output::table(&["run", "experiment", "name", "status", "user", "started"]);
                    for r in &runs {
                        let indent = if r.parent.is_some() { "  └ " } else { "" };
                        table.add_row(vec![
                            r.id.chars().take(12).collect(),
                            r.experiment.clone(),
                            format!("{indent}{}", r.name),
                            r.status.clone(),
                            r.user.clone(),
                            r.started_at.clone(),
                        ]);
                    }
                    outln!("{table}")?;
                    Ok(())
                }
            }
        }
        RunsCommand::Show { run, format } => {
            let detail = registry.run(&run)?;
            match format {
                Format::Json => output::json(&detail_json(&detail)),
                Format::Text => {
                    let s = &detail.summary;
                    outln!(
                        "run {} ({}) in experiment {}: {}",
                        s.id,
                        s.name,
                        s.experiment,
                        s.status
                    )?;
                    outln!(
                        "by {} from {} to {}",
                        s.user,
                        s.started_at,
                        s.ended_at.as_deref().unwrap_or("-")
                    )?;
                    if let Some(parent) = &s.parent {
                        outln!("parent run {parent}")?;
                    }
                    outln!("code {}", detail.git_commit.as_deref().unwrap_or("unknown"))?;
                    outln!(
                        "data {} ({} rows, sha256 {})",
                        detail.data_source.as_deref().unwrap_or("-"),
                        detail.data_rows.map_or("-".to_owned(), |n| n.to_string()),
                        detail.data_sha256.as_deref().unwrap_or("-")
                    )?;
                    let mut params = output::table(&["param", "value"]);
                    for (k, v) in &detail.params {
                        params.add_row(vec![k.clone(), v.clone()]);
                    }
                    outln!("{params}")?;
                    let mut metrics = output::table(&["metric", "steps", "last", "history"]);
                    for (k, history) in &detail.metrics {
                        let values: Vec<String> =
                            history.iter().map(|p| output::metric(p.value)).collect();
                        metrics.add_row(vec![
                            k.clone(),
                            history.len().to_string(),
                            history.last().map_or("-".to_owned(), |p| output::metric(p.value)),
                            values.join(" "),
                        ]);
                    }
                    outln!("{metrics}")?;
                    for (k, v) in &detail.tags {
                        outln!("tag {k} = {v}")?;
                    }
                    for (path, sha) in &detail.artifacts {
                        outln!("artifact {path} (sha256 {sha})")?;
                    }
                    for child in &detail.children {
                        outln!("child run {child}")?;
                    }
                    Ok(())
                }
            }
        }
        RunsCommand::Compare { runs, format } => {
            let details = runs.iter().map(|r| registry.run(r)).collect::<Result<Vec<_>, _>>()?;
            match format {
                Format::Json => {
                    output::json(&Json::Array(details.iter().map(detail_json).collect()))
                }
                Format::Text => {
                    let mut header = vec!["".to_owned()];
                    header.extend(
                        details.iter().map(|d| d.summary.id.chars().take(12).collect::<String>()),
                    );
                    let refs: Vec<&str> = header.iter().map(String::as_str).collect();
                    let mut table = output::table(&refs);
                    let mut keys: Vec<String> = details
                        .iter()
                        .flat_map(|d| d.params.iter().map(|(k, _)| k.clone()))
                        .collect();
                    keys.sort();
                    keys.dedup();
                    for key in &keys {
                        let mut row = vec![key.clone()];
                        row.extend(details.iter().map(|d| {
                            d.params
                                .iter()
                                .find(|(k, _)| k == key)
                                .map_or("-".to_owned(), |(_, v)| v.clone())
                        }));
                        table.add_row(row);
                    }
                    let finals: Vec<Vec<(String, f64)>> =
                        details.iter().map(final_metrics).collect();
                    let mut names: Vec<String> = finals
                        .iter()
                        .flat_map(|f| f.iter().map(|(k, _)| k.clone()))
                        // A table's cross-validated scores, a forecast's backtested ones.
                        .filter(|k| {
                            (k.starts_with("cv_") || k.starts_with("backtest_"))
                                && !k.ends_with("_std")
                        })
                        .collect();
                    names.sort();
                    names.dedup();
                    for name in &names {
                        let mut row = vec![name.clone()];
                        row.extend(finals.iter().map(|f| {
                            f.iter()
                                .find(|(k, _)| k == name)
                                .map_or("-".to_owned(), |(_, v)| output::metric(*v))
                        }));
                        table.add_row(row);
                    }
                    outln!("{table}")?;
                    Ok(())
                }
            }
        }
    }
}
