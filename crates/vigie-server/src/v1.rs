//! Vigie's own prediction route: records in, each with its score, its
//! decision at the model's threshold and, on request, its exact per-column
//! contributions; the reply names the request, model and version.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use serde_json::{Map, Value as Json, json};

use crate::auth::{Caller, Right};
use crate::catalog::Shared;
use crate::error::ApiError;
use crate::rows::{Rows, parse_body, prediction, request_id, score};

pub async fn predict(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<axum::Json<Json>, ApiError> {
    caller.require(Right::Predict)?;
    let body = body?;
    let request = parse_body(&body)?;
    let served = match request.get("version") {
        None | Some(Json::Null) => shared.serving(&name)?,
        Some(version) => {
            let version =
                version.as_u64().and_then(|v| u32::try_from(v).ok()).ok_or_else(|| {
                    ApiError::bad_request("field \"version\": expected a version number")
                })?;
            shared.version(&name, version).await?
        }
    };
    let records = request.get("records").and_then(Json::as_array).ok_or_else(|| {
        ApiError::bad_request("field \"records\": expected an array of objects (column → value)")
    })?;
    let explain = match request.get("explain") {
        None | Some(Json::Null) => false,
        Some(Json::Bool(b)) => *b,
        Some(_) => return Err(ApiError::bad_request("field \"explain\": expected true or false")),
    };
    if explain {
        caller.require(Right::Explain)?;
    }
    let model = &served.model;
    let mut rows = Rows::new(model, records.len());
    for (i, record) in records.iter().enumerate() {
        let record = record
            .as_object()
            .ok_or_else(|| ApiError::bad_request(format!("records[{i}]: expected an object")))?;
        rows.push_record(i, record);
    }
    let frame = rows.into_frame()?;
    let outputs = score(model, &frame)?;
    let mut predictions: Vec<Json> = outputs.iter().map(|o| prediction(model, o)).collect();
    if explain {
        let explanation = model.explain(&frame)?;
        let width = explanation.columns.len();
        let per_row = explanation.n_outputs * width;
        for (row, prediction) in predictions.iter_mut().enumerate() {
            let contributions = &explanation.contributions[row * per_row..row * per_row + width];
            let by_column: Map<String, Json> = explanation
                .columns
                .iter()
                .zip(contributions)
                .map(|(c, v)| (c.clone(), json!(v)))
                .collect();
            prediction["contributions"] = Json::Object(by_column);
            prediction["bias"] = json!(explanation.bias[row * explanation.n_outputs]);
        }
    }
    Ok(axum::Json(json!({
        "request_id": request_id(),
        "model": served.name,
        "version": served.version,
        "predictions": predictions,
    })))
}
