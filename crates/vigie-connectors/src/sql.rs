//! Owned SQL values and rows, shared by the SQL clients (PostgreSQL here, SQLite in the
//! registry) so that code above them reads one row type whatever the database.
//!
//! Only the four kinds the registry stores: integers, floats, text and NULL. A row's getters
//! convert between the widths a database may choose (an `INTEGER` column is 4 bytes in
//! PostgreSQL, 8 in SQLite) and refuse anything else with the column's position.

use crate::ConnectorError;

/// One value sent to or read from a SQL database.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    /// SQL NULL.
    Null,
    /// Any integer column or parameter.
    Int(i64),
    /// Any floating-point column or parameter.
    Real(f64),
    /// Any text column or parameter.
    Text(String),
}

impl From<i64> for SqlValue {
    fn from(value: i64) -> Self {
        SqlValue::Int(value)
    }
}

impl From<u32> for SqlValue {
    fn from(value: u32) -> Self {
        SqlValue::Int(i64::from(value))
    }
}

impl From<f64> for SqlValue {
    fn from(value: f64) -> Self {
        SqlValue::Real(value)
    }
}

impl From<&str> for SqlValue {
    fn from(value: &str) -> Self {
        SqlValue::Text(value.to_owned())
    }
}

impl From<&String> for SqlValue {
    fn from(value: &String) -> Self {
        SqlValue::Text(value.clone())
    }
}

impl From<String> for SqlValue {
    fn from(value: String) -> Self {
        SqlValue::Text(value)
    }
}

impl<T: Into<SqlValue>> From<Option<T>> for SqlValue {
    fn from(value: Option<T>) -> Self {
        value.map_or(SqlValue::Null, Into::into)
    }
}

/// One row of a query's result, its values in select-list order.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlRow {
    /// The values.
    pub values: Vec<SqlValue>,
}

impl SqlRow {
    fn value(&self, index: usize) -> Result<&SqlValue, ConnectorError> {
        self.values.get(index).ok_or_else(|| ConnectorError::SqlType {
            column: index,
            message: format!("the row has {} columns", self.values.len()),
        })
    }

    fn mismatch(index: usize, expected: &str, found: &SqlValue) -> ConnectorError {
        ConnectorError::SqlType {
            column: index,
            message: format!("expected {expected}, found {found:?}"),
        }
    }

    /// The text at `index`, or none when NULL.
    pub fn opt_text(&self, index: usize) -> Result<Option<String>, ConnectorError> {
        match self.value(index)? {
            SqlValue::Null => Ok(None),
            SqlValue::Text(text) => Ok(Some(text.clone())),
            other => Err(Self::mismatch(index, "text", other)),
        }
    }

    /// The text at `index` (NULL is an error).
    pub fn text(&self, index: usize) -> Result<String, ConnectorError> {
        self.opt_text(index)?.ok_or_else(|| Self::mismatch(index, "text", &SqlValue::Null))
    }

    /// The integer at `index`, or none when NULL.
    pub fn opt_int(&self, index: usize) -> Result<Option<i64>, ConnectorError> {
        match self.value(index)? {
            SqlValue::Null => Ok(None),
            SqlValue::Int(value) => Ok(Some(*value)),
            other => Err(Self::mismatch(index, "an integer", other)),
        }
    }

    /// The integer at `index` (NULL is an error).
    pub fn int(&self, index: usize) -> Result<i64, ConnectorError> {
        self.opt_int(index)?.ok_or_else(|| Self::mismatch(index, "an integer", &SqlValue::Null))
    }

    /// The non-negative 32-bit integer at `index`, or none when NULL (a version number).
    pub fn opt_u32(&self, index: usize) -> Result<Option<u32>, ConnectorError> {
        match self.opt_int(index)? {
            None => Ok(None),
            Some(value) => u32::try_from(value).map(Some).map_err(|_| {
                Self::mismatch(index, "a number from 0 to 2^32-1", &SqlValue::Int(value))
            }),
        }
    }

    /// The non-negative 32-bit integer at `index` (NULL is an error).
    pub fn u32(&self, index: usize) -> Result<u32, ConnectorError> {
        self.opt_u32(index)?.ok_or_else(|| Self::mismatch(index, "an integer", &SqlValue::Null))
    }

    /// The float at `index` (an integer is widened), or none when NULL.
    pub fn opt_real(&self, index: usize) -> Result<Option<f64>, ConnectorError> {
        match self.value(index)? {
            SqlValue::Null => Ok(None),
            SqlValue::Real(value) => Ok(Some(*value)),
            SqlValue::Int(value) => Ok(Some(*value as f64)),
            other => Err(Self::mismatch(index, "a number", other)),
        }
    }
}
