//! Vigie's own prediction route: records in, each with its score, its
//! decision at the model's threshold and, on request, its exact per-column
//! contributions; the reply names the request, model, version and routing
//! variant. Rows may be entity keys whose features are read from the online
//! store (`entity.rs`).

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use serde_json::{Map, Value as Json, json};
use vigie_core::Frame;
use vigie_ml::Model;

use crate::audit::{AuditLog, Prediction};
use crate::auth::{Caller, Right};
use crate::catalog::Shared;
use crate::entity;
use crate::error::ApiError;
use crate::online::OnlineReader;
use crate::routing::{KeySources, Pick, ShadowAudit, pick};
use crate::rows::{Rows, parse_body, prediction, request_id};
use crate::scoring::{self, Scored};

/// The `records` of a request as `model`'s input frame.
fn input_frame(model: &Model, request: &Json) -> Result<Frame, ApiError> {
    let records = request.get("records").and_then(Json::as_array).ok_or_else(|| {
        ApiError::bad_request("field \"records\": expected an array of objects (column → value)")
    })?;
    let mut rows = Rows::new(model, records.len());
    for (i, record) in records.iter().enumerate() {
        let record = record
            .as_object()
            .ok_or_else(|| ApiError::bad_request(format!("records[{i}]: expected an object")))?;
        rows.push_record(i, record);
    }
    rows.into_frame()
}

pub async fn predict(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    Extension(audit_log): Extension<Arc<AuditLog>>,
    Extension(online): Extension<Arc<OnlineReader>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Right::Predict)?;
    let body = body?;
    let request = Arc::new(parse_body(&body)?);
    let id = request_id();
    let pick = match request.get("version") {
        None | Some(Json::Null) => {
            let sources =
                KeySources { explicit: request.get("key"), body: Some(&request), request_id: &id };
            pick(&shared, &name, &headers, &sources)?
        }
        Some(version) => {
            let version =
                version.as_u64().and_then(|v| u32::try_from(v).ok()).ok_or_else(|| {
                    ApiError::bad_request("field \"version\": expected a version number")
                })?;
            Pick::explicit(shared.version(&name, version).await?)
        }
    };
    let served = Arc::clone(&pick.served);
    let explain = match request.get("explain") {
        None | Some(Json::Null) => false,
        Some(Json::Bool(b)) => *b,
        Some(_) => return Err(ApiError::bad_request("field \"explain\": expected true or false")),
    };
    if explain {
        caller.require(Right::Explain)?;
    }
    let model = &served.model;
    // Records as sent, or entities whose features are read from the online store.
    let entity::Inputs { frame, looked_up, records } =
        entity::inputs(&online, model, &request).await?;
    let Scored { frame, outputs, explanation } = scoring::score(&served, frame, explain).await?;
    let mut predictions: Vec<Json> = outputs.iter().map(|o| prediction(model, o)).collect();
    if let Some(explanation) = explanation {
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
    entity::annotate(&mut predictions, &looked_up);
    let audited = audit_log
        .record(Prediction {
            request_id: &id,
            caller: &caller.subject,
            route: "/v1/models/{name}/predict",
            variant: &pick.variant,
            served: &served,
            inputs: &frame,
            outputs: &outputs,
        })
        .await?;
    let reply_headers = pick.headers();
    let variant = pick.variant.clone();
    // The shadow scores the rows the answering version received, lookups included.
    let shadow_request = json!({ "records": records });
    let shadow_audit = ShadowAudit {
        log: &audit_log,
        request_id: &id,
        caller: &caller.subject,
        route: "/v1/models/{name}/predict",
    };
    pick.finish(&shared, &outputs, shadow_audit, move |model| input_frame(model, &shadow_request));
    Ok((
        audited,
        reply_headers,
        axum::Json(json!({
            "request_id": id,
            "model": served.name,
            "version": served.version,
            "variant": variant,
            "predictions": predictions,
        })),
    ))
}
