//! A registry database that is locked or unreachable: a message naming it (never its
//! password), and nothing half-written, since each change is one transaction.

use std::time::Duration;

use vigie_connectors::postgres::{PgClient, PgOptions};
use vigie_connectors::sql::SqlValue;
use vigie_registry::{Registry, RegistryError, RegistryLocation, WRITE_LOCK_KEY};

use crate::support::{Backend, fresh_postgres_database, model, register, start_run};

#[test]
fn an_unreachable_postgres_is_a_message_naming_it_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let mut location = RegistryLocation::new(dir.path());
    // Port 1 of the loopback interface: nothing listens there.
    location.database = Some("postgres://vigie:hunter2@127.0.0.1:1/registry".into());
    let Err(error) = Registry::connect(&location) else { panic!("connected to port 1") };
    let message = error.to_string();
    assert!(
        message
            .starts_with("registry database postgres://vigie@127.0.0.1:1/registry: cannot connect"),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "{message}");
    assert_eq!(error.code(), vigie_core::ErrorCode::Unavailable);
    assert!(!dir.path().join("registry.db").exists(), "no SQLite file was made instead");
}

#[test]
fn an_unknown_database_url_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut location = RegistryLocation::new(dir.path());
    location.database = Some("mysql://vigie:hunter2@db/registry".into());
    let Err(error) = Registry::connect(&location) else { panic!("opened a mysql URL") };
    assert!(matches!(error, RegistryError::Location(_)), "{error:?}");
    assert!(
        error.to_string().contains("postgres://") && !error.to_string().contains("hunter2"),
        "{error}"
    );
    location.database = None;
    location.artifacts = Some("gs://bucket".into());
    let Err(error) = Registry::connect(&location) else { panic!("opened a gs URL") };
    assert!(error.to_string().contains("s3://BUCKET"), "{error}");
}

#[test]
fn a_locked_sqlite_database_fails_the_change_and_writes_nothing() {
    let place = Backend::Sqlite.place().unwrap();
    let mut location = place.location.clone();
    location.lock_timeout = Duration::from_millis(200);
    let mut registry = Registry::connect(&location).unwrap();
    register(&mut registry, "fraud");
    let run = start_run(&mut registry, "fraud", "ana");
    let generation = registry.generation().unwrap();

    // Another process holds the write lock.
    let other = rusqlite::Connection::open(place.dir.path().join("registry.db")).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let error = registry.register(&mut model("fraud"), &run, "ana").unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("registry.db: another writer held the database for more than 0.2 s"),
        "{message}"
    );
    assert!(message.contains("nothing was written"), "{message}");
    other.execute_batch("ROLLBACK").unwrap();

    assert_eq!(registry.generation().unwrap(), generation);
    assert_eq!(registry.versions("fraud").unwrap().len(), 1);
    assert!(!place.dir.path().join(format!("artifacts/{run}")).exists(), "no model file either");
    assert_eq!(
        registry.register(&mut model("fraud"), &run, "ana").unwrap().version,
        2,
        "free again"
    );
}

#[test]
fn a_registry_opens_and_reads_while_another_process_holds_the_write_lock() {
    let place = Backend::Sqlite.place().unwrap();
    let mut location = place.location.clone();
    location.lock_timeout = Duration::from_millis(200);
    let mut registry = Registry::connect(&location).unwrap();
    register(&mut registry, "fraud");
    drop(registry);

    // A training registering a model, say: opening only reads the schema's version.
    let other = rusqlite::Connection::open(place.dir.path().join("registry.db")).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let registry = Registry::connect(&location).unwrap();
    assert_eq!(registry.versions("fraud").unwrap().len(), 1);
    other.execute_batch("ROLLBACK").unwrap();
}

/// A fresh PostgreSQL database (`None`: no server, the test skips), a folder for the
/// artifacts, and their location with a lock timeout of 0.3 s.
fn postgres_place() -> Option<(String, tempfile::TempDir, RegistryLocation)> {
    let database = fresh_postgres_database()?;
    let dir = tempfile::tempdir().expect("a temporary folder");
    let mut location = RegistryLocation::new(dir.path());
    location.database = Some(database.clone());
    location.lock_timeout = Duration::from_millis(300);
    Some((database, dir, location))
}

#[test]
fn a_registry_on_postgres_opens_and_reads_while_another_session_holds_the_write_lock() {
    let Some((database, _dir, location)) = postgres_place() else { return };
    let mut registry = Registry::connect(&location).unwrap();
    register(&mut registry, "fraud");
    drop(registry);

    let mut other = PgClient::connect(&database, PgOptions::default()).unwrap();
    other.execute("SELECT pg_advisory_lock($1)", &[SqlValue::Int(WRITE_LOCK_KEY)]).unwrap();
    let registry = Registry::connect(&location).unwrap();
    assert_eq!(registry.versions("fraud").unwrap().len(), 1);
    other.execute("SELECT pg_advisory_unlock($1)", &[SqlValue::Int(WRITE_LOCK_KEY)]).unwrap();
}

#[test]
fn a_change_that_times_out_on_postgres_is_rolled_back_whole_with_its_model_file() {
    let Some((database, dir, location)) = postgres_place() else { return };
    let mut registry = Registry::connect(&location).unwrap();
    let run = start_run(&mut registry, "fraud", "ana");

    // Another session locks the artifacts table: the registration gets as far as writing the
    // model file and inserting the model's name, then waits past its lock timeout.
    let mut other = PgClient::connect(&database, PgOptions::default()).unwrap();
    let mut blocking = other.transaction().unwrap();
    blocking.batch_execute("LOCK TABLE artifacts IN ACCESS EXCLUSIVE MODE").unwrap();
    let error = registry.register(&mut model("fraud"), &run, "ana").unwrap_err();
    drop(blocking);
    let message = error.to_string();
    assert!(message.contains("more than 0.3 s (lock_timeout); nothing was written"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");

    assert!(registry.models().unwrap().is_empty(), "the model's name was rolled back too");
    assert_eq!(registry.generation().unwrap(), 0);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join(format!("artifacts/{run}")))
        .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        leftovers.is_empty(),
        "the model file written before the failure was deleted: {leftovers:?}"
    );
    assert_eq!(
        registry.register(&mut model("fraud"), &run, "ana").unwrap().version,
        1,
        "free again"
    );
}
