use serde_json::{Map, Value as Json, json};

use super::{LatestRow, OnlineStore};

fn values(amount: f64) -> Map<String, Json> {
    let mut values = Map::new();
    values.insert("amount".to_owned(), json!(amount));
    values
}

#[test]
fn only_newer_rows_or_new_values_of_the_same_event_replace_a_key() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("state/online.db");
    let mut store = OnlineStore::open(&path).expect("open");
    let row = |key, time, arrival, amount| LatestRow { key, time, arrival, values: values(amount) };
    assert_eq!(store.write("v", [row("a", 10, 1, 1.0), row("b", 10, 1, 2.0)]).expect("write"), 2);
    assert_eq!(store.write("v", [row("a", 10, 1, 1.0)]).expect("same"), 0, "the same row again");
    assert_eq!(
        store.write("v", [row("a", 10, 1, 9.0)]).expect("final"),
        1,
        "the same event with other values: final values after provisional ones"
    );
    assert_eq!(store.write("v", [row("a", 5, 9, 9.0)]).expect("older"), 0, "older");
    assert_eq!(store.write("v", [row("a", 10, 2, 3.0)]).expect("later arrival"), 1);

    let reader = OnlineStore::open_read_only(&path).expect("read only");
    let got = reader.get("v", "a").expect("get").expect("a row");
    assert_eq!((got.time, got.values["amount"].clone()), (10, json!(3.0)));
    assert_eq!(reader.get("v", "nobody").expect("get"), None);
    assert_eq!(reader.get("w", "a").expect("get"), None);
    assert_eq!(reader.count("v").expect("count"), 2);
    assert_eq!(reader.views().expect("views"), vec!["v".to_owned()]);
}

#[test]
fn a_missing_store_cannot_be_opened_read_only() {
    let dir = tempfile::tempdir().expect("dir");
    assert!(OnlineStore::open_read_only(&dir.path().join("online.db")).is_err());
}
