//! The prediction store: with `[predictions]` in `vigie.toml`, every
//! prediction row reaches a real MongoDB server (SecantusDB, which speaks
//! its wire protocol) exactly once, also when the server stops under load
//! and comes back: predictions go on being served meanwhile. The test runs
//! a server of its own, on disk, so that it can stop and restart it; the
//! binary comes from `scripts/services.sh` (`VIGIE_TEST_MONGODB_BIN`).

use std::collections::BTreeSet;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mongodb::bson::{Document, doc};
use serde_json::json;

use crate::serve::train;
use crate::support::{Project, Server, eventually, service};

/// A MongoDB server on disk, on a fixed port, that the test can stop and restart.
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
        eventually("the MongoDB server to accept connections", Duration::from_secs(60), || {
            TcpStream::connect(("127.0.0.1", self.port)).ok()
        });
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

#[test]
fn every_prediction_reaches_mongodb_once_across_a_server_outage() {
    let Some(bin) = service(
        "VIGIE_TEST_MONGODB_BIN",
        "MongoDB server binary",
        "scripts/services.sh run mongodb -- cargo test -p vigie-cli --test it predictions",
    ) else {
        return;
    };
    let project = Project::new();
    let mut mongo = Mongo::start(&bin, project.path("mongo-data"));
    std::fs::write(
        project.path("vigie.toml"),
        format!(
            "[predictions]\nurl = \"{}\"\ndatabase = \"audit\"\ncollection = \"scored\"\n",
            mongo.url()
        ),
    )
    .expect("write vigie.toml");
    train(&project, "logistic");
    let server = Arc::new(Server::start(&project, &[]));

    // Three clients send two-row predictions until told to stop; every
    // acknowledged request id is kept, and every request must succeed.
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..3)
        .map(|client| {
            let (server, acked, stop) = (server.clone(), acked.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut sent = 0;
                while !stop.load(Ordering::Relaxed) {
                    let body = json!({"records": [
                        {"student": "No", "balance": 100.0 * f64::from(client) + f64::from(sent), "income": 30000},
                        {"student": "Yes", "balance": 1500.5, "income": 12000.0},
                    ]});
                    let (status, reply) = server.post("/v1/models/credit/predict", &body.to_string());
                    assert_eq!(status, 200, "{reply}");
                    let id = reply["request_id"].as_str().expect("request id").to_owned();
                    acked.lock().expect("lock").push(id);
                    sent += 1;
                }
            })
        })
        .collect();
    let acknowledged = |n: usize| {
        let acked = acked.clone();
        move || (acked.lock().expect("lock").len() >= n).then_some(())
    };
    eventually("60 predictions", Duration::from_secs(60), acknowledged(60));
    mongo.stop();
    let during_outage = acked.lock().expect("lock").len();
    eventually(
        "60 more predictions with MongoDB down",
        Duration::from_secs(60),
        acknowledged(during_outage + 60),
    );
    // The prediction store saw the outage (and spooled) before the server returns.
    eventually("a failed write to the stopped MongoDB", Duration::from_secs(60), || {
        let (_, metrics) = server.get("/metrics");
        let failed = metrics.as_str().is_some_and(|text| {
            text.lines().any(|line| {
                line.strip_prefix("vigie_prediction_store_failures_total ")
                    .is_some_and(|n| n.trim() != "0")
            })
        });
        failed.then_some(())
    });
    mongo.restart();
    let restarted = acked.lock().expect("lock").len();
    eventually(
        "60 more predictions after the restart",
        Duration::from_secs(60),
        acknowledged(restarted + 60),
    );
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().expect("a client failed");
    }
    let acked: BTreeSet<String> = acked.lock().expect("lock").iter().cloned().collect();

    let client = mongodb::sync::Client::with_uri_str(mongo.url()).expect("client");
    let collection = client.database("audit").collection::<Document>("scored");
    let rows = 2 * acked.len() as u64;
    eventually("every row in MongoDB", Duration::from_secs(90), || {
        collection.count_documents(doc! {}).run().is_ok_and(|n| n >= rows).then_some(())
    });
    // Exactly once: as many documents as rows answered, each acknowledged
    // request with both of its rows.
    assert_eq!(collection.count_documents(doc! {}).run().expect("count"), rows);
    let mut seen = BTreeSet::new();
    for document in collection.find(doc! {}).run().expect("find") {
        let document = document.expect("document");
        let id = document.get_str("request_id").expect("request_id").to_owned();
        let row = document.get_i64("row").or_else(|_| document.get_i32("row").map(i64::from));
        assert!(seen.insert((id, row.expect("row"))), "a row stored twice: {document}");
        assert!(document.get_datetime("time").is_ok(), "time is a date: {document}");
        assert!(document.get_document("outputs").is_ok_and(|o| o.contains_key("score")));
    }
    let stored: BTreeSet<String> = seen.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(stored, acked, "every acknowledged prediction, and nothing else");
    let indexes = collection.list_index_names().run().expect("indexes");
    for field in ["entity", "time", "model", "version"] {
        assert!(indexes.iter().any(|name| name.starts_with(field)), "{field} in {indexes:?}");
    }
}
