//! Materialisation into the online store: the latest row of each entity
//! key of a computed view, turned from Arrow columns into the JSON rows
//! that the online store (crate `vigie-online`, shared with the server)
//! keeps, embedded or in MongoDB. The store itself, its writes and its
//! reads, live in that crate.

use arrow::array::{
    Array, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray, UInt64Array,
};
use serde_json::{Map, Value as Json};
pub use vigie_online::{LatestRow, OnlineError, OnlineLocation, OnlineRow, OnlineStore};

use crate::engine::{ARRIVAL, KEY, TIME};
use crate::error::{FeatureError, Result};

fn invalid(message: impl Into<String>) -> FeatureError {
    FeatureError::InvalidData(message.into())
}

/// Writes the latest row of every key of `rows` (a view's rows, sorted by
/// key, time, arrival) for the features `names` into `store`; returns the
/// keys written (only rows newer than the stored ones are).
pub fn materialize(
    store: &mut OnlineStore,
    view: &str,
    rows: &RecordBatch,
    names: &[String],
) -> Result<usize> {
    let keys = rows
        .column_by_name(KEY)
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .ok_or_else(|| invalid("internal: view keys"))?;
    let times = rows
        .column_by_name(TIME)
        .and_then(|c| c.as_any().downcast_ref::<TimestampMicrosecondArray>())
        .ok_or_else(|| invalid("internal: view times"))?;
    let arrivals = rows
        .column_by_name(ARRIVAL)
        .and_then(|c| c.as_any().downcast_ref::<UInt64Array>())
        .ok_or_else(|| invalid("internal: view arrivals"))?;
    let columns: Vec<(&String, &dyn Array)> = names
        .iter()
        .map(|name| {
            rows.column_by_name(name)
                .map(|c| (name, c.as_ref()))
                .ok_or_else(|| invalid(format!("view {view:?} has no column {name:?}")))
        })
        .collect::<Result<_>>()?;
    let n = rows.num_rows();
    // The last row of each key is its latest.
    let latest = (0..n).filter(|&i| i + 1 == n || keys.value(i + 1) != keys.value(i)).map(|i| {
        let mut values = Map::new();
        for (name, column) in &columns {
            values.insert((*name).clone(), cell(*column, i));
        }
        LatestRow {
            key: keys.value(i),
            time: times.value(i),
            arrival: i64::try_from(arrivals.value(i)).unwrap_or(i64::MAX),
            values,
        }
    });
    Ok(store.write(view, latest)?)
}

/// One cell as JSON: numbers (non-finite as null), booleans, text, anything else as
/// displayed, or null.
pub(crate) fn cell(column: &dyn Array, row: usize) -> Json {
    if column.is_null(row) {
        return Json::Null;
    }
    if let Some(numbers) = column.as_any().downcast_ref::<Float64Array>() {
        return serde_json::Number::from_f64(numbers.value(row)).map_or(Json::Null, Json::Number);
    }
    if let Some(integers) = column.as_any().downcast_ref::<Int64Array>() {
        return Json::from(integers.value(row));
    }
    if let Some(flags) = column.as_any().downcast_ref::<BooleanArray>() {
        return Json::Bool(flags.value(row));
    }
    if let Some(text) = column.as_any().downcast_ref::<StringArray>() {
        return Json::String(text.value(row).to_owned());
    }
    match arrow::util::display::array_value_to_string(column, row) {
        Ok(text) => Json::String(text),
        Err(_) => Json::Null,
    }
}
