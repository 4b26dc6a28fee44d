//! MLflow's scoring protocol, as `mlflow models serve` speaks it: one model
//! per server (`vigie serve --model NAME`, or the only model served),
//! `POST /invocations` with `dataframe_split`, `dataframe_records`,
//! `instances` or `inputs`, and `{"predictions": [...]}` back. MLflow clients
//! expect nothing else in the body, so the model, version and routing variant
//! that answered are in the `X-Vigie-*` reply headers.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use serde_json::{Map, Value as Json, json};
use vigie_core::Frame;
use vigie_ml::Model;

use crate::audit::{AuditLog, Prediction};
use crate::auth::{Caller, Right};
use crate::catalog::Shared;
use crate::error::ApiError;
use crate::routing::{KeySources, ShadowAudit, pick};
use crate::rows::{Rows, parse_body, prediction, request_id};
use crate::scoring::{self, Scored};

pub async fn ping() -> &'static str {
    "\n"
}

/// The name of the model `/invocations` scores: the only one served.
fn the_model(shared: &Shared) -> Result<String, ApiError> {
    let catalog = shared.catalog();
    let mut models = catalog.models.keys();
    match (models.next(), models.next()) {
        (Some(only), None) => Ok(only.clone()),
        (None, _) => Err(ApiError::not_found("no model is served")),
        (Some(_), Some(_)) => Err(ApiError::bad_request(format!(
            "/invocations scores one model, and {} are served ({}); run `vigie serve --model NAME`, or use /v2/models/NAME/infer or /v1/models/NAME/predict",
            catalog.models.len(),
            catalog.models.keys().cloned().collect::<Vec<_>>().join(", ")
        ))),
    }
}

fn records(value: &Json, field: &str) -> Result<Vec<Map<String, Json>>, ApiError> {
    let rows = value.as_array().ok_or_else(|| {
        ApiError::bad_request(format!("field {field:?}: expected an array of records"))
    })?;
    rows.iter()
        .enumerate()
        .map(|(i, row)| {
            row.as_object().cloned().ok_or_else(|| {
                ApiError::bad_request(format!("{field}[{i}]: expected an object (column → value)"))
            })
        })
        .collect()
}

/// The four ways MLflow's scoring protocol sends rows; a request uses one.
const FORMATS: [&str; 4] = ["dataframe_split", "dataframe_records", "instances", "inputs"];

pub async fn invocations(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    Extension(audit_log): Extension<Arc<AuditLog>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Right::Predict)?;
    let body = body?;
    let name = the_model(&shared)?;
    let request = Arc::new(parse_body(&body)?);
    let id = request_id();
    let sources = KeySources { explicit: None, body: Some(&request), request_id: &id };
    let pick = pick(&shared, &name, &headers, &sources)?;
    let model = &pick.served.model;
    let frame = input_frame(model, &request)?;
    let Scored { frame, outputs, .. } = scoring::score(&pick.served, frame, false).await?;
    let predictions: Vec<Json> = outputs.iter().map(|o| prediction(model, o)).collect();
    let audited = audit_log
        .record(Prediction {
            request_id: &id,
            caller: &caller.subject,
            route: "/invocations",
            variant: &pick.variant,
            served: &pick.served,
            inputs: &frame,
            outputs: &outputs,
        })
        .await?;
    let reply_headers = pick.headers();
    let shadow_audit = ShadowAudit {
        log: &audit_log,
        request_id: &id,
        caller: &caller.subject,
        route: "/invocations",
    };
    pick.finish(&shared, &outputs, shadow_audit, move |model| input_frame(model, &request));
    Ok((audited, reply_headers, axum::Json(json!({"predictions": predictions}))))
}

/// The request, in any of MLflow's four shapes, as `model`'s input frame.
fn input_frame(model: &Model, request: &Json) -> Result<Frame, ApiError> {
    let object = request.as_object().ok_or_else(|| {
        ApiError::bad_request(
            "expected an object with dataframe_split, dataframe_records, instances or inputs",
        )
    })?;
    let given: Vec<&str> = FORMATS.into_iter().filter(|f| object.contains_key(*f)).collect();
    if given.len() > 1 {
        return Err(ApiError::bad_request(format!(
            "expected exactly one of dataframe_split, dataframe_records, instances or inputs; got {}",
            given.join(" and ")
        )));
    }
    let frame = if let Some(split) = object.get("dataframe_split") {
        let columns: Vec<String> = split
            .get("columns")
            .and_then(Json::as_array)
            .map(|c| {
                c.iter()
                    .map(|v| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()))
                    .collect()
            })
            .ok_or_else(|| {
                ApiError::bad_request("dataframe_split.columns: expected an array of names")
            })?;
        let data = split.get("data").and_then(Json::as_array).ok_or_else(|| {
            ApiError::bad_request("dataframe_split.data: expected an array of rows")
        })?;
        let mut rows = Rows::new(model, data.len());
        for (i, row) in data.iter().enumerate() {
            let cells = row.as_array().ok_or_else(|| {
                ApiError::bad_request(format!("dataframe_split.data[{i}]: expected an array"))
            })?;
            if cells.len() != columns.len() {
                return Err(ApiError::bad_request(format!(
                    "dataframe_split.data[{i}]: {} values for {} columns",
                    cells.len(),
                    columns.len()
                )));
            }
            let record: Map<String, Json> =
                columns.iter().cloned().zip(cells.iter().cloned()).collect();
            rows.push_record(i, &record);
        }
        rows.into_frame()?
    } else if let Some(found) = object
        .get("dataframe_records")
        .map(|v| ("dataframe_records", v))
        .or_else(|| object.get("instances").map(|v| ("instances", v)))
    {
        let (field, value) = found;
        let records = records(value, field)?;
        let mut rows = Rows::new(model, records.len());
        for (i, record) in records.iter().enumerate() {
            rows.push_record(i, record);
        }
        rows.into_frame()?
    } else if let Some(inputs) = object.get("inputs") {
        match inputs {
            Json::Object(columns) => {
                let n =
                    columns.values().filter_map(Json::as_array).map(Vec::len).max().unwrap_or(0);
                let mut rows = Rows::new(model, n);
                for (name, values) in columns {
                    let values = values.as_array().ok_or_else(|| {
                        ApiError::bad_request(format!("inputs.{name}: expected an array"))
                    })?;
                    rows.set_column(name, values.clone())?;
                }
                rows.into_frame()?
            }
            other => {
                let records = records(other, "inputs")?;
                let mut rows = Rows::new(model, records.len());
                for (i, record) in records.iter().enumerate() {
                    rows.push_record(i, record);
                }
                rows.into_frame()?
            }
        }
    } else {
        return Err(ApiError::bad_request(format!(
            "expected one of dataframe_split, dataframe_records, instances or inputs; got {}",
            object.keys().cloned().collect::<Vec<_>>().join(", ")
        )));
    };
    Ok(frame)
}
