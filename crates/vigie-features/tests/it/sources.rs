//! Database sources against real servers: a PostgreSQL table and a MongoDB collection of
//! nested documents are ingested incrementally (only rows newer than the watermark are read
//! and stored), a view computes windows over them, and a server that cannot be reached gives
//! an error naming the source and its URL without the password, and stores nothing.
//!
//! The servers come from `scripts/services.sh` (`VIGIE_TEST_POSTGRES_URL`,
//! `VIGIE_TEST_MONGODB_URL`). Without them the tests print SKIPPED; with `CI=true` they fail.

use std::io::Write;
use std::path::Path;

use arrow::array::{
    Array, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow::compute::concat_batches;
use arrow::datatypes::DataType;
use mongodb::bson::{DateTime, doc};
use vigie_connectors::postgres::{PgClient, PgOptions};
use vigie_core::Config;
use vigie_features::FeatureStore;

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
                 (start it with scripts/services.sh run {service} -- cargo test -p vigie-features)"
            );
            None
        }
    }
}

/// A name no other test (or earlier run against the same server) uses.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .subsec_nanos();
    format!("{prefix}{}_{nanos}", std::process::id())
}

fn micros(text: &str) -> i64 {
    let time = humantime::parse_rfc3339(&format!("{text}Z")).expect("time");
    let since = time.duration_since(std::time::UNIX_EPOCH).expect("after 1970");
    i64::try_from(since.as_micros()).expect("fits")
}

/// A project with one entity, the database source under test, one that cannot be reached,
/// and a view of windows over the source.
fn project(dir: &Path, source: &str, unreachable: &str, key: &str) -> FeatureStore {
    let text = format!(
        r#"
[entities.customer]
key = "{key}"

[sources.orders]
{source}

[sources.gone]
{unreachable}

[feature_views.activity]
source = "orders"
entity = "customer"
aggregations = [
  {{ name = "count_1h", function = "count", window = "1h" }},
  {{ name = "sum_1h", function = "sum", column = "amount", window = "1h" }},
]
"#
    );
    let config = Config::parse(&text, "vigie.toml").expect("config");
    FeatureStore::open(dir, config).expect("store")
}

/// Every stored row of `source`, in arrival order.
fn stored(store: &FeatureStore, source: &str) -> RecordBatch {
    let batches = store.offline().read_source(source).expect("read");
    let first = batches.first().expect("a part");
    concat_batches(&first.schema(), &batches).expect("concat")
}

fn typed<'a, T: 'static>(batch: &'a RecordBatch, column: &str) -> &'a T {
    batch
        .column_by_name(column)
        .unwrap_or_else(|| panic!("no column {column:?} in {:?}", batch.schema()))
        .as_any()
        .downcast_ref::<T>()
        .unwrap_or_else(|| panic!("column {column:?} is {:?}", batch.schema()))
}

/// The value of feature `name` of `key`'s row at `time`.
fn feature(store: &FeatureStore, key: &str, time: &str, name: &str) -> Option<f64> {
    let rows = store.view_rows("activity").expect("rows");
    let keys = typed::<StringArray>(&rows, "_key");
    let times = typed::<TimestampMicrosecondArray>(&rows, "_time");
    let values = typed::<Float64Array>(&rows, name);
    let row = (0..rows.num_rows())
        .find(|&i| keys.value(i) == key && times.value(i) == micros(time))
        .unwrap_or_else(|| panic!("no row of {key} at {time}"));
    (!values.is_null(row)).then(|| values.value(row))
}

/// An unreachable source fails naming itself and its server, without the password, and
/// stores nothing; the other source's state is untouched.
fn check_unreachable(store: &FeatureStore, address: &str) {
    let before = store.offline().state("orders").expect("state");
    let error = store.ingest("gone").expect_err("nothing listens there");
    let message = error.to_string();
    assert!(message.starts_with("source \"gone\": "), "{message}");
    assert!(message.contains(address), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
    assert_eq!(error.code(), vigie_core::ErrorCode::Unavailable, "{message}");
    assert_eq!(store.offline().state("gone").expect("state").watermark, None);
    assert!(!store.offline().has_source("gone").expect("list"), "no part written");
    assert_eq!(store.offline().state("orders").expect("state"), before);
}

#[test]
fn postgres_rows_are_ingested_incrementally_and_feed_windows() {
    let Some(url) = server("VIGIE_TEST_POSTGRES_URL", "postgres") else { return };
    let table = unique("orders_");
    let mut client = PgClient::connect(&url, PgOptions::default()).expect("connect");
    client
        .batch_execute(&format!(
            "CREATE TABLE {table} (customer_id int, ts timestamptz, amount numeric(10, 2), \
             merchant text, paid boolean, tags jsonb);
             INSERT INTO {table} VALUES
               (1, '2024-03-01 00:00:00+00', 10.50, 'shop', true, '[1]'),
               (1, '2024-03-01 00:30:00+00', 20.25, NULL, false, NULL),
               (2, '2024-03-01 00:10:00+00', 100, 'shop', NULL, NULL),
               (1, '2024-03-01 02:00:00+00', 60, 'kiosk', true, NULL),
               (3, NULL, 1, 'no time', true, NULL);"
        ))
        .expect("create the table");
    let dir = tempfile::tempdir().expect("dir");
    let source = format!(
        "kind = \"postgres\"\nurl = \"${{VIGIE_TEST_POSTGRES_URL}}\"\ntable = \"{table}\"\ntimestamp = \"ts\""
    );
    let gone = "kind = \"postgres\"\nurl = \"postgres://vigie:hunter2@127.0.0.1:1/shop\"\n\
                table = \"orders\"\ntimestamp = \"ts\"";
    let store = project(dir.path(), &source, gone, "customer_id");

    let first = store.ingest("orders").expect("first ingest");
    assert_eq!((first.read, first.stored), (4, 4), "the row without a time is not read");
    assert_eq!(first.untimed, 1, "but it is counted");
    assert_eq!(first.watermark, Some(micros("2024-03-01T02:00:00")));
    let rows = stored(&store, "orders");
    assert_eq!(
        rows.schema().field_with_name("amount").expect("amount").data_type(),
        &DataType::Float64
    );
    let amounts: Vec<f64> = typed::<Float64Array>(&rows, "amount").values().to_vec();
    assert_eq!(amounts, [10.5, 100.0, 20.25, 60.0], "numeric as float, in event-time order");
    let customers: Vec<i64> = typed::<Int64Array>(&rows, "customer_id").values().to_vec();
    assert_eq!(customers, [1, 2, 1, 1]);
    let merchants = typed::<StringArray>(&rows, "merchant");
    assert!(merchants.is_null(2) && merchants.value(3) == "kiosk", "NULL text stays null");
    let paid = typed::<BooleanArray>(&rows, "paid");
    assert!(paid.value(0) && paid.is_null(1), "booleans, NULL kept");
    assert_eq!(typed::<StringArray>(&rows, "tags").value(0), "[1]", "jsonb read as its text");

    assert_eq!(store.ingest("orders").expect("again").read, 0, "the watermark is in the query");
    client
        .batch_execute(&format!(
            "INSERT INTO {table} VALUES
               (1, '2024-03-01 02:20:00+00', 5, 'kiosk', true, NULL),
               (2, '2024-03-01 01:00:00+00', 7, 'late', true, NULL);"
        ))
        .expect("insert newer rows");
    let second = store.ingest("orders").expect("second ingest");
    assert_eq!((second.read, second.stored), (1, 1), "only the row after the watermark");
    assert_eq!(second.untimed, 1, "counted again: it is still not read");
    assert_eq!(second.watermark, Some(micros("2024-03-01T02:20:00")));
    assert_eq!(stored(&store, "orders").num_rows(), 5);

    store.compute_view("activity").expect("view");
    assert_eq!(feature(&store, "1", "2024-03-01T00:30:00", "sum_1h"), Some(30.75));
    assert_eq!(feature(&store, "1", "2024-03-01T02:20:00", "sum_1h"), Some(65.0));
    assert_eq!(feature(&store, "1", "2024-03-01T02:20:00", "count_1h"), Some(2.0));

    check_unreachable(&store, "postgres://vigie@127.0.0.1:1/shop");

    // A query instead of a table; a timestamp column of the wrong type is named.
    let query = format!(
        "kind = \"postgres\"\nurl = \"{url}\"\n\
         query = \"SELECT customer_id, ts::date AS day, amount * 2 AS amount, merchant AS ts_text FROM {table}\"\n\
         timestamp = \"day\""
    );
    let bad = format!(
        "kind = \"postgres\"\nurl = \"{url}\"\nquery = \"SELECT merchant AS ts FROM {table}\"\ntimestamp = \"ts\""
    );
    let dir = tempfile::tempdir().expect("dir");
    let store = project(dir.path(), &query, &bad, "customer_id");
    let by_day = store.ingest("orders").expect("query ingest");
    assert_eq!((by_day.read, by_day.stored), (6, 6));
    assert_eq!(by_day.watermark, Some(micros("2024-03-01T00:00:00")), "a date is its midnight UTC");
    let error = store.ingest("gone").expect_err("text timestamp").to_string();
    assert!(
        error.contains("column \"ts\" of the source's query has type text")
            && error.contains("timestamp, timestamptz or date"),
        "{error}"
    );

    // The server ends the session in the middle of the read (the query terminates its own
    // backend): a clear error, nothing stored.
    let dying = format!(
        "kind = \"postgres\"\nurl = \"{url}\"\n\
         query = \"SELECT *, CASE WHEN customer_id = 2 THEN pg_terminate_backend(pg_backend_pid()) END AS boom FROM {table}\"\n\
         timestamp = \"ts\""
    );
    let dir = tempfile::tempdir().expect("dir");
    let store = project(dir.path(), &dying, gone, "customer_id");
    let error = store.ingest("orders").expect_err("the session ends");
    let message = error.to_string();
    assert!(message.starts_with("source \"orders\": postgresql postgres://"), "{message}");
    assert!(message.contains("reading the source's query"), "{message}");
    assert_eq!(error.code(), vigie_core::ErrorCode::Unavailable, "{message}");
    assert_eq!(store.offline().state("orders").expect("state").watermark, None);
    assert!(!store.offline().has_source("orders").expect("list"), "no part written");
    client.batch_execute(&format!("DROP TABLE {table}")).expect("drop");
}

#[test]
fn mongodb_documents_are_flattened_and_ingested_incrementally() {
    let Some(url) = server("VIGIE_TEST_MONGODB_URL", "mongodb") else { return };
    let database = unique("vigie_test_");
    let client = mongodb::sync::Client::with_uri_str(&url).expect("client");
    let events = client.database(&database).collection::<mongodb::bson::Document>("events");
    let at = |text: &str| DateTime::from_millis(micros(text) / 1000);
    events
        .insert_many([
            doc! { "customer": { "id": "c1" }, "device": { "country": "fr" }, "amount": 10.5,
            "status": "paid", "ts": at("2024-03-01T00:00:00") },
            doc! { "customer": { "id": "c1" }, "amount": 20_i32, "status": "paid",
            "ts": at("2024-03-01T00:30:00") },
            doc! { "customer": { "id": "c2" }, "device": { "country": "de" }, "amount": 100_i64,
            "status": "paid", "ts": at("2024-03-01T00:10:00") },
            doc! { "customer": { "id": "c1" }, "device": { "country": "fr" }, "amount": 99.0,
            "status": "refunded", "ts": at("2024-03-01T00:40:00") },
            doc! { "customer": { "id": "c1" }, "device": { "country": "es" }, "amount": 60.0,
            "status": "paid", "ts": at("2024-03-01T02:00:00") },
            doc! { "customer": { "id": "c3" }, "amount": 1.0, "status": "paid",
            "ts": "2024-03-01T03:00:00" },
        ])
        .run()
        .expect("insert");
    let dir = tempfile::tempdir().expect("dir");
    let source = format!(
        "kind = \"mongodb\"\nurl = \"${{VIGIE_TEST_MONGODB_URL}}\"\ndatabase = \"{database}\"\n\
         collection = \"events\"\nfilter = '{{\"status\": \"paid\"}}'\ntimestamp = \"ts\"\n\
         fields = {{ customer_id = \"customer.id\", country = \"device.country\", amount = \"amount\" }}"
    );
    let gone = "kind = \"mongodb\"\n\
                url = \"mongodb://vigie:hunter2@127.0.0.1:1/?directConnection=true&serverSelectionTimeoutMS=1000\"\n\
                database = \"shop\"\ncollection = \"events\"\ntimestamp = \"ts\"";
    let store = project(dir.path(), &source, gone, "customer_id");

    let first = store.ingest("orders").expect("first ingest");
    assert_eq!(
        (first.read, first.stored),
        (4, 4),
        "the refunded document is filtered out, the one with a text time is not read"
    );
    assert_eq!(first.untimed, 1, "the document with a text time is counted");
    assert_eq!(first.watermark, Some(micros("2024-03-01T02:00:00")));
    let rows = stored(&store, "orders");
    let customers = typed::<StringArray>(&rows, "customer_id");
    assert_eq!(customers.iter().flatten().collect::<Vec<_>>(), ["c1", "c2", "c1", "c1"]);
    let countries = typed::<StringArray>(&rows, "country");
    assert_eq!(countries.iter().collect::<Vec<_>>(), [Some("fr"), Some("de"), None, Some("es")]);
    let amounts: Vec<f64> = typed::<Float64Array>(&rows, "amount").values().to_vec();
    assert_eq!(amounts, [10.5, 100.0, 20.0, 60.0], "double, int32 and int64 as float64");

    assert_eq!(store.ingest("orders").expect("again").read, 0, "the watermark is in the query");
    events
        .insert_many([
            doc! { "customer": { "id": "c1" }, "device": { "country": "fr" }, "amount": 5.0,
            "status": "paid", "ts": at("2024-03-01T02:20:00") },
            doc! { "customer": { "id": "c2" }, "amount": 7.0, "status": "paid",
            "ts": at("2024-03-01T01:00:00") },
        ])
        .run()
        .expect("insert newer");
    let second = store.ingest("orders").expect("second ingest");
    assert_eq!((second.read, second.stored), (1, 1), "only the document after the watermark");
    assert_eq!(second.watermark, Some(micros("2024-03-01T02:20:00")));

    store.compute_view("activity").expect("view");
    assert_eq!(feature(&store, "c1", "2024-03-01T00:30:00", "sum_1h"), Some(30.5));
    assert_eq!(feature(&store, "c1", "2024-03-01T02:20:00", "sum_1h"), Some(65.0));
    assert_eq!(feature(&store, "c1", "2024-03-01T02:20:00", "count_1h"), Some(2.0));

    check_unreachable(&store, "mongodb://vigie@127.0.0.1:1/");
    client.database(&database).drop().run().expect("drop");
}
