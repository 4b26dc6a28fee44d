//! Prediction by entity key on the example project `vigie init` writes:
//! ingest, materialize, train `fraud` from the feature store, serve, then
//! score customers by key; the server reads their features from the online
//! store, so the scores equal those of records holding the values `vigie
//! features get` shows. Also the online features route, unknown entities,
//! and feedback: accepted, refused twice (even after a restart), unknown,
//! badly typed, and counted in the live accuracy metrics. With a MongoDB
//! online store (`VIGIE_TEST_MONGODB_URL`, from `scripts/services.sh`) the
//! server answers as with the embedded one; with a MongoDB that does not
//! answer, readers get 503 and the server is not ready.

use mongodb::bson::{Document, doc};
use serde_json::{Map, Value as Json, json};

use crate::metrics::sample;
use crate::support::{Project, Server, service};

const CUSTOMERS: [&str; 3] = ["C0001", "C0002", "C0003"];

/// A project with the example's `fraud` model trained from the store.
fn trained_project() -> Project {
    trained_project_with_ttl("30d")
}

/// The same, with `ttl` as the feature view's time-to-live.
fn trained_project_with_ttl(ttl: &str) -> Project {
    let project = Project::new();
    project.ok(&["init", "--rows", "3000", "--format", "json"]);
    let config = project.path("vigie.toml");
    let text = std::fs::read_to_string(&config).expect("read vigie.toml");
    assert!(text.contains("ttl = \"30d\""), "the example's ttl moved");
    std::fs::write(&config, text.replace("ttl = \"30d\"", &format!("ttl = \"{ttl}\"")))
        .expect("write");
    project.ok(&["ingest"]);
    project.ok(&["materialize"]);
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
    assert_eq!(trained["model"], "fraud", "{trained}");
    project
}

/// The features of `customer` as `vigie features get` prints them.
fn features_of(project: &Project, customer: &str) -> Map<String, Json> {
    let key = format!("customer_id={customer}");
    let got =
        project.json(&["features", "get", "customer_activity", "--key", &key, "--format", "json"]);
    got["features"].as_object().expect("features").clone()
}

fn scores(reply: &Json) -> Vec<f64> {
    reply["predictions"]
        .as_array()
        .expect("predictions")
        .iter()
        .map(|p| p["score"].as_f64().expect("a score"))
        .collect()
}

fn predict(server: &Server, body: &Json) -> Json {
    let (status, reply) = server.post("/v1/models/fraud/predict", &body.to_string());
    assert_eq!(status, 200, "{reply}");
    reply
}

fn metric(server: &Server, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let (status, text) = server.get("/metrics");
    assert_eq!(status, 200);
    sample(text.as_str().expect("the metrics text"), name, labels)
}

#[test]
fn entities_are_scored_on_their_online_features() {
    let project = trained_project();
    let server = Server::start(&project, &[]);

    let by_key = predict(&server, &json!({"entities": CUSTOMERS, "explain": true}));
    let records: Vec<Json> =
        CUSTOMERS.iter().map(|c| Json::Object(features_of(&project, c))).collect();
    let by_records = predict(&server, &json!({"records": records}));
    assert_eq!(scores(&by_key), scores(&by_records), "{by_key}\n{by_records}");
    for (prediction, customer) in
        by_key["predictions"].as_array().expect("rows").iter().zip(CUSTOMERS)
    {
        assert_eq!(prediction["entity"], customer, "{prediction}");
        assert_eq!(prediction["stale"], false, "features written just now: {prediction}");
        assert!(prediction["contributions"]["txn_count_1h"].is_number(), "{prediction}");
    }

    // The audit log holds the inputs after lookup.
    let request_id = by_key["request_id"].as_str().expect("request id");
    let audited = project.json(&["audit", "list", "--request-id", request_id, "--format", "json"]);
    let inputs = &audited[0]["rows"][0]["inputs"];
    let c0001 = features_of(&project, "C0001");
    assert_eq!(inputs["amount_sum_24h"], c0001["amount_sum_24h"], "{audited}");
    assert_eq!(inputs["devices_7d"], c0001["devices_7d"], "{audited}");

    // A record with the key and a field of its own: the field overrides the stored value.
    let mut overridden = c0001.clone();
    overridden.insert("amount".into(), json!(4999.0));
    let mixed = predict(&server, &json!({"records": [{"customer_id": "C0001", "amount": 4999.0}]}));
    let expected = predict(&server, &json!({"records": [overridden]}));
    assert_eq!(scores(&mixed), scores(&expected));
    assert_eq!(mixed["predictions"][0]["entity"], "C0001");

    // A null override is a missing feature, imputed and counted.
    let missing = predict(&server, &json!({"records": [{"customer_id": "C0002", "amount": null}]}));
    assert!(scores(&missing)[0].is_finite(), "{missing}");
    let counted = metric(
        &server,
        "vigie_missing_features_total",
        &[("model", "fraud"), ("feature", "amount")],
    );
    assert_eq!(counted, Some(1.0));
    let reads = metric(&server, "vigie_online_store_duration_seconds_count", &[]);
    assert!(reads.is_some_and(|n| n >= 3.0), "one read per request by key: {reads:?}");

    // Unknown entities: a 404 naming every unknown key.
    let (status, reply) = server.post(
        "/v1/models/fraud/predict",
        &json!({"entities": ["C0001", "nobody", "ghost"]}).to_string(),
    );
    assert_eq!(status, 404, "{reply}");
    let message = reply["error"]["message"].as_str().expect("message");
    assert!(message.contains("customer_id=\"nobody\"") && message.contains("\"ghost\""), "{reply}");
    assert!(!message.contains("C0001"), "{reply}");
    let (status, reply) =
        server.post("/v1/models/fraud/predict", &json!({"entities": [{"id": 1}]}).to_string());
    assert_eq!(status, 400, "{reply}");
    assert!(
        reply["error"]["message"].as_str().is_some_and(|m| m.contains("entities[0]")),
        "{reply}"
    );
    let (status, reply) = server.post(
        "/v1/models/fraud/predict",
        &json!({"entities": ["C0001"], "records": []}).to_string(),
    );
    assert_eq!(status, 400, "{reply}");
}

#[test]
fn the_online_features_route_reads_what_materialize_wrote() {
    let project = trained_project();
    let server = Server::start(&project, &[]);
    let (status, reply) = server.get("/v1/features/customer_activity/C0001");
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["view"], "customer_activity");
    assert_eq!(reply["key"], "C0001");
    assert_eq!(reply["stale"], false, "{reply}");
    assert_eq!(Json::Object(features_of(&project, "C0001")), reply["features"]);

    let (status, reply) = server.get("/v1/features/customer_activity/nobody");
    assert_eq!(status, 404, "{reply}");
    assert!(
        reply["error"]["message"].as_str().is_some_and(|m| m.contains("\"nobody\"")),
        "{reply}"
    );
    let (status, reply) = server.get("/v1/features/merchants/C0001");
    assert_eq!(status, 404, "{reply}");
    let message = reply["error"]["message"].as_str().expect("message");
    assert!(message.contains("\"merchants\"") && message.contains("customer_activity"), "{reply}");
}

#[test]
fn feedback_is_stored_once_and_counted_in_live_accuracy() {
    let project = trained_project();
    let server = Server::start(&project, &[]);
    let reply = predict(&server, &json!({"entities": ["C0001", "C0002"]}));
    let request_id = reply["request_id"].as_str().expect("request id").to_owned();
    let decided: Vec<String> = reply["predictions"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|p| p["label"].as_str().expect("a class").to_owned())
        .collect();
    let other = |class: &str| if class == "0" { "1" } else { "0" };
    let give = |server: &Server, body: Json| server.post("/v1/feedback", &body.to_string());

    // Row 0 right (the label as a number), row 1 wrong (as a string).
    let truth: u8 = decided[0].parse().expect("0 or 1");
    let (status, first) = give(&server, json!({"request_id": request_id, "label": truth}));
    assert_eq!(status, 200, "{first}");
    assert_eq!(
        (first["correct"].clone(), first["variant"].clone()),
        (json!(true), json!("champion"))
    );
    let (status, second) =
        give(&server, json!({"request_id": request_id, "row": 1, "label": other(&decided[1])}));
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["correct"], false, "{second}");

    let (status, again) = give(&server, json!({"request_id": request_id, "label": truth}));
    assert_eq!(status, 409, "{again}");
    let (status, unknown) = give(&server, json!({"request_id": "no-such-request", "label": 1}));
    assert_eq!(status, 404, "{unknown}");
    assert!(unknown["error"]["message"].as_str().is_some_and(|m| m.contains("no-such-request")));
    let (status, wrong) =
        give(&server, json!({"request_id": request_id, "row": 1, "label": "maybe"}));
    assert_eq!(status, 400, "{wrong}");
    assert!(wrong["error"]["message"].as_str().is_some_and(|m| m.contains("field \"label\"")));
    let (status, beyond) = give(&server, json!({"request_id": request_id, "row": 5, "label": 1}));
    assert_eq!(status, 400, "{beyond}");
    assert!(beyond["error"]["message"].as_str().is_some_and(|m| m.contains("field \"row\"")));

    let labels = [("model", "fraud"), ("version", "1"), ("variant", "champion")];
    let check = |server: &Server| {
        assert_eq!(metric(server, "vigie_feedback_total", &labels), Some(2.0));
        assert_eq!(metric(server, "vigie_feedback_correct_total", &labels), Some(1.0));
        assert_eq!(metric(server, "vigie_live_accuracy", &labels), Some(0.5));
        let loss = metric(server, "vigie_feedback_log_loss_sum", &labels).expect("log loss");
        assert!(loss > 0.0, "{loss}");
    };
    check(&server);

    // Stored durably: after a restart the metrics start from it and a repeat is still refused.
    drop(server);
    let server = Server::start(&project, &[]);
    check(&server);
    let (status, again) =
        give(&server, json!({"request_id": request_id, "row": 1, "label": decided[1]}));
    assert_eq!(status, 409, "{again}");
}

#[test]
fn rows_older_than_the_ttl_are_flagged_stale_as_the_cli_says_expired() {
    // The example's transactions span days before now: with a one-hour
    // time-to-live, most customers' latest rows are older than that.
    let project = trained_project_with_ttl("1h");
    let server = Server::start(&project, &[]);
    let reply = predict(&server, &json!({"entities": CUSTOMERS}));
    let mut stale_seen = 0;
    for (prediction, customer) in
        reply["predictions"].as_array().expect("rows").iter().zip(CUSTOMERS)
    {
        let key = format!("customer_id={customer}");
        let cli = project.json(&[
            "features",
            "get",
            "customer_activity",
            "--key",
            &key,
            "--format",
            "json",
        ]);
        assert_eq!(prediction["stale"], cli["expired"], "{customer}: {prediction} vs {cli}");
        let (status, read) = server.get(&format!("/v1/features/customer_activity/{customer}"));
        assert_eq!(status, 200, "{read}");
        assert_eq!(read["stale"], cli["expired"], "{customer}: {read} vs {cli}");
        stale_seen += usize::from(cli["expired"] == true);
    }
    assert!(stale_seen > 0, "no customer older than an hour: the check proved nothing");
}

/// Points `[storage] online` of the project's vigie.toml at `url`, database `database`.
fn use_online_store(project: &Project, url: &str, database: &str) {
    let config = project.path("vigie.toml");
    let text = std::fs::read_to_string(&config).expect("read vigie.toml");
    let embedded = "online = \"embedded\"\n";
    assert!(text.contains(embedded), "the example's [storage] moved");
    let mongodb = format!("online = \"{url}\"\nonline_database = \"{database}\"\n");
    std::fs::write(&config, text.replace(embedded, &mongodb)).expect("write vigie.toml");
}

#[test]
fn entities_are_scored_the_same_on_a_mongodb_online_store() {
    let Some(url) = service(
        "VIGIE_TEST_MONGODB_URL",
        "MongoDB server",
        "scripts/services.sh run mongodb -- cargo test -p vigie-cli --test it entity",
    ) else {
        return;
    };
    let project = trained_project().with_env("VIGIE_ONLINE_URL", &url);
    let embedded: Vec<Map<String, Json>> =
        CUSTOMERS.iter().map(|c| features_of(&project, c)).collect();
    let request = json!({"entities": CUSTOMERS, "explain": true});
    let (on_embedded, route_on_embedded) = {
        let server = Server::start(&project, &[]);
        (predict(&server, &request), server.get("/v1/features/customer_activity/C0001"))
    };

    // The same model, its features materialised into MongoDB (the URL from the environment).
    // A database no earlier run against the same server used.
    let nanos = std::time::UNIX_EPOCH.elapsed().expect("after 1970").as_nanos();
    let database = format!("entity_{}_{nanos}", std::process::id());
    use_online_store(&project, "${VIGIE_ONLINE_URL}", &database);
    let materialized = project.json(&["materialize", "--format", "json"]);
    assert_eq!(materialized[0]["online_updated"], materialized[0]["keys"], "{materialized}");
    let again = project.json(&["materialize", "--format", "json"]);
    assert_eq!(again[0]["online_updated"], 0, "incremental: {again}");
    for (customer, expected) in CUSTOMERS.iter().zip(&embedded) {
        assert_eq!(&features_of(&project, customer), expected, "{customer}");
    }
    // Another application reads a customer's features as an ordinary document.
    let client = mongodb::sync::Client::with_uri_str(&url).expect("client");
    let document = client
        .database(&database)
        .collection::<Document>("online_features")
        .find_one(doc! {"_view": "customer_activity", "_key": "C0001"})
        .run()
        .expect("find")
        .expect("C0001's document");
    assert_eq!(document.get_f64("amount_sum_24h").ok(), embedded[0]["amount_sum_24h"].as_f64());

    let server = Server::start(&project, &[]);
    let on_mongodb = predict(&server, &request);
    assert_eq!(on_mongodb["predictions"], on_embedded["predictions"], "{on_mongodb}");
    assert_eq!(server.get("/v1/features/customer_activity/C0001"), route_on_embedded);
    let (status, ready) = server.get("/v2/health/ready");
    assert_eq!(status, 200, "{ready}");
    let detail = ready["checks"]["online_store"]["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(&format!("{database}.online_features")), "{ready}");
}

#[test]
fn a_mongodb_online_store_that_does_not_answer_is_503_and_not_ready() {
    let project = trained_project();
    // A port where nothing listens: that of a listener just closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let url = format!("mongodb://vigie:s3cret@127.0.0.1:{port}/?serverSelectionTimeoutMS=300");
    use_online_store(&project, &url, "vigie");
    let named = |message: &str| {
        message.contains(&format!("mongodb://vigie@127.0.0.1:{port}/"))
            && !message.contains("s3cret")
    };
    let error = project.fails(&["materialize"], 1);
    assert!(named(&error) && error.contains("online store"), "{error}");
    let error =
        project.fails(&["features", "get", "customer_activity", "--key", "customer_id=C0001"], 1);
    assert!(named(&error), "{error}");

    let server = Server::start(&project, &[]);
    let (status, reply) =
        server.post("/v1/models/fraud/predict", &json!({"entities": ["C0001"]}).to_string());
    assert_eq!(status, 503, "{reply}");
    assert!(reply["error"]["message"].as_str().is_some_and(named), "{reply}");
    let (status, reply) = server.get("/v1/features/customer_activity/C0001");
    assert_eq!(status, 503, "{reply}");
    assert!(reply["error"]["message"].as_str().is_some_and(named), "{reply}");
    let (status, ready) = server.get("/v2/health/ready");
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["checks"]["online_store"]["ok"], false, "{ready}");
    let error = ready["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("not ready: online_store: ") && named(error), "{ready}");
}

#[test]
fn the_server_does_not_link_the_feature_store() {
    // vigie-features carries DataFusion; the server reads the online store
    // through vigie-online instead.
    let output = std::process::Command::new(env!("CARGO"))
        .args(["tree", "--offline", "-p", "vigie-server", "-e", "normal", "--prefix", "none"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let tree = String::from_utf8(output.stdout).expect("utf-8");
    assert!(tree.lines().any(|line| line.starts_with("vigie-online ")), "{tree}");
    for forbidden in ["vigie-features ", "datafusion "] {
        assert!(!tree.lines().any(|line| line.starts_with(forbidden)), "{forbidden}in:\n{tree}");
    }
}
