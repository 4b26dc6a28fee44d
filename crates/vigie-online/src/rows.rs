//! The rows the online store keeps, and the one rule that orders them.
//!
//! A row is newer than another of the same key when its event time is
//! later, or the times are equal and it arrived later; a row of the same
//! version (the same event) with other values replaces it too: the stream
//! processor writes an event's provisional values, then its final ones.
//! [`version`] turns
//! (time, arrival) into a text whose byte order is exactly that order, so
//! each backend applies the rule with one comparison of one stored value
//! (SQLite: `excluded.version > features.version`; MongoDB: a filter
//! `_version: {$lt: NEW}`), inside its own atomic write.

use serde_json::{Map, Value as Json};

/// One entity's latest features, as read.
#[derive(Debug, Clone, PartialEq)]
pub struct OnlineRow {
    /// The event time of the row, microseconds since the epoch.
    pub time: i64,
    /// Feature name → value (numbers, text, or null).
    pub values: Map<String, Json>,
}

/// One entity's latest features, as written.
#[derive(Debug, Clone, PartialEq)]
pub struct LatestRow<'a> {
    /// The entity key.
    pub key: &'a str,
    /// The event time of the row, microseconds since the epoch.
    pub time: i64,
    /// Arrival order among rows of the same time (later wins).
    pub arrival: i64,
    /// Feature name → value.
    pub values: Map<String, Json>,
}

/// The version of a row of event time `time` and arrival `arrival`: 32
/// lowercase hexadecimal digits, each number offset by 2^63 so that
/// negative ones sort first. Greater text (byte order) = newer row.
pub fn version(time: i64, arrival: i64) -> String {
    let ordered = |n: i64| n.cast_unsigned() ^ (1 << 63);
    format!("{:016x}{:016x}", ordered(time), ordered(arrival))
}
