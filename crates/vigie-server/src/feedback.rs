//! `POST /v1/feedback`: the ground truth of a past prediction, named by the
//! request id its reply carried (and the row within that request).
//!
//! The prediction is found in the audit log through an in-memory index
//! (`index.rs`), so feedback can only be given for a prediction that was
//! recorded. The label is checked against the model version that answered
//! (one of its classes, or a number for regression), stored durably in
//! `.vigie/feedback.db` (`store.rs`; a second label for the same row is a
//! 409), and counted in the live accuracy metrics (`live.rs`).
//!
//! Not yet: feedback in the audit log's hash chain, by entity key, or in bulk.

mod index;
mod live;
mod store;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use serde_json::{Value as Json, json};
use vigie_core::ErrorCode;
use vigie_ml::Task;

use crate::auth::{Caller, Right};
use crate::catalog::Shared;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::rows::parse_body;
use index::AuditIndex;
use live::{Live, Observed};
use store::{FeedbackStore, StoreError, Stored};

/// Probabilities are clipped to this before the log loss, as scikit-learn does.
const EPSILON: f64 = 1e-15;

/// Feedback: the audit index, the feedback table and the live metrics.
pub struct FeedbackLog {
    index: Mutex<AuditIndex>,
    store: Mutex<FeedbackStore>,
    live: Live,
}

/// One request's feedback, checked for shape.
struct Given {
    request_id: String,
    row: u64,
    label: Json,
}

/// The prediction a feedback is about, from its audit record.
struct Predicted {
    model: String,
    version: u32,
    variant: String,
    outputs: Json,
}

impl FeedbackLog {
    /// Opens the feedback table at `db` over the audit log in `audit_dir`,
    /// and seeds the live metrics from the table.
    pub fn open(
        db: &Path,
        audit_dir: &Path,
        metrics: &Metrics,
    ) -> Result<Arc<FeedbackLog>, String> {
        let store =
            FeedbackStore::open(db).map_err(|e| format!("{}: cannot open: {e}", db.display()))?;
        let live = Live::register(metrics).map_err(|e| format!("feedback metrics: {e}"))?;
        live.seed(&store.totals().map_err(|e| format!("{}: {e}", db.display()))?);
        Ok(Arc::new(FeedbackLog {
            index: Mutex::new(AuditIndex::new(audit_dir)),
            store: Mutex::new(store),
            live,
        }))
    }

    fn find(&self, request_id: &str) -> Result<Option<Json>, ApiError> {
        let mut index = self.index.lock().map_err(|_| internal("the audit index"))?;
        Ok(index.find(request_id)?)
    }

    fn insert(&self, stored: &Stored<'_>) -> Result<(), ApiError> {
        let store = self.store.lock().map_err(|_| internal("the feedback table"))?;
        store.insert(stored).map_err(|error| match error {
            StoreError::Duplicate => ApiError::from_code(
                ErrorCode::Conflict,
                format!(
                    "request {:?} row {} already has feedback; it is given once",
                    stored.request_id, stored.row
                ),
            ),
            StoreError::Sqlite(e) => {
                ApiError::from_code(ErrorCode::Unavailable, format!("feedback table: {e}"))
            }
        })
    }
}

fn internal(what: &str) -> ApiError {
    ApiError::from_code(ErrorCode::Internal, format!("{what} is unusable after a panic"))
}

/// `POST /v1/feedback`.
pub async fn feedback(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    Extension(log): Extension<Arc<FeedbackLog>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<axum::Json<Json>, ApiError> {
    caller.require(Right::Feedback)?;
    let given = given(&parse_body(&body?)?)?;
    let finder = Arc::clone(&log);
    let request_id = given.request_id.clone();
    let record = tokio::task::spawn_blocking(move || finder.find(&request_id))
        .await
        .map_err(|e| ApiError::from_code(ErrorCode::Internal, format!("feedback: {e}")))??
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no prediction with request id {:?} in the audit log",
                given.request_id
            ))
        })?;
    let predicted = predicted(&record, given.row)?;
    let served = shared.version(&predicted.model, predicted.version).await?;
    let observed = compare(served.model.card.task, &served.model.card.classes, &given, &predicted)?;
    let stored = Stored {
        request_id: &given.request_id,
        row: given.row,
        model: &predicted.model,
        version: predicted.version,
        variant: &predicted.variant,
        label: given.label.to_string(),
        correct: observed.correct,
        log_loss: observed.log_loss,
        absolute_error: observed.absolute_error,
    };
    log.insert(&stored)?;
    let version = predicted.version.to_string();
    log.live.observe(&[&predicted.model, &version, &predicted.variant], &observed);
    Ok(axum::Json(json!({
        "request_id": given.request_id,
        "row": given.row,
        "model": predicted.model,
        "version": predicted.version,
        "variant": predicted.variant,
        "label": given.label,
        "predicted": predicted.outputs.get("label").cloned().unwrap_or(Json::Null),
        "correct": observed.correct,
    })))
}

/// The body's fields, each checked for type.
fn given(body: &Json) -> Result<Given, ApiError> {
    let request_id = body
        .get("request_id")
        .and_then(Json::as_str)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request("field \"request_id\": expected the request id of a prediction")
        })?
        .to_owned();
    let row = match body.get("row") {
        None | Some(Json::Null) => 0,
        Some(row) => row.as_u64().ok_or_else(|| {
            ApiError::bad_request("field \"row\": expected a row number (0 for the first)")
        })?,
    };
    let label = match body.get("label") {
        None | Some(Json::Null) => {
            return Err(ApiError::bad_request("field \"label\": expected the true label"));
        }
        Some(label) => label.clone(),
    };
    Ok(Given { request_id, row, label })
}

/// The model, version, variant and outputs of row `row` of an audit record.
fn predicted(record: &Json, row: u64) -> Result<Predicted, ApiError> {
    let corrupted = |what: &str| {
        ApiError::from_code(ErrorCode::Internal, format!("the audit record has no {what}"))
    };
    let rows = record.get("rows").and_then(Json::as_array).ok_or_else(|| corrupted("rows"))?;
    let outputs = usize::try_from(row)
        .ok()
        .and_then(|at| rows.get(at))
        .and_then(|r| r.get("outputs"))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "field \"row\": the prediction has {} row(s), numbered from 0",
                rows.len()
            ))
        })?;
    Ok(Predicted {
        model: record.get("model").and_then(Json::as_str).ok_or_else(|| corrupted("model"))?.into(),
        version: record
            .get("version")
            .and_then(Json::as_u64)
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| corrupted("version"))?,
        variant: record.get("variant").and_then(Json::as_str).unwrap_or_default().to_owned(),
        outputs: outputs.clone(),
    })
}

/// Checks the label against the model's task and measures the prediction.
fn compare(
    task: Task,
    classes: &[String],
    given: &Given,
    predicted: &Predicted,
) -> Result<Observed, ApiError> {
    let outputs = &predicted.outputs;
    if task == Task::Regression {
        let truth = given.label.as_f64().ok_or_else(|| {
            ApiError::bad_request(format!(
                "field \"label\": model {:?} is a regression, so the label must be a number, got {}",
                predicted.model, given.label
            ))
        })?;
        let score = outputs.get("score").and_then(Json::as_f64).unwrap_or(f64::NAN);
        let error = (score - truth).abs();
        return Ok(Observed {
            correct: None,
            log_loss: None,
            absolute_error: error.is_finite().then_some(error),
        });
    }
    let truth =
        class_text(&given.label).filter(|text| classes.contains(text)).ok_or_else(|| {
            ApiError::bad_request(format!(
                "field \"label\": expected one of the classes of {:?}: {}; got {}",
                predicted.model,
                classes.join(", "),
                given.label
            ))
        })?;
    let decided = outputs.get("label").and_then(class_text);
    let probability = match task {
        Task::Binary => {
            let positive = outputs.get("score").and_then(Json::as_f64).unwrap_or(f64::NAN);
            if classes.get(1) == Some(&truth) { positive } else { 1.0 - positive }
        }
        _ => {
            outputs.get("scores").and_then(|s| s.get(&truth)).and_then(Json::as_f64).unwrap_or(0.0)
        }
    };
    let log_loss = -probability.clamp(EPSILON, 1.0 - EPSILON).ln();
    Ok(Observed {
        correct: Some(decided.as_deref() == Some(truth.as_str())),
        log_loss: log_loss.is_finite().then_some(log_loss),
        absolute_error: None,
    })
}

/// A class sent as a string, number or boolean, as its name.
fn class_text(value: &Json) -> Option<String> {
    match value {
        Json::String(text) => Some(text.clone()),
        Json::Number(number) => Some(number.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}
