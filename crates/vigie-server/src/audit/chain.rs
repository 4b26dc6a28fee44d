//! The audit log's on-disk form: segment files of JSON lines, each record
//! chained to the one before by SHA-256, and the readers that walk them.
//!
//! A record's line is its body, a compact JSON object that begins with
//! `{"seq":N,"prev_hash":"…",` and holds the prediction, followed by
//! `,"hash":"<sha-256 of the body, hex>"}` in place of the body's closing
//! brace. The hash covers the body's exact bytes, so checking it needs no
//! canonical JSON: any change to a record, or to the order of records,
//! breaks the chain at a line that [`verify`] names. Removing the newest
//! records is not detectable from the log alone: keep the head hash that
//! [`verify`] prints somewhere else to detect that.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use super::AuditError;

/// The `prev_hash` of the first record of a log.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const SEGMENT_PREFIX: &str = "audit-";
const SEGMENT_SUFFIX: &str = ".jsonl";
/// `,"hash":"` + 64 hex digits + `"}`.
const HASH_SUFFIX_LEN: usize = 9 + 64 + 2;

/// The chain fields of one record, read back and checked against its hash.
#[derive(Debug)]
pub(crate) struct Link {
    pub seq: u64,
    pub prev_hash: String,
    pub hash: String,
}

/// A line of a record, ready to append.
pub(crate) struct ChainedLine {
    pub text: String,
    pub hash: String,
}

/// Hex SHA-256 of `bytes`.
fn sha256_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let digest = Sha256::digest(bytes);
    let mut hex = String::with_capacity(64);
    for byte in digest {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// The line of record `seq` whose fields (a JSON object) are `fields`,
/// chained after the record whose hash is `prev_hash`.
pub(crate) fn chain(seq: u64, prev_hash: &str, fields: &str) -> ChainedLine {
    let rest = fields.strip_prefix('{').unwrap_or(fields);
    let separator = if rest.starts_with('}') { "" } else { "," };
    let body = format!("{{\"seq\":{seq},\"prev_hash\":\"{prev_hash}\"{separator}{rest}");
    let hash = sha256_hex(body.as_bytes());
    let open = body.strip_suffix('}').unwrap_or(&body);
    let text = format!("{open},\"hash\":\"{hash}\"}}\n");
    ChainedLine { text, hash }
}

/// Checks one line (without its newline) against its own hash and reads
/// its chain fields; the error says what is wrong.
pub(crate) fn check_line(line: &[u8]) -> Result<Link, String> {
    let Some(split) = line.len().checked_sub(HASH_SUFFIX_LEN) else {
        return Err("not an audit record (too short to end with its hash)".to_owned());
    };
    let (body_open, suffix) = line.split_at(split);
    let hash = suffix
        .strip_prefix(b",\"hash\":\"")
        .and_then(|rest| rest.strip_suffix(b"\"}"))
        .and_then(|hex| std::str::from_utf8(hex).ok())
        .filter(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| "not an audit record (does not end with its hash)".to_owned())?;
    let mut body = Vec::with_capacity(line.len());
    body.extend_from_slice(body_open);
    body.push(b'}');
    let computed = sha256_hex(&body);
    if computed != hash {
        return Err(format!(
            "the record was changed after it was written: its content hashes to {computed}, \
             its hash field says {hash}"
        ));
    }
    let fields: Json =
        serde_json::from_slice(&body).map_err(|e| format!("the record is not valid JSON: {e}"))?;
    let seq = fields.get("seq").and_then(Json::as_u64).ok_or("the record has no seq number")?;
    let prev_hash = fields
        .get("prev_hash")
        .and_then(Json::as_str)
        .ok_or("the record has no prev_hash")?
        .to_owned();
    Ok(Link { seq, prev_hash, hash: hash.to_owned() })
}

/// The path of segment `index` in `dir`.
pub(crate) fn segment_path(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("{SEGMENT_PREFIX}{index:06}{SEGMENT_SUFFIX}"))
}

/// The segments of the log in `dir`, oldest first, with their index; none
/// when the folder does not exist.
pub fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, AuditError> {
    let io = |source| AuditError::Io { path: dir.to_owned(), source };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        let index = name
            .to_str()
            .and_then(|n| n.strip_prefix(SEGMENT_PREFIX))
            .and_then(|n| n.strip_suffix(SEGMENT_SUFFIX))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(index) = index {
            found.push((index, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

/// Bytes after the last complete record of the newest segment: a record
/// whose write was cut short by a crash. It was never acknowledged (the
/// writer acknowledges after `fdatasync`), and `vigie serve` truncates it on start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The segment.
    pub path: PathBuf,
    /// The line the torn record starts on.
    pub line: usize,
    /// Its length in bytes.
    pub bytes: u64,
}

/// Calls `visit` with every complete line of the log (path, 1-based line
/// number, the line without its newline), oldest first. A line without its
/// newline is allowed only at the end of the newest segment, and returned
/// as a torn tail.
pub fn scan(
    dir: &Path,
    mut visit: impl FnMut(&Path, usize, &[u8]) -> Result<(), AuditError>,
) -> Result<Option<TornTail>, AuditError> {
    let segments = segments(dir)?;
    let newest = segments.len().saturating_sub(1);
    for (position, (_, path)) in segments.iter().enumerate() {
        let io = |source| AuditError::Io { path: path.clone(), source };
        let mut reader = BufReader::new(File::open(path).map_err(io)?);
        let mut line = Vec::new();
        let mut number = 0;
        loop {
            line.clear();
            let read = reader.read_until(b'\n', &mut line).map_err(io)?;
            if read == 0 {
                break;
            }
            number += 1;
            match line.strip_suffix(b"\n") {
                Some(complete) => visit(path, number, complete)?,
                None if position == newest => {
                    return Ok(Some(TornTail {
                        path: path.clone(),
                        line: number,
                        bytes: line.len() as u64,
                    }));
                }
                None => {
                    return Err(AuditError::Broken {
                        path: path.clone(),
                        line: number,
                        reason: "the segment ends inside a record, and a newer segment follows"
                            .to_owned(),
                    });
                }
            }
        }
    }
    Ok(None)
}

/// What [`verify`] found: an unbroken chain.
#[derive(Debug, Clone)]
pub struct Verified {
    /// Segment files read.
    pub segments: usize,
    /// Records checked.
    pub records: u64,
    /// The hash of the newest record (the genesis hash when there is none):
    /// kept elsewhere, it shows later that no newer record was removed.
    pub head: String,
    /// An unacknowledged record cut short by a crash, if any.
    pub torn_tail: Option<TornTail>,
}

/// Checks every record's hash and its link to the record before, oldest
/// first; the error names the file and line of the first break.
pub fn verify(dir: &Path) -> Result<Verified, AuditError> {
    let mut head = GENESIS_HASH.to_owned();
    let mut records = 0u64;
    let torn_tail = scan(dir, |path, line, bytes| {
        let broken = |reason: String| AuditError::Broken { path: path.to_owned(), line, reason };
        let link = check_line(bytes).map_err(broken)?;
        if link.prev_hash != head {
            return Err(broken(format!(
                "prev_hash {} is not the hash of the record before ({head}): a record was \
                 removed, inserted or reordered",
                link.prev_hash
            )));
        }
        if link.seq != records + 1 {
            return Err(broken(format!("seq {} where {} was expected", link.seq, records + 1)));
        }
        head = link.hash;
        records += 1;
        Ok(())
    })?;
    Ok(Verified { segments: segments(dir)?.len(), records, head, torn_tail })
}

/// One stored record and where it is.
#[derive(Debug, Clone)]
pub struct StoredRecord {
    /// The segment file.
    pub path: PathBuf,
    /// Its 1-based line.
    pub line: usize,
    /// The record, chain fields included.
    pub record: Json,
}

/// Calls `visit` with every complete record, oldest first, parsed but not
/// checked (that is [`verify`]'s job).
pub fn read(
    dir: &Path,
    mut visit: impl FnMut(StoredRecord) -> Result<(), AuditError>,
) -> Result<(), AuditError> {
    scan(dir, |path, line, bytes| {
        let record = serde_json::from_slice(bytes).map_err(|e| AuditError::Broken {
            path: path.to_owned(),
            line,
            reason: format!("not a JSON record: {e}"),
        })?;
        visit(StoredRecord { path: path.to_owned(), line, record })
    })?;
    Ok(())
}
