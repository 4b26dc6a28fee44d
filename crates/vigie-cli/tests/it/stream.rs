//! Events posted to `vigie serve` (`POST /v1/events/{source}`) flow through
//! the stream processor it runs into the online store: the features the
//! server then returns equal what the batch engine (`vigie materialize`)
//! computes from the same events. Bad requests are 4xx naming the event and
//! field; a second processor is refused; `vigie stream --once` finishes what
//! the server's processor left.

use serde_json::{Value as Json, json};

use crate::metrics::sample;
use crate::support::{Project, Server, eventually};

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
columns = { big = "CASE WHEN amount > 50 THEN 1 ELSE 0 END" }
aggregations = [
  { name = "count_1h", function = "count", window = "1h" },
  { name = "sum_1h", function = "sum", column = "amount", window = "1h" },
  { name = "merchants_1d", function = "distinct_count", column = "merchant", window = "1d" },
]
"#;

fn event(customer: &str, minute: i64, amount: f64, merchant: &str) -> Json {
    let (day, hour, minute) = (1 + minute / 1440, minute % 1440 / 60, minute % 60);
    json!({
        "customer_id": customer,
        "ts": format!("2024-03-{day:02}T{hour:02}:{minute:02}:00Z"),
        "payment": {"amount": amount},
        "merchant": merchant,
    })
}

/// The online features of `customer` once its latest row is that of the event at `time`.
fn features_at(server: &Server, customer: &str, time: &str) -> Option<Json> {
    let (status, body) = server.get(&format!("/v1/features/live/{customer}"));
    (status == 200 && body["time"] == time).then(|| body["features"].clone())
}

#[test]
fn posted_events_reach_the_online_store_as_the_batch_engine_computes_them() {
    let project = Project::new();
    std::fs::write(project.path("vigie.toml"), PROJECT).expect("vigie.toml");
    let server = Server::start(&project, &[]);

    // Out of order within the allowed 10 minutes, one event 30 minutes late.
    let first = [
        event("alice", 0, 20.0, "shop"),
        event("bob", 2, 80.0, "cafe"),
        event("alice", 5, 70.0, "fuel"),
        event("alice", 1, 5.0, "shop"),
        event("bob", 20, 10.0, "shop"),
        event("alice", 40, 15.0, "book"),
        event("bob", 8, 1.0, "cafe"),
    ];
    let (status, reply) = server.post("/v1/events/payments", &json!({"events": first}).to_string());
    assert_eq!(status, 202, "{reply}");
    assert_eq!(reply["accepted"], 7, "{reply}");
    assert_eq!(reply["first_sequence"], 0, "{reply}");
    // A third customer's event: watermarks are per customer, so it holds nothing back.
    let tick = [event("carol", 24 * 60, 1.0, "shop")];
    let (status, reply) = server.post("/v1/events/payments", &json!({"events": tick}).to_string());
    assert_eq!((status, &reply["first_sequence"]), (202, &json!(7)), "{reply}");

    let latest = [("alice", "2024-03-01T00:40:00.000000Z"), ("bob", "2024-03-01T00:20:00.000000Z")];
    let streamed: Vec<Json> = latest
        .iter()
        .map(|(customer, time)| {
            eventually("the streamed features", std::time::Duration::from_secs(60), || {
                features_at(&server, customer, time)
            })
        })
        .collect();
    assert_eq!(
        streamed[0]["count_1h"], 4.0,
        "alice: 00:00, 00:05, 00:01 (late, but by less than 10 min) and 00:40"
    );
    assert_eq!(streamed[0]["merchants_1d"], 3.0, "shop, fuel, book");
    assert_eq!(streamed[1]["sum_1h"], 90.0, "bob: 80 + 10; 00:08 came after 00:40, 32 min late");

    // Refused requests: 4xx naming the event and field; nothing of them is stored.
    let cases = [
        ("{\"events\": [", 400, "malformed JSON"),
        ("{}", 400, "missing field \"events\""),
        ("{\"events\": 3}", 400, "events: expected a list"),
        ("{\"events\": [], \"more\": 1}", 400, "unknown field \"more\""),
        (
            r#"{"events": [{"customer_id": "dan", "ts": "2024-03-02T00:00:00Z"}, {"customer_id": "dan", "ts": "noon"}]}"#,
            400,
            "events[1].ts: \"noon\" is not a time",
        ),
        (r#"{"events": [{"ts": "2024-03-02T00:00:00Z"}]}"#, 400, "events[0].customer_id"),
        (
            r#"{"events": [{"customer_id": "dan", "ts": "2024-03-02T00:00:00Z", "tip": 1}]}"#,
            400,
            "events[0].tip: unknown field",
        ),
    ];
    for (body, code, message) in cases {
        let (status, reply) = server.post("/v1/events/payments", body);
        assert_eq!(status, code, "{body}: {reply}");
        let text = reply["error"]["message"].as_str().unwrap_or_default();
        assert!(text.contains(message), "{body}: {text}");
    }
    let (status, reply) = server.post("/v1/events/nope", &json!({"events": tick}).to_string());
    assert_eq!(status, 404, "{reply}");
    assert!(reply["error"]["message"].as_str().unwrap_or_default().contains("payments"), "{reply}");

    let (_, metrics) = server.get("/metrics");
    let text = metrics.as_str().expect("text");
    let accepted = sample(
        text,
        "vigie_events_received_total",
        &[("source", "payments"), ("outcome", "accepted")],
    );
    assert_eq!(accepted, Some(8.0), "{text}");

    // One processor per project: the server's holds the lock.
    let busy = project.fails(&["stream", "--once"], 2);
    assert!(busy.contains("another stream processor"), "{busy}");
    drop(server);

    // The processor of `vigie stream` takes over: nothing is left to read; each customer's
    // newest event waits for its watermark (its values online are provisional until then).
    let once = project.json(&["stream", "--once", "--format", "json"]);
    assert_eq!(once["events"], 0, "{once}");
    assert_eq!(once["waiting_for_watermark"], 3, "{once}");

    let dead = std::fs::read_to_string(project.path(".vigie/dead-letters/payments.jsonl"))
        .expect("dead letters");
    let dead: Vec<Json> = dead.lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["event"], first[6], "{dead:?}");
    assert!(
        dead[0]["reason"].as_str().unwrap_or_default().starts_with("late: event time"),
        "{dead:?}"
    );

    // The batch engine over the same stored events gives the same latest rows.
    project.ok(&["materialize", "live"]);
    for ((customer, _), streamed) in latest.iter().zip(&streamed) {
        let key = format!("customer_id={customer}");
        let batch = project.json(&["features", "get", "live", "--key", &key, "--format", "json"]);
        assert_eq!(&batch["features"], streamed, "{customer}");
    }
}
