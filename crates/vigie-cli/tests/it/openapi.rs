//! `/v1/openapi.json` under `schemathesis` (PyPI): it generates valid and
//! invalid requests for every route of the document and fails on any 5xx,
//! any status or content type the document does not list, any reply that
//! breaks its schema, and any schema-violating request that is accepted.
//! schemathesis comes with `scripts/services.sh` (`pyclients`); without it
//! the test skips loudly, except in CI where it fails.

use std::path::Path;
use std::process::Command;

use serde_json::{Value as Json, json};

use crate::serve::train;
use crate::support::{Project, Server, service};

#[test]
fn schemathesis_finds_no_server_error_and_no_schema_violation() {
    let Some(python) = service(
        "VIGIE_TEST_PYTHON",
        "Python with schemathesis",
        "scripts/services.sh run pyclients -- cargo test -p vigie-cli --test it openapi",
    ) else {
        return;
    };
    let project = Project::new();
    // The example's feature store too, so the online features route has a row to answer with.
    project.ok(&["init", "--rows", "300"]);
    project.ok(&["ingest"]);
    project.ok(&["materialize"]);
    train(&project, "gbdt");
    let server = Server::start(&project, &[]);
    let (status, mut document) = server.get("/v1/openapi.json");
    assert_eq!(status, 200, "{document}");

    // Path parameters pinned to the served model, so that requests reach the
    // model rather than stopping at 404 (unknown names are tested elsewhere).
    for operations in document["paths"].as_object_mut().expect("paths").values_mut() {
        for operation in operations.as_object_mut().expect("operations").values_mut() {
            let parameters = operation.get_mut("parameters").and_then(Json::as_array_mut);
            for parameter in parameters.into_iter().flatten() {
                let pinned = match parameter["name"].as_str() {
                    Some("name") => "credit",
                    Some("version") => "1",
                    Some("view") => "customer_activity",
                    Some("key") => "C0001",
                    _ => continue,
                };
                parameter["schema"] = json!({"type": "string", "enum": [pinned]});
            }
        }
    }
    let pinned = project.path("openapi-pinned.json");
    std::fs::write(&pinned, document.to_string()).expect("write the pinned document");

    let schemathesis = Path::new(&python).with_file_name("schemathesis");
    let output = Command::new(&schemathesis)
        .current_dir(project.dir.path())
        .arg("run")
        .arg(&pinned)
        .args(["--url", &server.base])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_schema_conformance,negative_data_rejection",
        ])
        .args(["--max-examples", "30", "--seed", "1", "--no-color"])
        .output()
        .expect("run schemathesis");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // It ran every operation of the document, not none.
    let operations: usize = document["paths"]
        .as_object()
        .expect("paths")
        .values()
        .map(|ops| ops.as_object().map_or(0, serde_json::Map::len))
        .sum();
    assert!(report.contains(&format!("Tested: {operations}")), "{report}");
}
