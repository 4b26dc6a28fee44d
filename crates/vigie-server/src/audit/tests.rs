//! The audit log's chain, recovery and load shedding, on a scratch folder.

use std::io::Write as _;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::chain::{chain, check_line};
use super::{AuditError, AuditLog, AuditOptions, Durability, GENESIS_HASH, verify};
use crate::metrics::Metrics;

fn open(dir: &std::path::Path, options: AuditOptions) -> (Arc<AuditLog>, super::Recovery) {
    AuditLog::open(dir, options, Metrics::new().expect("metrics")).expect("open the log")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().expect("a runtime")
}

#[test]
fn a_chained_line_checks_and_any_change_does_not() {
    let line = chain(7, GENESIS_HASH, r#"{"model":"credit","rows":[{"score":0.25}]}"#);
    let text = line.text.strip_suffix('\n').expect("a newline");
    let link = check_line(text.as_bytes()).expect("a valid line");
    assert_eq!((link.seq, link.prev_hash.as_str(), link.hash), (7, GENESIS_HASH, line.hash));
    let changed = text.replace("0.25", "0.26");
    let error = check_line(changed.as_bytes()).expect_err("a changed line");
    assert!(error.contains("changed after it was written"), "{error}");
    assert!(check_line(b"{}").is_err());
}

#[test]
fn records_chain_across_segments_and_restarts() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Tiny segments: every commit after the first starts a new file.
    let options = AuditOptions { segment_bytes: 1, ..AuditOptions::default() };
    let runtime = runtime();
    let (log, recovery) = open(dir.path(), options);
    assert_eq!(recovery.records, 0);
    for n in 1..=3 {
        let seq = runtime.block_on(log.submit(format!("{{\"n\":{n}}}"))).expect("durable");
        assert_eq!(seq, n);
    }
    // A second writer on the same folder is refused while the first lives.
    let refused = AuditLog::open(dir.path(), options, Metrics::new().expect("metrics"));
    assert!(matches!(refused, Err(AuditError::Locked { .. })));
    drop(log);
    let verified = verify(dir.path()).expect("an unbroken chain");
    assert_eq!((verified.records, verified.segments), (3, 3));
    let (log, recovery) = open(dir.path(), options);
    assert_eq!(recovery.records, 3);
    assert_eq!(runtime.block_on(log.submit("{\"n\":4}".to_owned())).expect("durable"), 4);
    drop(log);
    assert_eq!(verify(dir.path()).expect("unbroken").records, 4);
}

#[test]
fn with_process_durability_records_are_flushed_in_the_background_and_on_close() {
    let dir = tempfile::tempdir().expect("temp dir");
    let flush_every = std::time::Duration::from_millis(5);
    // Tiny segments: each commit after the first rotates, which flushes the old segment.
    let options = AuditOptions {
        segment_bytes: 1,
        durability: Durability::Process { flush_every },
        ..AuditOptions::default()
    };
    let metrics = Metrics::new().expect("metrics");
    let (log, _) = AuditLog::open(dir.path(), options, metrics.clone()).expect("open the log");
    assert_eq!(log.health(), Ok(()));
    let runtime = runtime();
    for n in 1..=3 {
        let seq = runtime.block_on(log.submit(format!("{{\"n\":{n}}}"))).expect("acknowledged");
        assert_eq!(seq, n);
    }
    // Acknowledged records are in the file before any flush: readable at once.
    assert_eq!(verify(dir.path()).expect("an unbroken chain").records, 3);
    std::thread::sleep(flush_every * 4);
    let background = metrics.audit_flush_duration.get_sample_count();
    assert!(background >= 1, "no background flush after {:?}", flush_every * 4);
    assert_eq!(runtime.block_on(log.submit("{\"n\":4}".to_owned())).expect("acknowledged"), 4);
    drop(log);
    // Closing flushed the last commit too.
    assert!(metrics.audit_flush_duration.get_sample_count() > background);
    let verified = verify(dir.path()).expect("an unbroken chain");
    assert_eq!((verified.records, verified.segments), (4, 4));
}

#[test]
fn a_torn_last_record_is_cut_on_open_and_the_chain_goes_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let runtime = runtime();
    let (log, _) = open(dir.path(), AuditOptions::default());
    runtime.block_on(log.submit("{\"n\":1}".to_owned())).expect("durable");
    drop(log);
    let segment = dir.path().join("audit-000001.jsonl");
    let mut file = std::fs::OpenOptions::new().append(true).open(&segment).expect("segment");
    file.write_all(b"{\"seq\":2,\"prev_ha").expect("a torn write");
    drop(file);
    let torn = verify(dir.path()).expect("a torn tail is no break").torn_tail.expect("torn");
    assert_eq!((torn.line, torn.bytes), (2, 17));
    let (log, recovery) = open(dir.path(), AuditOptions::default());
    assert_eq!((recovery.records, recovery.truncated_bytes), (1, 17));
    assert_eq!(runtime.block_on(log.submit("{\"n\":2}".to_owned())).expect("durable"), 2);
    drop(log);
    let verified = verify(dir.path()).expect("unbroken");
    assert_eq!((verified.records, verified.torn_tail), (2, None));
}

#[test]
fn a_full_queue_is_refused_at_once() {
    let metrics = Metrics::new().expect("metrics");
    // A queue of one that no writer drains, already holding a record.
    let (queue, _undrained) = mpsc::channel(1);
    let log = AuditLog {
        queue: Some(queue.clone()),
        capacity: 1,
        metrics,
        writer: None,
        direct: None,
        failure: Default::default(),
    };
    let runtime = runtime();
    let (ack, _) = tokio::sync::oneshot::channel();
    queue.try_send(super::Submission { fields: String::new(), ack }).expect("fills the queue");
    let refused = runtime.block_on(log.submit("{\"n\":2}".to_owned()));
    assert!(matches!(refused, Err(AuditError::QueueFull { capacity: 1 })), "{refused:?}");
    let reply = crate::ApiError::from(refused.expect_err("refused"));
    assert_eq!(reply.status, axum::http::StatusCode::SERVICE_UNAVAILABLE);
}

#[test]
fn health_names_a_failed_write_and_a_stopped_writer() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (log, _) = open(dir.path(), AuditOptions::default());
    assert_eq!(log.health(), Ok(()));
    // What the writer records on a failed write or flush.
    log.failure.set("audit-000001.jsonl: No space left on device".to_owned()).expect("unset");
    let reason = log.health().expect_err("a failed write");
    assert!(reason.contains("No space left on device"), "{reason}");
    let (queue, _) = mpsc::channel(1);
    let stopped = AuditLog {
        queue: Some(queue),
        capacity: 1,
        metrics: Metrics::new().expect("metrics"),
        writer: None,
        direct: None,
        failure: Default::default(),
    };
    assert_eq!(stopped.health(), Err("the writer thread stopped".to_owned()));
}
