//! Request rows into the model's input frame, and predictions back into
//! JSON: the one conversion every protocol goes through.
//!
//! Columns are typed by the model, not guessed from the values: a number
//! sent for a text column is read as its text, a string sent for a numeric
//! column is an error naming the field and the row, `null` is missing, and
//! a field the model reads that a record does not have at all is an error.

use serde_json::{Map, Value as Json, json};
use vigie_core::{Column, ColumnData, ColumnKind, Frame, TextColumn};
use vigie_ml::{Model, Task};

use crate::error::ApiError;

/// A request's rows: one JSON value per model input, per row.
pub struct Rows<'a> {
    model: &'a Model,
    /// Per input column, per row; `None` when the row lacks the field.
    cells: Vec<Vec<Option<Json>>>,
    n_rows: usize,
}

impl<'a> Rows<'a> {
    /// Rows for `model`, filled by [`Rows::push_record`] or [`Rows::set_column`].
    pub fn new(model: &'a Model, n_rows: usize) -> Self {
        let width = model.pipeline.inputs.len();
        Rows { model, cells: vec![vec![None; n_rows]; width], n_rows }
    }

    /// Takes one record (field → value); fields the model does not read are ignored.
    pub fn push_record(&mut self, row: usize, record: &Map<String, Json>) {
        for (idx, input) in self.model.pipeline.inputs.iter().enumerate() {
            if let (Some(value), Some(slot)) =
                (record.get(&input.name), self.cells[idx].get_mut(row))
            {
                *slot = Some(value.clone());
            }
        }
    }

    /// Takes one column's values; `false` when the model does not read it.
    pub fn set_column(&mut self, name: &str, values: Vec<Json>) -> Result<bool, ApiError> {
        let Some(idx) = self.model.pipeline.inputs.iter().position(|i| i.name == name) else {
            return Ok(false);
        };
        if values.len() != self.n_rows {
            return Err(ApiError::bad_request(format!(
                "input {name:?} has {} values for {} rows",
                values.len(),
                self.n_rows
            )));
        }
        self.cells[idx] = values.into_iter().map(Some).collect();
        Ok(true)
    }

    /// The frame of the model's inputs, typed as at training.
    pub fn into_frame(self) -> Result<Frame, ApiError> {
        let mut columns = Vec::with_capacity(self.cells.len());
        for (input, cells) in self.model.pipeline.inputs.iter().zip(self.cells) {
            let name = &input.name;
            if let Some(row) = cells.iter().position(Option::is_none) {
                return Err(ApiError::bad_request(format!(
                    "row {row}: missing field {name:?} (send null for a missing value); the model reads: {}",
                    self.model
                        .pipeline
                        .inputs
                        .iter()
                        .map(|i| i.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            let data = match input.kind {
                ColumnKind::Text => {
                    let texts: Vec<Option<String>> = cells
                        .iter()
                        .enumerate()
                        .map(|(row, cell)| match cell {
                            Some(Json::Null) | None => Ok(None),
                            Some(Json::String(s)) => Ok(Some(s.clone())),
                            Some(Json::Number(n)) => Ok(Some(n.to_string())),
                            Some(Json::Bool(b)) => Ok(Some(b.to_string())),
                            Some(other) => Err(wrong(name, row, "text", other)),
                        })
                        .collect::<Result<_, _>>()?;
                    ColumnData::Text(TextColumn::from_values(texts.iter().map(Option::as_deref)))
                }
                ColumnKind::Numeric | ColumnKind::Boolean => {
                    let numbers: Vec<f64> = cells
                        .iter()
                        .enumerate()
                        .map(|(row, cell)| match cell {
                            Some(Json::Null) | None => Ok(f64::NAN),
                            Some(Json::Number(n)) => Ok(n.as_f64().unwrap_or(f64::NAN)),
                            Some(Json::Bool(b)) => Ok(f64::from(u8::from(*b))),
                            Some(other) => Err(wrong(name, row, "a number", other)),
                        })
                        .collect::<Result<_, _>>()?;
                    if input.kind == ColumnKind::Boolean {
                        ColumnData::Boolean(numbers)
                    } else {
                        ColumnData::Numeric(numbers)
                    }
                }
            };
            columns.push(Column { name: name.clone(), data });
        }
        Frame::new(columns).map_err(|e| ApiError::bad_request(e.to_string()))
    }
}

fn wrong(name: &str, row: usize, expected: &str, got: &Json) -> ApiError {
    let kind = match got {
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
        _ => "a value",
    };
    ApiError::bad_request(format!(
        "row {row}: field {name:?} must be {expected}, got {kind}: {got}"
    ))
}

/// One row's prediction as JSON: `score` (or `scores` per class), `label`, `threshold`.
pub fn prediction(model: &Model, outputs: &[f64]) -> Json {
    let card = &model.card;
    let label = match model.decide(outputs) {
        vigie_core::Value::Text(class) => json!(class),
        vigie_core::Value::Number(x) => json!(x),
        _ => Json::Null,
    };
    match card.task {
        Task::Multiclass { .. } => {
            let scores: Map<String, Json> =
                card.classes.iter().zip(outputs).map(|(c, p)| (c.clone(), json!(p))).collect();
            json!({"scores": scores, "label": label})
        }
        Task::Binary => {
            json!({"score": outputs.first(), "label": label, "threshold": card.threshold})
        }
        Task::Regression => json!({"score": outputs.first(), "label": label}),
    }
}

/// Scores a frame: outputs per row.
pub fn score(model: &Model, frame: &Frame) -> Result<Vec<Vec<f64>>, ApiError> {
    let n_outputs = model.card.task.n_outputs().max(1);
    let flat = model.predict(frame)?;
    Ok(flat.chunks(n_outputs).map(<[f64]>::to_vec).collect())
}

/// Parses a JSON body, saying where it is malformed.
pub fn parse_body(body: &[u8]) -> Result<Json, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request("empty body: send a JSON document"));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "malformed JSON at line {} column {}: {e}",
            e.line(),
            e.column()
        ))
    })
}

/// A request id: time and a counter, unique within a process.
pub fn request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    format!("{nanos:016x}-{:06x}", COUNTER.fetch_add(1, Ordering::Relaxed))
}
