//! One cell of a row, as a serving request or a single prediction carries it.

use serde::{Deserialize, Serialize};

/// A single input value: what one cell of a JSON request or CSV row holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// Absent, null, empty or NaN.
    Missing,
    /// A boolean.
    Bool(bool),
    /// A number (integers are carried as `f64`).
    Number(f64),
    /// A string.
    Text(String),
}

impl Value {
    /// The value as a number, when it is one (booleans are 0 and 1); NaN counts as missing.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            Value::Number(x) if !x.is_nan() => Some(*x),
            Value::Bool(b) => Some(f64::from(u8::from(*b))),
            _ => None,
        }
    }

    /// Whether the value is missing (absent, null or NaN).
    pub fn is_missing(&self) -> bool {
        matches!(self, Value::Missing) || matches!(self, Value::Number(x) if x.is_nan())
    }
}
