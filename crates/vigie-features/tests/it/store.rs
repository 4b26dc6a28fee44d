//! The feature store end to end on files: incremental ingest, a view
//! computed with SQL expressions and windows, the point-in-time join with a
//! time-to-live, and the online store's latest rows, materialised
//! incrementally into the embedded store and into MongoDB
//! (`VIGIE_TEST_MONGODB_URL`, from `scripts/services.sh`).

use std::path::Path;

use arrow::array::{Array, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use vigie_core::Config;
use vigie_features::online::materialize;
use vigie_features::{FeatureRef, FeatureStore, OnlineLocation, OnlineStore};

use crate::sources::{server, unique};

const PROJECT: &str = r#"
[entities.customer]
key = "customer_id"

[sources.transactions]
kind = "file"
path = "transactions.csv"
timestamp = "ts"

[feature_views.activity]
source = "transactions"
entity = "customer"
ttl = "1h"
columns = { big = "CASE WHEN amount > 50 THEN 1 ELSE 0 END", merchant_upper = "upper(merchant)" }
aggregations = [
  { name = "count_1h", function = "count", window = "1h" },
  { name = "sum_1h", function = "sum", column = "amount", window = "1h" },
  { name = "merchants_1d", function = "distinct_count", column = "merchant", window = "1d" },
  { name = "big_1d", function = "sum", column = "big", window = "1d" },
]
"#;

const HEADER: &str = "customer_id,ts,amount,merchant\n";
const FIRST: &str = "\
1,2024-03-01T00:00:00,10,shop
1,2024-03-01T00:30:00,20,cafe
2,2024-03-01T00:10:00,100,shop
1,2024-03-01T02:00:00,60,shop
";

fn store(dir: &Path) -> FeatureStore {
    let config = Config::parse(PROJECT, "vigie.toml").expect("config");
    FeatureStore::open(dir, config).expect("store")
}

fn micros(text: &str) -> i64 {
    let seconds = humantime::parse_rfc3339(&format!("{text}Z"))
        .expect("time")
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    seconds as i64 * 1_000_000
}

fn number(batch: &RecordBatch, column: &str, row: usize) -> Option<f64> {
    let values = batch.column_by_name(column).expect(column);
    let values = values.as_any().downcast_ref::<Float64Array>().expect("f64");
    (!values.is_null(row)).then(|| values.value(row))
}

#[test]
fn ingest_is_incremental_and_views_compute_windows_per_entity() {
    let dir = tempfile::tempdir().expect("dir");
    let csv = dir.path().join("transactions.csv");
    std::fs::write(&csv, format!("{HEADER}{FIRST}")).expect("write");
    let store = store(dir.path());
    let first = store.ingest("transactions").expect("ingest");
    assert_eq!((first.read, first.stored), (4, 4));
    assert_eq!(first.watermark, Some(micros("2024-03-01T02:00:00")));
    assert_eq!(store.ingest("transactions").expect("again").stored, 0, "nothing new");
    // New rows after the watermark are stored; one older than it is not (it was read before).
    std::fs::write(
        &csv,
        format!("{HEADER}{FIRST}1,2024-03-01T02:20:00,5,kiosk\n2,2024-03-01T01:00:00,7,shop\n"),
    )
    .expect("write");
    assert_eq!(store.ingest("transactions").expect("third").stored, 1);

    let summary = store.compute_view("activity").expect("view");
    assert_eq!((summary.rows, summary.keys, summary.late, summary.days), (5, 2, 0, 1));
    let rows = store.view_rows("activity").expect("rows");
    let keys = rows.column_by_name("_key").expect("key");
    let keys = keys.as_any().downcast_ref::<StringArray>().expect("text");
    let by_key: Vec<&str> = (0..rows.num_rows()).map(|i| keys.value(i)).collect();
    assert_eq!(by_key, ["1", "1", "1", "1", "2"]);
    // Customer 1: 00:00 (10), 00:30 (20), 02:00 (60), 02:20 (5).
    let counts: Vec<Option<f64>> = (0..4).map(|i| number(&rows, "count_1h", i)).collect();
    assert_eq!(counts, [Some(1.0), Some(2.0), Some(1.0), Some(2.0)]);
    let sums: Vec<Option<f64>> = (0..4).map(|i| number(&rows, "sum_1h", i)).collect();
    assert_eq!(sums, [Some(10.0), Some(30.0), Some(60.0), Some(65.0)]);
    let merchants: Vec<Option<f64>> = (0..4).map(|i| number(&rows, "merchants_1d", i)).collect();
    assert_eq!(merchants, [Some(1.0), Some(2.0), Some(2.0), Some(3.0)]);
    assert_eq!(number(&rows, "big", 2), Some(1.0), "the SQL expression, as a number");
    assert_eq!(number(&rows, "big_1d", 3), Some(1.0), "a window over a row-level feature");
    let upper = rows.column_by_name("merchant_upper").expect("text feature");
    let upper = upper.as_any().downcast_ref::<StringArray>().expect("utf8");
    assert_eq!(upper.value(1), "CAFE");
}

#[test]
fn point_in_time_join_and_online_store_serve_the_values_as_of_each_time() {
    let dir = tempfile::tempdir().expect("dir");
    let online = OnlineLocation::embedded(dir.path().join("online.db"));
    check_join_and_online_store(dir.path(), &online);
}

#[test]
fn materialisation_into_a_mongodb_online_store_serves_the_same_values() {
    let Some(url) = server("VIGIE_TEST_MONGODB_URL", "mongodb") else { return };
    let dir = tempfile::tempdir().expect("dir");
    let online = OnlineLocation::mongodb(&url, &unique("store"), "online").expect("location");
    check_join_and_online_store(dir.path(), &online);
}

/// In a project in `dir`: the point-in-time join, then materialisation into `online`, again
/// (nothing newer), and after one more event (only its key).
fn check_join_and_online_store(dir: &Path, online: &OnlineLocation) {
    std::fs::write(dir.join("transactions.csv"), format!("{HEADER}{FIRST}")).expect("write");
    let store = store(dir);
    store.ingest("transactions").expect("ingest");
    store.compute_view("activity").expect("view");

    let asked = [
        ("1", "2024-03-01T00:45:00"), // after 00:30: count 2
        ("1", "2024-03-01T00:15:00"), // after 00:00 only: count 1
        ("1", "2024-02-29T23:59:00"), // before any event: none
        ("1", "2024-03-01T01:45:00"), // 00:30 is 75 minutes old, beyond the 1h TTL: none
        ("2", "2024-03-01T00:10:00"), // at the event's own time: included
        ("9", "2024-03-01T00:10:00"), // unknown customer: none
    ];
    let entities = RecordBatch::try_new(
        std::sync::Arc::new(Schema::new(vec![
            Field::new("customer_id", DataType::Utf8, false),
            Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), false),
        ])),
        vec![
            std::sync::Arc::new(StringArray::from(
                asked.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            )),
            std::sync::Arc::new(TimestampMicrosecondArray::from(
                asked.iter().map(|(_, t)| micros(t)).collect::<Vec<_>>(),
            )),
        ],
    )
    .expect("entities");
    let features: Vec<FeatureRef> =
        ["activity:count_1h", "activity:sum_1h"].iter().map(|f| f.parse().expect("ref")).collect();
    let joined = store.historical(&entities, "ts", &features).expect("join");
    let counts: Vec<Option<f64>> =
        (0..asked.len()).map(|i| number(&joined, "count_1h", i)).collect();
    assert_eq!(counts, [Some(2.0), Some(1.0), None, None, Some(1.0), None]);
    assert_eq!(number(&joined, "sum_1h", 4), Some(100.0));

    let error =
        store.historical(&entities, "when", &features).expect_err("no such column").to_string();
    assert!(
        error.contains("no time column \"when\"") && error.contains("customer_id, ts"),
        "{error}"
    );
    let error = store
        .historical(&entities, "ts", &["activity:nope".parse().expect("ref")])
        .expect_err("no such feature")
        .to_string();
    assert!(error.contains("has no feature \"nope\"") && error.contains("count_1h"), "{error}");

    let mut online = OnlineStore::open(online).expect("online");
    let rows = store.view_rows("activity").expect("rows");
    let names = FeatureStore::feature_names(store.view("activity").expect("view"));
    assert_eq!(materialize(&mut online, "activity", &rows, &names).expect("materialize"), 2);
    assert_eq!(
        materialize(&mut online, "activity", &rows, &names).expect("again"),
        0,
        "nothing newer"
    );
    let latest = online.get("activity", "1").expect("get").expect("customer 1");
    assert_eq!(latest.time, micros("2024-03-01T02:00:00"));
    assert_eq!(latest.values["count_1h"], serde_json::json!(1.0));
    assert_eq!(latest.values["merchant_upper"], serde_json::json!("SHOP"));
    assert!(online.get("activity", "404").expect("get").is_none());

    // One more event: only its key is newer.
    let later = "2,2024-03-01T03:00:00,5,cafe\n";
    std::fs::write(dir.join("transactions.csv"), format!("{HEADER}{FIRST}{later}")).expect("write");
    store.ingest("transactions").expect("ingest");
    store.compute_view("activity").expect("view");
    let rows = store.view_rows("activity").expect("rows");
    assert_eq!(materialize(&mut online, "activity", &rows, &names).expect("incremental"), 1);
    let latest = online.get("activity", "2").expect("get").expect("customer 2");
    assert_eq!(latest.time, micros("2024-03-01T03:00:00"));
    assert_eq!(latest.values["merchants_1d"], serde_json::json!(2.0));
    assert_eq!(online.count("activity").expect("count"), 2);
}

#[test]
fn bad_sources_get_errors_naming_the_file_row_and_column() {
    let dir = tempfile::tempdir().expect("dir");
    let csv = dir.path().join("transactions.csv");
    std::fs::write(&csv, format!("{HEADER}1,2024-03-01T00:00:00,10,shop\n1,yesterday,5,shop\n"))
        .expect("write");
    let store = store(dir.path());
    let error = store.ingest("transactions").expect_err("bad time").to_string();
    assert!(
        error.contains("transactions.csv: data row 2: column \"ts\": \"yesterday\" is not a time"),
        "{error}"
    );
    assert!(
        store.offline().state("transactions").expect("state").watermark.is_none(),
        "nothing stored"
    );

    std::fs::write(&csv, "customer,ts,amount,merchant\n1,2024-03-01T00:00:00,10,shop\n")
        .expect("write");
    store.ingest("transactions").expect("ingest");
    let error = store.compute_view("activity").expect_err("no key").to_string();
    assert!(error.contains("has no column \"customer_id\""), "{error}");
    let error = store.compute_view("nothing").expect_err("unknown").to_string();
    assert!(error.contains("no feature view \"nothing\"") && error.contains("activity"), "{error}");
    let error = store.ingest("nothing").expect_err("unknown").to_string();
    assert!(error.contains("no source \"nothing\""), "{error}");
}

#[test]
fn a_bad_sql_expression_is_named_with_its_feature() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("transactions.csv"), format!("{HEADER}{FIRST}")).expect("write");
    let project =
        PROJECT.replace("big = \"CASE WHEN amount > 50 THEN 1 ELSE 0 END\"", "big = \"amout * 2\"");
    let config = Config::parse(&project, "vigie.toml").expect("config");
    let store = FeatureStore::open(dir.path(), config).expect("store");
    store.ingest("transactions").expect("ingest");
    let error = anyhow_like(store.compute_view("activity").expect_err("bad column"));
    assert!(error.contains("column \"big\" = \"amout * 2\"") && error.contains("amout"), "{error}");
}

/// The error with its sources, as the CLI prints it.
fn anyhow_like(error: vigie_features::FeatureError) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}
