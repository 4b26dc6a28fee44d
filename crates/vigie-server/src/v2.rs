//! The Open Inference Protocol (KServe V2) over REST: each model input is
//! one tensor named after the column, of shape `[rows]` (or `[rows, 1]`);
//! the outputs are `score` (`FP64`, `[rows]` or `[rows, classes]`) and
//! `label` (`BYTES`, `[rows]`). Tensors travel as JSON `data` or, with the
//! binary data extension ([`binary`]), as raw bytes after the JSON.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value as Json, json};
use vigie_core::{ColumnKind, Frame};
use vigie_ml::{Model, Task};

use crate::audit::{AuditLog, Audited, Prediction};
use crate::auth::{Caller, Right};
use crate::binary;
use crate::catalog::{Served, Shared};
use crate::error::{ApiError, ErrorMessage};
use crate::readiness::Readiness;
use crate::routing::{KeySources, Pick, ShadowAudit, pick};
use crate::rows::{Rows, parse_body, prediction, request_id};
use crate::scoring::{self, Scored};

/// Restates an error in the protocol's shape, `{"error": "message"}`, which
/// its clients (tritonclient, KServe's SDK) read.
pub async fn protocol_error(response: Response) -> Response {
    match response.extensions().get::<ErrorMessage>() {
        Some(ErrorMessage(message)) => {
            (response.status(), axum::Json(json!({ "error": message }))).into_response()
        }
        None => response,
    }
}

pub async fn server_metadata() -> axum::Json<Json> {
    axum::Json(json!({"name": "vigie", "version": env!("CARGO_PKG_VERSION"), "extensions": []}))
}

pub async fn live() -> axum::Json<Json> {
    axum::Json(json!({"live": true}))
}

/// Server readiness: 200, or 503 naming what is not ready ([`Readiness`]).
pub async fn ready(
    State(shared): State<Arc<Shared>>,
    Extension(readiness): Extension<Arc<Readiness>>,
) -> Response {
    let catalog = shared.catalog();
    let models = catalog.models.len() + catalog.forecasters.len();
    readiness.report(&shared, None).await.respond(json!({ "models": models }))
}

/// The tensor datatypes the protocol names (FP16 and BF16 aside).
const DATATYPES: [&str; 12] = [
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP32",
    "FP64", "BYTES",
];

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
    Extension(readiness): Extension<Arc<Readiness>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let served = shared.serving(&name)?;
    let report = readiness.report(&shared, Some(&served)).await;
    Ok(report.respond(json!({ "name": served.name })))
}

pub async fn version_ready(
    State(shared): State<Arc<Shared>>,
    Extension(readiness): Extension<Arc<Readiness>>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let served = shared.version(&name, parse_version(&version)?).await?;
    let report = readiness.report(&shared, Some(&served)).await;
    Ok(report.respond(json!({"name": served.name, "version": served.version.to_string()})))
}

pub async fn infer(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    Extension(audit_log): Extension<Arc<AuditLog>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Right::Predict)?;
    let body = body?;
    let request = Arc::new(decode(&headers, &body)?);
    let id = request_id_of(&request)?;
    let explicit = parameter(&request, "", "routing_key")?;
    let sources = KeySources { explicit, body: Some(&request), request_id: &id };
    let pick = pick(&shared, &name, &headers, &sources)?;
    run(&shared, &audit_log, &caller, pick, request, id, "/v2/models/{name}/infer").await
}

pub async fn infer_version(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    Extension(audit_log): Extension<Arc<AuditLog>>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Right::Predict)?;
    let body = body?;
    let served = shared.version(&name, parse_version(&version)?).await?;
    let request = Arc::new(decode(&headers, &body)?);
    let id = request_id_of(&request)?;
    let route = "/v2/models/{name}/versions/{version}/infer";
    run(&shared, &audit_log, &caller, Pick::explicit(served), request, id, route).await
}

/// Scores a request with the picked version, records it in the audit log,
/// counts it and runs its shadow.
async fn run(
    shared: &Arc<Shared>,
    audit_log: &Arc<AuditLog>,
    caller: &Caller,
    pick: Pick,
    request: Arc<Json>,
    id: String,
    route: &'static str,
) -> Result<(Audited, [(HeaderName, HeaderValue); 3], Response), ApiError> {
    let served = Arc::clone(&pick.served);
    let frame = input_frame(&served.model, &request)?;
    let n_rows = frame.n_rows();
    let Scored { frame, outputs, .. } = scoring::score(&served, frame, false).await?;
    let multiclass = matches!(served.model.card.task, Task::Multiclass { .. });
    let width = served.model.card.task.n_outputs();
    let scores: Vec<f64> = outputs.iter().flatten().copied().collect();
    let labels: Vec<Json> =
        outputs.iter().map(|o| prediction(&served.model, o)["label"].clone()).collect();
    let labels: Vec<String> =
        labels.iter().map(|l| l.as_str().map_or_else(|| l.to_string(), str::to_owned)).collect();
    let score_shape = if multiclass { json!([n_rows, width]) } else { json!([n_rows]) };
    let mut reply = Reply::new(&request)?;
    reply.push("score", "FP64", score_shape, json!(scores), || binary::encode_fp64(&scores));
    reply.push("label", "BYTES", json!([n_rows]), json!(labels), || binary::encode_bytes(&labels));
    reply.requested.finish()?;
    let audited = audit_log
        .record(Prediction {
            request_id: &id,
            caller: &caller.subject,
            route,
            variant: &pick.variant,
            served: &served,
            inputs: &frame,
            outputs: &outputs,
        })
        .await?;
    let response = reply.into_response(json!({
        "model_name": served.name,
        "model_version": served.version.to_string(),
        "id": id,
        "parameters": {"threshold": served.model.card.threshold, "variant": pick.variant},
    }));
    let headers = pick.headers();
    let shadow_audit =
        ShadowAudit { log: audit_log, request_id: &id, caller: &caller.subject, route };
    pick.finish(shared, &outputs, shadow_audit, move |model| input_frame(model, &request));
    Ok((audited, headers, response))
}

/// The request's JSON with every binary tensor moved into its `data`, so
/// that what follows (and the shadow) reads one form.
fn decode(headers: &HeaderMap, body: &[u8]) -> Result<Json, ApiError> {
    let (header, tail) = binary::split(headers, body)?;
    let mut request = parse_body(header)?;
    let mut tail = binary::Tail::new(tail);
    if let Some(inputs) = request.get_mut("inputs").and_then(Json::as_array_mut) {
        for (idx, tensor) in inputs.iter_mut().enumerate() {
            let name = tensor.get("name").and_then(Json::as_str).unwrap_or_default().to_owned();
            // Only a tensor with parameters, so an object, is given its data.
            if let Some(data) = binary_tensor(tensor, idx, &name, &mut tail)? {
                tensor["data"] = Json::Array(data);
            }
        }
    }
    tail.finish()?;
    Ok(request)
}

/// The request's `id`, else a fresh one.
fn request_id_of(request: &Json) -> Result<String, ApiError> {
    match request.get("id") {
        None => Ok(request_id()),
        Some(Json::String(id)) => Ok(id.clone()),
        Some(other) => {
            Err(ApiError::bad_request(format!("field \"id\": expected a string, got {other}")))
        }
    }
}

/// The request's tensors (JSON `data`, after [`decode`]) as `model`'s input frame.
fn input_frame(model: &Model, request: &Json) -> Result<Frame, ApiError> {
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
        match tensor.get("datatype").and_then(Json::as_str) {
            Some(datatype) if DATATYPES.contains(&datatype) => {}
            _ => {
                return Err(ApiError::bad_request(format!(
                    "inputs[{idx}].datatype: expected one of {}",
                    DATATYPES.join(", ")
                )));
            }
        }
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
        let data: Vec<Json> = tensor
            .get("data")
            .and_then(Json::as_array)
            .ok_or_else(|| ApiError::bad_request(format!("inputs[{idx}].data: expected an array")))?
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
    let mut rows = Rows::new(model, n_rows);
    for (name, data) in columns {
        rows.set_column(&name, data)?;
    }
    rows.into_frame()
}

/// A tensor sent in binary (with a `binary_data_size` parameter): its
/// values, taken from the binary tail; `None` for a tensor sent as JSON.
fn binary_tensor(
    tensor: &Json,
    idx: usize,
    name: &str,
    tail: &mut binary::Tail<'_>,
) -> Result<Option<Vec<Json>>, ApiError> {
    let what = format!("inputs[{idx}] ({name:?})");
    let Some(size) = parameter(tensor, &format!("{what}."), "binary_data_size")? else {
        return Ok(None);
    };
    let size = size.as_u64().and_then(|s| usize::try_from(s).ok()).ok_or_else(|| {
        ApiError::bad_request(format!("{what}.parameters.binary_data_size: expected a byte count"))
    })?;
    let datatype = tensor.get("datatype").and_then(Json::as_str).ok_or_else(|| {
        ApiError::bad_request(format!("{what}.datatype: expected a string such as \"FP64\""))
    })?;
    binary::decode(datatype, tail.take(size, &what)?, &what).map(Some)
}

/// The outputs a request asked for, each as JSON `data` or in binary.
struct Requested {
    /// Output name → binary?, when the request names its outputs.
    named: Option<Vec<(String, bool, bool)>>,
    /// `parameters.binary_data_output`: every output in binary.
    all_binary: bool,
}

impl Requested {
    fn new(request: &Json) -> Result<Self, ApiError> {
        let all_binary =
            flag(parameter(request, "", "binary_data_output")?, "parameters.binary_data_output")?
                .unwrap_or(false);
        let Some(outputs) = request.get("outputs") else {
            return Ok(Requested { named: None, all_binary });
        };
        let outputs = outputs.as_array().ok_or_else(|| {
            ApiError::bad_request("field \"outputs\": expected an array of {name, parameters}")
        })?;
        let mut named = Vec::with_capacity(outputs.len());
        for (idx, output) in outputs.iter().enumerate() {
            let name = output.get("name").and_then(Json::as_str).ok_or_else(|| {
                ApiError::bad_request(format!("outputs[{idx}].name: expected a string"))
            })?;
            let field = format!("outputs[{idx}].");
            let binary = flag(
                parameter(output, &field, "binary_data")?,
                &format!("{field}parameters.binary_data"),
            )?
            .unwrap_or(all_binary);
            named.push((name.to_owned(), binary, false));
        }
        Ok(Requested { named: Some(named), all_binary })
    }

    /// Whether `name` is wanted, and in binary; marks it as answered.
    fn wants(&mut self, name: &str) -> Option<bool> {
        match &mut self.named {
            None => Some(self.all_binary),
            Some(named) => named.iter_mut().find(|(n, ..)| n == name).map(|(_, binary, seen)| {
                *seen = true;
                *binary
            }),
        }
    }

    /// An error naming any requested output the model does not have.
    fn finish(&self) -> Result<(), ApiError> {
        match self.named.iter().flatten().find(|(_, _, seen)| !seen) {
            Some((name, ..)) => Err(ApiError::bad_request(format!(
                "outputs: no output {name:?}; the outputs are \"score\" and \"label\""
            ))),
            None => Ok(()),
        }
    }
}

/// Parameter `key` of `container`'s `parameters` object (the request, an
/// input or an output, named by the prefix `field`), if given.
fn parameter<'a>(
    container: &'a Json,
    field: &str,
    key: &str,
) -> Result<Option<&'a Json>, ApiError> {
    match container.get("parameters") {
        None => Ok(None),
        Some(Json::Object(parameters)) => Ok(parameters.get(key)),
        Some(other) => Err(ApiError::bad_request(format!(
            "{field}parameters: expected an object, got {other}"
        ))),
    }
}

/// An optional boolean parameter; anything but true, false or absent is an error.
fn flag(value: Option<&Json>, field: &str) -> Result<Option<bool>, ApiError> {
    match value {
        None => Ok(None),
        Some(Json::Bool(b)) => Ok(Some(*b)),
        Some(other) => {
            Err(ApiError::bad_request(format!("{field}: expected true or false, got {other}")))
        }
    }
}

/// An infer reply being built: output descriptions and any binary tail.
struct Reply {
    requested: Requested,
    outputs: Vec<Json>,
    tail: Vec<u8>,
}

impl Reply {
    fn new(request: &Json) -> Result<Self, ApiError> {
        Ok(Reply { requested: Requested::new(request)?, outputs: Vec::new(), tail: Vec::new() })
    }

    fn push(
        &mut self,
        name: &str,
        datatype: &str,
        shape: Json,
        data: Json,
        encode: impl FnOnce() -> Vec<u8>,
    ) {
        match self.requested.wants(name) {
            None => {}
            Some(false) => {
                self.outputs.push(
                    json!({"name": name, "datatype": datatype, "shape": shape, "data": data}),
                );
            }
            Some(true) => {
                let bytes = encode();
                self.outputs.push(json!({"name": name, "datatype": datatype, "shape": shape, "parameters": {"binary_data_size": bytes.len()}}));
                self.tail.extend_from_slice(&bytes);
            }
        }
    }

    /// The reply: `head` with the outputs, and the binary tail if any.
    fn into_response(self, mut head: Json) -> Response {
        head["outputs"] = Json::Array(self.outputs);
        if self.tail.is_empty() {
            return axum::Json(head).into_response();
        }
        let mut body = head.to_string().into_bytes();
        let header_length = body.len();
        body.extend_from_slice(&self.tail);
        (
            [
                (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
                (HeaderName::from_static(binary::HEADER_LENGTH), header_length.to_string()),
            ],
            body,
        )
            .into_response()
    }
}
