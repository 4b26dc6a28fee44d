//! `vigie serve` over real HTTP on 127.0.0.1: the KServe V2, MLflow scoring
//! and /v1 routes give the scores `vigie predict` gives (a batch large enough
//! to be scored off the async runtime too), errors are 4xx with a JSON body
//! naming the problem, and a promotion is served without a restart. Under
//! load and when stopping: a request over `--max-in-flight` is shed with 503
//! while probes answer, SIGTERM lets a request in flight finish and be
//! audited before the process exits 0, and readiness names what is not
//! ready (a MongoDB that is down is not).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value as Json, json};

use crate::support::{Project, Server, data, eventually, read_csv};

/// Sends only the head of a POST whose `Content-Length` says
/// `declared` bytes: the server must refuse it from the head alone. (A
/// client that writes the whole oversized body races the server closing
/// the connection and may see a broken pipe instead of the reply.)
fn post_declaring(server: &Server, path: &str, declared: usize) -> (u16, Json) {
    let mut stream = TcpStream::connect(server.host()).expect("connect");
    stream.write_all(post_head(server, path, declared).as_bytes()).expect("write the head");
    read_reply(stream)
}

/// The head of a JSON POST of `length` bytes on a connection closed after the reply.
fn post_head(server: &Server, path: &str, length: usize) -> String {
    let host = server.host();
    format!(
        "POST {path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\ncontent-length: {length}\r\nconnection: close\r\n\r\n"
    )
}

/// The status and body of the reply on `stream`, read until the server closes it.
fn read_reply(mut stream: TcpStream) -> (u16, Json) {
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).expect("read the reply");
    let reply = String::from_utf8(reply).expect("utf-8 reply");
    let status = reply.split(' ').nth(1).and_then(|code| code.parse().ok()).expect("a status line");
    let body = reply.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    (status, serde_json::from_str(body).unwrap_or(Json::String(body.to_owned())))
}

/// A POST held in flight: its head and the first half of its body are sent,
/// the rest only by [`HeldRequest::finish`], so the server handles it (waiting
/// for the body) for as long as the test needs.
struct HeldRequest {
    stream: TcpStream,
    rest: Vec<u8>,
}

impl HeldRequest {
    fn start(server: &Server, path: &str, body: &Json) -> HeldRequest {
        let body = body.to_string().into_bytes();
        let mut stream = TcpStream::connect(server.host()).expect("connect");
        let (first, rest) = body.split_at(body.len() / 2);
        stream.write_all(post_head(server, path, body.len()).as_bytes()).expect("write the head");
        stream.write_all(first).expect("write half the body");
        HeldRequest { stream, rest: rest.to_vec() }
    }

    /// Sends the rest of the body; the reply.
    fn finish(mut self) -> (u16, Json) {
        self.stream.write_all(&self.rest).expect("write the rest of the body");
        read_reply(self.stream)
    }
}

/// The value of an unlabelled metric in `/metrics`.
fn metric(server: &Server, name: &str) -> Option<f64> {
    let (status, text) = server.get("/metrics");
    assert_eq!(status, 200, "{text}");
    let text = text.as_str().unwrap_or_default().to_owned();
    text.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Waits until the server counts `n` requests in flight.
fn wait_in_flight(server: &Server, n: f64) {
    eventually("the held request in flight", Duration::from_secs(30), || {
        (metric(server, "vigie_requests_in_flight") == Some(n)).then_some(())
    });
}

/// Trains the model `credit` on Default.csv with `algorithm` (2-fold CV).
pub fn train(project: &Project, algorithm: &str) -> Json {
    let csv = data("Default.csv").display().to_string();
    project.json(&[
        "train",
        "--data",
        &csv,
        "--label",
        "default",
        "--name",
        "credit",
        "--cv",
        "2",
        "--algorithm",
        algorithm,
        "--format",
        "json",
    ])
}

/// The first rows of Default.csv and the scores `vigie predict` gives them.
pub fn reference(project: &Project, rows: usize) -> (Vec<Json>, Vec<f64>) {
    let out = project.path("scores.csv");
    let csv = data("Default.csv").display().to_string();
    project.ok(&[
        "predict",
        "--model",
        "credit",
        "--data",
        &csv,
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    let (header, scored) = read_csv(&out);
    let score_at = header.iter().position(|h| h == "score").expect("score");
    let (input_header, inputs) = read_csv(&data("Default.csv"));
    let records = inputs
        .iter()
        .take(rows)
        .map(|row| {
            let mut record = serde_json::Map::new();
            for (name, cell) in input_header.iter().zip(row) {
                let name = name.trim_matches('"');
                let cell = cell.trim_matches('"');
                let value = cell.parse::<f64>().map_or_else(|_| json!(cell), |x| json!(x));
                record.insert(name.to_owned(), value);
            }
            Json::Object(record)
        })
        .collect();
    let scores = scored.iter().take(rows).map(|r| r[score_at].parse().expect("score")).collect();
    (records, scores)
}

pub fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(1.0)
}

#[test]
fn every_protocol_scores_like_predict_and_refuses_bad_requests_with_json() {
    let project = Project::new();
    train(&project, "gbdt");
    // 600 rows: over the 256 scored inline, so scored on the blocking pool.
    let (batch, batch_expected) = reference(&project, 600);
    let (records, expected) = (batch[..5].to_vec(), batch_expected[..5].to_vec());
    let server = Server::start(&project, &[]);

    assert_eq!(server.get("/v2/health/live"), (200, json!({"live": true})));
    assert_eq!(server.get("/v2/health/ready").0, 200);
    let (status, metadata) = server.get("/v2/models/credit");
    assert_eq!(status, 200);
    assert_eq!(metadata["versions"], json!(["1"]));
    let inputs: Vec<&str> = metadata["inputs"]
        .as_array()
        .expect("inputs")
        .iter()
        .filter_map(|i| i["name"].as_str())
        .collect();
    assert_eq!(inputs, ["student", "balance", "income"]);

    // KServe V2: one tensor per column.
    let column = |name: &str| records.iter().map(|r| r[name].clone()).collect::<Vec<_>>();
    let infer = json!({"id": "r1", "inputs": [
        {"name": "student", "shape": [5], "datatype": "BYTES", "data": column("student")},
        {"name": "balance", "shape": [5], "datatype": "FP64", "data": column("balance")},
        {"name": "income", "shape": [5, 1], "datatype": "FP64", "data": column("income")},
    ]});
    let (status, reply) = server.post("/v2/models/credit/infer", &infer.to_string());
    assert_eq!(status, 200, "{reply}");
    assert_eq!((reply["id"].as_str(), reply["model_version"].as_str()), (Some("r1"), Some("1")));
    let scores: Vec<f64> = reply["outputs"][0]["data"]
        .as_array()
        .expect("scores")
        .iter()
        .filter_map(Json::as_f64)
        .collect();
    assert!(scores.iter().zip(&expected).all(|(a, b)| close(*a, *b)), "{scores:?} vs {expected:?}");
    assert_eq!(server.post("/v2/models/credit/versions/1/infer", &infer.to_string()).0, 200);

    // MLflow scoring: records and split frames.
    let (status, reply) =
        server.post("/invocations", &json!({"dataframe_records": records}).to_string());
    assert_eq!(status, 200, "{reply}");
    let scores: Vec<f64> = reply["predictions"]
        .as_array()
        .expect("predictions")
        .iter()
        .filter_map(|p| p["score"].as_f64())
        .collect();
    assert!(scores.iter().zip(&expected).all(|(a, b)| close(*a, *b)), "{scores:?}");
    let split = json!({"dataframe_split": {"columns": ["balance", "income", "student"],
        "data": records.iter().map(|r| json!([r["balance"], r["income"], r["student"]])).collect::<Vec<_>>()}});
    let (status, reply) = server.post("/invocations", &split.to_string());
    assert_eq!(status, 200, "{reply}");
    assert!(close(reply["predictions"][0]["score"].as_f64().expect("score"), expected[0]));
    assert_eq!(server.get("/ping").0, 200);

    // Vigie's own route, with explanations over the input columns.
    let (status, reply) = server.post(
        "/v1/models/credit/predict",
        &json!({"records": records, "explain": true}).to_string(),
    );
    assert_eq!(status, 200, "{reply}");
    assert_eq!((reply["model"].as_str(), reply["version"].as_u64()), (Some("credit"), Some(1)));
    assert!(reply["request_id"].as_str().is_some_and(|id| !id.is_empty()));
    let first = &reply["predictions"][0];
    assert!(close(first["score"].as_f64().expect("score"), expected[0]));
    let contributions = first["contributions"].as_object().expect("contributions");
    assert_eq!(contributions.len(), 3);
    let margin: f64 = contributions.values().filter_map(Json::as_f64).sum::<f64>()
        + first["bias"].as_f64().expect("bias");
    assert!(close(1.0 / (1.0 + (-margin).exp()), expected[0]), "contributions add up to the score");

    // A large batch, and one explained (weighing more): scored off the runtime, same scores.
    for (rows, explain) in [(batch.len(), false), (20, true)] {
        let (status, reply) = server.post(
            "/v1/models/credit/predict",
            &json!({"records": batch[..rows], "explain": explain}).to_string(),
        );
        assert_eq!(status, 200, "{reply}");
        let scores: Vec<f64> = reply["predictions"]
            .as_array()
            .expect("predictions")
            .iter()
            .filter_map(|p| p["score"].as_f64())
            .collect();
        assert_eq!(scores.len(), rows);
        assert!(scores.iter().zip(&batch_expected).all(|(a, b)| close(*a, *b)), "{rows} rows");
        let explained =
            reply["predictions"][rows - 1]["contributions"].as_object().map(|c| c.len());
        assert_eq!(explained, explain.then_some(3));
    }

    // Bad requests: 4xx with a JSON body naming the problem: `{"error":
    // {"code", "message"}}`, or on KServe V2 routes that protocol's
    // `{"error": "message"}`.
    let refused = |status: u16, reply: &Json, part: &str| {
        assert!((400..500).contains(&status), "{status}: {reply}");
        let message =
            reply["error"]["message"].as_str().or(reply["error"].as_str()).unwrap_or_default();
        assert!(message.contains(part), "{part:?} not in {reply}");
    };
    let (status, reply) = server.post("/v1/models/nope/predict", "{\"records\": []}");
    refused(status, &reply, "no model \"nope\"; served models: credit");
    let (status, reply) = server.post("/v1/models/credit/predict", "{\"records\": [");
    refused(status, &reply, "malformed JSON at line 1");
    let (status, reply) = server.post(
        "/v1/models/credit/predict",
        &json!({"records": [{"student": "No", "balance": "lots", "income": 1}]}).to_string(),
    );
    refused(status, &reply, "field \"balance\" must be a number");
    let (status, reply) = server.post(
        "/v1/models/credit/predict",
        &json!({"records": [{"student": "No", "income": 1}]}).to_string(),
    );
    refused(status, &reply, "missing field \"balance\"");
    let (status, reply) = server.post("/v2/models/credit/infer", &json!({"inputs": [{"name": "balance", "shape": [2, 2], "datatype": "FP64", "data": [1, 2, 3, 4]}]}).to_string());
    refused(status, &reply, "shape [2, 2]");
    let (status, reply) = server.post("/invocations", "{\"columns\": []}");
    refused(status, &reply, "expected one of dataframe_split");
    let (status, reply) = server.get("/v2/models/credit/versions/9");
    refused(status, &reply, "9");
    let (status, reply) = server.get("/nowhere");
    refused(status, &reply, "no route /nowhere");
    let (status, reply) = post_declaring(&server, "/v1/models/credit/predict", 10 * 1024 * 1024);
    assert_eq!(status, 413, "{reply}");
    refused(status, &reply, "larger than 8388608 bytes");
}

#[test]
fn a_promotion_is_served_without_a_restart() {
    let project = Project::new();
    train(&project, "logistic");
    let server = Server::start(&project, &["--model", "credit"]);
    assert_eq!(server.get("/v2/models/credit").1["versions"], json!(["1"]));
    train(&project, "gbdt");
    project.ok(&["models", "promote", "credit", "2"]);
    let serves = |version: &str| {
        (server.get("/v2/models/credit").1["versions"] == json!([version])).then_some(())
    };
    eventually("v2 served", Duration::from_secs(30), || serves("2"));
    project.ok(&["models", "rollback", "credit"]);
    eventually("the rollback served", Duration::from_secs(30), || serves("1"));
    // Non-loopback addresses are refused until authentication exists.
    let error = project.fails(&["serve", "--addr", "0.0.0.0:8080"], 2);
    assert!(error.contains("loopback addresses only"), "{error}");
}

#[test]
fn a_request_over_max_in_flight_is_shed_with_503_while_probes_answer() {
    let project = Project::new();
    train(&project, "logistic");
    let (records, _) = reference(&project, 2);
    let server = Server::start(&project, &["--max-in-flight", "1"]);
    let body = json!({"records": records});
    let held = HeldRequest::start(&server, "/v1/models/credit/predict", &body);
    wait_in_flight(&server, 1.0);

    let mut shed = server
        .agent
        .post(format!("{}/invocations", server.base))
        .header("content-type", "application/json")
        .send(json!({"dataframe_records": records}).to_string())
        .expect("an answer");
    assert_eq!(shed.status().as_u16(), 503);
    assert_eq!(shed.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    let reply: Json = serde_json::from_str(&shed.body_mut().read_to_string().expect("body"))
        .expect("a JSON body");
    assert_eq!(reply["error"]["code"], json!("service_unavailable"), "{reply}");
    let message = reply["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("limit of 1 requests (--max-in-flight)"), "{reply}");
    // Probes are neither counted nor shed.
    for probe in ["/v2/health/live", "/v2/health/ready", "/v2/models/credit/ready", "/ping"] {
        assert_eq!(server.get(probe).0, 200, "{probe}");
    }
    assert_eq!(metric(&server, "vigie_requests_shed_total"), Some(1.0));

    // The held request was not disturbed, and its place is free again once answered.
    let (status, reply) = held.finish();
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["predictions"].as_array().map(Vec::len), Some(2), "{reply}");
    assert_eq!(server.post("/v1/models/credit/predict", &body.to_string()).0, 200);
    assert_eq!(metric(&server, "vigie_requests_shed_total"), Some(1.0));
}

#[test]
fn sigterm_lets_a_request_in_flight_finish_audited_and_exits_0() {
    let project = Project::new();
    train(&project, "logistic");
    let (records, expected) = reference(&project, 3);
    // v2 shadows v1: its scoring starts after the reply, and the drain waits for its record.
    train(&project, "gbdt");
    project.ok(&["models", "promote", "credit", "1"]);
    project.ok(&["models", "route", "credit", "--shadow", "2"]);
    let mut server = Server::start(&project, &[]);
    let held =
        HeldRequest::start(&server, "/v1/models/credit/predict", &json!({"records": records}));
    wait_in_flight(&server, 1.0);

    let pid = server.child.id().to_string();
    let killed = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
    assert!(killed.success());
    // A connection made before the signal was handled may still be accepted; after, none is.
    let host = server.host().to_owned();
    eventually("new connections refused", Duration::from_secs(30), || {
        TcpStream::connect(&host).is_err().then_some(())
    });
    assert!(server.child.try_wait().expect("the process").is_none(), "it exited before the reply");

    let (status, reply) = held.finish();
    assert_eq!(status, 200, "{reply}");
    let scores: Vec<f64> = reply["predictions"]
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|p| p["score"].as_f64())
        .collect();
    assert!(scores.iter().zip(&expected).all(|(a, b)| close(*a, *b)), "{scores:?}");
    let exit = eventually("vigie serve exits", Duration::from_secs(30), || {
        server.child.try_wait().expect("the process")
    });
    assert_eq!(exit.code(), Some(0), "{exit:?}");

    let request_id = reply["request_id"].as_str().expect("a request id");
    let listed = project.json(&["audit", "list", "--request-id", request_id, "--format", "json"]);
    let variants: Vec<(&Json, &Json, usize)> = listed
        .as_array()
        .expect("records")
        .iter()
        .map(|r| (&r["variant"], &r["version"], r["rows"].as_array().map_or(0, Vec::len)))
        .collect();
    // Newest first: the shadow's record follows the answer's.
    assert_eq!(
        variants,
        [(&json!("shadow"), &json!(2), 3), (&json!("champion"), &json!(1), 3)],
        "{listed}"
    );
    let verified = project.json(&["audit", "verify", "--format", "json"]);
    assert_eq!((verified["ok"].clone(), verified["records"].clone()), (json!(true), json!(2)));
}

#[test]
fn readiness_names_what_is_not_ready_and_a_prediction_store_down_is_not_one() {
    let project = Project::new();
    // A MongoDB address where nothing listens: the port of a listener just closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    std::fs::write(
        project.path("vigie.toml"),
        format!("[predictions]\nurl = \"mongodb://127.0.0.1:{port}\"\n"),
    )
    .expect("write vigie.toml");
    train(&project, "logistic");
    let (records, _) = reference(&project, 1);
    let server = Server::start(&project, &[]);
    let (status, ready) = server.get("/v2/health/ready");
    assert_eq!(status, 200, "{ready}");
    assert_eq!((ready["ready"].clone(), ready["models"].clone()), (json!(true), json!(1)));
    for check in ["draining", "catalog", "audit", "online_store"] {
        assert_eq!(ready["checks"][check]["ok"], json!(true), "{check}: {ready}");
    }

    // MongoDB is down: predictions are answered and spooled, and the server stays ready.
    let (status, reply) =
        server.post("/v1/models/credit/predict", &json!({"records": records}).to_string());
    assert_eq!(status, 200, "{reply}");
    let store = eventually("the prediction store's outage reported", LIMIT, || {
        let (status, ready) = server.get("/v2/health/ready");
        assert_eq!(status, 200, "{ready}");
        let store = ready["checks"]["prediction_store"].clone();
        (store["ok"] == json!(false)).then_some(store)
    });
    assert_eq!(store["required"], json!(false), "{store}");
    assert!(store["detail"].as_str().is_some_and(|d| d.contains("spooled")), "{store}");

    // An online store that cannot be read makes the server unready, naming it; a model that
    // reads no features from it stays ready, and liveness is not readiness.
    std::fs::write(project.path(".vigie/online.db"), "not a database").expect("a broken store");
    let (status, ready) = server.get("/v2/health/ready");
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["ready"], json!(false), "{ready}");
    let error = ready["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("not ready: online_store: "), "{ready}");
    assert!(!error.contains("prediction_store"), "{ready}");
    let (status, model) = server.get("/v2/models/credit/ready");
    assert_eq!(status, 200, "{model}");
    assert_eq!(model["checks"].get("online_store"), None, "{model}");
    for live in ["/v2/health/live", "/ping", "/health"] {
        assert_eq!(server.get(live).0, 200, "{live}");
    }
    std::fs::remove_file(project.path(".vigie/online.db")).expect("remove the broken store");
    assert_eq!(server.get("/v2/health/ready").0, 200);
}

/// How long a change may take to show on a slow machine.
const LIMIT: Duration = Duration::from_secs(60);
