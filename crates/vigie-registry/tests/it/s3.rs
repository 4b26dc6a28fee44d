//! Model files on a real S3 server (moto): registered, loaded back byte for byte, refused
//! when the object was changed or is gone; metadata on SQLite or PostgreSQL alike.

use vigie_connectors::artifacts::ArtifactStore;
use vigie_registry::{Registry, RegistryError, RegistryLocation};

use crate::support::{fresh_postgres_database, fresh_s3_bucket, register};

#[expect(clippy::unwrap_used, reason = "the body of the two round-trip tests")]
fn round_trip(location: RegistryLocation, bucket: &str) {
    let options = location.s3.clone();
    let mut registry = Registry::connect(&location).unwrap();
    let v1 = register(&mut registry, "fraud");
    let v2 = register(&mut registry, "fraud");
    let url = registry.artifact_path(&v2).display().to_string();
    assert_eq!(url, format!("s3://{bucket}/team/a/{}", v2.artifact));
    assert!(
        !location.state_dir.join(&v2.artifact).exists(),
        "nothing is written to the state folder when artifacts are on S3"
    );
    assert_eq!(registry.load(&v2).unwrap().version(), 2);

    // The object is the registered file: change one byte and the load is refused.
    let store = ArtifactStore::s3(&format!("s3://{bucket}/team/a"), &options).unwrap();
    let mut bytes = store.get(&v1.artifact).unwrap();
    assert_eq!(registry.artifact_bytes(&v1.artifact).unwrap(), bytes);
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    store.put(&v1.artifact, bytes).unwrap();
    let error = registry.load(&v1).unwrap_err();
    assert!(error.to_string().contains("checksum"), "{error}");
    assert!(error.to_string().contains(&format!("s3://{bucket}/team/a/")), "{error}");

    store.delete(&v2.artifact).unwrap();
    let error = registry.load(&v2).unwrap_err();
    assert!(matches!(error, RegistryError::Artifacts(_)), "{error:?}");
    assert_eq!(error.code(), vigie_core::ErrorCode::NotFound);
    assert!(
        error.to_string().contains(&url) && error.to_string().contains("no such object"),
        "{error}"
    );
}

#[test]
fn model_files_round_trip_through_s3_with_sqlite_metadata() {
    let Some((bucket, options)) = fresh_s3_bucket() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut location = RegistryLocation::new(dir.path());
    location.artifacts = Some(format!("s3://{bucket}/team/a/"));
    location.s3 = options;
    round_trip(location, &bucket);
}

#[test]
fn model_files_round_trip_through_s3_with_postgres_metadata() {
    let Some((bucket, options)) = fresh_s3_bucket() else { return };
    let Some(database) = fresh_postgres_database() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut location = RegistryLocation::new(dir.path());
    location.database = Some(database);
    location.artifacts = Some(format!("s3://{bucket}/team/a"));
    location.s3 = options;
    round_trip(location, &bucket);
}

#[test]
fn a_missing_bucket_is_a_clear_error_and_registers_nothing() {
    let Some((_bucket, options)) = fresh_s3_bucket() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut location = RegistryLocation::new(dir.path());
    location.artifacts = Some("s3://no-such-bucket-for-vigie/models".into());
    location.s3 = options;
    let mut registry = Registry::connect(&location).unwrap();
    let run = crate::support::start_run(&mut registry, "fraud", "ana");
    let error = registry.register(&mut crate::support::model("fraud"), &run, "ana").unwrap_err();
    assert!(
        error.to_string().contains("s3://no-such-bucket-for-vigie/models/artifacts/"),
        "{error}"
    );
    assert!(registry.models().unwrap().is_empty(), "the failed registration left no model");
    assert_eq!(registry.generation().unwrap(), 0);
}
