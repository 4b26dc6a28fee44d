//! The feature store through the CLI, on the example project `vigie init`
//! writes: ingest, materialize, online reads, point-in-time training tables,
//! and config errors located by file, line and column.

use crate::support::{Project, read_csv};

fn init(project: &Project) {
    project.ok(&["init", "--rows", "3000", "--format", "json"]);
}

#[test]
fn the_example_project_ingests_materializes_and_serves_features() {
    let project = Project::new();
    init(&project);
    let ingested = project.json(&["ingest", "--format", "json"]);
    let sources: Vec<&serde_json::Value> = ingested.as_array().expect("sources").iter().collect();
    assert_eq!(
        sources.iter().map(|s| s["source"].as_str()).collect::<Vec<_>>(),
        [Some("sales"), Some("transactions")],
        "every source of the example, the forecast model's sales too"
    );
    let transactions = sources[1];
    let stored = transactions["stored"].as_u64().expect("count");
    assert!(stored > 2500, "{ingested}");
    assert_eq!(transactions["read"].as_u64(), Some(stored));
    // Nothing new the second time.
    assert_eq!(project.json(&["ingest", "transactions", "--format", "json"])[0]["stored"], 0);

    let materialized = project.json(&["materialize", "--format", "json"]);
    let view = &materialized[0];
    assert_eq!(view["view"], "customer_activity");
    assert_eq!(view["rows"].as_u64(), Some(stored), "one feature row per transaction");
    assert_eq!(view["late"], 0, "rows of a file are never late");
    let entities = view["keys"].as_u64().expect("keys");
    assert_eq!(view["online_updated"].as_u64(), Some(entities));
    assert_eq!(project.json(&["materialize", "--format", "json"])[0]["online_updated"], 0);
    // The view's cleaning was learned from every row of that first computation.
    assert_eq!(view["cleaning_learned_from_rows"].as_u64(), Some(stored), "{view}");

    // Learning it again is refused while a stream processor holds the project's lock...
    let events = project.path(".vigie/events");
    std::fs::create_dir_all(&events).expect("events dir");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(events.join(".processor.lock"))
        .expect("lock file");
    lock.try_lock().expect("lock");
    let refused = project.fails(&["materialize", "--refit"], 2);
    assert!(refused.contains("another stream processor"), "{refused}");
    drop(lock);
    // ...and done once none runs; nothing changed, so no online row is rewritten.
    let refit = project.json(&["materialize", "--refit", "--format", "json"]);
    assert_eq!(refit[0]["cleaning_learned_from_rows"].as_u64(), Some(stored), "{refit}");
    assert_eq!(refit[0]["online_updated"], 0, "{refit}");

    let got = project.json(&[
        "features",
        "get",
        "customer_activity",
        "--key",
        "customer_id=C0001",
        "--format",
        "json",
    ]);
    assert_eq!(got["key"]["customer_id"], "C0001");
    let features = got["features"].as_object().expect("features");
    for name in ["txn_count_1h", "amount_sum_24h", "devices_7d", "foreign", "night"] {
        assert!(features.contains_key(name), "{name}: {got}");
    }
    assert!(features["txn_count_1h"].as_f64().is_some_and(|c| c >= 1.0), "{got}");
    let category = features["category"].as_str().expect("a cleaned category");
    assert_eq!(category, category.trim().to_lowercase(), "{got}");

    // A training table: labels joined as of each transaction's time.
    let transactions = project.path("data/transactions.csv");
    let out = project.path("training.csv");
    let summary = project.json(&[
        "features",
        "history",
        "--entities",
        transactions.to_str().expect("utf-8"),
        "--features",
        "customer_activity:txn_count_10m,customer_activity:amount_max_7d",
        "--out",
        out.to_str().expect("utf-8"),
        "--format",
        "json",
    ]);
    assert_eq!(summary["time_column"], "ts");
    assert_eq!(summary["rows"].as_u64(), Some(stored));
    let (header, rows) = read_csv(&out);
    assert_eq!(header.last().map(String::as_str), Some("amount_max_7d"));
    let count_at = header.iter().position(|h| h == "txn_count_10m").expect("column");
    let amount_at = header.iter().position(|h| h == "amount").expect("column");
    let max_at = header.iter().position(|h| h == "amount_max_7d").expect("column");
    for row in &rows {
        let count: f64 = row[count_at].parse().expect("a count");
        assert!(count >= 1.0, "every transaction counts itself: {row:?}");
        let amount: f64 = row[amount_at].parse().expect("amount");
        let max: f64 = row[max_at].parse().expect("max");
        assert!(max >= amount, "the 7-day max includes the row's own amount: {row:?}");
    }
    // Card-testing bursts show up as many transactions within ten minutes.
    let fraud_at = header.iter().position(|h| h == "is_fraud").expect("label");
    let burst = |fraud: &str| {
        let picked: Vec<f64> = rows
            .iter()
            .filter(|r| r[fraud_at] == fraud)
            .map(|r| r[count_at].parse::<f64>().expect("count"))
            .collect();
        picked.iter().sum::<f64>() / picked.len().max(1) as f64
    };
    assert!(burst("1") > 2.0 * burst("0"), "fraud {} vs legit {}", burst("1"), burst("0"));

    // The model of vigie.toml trains on the same join, without a file.
    let trained = project.json(&[
        "train",
        "fraud",
        "--cv",
        "2",
        "--algorithm",
        "logistic",
        "--format",
        "json",
    ]);
    assert_eq!(trained["model"], "fraud");
    assert_eq!(trained["rows"].as_u64(), Some(stored));
    assert!(trained["cv"]["roc_auc"]["mean"].as_f64().is_some_and(|auc| auc > 0.9), "{trained}");
    let run = project.json(&[
        "runs",
        "show",
        trained["run_id"].as_str().expect("run"),
        "--format",
        "json",
    ]);
    assert!(run.to_string().contains("labels transactions + customer_activity:*"), "{run}");
    assert!(run.to_string().contains("feature_view.customer_activity"), "lineage: {run}");
}

#[test]
fn feature_commands_refuse_bad_input_with_located_messages() {
    let project = Project::new();
    init(&project);
    let config = project.path("vigie.toml");
    let text = std::fs::read_to_string(&config).expect("read");
    std::fs::write(&config, text.replace("window = \"1h\" }", "windw = \"1h\" }")).expect("write");
    let error = project.fails(&["ingest"], 2);
    assert!(error.contains("vigie.toml:") && error.contains("unknown field `windw`"), "{error}");
    std::fs::write(&config, &text).expect("write");

    let error = project.fails(&["ingest", "payments"], 2);
    assert!(error.contains("no source \"payments\"") && error.contains("transactions"), "{error}");
    let error = project.fails(&["materialize"], 2);
    assert!(error.contains("run `vigie ingest transactions`"), "{error}");
    project.ok(&["ingest"]);
    project.ok(&["materialize"]);
    let error = project.fails(&["features", "get", "customer_activity", "--key", "card=1"], 2);
    assert!(error.contains("keyed by \"customer_id\""), "{error}");
    let error =
        project.fails(&["features", "get", "customer_activity", "--key", "customer_id=nobody"], 2);
    assert!(error.contains("no features of customer_id=nobody"), "{error}");
    let out = project.path("t.csv");
    let error = project.fails(
        &[
            "features",
            "history",
            "--entities",
            project.path("data/transactions.csv").to_str().expect("utf-8"),
            "--features",
            "customer_activity:nope",
            "--out",
            out.to_str().expect("utf-8"),
        ],
        2,
    );
    assert!(error.contains("has no feature \"nope\""), "{error}");
    let error = project.fails(&["train", "churn"], 2);
    assert!(error.contains("no model \"churn\"") && error.contains("fraud"), "{error}");
    let error = project.fails(&["init"], 2);
    assert!(error.contains("--force"), "{error}");
}

#[test]
fn training_from_the_store_brings_its_inputs_up_to_date_first() {
    let project = Project::new();
    init(&project);
    // Nothing ingested or materialized yet: `vigie train fraud` does it.
    let trained = project.json(&["train", "fraud", "--cv", "2", "--format", "json"]);
    let refreshed: Vec<&str> =
        trained["refreshed"].as_array().expect("steps").iter().filter_map(|s| s.as_str()).collect();
    assert_eq!(refreshed.len(), 2, "{trained}");
    let stored: u64 = refreshed[0]
        .strip_prefix("ingested ")
        .and_then(|rest| rest.strip_suffix(" new rows of transactions"))
        .and_then(|n| n.parse().ok())
        .expect("ingested rows");
    assert!(stored > 2500, "{refreshed:?}");
    assert_eq!(refreshed[1], format!("computed customer_activity: {stored} rows"));
    assert_eq!(trained["rows"].as_u64(), Some(stored), "one training row per transaction");

    let again = project.ok(&["train", "fraud", "--cv", "2"]);
    let first = again.lines().next().expect("a line");
    assert_eq!(
        first,
        format!("Ingested 0 new rows of transactions; computed customer_activity: {stored} rows")
    );
}
