//! Fresh registries on each backend, a small trained model, and the rule for tests that need
//! a server: skip loudly outside CI, fail in CI.

use std::io::{Read, Write};

use vigie_connectors::artifacts::S3Options;
use vigie_connectors::postgres::{PgClient, PgOptions};
use vigie_core::{Column, ColumnData, Frame, TextColumn};
use vigie_ml::SavedModel;
use vigie_ml::train::{Algorithm, NoProgress, TrainRequest, train};
use vigie_registry::{NewRun, Registry, RegistryLocation, RunStatus, VersionInfo};

/// A metadata database the behaviour suite runs on.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where a test's registry lives; the scratch folder goes when it is dropped.
pub struct Place {
    pub location: RegistryLocation,
    pub dir: tempfile::TempDir,
}

impl Place {
    pub fn open(&self) -> Registry {
        Registry::connect(&self.location).expect("open the registry")
    }
}

/// The value of a server's variable, or none after printing why the test is skipped. In CI
/// (`CI=true`) a missing server is a failure, never a skip.
pub fn server(variable: &str, service: &str) -> Option<String> {
    match std::env::var(variable) {
        Ok(value) if !value.is_empty() => Some(value),
        _ if std::env::var("CI").as_deref() == Ok("true") => panic!(
            "CI=true but {variable} is not set: CI must start the {service} server (scripts/services.sh)"
        ),
        _ => {
            // Straight to the stderr handle, not eprintln!, which the test harness captures.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: {variable} is not set, so this test has no {service} server \
                 (start it with scripts/services.sh run {service} -- cargo test -p vigie-registry)"
            );
            None
        }
    }
}

/// A name no other test (or earlier run against the same server) uses.
pub fn unique(prefix: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    format!("{prefix}{:016x}", hasher.finish())
}

/// A fresh database on the PostgreSQL server of `VIGIE_TEST_POSTGRES_URL`, as a URL.
pub fn fresh_postgres_database() -> Option<String> {
    let admin = server("VIGIE_TEST_POSTGRES_URL", "postgres")?;
    let name = unique("vigie_test_");
    let mut client =
        PgClient::connect(&admin, PgOptions::default()).expect("connect to the test server");
    client.batch_execute(&format!("CREATE DATABASE {name}")).expect("create a test database");
    let (before_query, query) = match admin.split_once('?') {
        Some((before, query)) => (before, format!("?{query}")),
        None => (admin.as_str(), String::new()),
    };
    let (server_part, _database) = before_query.rsplit_once('/').expect("a URL with a database");
    Some(format!("{server_part}/{name}{query}"))
}

impl Backend {
    /// A fresh, empty registry location on this backend (artifacts in a scratch folder), or
    /// none when the backend's server is not available.
    pub fn place(self) -> Option<Place> {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut location = RegistryLocation::new(dir.path());
        if let Backend::Postgres = self {
            location.database = Some(fresh_postgres_database()?);
        }
        Some(Place { location, dir })
    }
}

/// An S3 bucket created for one test on the server of `VIGIE_TEST_S3_ENDPOINT`, with the
/// options that reach it.
pub fn fresh_s3_bucket() -> Option<(String, S3Options)> {
    let endpoint = server("VIGIE_TEST_S3_ENDPOINT", "s3")?;
    let bucket = unique("vigie-test-");
    // moto accepts unsigned requests: a bare PUT creates the bucket.
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(host).expect("connect to the S3 server");
    write!(
        stream,
        "PUT /{bucket} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read the answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "creating bucket {bucket}: {answer}");
    let options = S3Options {
        endpoint: Some(endpoint),
        region: Some("us-east-1".into()),
        access_key_id: Some("vigie-test".into()),
        secret_access_key: Some("vigie-test".into()),
    };
    Some((bucket, options))
}

/// A small logistic model named `name` (200 rows, one feature).
pub fn model(name: &str) -> SavedModel {
    let n = 200;
    let x: Vec<f64> = (0..n).map(|i| (i % 17) as f64).collect();
    let y = TextColumn::from_values((0..n).map(|i| Some(if (i % 17) > 10 { "yes" } else { "no" })));
    let frame = Frame::new(vec![
        Column { name: "x".into(), data: ColumnData::Numeric(x) },
        Column { name: "y".into(), data: ColumnData::Text(y) },
    ])
    .expect("frame");
    let mut request = TrainRequest::new(name, "y");
    request.algorithm = Some(Algorithm::Logistic);
    request.cv = 2;
    train(&frame, &request, &NoProgress).expect("train").model.into()
}

/// Starts a run of experiment `name` by `user`.
pub fn start_run(registry: &mut Registry, name: &str, user: &str) -> String {
    registry
        .start_run(&NewRun {
            experiment: name.into(),
            name: "t".into(),
            user: user.into(),
            ..NewRun::default()
        })
        .expect("start a run")
}

/// Trains nothing new: registers a clone of `trained` as the next version, in its own run.
pub fn register_model(registry: &mut Registry, trained: &SavedModel, user: &str) -> VersionInfo {
    let run = start_run(registry, trained.name(), user);
    let info = registry
        .register_and_end_run(&mut trained.clone(), &run, user, RunStatus::Finished)
        .expect("register");
    assert_eq!(registry.run(&run).expect("the run").summary.status, "FINISHED");
    info
}

/// Registers a freshly trained model named `name`.
pub fn register(registry: &mut Registry, name: &str) -> VersionInfo {
    register_model(registry, &model(name), "ana")
}

/// Runs each behaviour (a `fn(&Place)` of the calling module) on each
/// backend as its own test: `sqlite::NAME` and `postgres::NAME`.
macro_rules! on_every_backend {
    ($($behaviour:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $behaviour() { crate::support::check(crate::support::Backend::Sqlite, super::$behaviour) })*
        }
        mod postgres {
            $(#[test] fn $behaviour() { crate::support::check(crate::support::Backend::Postgres, super::$behaviour) })*
        }
    };
}
pub(crate) use on_every_backend;

/// Runs `behaviour` in a fresh registry of `backend` (skipping when its server is absent).
pub fn check(backend: Backend, behaviour: fn(&Place)) {
    if let Some(place) = backend.place() {
        behaviour(&place);
    }
}
