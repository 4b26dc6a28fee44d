//! `POST /v1/models/{name}/forecast`: a forecast model's serving version
//! forecasts the series asked for (all of them when none is named), from the
//! history saved with it, `horizon` periods ahead, with 80% and 95%
//! intervals: the rows `vigie forecast --format json` writes, in the user's
//! series and time columns. Every answer is recorded in the audit log first.
//!
//! Not yet: newer history or future covariates in the request (a model that
//! needs future covariates is refused with a 400 naming them), routing
//! between versions of a forecast model.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use serde_json::{Map, Value as Json, json};
use vigie_core::ErrorCode;

use crate::audit::{AuditLog, ForecastAnswer};
use crate::auth::{Caller, Right};
use crate::catalog::Shared;
use crate::error::ApiError;
use crate::rows::{parse_body, request_id};

/// A series asked for: its key in the model, and its series columns as sent.
type Asked = (String, Map<String, Json>);

/// The series keys a request names (all the model's series when it names none), each with
/// its series columns as sent.
fn requested(
    forecaster: &vigie_ml::forecast::Forecaster,
    request: &Json,
) -> Result<Vec<Asked>, ApiError> {
    let columns = &forecaster.card.columns.series;
    let all = || {
        forecaster
            .keys
            .iter()
            .map(|(key, values)| {
                let named = columns.iter().cloned().zip(values.iter().map(|v| json!(v))).collect();
                (key.clone(), named)
            })
            .collect()
    };
    let list = match request.get("series") {
        None | Some(Json::Null) => return Ok(all()),
        Some(Json::Array(list)) => list,
        Some(_) => {
            return Err(ApiError::bad_request(format!(
                "field \"series\": expected a list of objects naming each series by its columns ({})",
                columns.join(", ")
            )));
        }
    };
    let mut keys = Vec::with_capacity(list.len());
    for (i, entry) in list.iter().enumerate() {
        let object = entry.as_object().ok_or_else(|| {
            ApiError::bad_request(format!("series[{i}]: expected an object (column → value)"))
        })?;
        if let Some(extra) = object.keys().find(|k| !columns.contains(k)) {
            return Err(ApiError::bad_request(format!(
                "series[{i}].{extra}: not a series column; the model's are: {}",
                columns.join(", ")
            )));
        }
        let mut values = Vec::with_capacity(columns.len());
        for column in columns {
            let text = match object.get(column) {
                Some(Json::String(text)) => text.clone(),
                Some(Json::Number(number)) => number.to_string(),
                Some(_) => {
                    return Err(ApiError::bad_request(format!(
                        "series[{i}].{column}: expected text or a number"
                    )));
                }
                None => {
                    return Err(ApiError::bad_request(format!("series[{i}].{column}: missing")));
                }
            };
            values.push(text);
        }
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        let key = forecaster.key_of(&refs).ok_or_else(|| {
            ApiError::not_found(format!(
                "series[{i}]: model {:?} forecasts no series {}",
                forecaster.card.name,
                columns
                    .iter()
                    .zip(&values)
                    .map(|(c, v)| format!("{c}={v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        keys.push((key.to_owned(), object.clone()));
    }
    Ok(keys)
}

/// `POST /v1/models/{name}/forecast` with `{"horizon": H, "series": [{column: value}]}`.
pub async fn forecast(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    Extension(audit_log): Extension<Arc<AuditLog>>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Right::Predict)?;
    let request = parse_body(&body?)?;
    let catalog = shared.catalog();
    let Some(served) = catalog.forecasters.get(&name).cloned() else {
        let hint = if catalog.models.contains_key(&name) {
            "; it is a tabular model: POST /v1/models/{name}/predict".to_owned()
        } else {
            let known: Vec<&str> = catalog.forecasters.keys().map(String::as_str).collect();
            format!(
                "; the forecast models served are: {}",
                if known.is_empty() { "(none)".to_owned() } else { known.join(", ") }
            )
        };
        return Err(ApiError::not_found(format!("no forecast model {name:?}{hint}")));
    };
    let forecaster = &served.forecaster;
    let most = forecaster.model.horizon();
    let horizon = match request.get("horizon") {
        Some(value) => value
            .as_u64()
            .filter(|h| (1..=most as u64).contains(h))
            .map(|h| h as usize)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "field \"horizon\": expected a whole number of periods from 1 to {most}, the \
                     horizon model {name:?} was fitted for"
                ))
            })?,
        None => most,
    };
    let required = forecaster.model.required_future_covariates();
    if !required.is_empty() {
        return Err(ApiError::bad_request(format!(
            "model {name:?} needs the future values of {} for every forecast period, which this \
             route does not take yet; use `vigie forecast --data FILE`",
            required.join(", ")
        )));
    }
    let keys = requested(forecaster, &request)?;
    let job = Arc::clone(&served);
    let rows =
        tokio::task::spawn_blocking(move || job.forecaster.model.forecast(horizon, None, None))
            .await
            .map_err(|e| ApiError::from_code(ErrorCode::Internal, format!("forecast: {e}")))?
            .map_err(|e| ApiError::from_code(e.code(), format!("forecast: {e}")))?;
    let mut forecasts = Vec::new();
    let mut audited_rows = Vec::with_capacity(keys.len());
    for (key, columns) in &keys {
        let series: Vec<Json> = rows
            .iter()
            .filter(|row| &row.series == key)
            .map(|row| Json::Object(forecaster.record(row)))
            .collect();
        let mut inputs = columns.clone();
        inputs.insert("horizon".to_owned(), json!(horizon));
        audited_rows.push(json!({"inputs": inputs, "outputs": series}));
        forecasts.extend(series);
    }
    let id = request_id();
    let audited = audit_log
        .record_forecast(ForecastAnswer {
            request_id: &id,
            caller: &caller.subject,
            served: &served,
            rows: audited_rows,
        })
        .await?;
    Ok((
        audited,
        axum::Json(json!({
            "request_id": id,
            "model": served.name,
            "version": served.version,
            "horizon": horizon,
            "forecasts": forecasts,
        })),
    ))
}
