use std::io::Write;

use serde_json::json;
use vigie_core::Config;

use super::*;

const PROJECT: &str = r#"
[entities.customer]
key = "customer_id"

[sources.clicks]
kind = "http"
timestamp = "ts"
fields = { customer_id = "customer_id", ts = "ts", amount = "payment.amount" }

[feature_views.live]
source = "clicks"
entity = "customer"
aggregations = [{ name = "n", function = "count", window = "1h" }]
"#;

fn log(dir: &Path) -> EventLog {
    let config = Config::parse(PROJECT, "vigie.toml").expect("config");
    EventLog::open(dir, &config).expect("log")
}

fn event(customer: u64, minute: u64) -> Json {
    json!({"customer_id": customer, "ts": format!("2024-03-01T00:{minute:02}:00Z"), "payment": {"amount": 1.5}})
}

fn refusal(log: &EventLog, event: Json) -> String {
    match log.append("clicks", &[event]) {
        Err(error) => error.to_string(),
        Ok(appended) => panic!("accepted as {appended:?}"),
    }
}

#[test]
fn events_are_refused_naming_the_field() {
    let dir = tempfile::tempdir().expect("dir");
    let log = log(dir.path());
    assert_eq!(refusal(&log, json!([1, 2])), "events[0]: an event is a JSON object");
    let unknown = refusal(&log, json!({"customer_id": 1, "ts": "2024-03-01T00:00:00Z", "x": 1}));
    assert!(unknown.starts_with("events[0].x: unknown field \"x\""), "{unknown}");
    let time = refusal(&log, json!({"customer_id": 1, "ts": "yesterday"}));
    assert!(time.starts_with("events[0].ts: \"yesterday\" is not a time"), "{time}");
    let missing = refusal(&log, json!({"customer_id": 1}));
    assert_eq!(missing, "events[0].ts: the event time is missing");
    let key = refusal(&log, json!({"ts": "2024-03-01T00:00:00Z"}));
    assert_eq!(key, "events[0].customer_id: the entity key \"customer_id\" is missing");
    let nested = refusal(&log, json!({"customer_id": {"id": 1}, "ts": "2024-03-01T00:00:00Z"}));
    assert!(nested.contains("must be text or a number"), "{nested}");
    match log.append("nope", &[event(1, 0)]) {
        Err(AppendError::UnknownSource(message)) => {
            assert!(message.contains("HTTP sources are: clicks"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_request_with_one_bad_event_stores_none_of_its_events() {
    let dir = tempfile::tempdir().expect("dir");
    let log = log(dir.path());
    let bad = json!({"customer_id": 1});
    let error = log.append("clicks", &[event(1, 0), event(2, 1), bad]).expect_err("refused");
    assert!(error.to_string().starts_with("events[2].ts"), "{error}");
    assert_eq!(LogCursor::new(dir.path(), "clicks", 0).read(100).expect("read"), []);
    let appended = log.append("clicks", &[event(1, 0)]).expect("append");
    assert_eq!(appended, Appended { first: 0, count: 1 });
}

#[test]
fn the_log_rolls_segments_cuts_a_torn_tail_and_is_read_in_order() {
    let dir = tempfile::tempdir().expect("dir");
    let log = log(dir.path());
    for minute in 0..10 {
        let appended = log.append("clicks", &[event(minute, minute)]).expect("append");
        assert_eq!(appended.first, minute);
    }
    let segment_count = segments(&dir.path().join("clicks")).expect("segments").len();
    assert!(segment_count > 2, "200-byte segments in tests: {segment_count}");
    // A crash mid-write leaves half a line at the end of the last segment.
    let (_, last) = segments(&dir.path().join("clicks")).expect("segments").pop().expect("one");
    OpenOptions::new()
        .append(true)
        .open(&last)
        .and_then(|mut f| f.write_all(b"{\"customer_id\": 3, \"ts\""))
        .expect("torn");
    let mut cursor = LogCursor::new(dir.path(), "clicks", 0);
    let read = cursor.read(4).expect("read");
    let read_more = cursor.read(100).expect("read");
    let sequences: Vec<u64> = read.iter().chain(&read_more).map(|i| i.sequence).collect();
    assert_eq!(sequences, (0..10).collect::<Vec<_>>(), "the torn line is not an event");
    assert_eq!(read_more.last().and_then(|i| i.event.as_ref().ok()), Some(&event(9, 9)));

    // One writer at a time: a second one (another `vigie serve`) is refused while the first
    // is open, and opens once it is gone.
    let config = Config::parse(PROJECT, "vigie.toml").expect("config");
    let error = super::EventLog::open(dir.path(), &config).err().expect("refused");
    assert!(matches!(error, FeatureError::LogBusy(_)), "{error}");
    assert!(error.to_string().contains("another `vigie serve` appends"), "{error}");
    drop(log);
    let reopened =
        super::EventLog::open(dir.path(), &Config::parse(PROJECT, "vigie.toml").expect("config"))
            .expect("log");
    assert_eq!(reopened.append("clicks", &[event(10, 10)]).expect("append").first, 10);
    assert_eq!(
        cursor.read(100).expect("read").iter().map(|i| i.sequence).collect::<Vec<_>>(),
        [10]
    );
    // A cursor opened in the middle skips to its position.
    let middle: Vec<u64> = LogCursor::new(dir.path(), "clicks", 7)
        .read(100)
        .expect("read")
        .iter()
        .map(|i| i.sequence)
        .collect();
    assert_eq!(middle, [7, 8, 9, 10]);

    cursor.prune(8).expect("prune");
    let left = segments(&dir.path().join("clicks")).expect("segments");
    assert!(left.len() < segment_count + 1, "stored segments are deleted");
    assert!(left[0].0 <= 8, "the segment holding event 8 stays: {left:?}");
    let rest: Vec<u64> = LogCursor::new(dir.path(), "clicks", 8)
        .read(100)
        .expect("read")
        .iter()
        .map(|i| i.sequence)
        .collect();
    assert_eq!(rest, [8, 9, 10]);
}

#[test]
fn a_streaming_source_must_declare_its_columns() {
    let bare = PROJECT.replace(
        "fields = { customer_id = \"customer_id\", ts = \"ts\", amount = \"payment.amount\" }",
        "",
    );
    let config = Config::parse(&bare, "vigie.toml").expect("config");
    let error = EventLog::open(Path::new("."), &config).err().expect("refused").to_string();
    assert!(error.contains("declares its columns in `fields`"), "{error}");
    let keyless = PROJECT.replace("customer_id = \"customer_id\", ", "");
    let config = Config::parse(&keyless, "vigie.toml").expect("config");
    let error = EventLog::open(Path::new("."), &config).err().expect("refused").to_string();
    assert!(error.contains("no column \"customer_id\""), "{error}");
}

#[test]
fn concurrent_requests_under_group_commit_each_get_their_events_in_the_log_once() {
    // 8 clients each post 40 requests of 3 events; with 200-byte segments in tests the
    // log rolls about every two requests, also while a sync is in flight.
    let dir = tempfile::tempdir().expect("dir");
    let log = log(dir.path());
    let (clients, requests, per_request) = (8u64, 40u64, 3u64);
    let mut acknowledged: Vec<(u64, u64, u64)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|client| {
                let log = &log;
                scope.spawn(move || {
                    (0..requests)
                        .map(|request| {
                            let events: Vec<Json> = (0..per_request)
                                .map(|i| event(client * 1000 + request * 10 + i, i))
                                .collect();
                            let appended = log.append("clicks", &events).expect("append");
                            assert_eq!(appended.count, per_request);
                            (appended.first, client, request)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("client")).collect()
    });
    acknowledged.sort();
    let total = clients * requests * per_request;
    // Ranges are disjoint and cover 0..total: each request got its own sequence numbers.
    for (i, (first, _, _)) in acknowledged.iter().enumerate() {
        assert_eq!(*first, i as u64 * per_request);
    }
    let read = LogCursor::new(dir.path(), "clicks", 0).read(10_000).expect("read");
    assert_eq!(read.len() as u64, total);
    for (first, client, request) in acknowledged {
        for i in 0..per_request {
            let incoming = &read[(first + i) as usize];
            assert_eq!(incoming.sequence, first + i);
            let expected = event(client * 1000 + request * 10 + i, i);
            assert_eq!(incoming.event.as_ref().ok(), Some(&expected), "sequence {}", first + i);
        }
    }
    // A new writer continues after the last acknowledged event.
    drop(log);
    let reopened =
        super::EventLog::open(dir.path(), &Config::parse(PROJECT, "vigie.toml").expect("config"))
            .expect("log");
    assert_eq!(reopened.append("clicks", &[event(1, 1)]).expect("append").first, total);
}
