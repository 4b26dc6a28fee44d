//! Unit tests of the artifact store: local objects as files, and S3 URLs read into a
//! bucket and a prefix (no server needed; the S3 round trip is in the registry's tests).

use super::*;

#[test]
fn local_objects_round_trip_as_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = ArtifactStore::local(dir.path()).unwrap();
    store.put("artifacts/run1/m-v1.vgm", b"model bytes".to_vec()).unwrap();
    assert_eq!(std::fs::read(dir.path().join("artifacts/run1/m-v1.vgm")).unwrap(), b"model bytes");
    assert_eq!(store.get("artifacts/run1/m-v1.vgm").unwrap(), b"model bytes");
    let missing = store.get("artifacts/run1/none.vgm").unwrap_err();
    assert!(missing.to_string().contains("no such object"), "{missing}");
    assert_eq!(missing.code(), vigie_core::ErrorCode::NotFound);
    store.put("artifacts/run1/z/deep.bin", b"z".to_vec()).unwrap();
    store.put("artifacts/run10/other.bin", b"o".to_vec()).unwrap();
    assert_eq!(
        store.list("artifacts/run1/").unwrap(),
        ["artifacts/run1/m-v1.vgm", "artifacts/run1/z/deep.bin"],
        "at any depth, not the sibling run10"
    );
    assert_eq!(store.list("nothing/here/").unwrap(), Vec::<String>::new());
    store.delete("artifacts/run1/m-v1.vgm").unwrap();
    store.delete("artifacts/run1/m-v1.vgm").unwrap();
    assert!(store.get("artifacts/run1/m-v1.vgm").is_err());
}

#[test]
fn s3_urls_name_a_bucket_and_a_prefix() {
    let options = S3Options {
        endpoint: Some("http://127.0.0.1:1".into()),
        region: Some("us-east-1".into()),
        access_key_id: Some("k".into()),
        secret_access_key: Some("s".into()),
    };
    let store = ArtifactStore::s3("s3://models/team/a/", &options).unwrap();
    assert_eq!(store.location("artifacts/r/m-v1.vgm"), "s3://models/team/a/artifacts/r/m-v1.vgm");
    assert!(ArtifactStore::s3("s3://", &options).is_err());
    assert!(ArtifactStore::s3("gs://models", &options).is_err());
    assert!(is_loopback("http://127.0.0.1:9000") && is_loopback("http://localhost"));
    assert!(!is_loopback("http://127.0.0.10:9000") && !is_loopback("https://s3.amazonaws.com"));
}
