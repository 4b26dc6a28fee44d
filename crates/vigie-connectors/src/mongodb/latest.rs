//! [`MongoLatest`]: a collection that holds one document per (view, key), the latest features
//! of an entity, replaced only by a later version: the online store's MongoDB backend (crate
//! `vigie-online` decides what a version is; this module only compares them).
//!
//! A document is `{_id, _view, _key, _time, _version, _hash, FEATURE: value, …}`. The features are
//! plain fields, so any MongoDB client (another application, a model) reads an entity's latest
//! features with `find_one({_view: VIEW, _key: KEY})`; `_time` is the row's event time in
//! microseconds since 1970-01-01 UTC; `_version` is a text whose byte order is the order of
//! writes; `_hash` is a hash of the features' values. A unique index on (`_view`, `_key`)
//! holds one document per key.
//!
//! A write sends each row as one statement of an `update` command (a batch per command):
//! filter `{_view, _key, $or: [{_version: {$lt: NEW}}, {_version: NEW, _hash: {$ne: HASH}}]}`,
//! the whole new document as replacement, with upsert. The server applies each statement
//! atomically, so a document is replaced only by a greater version, or by the same version with
//! other values (the stream processor's final values of an event after its provisional ones). When the filter misses because the stored version is not lower, the upsert
//! tries an insert and the unique index refuses it (duplicate key); the same happens to the
//! loser when two writers insert a new key at once. Those statements are sent again without
//! upsert: the document now exists, so the filtered update replaces it exactly when it is
//! older. Documents are never deleted here.
//!
//! What it does not do: write several statements all or none (each row is its own atomic
//! write; writing the same rows again is harmless), or store feature names that MongoDB
//! treats specially (a leading `$` or `_`, a `.`): those are refused.

use std::time::Duration;

use mongodb::bson::{Bson, Document, doc};
use mongodb::sync::{Collection, Database};
use serde_json::{Map, Value as Json};

use super::{DUPLICATE_KEY, client};
use crate::ConnectorError;
use crate::postgres::redact_url;

/// Statements sent in one `update` command (the server accepts up to 100 000, and 16 MiB).
const BATCH: usize = 1000;

/// One row to write: an entity's features at a version.
#[derive(Debug, Clone, PartialEq)]
pub struct LatestDocument<'a> {
    /// The entity key.
    pub key: &'a str,
    /// The event time, microseconds since the epoch.
    pub time: i64,
    /// Orders the writes of a key: the document is replaced only by a greater one.
    pub version: &'a str,
    /// Feature name → value.
    pub values: &'a Map<String, Json>,
}

/// One entity's latest features, as read.
#[derive(Debug, Clone, PartialEq)]
pub struct LatestRead {
    /// `_time`, when it is an integer.
    pub time: Option<i64>,
    /// Every field that is not the store's own (`_…`).
    pub values: Map<String, Json>,
}

/// The online store's collection at a MongoDB server.
#[derive(Clone)]
pub struct MongoLatest {
    database: Database,
    collection: Collection<Document>,
    location: String,
    what: String,
}

impl MongoLatest {
    /// The collection `database.collection` at `url`. Connecting is lazy: an absent server is
    /// an error of the first read or write, after `timeout` (unless the URL sets
    /// `serverSelectionTimeoutMS`).
    pub fn new(
        url: &str,
        database: &str,
        collection: &str,
        timeout: Duration,
    ) -> Result<MongoLatest, ConnectorError> {
        let database = client(url, timeout)?.database(database);
        Ok(MongoLatest {
            collection: database.collection(collection),
            what: format!("{}.{collection}", database.name()),
            database,
            location: redact_url(url),
        })
    }

    /// The server's URL without the password, and the collection, for messages.
    pub fn describe(&self) -> String {
        format!("{} {}", self.location, self.what)
    }

    fn failed(&self, doing: &str, error: &mongodb::error::Error) -> ConnectorError {
        ConnectorError::Mongo {
            location: self.location.clone(),
            message: format!(
                "{doing} {}: {}; check that the server is running and reachable from here",
                self.what, error.kind
            ),
        }
    }

    fn refused(&self, message: String) -> ConnectorError {
        ConnectorError::SourceInput { system: "mongodb", location: self.location.clone(), message }
    }

    /// Creates the unique index on (`_view`, `_key`) (a no-op when it exists).
    pub fn ensure_index(&self) -> Result<(), ConnectorError> {
        let options = mongodb::options::IndexOptions::builder()
            .unique(true)
            .name("vigie_view_key".to_owned())
            .build();
        let index = mongodb::IndexModel::builder()
            .keys(doc! { "_view": 1, "_key": 1 })
            .options(options)
            .build();
        self.collection
            .create_index(index)
            .run()
            .map(drop)
            .map_err(|e| self.failed("creating the unique index of", &e))
    }

    /// Writes each of `rows` of `view` whose version is greater than its stored document's
    /// (or that has none); returns how many documents were written.
    pub fn write(&self, view: &str, rows: &[LatestDocument<'_>]) -> Result<usize, ConnectorError> {
        write_batches(rows, |batch, upsert| self.send(view, batch, upsert))
    }

    /// Sends `rows` as one unordered `update` command, each statement replacing the document
    /// of its row when older (inserting it when `upsert`); returns the documents matched or
    /// inserted, and the positions of the statements refused as duplicate keys (with
    /// `upsert` only: without, a duplicate key means another unique index, and fails).
    fn send(
        &self,
        view: &str,
        rows: &[&LatestDocument<'_>],
        upsert: bool,
    ) -> Result<(usize, Vec<usize>), ConnectorError> {
        let statements = rows
            .iter()
            .map(|row| self.statement(view, row, upsert))
            .collect::<Result<Vec<_>, _>>()?;
        let command = doc! {
            "update": self.collection.name(),
            "updates": statements,
            "ordered": false,
        };
        let reply =
            self.database.run_command(command).run().map_err(|e| self.failed("writing to", &e))?;
        if let Ok(concern) = reply.get_document("writeConcernError") {
            return Err(ConnectorError::Mongo {
                location: self.location.clone(),
                message: format!("writing to {}: write concern failed: {concern}", self.what),
            });
        }
        let mut duplicates = Vec::new();
        for error in reply.get_array("writeErrors").into_iter().flatten() {
            let error = error.as_document();
            let field = |name| error.and_then(|e| integer(e.get(name)));
            match (field("code"), field("index")) {
                (Some(code), Some(index)) if upsert && code == i64::from(DUPLICATE_KEY) => {
                    duplicates.push(usize::try_from(index).unwrap_or(usize::MAX));
                }
                _ => {
                    let message =
                        error.and_then(|e| e.get_str("errmsg").ok()).unwrap_or("no message");
                    return Err(self.refused(format!(
                        "writing to {}: the server refused a row: {message}",
                        self.what
                    )));
                }
            }
        }
        let matched = integer(reply.get("n")).unwrap_or(0);
        Ok((usize::try_from(matched).unwrap_or(0), duplicates))
    }

    /// One statement of an `update` command: replace the document of `row` when older, or
    /// of the same version with other values.
    fn statement(
        &self,
        view: &str,
        row: &LatestDocument<'_>,
        upsert: bool,
    ) -> Result<Document, ConnectorError> {
        let hash = values_hash(row.values);
        let mut replacement = doc! {
            "_view": view,
            "_key": row.key,
            "_time": row.time,
            "_version": row.version,
            "_hash": &hash,
        };
        for (name, value) in row.values {
            if name.starts_with(['_', '$']) || name.contains('.') {
                return Err(self.refused(format!(
                    "feature {name:?} of view {view:?}: a MongoDB online store cannot hold a \
                     field whose name starts with `_` or `$` or holds a `.`; rename the feature"
                )));
            }
            replacement.insert(name.clone(), bson(value));
        }
        Ok(doc! {
            "q": {
                "_view": view,
                "_key": row.key,
                "$or": [
                    { "_version": { "$lt": row.version } },
                    { "_version": row.version, "_hash": { "$ne": &hash } },
                ],
            },
            "u": replacement,
            "upsert": upsert,
        })
    }

    /// The document of `key` in `view`, if any.
    pub fn get(&self, view: &str, key: &str) -> Result<Option<LatestRead>, ConnectorError> {
        let found = self
            .collection
            .find_one(doc! { "_view": view, "_key": key })
            .run()
            .map_err(|e| self.failed("reading", &e))?;
        Ok(found.map(|document| LatestRead {
            time: integer(document.get("_time")),
            values: document
                .into_iter()
                .filter(|(name, _)| !name.starts_with('_'))
                .map(|(name, value)| (name, value.into_relaxed_extjson()))
                .collect(),
        }))
    }

    /// How many keys `view` holds.
    pub fn count(&self, view: &str) -> Result<u64, ConnectorError> {
        self.collection
            .count_documents(doc! { "_view": view })
            .run()
            .map_err(|e| self.failed("counting the documents of", &e))
    }

    /// The views with at least one document, by name.
    pub fn views(&self) -> Result<Vec<String>, ConnectorError> {
        let values = self
            .collection
            .distinct("_view", doc! {})
            .run()
            .map_err(|e| self.failed("reading", &e))?;
        let mut views: Vec<String> =
            values.iter().filter_map(Bson::as_str).map(str::to_owned).collect();
        views.sort();
        Ok(views)
    }
}

/// A write in batches of [`BATCH`] rows: each batch sent with upsert through `send`, then
/// the rows refused as duplicate keys sent again without upsert (their document exists now:
/// inserted by a concurrent writer, or there already with a version not lower). Returns the
/// documents written.
fn write_batches<'r>(
    rows: &'r [LatestDocument<'r>],
    mut send: impl FnMut(&[&'r LatestDocument<'r>], bool) -> Result<(usize, Vec<usize>), ConnectorError>,
) -> Result<usize, ConnectorError> {
    let mut written = 0;
    for batch in rows.chunks(BATCH) {
        let all: Vec<&LatestDocument<'_>> = batch.iter().collect();
        let (matched, duplicates) = send(&all, true)?;
        written += matched;
        if duplicates.is_empty() {
            continue;
        }
        let again: Vec<&LatestDocument<'_>> =
            duplicates.iter().filter_map(|&index| batch.get(index)).collect();
        written += send(&again, false)?.0;
    }
    Ok(written)
}

/// An integer of a reply or document, whatever its BSON width.
fn integer(value: Option<&Bson>) -> Option<i64> {
    match value? {
        Bson::Int32(v) => Some(i64::from(*v)),
        Bson::Int64(v) => Some(*v),
        _ => None,
    }
}

/// A feature value as BSON: integers as Int64, other numbers as doubles (so they read back as
/// the same JSON), text, booleans, null; arrays and objects element by element.
fn bson(value: &Json) -> Bson {
    match value {
        Json::Null => Bson::Null,
        Json::Bool(flag) => Bson::Boolean(*flag),
        Json::Number(number) => match number.as_i64() {
            Some(integer) => Bson::Int64(integer),
            None => number.as_f64().map_or(Bson::Null, Bson::Double),
        },
        Json::String(text) => Bson::String(text.clone()),
        Json::Array(items) => Bson::Array(items.iter().map(bson).collect()),
        Json::Object(fields) => {
            Bson::Document(fields.iter().map(|(name, value)| (name.clone(), bson(value))).collect())
        }
    }
}

#[cfg(test)]
mod tests;

/// A stable hash of a row's values (FNV-1a over their JSON text), as 16 hexadecimal digits.
fn values_hash(values: &Map<String, Json>) -> String {
    let text = Json::Object(values.clone()).to_string();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}
