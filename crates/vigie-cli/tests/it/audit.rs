//! The prediction audit log of `vigie serve`, through the real binary: a
//! `kill -9` under load loses no acknowledged prediction (counted, id by
//! id), a torn last record is cut on restart and the chain goes on, a
//! changed or removed record makes `vigie audit verify` fail naming its
//! line, and `vigie audit list` finds records by model and request id.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

use crate::support::{Project, Server, agent};

/// Trains the model `credit` (logistic, fast) on Default.csv.
pub fn train(project: &Project) {
    crate::serve::train(project, "logistic");
}

/// `n` records of the model's inputs, different per `seed`.
pub fn records(seed: usize, n: usize) -> Vec<Json> {
    (0..n)
        .map(|i| {
            let k = (seed * 7 + i * 13) % 1000;
            json!({"student": if k.is_multiple_of(3) { "Yes" } else { "No" },
                   "balance": 300.0 + 2.0 * k as f64, "income": 20_000.0 + 37.0 * k as f64})
        })
        .collect()
}

/// POSTs JSON; the status and the parsed body, or the transport error.
pub fn post(agent: &ureq::Agent, url: &str, body: &Json) -> Result<(u16, Json), ureq::Error> {
    let mut response =
        agent.post(url).header("content-type", "application/json").send(body.to_string())?;
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string()?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Json::String(text))))
}

/// Every complete line of the project's audit log, with its file and line number.
fn audit_lines(project: &Project) -> Vec<(PathBuf, usize, String)> {
    let dir = project.path(".vigie/audit");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("the audit folder")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    let mut lines = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read a segment");
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        for (idx, line) in complete.lines().enumerate() {
            lines.push((file.clone(), idx + 1, line.to_owned()));
        }
    }
    lines
}

/// One load thread: predictions until told to stop or the server is gone;
/// returns the request ids whose 200 reply arrived in full (counted in
/// `acknowledged_so_far` as they come), and the statuses seen.
fn load(
    base: &str,
    thread: usize,
    stop: &AtomicBool,
    acknowledged_so_far: &AtomicUsize,
) -> (Vec<String>, HashMap<u16, usize>) {
    let agent = agent();
    let mut acknowledged = Vec::new();
    let mut statuses = HashMap::new();
    for i in 0..20_000usize {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        // Alternate Vigie's route (the server names the request) and KServe V2 (the client does).
        let reply = if i.is_multiple_of(2) {
            post(
                &agent,
                &format!("{base}/v1/models/credit/predict"),
                &json!({"records": records(i, 1 + i % 3)}),
            )
            .map(|(status, body)| (status, body["request_id"].as_str().map(str::to_owned)))
        } else {
            let rows = records(i, 2);
            let column = |name: &str| rows.iter().map(|r| r[name].clone()).collect::<Vec<_>>();
            let id = format!("load-{thread}-{i}");
            let body = json!({"id": id, "inputs": [
                {"name": "student", "shape": [2], "datatype": "BYTES", "data": column("student")},
                {"name": "balance", "shape": [2], "datatype": "FP64", "data": column("balance")},
                {"name": "income", "shape": [2], "datatype": "FP64", "data": column("income")},
            ]});
            post(&agent, &format!("{base}/v2/models/credit/infer"), &body)
                .map(|(status, body)| (status, body["id"].as_str().map(str::to_owned)))
        };
        match reply {
            Ok((status, id)) => {
                *statuses.entry(status).or_default() += 1;
                if status == 200 {
                    acknowledged.push(id.expect("a 200 reply names its request"));
                    acknowledged_so_far.fetch_add(1, Ordering::Relaxed);
                }
            }
            // The server was killed: connections refused or cut.
            Err(_) => break,
        }
    }
    (acknowledged, statuses)
}

#[test]
fn a_kill_9_under_load_loses_no_acknowledged_prediction() {
    let project = Project::new();
    train(&project);
    kill_9_under_load(&project, &[]);
}

/// Acknowledged once written to the system and flushed every 60 s: the kill
/// lands before the first flush, and still no acknowledged record is lost.
#[test]
fn with_process_durability_a_kill_9_loses_no_acknowledged_prediction() {
    let project = Project::new();
    train(&project);
    let flushes = kill_9_under_load(
        &project,
        &["--audit-durability", "process", "--audit-flush-ms", "60000"],
    );
    assert!(flushes.is_some_and(|n| n == 0.0), "flushes before the kill: {flushes:?}");
}

/// Four threads predict until 1000 replies, then `vigie serve ARGS` is
/// killed with SIGKILL: every acknowledged prediction is in the log once,
/// the chain is whole, and a torn last record is cut on the next start.
/// Returns the server's count of background audit flushes read from
/// /metrics just before the kill.
fn kill_9_under_load(project: &Project, args: &[&str]) -> Option<f64> {
    let mut server = Server::start(project, args);
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged_so_far = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..4)
        .map(|thread| {
            let (base, stop, counter) =
                (server.base.clone(), stop.clone(), acknowledged_so_far.clone());
            std::thread::spawn(move || load(&base, thread, &stop, &counter))
        })
        .collect();
    let started = Instant::now();
    while acknowledged_so_far.load(Ordering::Relaxed) < 1000 {
        assert!(started.elapsed() < Duration::from_secs(120), "fewer than 1000 replies in 120 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let flushes = metric(&server.base, "vigie_audit_flush_duration_seconds_count");
    // SIGKILL while the four threads are mid-request.
    server.child.kill().expect("kill -9 vigie serve");
    server.child.wait().expect("reap vigie serve");
    stop.store(true, Ordering::Relaxed);
    let mut acknowledged = Vec::new();
    let mut statuses: HashMap<u16, usize> = HashMap::new();
    for thread in threads {
        let (ids, seen) = thread.join().expect("a load thread");
        acknowledged.extend(ids);
        for (status, n) in seen {
            *statuses.entry(status).or_default() += n;
        }
    }
    let lines = audit_lines(project);
    let mut in_log: HashMap<String, usize> = HashMap::new();
    for (_, _, line) in &lines {
        let record: Json = serde_json::from_str(line).expect("a JSON record");
        *in_log
            .entry(record["request_id"].as_str().expect("request_id").to_owned())
            .or_default() += 1;
    }
    let lost: Vec<&String> = acknowledged.iter().filter(|id| !in_log.contains_key(*id)).collect();
    let doubled: Vec<&String> =
        acknowledged.iter().filter(|id| in_log.get(*id).is_some_and(|n| *n > 1)).collect();
    let _ = writeln!(
        std::io::stderr(),
        "kill -9 under load: {} acknowledged, {} records in the log, statuses {statuses:?}",
        acknowledged.len(),
        lines.len()
    );
    assert!(acknowledged.len() >= 1000, "{}", acknowledged.len());
    assert!(
        lost.is_empty(),
        "{} acknowledged predictions lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    assert!(doubled.is_empty(), "recorded twice: {doubled:?}");
    assert!(statuses.keys().all(|s| *s == 200 || *s == 503), "{statuses:?}");

    // The chain is whole after the crash.
    let verified = project.json(&["audit", "verify", "--format", "json"]);
    assert_eq!(verified["ok"], json!(true), "{verified}");
    let records_after_crash = verified["records"].as_u64().expect("records");
    assert_eq!(records_after_crash, lines.len() as u64);

    // A record torn by a crash mid-write: verify notes it, the next start cuts it.
    let (last_segment, _, _) = lines.last().expect("a record").clone();
    let mut segment =
        std::fs::OpenOptions::new().append(true).open(&last_segment).expect("open the segment");
    segment.write_all(b"{\"seq\":999999,\"prev_hash\":\"00").expect("append a torn record");
    drop(segment);
    let verified = project.json(&["audit", "verify", "--format", "json"]);
    assert_eq!(verified["ok"], json!(true), "{verified}");
    assert_eq!(verified["torn_tail"]["bytes"], json!(29), "{verified}");
    let server = Server::start(project, &[]);
    let (status, reply) = post(
        &agent(),
        &format!("{}/v1/models/credit/predict", server.base),
        &json!({"records": records(1, 1)}),
    )
    .expect("a prediction after the restart");
    assert_eq!(status, 200, "{reply}");
    drop(server);
    let verified = project.json(&["audit", "verify", "--format", "json"]);
    assert_eq!(verified["ok"], json!(true), "{verified}");
    assert_eq!(verified["torn_tail"], Json::Null, "{verified}");
    assert_eq!(verified["records"].as_u64(), Some(records_after_crash + 1), "{verified}");
    let request_id = reply["request_id"].as_str().expect("request id");
    let listed = project.json(&["audit", "list", "--request-id", request_id, "--format", "json"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["seq"].as_u64(), Some(records_after_crash + 1), "{listed}");
    flushes
}

/// The value of a metric without labels in the server's /metrics.
fn metric(base: &str, name: &str) -> Option<f64> {
    let text =
        agent().get(&format!("{base}/metrics")).call().ok()?.body_mut().read_to_string().ok()?;
    text.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[test]
fn a_changed_or_removed_record_breaks_the_chain_at_its_line() {
    let project = Project::new();
    train(&project);
    let server = Server::start(&project, &[]);
    let agent = agent();
    let mut ids = Vec::new();
    for seed in 0..3 {
        let (status, reply) = post(
            &agent,
            &format!("{}/v1/models/credit/predict", server.base),
            &json!({"records": records(seed, 2)}),
        )
        .expect("predict");
        assert_eq!(status, 200, "{reply}");
        ids.push(reply["request_id"].as_str().expect("request id").to_owned());
    }
    let (status, reply) = post(
        &agent,
        &format!("{}/invocations", server.base),
        &json!({"dataframe_records": records(9, 1)}),
    )
    .expect("invocations");
    assert_eq!(status, 200, "{reply}");
    // One writer per log: a second server on the same project is refused.
    let second = project.fails(&["serve", "--addr", "127.0.0.1:0"], 1);
    assert!(second.contains("another `vigie serve` writes this audit log"), "{second}");
    drop(server);

    // What a record holds, and list's filters.
    let listed = project.json(&["audit", "list", "--format", "json"]);
    let listed = listed.as_array().expect("an array");
    assert_eq!(listed.len(), 4);
    assert_eq!(listed[0]["route"], json!("/invocations"), "newest first");
    let first = listed.iter().find(|r| r["request_id"] == json!(ids[0])).expect("the first");
    assert_eq!(
        (&first["caller"], &first["model"], &first["version"], &first["variant"]),
        (&json!("anonymous"), &json!("credit"), &json!(1), &json!("champion"))
    );
    assert_eq!(first["rows"].as_array().map(Vec::len), Some(2), "one record keeps both rows apart");
    assert_eq!(first["rows"][1]["inputs"], records(0, 2)[1], "the inputs the model received");
    assert!(first["rows"][1]["outputs"]["score"].as_f64().is_some(), "{first}");
    assert_eq!(first["threshold"], first["rows"][1]["outputs"]["threshold"]);
    let one =
        project.json(&["audit", "list", "--model", "credit", "--limit", "1", "--format", "json"]);
    assert_eq!(one.as_array().map(Vec::len), Some(1));
    let none = project.json(&["audit", "list", "--model", "other", "--format", "json"]);
    assert_eq!(none, json!([]));
    let table = project.ok(&["audit", "list", "--request-id", &ids[1]]);
    assert!(table.contains(&ids[1]) && !table.contains(&ids[0]), "{table}");
    assert!(project.ok(&["audit", "verify"]).starts_with("ok: 4 records"));
    for command in [&["audit", "verify", "--help"][..], &["audit", "list", "--help"]] {
        assert!(project.ok(command).contains("Usage: vigie audit"), "{command:?}");
    }

    // Change a score in record 2: verify names its file and line.
    let segment = project.path(".vigie/audit/audit-000001.jsonl");
    let original = std::fs::read_to_string(&segment).expect("the segment");
    let lines: Vec<&str> = original.lines().collect();
    let changed = lines[1].replacen("\"score\":0.", "\"score\":0.9", 1);
    assert_ne!(changed, lines[1]);
    let rewrite = |lines: &[&str]| {
        std::fs::write(&segment, lines.iter().map(|l| format!("{l}\n")).collect::<String>())
            .expect("rewrite the segment");
    };
    rewrite(&[lines[0], &changed, lines[2], lines[3]]);
    let error = project.fails(&["audit", "verify"], 1);
    assert!(error.contains("audit-000001.jsonl:2: the record was changed"), "{error}");
    let failed = project.run(&["audit", "verify", "--format", "json"]);
    let reply: Json = serde_json::from_slice(&failed.stdout).expect("json on stdout");
    assert_eq!(reply["ok"], json!(false), "{reply}");

    // Remove record 2: the next record's link names the break.
    rewrite(&[lines[0], lines[2], lines[3]]);
    let error = project.fails(&["audit", "verify"], 1);
    assert!(error.contains("audit-000001.jsonl:2: prev_hash"), "{error}");

    // Back as written: whole again.
    rewrite(&lines);
    assert!(project.ok(&["audit", "verify"]).starts_with("ok: 4 records"));
}
