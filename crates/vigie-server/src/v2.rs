//! The Open Inference Protocol (KServe V2) over REST: each model input is
//! one tensor named after the column, of shape `[rows]` (or `[rows, 1]`);
//! the outputs are `score` (`FP64`, `[rows]` or `[rows, classes]`) and
//! `label` (`BYTES`, `[rows]`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use serde_json::{Value as Json, json};
use vigie_core::ColumnKind;
use vigie_ml::Task;

use crate::auth::{Caller, Right};
use crate::catalog::{Served, Shared};
use crate::error::ApiError;
use crate::rows::{Rows, parse_body, prediction, request_id, score};

pub async fn server_metadata() -> axum::Json<Json> {
    axum::Json(json!({"name": "vigie", "version": env!("CARGO_PKG_VERSION"), "extensions": []}))
}

pub async fn live() -> axum::Json<Json> {
    axum::Json(json!({"live": true}))
}

pub async fn ready(State(shared): State<Arc<Shared>>) -> axum::Json<Json> {
    let catalog = shared.catalog();
    axum::Json(json!({"ready": true, "models": catalog.models.len()}))
}

fn datatype(kind: ColumnKind) -> &'static str {
    match kind {
        ColumnKind::Text => "BYTES",
        ColumnKind::Boolean => "BOOL",
        ColumnKind::Numeric => "FP64",
    }
}

fn metadata(served: &Served) -> Json {
    let model = &served.model;
    let score_shape = match model.card.task {
        Task::Multiclass { n_classes } => json!([-1, n_classes]),
        _ => json!([-1]),
    };
    json!({
        "name": served.name,
        "versions": [served.version.to_string()],
        "platform": "vigie",
        "inputs": model.pipeline.inputs.iter().map(|i| json!({"name": i.name, "datatype": datatype(i.kind), "shape": [-1]})).collect::<Vec<_>>(),
        "outputs": [
            {"name": "score", "datatype": "FP64", "shape": score_shape},
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
        ],
        "parameters": {"task": model.card.task.name(), "algorithm": model.card.algorithm, "classes": model.card.classes, "threshold": model.card.threshold, "aliases": served.aliases},
    })
}

fn parse_version(version: &str) -> Result<u32, ApiError> {
    version
        .parse()
        .map_err(|_| ApiError::bad_request(format!("version {version:?} is not a number")))
}

pub async fn model_metadata(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
) -> Result<axum::Json<Json>, ApiError> {
    let served = shared.serving(&name)?;
    Ok(axum::Json(metadata(&served)))
}

pub async fn version_metadata(
    State(shared): State<Arc<Shared>>,
    Path((name, version)): Path<(String, String)>,
) -> Result<axum::Json<Json>, ApiError> {
    let served = shared.version(&name, parse_version(&version)?).await?;
    Ok(axum::Json(metadata(&served)))
}

pub async fn model_ready(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
) -> Result<axum::Json<Json>, ApiError> {
    let served = shared.serving(&name)?;
    Ok(axum::Json(json!({"name": served.name, "ready": true})))
}

pub async fn version_ready(
    State(shared): State<Arc<Shared>>,
    Path((name, version)): Path<(String, String)>,
) -> Result<axum::Json<Json>, ApiError> {
    let served = shared.version(&name, parse_version(&version)?).await?;
    Ok(axum::Json(
        json!({"name": served.name, "version": served.version.to_string(), "ready": true}),
    ))
}

pub async fn infer(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<axum::Json<Json>, ApiError> {
    caller.require(Right::Predict)?;
    let body = body?;
    let served = shared.serving(&name)?;
    run(&served, &body).map(axum::Json)
}

pub async fn infer_version(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    Path((name, version)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<axum::Json<Json>, ApiError> {
    caller.require(Right::Predict)?;
    let body = body?;
    let served = shared.version(&name, parse_version(&version)?).await?;
    run(&served, &body).map(axum::Json)
}

fn run(served: &Served, body: &[u8]) -> Result<Json, ApiError> {
    let request = parse_body(body)?;
    let inputs = request
        .get("inputs")
        .and_then(Json::as_array)
        .ok_or_else(|| ApiError::bad_request("field \"inputs\": expected an array of tensors"))?;
    let mut n_rows = None;
    let mut columns = Vec::new();
    for (idx, tensor) in inputs.iter().enumerate() {
        let name = tensor.get("name").and_then(Json::as_str).ok_or_else(|| {
            ApiError::bad_request(format!("inputs[{idx}].name: expected a string"))
        })?;
        let shape: Vec<i64> = tensor
            .get("shape")
            .and_then(Json::as_array)
            .map(|dims| dims.iter().filter_map(Json::as_i64).collect())
            .ok_or_else(|| {
                ApiError::bad_request(format!("inputs[{idx}].shape: expected an array of integers"))
            })?;
        let rows = match shape.as_slice() {
            [rows] | [rows, 1] if *rows >= 0 => *rows as usize,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "inputs[{idx}] ({name:?}): shape {shape:?}; each input is one column, shape [rows] or [rows, 1]"
                )));
            }
        };
        let data = tensor.get("data").and_then(Json::as_array).ok_or_else(|| {
            ApiError::bad_request(format!("inputs[{idx}].data: expected an array"))
        })?;
        let data: Vec<Json> = data
            .iter()
            .flat_map(|v| match v {
                Json::Array(inner) => inner.clone(),
                other => vec![other.clone()],
            })
            .collect();
        if data.len() != rows {
            return Err(ApiError::bad_request(format!(
                "inputs[{idx}] ({name:?}): {} values for shape {shape:?}",
                data.len()
            )));
        }
        if n_rows.is_some_and(|n| n != rows) {
            return Err(ApiError::bad_request(format!(
                "inputs[{idx}] ({name:?}): {rows} rows, earlier inputs have {}",
                n_rows.unwrap_or(0)
            )));
        }
        n_rows = Some(rows);
        columns.push((name.to_owned(), data));
    }
    let n_rows = n_rows.ok_or_else(|| ApiError::bad_request("field \"inputs\": no tensor"))?;
    let mut rows = Rows::new(&served.model, n_rows);
    for (name, data) in columns {
        rows.set_column(&name, data)?;
    }
    let frame = rows.into_frame()?;
    let outputs = score(&served.model, &frame)?;
    let multiclass = matches!(served.model.card.task, Task::Multiclass { .. });
    let width = served.model.card.task.n_outputs();
    let scores: Vec<f64> = outputs.iter().flatten().copied().collect();
    let labels: Vec<Json> =
        outputs.iter().map(|o| prediction(&served.model, o)["label"].clone()).collect();
    let labels: Vec<String> =
        labels.iter().map(|l| l.as_str().map_or_else(|| l.to_string(), str::to_owned)).collect();
    Ok(json!({
        "model_name": served.name,
        "model_version": served.version.to_string(),
        "id": request.get("id").and_then(Json::as_str).map_or_else(request_id, str::to_owned),
        "parameters": {"threshold": served.model.card.threshold},
        "outputs": [
            {"name": "score", "datatype": "FP64", "shape": if multiclass { json!([n_rows, width]) } else { json!([n_rows]) }, "data": scores},
            {"name": "label", "datatype": "BYTES", "shape": [n_rows], "data": labels},
        ],
    }))
}
