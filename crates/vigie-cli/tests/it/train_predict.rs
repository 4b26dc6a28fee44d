//! `vigie train`, `vigie predict` and `vigie models` on a real table.

use crate::support::{Project, data, read_csv};

fn default_csv() -> String {
    data("Default.csv").display().to_string()
}

#[test]
fn default_settings_reach_the_quality_floor_and_predictions_are_explained() {
    let project = Project::new();
    let summary = project.json(&[
        "train",
        "--data",
        &default_csv(),
        "--label",
        "default",
        "--name",
        "credit",
        "--format",
        "json",
    ]);
    assert_eq!(summary["model"], "credit");
    assert_eq!(summary["version"], 1);
    assert_eq!(summary["task"], "binary");
    assert_eq!(
        summary["classes"],
        serde_json::json!(["No", "Yes"]),
        "the minority class is positive"
    );
    let auc = summary["cv"]["roc_auc"]["mean"].as_f64().unwrap();
    assert!(auc >= 0.93, "5-fold ROC-AUC {auc} is below the 0.93 floor");
    for metric in ["roc_auc", "pr_auc", "log_loss", "f1", "precision", "recall"] {
        assert!(summary["cv"][metric]["mean"].is_number(), "{metric} missing from {summary}");
    }
    let threshold = summary["threshold"].as_f64().unwrap();
    assert!(threshold > 0.0 && threshold < 1.0);

    let out = project.path("scores.csv");
    project.ok(&[
        "predict",
        "--model",
        "credit",
        "--data",
        &default_csv(),
        "--out",
        out.to_str().unwrap(),
        "--explain",
    ]);
    let (header, rows) = read_csv(&out);
    assert_eq!(rows.len(), 10_000);
    for column in
        ["score", "label", "contrib_student", "contrib_balance", "contrib_income", "contrib_bias"]
    {
        assert!(header.iter().any(|h| h == column), "{column} not in {header:?}");
    }
    let shown = project.json(&["models", "show", "credit:1", "--format", "json"]);
    let algorithm = shown["algorithm"].as_str().unwrap().to_owned();
    let index = |name: &str| header.iter().position(|h| h == name).unwrap();
    let mut positives = 0;
    for row in rows.iter().take(500) {
        let score: f64 = row[index("score")].parse().unwrap();
        let label = &row[index("label")];
        assert_eq!(label == "Yes", score >= threshold, "label follows the threshold");
        positives += usize::from(label == "Yes");
        let raw: f64 = header
            .iter()
            .enumerate()
            .filter(|(_, h)| h.starts_with("contrib_"))
            .map(|(j, _)| row[j].parse::<f64>().unwrap())
            .sum();
        // The contributions add up to the raw output: a logit, or the forest's averaged probability.
        let expected =
            if algorithm == "random-forest" { score } else { (score / (1.0 - score)).ln() };
        assert!(
            (raw - expected).abs() <= 1e-6 * expected.abs().max(1.0) + 1e-9,
            "{algorithm}: {raw} vs {expected}"
        );
    }
    assert!(positives > 0 && positives < 100);

    let listed = project.json(&["models", "list", "--format", "json"]);
    assert_eq!(listed[0]["name"], "credit");
    assert_eq!(listed[0]["latest"], 1);
}

#[test]
fn every_algorithm_trains_saves_and_reloads_to_identical_predictions() {
    let project = Project::new();
    for algorithm in ["gbdt", "random-forest", "logistic", "linear-svm", "mlp"] {
        let summary = project.json(&[
            "train",
            "--data",
            &default_csv(),
            "--label",
            "default",
            "--algorithm",
            algorithm,
            "--cv",
            "2",
            "--name",
            algorithm,
            "--format",
            "json",
        ]);
        assert_eq!(summary["algorithm"], algorithm);
        let auc = summary["cv"]["roc_auc"]["mean"].as_f64().unwrap();
        assert!(auc > 0.85, "{algorithm}: ROC-AUC {auc}");
        // The forest also scores itself out of bag; the others have no such estimate.
        let oob = summary["oob"]["roc_auc"].as_f64();
        if algorithm == "random-forest" {
            let oob = oob.unwrap();
            assert!((oob - auc).abs() < 0.05, "out-of-bag {oob} vs cross-validated {auc}");
        } else {
            assert!(oob.is_none(), "{algorithm} has no out-of-bag score");
        }
        let first = project.path(&format!("{algorithm}-1.csv"));
        let second = project.path(&format!("{algorithm}-2.csv"));
        for out in [&first, &second] {
            project.ok(&[
                "predict",
                "--model",
                algorithm,
                "--data",
                &default_csv(),
                "--out",
                out.to_str().unwrap(),
            ]);
        }
        assert_eq!(std::fs::read(&first).unwrap(), std::fs::read(&second).unwrap());
    }
}

#[test]
fn search_is_reproducible_with_a_seed_and_versions_increase() {
    let project = Project::new();
    let args = [
        "train",
        "--data",
        &default_csv(),
        "--label",
        "default",
        "--algorithm",
        "gbdt",
        "--search",
        "random",
        "--trials",
        "3",
        "--cv",
        "2",
        "--seed",
        "7",
        "--name",
        "searched",
        "--param",
        "n_rounds=60",
        "--format",
        "json",
    ];
    let first = project.json(&args);
    let second = project.json(&args);
    assert_eq!(first["version"], 1);
    assert_eq!(second["version"], 2);
    assert_eq!(first["trials"].as_array().unwrap().len(), 3);
    assert_eq!(first["params"], second["params"]);
    assert_eq!(first["cv"], second["cv"]);
}

#[test]
fn bad_input_gets_a_precise_error_and_no_model() {
    let project = Project::new();
    let csv = default_csv();
    let stderr = project.fails(&["train", "--data", &csv, "--label", "defaulted"], 2);
    assert!(stderr.contains("\"defaulted\"") && stderr.contains("balance"), "{stderr}");
    let stderr = project.fails(&["train", "--data", "nowhere.csv", "--label", "default"], 2);
    assert!(stderr.contains("nowhere.csv"), "{stderr}");
    let one_class = project.path("one.csv");
    std::fs::write(&one_class, "x,y\n1,a\n2,a\n").unwrap();
    let stderr =
        project.fails(&["train", "--data", one_class.to_str().unwrap(), "--label", "y"], 2);
    assert!(stderr.contains("single class"), "{stderr}");
    let stderr = project
        .fails(&["train", "--data", &csv, "--label", "default", "--algorithm", "boosting"], 2);
    assert!(stderr.contains("boosting"), "{stderr}");
    let stderr = project.fails(
        &[
            "train",
            "--data",
            &csv,
            "--label",
            "default",
            "--param",
            "learning_rat=0.1",
            "--algorithm",
            "gbdt",
        ],
        2,
    );
    assert!(stderr.contains("learning_rat"), "{stderr}");
    assert!(
        project.json(&["models", "list", "--format", "json"]).as_array().unwrap().is_empty(),
        "nothing saved"
    );

    let stderr =
        project.fails(&["predict", "--model", "ghost", "--data", &csv, "--out", "x.csv"], 2);
    assert!(stderr.contains("ghost"), "{stderr}");

    // A model, then a table whose numeric column holds a word.
    project.ok(&[
        "train",
        "--data",
        &csv,
        "--label",
        "default",
        "--algorithm",
        "logistic",
        "--cv",
        "2",
        "--name",
        "m",
    ]);
    let bad = project.path("bad.csv");
    std::fs::write(
        &bad,
        "default,student,balance,income\nNo,No,729.5,44361.6\nNo,Yes,lots,12106.1\n",
    )
    .unwrap();
    let stderr = project
        .fails(&["predict", "--model", "m", "--data", bad.to_str().unwrap(), "--out", "o.csv"], 2);
    assert!(
        stderr.contains("lots") && stderr.contains("balance") && stderr.contains("bad.csv"),
        "{stderr}"
    );
    let missing_column = project.path("missing.csv");
    std::fs::write(&missing_column, "student,income\nNo,1\n").unwrap();
    let stderr = project.fails(
        &["predict", "--model", "m", "--data", missing_column.to_str().unwrap(), "--out", "o.csv"],
        2,
    );
    assert!(stderr.contains("balance"), "{stderr}");
    let stderr = project.fails(&["predict", "--model", "m:9", "--data", &csv, "--out", "o.csv"], 2);
    assert!(stderr.contains("no version 9"), "{stderr}");

    // Damaged model files are refused with their own message.
    let shown = project.json(&["models", "show", "m", "--format", "json"]);
    let file = std::path::PathBuf::from(shown["path"].as_str().unwrap());
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    let stderr = project.fails(&["models", "show", "m"], 1);
    assert!(stderr.contains("truncated"), "{stderr}");
    let mut flipped = bytes.clone();
    let last = flipped.len() - 10;
    flipped[last] ^= 0x55;
    std::fs::write(&file, &flipped).unwrap();
    assert!(project.fails(&["models", "show", "m"], 1).contains("checksum"));
    let mut newer = bytes;
    newer[8..12].copy_from_slice(&7u32.to_le_bytes());
    std::fs::write(&file, &newer).unwrap();
    assert!(project.fails(&["models", "show", "m"], 1).contains("newer Vigie"));
}

#[test]
fn regression_and_multiclass_predictions_have_their_columns() {
    let project = Project::new();
    let summary = project.json(&[
        "train",
        "--data",
        &default_csv(),
        "--label",
        "income",
        "--ignore",
        "default",
        "--cv",
        "3",
        "--name",
        "income",
        "--format",
        "json",
    ]);
    assert_eq!(summary["task"], "regression");
    assert!(summary["cv"]["rmse"]["mean"].as_f64().unwrap() > 0.0);
    assert!(summary["threshold"].is_null());
    let out = project.path("income.csv");
    project.ok(&[
        "predict",
        "--model",
        "income",
        "--data",
        &default_csv(),
        "--out",
        out.to_str().unwrap(),
        "--id",
        "default",
    ]);
    let (header, rows) = read_csv(&out);
    assert_eq!(header, ["default", "score"]);
    assert_eq!(rows.len(), 10_000);

    // Three classes from a seeded rule over two numbers.
    let table = project.path("three.csv");
    let mut text = String::from("id,x,y,class\n");
    for i in 0..600 {
        let (x, y) = ((i * 37 % 100) as f64 / 10.0, (i * 53 % 100) as f64 / 10.0);
        let class = if x + y < 7.0 {
            "low"
        } else if x > y {
            "right"
        } else {
            "up"
        };
        text.push_str(&format!("{i},{x},{y},{class}\n"));
    }
    std::fs::write(&table, text).unwrap();
    let summary = project.json(&[
        "train",
        "--data",
        table.to_str().unwrap(),
        "--label",
        "class",
        "--ignore",
        "id",
        "--algorithm",
        "gbdt",
        "--cv",
        "3",
        "--format",
        "json",
    ]);
    assert_eq!(summary["task"], "multiclass");
    assert_eq!(summary["classes"], serde_json::json!(["low", "right", "up"]));
    assert!(summary["cv"]["f1_macro"]["mean"].as_f64().unwrap() > 0.8, "{summary}");
    let out = project.path("three-out.csv");
    project.ok(&[
        "predict",
        "--model",
        "three",
        "--data",
        table.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--explain",
    ]);
    let (header, rows) = read_csv(&out);
    assert_eq!(&header[..6], ["id", "score", "p_low", "p_right", "p_up", "label"]);
    assert!(
        header.contains(&"contrib_x".to_owned()) && header.contains(&"contrib_bias".to_owned())
    );
    let correct = rows
        .iter()
        .filter(|r| {
            let (x, y): (f64, f64) = (
                r[0].parse::<usize>().map(|i| (i * 37 % 100) as f64 / 10.0).unwrap(),
                r[0].parse::<usize>().map(|i| (i * 53 % 100) as f64 / 10.0).unwrap(),
            );
            let class = if x + y < 7.0 {
                "low"
            } else if x > y {
                "right"
            } else {
                "up"
            };
            r[5] == class
        })
        .count();
    assert!(correct > 540, "{correct} of 600 labels right");
}
