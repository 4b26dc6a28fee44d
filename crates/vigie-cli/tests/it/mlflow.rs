//! `vigie mlflow export` against a real MLflow tracking server, read back with MLflow's own
//! Python client. The server comes from `MLFLOW_TRACKING_URI` (`scripts/services.sh` starts
//! one and sets `VIGIE_MLFLOW_PYTHON` to an interpreter that has the client). Without a
//! server the test skips loudly, except in CI (`CI=true`), where it fails.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::Command;

use serde_json::{Value as Json, json};

use crate::support::{Project, data};

/// Reads back what the export wrote, with the official client (mlflow 3.17).
const READ_BACK: &str = r#"
import json, sys
import mlflow
from mlflow import MlflowClient
from mlflow.entities import ViewType

model, experiment, download_dir = sys.argv[1:4]
client = MlflowClient()
found = client.get_experiment_by_name(experiment)
out = {"runs": [], "versions": []}
# Deleted runs too: a run written twice and then deleted would still be a duplicate.
for run in client.search_runs([found.experiment_id], run_view_type=ViewType.ALL, max_results=1000):
    histories = {key: sorted(m.step for m in client.get_metric_history(run.info.run_id, key)) for key in run.data.metrics}
    out["runs"].append({
        "id": run.info.run_id, "vigie_id": run.data.tags.get("vigie.run_id"),
        "parent": run.data.tags.get("mlflow.parentRunId"), "status": run.info.status,
        "user": run.info.user_id, "end_time": run.info.end_time, "params": run.data.params,
        "histories": histories,
    })
for version in client.search_model_versions(f"name='{model}'"):
    out["versions"].append({"version": version.version, "vigie_version": version.tags.get("vigie.version"), "run_id": version.run_id})
out["champion"] = client.get_model_version_by_alias(model, "champion").version
out["downloaded"] = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{model}@champion", dst_path=download_dir)
print(json.dumps(out))
"#;

/// The server to export to, or `None` (after saying so) when there is none outside CI.
fn tracking_server() -> Option<String> {
    if let Some(uri) = std::env::var("MLFLOW_TRACKING_URI").ok().filter(|uri| !uri.is_empty()) {
        return Some(uri);
    }
    assert_ne!(
        std::env::var("CI").as_deref(),
        Ok("true"),
        "CI=true but MLFLOW_TRACKING_URI is unset: in CI the MLflow tests run against a real server \
         (scripts/test.sh starts one through scripts/services.sh)"
    );
    // Straight to the stderr handle, not eprintln!, which the test harness captures.
    let mut stderr = std::io::stderr();
    let _ = writeln!(
        stderr,
        "\n**********************************************************************\n\
         SKIPPED: no MLflow server (run scripts/services.sh)\n\
         `source scripts/services.sh && start_services mlflow` sets MLFLOW_TRACKING_URI\n\
         **********************************************************************\n"
    );
    None
}

fn train(project: &Project, name: &str, extra: &[&str]) -> Json {
    let csv = data("Default.csv").display().to_string();
    let mut args = vec![
        "train", "--data", &csv, "--label", "default", "--name", name, "--cv", "2", "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    project.json(&args)
}

/// The export's counts as `[created, present, skipped]` per kind.
fn counts(summary: &Json) -> BTreeMap<String, [u64; 3]> {
    ["experiments", "runs", "artifacts", "models", "versions", "aliases"]
        .iter()
        .map(|kind| {
            let count = |field: &str| summary[kind][field].as_u64().expect("a count");
            (kind.to_string(), [count("created"), count("present"), count("skipped")])
        })
        .collect()
}

fn expected(rows: &[(&str, [u64; 3])]) -> BTreeMap<String, [u64; 3]> {
    rows.iter().map(|(kind, count)| (kind.to_string(), *count)).collect()
}

#[test]
fn export_writes_runs_versions_aliases_and_model_files_once() {
    let Some(tracking_uri) = tracking_server() else { return };
    let project = Project::new();
    // A name of its own: the server may keep what earlier test runs exported.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    let name = format!("credit-{}-{nanos}", std::process::id());
    let search = ["--algorithm", "gbdt", "--search", "random", "--param", "n_rounds=30"];
    train(&project, &name, &[&search[..], &["--trials", "3"]].concat());
    let second = train(&project, &name, &[&search[..], &["--trials", "2", "--seed", "7"]].concat());
    assert_eq!(second["version"], 2);
    project.json(&["models", "promote", &name, "2", "--format", "json"]);

    let first_export = project.json(&["mlflow", "export", "--format", "json"]);
    assert_eq!(first_export["tracking_uri"], tracking_uri.as_str());
    assert_eq!(
        counts(&first_export),
        expected(&[
            ("experiments", [1, 0, 0]),
            ("runs", [7, 0, 0]), // two search runs and their 3 + 2 trials
            ("artifacts", [2, 0, 0]),
            ("models", [1, 0, 0]),
            ("versions", [2, 0, 0]),
            ("aliases", [1, 0, 0]),
        ])
    );
    let again =
        project.json(&["mlflow", "export", "--tracking-uri", &tracking_uri, "--format", "json"]);
    assert_eq!(
        counts(&again),
        expected(&[
            ("experiments", [0, 1, 0]),
            ("runs", [0, 7, 0]),
            ("artifacts", [0, 2, 0]),
            ("models", [0, 1, 0]),
            ("versions", [0, 2, 0]),
            ("aliases", [0, 1, 0]),
        ])
    );
    assert_eq!(again["metric_values"], 0, "nothing is logged twice");

    let downloads = tempfile::tempdir().expect("temp dir");
    let python = std::env::var("VIGIE_MLFLOW_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let output = Command::new(&python)
        .args(["-c", READ_BACK, &name, &name])
        .arg(downloads.path())
        .env("MLFLOW_TRACKING_URI", &tracking_uri)
        .output()
        .unwrap_or_else(|error| panic!("cannot run {python} (set VIGIE_MLFLOW_PYTHON): {error}"));
    assert!(
        output.status.success(),
        "the MLflow client failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mlflow: Json = serde_json::from_slice(&output.stdout).expect("json from the client");

    // Every Vigie run is in MLflow exactly once, with its status, user, parent, params and
    // the steps of every metric history.
    let runs = project.json(&["runs", "list", "--experiment", &name, "--format", "json"]);
    let runs = runs.as_array().expect("runs");
    let copies = mlflow["runs"].as_array().expect("runs");
    assert_eq!(copies.len(), runs.len(), "one MLflow run per Vigie run, none twice");
    let copy_of: BTreeMap<&str, &Json> = copies
        .iter()
        .map(|copy| (copy["vigie_id"].as_str().expect("vigie.run_id tag"), copy))
        .collect();
    assert_eq!(copy_of.len(), runs.len(), "distinct vigie.run_id tags");
    for run in runs {
        let id = run["id"].as_str().expect("id");
        let copy = copy_of[id];
        let detail = project.json(&["runs", "show", id, "--format", "json"]);
        assert_eq!(copy["status"], detail["status"], "run {id}");
        assert_eq!(copy["user"], detail["user"], "run {id}");
        assert!(copy["end_time"].is_number(), "run {id} has an end time");
        assert_eq!(copy["params"], detail["params"], "run {id}");
        let expected_parent = detail["parent"].as_str().map(|parent| copy_of[parent]["id"].clone());
        assert_eq!(
            copy["parent"],
            expected_parent.unwrap_or(Json::Null),
            "run {id}: mlflow.parentRunId"
        );
        let histories: BTreeMap<&String, Vec<i64>> = detail["metrics"]
            .as_object()
            .expect("metrics")
            .iter()
            .map(|(key, history)| {
                let steps = history
                    .as_array()
                    .expect("history")
                    .iter()
                    .filter(|point| !point["value"].is_null());
                (key, steps.map(|point| point["step"].as_i64().expect("step")).collect())
            })
            .collect();
        let copied: BTreeMap<&String, Vec<i64>> = copy["histories"]
            .as_object()
            .expect("histories")
            .iter()
            .map(|(key, steps)| {
                (
                    key,
                    steps
                        .as_array()
                        .expect("steps")
                        .iter()
                        .map(|s| s.as_i64().expect("step"))
                        .collect(),
                )
            })
            .collect();
        assert_eq!(copied, histories, "run {id}: metric histories, step by step");
    }
    let mut trial_steps: Vec<&Json> =
        copies.iter().filter_map(|copy| copy["histories"].get("trial_roc_auc")).collect();
    trial_steps.sort_by_key(|steps| steps.as_array().map_or(0, Vec::len));
    assert_eq!(
        trial_steps,
        [&json!([0, 1]), &json!([0, 1, 2])],
        "the search runs: one step per trial"
    );

    // Two versions, the champion alias on the second, and its model file byte for byte.
    let mut versions: Vec<(&str, &str)> = mlflow["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| {
            (
                v["version"].as_str().expect("version"),
                v["vigie_version"].as_str().expect("vigie.version tag"),
            )
        })
        .collect();
    versions.sort_unstable();
    assert_eq!(versions, [("1", "1"), ("2", "2")]);
    assert_eq!(mlflow["champion"], "2");
    let local =
        std::fs::read(second["path"].as_str().expect("model path")).expect("local model file");
    let downloaded_dir =
        std::path::PathBuf::from(mlflow["downloaded"].as_str().expect("download path"));
    let file_name = format!("{name}-v2.vgm");
    let downloaded = std::fs::read(downloaded_dir.join(&file_name)).expect("downloaded model file");
    assert!(
        downloaded == local,
        "the champion's file in MLflow differs from {file_name} ({} vs {} bytes)",
        downloaded.len(),
        local.len()
    );
}

#[test]
fn export_errors_name_the_server_and_the_endpoint() {
    let project = Project::new();
    let stderr = project.fails(&["mlflow", "export", "--tracking-uri", "localhost:5000"], 2);
    assert!(stderr.contains("expected the address of an MLflow tracking server"), "{stderr}");

    train(&project, "credit", &["--algorithm", "logistic"]);
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let uri = format!("http://127.0.0.1:{port}");
    let stderr = project.fails(&["mlflow", "export", "--tracking-uri", &uri], 1);
    assert!(stderr.contains(&format!("cannot export to MLflow at {uri}")), "{stderr}");
    assert!(stderr.contains("GET /api/2.0/mlflow/experiments/get-by-name"), "{stderr}");
    assert!(stderr.contains("cannot reach the tracking server"), "{stderr}");
}

#[test]
fn the_mirror_of_vigie_toml_exports_after_each_training_and_alias_move() {
    let Some(uri) = tracking_server() else { return };
    let project = Project::new();
    std::fs::write(
        project.path("vigie.toml"),
        format!("[mlflow]\ntracking_uri = \"{uri}\"\nmirror = true\n"),
    )
    .expect("write vigie.toml");
    let name = format!("mirrored-{}", std::process::id());
    // Trains a version and returns what it said on stderr.
    let train_stderr = || {
        let csv = data("Default.csv").display().to_string();
        let output = project.run(&[
            "train",
            "--data",
            &csv,
            "--label",
            "default",
            "--name",
            &name,
            "--cv",
            "2",
            "--algorithm",
            "logistic",
        ]);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{stderr}");
        stderr
    };
    let stderr = train_stderr();
    assert!(
        stderr.contains(&format!(
            "mirrored to MLflow at {uri}: 1 runs, 1 versions, 1 aliases created"
        )),
        "{stderr}"
    );
    train(&project, &name, &["--algorithm", "logistic"]);
    project.ok(&["models", "promote", &name, "2"]);
    // Everything is already there: an explicit export (to the same server, from vigie.toml) creates nothing.
    let output = project.run(&["mlflow", "export", "--format", "json"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let summary: Json = serde_json::from_slice(&output.stdout).expect("json");
    let counts = counts(&summary);
    for kind in ["runs", "versions", "artifacts"] {
        assert_eq!(counts[kind][0], 0, "{kind} created again: {summary}");
    }
    assert_eq!(counts["versions"][1], 2, "{summary}");
    assert_eq!(summary["tracking_uri"], uri.as_str());

    // A server that is gone: the training still succeeds, with a warning.
    std::fs::write(
        project.path("vigie.toml"),
        "[mlflow]\ntracking_uri = \"http://127.0.0.1:9\"\nmirror = true\n",
    )
    .expect("write vigie.toml");
    let stderr = train_stderr();
    assert!(
        stderr.contains("warning: mirroring to MLflow at http://127.0.0.1:9 failed"),
        "{stderr}"
    );
}
