//! Routing between versions in `vigie serve`, over real HTTP on 127.0.0.1: a canary takes its
//! share of distinct keys and each key sticks to one version, a shadow is scored and audited
//! but never answered, an A/B test splits and counts per variant, routing changes and rollbacks made
//! while a client hammers the server fail no request, and the admin routes refuse bad changes
//! with 4xx JSON; two replicas on one PostgreSQL registry (`VIGIE_TEST_POSTGRES_URL`) follow
//! one routing change. Bounds are statistical (binomial), never timings.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::{Value as Json, json};

use crate::support::{Project, data, eventually};

/// How long a routing change may take to be served on a slow machine.
const LIMIT: Duration = Duration::from_secs(60);

/// A running `vigie serve --model credit`, with routing's requests.
struct Server(crate::support::Server);

/// One HTTP answer.
struct Reply {
    status: u16,
    body: Json,
    headers: BTreeMap<String, String>,
}

impl Server {
    fn start(project: &Project) -> Server {
        Server(crate::support::Server::start(project, &["--model", "credit"]))
    }

    fn reply(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
        let mut response = response.expect("an HTTP answer");
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
            .collect();
        let text = response.body_mut().read_to_string().expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Json::String(text));
        Reply { status, body, headers }
    }

    fn get(&self, path: &str) -> Reply {
        Server::reply(self.0.agent.get(format!("{}{path}", self.0.base)).call())
    }

    fn post(&self, path: &str, body: &Json, headers: &[(&str, &str)]) -> Reply {
        let mut request = self
            .0
            .agent
            .post(format!("{}{path}", self.0.base))
            .header("content-type", "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Server::reply(request.send(body.to_string()))
    }

    fn put(&self, path: &str, body: &Json) -> Reply {
        Server::reply(
            self.0
                .agent
                .put(format!("{}{path}", self.0.base))
                .header("content-type", "application/json")
                .send(body.to_string()),
        )
    }

    /// Sets the routing through the admin route; the reply comes once it is served.
    fn route(&self, routing: Json) -> Json {
        let reply = self.put("/v1/models/credit/routing", &routing);
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body
    }

    /// The version and variant that answer one record routed by `key`.
    fn predict(&self, key: &str) -> (u64, String, f64) {
        let reply = self.post("/v1/models/credit/predict", &predict_body(key), &[]);
        assert_eq!(reply.status, 200, "{}", reply.body);
        answered(&reply.body)
    }

    /// The per-variant counters, by variant name.
    fn variants(&self) -> BTreeMap<String, Json> {
        let reply = self.get("/v1/models/credit/variants");
        assert_eq!(reply.status, 200, "{}", reply.body);
        let variants = reply.body["variants"].as_array().expect("variants").clone();
        variants.into_iter().map(|v| (v["variant"].as_str().unwrap_or("").to_owned(), v)).collect()
    }
}

fn record() -> Json {
    json!({"student": "No", "balance": 1500.0, "income": 30000.0})
}

fn predict_body(key: &str) -> Json {
    json!({"key": key, "records": [record()]})
}

fn answered(body: &Json) -> (u64, String, f64) {
    (
        body["version"].as_u64().expect("version"),
        body["variant"].as_str().expect("variant").to_owned(),
        body["predictions"][0]["score"].as_f64().expect("score"),
    )
}

fn copy_folder(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create a folder");
    for entry in std::fs::read_dir(from).expect("read a folder") {
        let entry = entry.expect("an entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a file type").is_dir() {
            copy_folder(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy a file");
        }
    }
}

/// Trains `credit` v1 (logistic, champion) and v2 (gbdt) in `project`'s registry.
fn train_two_versions(project: &Project) {
    for algorithm in ["logistic", "gbdt"] {
        crate::serve::train(project, algorithm);
    }
}

/// A fresh project whose registry holds `credit` v1 (logistic, champion) and v2 (gbdt),
/// trained once per test run and copied.
fn project_with_two_versions() -> Project {
    static TEMPLATE: OnceLock<Project> = OnceLock::new();
    let template = TEMPLATE.get_or_init(|| {
        let project = Project::new();
        train_two_versions(&project);
        project
    });
    let project = Project::new();
    copy_folder(&template.path(".vigie"), &project.path(".vigie"));
    project
}

/// Whether `hits` of `n` draws are within 5 standard deviations of a share `p`.
fn binomial_close(hits: usize, n: usize, p: f64) -> bool {
    let expected = n as f64 * p;
    let deviation = (n as f64 * p * (1.0 - p)).sqrt();
    (hits as f64 - expected).abs() <= 5.0 * deviation
}

#[test]
fn a_canary_takes_its_share_of_keys_and_each_key_sticks_to_one_version() {
    let project = project_with_two_versions();
    let server = Server::start(&project);
    let served =
        server.route(json!({"mode": "canary", "version": 2, "weight": 20, "reason": "try"}));
    assert_eq!(
        served["serving"]["variants"][0],
        json!({"name": "canary", "version": 2, "weight": 20.0})
    );

    let n = 2000;
    let first: Vec<(u64, String, f64)> =
        (0..n).map(|i| server.predict(&format!("customer-{i}"))).collect();
    let canary = first.iter().filter(|(version, _, _)| *version == 2).count();
    assert!(binomial_close(canary, n, 0.2), "{canary} of {n} keys on the 20% canary");
    assert!(
        first.iter().all(|(v, variant, _)| (*v, variant.as_str()) == (2, "canary")
            || (*v, variant.as_str()) == (1, "champion")),
        "each reply names its variant"
    );
    // Sticky: the same keys again, through the body, the header and every protocol.
    for (i, (version, _, _)) in first.iter().enumerate().take(300) {
        let key = format!("customer-{i}");
        assert_eq!(server.predict(&key).0, *version, "{key} moved");
        let by_header = server.post(
            "/v1/models/credit/predict",
            &json!({"records": [record()]}),
            &[("x-vigie-routing-key", &key)],
        );
        assert_eq!(answered(&by_header.body).0, *version, "{key} by header");
        let v2 = server.post(
            "/v2/models/credit/infer",
            &json!({"parameters": {"routing_key": key}, "inputs": [
                {"name": "student", "shape": [1], "datatype": "BYTES", "data": ["No"]},
                {"name": "balance", "shape": [1], "datatype": "FP64", "data": [1500.0]},
                {"name": "income", "shape": [1], "datatype": "FP64", "data": [30000.0]},
            ]}),
            &[],
        );
        assert_eq!(v2.body["model_version"], json!(version.to_string()), "{key} in V2");
        assert_eq!(
            v2.body["parameters"]["variant"],
            json!(if *version == 2 { "canary" } else { "champion" })
        );
        let mlflow = server.post(
            "/invocations",
            &json!({"dataframe_records": [record()]}),
            &[("x-vigie-routing-key", &key)],
        );
        assert_eq!(
            mlflow.body.as_object().map(|o| o.len()),
            Some(1),
            "MLflow gets predictions only"
        );
        assert_eq!(mlflow.headers.get("x-vigie-model-version"), Some(&version.to_string()));
    }
    // Raising the weight only adds keys: every key on the canary at 20% stays there at 50%.
    server.route(json!({"mode": "canary", "version": 2, "weight": 50}));
    for (i, (version, _, _)) in first.iter().enumerate().take(500) {
        if *version == 2 {
            assert_eq!(server.predict(&format!("customer-{i}")).0, 2);
        }
    }
    // An explicit version bypasses routing.
    let pinned = server.post(
        "/v1/models/credit/predict",
        &json!({"version": 1, "key": "customer-0", "records": [record()]}),
        &[],
    );
    assert_eq!((answered(&pinned.body).0, answered(&pinned.body).1.as_str()), (1, "explicit"));
}

#[test]
fn a_shadow_is_scored_and_counted_but_the_champion_answers() {
    let project = project_with_two_versions();
    let server = Server::start(&project);
    let champion_score = server.predict("anyone").2;
    let pinned = server.post(
        "/v1/models/credit/predict",
        &json!({"version": 2, "records": [record()]}),
        &[],
    );
    let shadow_score = answered(&pinned.body).2;
    assert!((champion_score - shadow_score).abs() > 1e-6, "the two versions score differently");

    let served = server.route(json!({"mode": "champion", "shadow": 2}));
    assert_eq!(served["serving"]["shadow"], json!({"version": 2}));
    let n = 50;
    for i in 0..n {
        let (version, variant, score) = server.predict(&format!("k{i}"));
        assert_eq!((version, variant.as_str()), (1, "champion"));
        assert_eq!(score, champion_score, "the champion's score is answered");
    }
    let shadow = eventually("the shadow's count reaches 50", LIMIT, || {
        let shadow = server.variants().get("shadow").cloned()?;
        (shadow["requests"] == json!(n)).then_some(shadow)
    });
    assert_eq!(shadow["version"], json!(2));
    assert_eq!(shadow["failures"], json!(0));
    let mean = shadow["mean_score"].as_f64().expect("mean shadow score");
    assert!((mean - shadow_score).abs() < 1e-9, "{mean} vs {shadow_score}");
    let difference = shadow["mean_abs_difference"].as_f64().expect("difference");
    assert!((difference - (champion_score - shadow_score).abs()).abs() < 1e-9, "{difference}");
    let champion = &server.variants()["champion"];
    assert_eq!(champion["requests"], json!(n + 1));
    assert!(champion["latency_ms"]["p99"].as_f64().is_some_and(|p99| p99 > 0.0));

    // Each shadow scoring is audited: a record of its own beside the answer's, with the same
    // request id, the variant `shadow` and the shadow's version and score.
    let records = eventually("the shadow's 50 audit records", LIMIT, || {
        let listed = project.json(&["audit", "list", "--limit", "1000", "--format", "json"]);
        let records = listed.as_array().cloned().unwrap_or_default();
        let shadows = records.iter().filter(|r| r["variant"] == json!("shadow")).count();
        (shadows == n).then_some(records)
    });
    let score = |record: &Json| record["rows"][0]["outputs"]["score"].as_f64().expect("a score");
    for shadow in records.iter().filter(|r| r["variant"] == json!("shadow")) {
        let answer = records
            .iter()
            .find(|r| r["request_id"] == shadow["request_id"] && r["variant"] != json!("shadow"))
            .expect("the answer's record");
        assert_eq!((&answer["variant"], &answer["version"]), (&json!("champion"), &json!(1)));
        assert_eq!(shadow["version"], json!(2), "{shadow}");
        assert_eq!(shadow["rows"][0]["inputs"], answer["rows"][0]["inputs"]);
        assert_eq!((score(answer), score(shadow)), (champion_score, shadow_score));
        assert_eq!(shadow["route"], json!("/v1/models/{name}/predict"));
    }
    assert_eq!(server.variants()["shadow"]["unrecorded"], json!(0));
    // Feedback on a shadowed request is on the answer the client got, not on the shadow.
    let request_id =
        records.iter().find(|r| r["variant"] == json!("shadow")).expect("a shadow")["request_id"]
            .clone();
    let given = server.post("/v1/feedback", &json!({"request_id": request_id, "label": "No"}), &[]);
    assert_eq!(given.status, 200, "{}", given.body);
    assert_eq!((&given.body["variant"], &given.body["version"]), (&json!("champion"), &json!(1)));
    let verified = project.json(&["audit", "verify", "--format", "json"]);
    assert_eq!(verified["ok"], json!(true), "{verified}");
}

#[test]
fn an_ab_test_set_from_the_cli_splits_keys_and_counts_each_variant() {
    let project = project_with_two_versions();
    let server = Server::start(&project);
    let change = project.json(&[
        "models",
        "route",
        "credit",
        "--ab",
        "1=50,2=50",
        "--reason",
        "fair test",
        "--format",
        "json",
    ]);
    assert_eq!(change["to"]["mode"], json!("ab"));
    assert_eq!(change["to"]["variants"][1], json!({"name": "b", "version": 2, "weight": 50.0}));
    // The CLI writes the registry; the server's watcher picks it up without a restart.
    eventually("the A/B routing is served", LIMIT, || {
        let routing = server.get("/v1/models/credit/routing").body;
        (routing["routing"]["mode"] == json!("ab")).then_some(())
    });
    let n = 1000;
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..n {
        let (version, variant, _) = server.predict(&format!("user{i}"));
        assert_eq!(version, if variant == "a" { 1 } else { 2 }, "{variant}");
        *seen.entry(variant).or_default() += 1;
    }
    assert!(binomial_close(seen["a"], n, 0.5), "{seen:?}");
    let counted = server.variants();
    for (variant, hits) in &seen {
        assert_eq!(counted[variant]["requests"], json!(hits), "{variant}: {counted:?}");
    }
    let shown = project.json(&["models", "show", "credit", "--format", "json"]);
    assert_eq!(shown["routing"]["spec"]["mode"], json!("ab"));
    assert_eq!(shown["routing"]["history"][0]["reason"], json!("fair test"));
    let text = project.ok(&["models", "show", "credit"]);
    assert!(text.contains("routing: A/B test: a v1 50%, b v2 50%"), "{text}");
    let listed = server.get("/v1/models").body;
    assert_eq!(listed["models"][0]["versions"], json!([1, 2]));
    assert_eq!(listed["models"][0]["aliases"], json!({"champion": 1}));
    assert_eq!(listed["models"][0]["serving"]["routing"]["mode"], json!("ab"));
    // Back to the champion.
    project.ok(&["models", "route", "credit", "--champion-only"]);
    let error = project.fails(&["models", "route", "credit", "--ab", "1=50,2=40"], 2);
    assert!(error.contains("sum to 90"), "{error}");
}

#[test]
fn routing_changes_and_rollbacks_under_load_fail_no_request() {
    let project = project_with_two_versions();
    let server = Arc::new(Server::start(&project));
    let stop = Arc::new(AtomicBool::new(false));
    let last_version = Arc::new(AtomicU64::new(0));
    let client = {
        let (server, stop, last_version) = (server.clone(), stop.clone(), last_version.clone());
        std::thread::spawn(move || {
            let (mut sent, mut failed) = (0u64, Vec::new());
            while !stop.load(Ordering::Acquire) {
                let key = format!("load-{sent}");
                let reply = if sent % 2 == 0 {
                    server.post("/v1/models/credit/predict", &predict_body(&key), &[])
                } else {
                    server.post(
                        "/invocations",
                        &json!({"instances": [record()]}),
                        &[("x-vigie-routing-key", &key)],
                    )
                };
                sent += 1;
                if reply.status != 200 {
                    failed.push((reply.status, reply.body));
                    continue;
                }
                let version =
                    reply.headers.get("x-vigie-model-version").and_then(|v| v.parse().ok());
                last_version.store(version.unwrap_or(0), Ordering::Release);
            }
            (sent, failed)
        })
    };
    let serves = |version: u64, what: &str| {
        // Two requests in a row of that version: the client saw the change.
        let seen = AtomicU64::new(0);
        eventually(what, LIMIT, || {
            let now = last_version.load(Ordering::Acquire);
            let streak = if now == version { seen.fetch_add(1, Ordering::AcqRel) + 1 } else { 0 };
            if now != version {
                seen.store(0, Ordering::Release);
            }
            (streak >= 2).then_some(())
        });
    };
    serves(1, "the champion v1 answers");
    server.route(json!({"mode": "canary", "version": 2, "weight": 100, "reason": "all in"}));
    serves(2, "the canary at 100% answers");
    server.route(json!({"mode": "champion"}));
    serves(1, "back on the champion");
    let promoted = server
        .put("/v1/models/credit/aliases/champion", &json!({"version": 2, "reason": "better"}));
    assert_eq!(promoted.status, 200, "{}", promoted.body);
    assert_eq!(promoted.body["serving"]["champion"], json!(2));
    serves(2, "the promoted v2 answers");
    let rolled = server.post("/v1/models/credit/rollback", &json!({"reason": "alert"}), &[]);
    assert_eq!(rolled.status, 200, "{}", rolled.body);
    assert_eq!(rolled.body["move"]["to_version"], json!(1));
    serves(1, "the rollback to v1 answers");
    // The CLI, through the registry and the watcher.
    project.ok(&["models", "promote", "credit", "2"]);
    serves(2, "the CLI promotion answers");
    project.ok(&["models", "rollback", "credit"]);
    serves(1, "the CLI rollback answers");
    stop.store(true, Ordering::Release);
    let (sent, failed) = client.join().expect("the client thread");
    assert!(failed.is_empty(), "{} of {sent} requests failed: {failed:?}", failed.len());
    assert!(sent > 10, "{sent}");
    let history = server.get("/v1/models/credit/routing").body["history"].clone();
    assert_eq!(history.as_array().map(Vec::len), Some(2));
    // Who: the caller's token subject; without authentication, anonymous.
    assert_eq!(history[0]["user"], json!("anonymous"));
}

#[test]
fn bad_admin_changes_are_refused_with_json() {
    let project = project_with_two_versions();
    let server = Server::start(&project);
    let refused = |reply: Reply, status: u16, part: &str| {
        assert_eq!(reply.status, status, "{}", reply.body);
        let message = reply.body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(part), "{part:?} not in {}", reply.body);
        assert!(reply.body["error"]["code"].is_string(), "{}", reply.body);
    };
    let routing = "/v1/models/credit/routing";
    refused(
        server.put(routing, &json!({"mode": "canary", "version": 9, "weight": 5})),
        404,
        "no version 9",
    );
    refused(
        server.put(routing, &json!({"mode": "canary", "version": 2, "weight": 150})),
        400,
        "150",
    );
    refused(
        server.put(routing, &json!({"mode": "blue-green"})),
        400,
        "unknown mode \"blue-green\"",
    );
    refused(server.put(routing, &json!({"mode": "ab", "variants": [{"name": "a", "version": 1, "weight": 60}, {"name": "b", "version": 2, "weight": 60}]})), 400, "sum to 120");
    refused(server.put(routing, &json!({"mode": "champion", "reason": 3})), 400, "reason");
    refused(server.put("/v1/models/ghost/routing", &json!({"mode": "champion"})), 404, "ghost");
    refused(server.get("/v1/models/ghost/routing"), 404, "ghost");
    refused(server.get("/v1/models/ghost/variants"), 404, "ghost");
    refused(
        server.put("/v1/models/credit/aliases/champion", &json!({"version": 7})),
        404,
        "no version 7",
    );
    refused(server.put("/v1/models/credit/aliases/champion", &json!({})), 400, "version");
    refused(server.post("/v1/models/credit/rollback", &json!({}), &[]), 409, "no earlier version");
    let malformed = Server::reply(
        server
            .0
            .agent
            .put(format!("{}{routing}", server.0.base))
            .header("content-type", "application/json")
            .send("{\"mode\":"),
    );
    refused(malformed, 400, "malformed JSON");
    let deleted =
        Server::reply(server.0.agent.delete(format!("{}{routing}", server.0.base)).call());
    refused(deleted, 405, "does not take DELETE");
    // Nothing was changed by the refusals.
    let served = server.get(routing).body;
    assert_eq!(served["routing"], json!({"mode": "champion"}));
    assert_eq!(served["history"], json!([]));
}

/// The PostgreSQL test server's URL, or none (after saying so loudly) outside CI.
fn postgres_server() -> Option<String> {
    crate::support::service(
        "VIGIE_TEST_POSTGRES_URL",
        "postgres server",
        "scripts/services.sh run postgres -- cargo test -p vigie-cli --test it routing",
    )
}

/// A fresh database on the PostgreSQL test server, as a URL.
fn fresh_database(admin: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    let name = format!("vigie_routing_{:016x}", hasher.finish());
    let mut client = vigie_connectors::postgres::PgClient::connect(admin, Default::default())
        .expect("connect to the test server");
    client.batch_execute(&format!("CREATE DATABASE {name}")).expect("create a database");
    let (server, _database) =
        admin.split('?').next().unwrap_or(admin).rsplit_once('/').expect("a URL with a database");
    format!("{server}/{name}")
}

#[test]
fn two_replicas_on_a_postgres_registry_follow_one_routing_change() {
    let Some(admin) = postgres_server() else { return };
    let database = fresh_database(&admin);
    let artifacts = tempfile::tempdir().expect("a shared artifact folder");
    let artifacts_url = format!("file:{}", artifacts.path().display());
    let replica = || {
        Project::new()
            .with_env("VIGIE_REGISTRY_URL", &database)
            .with_env("VIGIE_ARTIFACTS_URL", &artifacts_url)
    };
    let (a, b) = (replica(), replica());
    train_two_versions(&a);
    let (server_a, server_b) = (Server::start(&a), Server::start(&b));
    assert_eq!(server_b.predict("k").0, 1);

    let served =
        server_a.route(json!({"mode": "canary", "version": 2, "weight": 100, "reason": "on A"}));
    assert_eq!(served["serving"]["variants"][0]["version"], json!(2));
    assert_eq!(server_a.predict("k").0, 2, "the replica that changed it serves it at once");
    eventually("replica B follows the change", LIMIT, || {
        (server_b.predict("k").0 == 2).then_some(())
    });
    let history = server_b.get("/v1/models/credit/routing").body["history"].clone();
    assert_eq!(history[0]["reason"], json!("on A"));

    server_b.route(json!({"mode": "champion"}));
    eventually("replica A follows B back", LIMIT, || (server_a.predict("k").0 == 1).then_some(()));
    let shown = b.json(&["models", "show", "credit", "--format", "json"]);
    assert_eq!(shown["routing"]["history"].as_array().map(Vec::len), Some(2));
}

/// A vigie.toml that declares `credit` as a model of the entity `customer`, keyed by
/// `customer_id` (its feature view and source are never read here).
const ENTITY_CONFIG: &str = r#"
[entities.customer]
key = "customer_id"

[sources.loans]
kind = "file"
path = "loans.csv"
timestamp = "ts"

[feature_views.profile]
source = "loans"
entity = "customer"
columns = { balance = "balance" }

[models.credit]
labels = "loans"
label = "default"
entity = "customer"
features = ["profile:*"]
"#;

#[test]
fn the_entity_key_column_of_vigie_toml_routes_each_customer() {
    let project = project_with_two_versions();
    std::fs::write(project.path("vigie.toml"), ENTITY_CONFIG).expect("write vigie.toml");
    let server = Server::start(&project);
    server.route(json!({"mode": "canary", "version": 2, "weight": 50}));
    let mut versions = BTreeMap::new();
    for i in 0..200 {
        let customer = format!("c-{i}");
        let by_header = server.post(
            "/v1/models/credit/predict",
            &json!({"records": [record()]}),
            &[("x-vigie-routing-key", &customer)],
        );
        let expected = answered(&by_header.body).0;
        // The customer's id in the record routes it, whatever its other values.
        for balance in [0.0, 1500.0, 2500.0] {
            let mut row = record();
            row["customer_id"] = json!(customer);
            row["balance"] = json!(balance);
            let reply = server.post("/v1/models/credit/predict", &json!({"records": [row]}), &[]);
            assert_eq!(answered(&reply.body).0, expected, "{customer} at balance {balance}");
        }
        *versions.entry(expected).or_insert(0usize) += 1;
    }
    assert!(binomial_close(versions[&2], 200, 0.5), "{versions:?}");
}

#[test]
fn a_shadow_that_cannot_score_a_request_is_counted_and_never_fails_the_answer() {
    let project = Project::new();
    let csv = data("Default.csv").display().to_string();
    // v1 reads student and balance; v2 also reads income.
    for extra in [&["--algorithm", "logistic", "--ignore", "income"][..], &["--algorithm", "gbdt"]]
    {
        let mut args = vec!["train", "--data", &csv, "--label", "default", "--name", "credit"];
        args.extend_from_slice(&["--cv", "2"]);
        args.extend_from_slice(extra);
        project.ok(&args);
    }
    let server = Server::start(&project);
    server.route(json!({"mode": "champion", "shadow": 2}));
    let without_income = json!({"records": [{"student": "No", "balance": 1500.0}]});
    let n = 20;
    for _ in 0..n {
        let reply = server.post("/v1/models/credit/predict", &without_income, &[]);
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(answered(&reply.body).0, 1);
    }
    let shadow = eventually("the shadow's failures reach 20", LIMIT, || {
        let shadow = server.variants().get("shadow").cloned()?;
        (shadow["failures"] == json!(n)).then_some(shadow)
    });
    assert_eq!((shadow["requests"].clone(), shadow["version"].clone()), (json!(0), json!(2)));
}

/// The files under `folder` whose path ends in `suffix`.
fn model_files(folder: &Path, suffix: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(folder).expect("read a folder").flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(model_files(&path, suffix));
        } else if path.to_string_lossy().ends_with(suffix) {
            found.push(path);
        }
    }
    found
}

#[test]
fn a_routed_version_that_cannot_load_leaves_the_champion_answering() {
    let project = project_with_two_versions();
    let files = model_files(&project.path(".vigie/artifacts"), "credit-v2.vgm");
    assert_eq!(files.len(), 1, "{files:?}");
    std::fs::write(&files[0], b"not a model").expect("damage v2's file");
    let server = Server::start(&project);
    let served = server.route(json!({"mode": "canary", "version": 2, "weight": 100}));
    let problem = served["serving"]["problem"].as_str().unwrap_or_default().to_owned();
    assert!(!problem.is_empty(), "{served}");
    assert_eq!(
        served["serving"]["variants"],
        json!([{"name": "champion", "version": 1, "weight": 100.0}])
    );
    for i in 0..20 {
        assert_eq!(server.predict(&format!("k{i}")).0, 1);
    }
}
