//! What every backend must do: only newer rows (event time, then arrival)
//! replace a key's row, readers see them, and when two writers race on the
//! same keys the newer row stays. One `check_…` per property, called once
//! per backend.

use std::sync::Barrier;

use serde_json::{Map, Value as Json, json};
use vigie_online::{LatestRow, OnlineLocation, OnlineStore};

use crate::mongodb::{database, server};

fn values(field: &str, value: Json) -> Map<String, Json> {
    let mut values = Map::new();
    values.insert(field.to_owned(), value);
    values
}

fn check_only_newer_rows_replace_a_key(location: &OnlineLocation) {
    let mut store = OnlineStore::open(location).expect("open");
    let row = |key, time, arrival, amount: f64| LatestRow {
        key,
        time,
        arrival,
        values: values("amount", json!(amount)),
    };
    assert_eq!(store.write("v", [row("a", 10, 1, 1.0), row("b", 10, 1, 2.0)]).expect("write"), 2);
    assert_eq!(store.write("v", [row("a", 10, 1, 1.0)]).expect("same"), 0, "the same row again");
    assert_eq!(
        store.write("v", [row("a", 10, 1, 9.0)]).expect("final"),
        1,
        "the same event with other values: final values after provisional ones"
    );
    assert_eq!(store.write("v", [row("a", 5, 9, 9.0)]).expect("older"), 0, "older");
    assert_eq!(store.write("v", [row("a", 10, 2, 3.0)]).expect("later arrival"), 1);
    assert_eq!(store.write("v", [row("b", -3, 7, 9.0)]).expect("before 1970"), 0, "older");
    assert_eq!(store.write("w", [row("a", 1, 1, 4.0)]).expect("another view"), 1);

    let reader = OnlineStore::open_read_only(location).expect("read only");
    let got = reader.get("v", "a").expect("get").expect("a row");
    assert_eq!((got.time, got.values), (10, values("amount", json!(3.0))));
    assert_eq!(reader.get("v", "b").expect("get").expect("b").values["amount"], json!(2.0));
    assert_eq!(reader.get("v", "nobody").expect("get"), None);
    assert_eq!(reader.get("x", "a").expect("get"), None);
    assert_eq!(reader.count("v").expect("count"), 2);
    assert_eq!(reader.views().expect("views"), vec!["v".to_owned(), "w".to_owned()]);
}

/// Keys written per round, and rounds: each round's keys are new, so both
/// writers insert them at once.
const KEYS: usize = 120;
const ROUNDS: usize = 4;

/// Two writers, each with its own handle (`locations`), write every key of
/// each round at the same moment, in small batches so their writes
/// interleave; for each key one of them has the newer row (a later time for
/// even keys of writer 0 and odd keys of writer 1). The newer row must stay,
/// whoever writes last.
fn check_two_writers_racing_leave_the_newer_row(locations: [OnlineLocation; 2]) {
    let keys: Vec<Vec<String>> =
        (0..ROUNDS).map(|round| (0..KEYS).map(|i| format!("r{round}k{i}")).collect()).collect();
    let start = Barrier::new(2);
    std::thread::scope(|scope| {
        for (writer, location) in locations.iter().enumerate() {
            let (keys, start) = (&keys, &start);
            scope.spawn(move || {
                let mut store = OnlineStore::open(location).expect("open");
                for round_keys in keys {
                    start.wait();
                    let rows: Vec<LatestRow<'_>> = round_keys
                        .iter()
                        .enumerate()
                        .map(|(i, key)| LatestRow {
                            key,
                            time: if (i + writer) % 2 == 0 { 1_010 } else { 1_000 },
                            arrival: 1,
                            values: values("writer", json!(writer)),
                        })
                        .collect();
                    for batch in rows.chunks(8) {
                        store.write("race", batch.iter().cloned()).expect("write");
                    }
                }
            });
        }
    });
    let reader = OnlineStore::open_read_only(&locations[0]).expect("read");
    for round_keys in &keys {
        for (i, key) in round_keys.iter().enumerate() {
            let row = reader.get("race", key).expect("get").expect("a row per key");
            assert_eq!((row.time, &row.values["writer"]), (1_010, &json!(i % 2)), "{key}");
        }
    }
    assert_eq!(reader.count("race").expect("count"), (KEYS * ROUNDS) as u64);
}

#[test]
fn embedded_only_newer_rows_replace_a_key() {
    let dir = tempfile::tempdir().expect("dir");
    check_only_newer_rows_replace_a_key(&OnlineLocation::embedded(dir.path().join("s/online.db")));
}

#[test]
fn mongodb_only_newer_rows_replace_a_key() {
    let Some(url) = server() else { return };
    let location = OnlineLocation::mongodb(&url, &database(), "online").expect("location");
    check_only_newer_rows_replace_a_key(&location);
}

#[test]
fn embedded_two_writers_racing_leave_the_newer_row() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("online.db");
    // The file exists before the writers race to create it.
    OnlineStore::open(&OnlineLocation::embedded(&path)).expect("create");
    check_two_writers_racing_leave_the_newer_row([
        OnlineLocation::embedded(&path),
        OnlineLocation::embedded(&path),
    ]);
}

#[test]
fn mongodb_two_writers_racing_leave_the_newer_row() {
    let Some(url) = server() else { return };
    let database = database();
    // Two clients, as two processes would have.
    let location = || OnlineLocation::mongodb(&url, &database, "online").expect("location");
    check_two_writers_racing_leave_the_newer_row([location(), location()]);
}
