//! The registry on shared stores through the CLI: metadata on a real PostgreSQL
//! (`VIGIE_TEST_POSTGRES_URL`) and model files on a real S3 server (`VIGIE_TEST_S3_ENDPOINT`),
//! selected by `VIGIE_REGISTRY_URL` and `VIGIE_ARTIFACTS_URL`; two project folders stand for
//! two Vigie replicas sharing them. Without the servers the test skips loudly, except in CI
//! (`CI=true`), where it fails. Also: an unreachable database is one clear line, no panic.

use std::io::{Read as _, Write as _};

use vigie_connectors::postgres::{PgClient, PgOptions};

use crate::support::{Project, data};

fn server(variable: &str, service: &str) -> Option<String> {
    crate::support::service(
        variable,
        &format!("{service} server"),
        "scripts/services.sh run postgres s3 -- cargo test -p vigie-cli --test it backends",
    )
}

fn unique(prefix: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    format!("{prefix}{:016x}", hasher.finish())
}

/// A fresh database on the test server, as a URL.
fn fresh_database(admin: &str) -> String {
    let name = unique("vigie_cli_");
    let mut client = PgClient::connect(admin, PgOptions::default()).expect("connect");
    client.batch_execute(&format!("CREATE DATABASE {name}")).expect("create a database");
    let (server, _database) = admin
        .split('?')
        .next()
        .unwrap_or(admin)
        .rsplit_once('/')
        .expect("a URL ending in /DATABASE");
    format!("{server}/{name}")
}

/// A fresh bucket on the S3 test server (moto takes an unsigned PUT).
fn fresh_bucket(endpoint: &str) -> String {
    let bucket = unique("vigie-cli-");
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(host).expect("connect to S3");
    write!(
        stream,
        "PUT /{bucket} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .expect("send to S3");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read the S3 answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    bucket
}

fn replica(database: &str, bucket: &str, endpoint: &str) -> Project {
    Project::new()
        .with_env("VIGIE_REGISTRY_URL", database)
        .with_env("VIGIE_ARTIFACTS_URL", &format!("s3://{bucket}/models"))
        .with_env("AWS_ENDPOINT_URL", endpoint)
        .with_env("AWS_ACCESS_KEY_ID", "vigie-test")
        .with_env("AWS_SECRET_ACCESS_KEY", "vigie-test")
        .with_env("AWS_REGION", "us-east-1")
}

#[test]
fn two_projects_share_a_registry_on_postgres_with_model_files_on_s3() {
    let Some(admin) = server("VIGIE_TEST_POSTGRES_URL", "postgres") else { return };
    let Some(endpoint) = server("VIGIE_TEST_S3_ENDPOINT", "s3") else { return };
    let (database, bucket) = (fresh_database(&admin), fresh_bucket(&endpoint));
    // A name of its own: an MLflow server may keep what earlier runs exported.
    let name = unique("credit-");
    let (first, second) =
        (replica(&database, &bucket, &endpoint), replica(&database, &bucket, &endpoint));
    let csv = data("Default.csv").display().to_string();
    let train = |project: &Project, algorithm: &str| {
        let extra: &[&str] = if algorithm == "gbdt" { &["--param", "n_rounds=30"] } else { &[] };
        let mut args = vec![
            "train",
            "--data",
            &csv,
            "--label",
            "default",
            "--name",
            &name,
            "--cv",
            "2",
            "--algorithm",
            algorithm,
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        project.json(&args)
    };
    let trained = train(&first, "logistic");
    assert_eq!(
        (trained["version"].as_u64(), trained["aliases"].clone()),
        (Some(1), serde_json::json!(["champion"]))
    );
    assert!(
        trained["path"].as_str().unwrap().starts_with(&format!("s3://{bucket}/models/artifacts/")),
        "{trained}"
    );
    assert_eq!(
        train(&second, "gbdt")["version"],
        2,
        "the second replica sees the first one's version"
    );

    first.json(&["models", "promote", &name, "2", "--reason", "better", "--format", "json"]);
    let shown = second.json(&["models", "show", &name, "--format", "json"]);
    assert_eq!((shown["version"].as_u64(), shown["algorithm"].as_str()), (Some(2), Some("gbdt")));
    assert_eq!(second.json(&["runs", "list", "--format", "json"]).as_array().unwrap().len(), 2);
    let scores = second.path("scores.csv").display().to_string();
    second.ok(&["predict", "--model", &name, "--data", &csv, "--out", &scores]);
    assert!(std::fs::read_to_string(&scores).unwrap().lines().count() > 1000);
    for project in [&first, &second] {
        let state = project.path(".vigie");
        assert!(
            !state.join("registry.db").exists() && !state.join("artifacts").exists(),
            "nothing local"
        );
    }

    // The flag wins over the variable.
    let stderr = second.fails(
        &[
            "models",
            "show",
            &format!("{name}:1"),
            "--registry-url",
            "postgres://postgres@127.0.0.1:1/none",
        ],
        1,
    );
    assert!(stderr.contains("postgres://postgres@127.0.0.1:1/none: cannot connect"), "{stderr}");

    // The MLflow export reads both model files through the S3 store (when a server is up;
    // the mlflow module's own test reads the exported files back).
    if let Some(uri) = std::env::var("MLFLOW_TRACKING_URI").ok().filter(|uri| !uri.is_empty()) {
        let exported =
            first.json(&["mlflow", "export", "--tracking-uri", &uri, "--format", "json"]);
        assert_eq!(exported["artifacts"]["created"], 2, "{exported}");
        assert_eq!(exported["versions"]["created"], 2, "{exported}");
    }
}

#[test]
fn an_unreachable_registry_database_is_one_line_naming_it_without_the_password() {
    let project = Project::new();
    // Port 1 of the loopback interface: nothing listens there.
    let url = "postgres://vigie:hunter2@127.0.0.1:1/registry";
    let stderr = project.fails(&["models", "list", "--registry-url", url], 1);
    assert!(
        stderr.starts_with(
            "error: registry database postgres://vigie@127.0.0.1:1/registry: cannot connect"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
    let project = project.with_env("VIGIE_REGISTRY_URL", url);
    let stderr = project.fails(&["runs", "list"], 1);
    assert!(stderr.contains("postgres://vigie@127.0.0.1:1/registry: cannot connect"), "{stderr}");
    let stderr = project.fails(&["models", "list", "--registry-url", "mysql://db/registry"], 2);
    assert!(stderr.contains("expected postgres://"), "{stderr}");
    assert!(!project.path(".vigie/registry.db").exists(), "no SQLite file was made instead");
}

/// Writes an object by the S3 API.
fn s3_put(endpoint: &str, bucket: &str, key: &str, body: &[u8]) {
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(host).expect("connect to S3");
    write!(
        stream,
        "PUT /{bucket}/{key} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .expect("send to S3");
    stream.write_all(body).expect("send the body");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read the S3 answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// The objects of `bucket` under `prefix`, by the S3 list API.
fn s3_keys(endpoint: &str, bucket: &str, prefix: &str) -> String {
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(host).expect("connect to S3");
    write!(
        stream,
        "GET /{bucket}?list-type=2&prefix={prefix} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .expect("send to S3");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read the S3 answer");
    answer
}

#[test]
fn a_source_file_and_the_offline_store_on_s3_give_the_features_they_give_on_disk() {
    let Some(endpoint) = server("VIGIE_TEST_S3_ENDPOINT", "s3") else { return };
    let bucket = fresh_bucket(&endpoint);
    let on_disk = Project::new();
    let on_s3 = Project::new()
        .with_env("AWS_ENDPOINT_URL", &endpoint)
        .with_env("AWS_ACCESS_KEY_ID", "vigie-test")
        .with_env("AWS_SECRET_ACCESS_KEY", "vigie-test")
        .with_env("AWS_REGION", "us-east-1");
    for project in [&on_disk, &on_s3] {
        project.ok(&["init", "--rows", "3000"]);
    }
    let config = on_s3.path("vigie.toml");
    let text = std::fs::read_to_string(&config).expect("read vigie.toml");
    let text = text
        .replace("offline = \".vigie/offline\"", &format!("offline = \"s3://{bucket}/features\""))
        .replace(
            "path = \"data/transactions.csv\"",
            &format!("path = \"s3://{bucket}/raw/transactions.csv\""),
        );
    std::fs::write(&config, text).expect("write vigie.toml");
    // The source file too is on S3 (the same generated rows as the other project's).
    let csv = std::fs::read(on_s3.path("data/transactions.csv")).expect("the generated file");
    s3_put(&endpoint, &bucket, "raw/transactions.csv", &csv);

    let mut results = Vec::new();
    for project in [&on_disk, &on_s3] {
        let ingested = project.json(&["ingest", "--format", "json"]);
        let materialized = project.json(&["materialize", "--format", "json"]);
        let got = project.json(&[
            "features",
            "get",
            "customer_activity",
            "--key",
            "customer_id=C0003",
            "--format",
            "json",
        ]);
        let (entities, out) = (project.path("data/transactions.csv"), project.path("history.csv"));
        project.ok(&[
            "features",
            "history",
            "--entities",
            &entities.display().to_string(),
            "--features",
            "customer_activity:*",
            "--out",
            &out.display().to_string(),
        ]);
        let history = std::fs::read_to_string(project.path("history.csv")).expect("history");
        let transactions = ingested
            .as_array()
            .and_then(|all| all.iter().find(|s| s["source"] == "transactions"))
            .expect("the transactions' ingest");
        let counts = (transactions["stored"].clone(), materialized[0]["rows"].clone());
        results.push((counts, got["time"].clone(), got["features"].clone(), history));
    }
    let (disk, s3) = (&results[0], &results[1]);
    assert_eq!(disk.0, s3.0, "rows stored and computed");
    assert_eq!((&disk.1, &disk.2), (&s3.1, &s3.2), "the online features");
    assert!(disk.3 == s3.3, "the same point-in-time history on S3 as on disk");
    assert!(!std::path::Path::new(&on_s3.path(".vigie/offline")).exists(), "nothing on disk");
    let keys = s3_keys(&endpoint, &bucket, "features/");
    for key in [
        "features/sources/transactions/part-000000000000.parquet",
        "features/sources/transactions/_state.json",
        "features/views/customer_activity/_current.json",
        "features/views/customer_activity/gen-1/date=",
    ] {
        assert!(keys.contains(key), "{key} in {keys}");
    }
    // Computing the view again replaces its generation whole.
    on_s3.ok(&["materialize"]);
    let keys = s3_keys(&endpoint, &bucket, "features/views/");
    assert!(keys.contains("gen-2/date=") && !keys.contains("gen-1/"), "{keys}");
    let trained =
        on_s3.json(&["train", "fraud", "--cv", "2", "--algorithm", "logistic", "--format", "json"]);
    assert_eq!(trained["model"], "fraud", "{trained}");
}
