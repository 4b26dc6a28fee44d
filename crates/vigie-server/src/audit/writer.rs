//! The one thread that appends to the audit log, by group commit: it takes
//! every record queued, appends them in one write, `fdatasync`s once, and
//! only then acknowledges each of them. Under load a commit carries many
//! records, so one disk flush serves many requests.
//!
//! With [`Durability::Process`] there is no writer thread: each request
//! appends its own record under a lock ([`Direct`]) and is acknowledged once
//! the write reaches the operating system, sparing it two thread switches;
//! a flusher thread `fdatasync`s the segment on a timer.
//!
//! On start it recovers the log: bytes after the last complete line of the
//! newest segment (a write cut short by a crash, never acknowledged) are
//! truncated, and the chain continues from the last record. After a failed
//! write or flush the writer refuses every later record until restarted:
//! after a failed `fsync` the kernel may have dropped the data while a
//! second `fsync` reports success, so retrying would risk acknowledging a
//! record that is not on disk.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::chain::{GENESIS_HASH, check_line, segment_path, segments};
use super::{AuditError, AuditOptions, Recovery};
use crate::metrics::Metrics;

/// A record waiting for the writer, and where to say it is on disk.
pub(crate) struct Submission {
    /// The record's fields, a compact JSON object.
    pub fields: String,
    /// Receives the record's seq number once durable, or why it is not.
    pub ack: oneshot::Sender<Result<u64, String>>,
}

/// The writer's state: the open segment and the chain's head.
pub(crate) struct Writer {
    dir: PathBuf,
    options: AuditOptions,
    metrics: Arc<Metrics>,
    /// Held for the writer's life: one writer per log.
    _lock: File,
    segment: u64,
    path: PathBuf,
    file: File,
    len: u64,
    next_seq: u64,
    head: String,
    /// Set by the first failed write or flush; shared with the log's handle for readiness.
    failed: Arc<OnceLock<String>>,
}

/// What the writer shares with the flusher thread ([`Durability::Process`]).
struct Flusher {
    /// A handle on the segment being written.
    file: Mutex<(PathBuf, File)>,
    /// Whether bytes were written since the last flush.
    dirty: AtomicBool,
    stop: AtomicBool,
    metrics: Arc<Metrics>,
    failed: Arc<OnceLock<String>>,
}

impl Flusher {
    /// Flushes the segment if anything was written since the last flush;
    /// a failure refuses every later record, as a failed commit does.
    fn flush(&self) {
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return;
        }
        let started = Instant::now();
        let file = self.file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Err(error) = file.1.sync_data() {
            let _ = self.failed.set(format!("{}: {error}", file.0.display()));
        }
        self.metrics.audit_flush_duration.observe(started.elapsed().as_secs_f64());
    }

    /// Flushes every `every` until told to stop, then once more.
    fn run(&self, every: Duration) {
        while !self.stop.load(Ordering::Acquire) {
            std::thread::park_timeout(every);
            self.flush();
        }
        self.flush();
    }
}

/// The writer of [`Durability::Process`]: appended to by each request under
/// a lock, flushed by its own thread.
pub(crate) struct Direct {
    writer: Mutex<Writer>,
    flusher: Arc<Flusher>,
    thread: Option<JoinHandle<()>>,
}

impl Direct {
    /// Appends one record; returns its seq once written to the system.
    pub(crate) fn append(&self, fields: &str) -> Result<u64, String> {
        let mut writer = self.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let started = Instant::now();
        let committed = writer.commit(&[fields], Some(&self.flusher));
        writer.metrics.audit_commit_duration.observe(started.elapsed().as_secs_f64());
        writer.metrics.audit_batch_records.observe(1.0);
        committed
    }

    /// Whether the flusher thread still runs.
    pub(crate) fn health(&self) -> Result<(), String> {
        match &self.thread {
            Some(thread) if !thread.is_finished() => Ok(()),
            _ => Err("the audit flusher thread stopped".to_owned()),
        }
    }
}

impl Drop for Direct {
    /// Flushes what is left and waits for the flusher.
    fn drop(&mut self) {
        self.flusher.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> AuditError + '_ {
    move |source| AuditError::Io { path: path.to_owned(), source }
}

/// Makes a new file's name durable.
fn sync_dir(dir: &Path) -> Result<(), AuditError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// The last complete line of `bytes` (without its newline).
fn last_line(bytes: &[u8]) -> Option<&[u8]> {
    let body = bytes.strip_suffix(b"\n")?;
    let start = body.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    Some(&body[start..])
}

impl Writer {
    /// Opens the log in `dir` (created if absent), truncating a torn tail.
    pub(crate) fn recover(
        dir: &Path,
        options: AuditOptions,
        metrics: Arc<Metrics>,
    ) -> Result<(Writer, Recovery), AuditError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let lock_path = dir.join("LOCK");
        let lock = File::create(&lock_path).map_err(io(&lock_path))?;
        if lock.try_lock().is_err() {
            return Err(AuditError::Locked { path: dir.to_owned() });
        }
        let existing = segments(dir)?;
        let (segment, path) = existing.last().cloned().unwrap_or((1, segment_path(dir, 1)));
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        if existing.is_empty() {
            sync_dir(dir)?;
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io(&path))?;
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let truncated_bytes = (bytes.len() - complete) as u64;
        if truncated_bytes > 0 {
            file.set_len(complete as u64).and_then(|()| file.sync_all()).map_err(io(&path))?;
            bytes.truncate(complete);
        }
        let (next_seq, head) = chain_head(&bytes, &path, &existing)?;
        let writer = Writer {
            dir: dir.to_owned(),
            options,
            metrics,
            _lock: lock,
            segment,
            path: path.clone(),
            file,
            len: complete as u64,
            next_seq,
            head,
            failed: Arc::new(OnceLock::new()),
        };
        let recovery = Recovery { segment: path, records: next_seq - 1, truncated_bytes };
        Ok((writer, recovery))
    }

    /// Why the writer refuses records, once it does: shared with the log's handle.
    pub(crate) fn failure(&self) -> Arc<OnceLock<String>> {
        Arc::clone(&self.failed)
    }

    /// This writer appended to by each request, with a thread that flushes
    /// the log every `every` ([`Durability::Process`]).
    pub(crate) fn into_direct(self, every: Duration) -> std::io::Result<Direct> {
        let flusher = Arc::new(Flusher {
            file: Mutex::new((self.path.clone(), self.file.try_clone()?)),
            dirty: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            metrics: Arc::clone(&self.metrics),
            failed: Arc::clone(&self.failed),
        });
        let flushing = Arc::clone(&flusher);
        let thread = std::thread::Builder::new()
            .name("vigie-audit-flusher".into())
            .spawn(move || flushing.run(every))?;
        Ok(Direct { writer: Mutex::new(self), flusher, thread: Some(thread) })
    }

    /// Commits batches until every sender is gone ([`Durability::Disk`]).
    pub(crate) fn run(mut self, mut queue: mpsc::Receiver<Submission>) {
        let mut batch = Vec::with_capacity(self.options.max_batch);
        while let Some(first) = queue.blocking_recv() {
            batch.push(first);
            while batch.len() < self.options.max_batch {
                match queue.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            self.metrics.audit_queue_depth.sub(batch.len() as i64);
            let started = Instant::now();
            let fields: Vec<&str> = batch.iter().map(|s| s.fields.as_str()).collect();
            let committed = self.commit(&fields, None);
            self.metrics.audit_commit_duration.observe(started.elapsed().as_secs_f64());
            self.metrics.audit_batch_records.observe(batch.len() as f64);
            for (offset, submission) in batch.drain(..).enumerate() {
                let seq = committed.clone().map(|first| first + offset as u64);
                // A handler that gave up waiting (its client left) no longer listens.
                let _ = submission.ack.send(seq);
            }
        }
    }

    /// Appends the records of `batch` (their fields) and flushes them (or
    /// leaves that to `flusher`); returns the first record's seq.
    fn commit(&mut self, batch: &[&str], flusher: Option<&Flusher>) -> Result<u64, String> {
        if let Some(reason) = self.failed.get() {
            return Err(reason.clone());
        }
        if self.len >= self.options.segment_bytes {
            self.rotate(flusher).map_err(|e| self.fail(e.to_string()))?;
        }
        let first = self.next_seq;
        let mut head = self.head.clone();
        let mut buffer = String::new();
        for (offset, fields) in batch.iter().enumerate() {
            let line = super::chain::chain(first + offset as u64, &head, fields);
            buffer.push_str(&line.text);
            head = line.hash;
        }
        let written = self.file.write_all(buffer.as_bytes()).and_then(|()| match flusher {
            None => self.file.sync_data(),
            Some(flusher) => {
                flusher.dirty.store(true, Ordering::Release);
                Ok(())
            }
        });
        if let Err(error) = written {
            // Best effort: cut what was appended so the log ends on a whole record.
            let _ = self.file.set_len(self.len);
            return Err(self.fail(format!("{}: {error}", self.path.display())));
        }
        self.len += buffer.len() as u64;
        self.next_seq = first + batch.len() as u64;
        self.head = head;
        Ok(first)
    }

    /// Starts the next segment, once the current one is on disk.
    fn rotate(&mut self, flusher: Option<&Flusher>) -> Result<(), AuditError> {
        if flusher.is_some() {
            self.file.sync_data().map_err(io(&self.path))?;
        }
        let segment = self.segment + 1;
        let path = segment_path(&self.dir, segment);
        let file = OpenOptions::new()
            .create_new(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        sync_dir(&self.dir)?;
        if let Some(flusher) = flusher {
            let handle = file.try_clone().map_err(io(&path))?;
            *flusher.file.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) =
                (path.clone(), handle);
        }
        self.segment = segment;
        self.path = path;
        self.file = file;
        self.len = 0;
        Ok(())
    }

    /// Refuses every later record, for `reason`.
    fn fail(&mut self, reason: String) -> String {
        // Only the first failure is kept: it is the cause of the later ones.
        let _ = self.failed.set(reason.clone());
        reason
    }
}

/// The next seq number and the hash to chain to: from the last record of
/// the newest segment (`bytes`, whole lines only), else of older ones.
fn chain_head(
    bytes: &[u8],
    path: &Path,
    existing: &[(u64, PathBuf)],
) -> Result<(u64, String), AuditError> {
    if let Some(head) = last_link(bytes, path)? {
        return Ok(head);
    }
    for (_, older) in existing.iter().rev().skip(1) {
        let content = std::fs::read(older).map_err(io(older))?;
        if let Some(head) = last_link(&content, older)? {
            return Ok(head);
        }
    }
    Ok((1, GENESIS_HASH.to_owned()))
}

/// The seq number after, and the hash of, the last record of a segment's `content`.
fn last_link(content: &[u8], path: &Path) -> Result<Option<(u64, String)>, AuditError> {
    let Some(line) = last_line(content) else { return Ok(None) };
    let link = check_line(line).map_err(|reason| AuditError::Broken {
        path: path.to_owned(),
        line: content.iter().filter(|&&b| b == b'\n').count(),
        reason: format!("{reason} (run `vigie audit verify`)"),
    })?;
    Ok(Some((link.seq + 1, link.hash)))
}
