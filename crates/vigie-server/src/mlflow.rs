//! MLflow's scoring protocol, as `mlflow models serve` speaks it: one model
//! per server (`vigie serve --model NAME`, or the only model served),
//! `POST /invocations` with `dataframe_split`, `dataframe_records`,
//! `instances` or `inputs`, and `{"predictions": [...]}` back.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use serde_json::{Map, Value as Json, json};

use crate::auth::{Caller, Right};
use crate::catalog::{Served, Shared};
use crate::error::ApiError;
use crate::rows::{Rows, parse_body, prediction, score};

pub async fn ping() -> &'static str {
    "\n"
}

/// The model `/invocations` scores: the only one served.
fn the_model(shared: &Shared) -> Result<Arc<Served>, ApiError> {
    let catalog = shared.catalog();
    let mut models = catalog.models.values();
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

pub async fn invocations(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<axum::Json<Json>, ApiError> {
    caller.require(Right::Predict)?;
    let body = body?;
    let served = the_model(&shared)?;
    let request = parse_body(&body)?;
    let object = request.as_object().ok_or_else(|| {
        ApiError::bad_request(
            "expected an object with dataframe_split, dataframe_records, instances or inputs",
        )
    })?;
    let model = &served.model;
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
    let outputs = score(model, &frame)?;
    let predictions: Vec<Json> = outputs.iter().map(|o| prediction(model, o)).collect();
    Ok(axum::Json(json!({"predictions": predictions})))
}
