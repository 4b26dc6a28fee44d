//! The example project on real servers (`examples/fraud-on-servers`): `vigie example load`
//! writes the seeded transactions to PostgreSQL, MongoDB and Kafka, and the whole path runs
//! on them: ingest (PostgreSQL, MongoDB), the stream processor on the Kafka topic, feature
//! views, training from the three sources, and serving by customer id.

use serde_json::json;

use crate::support::{Project, Server, service};

#[test]
fn the_fraud_example_runs_on_postgres_mongodb_and_kafka() {
    let start = "scripts/services.sh run postgres mongodb kafka -- cargo test -p vigie-cli --test it example";
    let Some(postgres) = service("VIGIE_TEST_POSTGRES_URL", "PostgreSQL", start) else { return };
    let Some(mongodb) = service("VIGIE_TEST_MONGODB_URL", "MongoDB", start) else { return };
    let Some(kafka) = service("VIGIE_TEST_KAFKA_BROKERS", "Kafka", start) else { return };
    // A database, a topic and a collection of this run's own: other runs share the servers.
    let suffix = std::process::id();
    let database = format!("vigie_example_{suffix}");
    let mut admin = vigie_connectors::postgres::PgClient::connect(
        &postgres,
        vigie_connectors::postgres::PgOptions::default(),
    )
    .expect("connect");
    admin.batch_execute(&format!("CREATE DATABASE {database}")).expect("a database");
    let (server, _) =
        postgres.split('?').next().unwrap_or(&postgres).rsplit_once('/').expect("a URL");
    let postgres = format!("{server}/{database}");

    let project = Project::new()
        .with_env("VIGIE_EXAMPLE_POSTGRES_URL", &postgres)
        .with_env("VIGIE_EXAMPLE_MONGODB_URL", &mongodb)
        .with_env("VIGIE_EXAMPLE_KAFKA_BROKERS", &kafka);
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/fraud-on-servers/vigie.toml");
    let text = std::fs::read_to_string(config).expect("the example's vigie.toml");
    let (topic, bank) = (format!("card-transactions-{suffix}"), format!("bank_{suffix}"));
    let text = text
        .replace("group = \"vigie-fraud-example\"", &format!("group = \"vigie-fraud-{suffix}\""))
        .replace("topic = \"card-transactions\"", &format!("topic = \"{topic}\""))
        .replace("database = \"bank\"", &format!("database = \"{bank}\""));
    std::fs::write(project.path("vigie.toml"), text).expect("vigie.toml");

    let loaded = project.json(&[
        "example",
        "load",
        "--rows",
        "3000",
        "--topic",
        &topic,
        "--mongodb-database",
        &bank,
        "--format",
        "json",
    ]);
    let transactions = loaded["transactions"].as_u64().expect("a count");
    assert_eq!(loaded["postgres"]["rows"], json!(transactions), "{loaded}");
    assert_eq!(loaded["kafka"]["events"], json!(transactions), "{loaded}");
    let customers = loaded["mongodb"]["documents"].as_u64().expect("profiles");

    let ingested = project.json(&["ingest", "--format", "json"]);
    let stored = |source: &str| {
        ingested
            .as_array()
            .expect("sources")
            .iter()
            .find(|s| s["source"] == source)
            .map(|s| s["stored"].clone())
    };
    assert_eq!(stored("transactions"), Some(json!(transactions)), "{ingested}");
    assert_eq!(stored("profiles"), Some(json!(customers)), "{ingested}");

    let streamed = project.json(&["stream", "--once", "--format", "json"]);
    assert!(streamed["events"].as_u64() >= Some(transactions), "{streamed}");
    assert_eq!(streamed["stored"], json!(transactions), "{streamed}");
    assert_eq!(
        (&streamed["dead_letters"], &streamed["late"]),
        (&json!(0), &json!(0)),
        "{streamed}"
    );

    let materialized = project.json(&["materialize", "--format", "json"]);
    let activity = materialized
        .as_array()
        .expect("views")
        .iter()
        .find(|v| v["view"] == "customer_activity")
        .cloned();
    assert_eq!(activity.map(|v| v["rows"].clone()), Some(json!(transactions)), "{materialized}");

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
    let auc = trained["cv"]["roc_auc"]["mean"].as_f64().expect("roc_auc");
    assert!(auc > 0.9, "labels from PostgreSQL, features from Kafka and MongoDB: {trained}");

    let server = Server::start(&project, &[]);
    let (status, reply) = server
        .post("/v1/models/fraud/predict", &json!({"entities": ["C0001", "C0002"]}).to_string());
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["predictions"].as_array().map(Vec::len), Some(2), "{reply}");
}
