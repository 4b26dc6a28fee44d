//! The stream processor against the batch engine: the same events posted to
//! an HTTP source's log, processed in micro-batches (out of order, late and
//! malformed events included, the processor restarted midway), give after
//! every step online rows equal to the batch view's rows for the same events
//! over the events stored so far, and the same events are refused by both (the view
//! cleans two features, with statistics learned once); with the embedded online store, and with a
//! MongoDB one (`VIGIE_TEST_MONGODB_URL`, from `scripts/services.sh`), also
//! when that MongoDB stops mid-stream and comes back
//! (`VIGIE_TEST_MONGODB_BIN`, a server of the test's own).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use arrow::array::{Array, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use serde_json::{Value as Json, json};
use vigie_core::{Config, ErrorCode};
use vigie_features::{
    EventLog, FeatureStore, OnlineLocation, OnlineStore, StepSummary, StreamProcessor,
};

use crate::sources::{server, unique};

const PROJECT: &str = r#"
[entities.customer]
key = "customer_id"

[sources.payments]
kind = "http"
timestamp = "ts"
fields = { customer_id = "customer_id", ts = "ts", amount = "payment.amount", merchant = "merchant" }

[feature_views.live]
source = "payments"
entity = "customer"
allowed_lateness = "10m"
columns = { big = "CASE WHEN amount > 50 THEN 1 ELSE 0 END", shop = "upper(merchant)", amount_clean = "amount" }
aggregations = [
  { name = "count_1h", function = "count", window = "1h" },
  { name = "sum_1h", function = "sum", column = "amount", window = "1h" },
  { name = "max_1d", function = "max", column = "amount", window = "1d" },
  { name = "merchants_1d", function = "distinct_count", column = "merchant", window = "1d" },
  { name = "big_1h", function = "sum", column = "big", window = "1h" },
  { name = "clean_sum_1h", function = "sum", column = "amount_clean", window = "1h" },
  { name = "shops_1d", function = "distinct_count", column = "shop", window = "1d" },
]
# Learned from the first micro-batch the processor computes, then used by both executions.
clean.amount_clean = { impute = "median", scale = "robust" }
clean.shop = { min_frequency = 3, impute = "most-frequent" }
"#;

/// A seeded stream: 6 customers, a minute apart on average, out of order by
/// up to 15 minutes (so some events are later than the 10 allowed), amounts
/// sometimes missing; times are distinct per customer (a microsecond each).
fn events(count: u64) -> Vec<Json> {
    let mut seed = 0x5eed_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    (0..count)
        .map(|i| {
            let jitter = (next() % 20) as i64 - 15;
            let seconds = 1_709_251_200 + i as i64 * 60 + jitter * 60;
            let time = humantime::format_rfc3339_micros(
                std::time::UNIX_EPOCH
                    + std::time::Duration::from_secs(seconds as u64)
                    + std::time::Duration::from_micros(i),
            );
            let customer = next() % 6;
            let merchant = ["shop", "cafe", "fuel", "book"][(next() % 4) as usize];
            let payment = if next() % 7 == 0 {
                json!({})
            } else {
                json!({"amount": (next() % 12_000) as f64 / 100.0})
            };
            json!({"customer_id": customer, "ts": time.to_string(), "payment": payment, "merchant": merchant})
        })
        .collect()
}

fn open(dir: &Path) -> (FeatureStore, EventLog) {
    let config = Config::parse(PROJECT, "vigie.toml").expect("config");
    let log = EventLog::open(&dir.join(".vigie/events"), &config).expect("log");
    (FeatureStore::open(dir, config).expect("store"), log)
}

fn processor<'s>(
    store: &'s FeatureStore,
    dir: &Path,
    online: &OnlineLocation,
) -> StreamProcessor<'s> {
    let online = OnlineStore::open(online).expect("online");
    StreamProcessor::open(store, &dir.join(".vigie/events"), &dir.join(".vigie/dead"), online)
        .expect("processor")
}

/// The project's embedded online store.
fn embedded(dir: &Path) -> OnlineLocation {
    OnlineLocation::embedded(dir.join(".vigie/online.db"))
}

/// The batch view's rows by (key, time): feature → value.
fn batch_rows(rows: &RecordBatch) -> HashMap<(String, i64), HashMap<String, Json>> {
    let keys = rows.column_by_name("_key").expect("keys");
    let keys = keys.as_any().downcast_ref::<StringArray>().expect("text");
    let times = rows.column_by_name("_time").expect("times");
    let times = times.as_any().downcast_ref::<TimestampMicrosecondArray>().expect("times");
    let mut out = HashMap::new();
    for row in 0..rows.num_rows() {
        let mut values = HashMap::new();
        for field in rows.schema().fields() {
            let name = field.name();
            if name.starts_with('_') {
                continue;
            }
            let column = rows.column_by_name(name).expect("column");
            let value = if column.is_null(row) {
                Json::Null
            } else if let Some(numbers) = column.as_any().downcast_ref::<Float64Array>() {
                serde_json::Number::from_f64(numbers.value(row)).map_or(Json::Null, Json::Number)
            } else {
                let text = column.as_any().downcast_ref::<StringArray>().expect("text");
                Json::String(text.value(row).to_owned())
            };
            values.insert(name.clone(), value);
        }
        out.insert((keys.value(row).to_owned(), times.value(row)), values);
    }
    out
}

#[test]
fn the_stream_equals_the_batch_row_for_row_across_restarts() {
    let dir = tempfile::tempdir().expect("dir");
    check_stream_equals_batch(dir.path(), &embedded(dir.path()));
}

#[test]
fn the_stream_equals_the_batch_row_for_row_with_a_mongodb_online_store() {
    let Some(url) = server("VIGIE_TEST_MONGODB_URL", "mongodb") else { return };
    let dir = tempfile::tempdir().expect("dir");
    let online = OnlineLocation::mongodb(&url, &unique("stream"), "online").expect("location");
    check_stream_equals_batch(dir.path(), &online);
}

/// Streams the events through processors writing to `online`, in a project in `dir`, and
/// checks every online row seen against the batch view.
fn check_stream_equals_batch(dir: &Path, online: &OnlineLocation) {
    let (store, log) = open(dir);
    let all = events(400);
    let mut total = StepSummary::default();
    let mut sent = 0;
    let mut posted = 0;
    // After each step, every customer's online row equals the batch engine's row for the
    // same event computed over the events stored so far: final rows, and the provisional
    // rows of events still waiting for their customer's watermark alike.
    let mut checked = 0;
    let mut check = |store: &FeatureStore| {
        store.compute_view("live").expect("batch so far");
        let batch = batch_rows(&store.view_rows("live").expect("rows"));
        let reader = OnlineStore::open_read_only(online).expect("online");
        for customer in 0..6 {
            let key = customer.to_string();
            let Some(row) = reader.get("live", &key).expect("read") else { continue };
            let latest = batch
                .keys()
                .filter(|(k, _)| *k == key)
                .map(|(_, time)| *time)
                .max()
                .expect("the batch has the customer");
            assert_eq!(row.time, latest, "customer {key}: the latest event so far");
            let values: HashMap<String, Json> = row.values.into_iter().collect();
            assert_eq!(&values, &batch[&(key.clone(), row.time)], "customer {key}");
            checked += 1;
        }
    };
    for round in 0..2 {
        // A new processor each round: the second one rebuilds its windows from history.
        let mut processor = processor(&store, dir, online);
        while sent < all.len() * (round + 1) / 2 {
            let end = (sent + 37).min(all.len());
            let mut request = all[sent..end].to_vec();
            if sent % 3 == 0 {
                // A value of the wrong type: a dead letter, the rest of the request is stored.
                request.push(json!({"customer_id": 1, "ts": "2024-03-01T03:00:00Z", "payment": {"amount": "a lot"}}));
            }
            posted += request.len();
            log.append("payments", &request).expect("append");
            sent = end;
            let step = processor.step(13).expect("step");
            total.events += step.events;
            total.stored += step.stored;
            total.dead_letters += step.dead_letters;
            total.late += step.late;
            check(&store);
        }
        loop {
            let step = processor.step(13).expect("step");
            if step.events == 0 {
                break;
            }
            total.events += step.events;
            total.stored += step.stored;
            total.dead_letters += step.dead_letters;
            total.late += step.late;
            check(&store);
        }
    }
    assert_eq!(total.events as usize, posted, "every posted event is read once");
    assert_eq!(total.stored as usize, all.len(), "every well-typed event is stored");
    assert_eq!(total.dead_letters as usize, posted - all.len());

    let summary = store.compute_view("live").expect("batch");
    assert_eq!(summary.late as u64, total.late, "the same events are late in both executions");
    assert!(summary.late > 5, "the stream has late events: {}", summary.late);
    assert!(checked > 100, "{checked} online rows checked");

    let dead = std::fs::read_to_string(dir.join(".vigie/dead/payments.jsonl")).expect("dead");
    let reasons: Vec<Json> = dead.lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    assert_eq!(reasons.len() as u64, total.dead_letters + total.late);
    assert!(reasons.iter().any(|r| {
        r["reason"].as_str().is_some_and(|t| t.starts_with("amount: \"a lot\" is not a number"))
    }));
    assert!(reasons.iter().any(|r| r["view"] == "live"
        && r["reason"].as_str().is_some_and(|t| t.starts_with("late: event time"))));
}

/// A MongoDB server on disk, on a port of its own, that a test stops and restarts.
struct Mongo {
    bin: String,
    port: u16,
    data: PathBuf,
    child: Option<Child>,
}

impl Mongo {
    fn start(bin: &str, data: PathBuf) -> Mongo {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut mongo = Mongo { bin: bin.to_owned(), port, data, child: None };
        mongo.restart();
        mongo
    }

    fn restart(&mut self) {
        let child = Command::new(&self.bin)
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string(), "--storage-path"])
            .arg(&self.data)
            .args(["--log-level", "WARNING"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the MongoDB server");
        self.child = Some(child);
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(60), "MongoDB did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn url(&self) -> String {
        format!("mongodb://127.0.0.1:{}/?directConnection=true", self.port)
    }
}

impl Drop for Mongo {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Steps until the logs hold nothing new; a step that finds the online store unavailable is
/// tried again (the processor's own loop does the same), for at most a minute.
fn drain(processor: &mut StreamProcessor<'_>) {
    let started = Instant::now();
    loop {
        match processor.step(50) {
            Ok(step) if step.events == 0 => return,
            Ok(_) => {}
            Err(error) if error.code() == ErrorCode::Unavailable => {
                assert!(started.elapsed() < Duration::from_secs(60), "still failing: {error}");
            }
            Err(error) => panic!("{error}"),
        }
    }
}

#[test]
fn a_mongodb_online_store_that_goes_away_mid_stream_loses_and_repeats_nothing() {
    let Some(bin) = server("VIGIE_TEST_MONGODB_BIN", "mongodb") else { return };
    let dir = tempfile::tempdir().expect("dir");
    let mut mongo = Mongo::start(&bin, dir.path().join("mongo"));
    let online = OnlineLocation::mongodb(&mongo.url(), "stream", "online").expect("location");
    let (store, log) = open(dir.path());
    let all = events(300);
    let mut processor = processor(&store, dir.path(), &online);
    log.append("payments", &all[..100]).expect("append");
    drain(&mut processor);

    mongo.stop();
    log.append("payments", &all[100..200]).expect("append");
    for _ in 0..2 {
        let error = processor.step(50).expect_err("MongoDB is down");
        assert_eq!(error.code(), ErrorCode::Unavailable, "{error}");
        let address = format!("mongodb://127.0.0.1:{}/", mongo.port);
        assert!(error.to_string().contains(&address), "{error}");
    }
    mongo.restart();
    log.append("payments", &all[200..]).expect("append");
    drain(&mut processor);

    let parts = store.offline().read_source("payments").expect("read");
    let rows: usize = parts.iter().map(|part| part.num_rows()).sum();
    assert_eq!(rows, 300, "every event stored once");
    store.compute_view("live").expect("batch");
    let batch = batch_rows(&store.view_rows("live").expect("rows"));
    let reader = OnlineStore::open_read_only(&online).expect("online");
    for customer in 0..6 {
        let key = customer.to_string();
        let row = reader.get("live", &key).expect("read").expect("a row per customer");
        let expected = batch.get(&(key.clone(), row.time)).expect("the batch has the event");
        assert_eq!(&row.values.into_iter().collect::<HashMap<_, _>>(), expected, "customer {key}");
    }
}

#[test]
fn only_one_processor_runs_per_project() {
    let dir = tempfile::tempdir().expect("dir");
    let (store, _log) = open(dir.path());
    let _first = processor(&store, dir.path(), &embedded(dir.path()));
    let online = OnlineStore::open(&embedded(dir.path())).expect("online");
    let second = StreamProcessor::open(
        &store,
        &dir.path().join(".vigie/events"),
        &dir.path().join(".vigie/dead"),
        online,
    );
    let error = second.err().expect("refused").to_string();
    assert!(error.contains("another stream processor"), "{error}");
}

/// The dead-letter file's records.
fn letters(dir: &Path) -> Vec<Json> {
    std::fs::read_to_string(dir.join(".vigie/dead/payments.jsonl"))
        .expect("dead letters")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect()
}

#[test]
fn late_letters_a_crash_left_unwritten_are_written_on_opening_once() {
    let dir = tempfile::tempdir().expect("dir");
    let (store, log) = open(dir.path());
    let all = events(400);
    log.append("payments", &all).expect("append");
    let mut total = StepSummary::default();
    let mut first = processor(&store, dir.path(), &embedded(dir.path()));
    // Step until a step stores late events, then "crash" after it stored them: its late
    // letters, the last lines of the file, are cut as if never written.
    let late = loop {
        let step = first.step(13).expect("step");
        assert!(step.events > 0, "the stream has late events");
        total.late += step.late;
        if step.late > 0 {
            break step.late as usize;
        }
    };
    drop(first);
    let written = letters(dir.path());
    let (kept, lost) = written.split_at(written.len() - late);
    assert!(lost.iter().all(|l| l["view"] == "live" && l["arrival"].is_u64()), "{lost:?}");
    let kept: String = kept.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(dir.path().join(".vigie/dead/payments.jsonl"), kept).expect("cut");

    // Opening replays the stored events and writes the missing letters, from the stored rows.
    drop(processor(&store, dir.path(), &embedded(dir.path())));
    let again = letters(dir.path());
    assert_eq!(again.len(), written.len(), "each lost letter is written once");
    for (recovered, lost) in again[written.len() - late..].iter().zip(lost) {
        assert_eq!(recovered["recovered"], true);
        assert_eq!(recovered["arrival"], lost["arrival"]);
        assert_eq!(recovered["reason"], lost["reason"]);
        assert_eq!(recovered["event"]["customer_id"], lost["event"]["customer_id"]);
        assert_eq!(recovered["event"]["merchant"], lost["event"]["merchant"]);
        assert_eq!(recovered["event"]["amount"], lost["event"]["payment"]["amount"]);
    }

    // Opening again writes nothing, and the rest of the stream's letters follow, once each.
    let mut last = processor(&store, dir.path(), &embedded(dir.path()));
    assert_eq!(letters(dir.path()).len(), written.len());
    loop {
        let step = last.step(50).expect("step");
        if step.events == 0 {
            break;
        }
        total.late += step.late;
    }
    let summary = store.compute_view("live").expect("batch");
    assert_eq!(summary.late as u64, total.late, "the same events are late in both executions");
    let late_letters = letters(dir.path()).iter().filter(|l| l["view"] == "live").count();
    assert_eq!(late_letters as u64, total.late, "one letter per late event");
}
