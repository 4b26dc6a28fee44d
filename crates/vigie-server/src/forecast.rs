//! `POST /v1/models/{name}/forecast`: a forecast model's serving version
//! forecasts the series asked for (all of them when none is named),
//! `horizon` periods ahead, with 80% and 95% intervals: the rows `vigie
//! forecast --format json` writes, in the user's series and time columns.
//!
//! As `vigie forecast --data` does, the request's `data` rows (the training
//! columns) move each series forward from the history saved with the model
//! (rows with a target; no refitting) and give the future covariates (rows
//! without one); both are read by `Forecaster::newer_rows`, as the file is.
//! Each row's fields are checked here first, so a bad time, an unknown series
//! or a wrong type is a 400 naming `data[i].COLUMN`. Every answer, with the
//! rows it used, is recorded in the audit log first.
//!
//! Not yet: routing between versions of a forecast model.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use serde_json::{Map, Value as Json, json};
use vigie_core::{Column, ColumnData, ErrorCode, Frame, TextColumn};
use vigie_ml::forecast::{Forecaster, NewerRows, parse_time};

use crate::audit::{AuditLog, ForecastAnswer};
use crate::auth::{Caller, Right};
use crate::catalog::Shared;
use crate::error::ApiError;
use crate::rows::{parse_body, request_id};

/// A series asked for: its key in the model, and its series columns as sent.
type Asked = (String, Map<String, Json>);

/// The series keys a request names (all the model's series when it names none), each with
/// its series columns as sent.
fn requested(forecaster: &Forecaster, request: &Json) -> Result<Vec<Asked>, ApiError> {
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
        if let Some(first) = keys.iter().position(|(known, _)| known == key) {
            return Err(ApiError::bad_request(format!(
                "series[{i}]: the same series as series[{first}]; name each series once"
            )));
        }
        keys.push((key.to_owned(), object.clone()));
    }
    Ok(keys)
}

/// The rows of `data` in the request, checked field by field and read as
/// `vigie forecast --data` reads a file; with each asked series' rows as sent, for
/// the audit log.
struct Data {
    rows: NewerRows,
    sent: BTreeMap<String, Vec<Json>>,
}

/// `data[i].COLUMN`.
fn field(row: usize, column: &str) -> String {
    format!("data[{row}].{column}")
}

/// Reads the request's `data` (absent: no rows) for `forecaster`, whose series `asked`
/// are forecast: every row must name one of them.
fn data(forecaster: &Forecaster, request: &Json, asked: &[Asked]) -> Result<Data, ApiError> {
    let roles = &forecaster.card.columns;
    let list = match request.get("data") {
        None | Some(Json::Null) => {
            return Ok(Data { rows: NewerRows::default(), sent: BTreeMap::new() });
        }
        Some(Json::Array(list)) => list,
        Some(_) => {
            return Err(ApiError::bad_request(format!(
                "field \"data\": expected a list of rows, each an object of the training columns ({})",
                roles.columns().join(", ")
            )));
        }
    };
    let n_rows = list.len();
    let known = roles.columns();
    let mut series: Vec<Vec<Option<String>>> = vec![Vec::with_capacity(n_rows); roles.series.len()];
    let mut times = Vec::with_capacity(n_rows);
    let mut target = Vec::with_capacity(n_rows);
    let mut covariates: Vec<Vec<f64>> = vec![Vec::with_capacity(n_rows); roles.covariates.len()];
    let mut given = vec![false; roles.covariates.len()];
    let mut sent: BTreeMap<String, Vec<Json>> = BTreeMap::new();
    for (i, entry) in list.iter().enumerate() {
        let object = entry.as_object().ok_or_else(|| {
            ApiError::bad_request(format!("data[{i}]: expected an object (column → value)"))
        })?;
        if let Some(extra) = object.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(ApiError::bad_request(format!(
                "{}: not a column of model {:?}; its columns are: {}",
                field(i, extra),
                forecaster.card.name,
                known.join(", ")
            )));
        }
        let mut values = Vec::with_capacity(roles.series.len());
        for column in &roles.series {
            let text = match object.get(column) {
                Some(Json::String(text)) => text.clone(),
                Some(Json::Number(number)) => number.to_string(),
                Some(_) => {
                    return Err(ApiError::bad_request(format!(
                        "{}: expected text or a number",
                        field(i, column)
                    )));
                }
                None => {
                    return Err(ApiError::bad_request(format!("{}: missing", field(i, column))));
                }
            };
            values.push(text);
        }
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        let named = || {
            roles
                .series
                .iter()
                .zip(&values)
                .map(|(c, v)| format!("{c}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let Some(key) = forecaster.key_of(&refs) else {
            return Err(ApiError::bad_request(format!(
                "data[{i}]: model {:?} forecasts no series {}; a new series needs a new training",
                forecaster.card.name,
                named()
            )));
        };
        if !asked.iter().any(|(k, _)| k == key) {
            return Err(ApiError::bad_request(format!(
                "data[{i}]: series {} is not among the series asked for in \"series\"",
                named()
            )));
        }
        for (column, value) in series.iter_mut().zip(values) {
            column.push(Some(value));
        }
        // Checked here to name the field; kept as text so that the model reads it as it
        // read its training file (on its time zone's wall clock when written without an
        // offset).
        let time = match object.get(&roles.time) {
            Some(Json::String(text)) => {
                parse_time(text).map_err(|reason| {
                    ApiError::bad_request(format!("{}: {reason}", field(i, &roles.time)))
                })?;
                text.clone()
            }
            Some(_) => {
                return Err(ApiError::bad_request(format!(
                    "{}: expected a date or time as text, e.g. \"2024-03-05\"",
                    field(i, &roles.time)
                )));
            }
            None => {
                return Err(ApiError::bad_request(format!("{}: missing", field(i, &roles.time))));
            }
        };
        times.push(Some(time));
        let number = |column: &str| -> Result<f64, ApiError> {
            match object.get(column) {
                None | Some(Json::Null) => Ok(f64::NAN),
                Some(Json::Number(number)) => number.as_f64().ok_or_else(|| {
                    ApiError::bad_request(format!("{}: not a finite number", field(i, column)))
                }),
                Some(Json::Bool(flag)) => Ok(f64::from(u8::from(*flag))),
                // JSON says a value's type: "5" and "true" are text, refused as in a
                // tabular request.
                Some(_) => Err(ApiError::bad_request(format!(
                    "{}: expected a number, true or false, or null",
                    field(i, column)
                ))),
            }
        };
        target.push(number(&roles.target)?);
        for (idx, column) in roles.covariates.iter().enumerate() {
            covariates[idx].push(number(column)?);
            given[idx] |= object.contains_key(column);
        }
        sent.entry(key.to_owned()).or_default().push(entry.clone());
    }
    let mut columns: Vec<Column> = roles
        .series
        .iter()
        .zip(series)
        .map(|(name, values)| Column {
            name: name.clone(),
            data: ColumnData::Text(TextColumn::from_values(values.iter().map(Option::as_deref))),
        })
        .collect();
    columns.push(Column {
        name: roles.time.clone(),
        data: ColumnData::Text(TextColumn::from_values(times.iter().map(Option::as_deref))),
    });
    columns.push(Column { name: roles.target.clone(), data: ColumnData::Numeric(target) });
    // A covariate no row gives is left out, as a file without its column.
    for ((name, values), given) in roles.covariates.iter().zip(covariates).zip(given) {
        if given {
            columns.push(Column { name: name.clone(), data: ColumnData::Numeric(values) });
        }
    }
    let frame = Frame::new(columns)
        .map_err(|e| ApiError::from_code(ErrorCode::Internal, format!("data: {e}")))?;
    let rows = forecaster.newer_rows(&frame).map_err(|e| in_data(&e))?;
    Ok(Data { rows, sent })
}

/// A model's error about the request's rows, as a 400 (or its own class) whose
/// `data row N` the client can find.
fn in_data(error: &vigie_ml::MlError) -> ApiError {
    let text = error.to_string();
    let hint = if text.contains("data row ") { " (data row N is data[N-1])" } else { "" };
    ApiError::from_code(error.code(), format!("data: {text}{hint}"))
}

/// The fields of a forecast request.
const REQUEST_FIELDS: [&str; 3] = ["horizon", "series", "data"];

/// `POST /v1/models/{name}/forecast` with `{"horizon": H, "series": [{column: value}],
/// "data": [{column: value}]}`.
pub async fn forecast(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    Extension(audit_log): Extension<Arc<AuditLog>>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Right::Predict)?;
    let request = parse_body(&body?)?;
    let Some(fields) = request.as_object() else {
        return Err(ApiError::bad_request(
            "the body: expected a JSON object {\"horizon\", \"series\", \"data\"}, each optional",
        ));
    };
    if let Some(unknown) = fields.keys().find(|k| !REQUEST_FIELDS.contains(&k.as_str())) {
        return Err(ApiError::bad_request(format!(
            "field {unknown:?}: not a field of a forecast request; its fields are {}",
            REQUEST_FIELDS.join(", ")
        )));
    }
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
    let keys = requested(forecaster, &request)?;
    let data = data(forecaster, &request, &keys)?;
    let required = forecaster.model.required_future_covariates();
    if !required.is_empty() && data.rows.future.is_none() {
        let roles = &forecaster.card.columns;
        return Err(ApiError::bad_request(format!(
            "field \"data\": model {name:?} needs the future values of {} for every forecast \
             period: give rows of {}, {} and {} without {} for the periods after each series' last",
            required.join(", "),
            roles.series.join(", "),
            roles.time,
            required.join(", "),
            roles.target
        )));
    }
    let only: Vec<String> = keys.iter().map(|(key, _)| key.clone()).collect();
    let from_data = !data.sent.is_empty();
    let skipped = data.rows.skipped;
    let job = Arc::clone(&served);
    let rows = tokio::task::spawn_blocking(move || {
        job.forecaster.forecast(horizon, &data.rows, Some(&only)).map(|rows| (rows, data.sent))
    })
    .await
    .map_err(|e| ApiError::from_code(ErrorCode::Internal, format!("forecast: {e}")))?
    .map_err(|e| {
        if from_data {
            in_data(&e)
        } else {
            ApiError::from_code(e.code(), format!("forecast: {e}"))
        }
    })?;
    let (rows, mut sent) = rows;
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
        if let Some(rows) = sent.remove(key) {
            inputs.insert("data".to_owned(), Json::Array(rows));
        }
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
            "skipped_rows": skipped,
            "forecasts": forecasts,
        })),
    ))
}
