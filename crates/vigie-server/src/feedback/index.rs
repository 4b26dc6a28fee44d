//! Where each prediction is in the audit log, by request id, so feedback
//! finds its prediction without reading the whole log each time.
//!
//! The index lives in memory and follows the log: it remembers how far it
//! has read (segment and byte offset), and on a request id it does not know
//! it reads only what was appended since. A `vigie serve` restart rebuilds
//! it from the whole log on the first feedback. A record read back is
//! checked against its own hash before it is trusted. A shadow version's
//! record (same request id, variant `shadow`) is not indexed: feedback is
//! on the answer the client got.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value as Json;

use crate::audit::{self, AuditError};

/// Where a record starts.
#[derive(Debug, Clone, Copy)]
struct Location {
    segment: u64,
    offset: u64,
}

/// The fields the index reads from each record.
#[derive(Deserialize)]
struct Head {
    request_id: Option<String>,
    variant: Option<String>,
}

/// Request id → record location, for one audit log.
pub struct AuditIndex {
    dir: PathBuf,
    by_request: HashMap<String, Location>,
    /// Read up to here: (segment, byte offset in it).
    cursor: Location,
}

impl AuditIndex {
    /// An index of the log in `dir`, empty until first asked.
    pub fn new(dir: &Path) -> AuditIndex {
        AuditIndex {
            dir: dir.to_owned(),
            by_request: HashMap::new(),
            cursor: Location { segment: 0, offset: 0 },
        }
    }

    /// The prediction record of `request_id`, checked against its hash.
    pub fn find(&mut self, request_id: &str) -> Result<Option<Json>, AuditError> {
        if !self.by_request.contains_key(request_id) {
            self.catch_up()?;
        }
        let Some(location) = self.by_request.get(request_id).copied() else { return Ok(None) };
        self.read_at(location).map(Some)
    }

    /// Indexes every complete record appended since the last call.
    fn catch_up(&mut self) -> Result<(), AuditError> {
        for (segment, path) in audit::segments(&self.dir)? {
            if segment < self.cursor.segment {
                continue;
            }
            let start = if segment == self.cursor.segment { self.cursor.offset } else { 0 };
            let mut reader = open_at(&path, start)?;
            let mut offset = start;
            let mut line = Vec::new();
            loop {
                line.clear();
                let read = reader.read_until(b'\n', &mut line).map_err(io(&path))?;
                // Stop before a record still being written: it ends without a newline.
                if read == 0 || !line.ends_with(b"\n") {
                    break;
                }
                // A shadow's record shares its request's id, but feedback is on the answer.
                if let Ok(Head { request_id: Some(id), variant }) = serde_json::from_slice(&line)
                    && variant.as_deref() != Some(crate::routing::SHADOW)
                {
                    self.by_request.insert(id, Location { segment, offset });
                }
                offset += read as u64;
            }
            self.cursor = Location { segment, offset };
        }
        Ok(())
    }

    fn read_at(&self, location: Location) -> Result<Json, AuditError> {
        let path = audit::segments(&self.dir)?
            .into_iter()
            .find(|(segment, _)| *segment == location.segment)
            .map(|(_, path)| path)
            .ok_or_else(|| AuditError::Broken {
                path: self.dir.clone(),
                line: 0,
                reason: format!("segment {} is gone", location.segment),
            })?;
        let mut line = Vec::new();
        open_at(&path, location.offset)?.read_until(b'\n', &mut line).map_err(io(&path))?;
        let line = line.strip_suffix(b"\n").unwrap_or(&line);
        let broken = |reason: String| AuditError::Broken { path: path.clone(), line: 0, reason };
        audit::check_line(line).map_err(broken)?;
        serde_json::from_slice(line).map_err(|e| broken(format!("not a JSON record: {e}")))
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> AuditError + '_ {
    move |source| AuditError::Io { path: path.to_owned(), source }
}

fn open_at(path: &Path, offset: u64) -> Result<BufReader<File>, AuditError> {
    let mut file = File::open(path).map_err(io(path))?;
    file.seek(SeekFrom::Start(offset)).map_err(io(path))?;
    Ok(BufReader::new(file))
}
