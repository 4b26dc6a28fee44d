//! `vigie audit verify` and `vigie audit list`: the prediction audit log
//! that `vigie serve` writes in the project's `.vigie/audit/`. Glue only:
//! the log's format and checks are `vigie_server::audit`.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Value as Json, json};
use vigie_server::audit::{self, AuditLog, StoredRecord};
use vigie_server::{AuditOptions, Metrics};

use super::Project;
use crate::cli::{AuditCommand, Format};
use crate::output;
use crate::output::outln;

/// Runs `vigie audit …`.
pub fn run(project: &Project, command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::Verify { format } => verify(project, format),
        AuditCommand::List { model, request_id, limit, format } => {
            list(project, model.as_deref(), request_id.as_deref(), limit, format)
        }
    }
}

/// The project's audit log folder.
pub fn audit_dir(project: &Project) -> PathBuf {
    project.state_dir().join("audit")
}

/// The metrics and the opened audit log of `vigie serve`, saying on stderr
/// what recovery did and how many records the log already holds (nothing for a new log).
pub fn open_for_serving(
    project: &Project,
    durability: vigie_server::Durability,
) -> anyhow::Result<(Arc<AuditLog>, Arc<Metrics>)> {
    let metrics = Metrics::new()?;
    let dir = audit_dir(project);
    let options = AuditOptions { durability, ..AuditOptions::default() };
    let (log, recovery) = AuditLog::open(&dir, options, metrics.clone())?;
    if recovery.truncated_bytes > 0 {
        eprintln!(
            "audit: cut {} bytes of a record torn by a crash at the end of {} (never acknowledged)",
            recovery.truncated_bytes,
            recovery.segment.display()
        );
    }
    if recovery.records > 0 {
        eprintln!("audit: {} records in {}", recovery.records, dir.display());
    }
    Ok((log, metrics))
}

fn verify(project: &Project, format: Format) -> anyhow::Result<()> {
    let dir = audit_dir(project);
    let verified = match audit::verify(&dir) {
        Ok(verified) => verified,
        Err(error) => {
            if format == Format::Json {
                output::json(&json!({"ok": false, "error": error.to_string()}))?;
            }
            return Err(anyhow::Error::new(error).context("the audit log's chain is broken"));
        }
    };
    let torn = verified.torn_tail.as_ref();
    if format == Format::Json {
        return output::json(&json!({
            "ok": true,
            "dir": dir.display().to_string(),
            "segments": verified.segments,
            "records": verified.records,
            "head": verified.head,
            "torn_tail": torn.map(|t| json!({"path": t.path.display().to_string(), "line": t.line, "bytes": t.bytes})),
        }));
    }
    outln!(
        "ok: {} records in {} segment file(s) of {}, every hash and link checked",
        verified.records,
        verified.segments,
        dir.display()
    )?;
    outln!("head: {} (keep it elsewhere to detect a removed tail later)", verified.head)?;
    if let Some(torn) = torn {
        outln!(
            "note: {}:{}: {} bytes of a record torn by a crash (never acknowledged); \
             the next `vigie serve` cuts them",
            torn.path.display(),
            torn.line,
            torn.bytes
        )?;
    }
    Ok(())
}

fn list(
    project: &Project,
    model: Option<&str>,
    request_id: Option<&str>,
    limit: usize,
    format: Format,
) -> anyhow::Result<()> {
    let matches = |record: &Json, field: &str, wanted: Option<&str>| {
        wanted.is_none_or(|wanted| record.get(field).and_then(Json::as_str) == Some(wanted))
    };
    let mut newest: VecDeque<StoredRecord> = VecDeque::with_capacity(limit.min(1024));
    audit::read(&audit_dir(project), |stored| {
        if matches(&stored.record, "model", model)
            && matches(&stored.record, "request_id", request_id)
            && limit > 0
        {
            if newest.len() == limit {
                newest.pop_front();
            }
            newest.push_back(stored);
        }
        Ok(())
    })?;
    let records: Vec<StoredRecord> = newest.into_iter().rev().collect();
    if format == Format::Json {
        return output::json(&Json::Array(records.into_iter().map(|s| s.record).collect()));
    }
    let mut table = output::table(&[
        "seq",
        "time",
        "request id",
        "caller",
        "model",
        "version",
        "variant",
        "rows",
        "decisions",
    ]);
    for stored in &records {
        let record = &stored.record;
        let text = |field: &str| match record.get(field) {
            Some(Json::String(s)) => s.clone(),
            Some(Json::Null) | None => "-".to_owned(),
            Some(other) => other.to_string(),
        };
        let rows = record.get("rows").and_then(Json::as_array).map_or(&[][..], Vec::as_slice);
        table.add_row(vec![
            text("seq"),
            text("ts"),
            text("request_id"),
            text("caller"),
            text("model"),
            text("version"),
            text("variant"),
            rows.len().to_string(),
            decisions(rows),
        ]);
    }
    outln!("{table}")?;
    Ok(())
}

/// The labels of a record's rows, the first few of them.
fn decisions(rows: &[Json]) -> String {
    const SHOWN: usize = 5;
    let mut labels: Vec<String> = rows
        .iter()
        .take(SHOWN)
        .map(|row| match &row["outputs"]["label"] {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    if rows.len() > SHOWN {
        labels.push(format!("… {} more", rows.len() - SHOWN));
    }
    labels.join(", ")
}
