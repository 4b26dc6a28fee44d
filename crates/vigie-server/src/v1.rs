//! Vigie's own prediction route: records in, each with its score, its
//! decision at the model's threshold and, on request, its exact per-column
//! contributions; the reply names the request, model and version. Rows may
//! be entity keys whose features are read from the online store (`entity.rs`).

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use serde_json::{Map, Value as Json, json};

use crate::audit::{self, AuditLog, Audited, Prediction};
use crate::catalog::Shared;
use crate::entity;
use crate::error::ApiError;
use crate::online::OnlineReader;
use crate::rows::{parse_body, prediction, request_id, score};

pub async fn predict(
    State(shared): State<Arc<Shared>>,
    Extension(audit_log): Extension<Arc<AuditLog>>,
    Extension(online): Extension<Arc<OnlineReader>>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(Audited, axum::Json<Json>), ApiError> {
    let body = body?;
    let request = parse_body(&body)?;
    let variant = if request.get("version").is_none_or(Json::is_null) {
        audit::CHAMPION
    } else {
        audit::PINNED
    };
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
    let explain = match request.get("explain") {
        None | Some(Json::Null) => false,
        Some(Json::Bool(b)) => *b,
        Some(_) => return Err(ApiError::bad_request("field \"explain\": expected true or false")),
    };
    let model = &served.model;
    // Records as sent, or entities whose features are read from the online store.
    let entity::Inputs { frame, looked_up } = entity::inputs(&online, model, &request).await?;
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
    entity::annotate(&mut predictions, &looked_up);
    let request_id = request_id();
    let audited = audit_log
        .record(Prediction {
            request_id: &request_id,
            caller: audit::ANONYMOUS,
            route: "/v1/models/{name}/predict",
            variant,
            served: &served,
            inputs: &frame,
            outputs: &outputs,
        })
        .await?;
    Ok((
        audited,
        axum::Json(json!({
            "request_id": request_id,
            "model": served.name,
            "version": served.version,
            "predictions": predictions,
        })),
    ))
}
