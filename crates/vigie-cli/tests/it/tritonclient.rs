//! The KServe V2 routes under the official client, `tritonclient.http` from
//! PyPI, used unchanged: tensors sent and received as JSON and in binary
//! give the scores `vigie predict` gives. The client's Python comes from
//! `scripts/services.sh` (`pyclients`, `VIGIE_TEST_PYTHON`); without it the
//! test skips loudly, except in CI where it fails.

use std::io::Write as _;
use std::process::{Command, Stdio};

use serde_json::{Value as Json, json};

use crate::serve::{close, reference, train};
use crate::support::{Project, Server, service};

const CHECK: &str = include_str!("tritonclient_check.py");

#[test]
fn tritonclient_scores_like_predict_in_json_and_binary() {
    let Some(python) = service(
        "VIGIE_TEST_PYTHON",
        "Python with tritonclient",
        "scripts/services.sh run pyclients -- cargo test -p vigie-cli --test it tritonclient",
    ) else {
        return;
    };
    let project = Project::new();
    train(&project, "gbdt");
    let (records, expected) = reference(&project, 6);
    let server = Server::start(&project, &[]);
    let column = |name: &str| records.iter().map(|r| r[name].clone()).collect::<Vec<_>>();
    let columns = json!({"student": column("student"), "balance": column("balance"), "income": column("income")});

    let script = project.path("tritonclient_check.py");
    std::fs::write(&script, CHECK).expect("write the check script");
    let host = server.base.strip_prefix("http://").expect("http base");
    let mut child = Command::new(python)
        .arg(&script)
        .args([host, "credit"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(columns.to_string().as_bytes())
        .expect("send the columns");
    let output = child.wait_with_output().expect("python ran");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let seen: Json = serde_json::from_slice(&output.stdout).expect("the script's JSON");

    assert_eq!(
        (&seen["live"], &seen["ready"], &seen["server"], &seen["model_ready"]),
        (&json!(true), &json!(true), &json!("vigie"), &json!(true))
    );
    assert_eq!(seen["model_inputs"], json!(["student", "balance", "income"]));
    for mode in ["binary", "json"] {
        let reply = &seen[mode];
        assert_eq!(reply["id"], json!(format!("tc-{mode}")), "{mode}");
        assert_eq!(reply["version"], json!("1"), "{mode}");
        let scores: Vec<f64> = serde_json::from_value(reply["scores"].clone()).expect("scores");
        assert_eq!(scores.len(), expected.len(), "{mode}");
        for (got, want) in scores.iter().zip(&expected) {
            assert!(close(*got, *want), "{mode}: {got} vs vigie predict's {want}");
        }
        let labels: Vec<String> = serde_json::from_value(reply["labels"].clone()).expect("labels");
        assert!(labels.iter().all(|l| l == "Yes" || l == "No"), "{mode}: {labels:?}");
    }
    assert_eq!(seen["versioned_scores"], seen["binary"]["scores"]);
    let error = &seen["unknown_model_error"];
    assert_eq!(error["status"], json!("404"), "{error}");
    assert_eq!(
        error["message"],
        json!("no model \"no-such-model\"; served models: credit"),
        "the protocol's error shape, read by the client"
    );
}
