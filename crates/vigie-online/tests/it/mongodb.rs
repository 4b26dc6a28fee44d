//! The MongoDB backend beyond the contract: its documents are ordinary
//! documents whose fields are the features, with a unique index on (view,
//! key); and a server that does not answer is an error naming its URL
//! without the password, for readers and writers.

use std::io::Write as _;

use mongodb::bson::{Bson, Document, doc};
use serde_json::{Map, json};
use vigie_core::ErrorCode;
use vigie_online::{LatestRow, OnlineLocation, OnlineStore};

/// The server's URL, or none after printing why the test is skipped. In CI (`CI=true`) a
/// missing server is a failure, never a skip.
pub fn server() -> Option<String> {
    match std::env::var("VIGIE_TEST_MONGODB_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI=true but VIGIE_TEST_MONGODB_URL is not set: CI must start MongoDB")
        }
        _ => {
            // Straight to the stderr handle, not eprintln!, which the test harness captures.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: VIGIE_TEST_MONGODB_URL is not set, so this test has no MongoDB server \
                 (run it with: scripts/services.sh run mongodb -- cargo test -p vigie-online)"
            );
            None
        }
    }
}

/// A database name no other test (or earlier run against the same server) uses.
pub fn database() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_nanos();
    format!("online_{}_{nanos}", std::process::id())
}

#[test]
fn documents_hold_the_features_as_fields_under_a_unique_view_key_index() {
    let Some(url) = server() else { return };
    let database = database();
    let location = OnlineLocation::mongodb(&url, &database, "latest").expect("location");
    let mut store = OnlineStore::open(&location).expect("open");
    let mut values = Map::new();
    values.insert("count_1h".into(), json!(3.0));
    values.insert("shop".into(), json!("CAFE"));
    values.insert("missing".into(), json!(null));
    let row = LatestRow { key: "C0042", time: 1_709_251_200_000_001, arrival: 7, values };
    assert_eq!(store.write("activity", [row]).expect("write"), 1);

    let client = mongodb::sync::Client::with_uri_str(&url).expect("client");
    let collection = client.database(&database).collection::<Document>("latest");
    let found = collection
        .find_one(doc! {"_view": "activity", "_key": "C0042"})
        .run()
        .expect("find")
        .expect("the document");
    assert_eq!(found.get("count_1h"), Some(&Bson::Double(3.0)), "{found}");
    assert_eq!(found.get("shop"), Some(&Bson::String("CAFE".into())), "{found}");
    assert_eq!(found.get("missing"), Some(&Bson::Null), "{found}");
    assert_eq!(found.get("_time"), Some(&Bson::Int64(1_709_251_200_000_001)), "{found}");
    assert!(found.get_str("_version").is_ok(), "{found}");
    let unique = collection
        .list_indexes()
        .run()
        .expect("indexes")
        .map(|index| index.expect("an index"))
        .any(|index| {
            index.keys == doc! {"_view": 1, "_key": 1}
                && index.options.and_then(|o| o.unique) == Some(true)
        });
    assert!(unique, "no unique index on (_view, _key)");

    // What the store reads back is what it was given.
    let read = store.get("activity", "C0042").expect("get").expect("row");
    assert_eq!(read.time, 1_709_251_200_000_001);
    assert_eq!(read.values["count_1h"], json!(3.0));
    assert_eq!(read.values["shop"], json!("CAFE"));
    assert_eq!(read.values.len(), 3, "{:?}", read.values);

    // Feature names MongoDB reads specially are refused, naming the feature.
    let mut bad = Map::new();
    bad.insert("a.b".into(), json!(1.0));
    let row = LatestRow { key: "C0042", time: 2_000_000_000_000_000, arrival: 1, values: bad };
    let error = store.write("activity", [row]).expect_err("a dotted name").to_string();
    assert!(error.contains("feature \"a.b\""), "{error}");
}

#[test]
fn a_server_that_does_not_answer_is_named_without_its_password() {
    // A port where nothing listens: that of a listener just closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let url = format!("mongodb://vigie:s3cret@127.0.0.1:{port}/?serverSelectionTimeoutMS=300");
    let location = OnlineLocation::mongodb(&url, "vigie", "online").expect("no I/O yet");
    assert!(location.exists());
    assert!(!location.to_string().contains("s3cret"), "{location}");
    let mut store = OnlineStore::open(&location).expect("opening is lazy");
    let row = LatestRow { key: "a", time: 1, arrival: 1, values: Map::new() };
    let write = store.write("v", [row]).expect_err("nobody listens");
    let read = store.get("v", "a").expect_err("nobody listens");
    for error in [write, read] {
        assert_eq!(error.code(), ErrorCode::Unavailable, "{error}");
        let message = error.to_string();
        assert!(message.contains(&format!("mongodb://vigie@127.0.0.1:{port}/")), "{message}");
        assert!(!message.contains("s3cret"), "{message}");
    }
}
