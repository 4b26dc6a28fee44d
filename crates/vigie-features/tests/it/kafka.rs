//! A Kafka source against a real broker (tansu, started by scripts/services.sh as
//! `VIGIE_TEST_KAFKA_BROKERS`): events read in a consumer group are stored once each, even
//! when the group's committed offsets are lost (a crash between storing and committing) or
//! a processor stops with a micro-batch read ahead, and the streamed online rows equal the
//! batch engine's rows for the same events.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{Value as Json, json};
use vigie_core::Config;
use vigie_features::{FeatureStore, OnlineLocation, OnlineStore, StepSummary, StreamProcessor};

use crate::sources::server;

fn project(brokers: &str, topic: &str, group: &str) -> String {
    format!(
        r#"
[entities.customer]
key = "customer_id"

[sources.payments]
kind = "kafka"
brokers = "{brokers}"
topic = "{topic}"
group = "{group}"
timestamp = "ts"
fields = {{ customer_id = "customer_id", ts = "ts", amount = "amount" }}

[feature_views.live]
source = "payments"
entity = "customer"
allowed_lateness = "5m"
aggregations = [
  {{ name = "count_1h", function = "count", window = "1h" }},
  {{ name = "sum_1h", function = "sum", column = "amount", window = "1h" }},
]
"#
    )
}

fn events(from: usize, to: usize) -> Vec<Json> {
    (from..to)
        .map(|i| {
            let minute = i as i64 + (i as i64 * 7919 % 11) - 5;
            let time = humantime::format_rfc3339_micros(
                std::time::UNIX_EPOCH
                    + std::time::Duration::from_secs((1_709_251_200 + minute * 60) as u64)
                    + std::time::Duration::from_micros(i as u64),
            );
            if i % 97 == 13 {
                // Not storable: a dead letter, never a lost offset.
                return json!({"customer_id": format!("c{}", i % 5), "ts": time.to_string(), "amount": "n/a"});
            }
            json!({"customer_id": format!("c{}", i % 5), "ts": time.to_string(), "amount": (i % 40) as f64})
        })
        .collect()
}

fn open(dir: &Path, text: &str) -> FeatureStore {
    FeatureStore::open(dir, Config::parse(text, "vigie.toml").expect("config")).expect("store")
}

fn processor<'s>(store: &'s FeatureStore, dir: &Path) -> StreamProcessor<'s> {
    let online =
        OnlineStore::open(&OnlineLocation::embedded(dir.join("online.db"))).expect("online");
    StreamProcessor::open(store, &dir.join("events"), &dir.join("dead"), online).expect("processor")
}

#[test]
fn kafka_events_are_stored_once_each_and_stream_as_the_batch_computes() {
    let Some(brokers) = server("VIGIE_TEST_KAFKA_BROKERS", "kafka") else { return };
    let unique = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    let topic = format!("payments-{unique}");
    vigie_connectors::kafka::create_topic(&brokers, &topic, 2).expect("topic");
    let dir = tempfile::tempdir().expect("dir");
    let all = events(0, 400);
    let bad = all.iter().filter(|e| e["amount"].is_string()).count() as u64;

    vigie_connectors::kafka::produce(&brokers, &topic, &all[..250], Some("customer_id"))
        .expect("produce");
    let first_group = project(&brokers, &topic, &format!("g1-{unique}"));
    let store = open(dir.path(), &first_group);
    let mut first = processor(&store, dir.path());
    // Small steps, stopped midway: a full step reads the next one ahead, which is dropped
    // with the processor, unstored and uncommitted.
    let mut before = StepSummary::default();
    let started = std::time::Instant::now();
    while before.events < 120 {
        assert!(started.elapsed() < std::time::Duration::from_secs(60), "{before:?}");
        before.add(&first.step(40).expect("step"));
    }
    drop(first);

    // A new group has no committed offsets: Kafka delivers everything again, as after a
    // crash between storing and committing. The stored offsets skip what is stored, and
    // only that: what the first processor read ahead is read again.
    vigie_connectors::kafka::produce(&brokers, &topic, &all[250..], Some("customer_id"))
        .expect("produce");
    let second_group = project(&brokers, &topic, &format!("g2-{unique}"));
    let store = open(dir.path(), &second_group);
    let mut second = processor(&store, dir.path());
    let after = second.catch_up(|_| {}).expect("catch up");
    assert_eq!(after.events, 400 - before.events, "only the unstored events are read: {after:?}");
    assert_eq!(before.dead_letters + after.dead_letters, bad);
    assert_eq!(before.stored + after.stored, 400 - bad, "each event stored once");

    let state: Json = serde_json::from_slice(
        &std::fs::read(dir.path().join(".vigie/offline/sources/payments/_state.json"))
            .expect("state"),
    )
    .expect("json");
    let offsets: i64 = state["partitions"]
        .as_object()
        .expect("partitions")
        .values()
        .filter_map(Json::as_i64)
        .sum();
    assert_eq!(offsets, 400, "the stored offsets cover every message: {state}");

    let summary = store.compute_view("live").expect("batch");
    assert_eq!(summary.rows as u64 + summary.late as u64, 400 - bad);
    let rows = store.view_rows("live").expect("rows");
    let keys = rows.column_by_name("_key").expect("keys");
    let keys = keys.as_any().downcast_ref::<arrow::array::StringArray>().expect("text");
    let times = rows.column_by_name("_time").expect("times");
    let times =
        times.as_any().downcast_ref::<arrow::array::TimestampMicrosecondArray>().expect("t");
    let sums = rows.column_by_name("sum_1h").expect("sum");
    let sums = sums.as_any().downcast_ref::<arrow::array::Float64Array>().expect("f64");
    let batch: HashMap<(String, i64), f64> = (0..rows.num_rows())
        .map(|i| ((keys.value(i).to_owned(), times.value(i)), sums.value(i)))
        .collect();
    drop(second);
    let online =
        OnlineStore::open(&OnlineLocation::embedded(dir.path().join("online.db"))).expect("online");
    for customer in 0..5 {
        let key = format!("c{customer}");
        let row = online.get("live", &key).expect("read").expect("a streamed row");
        let expected = batch.get(&(key.clone(), row.time)).expect("the batch has the event");
        assert_eq!(row.values["sum_1h"].as_f64(), Some(*expected), "{key}");
    }
}
