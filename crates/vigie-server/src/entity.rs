//! Prediction by entity key: the rows of a `/v1` predict request, with the
//! features of each entity read from the online store.
//!
//! A request sends either `entities` (key values of the model's entity,
//! e.g. `["C0042"]`) or `records` (objects). An entity is the record
//! `{KEY: value}`. For a model trained from the feature store (its card
//! records where each input comes from), every record that carries the key
//! column of a feature view gets that view's latest features, and any field
//! the record sends itself overrides the looked-up value: raw features,
//! keys only, or keys with a few overrides all work. A key with no row in
//! any view the model reads is an unknown entity (404 naming it); a feature
//! missing for a known entity is null, which the model imputes and
//! `vigie_missing_features_total` counts. A row older than its view's
//! time-to-live is used, and the prediction says `stale: true` (at training,
//! such a row would have read as missing).

use std::sync::Arc;

use serde_json::{Map, Value as Json, json};
use vigie_core::Frame;
use vigie_core::lineage::StoreInputs;
use vigie_ml::Model;
use vigie_online::OnlineRow;

use crate::error::ApiError;
use crate::online::{OnlineReader, is_stale};
use crate::rows::Rows;

/// The model's input frame of a request, and what was looked up per row.
pub struct Inputs {
    /// The frame the model receives (looked-up features included).
    pub frame: Frame,
    /// Per row: the entity looked up, if any.
    pub looked_up: Vec<Option<LookedUp>>,
    /// Per row: the record the model received, looked-up features merged in
    /// (what a shadow version scores).
    pub records: Vec<Map<String, Json>>,
}

/// One row's lookup, echoed in its prediction.
pub struct LookedUp {
    /// The model entity's key value (or the keys the record carried).
    entity: Json,
    /// Whether a row read was older than its view's time-to-live.
    stale: bool,
}

/// Unknown entities a 404 names; the rest are counted, so the message stays short.
const NAMED_UNKNOWN: usize = 10;

/// One (view, key value) to read.
type Lookup = (String, String);

/// The rows of a `/v1` predict `request` for `model`, features looked up.
pub async fn inputs(
    online: &Arc<OnlineReader>,
    model: &Model,
    request: &Json,
) -> Result<Inputs, ApiError> {
    let store = model.card.store.as_ref();
    let records = request_records(model, request)?;
    let plans: Vec<Vec<Lookup>> = records
        .iter()
        .map(|record| store.map_or_else(Vec::new, |store| lookups(store, record)))
        .collect();
    let wanted: Vec<Lookup> = plans.iter().flatten().cloned().collect();
    let found: Vec<Option<OnlineRow>> = if wanted.is_empty() {
        Vec::new()
    } else {
        online
            .read(wanted.len(), move |reader| {
                wanted.iter().map(|(view, key)| Ok(reader.get(view, key)?)).collect()
            })
            .await?
    };
    let mut rows = Rows::new(model, records.len());
    let mut looked_up = Vec::with_capacity(records.len());
    let mut received = Vec::with_capacity(records.len());
    let mut unknown = Vec::new();
    let mut found = found.into_iter();
    for (row, (record, plan)) in records.iter().zip(&plans).enumerate() {
        let read: Vec<Option<OnlineRow>> = found.by_ref().take(plan.len()).collect();
        match store {
            Some(store) if !plan.is_empty() => {
                if read.iter().all(Option::is_none) {
                    unknown.push(describe_keys(store, record));
                    continue;
                }
                let (merged, stale) = merge(store, plan, &read, record);
                rows.push_record(row, &merged);
                looked_up.push(Some(LookedUp { entity: echo(store, record), stale }));
                received.push(merged);
            }
            _ => {
                rows.push_record(row, record);
                looked_up.push(None);
                received.push(record.clone());
            }
        }
    }
    if !unknown.is_empty() {
        return Err(unknown_entities(&unknown));
    }
    Ok(Inputs { frame: rows.into_frame()?, looked_up, records: received })
}

/// Adds each looked-up row's entity and staleness to its prediction.
pub fn annotate(predictions: &mut [Json], looked_up: &[Option<LookedUp>]) {
    for (prediction, looked_up) in predictions.iter_mut().zip(looked_up) {
        if let Some(looked_up) = looked_up {
            prediction["entity"] = looked_up.entity.clone();
            prediction["stale"] = json!(looked_up.stale);
        }
    }
}

/// The request's records: `records` as sent, or one `{KEY: value}` per
/// entry of `entities`.
fn request_records(model: &Model, request: &Json) -> Result<Vec<Map<String, Json>>, ApiError> {
    match (request.get("records"), request.get("entities")) {
        (Some(_), Some(_)) => {
            Err(ApiError::bad_request("send either \"records\" or \"entities\", not both"))
        }
        (None, Some(entities)) => {
            let store = model.card.store.as_ref().ok_or_else(|| {
                ApiError::bad_request(format!(
                    "field \"entities\": model {:?} was not trained from the feature store, so it \
                     cannot look up features; send \"records\"",
                    model.card.name
                ))
            })?;
            let entities = entities.as_array().ok_or_else(|| {
                ApiError::bad_request(format!(
                    "field \"entities\": expected an array of {} values",
                    store.key
                ))
            })?;
            entities
                .iter()
                .enumerate()
                .map(|(i, entity)| {
                    let key = key_text(entity).ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "entities[{i}]: expected a {} value (a string or a number)",
                            store.key
                        ))
                    })?;
                    let mut record = Map::new();
                    record.insert(store.key.clone(), Json::String(key));
                    Ok(record)
                })
                .collect()
        }
        (records, None) => {
            let records = records.and_then(Json::as_array).ok_or_else(|| {
                ApiError::bad_request(
                    "field \"records\": expected an array of objects (column → value), or \
                     \"entities\": an array of entity keys",
                )
            })?;
            records
                .iter()
                .enumerate()
                .map(|(i, record)| {
                    record.as_object().cloned().ok_or_else(|| {
                        ApiError::bad_request(format!("records[{i}]: expected an object"))
                    })
                })
                .collect()
        }
    }
}

/// An entity key sent as a string or a number, as text.
fn key_text(value: &Json) -> Option<String> {
    match value {
        Json::String(text) => Some(text.clone()),
        Json::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// The (view, key value) pairs a record asks for: each view whose key
/// column the record carries.
fn lookups(store: &StoreInputs, record: &Map<String, Json>) -> Vec<Lookup> {
    let mut wanted: Vec<Lookup> = Vec::new();
    for input in &store.inputs {
        let Some(key) = record.get(&input.key).and_then(key_text) else { continue };
        if !wanted.iter().any(|(view, _)| *view == input.view) {
            wanted.push((input.view.clone(), key));
        }
    }
    wanted
}

/// The record the model reads: the looked-up features (null when missing),
/// overridden by the record's own fields; and whether a row was stale.
fn merge(
    store: &StoreInputs,
    plan: &[Lookup],
    read: &[Option<OnlineRow>],
    record: &Map<String, Json>,
) -> (Map<String, Json>, bool) {
    let mut merged = Map::new();
    let mut stale = false;
    for input in &store.inputs {
        let row = plan.iter().position(|(view, _)| *view == input.view).and_then(|at| read.get(at));
        let value = match row {
            Some(Some(row)) => {
                stale |= is_stale(row.time, input.ttl_micros);
                row.values.get(&input.feature).cloned().unwrap_or(Json::Null)
            }
            _ => Json::Null,
        };
        merged.insert(input.column.clone(), value);
    }
    for (field, value) in record {
        merged.insert(field.clone(), value.clone());
    }
    (merged, stale)
}

/// The entity a prediction echoes: the model entity's key value, else the
/// keys the record carried.
fn echo(store: &StoreInputs, record: &Map<String, Json>) -> Json {
    if let Some(key) = record.get(&store.key) {
        return key.clone();
    }
    let keys: Map<String, Json> = store
        .inputs
        .iter()
        .filter_map(|input| record.get(&input.key).map(|v| (input.key.clone(), v.clone())))
        .collect();
    Json::Object(keys)
}

/// Unknown entities named in a 404, the first [`NAMED_UNKNOWN`] of them.
fn unknown_entities(unknown: &[String]) -> ApiError {
    let named = unknown.iter().take(NAMED_UNKNOWN).cloned().collect::<Vec<_>>().join(", ");
    let more = unknown.len().saturating_sub(NAMED_UNKNOWN);
    ApiError::not_found(format!(
        "unknown {}: {named}{} (no features in the online store)",
        if unknown.len() == 1 { "entity" } else { "entities" },
        if more > 0 { format!(" and {more} more") } else { String::new() }
    ))
}

/// `customer_id="C0042"`, for the unknown-entity message.
fn describe_keys(store: &StoreInputs, record: &Map<String, Json>) -> String {
    let mut described: Vec<String> = Vec::new();
    for input in &store.inputs {
        if let Some(value) = record.get(&input.key) {
            let text = format!("{}={value}", input.key);
            if !described.contains(&text) {
                described.push(text);
            }
        }
    }
    described.join(" ")
}
