//! Export to an MLflow tracking server: experiments, runs (params, metric histories with
//! their steps, tags, start and end times, status, user, the parent link of search trials),
//! model files as run artifacts, registered models, their versions and aliases.
//!
//! Idempotent: each MLflow run carries the tag `vigie.run_id` and each model version the tag
//! `vigie.version`; what is found is left alone, so a second export creates nothing. A run
//! counts as exported only once its last tag, `vigie.exported`, is set: a copy that an
//! interrupted export left half-written is deleted and written again.
//!
//! What it does not do: delete in MLflow what Vigie deleted (versions, aliases), update a run
//! already exported, export runs still RUNNING (they go once they end), or log NaN metric
//! values (MLflow's JSON has no NaN; they are counted and skipped). Vigie does not keep a time
//! per metric value: every value carries its run's end time. MLflow numbers versions itself,
//! so Vigie's v2 is MLflow's version 2 only when the registered model had no other versions.

use std::collections::{HashMap, HashSet};
use std::time::UNIX_EPOCH;

use vigie_connectors::mlflow::{Metric, MlflowClient, RegisteredModel, RunStart, Tag};

use crate::{Registry, RegistryError, Result, RunDetail, VersionInfo};

/// The tag naming the Vigie run an MLflow run is a copy of.
pub const RUN_ID_TAG: &str = "vigie.run_id";
/// The tag naming the Vigie version an MLflow model version is a copy of.
pub const VERSION_TAG: &str = "vigie.version";
/// Set last on an exported run: without it, the copy is partial.
const COMPLETE_TAG: &str = "vigie.exported";
/// MLflow's link from a child run to its parent.
const PARENT_TAG: &str = "mlflow.parentRunId";
/// The folder of a run's artifacts that holds its model file; a version's source.
const MODEL_FOLDER: &str = "model";

/// How many items of one kind an export created, found already there, or left out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportCount {
    /// Written by this export (for aliases: set or moved).
    pub created: usize,
    /// Already in MLflow, left as they were.
    pub present: usize,
    /// Not exported (a run still running, or what depends on one).
    pub skipped: usize,
}

/// What an export did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportSummary {
    /// Experiments.
    pub experiments: ExportCount,
    /// Runs, search trials included.
    pub runs: ExportCount,
    /// Model files uploaded as run artifacts.
    pub artifacts: ExportCount,
    /// Registered models.
    pub models: ExportCount,
    /// Model versions.
    pub versions: ExportCount,
    /// Aliases.
    pub aliases: ExportCount,
    /// Metric values logged (all steps of all histories of the runs created).
    pub metric_values: usize,
    /// NaN metric values left out of the runs created.
    pub nan_metric_values: usize,
}

/// A Vigie run's copy in MLflow.
struct Exported {
    run_id: String,
    artifact_uri: String,
}

/// Exports the whole registry to the server of `client`, calling `progress` with one line
/// per item written (and per item left out, with the reason).
pub fn export(
    registry: &Registry,
    client: &MlflowClient,
    mut progress: impl FnMut(&str),
) -> Result<ExportSummary> {
    let mut summary = ExportSummary::default();
    let mut versions = Vec::new();
    for model in registry.models()? {
        versions.extend(registry.versions(&model.name)?);
    }
    let model_files: HashSet<&str> = versions.iter().map(|info| info.artifact.as_str()).collect();
    let mut experiments: HashMap<String, String> = HashMap::new();
    let mut exported: HashMap<String, Exported> = HashMap::new();
    for run in parents_first(registry.all_runs()?) {
        let vigie_run = &run.summary;
        if vigie_run.status == "RUNNING" {
            summary.runs.skipped += 1;
            progress(&format!(
                "run {}: still running, not exported (export again once it ends)",
                label(&run)
            ));
            continue;
        }
        let experiment_id = match experiments.get(&vigie_run.experiment) {
            Some(id) => id.clone(),
            None => {
                let id =
                    ensure_experiment(client, &vigie_run.experiment, &mut summary, &mut progress)?;
                experiments.insert(vigie_run.experiment.clone(), id.clone());
                id
            }
        };
        let parent = vigie_run
            .parent
            .as_ref()
            .and_then(|id| exported.get(id))
            .map(|copy| copy.run_id.clone());
        let copy = export_run(
            registry,
            client,
            &run,
            &experiment_id,
            parent.as_deref(),
            &model_files,
            &mut summary,
            &mut progress,
        )?;
        exported.insert(vigie_run.id.clone(), copy);
    }
    export_models(registry, client, &versions, &exported, &mut summary, &mut progress)?;
    if summary.nan_metric_values > 0 {
        progress(&format!(
            "{} NaN metric values left out (MLflow stores no NaN)",
            summary.nan_metric_values
        ));
    }
    Ok(summary)
}

/// The experiment's MLflow id, creating it when new.
fn ensure_experiment(
    client: &MlflowClient,
    name: &str,
    summary: &mut ExportSummary,
    progress: &mut impl FnMut(&str),
) -> Result<String> {
    match client.experiment_by_name(name)? {
        Some(experiment) if experiment.lifecycle_stage == "deleted" => {
            Err(RegistryError::Conflict(format!(
                "MLflow experiment {name:?} (id {}) is deleted; restore it (`mlflow experiments restore`) \
             or delete it for good (`mlflow gc`), then export again",
                experiment.experiment_id
            )))
        }
        Some(experiment) => {
            summary.experiments.present += 1;
            Ok(experiment.experiment_id)
        }
        None => {
            let id = client.create_experiment(name)?;
            summary.experiments.created += 1;
            progress(&format!("experiment {name}: created (MLflow id {id})"));
            Ok(id)
        }
    }
}

/// Finds the run's complete copy in MLflow, or writes one.
#[expect(clippy::too_many_arguments, reason = "one call site; the pieces are the export's state")]
fn export_run(
    registry: &Registry,
    client: &MlflowClient,
    run: &RunDetail,
    experiment_id: &str,
    parent: Option<&str>,
    model_files: &HashSet<&str>,
    summary: &mut ExportSummary,
    progress: &mut impl FnMut(&str),
) -> Result<Exported> {
    let vigie = &run.summary;
    let mut complete = None;
    for found in client.runs_with_tag(experiment_id, RUN_ID_TAG, &vigie.id)? {
        if complete.is_none() && found.tag(COMPLETE_TAG) == Some("true") {
            complete = Some(found);
        } else if found.tag(COMPLETE_TAG) != Some("true") {
            client.delete_run(&found.info.run_id)?;
            progress(&format!(
                "run {}: deleted the partial MLflow run {} of an interrupted export",
                label(run),
                found.info.run_id
            ));
        }
    }
    if let Some(found) = complete {
        summary.runs.present += 1;
        summary.artifacts.present += run.artifacts.len();
        // The parent may have been written again since (after an interrupted export).
        if let Some(parent) = parent
            && found.tag(PARENT_TAG) != Some(parent)
        {
            client.set_tag(&found.info.run_id, PARENT_TAG, parent)?;
        }
        return Ok(Exported { run_id: found.info.run_id, artifact_uri: found.info.artifact_uri });
    }

    let started = millis(&vigie.started_at);
    let ended = vigie.ended_at.as_deref().and_then(millis);
    let mut tags = vec![
        Tag::new(RUN_ID_TAG, &vigie.id),
        Tag::new("mlflow.runName", &vigie.name),
        Tag::new("mlflow.user", &vigie.user),
        Tag::new("mlflow.source.name", "vigie"),
    ];
    if let Some(parent) = parent {
        tags.push(Tag::new(PARENT_TAG, parent));
    }
    if let Some(commit) = &run.git_commit {
        tags.push(Tag::new("mlflow.source.git.commit", commit));
    }
    let start = RunStart {
        experiment_id,
        run_name: &vigie.name,
        user_id: &vigie.user,
        start_time: started,
        tags: &tags,
    };
    let created = client.create_run(&start)?;
    let copy = Exported { run_id: created.info.run_id, artifact_uri: created.info.artifact_uri };

    let params: Vec<Tag> = run.params.iter().map(|(key, value)| Tag::new(key, value)).collect();
    let timestamp = ended.or(started).unwrap_or(0);
    let mut metrics = Vec::new();
    for (key, history) in &run.metrics {
        for point in history {
            if point.value.is_finite() {
                metrics.push(Metric {
                    key: key.clone(),
                    value: point.value,
                    timestamp,
                    step: point.step,
                });
            } else {
                summary.nan_metric_values += 1;
            }
        }
    }
    let mut run_tags: Vec<Tag> = run.tags.iter().map(|(key, value)| Tag::new(key, value)).collect();
    if let Some(sha256) = &run.data_sha256 {
        run_tags.push(Tag::new("vigie.data_sha256", sha256));
    }
    if let Some(source) = &run.data_source {
        run_tags.push(Tag::new("vigie.data_source", source));
    }
    if let Some(rows) = run.data_rows {
        run_tags.push(Tag::new("vigie.data_rows", rows.to_string()));
    }
    client.log_batch(&copy.run_id, &params, &metrics, &run_tags)?;
    summary.metric_values += metrics.len();

    for (path, _sha256) in &run.artifacts {
        let destination =
            artifact_destination(path, &vigie.id, model_files.contains(path.as_str()));
        let bytes = registry.artifact_bytes(path)?;
        client.upload_artifact(&copy.artifact_uri, &destination, &bytes)?;
        summary.artifacts.created += 1;
    }
    client.update_run(&copy.run_id, &vigie.status, ended)?;
    client.set_tag(&copy.run_id, COMPLETE_TAG, "true")?;
    summary.runs.created += 1;
    progress(&format!(
        "run {}: created MLflow run {} ({} params, {} metric values, {} artifacts)",
        label(run),
        copy.run_id,
        params.len(),
        metrics.len(),
        run.artifacts.len()
    ));
    Ok(copy)
}

/// Registered models, their versions (from the exported runs' model files) and aliases.
fn export_models(
    registry: &Registry,
    client: &MlflowClient,
    versions: &[VersionInfo],
    exported: &HashMap<String, Exported>,
    summary: &mut ExportSummary,
    progress: &mut impl FnMut(&str),
) -> Result<()> {
    for model in registry.models()? {
        let name = &model.name;
        let registered = match client.registered_model(name)? {
            Some(registered) => {
                summary.models.present += 1;
                registered
            }
            None => {
                client.create_registered_model(name)?;
                summary.models.created += 1;
                progress(&format!("model {name}: registered"));
                RegisteredModel { name: name.clone(), aliases: Vec::new() }
            }
        };
        // Vigie version → MLflow version number.
        let mut numbers: HashMap<u32, String> = client
            .model_versions(name)?
            .into_iter()
            .filter_map(|found| Some((found.tag(VERSION_TAG)?.parse().ok()?, found.version)))
            .collect();
        for info in versions.iter().filter(|info| &info.model == name) {
            if numbers.contains_key(&info.version) {
                summary.versions.present += 1;
                continue;
            }
            let Some(run) = exported.get(&info.run_id) else {
                summary.versions.skipped += 1;
                progress(&format!(
                    "model {name} v{}: its run {} is not exported yet",
                    info.version,
                    short(&info.run_id)
                ));
                continue;
            };
            let tags = [
                Tag::new(VERSION_TAG, info.version.to_string()),
                Tag::new(RUN_ID_TAG, &info.run_id),
                Tag::new("vigie.sha256", &info.sha256),
                Tag::new("vigie.algorithm", &info.algorithm),
                Tag::new("vigie.task", &info.task),
            ];
            let source = format!("{}/{MODEL_FOLDER}", run.artifact_uri);
            let created = client.create_model_version(name, &source, &run.run_id, &tags)?;
            summary.versions.created += 1;
            progress(&format!(
                "model {name} v{}: created MLflow version {}",
                info.version, created.version
            ));
            numbers.insert(info.version, created.version);
        }
        for (alias, version) in registry.aliases(name)? {
            let Some(number) = numbers.get(&version) else {
                summary.aliases.skipped += 1;
                progress(&format!("model {name}@{alias}: v{version} is not exported"));
                continue;
            };
            if registered
                .aliases
                .iter()
                .any(|found| found.alias == alias && &found.version == number)
            {
                summary.aliases.present += 1;
                continue;
            }
            client.set_alias(name, &alias, number)?;
            summary.aliases.created += 1;
            progress(&format!(
                "model {name}@{alias}: points at MLflow version {number} (v{version})"
            ));
        }
    }
    Ok(())
}

/// Runs ordered so each comes after its parent (MLflow needs the parent's id for the link).
fn parents_first(runs: Vec<RunDetail>) -> Vec<RunDetail> {
    let ids: HashSet<String> = runs.iter().map(|run| run.summary.id.clone()).collect();
    let mut placed: HashSet<String> = HashSet::new();
    let mut ordered = Vec::with_capacity(runs.len());
    let mut waiting = runs;
    while !waiting.is_empty() {
        let before = waiting.len();
        let (ready, later): (Vec<_>, Vec<_>) =
            waiting.into_iter().partition(|run| match &run.summary.parent {
                Some(parent) => placed.contains(parent) || !ids.contains(parent),
                None => true,
            });
        placed.extend(ready.iter().map(|run| run.summary.id.clone()));
        ordered.extend(ready);
        waiting = later;
        if waiting.len() == before {
            // A parent cycle cannot be written by the registry; export the rest unordered.
            ordered.append(&mut waiting);
        }
    }
    ordered
}

/// Where a run artifact goes under the run's MLflow artifacts: model files of versions in
/// `model/`, anything else at its path inside the run's artifact folder.
fn artifact_destination(path: &str, run_id: &str, is_model_file: bool) -> String {
    let file_name = path.rsplit('/').next().unwrap_or(path);
    if is_model_file {
        return format!("{MODEL_FOLDER}/{file_name}");
    }
    path.strip_prefix(&format!("artifacts/{run_id}/")).unwrap_or(file_name).to_owned()
}

/// Milliseconds since the Unix epoch of an RFC 3339 time (none when unreadable).
fn millis(rfc3339: &str) -> Option<i64> {
    let time = humantime::parse_rfc3339(rfc3339).ok()?;
    i64::try_from(time.duration_since(UNIX_EPOCH).ok()?.as_millis()).ok()
}

fn short(run_id: &str) -> &str {
    run_id.get(..12).unwrap_or(run_id)
}

fn label(run: &RunDetail) -> String {
    format!("{} ({})", short(&run.summary.id), run.summary.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_milliseconds_since_the_epoch() {
        assert_eq!(millis("1970-01-01T00:00:01.500000Z"), Some(1500));
        assert_eq!(millis("2026-11-25T10:00:00.123456Z"), Some(1_795_600_800_123));
        assert_eq!(millis("yesterday"), None);
    }

    #[test]
    fn model_files_go_to_the_model_folder() {
        assert_eq!(
            artifact_destination("artifacts/abc/credit-v1.vgm", "abc", true),
            "model/credit-v1.vgm"
        );
        assert_eq!(
            artifact_destination("artifacts/abc/report/drift.html", "abc", false),
            "report/drift.html"
        );
    }
}
