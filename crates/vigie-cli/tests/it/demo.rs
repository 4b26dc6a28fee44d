//! `vigie demo`: the whole loop in one process leaves a project that the other commands
//! see, and its JSON summary reports what the server really answered and counted.

use serde_json::{Value as Json, json};

use crate::support::Project;

fn number(value: &Json, what: &str) -> u64 {
    value.as_u64().unwrap_or_else(|| panic!("{what}: expected a count, got {value}"))
}

#[test]
fn demo_runs_the_loop_and_leaves_a_project_other_commands_see() {
    let project = Project::new();
    let facts = project.json(&["demo", "--format", "json"]);
    let server = &facts["server"];

    // Every customer was scored by entity key, every request answered 200.
    let requests = &server["requests"];
    let sent = number(&requests["sent"], "requests sent");
    assert!(sent > 100, "{requests}");
    assert_eq!(requests["ok"], json!(sent), "{requests}");
    assert_eq!(requests["statuses"], json!({"200": sent}), "{requests}");
    let by_entity = number(&requests["by_entity"], "requests by entity key");
    let by_record = number(&requests["by_record"], "requests by record");
    assert_eq!(by_entity + by_record, sent, "{requests}");
    assert!(by_entity > 0 && number(&requests["fraudulent"]["record"], "frauds replayed") > 0);

    // The last week was kept from training: the models trained on the rows before it, and the
    // records scored are from it (out of sample).
    let data_rows = number(&facts["data"]["rows"], "generated rows");
    let new_rows = number(&facts["new_transactions"]["rows"], "new rows");
    assert!(new_rows > by_record && new_rows < data_rows / 2, "{}", facts["new_transactions"]);
    for model in facts["models"].as_array().expect("models") {
        assert_eq!(number(&model["rows"], "training rows"), data_rows - new_rows, "{model}");
    }

    // The canary (v2) answered some of the traffic, the champion (v1) the rest.
    let variants = server["variants"].as_array().expect("variants");
    let requests_of = |name: &str| {
        variants
            .iter()
            .find(|v| v["variant"] == name)
            .map_or(0, |v| number(&v["requests"], "variant requests"))
    };
    let (champion, canary) = (requests_of("champion"), requests_of("canary"));
    assert!(canary > 0 && champion > canary, "{variants:?}");
    assert!(champion + canary >= sent, "{variants:?}");
    let version_of =
        |name: &str| variants.iter().find(|v| v["variant"] == name).map(|v| &v["version"]);
    assert_eq!(version_of("champion"), Some(&json!(1)));
    assert_eq!(version_of("canary"), Some(&json!(2)));

    // Feedback was accepted and counted in the live metrics.
    let feedback = &server["feedback"];
    let accepted = number(&feedback["accepted"], "feedback accepted");
    assert!(accepted > 0 && feedback["sent"] == json!(accepted), "{feedback}");
    let counted: f64 = server["live"]["vigie_feedback_total"]
        .as_array()
        .expect("vigie_feedback_total samples")
        .iter()
        .map(|sample| sample["value"].as_f64().expect("a value"))
        .sum();
    assert_eq!(counted, accepted as f64, "{}", server["live"]);
    assert!(server["live"]["vigie_live_accuracy"].as_array().is_some_and(|s| !s.is_empty()));

    // The explained transaction is a fraudulent one, with its contributions.
    let explained = &server["explained"];
    assert_eq!(explained["truth"], json!(1), "{explained}");
    let contributions = explained["top_contributions"].as_array().expect("contributions");
    assert!(!contributions.is_empty(), "{explained}");
    assert!(contributions.iter().all(|c| c["contribution"].is_number()), "{explained}");

    // The audit log holds one record per prediction and its chain checks.
    assert_eq!(facts["audit"]["ok"], json!(true));
    assert_eq!(facts["audit"]["records"], json!(sent + 1), "{}", facts["audit"]);

    // Afterwards, the other commands in that folder see the demo's model and log.
    let shown = project.json(&["models", "show", "fraud", "--format", "json"]);
    assert_eq!(shown["version"], json!(1), "{shown}");
    assert!(shown["aliases"].as_array().is_some_and(|a| a.contains(&json!("champion"))), "{shown}");
    assert_eq!(shown["routing"]["spec"]["mode"], json!("canary"), "{shown}");
    let verified = project.json(&["audit", "verify", "--format", "json"]);
    assert_eq!(verified["ok"], json!(true));
    assert_eq!(verified["records"], facts["audit"]["records"]);
    let listed = project.json(&["audit", "list", "--limit", "5", "--format", "json"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(5), "{listed}");

    // A second demo in the same folder is refused without --force.
    let refused = project.fails(&["demo"], 2);
    assert!(refused.contains("--force"), "{refused}");
}

#[test]
fn demo_defaults_to_the_current_folder() {
    let folder = tempfile::tempdir().expect("temp dir");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_vigie"))
        .args(["demo", "--format", "json"])
        .current_dir(folder.path())
        .env_remove("VIGIE_REGISTRY_URL")
        .env_remove("VIGIE_ARTIFACTS_URL")
        .output()
        .expect("run vigie");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let facts: Json = serde_json::from_slice(&output.stdout).expect("json on stdout");
    assert!(folder.path().join("vigie.toml").exists());
    assert!(folder.path().join(".vigie").join("audit").is_dir());
    assert_eq!(facts["models"][0]["version"], json!(1), "{facts}");
}
