//! `vigie stream` on a Kafka topic against a real broker (tansu, its log on
//! S3, started by the test through `scripts/services.sh`'s
//! `VIGIE_TEST_KAFKA_BROKER_CMD` so that it can kill it): the broker is
//! killed with SIGKILL mid-stream and started again, and `vigie stream`
//! itself is killed with SIGKILL and started again; every event is stored
//! exactly once, and the batch engine counts them all.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value as Json, json};

use crate::support::{Project, eventually, service};

/// A broker of the test's own, on a fixed port and S3 bucket, so that it can be killed and
/// started again with its topics where they were.
struct Broker {
    command: String,
    port: u16,
    bucket: String,
    child: Option<Child>,
}

impl Broker {
    fn start(command: &str, bucket: &str) -> Broker {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut broker =
            Broker { command: command.to_owned(), port, bucket: bucket.to_owned(), child: None };
        broker.restart();
        broker
    }

    fn restart(&mut self) {
        let child = Command::new(&self.command)
            .arg(self.port.to_string())
            .arg(&self.bucket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the broker");
        self.child = Some(child);
        let address = self.address();
        eventually("the broker listens", Duration::from_secs(30), || {
            TcpStream::connect(&address).ok()
        });
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `vigie stream` in the background.
fn stream(project: &Project) -> Child {
    Command::new(env!("CARGO_BIN_EXE_vigie"))
        .arg("--project")
        .arg(project.dir.path())
        .args(["stream", "--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start vigie stream")
}

fn stored(dir: &Path) -> u64 {
    std::fs::read(dir.join(".vigie/offline/sources/payments/_state.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Json>(&bytes).ok())
        .and_then(|state| state["next_arrival"].as_u64())
        .unwrap_or(0)
}

fn events(from: usize, to: usize) -> Vec<Json> {
    (from..to)
        .map(|i| {
            json!({
                "customer_id": format!("c{}", i % 7),
                "ts": format!("2024-03-01T{:02}:{:02}:{:02}Z", i / 3600, i / 60 % 60, i % 60),
                "amount": (i % 50) as f64,
            })
        })
        .collect()
}

#[test]
fn a_killed_broker_and_a_killed_processor_lose_and_duplicate_no_event() {
    let Some(command) = service(
        "VIGIE_TEST_KAFKA_BROKER_CMD",
        "Kafka broker launcher",
        "scripts/services.sh run kafka -- cargo test -p vigie-cli --test it kafka",
    ) else {
        return;
    };
    let unique = format!("{}", std::process::id());
    let mut broker = Broker::start(&command, &format!("vigie-kill-{unique}"));
    let brokers = broker.address();
    vigie_connectors::kafka::create_topic(&brokers, "payments", 3).expect("topic");

    let project = Project::new();
    std::fs::write(
        project.path("vigie.toml"),
        format!(
            r#"
[entities.customer]
key = "customer_id"

[sources.payments]
kind = "kafka"
brokers = "{brokers}"
topic = "payments"
group = "vigie-{unique}"
timestamp = "ts"
fields = {{ customer_id = "customer_id", ts = "ts", amount = "amount" }}

[feature_views.spend]
source = "payments"
entity = "customer"
allowed_lateness = "1d"
aggregations = [{{ name = "sum_1d", function = "sum", column = "amount", window = "1d" }}]
"#
        ),
    )
    .expect("vigie.toml");
    let key = Some("customer_id");
    let mut processor = stream(&project);
    vigie_connectors::kafka::produce(&brokers, "payments", &events(0, 400), key).expect("produce");
    eventually("the first events stored", Duration::from_secs(90), || {
        (stored(project.dir.path()) == 400).then_some(())
    });

    // The broker dies under the running processor, which keeps retrying; it comes back with
    // its log, and more events arrive.
    broker.kill();
    broker.restart();
    vigie_connectors::kafka::produce(&brokers, "payments", &events(400, 700), key)
        .expect("produce");
    eventually("the events after the broker's restart stored", Duration::from_secs(90), || {
        (stored(project.dir.path()) >= 500).then_some(())
    });

    // The processor dies mid-stream (before it commits what it stored, perhaps), and starts
    // again: what it stored is not read twice.
    let _ = processor.kill();
    let _ = processor.wait();
    vigie_connectors::kafka::produce(&brokers, "payments", &events(700, 1000), key)
        .expect("produce");
    let processor = stream(&project);
    eventually("every event stored", Duration::from_secs(90), || {
        (stored(project.dir.path()) >= 1000).then_some(())
    });

    // Stopped by SIGTERM, it exits 0 with its summary.
    let pid = processor.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
    assert!(killed.success());
    let output = processor.wait_with_output().expect("vigie stream ends");
    assert!(output.status.success(), "{:?}", output.status);
    let summary: Json = serde_json::from_slice(&output.stdout).expect("a JSON summary");
    assert_eq!(summary["dead_letters"], 0, "{summary}");

    assert_eq!(stored(project.dir.path()), 1000, "each event stored once");
    let materialized = project.json(&["materialize", "spend", "--format", "json"]);
    let rows = materialized.as_array().and_then(|a| a.first()).cloned().unwrap_or(materialized);
    assert_eq!(
        rows["rows"].as_u64().unwrap_or(0) + rows["late"].as_u64().unwrap_or(0),
        1000,
        "{rows}"
    );
    // Customer c0 has events 0, 7, 14, ... 994: their amounts in the last day.
    let expected: f64 = (0..1000).filter(|i| i % 7 == 0).map(|i| (i % 50) as f64).sum();
    let got =
        project.json(&["features", "get", "spend", "--key", "customer_id=c0", "--format", "json"]);
    assert_eq!(got["features"]["sum_1d"].as_f64(), Some(expected), "{got}");
}
