//! The registry through the CLI: runs tracked by `train`, aliases moved by
//! `promote`, `rollback` and `alias`, and what `predict` serves by default.

use crate::support::{Project, data};

fn train(project: &Project, extra: &[&str]) -> serde_json::Value {
    let csv = data("Default.csv").display().to_string();
    let mut args = vec![
        "train", "--data", &csv, "--label", "default", "--name", "credit", "--cv", "2", "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    project.json(&args)
}

#[test]
fn promote_rollback_and_aliases_decide_what_predict_uses() {
    let project = Project::new();
    let first = train(&project, &["--algorithm", "logistic"]);
    assert_eq!(first["aliases"], serde_json::json!(["champion"]));
    let second = train(&project, &["--algorithm", "gbdt", "--param", "n_rounds=40"]);
    assert_eq!(second["version"], 2);
    assert_eq!(second["aliases"], serde_json::json!([]), "later versions wait for promotion");

    let shown = project.json(&["models", "show", "credit", "--format", "json"]);
    assert_eq!(shown["version"], 1, "the default is the champion");
    let moved = project.json(&[
        "models",
        "promote",
        "credit",
        "2",
        "--reason",
        "better pr_auc",
        "--format",
        "json",
    ]);
    assert_eq!((moved["from_version"].as_u64(), moved["to_version"].as_u64()), (Some(1), Some(2)));
    assert_eq!(project.json(&["models", "show", "credit", "--format", "json"])["version"], 2);
    project.json(&["models", "alias", "credit", "challenger", "1", "--format", "json"]);
    assert_eq!(
        project.json(&["models", "show", "credit@challenger", "--format", "json"])["version"],
        1
    );

    let back =
        project.json(&["models", "rollback", "credit", "--reason", "alert", "--format", "json"]);
    assert_eq!((back["from_version"].as_u64(), back["to_version"].as_u64()), (Some(2), Some(1)));
    let history =
        project.json(&["models", "show", "credit", "--format", "json"])["alias_history"].clone();
    let kinds: Vec<&str> =
        history.as_array().unwrap().iter().map(|m| m["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["move", "move", "move", "rollback"]);

    let compared = project.json(&["models", "compare", "credit:1", "credit:2", "--format", "json"]);
    assert_eq!(compared[0]["algorithm"], "logistic");
    assert_eq!(compared[1]["algorithm"], "gbdt");
    assert!(compared[1]["cv"]["roc_auc"]["mean"].is_number());

    // Refusals change nothing.
    let stderr = project.fails(&["models", "promote", "credit", "9"], 2);
    assert!(stderr.contains("no version 9"), "{stderr}");
    let stderr = project.fails(&["models", "rollback", "credit", "--alias", "challenger"], 2);
    assert!(stderr.contains("no earlier version"), "{stderr}");
    let stderr = project.fails(&["models", "promote", "ghost", "1"], 2);
    assert!(stderr.contains("credit"), "{stderr}");
    assert_eq!(project.json(&["models", "show", "credit", "--format", "json"])["version"], 1);

    // A version an alias points at cannot be deleted; once free, it can.
    let stderr = project.fails(&["models", "delete", "credit", "1"], 2);
    assert!(stderr.contains("@champion") && stderr.contains("@challenger"), "{stderr}");
    project.json(&["models", "promote", "credit", "2", "--format", "json"]);
    project.json(&["models", "alias", "credit", "challenger", "--delete", "--format", "json"]);
    let deleted = project.json(&["models", "delete", "credit", "1", "--format", "json"]);
    assert_eq!(deleted["deleted"], true);
    assert!(project.fails(&["models", "show", "credit:1"], 2).contains("no version 1"));
}

#[test]
fn runs_record_params_metrics_data_and_search_trials() {
    let project = Project::new();
    let summary = train(
        &project,
        &[
            "--algorithm",
            "gbdt",
            "--search",
            "random",
            "--trials",
            "3",
            "--param",
            "n_rounds=30",
            "--experiment",
            "credit-search",
        ],
    );
    let run_id = summary["run_id"].as_str().unwrap().to_owned();
    let run = project.json(&["runs", "show", &run_id[..8], "--format", "json"]);
    assert_eq!(run["status"], "FINISHED");
    assert_eq!(run["experiment"], "credit-search");
    assert_eq!(run["data"]["rows"], 10_000);
    assert_eq!(run["data"]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(run["params"]["algorithm"], "gbdt");
    assert_eq!(run["metrics"]["trial_roc_auc"].as_array().unwrap().len(), 3, "one step per trial");
    assert_eq!(run["metrics"]["fold_roc_auc"].as_array().unwrap().len(), 2, "one step per fold");
    assert!(run["metrics"]["cv_roc_auc"][0]["value"].as_f64().unwrap() > 0.9);
    // Boosting rounds: the validation loss after each round, averaged over folds.
    let rounds = run["metrics"]["round_valid_logloss"].as_array().unwrap();
    assert!(!rounds.is_empty() && rounds.len() <= 30, "one step per round: {}", rounds.len());
    assert_eq!(rounds[0]["step"], 1);
    let loss = |i: usize| rounds[i]["value"].as_f64().unwrap();
    assert!(loss(rounds.len() - 1) < loss(0), "boosting lowers the validation loss");
    assert_eq!(run["children"].as_array().unwrap().len(), 3);
    assert!(run["artifacts"][0]["path"].as_str().unwrap().ends_with("credit-v1.vgm"));
    let best = run["tags"]["best_trial_run"].as_str().unwrap().to_owned();
    let child = project.json(&["runs", "show", &best, "--format", "json"]);
    assert_eq!(child["parent"], run_id.as_str());

    let listed =
        project.json(&["runs", "list", "--experiment", "credit-search", "--format", "json"]);
    assert_eq!(listed.as_array().unwrap().len(), 4);
    let children: Vec<String> = run["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    let compared =
        project.json(&["runs", "compare", &children[0], &children[1], "--format", "json"]);
    assert_ne!(compared[0]["params"]["learning_rate"], compared[1]["params"]["learning_rate"]);

    // A failed training is a FAILED run and registers nothing.
    let csv = data("Default.csv").display().to_string();
    project.fails(
        &[
            "train",
            "--data",
            &csv,
            "--label",
            "default",
            "--name",
            "broken",
            "--param",
            "nonsense=1",
            "--algorithm",
            "gbdt",
        ],
        2,
    );
    let runs = project.json(&["runs", "list", "--experiment", "broken", "--format", "json"]);
    assert_eq!(runs[0]["status"], "FAILED");
    assert!(project.fails(&["models", "show", "broken"], 2).contains("no model named"));
}
