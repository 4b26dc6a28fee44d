use proptest::prelude::*;
use rusqlite::{Connection, params};
use serde_json::json;

use super::rows::version;
use super::{LatestRow, OnlineLocation, OnlineStore};

proptest! {
    #[test]
    fn versions_sort_as_time_then_arrival(
        a in (any::<i64>(), any::<i64>()),
        b in (any::<i64>(), any::<i64>()),
    ) {
        prop_assert_eq!(version(a.0, a.1).cmp(&version(b.0, b.1)), a.cmp(&b));
        prop_assert_eq!(version(a.0, a.1).len(), 32);
    }
}

#[test]
fn a_store_of_the_earlier_layout_is_upgraded_and_keeps_its_order() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("online.db");
    let old = Connection::open(&path).expect("sqlite");
    old.execute_batch(
        "CREATE TABLE features (
            view TEXT NOT NULL, key TEXT NOT NULL, time INTEGER NOT NULL,
            arrival INTEGER NOT NULL, row TEXT NOT NULL,
            PRIMARY KEY (view, key)
        ) WITHOUT ROWID;",
    )
    .expect("the earlier layout");
    old.execute(
        "INSERT INTO features VALUES ('v', 'a', 10, 5, ?1)",
        params![json!({"amount": 1.0}).to_string()],
    )
    .expect("a row");
    drop(old);

    let location = OnlineLocation::embedded(&path);
    let mut store = OnlineStore::open(&location).expect("open upgrades");
    let row = |time, arrival, amount| LatestRow {
        key: "a",
        time,
        arrival,
        values: json!({"amount": amount}).as_object().cloned().expect("object"),
    };
    assert_eq!(store.write("v", [row(10, 4, 2.0)]).expect("older arrival"), 0);
    assert_eq!(store.get("v", "a").expect("get").expect("row").values["amount"], json!(1.0));
    assert_eq!(store.write("v", [row(10, 6, 3.0)]).expect("later arrival"), 1);
    drop(store);
    let again = OnlineStore::open(&location).expect("reopen: nothing to upgrade");
    assert_eq!(again.get("v", "a").expect("get").expect("row").values["amount"], json!(3.0));
}

#[test]
fn a_missing_store_cannot_be_opened_read_only() {
    let dir = tempfile::tempdir().expect("dir");
    let location = OnlineLocation::embedded(dir.path().join("online.db"));
    assert!(!location.exists());
    assert!(OnlineStore::open_read_only(&location).is_err());
}
