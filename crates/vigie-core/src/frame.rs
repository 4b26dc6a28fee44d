//! The in-memory table: named, typed columns of equal length.
//!
//! Numbers are `f64` with `NaN` as missing; booleans are kept apart so that
//! a model can say it was trained on one; strings are dictionary-encoded
//! (`u32` codes into a list of distinct values), which is what every encoder
//! and every tree split on categories reads. Readers of files and databases
//! (in `vigie-connectors`) build frames; nothing here reads a file.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::Value;

/// The type of a column as Vigie sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    /// Integers and floats.
    Numeric,
    /// True / false.
    Boolean,
    /// Strings: categories or free text.
    Text,
}

impl std::fmt::Display for ColumnKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ColumnKind::Numeric => "numeric",
            ColumnKind::Boolean => "boolean",
            ColumnKind::Text => "text",
        })
    }
}

impl std::str::FromStr for ColumnKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "numeric" | "number" | "float" | "int" => Ok(ColumnKind::Numeric),
            "boolean" | "bool" => Ok(ColumnKind::Boolean),
            "text" | "string" | "category" => Ok(ColumnKind::Text),
            other => {
                Err(format!("unknown column type {other:?}, expected numeric, boolean or text"))
            }
        }
    }
}

/// A dictionary-encoded string column.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TextColumn {
    /// One code per row: an index into `dictionary`, or [`TextColumn::MISSING`].
    pub codes: Vec<u32>,
    /// The distinct values, in order of first appearance.
    pub dictionary: Vec<String>,
}

impl TextColumn {
    /// The code of a missing value.
    pub const MISSING: u32 = u32::MAX;

    /// Builds a column from optional strings, assigning codes by first appearance.
    pub fn from_values<'a>(values: impl IntoIterator<Item = Option<&'a str>>) -> Self {
        // foldhash rather than SipHash: the keys are the file's own cells, and
        // hashing them was about 6% of reading a table of 600,000 rows.
        let mut index: HashMap<&'a str, u32, foldhash::fast::RandomState> = HashMap::default();
        let mut column = TextColumn::default();
        let mut previous: Option<(&'a str, u32)> = None;
        for value in values {
            let code = match value {
                None => Self::MISSING,
                Some(text) => match previous {
                    // Sorted files repeat a value row after row: no lookup then.
                    Some((last, code)) if last == text => code,
                    _ => {
                        let code = *index.entry(text).or_insert_with(|| {
                            column.dictionary.push(text.to_owned());
                            (column.dictionary.len() - 1) as u32
                        });
                        previous = Some((text, code));
                        code
                    }
                },
            };
            column.codes.push(code);
        }
        column
    }

    /// The columns `parts` one after the other, as [`TextColumn::from_values`]
    /// would build it from all their rows: codes still follow first appearance.
    pub fn concat(parts: impl IntoIterator<Item = TextColumn>) -> Self {
        let mut column = TextColumn::default();
        let mut index: HashMap<String, u32, foldhash::fast::RandomState> = HashMap::default();
        for part in parts {
            let codes: Vec<u32> = part
                .dictionary
                .into_iter()
                .map(|value| match index.get(&value) {
                    Some(&code) => code,
                    None => {
                        let code = column.dictionary.len() as u32;
                        column.dictionary.push(value.clone());
                        index.insert(value, code);
                        code
                    }
                })
                .collect();
            column.codes.extend(
                part.codes
                    .iter()
                    .map(|&code| if code == Self::MISSING { code } else { codes[code as usize] }),
            );
        }
        column
    }

    /// The value of row `row`, `None` when missing or out of range.
    pub fn get(&self, row: usize) -> Option<&str> {
        let code = *self.codes.get(row)?;
        self.dictionary.get(code as usize).map(String::as_str)
    }
}

/// The values of one column.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnData {
    /// Numbers, `NaN` for missing.
    Numeric(Vec<f64>),
    /// Booleans as 0.0 / 1.0, `NaN` for missing.
    Boolean(Vec<f64>),
    /// Dictionary-encoded strings.
    Text(TextColumn),
}

impl ColumnData {
    /// The column's kind.
    pub fn kind(&self) -> ColumnKind {
        match self {
            ColumnData::Numeric(_) => ColumnKind::Numeric,
            ColumnData::Boolean(_) => ColumnKind::Boolean,
            ColumnData::Text(_) => ColumnKind::Text,
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            ColumnData::Numeric(v) | ColumnData::Boolean(v) => v.len(),
            ColumnData::Text(t) => t.codes.len(),
        }
    }

    /// Whether the column has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row `row` as a [`Value`].
    pub fn value(&self, row: usize) -> Value {
        match self {
            ColumnData::Numeric(v) => match v.get(row) {
                Some(x) if !x.is_nan() => Value::Number(*x),
                _ => Value::Missing,
            },
            ColumnData::Boolean(v) => match v.get(row) {
                Some(x) if !x.is_nan() => Value::Bool(*x != 0.0),
                _ => Value::Missing,
            },
            ColumnData::Text(t) => t.get(row).map_or(Value::Missing, |s| Value::Text(s.to_owned())),
        }
    }

    /// The rows at `indices`, in that order.
    pub fn take(&self, indices: &[usize]) -> ColumnData {
        match self {
            ColumnData::Numeric(v) => ColumnData::Numeric(
                indices.iter().map(|&i| v.get(i).copied().unwrap_or(f64::NAN)).collect(),
            ),
            ColumnData::Boolean(v) => ColumnData::Boolean(
                indices.iter().map(|&i| v.get(i).copied().unwrap_or(f64::NAN)).collect(),
            ),
            ColumnData::Text(t) => ColumnData::Text(TextColumn {
                codes: indices
                    .iter()
                    .map(|&i| t.codes.get(i).copied().unwrap_or(TextColumn::MISSING))
                    .collect(),
                dictionary: t.dictionary.clone(),
            }),
        }
    }

    /// How many rows are missing.
    pub fn missing_count(&self) -> usize {
        match self {
            ColumnData::Numeric(v) | ColumnData::Boolean(v) => {
                v.iter().filter(|x| x.is_nan()).count()
            }
            ColumnData::Text(t) => t.codes.iter().filter(|&&c| c == TextColumn::MISSING).count(),
        }
    }
}

/// A named column.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// The column's name, as in the source's header.
    pub name: String,
    /// Its values.
    pub data: ColumnData,
}

/// Why a frame could not be built or read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FrameError {
    /// Two columns have different lengths.
    #[error("column {name:?} has {got} rows, expected {expected}")]
    LengthMismatch {
        /// The offending column.
        name: String,
        /// Its length.
        got: usize,
        /// The frame's length.
        expected: usize,
    },
    /// Two columns share a name.
    #[error("column {0:?} appears twice")]
    DuplicateColumn(String),
    /// A requested column does not exist.
    #[error("no column {name:?}; the columns are: {available}")]
    ColumnNotFound {
        /// The requested name.
        name: String,
        /// The frame's column names, comma-separated.
        available: String,
    },
}

/// A table of equally long, uniquely named columns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Frame {
    columns: Vec<Column>,
    n_rows: usize,
}

impl Frame {
    /// Builds a frame, checking lengths and names.
    pub fn new(columns: Vec<Column>) -> Result<Self, FrameError> {
        let n_rows = columns.first().map_or(0, |c| c.data.len());
        let mut seen = std::collections::HashSet::new();
        for column in &columns {
            if column.data.len() != n_rows {
                return Err(FrameError::LengthMismatch {
                    name: column.name.clone(),
                    got: column.data.len(),
                    expected: n_rows,
                });
            }
            if !seen.insert(column.name.as_str()) {
                return Err(FrameError::DuplicateColumn(column.name.clone()));
            }
        }
        Ok(Frame { columns, n_rows })
    }

    /// Builds a one-row-per-record frame from named values; a name absent from a
    /// record is missing there. Column kinds follow the first non-missing value.
    pub fn from_records(names: &[String], records: &[Vec<Value>]) -> Result<Self, FrameError> {
        let mut columns = Vec::with_capacity(names.len());
        for (idx, name) in names.iter().enumerate() {
            let cell = |r: &Vec<Value>| r.get(idx).cloned().unwrap_or(Value::Missing);
            let first = records.iter().map(cell).find(|v| !v.is_missing());
            let data = match first {
                Some(Value::Text(_)) => ColumnData::Text(TextColumn::from_values(
                    records.iter().map(|r| match r.get(idx) {
                        Some(Value::Text(s)) => Some(s.as_str()),
                        _ => None,
                    }),
                )),
                Some(Value::Bool(_)) => ColumnData::Boolean(
                    records.iter().map(|r| cell(r).as_number().unwrap_or(f64::NAN)).collect(),
                ),
                _ => ColumnData::Numeric(
                    records.iter().map(|r| cell(r).as_number().unwrap_or(f64::NAN)).collect(),
                ),
            };
            columns.push(Column { name: name.clone(), data });
        }
        if columns.is_empty() {
            return Ok(Frame { columns, n_rows: records.len() });
        }
        Frame::new(columns)
    }

    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        self.n_rows
    }

    /// The columns, in order.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// The column names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.columns.iter().map(|c| c.name.as_str()).collect()
    }

    /// The column called `name`.
    pub fn column(&self, name: &str) -> Result<&Column, FrameError> {
        self.columns.iter().find(|c| c.name == name).ok_or_else(|| FrameError::ColumnNotFound {
            name: name.to_owned(),
            available: self.names().join(", "),
        })
    }

    /// The rows at `indices`, in that order.
    pub fn take(&self, indices: &[usize]) -> Frame {
        Frame {
            columns: self
                .columns
                .iter()
                .map(|c| Column { name: c.name.clone(), data: c.data.take(indices) })
                .collect(),
            n_rows: indices.len(),
        }
    }

    /// The frame without the columns in `names`.
    pub fn without(&self, names: &[&str]) -> Frame {
        Frame {
            columns: self
                .columns
                .iter()
                .filter(|c| !names.contains(&c.name.as_str()))
                .cloned()
                .collect(),
            n_rows: self.n_rows,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_codes_follow_first_appearance_and_keep_missing() {
        let column = TextColumn::from_values([Some("b"), None, Some("a"), Some("b")]);
        assert_eq!(column.codes, vec![0, TextColumn::MISSING, 1, 0]);
        assert_eq!(column.dictionary, vec!["b", "a"]);
        assert_eq!(column.get(1), None);
        assert_eq!(column.get(3), Some("b"));
        // Runs of one value, broken by a missing one, keep their code.
        let runs = TextColumn::from_values([Some("b"), Some("b"), None, Some("b"), Some("a")]);
        assert_eq!(runs.codes, vec![0, 0, TextColumn::MISSING, 0, 1]);
        assert_eq!(runs.dictionary, vec!["b", "a"]);
    }

    #[test]
    fn columns_joined_are_the_column_of_all_their_rows() {
        let rows = [
            vec![Some("d2"), Some("d1"), None],
            vec![],
            vec![Some("d3"), Some("d1"), Some("d3"), None, Some("d2")],
            vec![None, Some("d4"), Some("d2")],
        ];
        let joined =
            TextColumn::concat(rows.iter().map(|part| TextColumn::from_values(part.clone())));
        let whole = TextColumn::from_values(rows.iter().flatten().copied());
        assert_eq!(joined, whole);
        assert_eq!(joined.dictionary, vec!["d2", "d1", "d3", "d4"]);
        assert_eq!(TextColumn::concat([]), TextColumn::default());
    }

    #[test]
    fn frame_rejects_ragged_and_duplicate_columns() {
        let a = Column { name: "a".into(), data: ColumnData::Numeric(vec![1.0, 2.0]) };
        let b = Column { name: "b".into(), data: ColumnData::Numeric(vec![1.0]) };
        assert_eq!(
            Frame::new(vec![a.clone(), b]).unwrap_err(),
            FrameError::LengthMismatch { name: "b".into(), got: 1, expected: 2 }
        );
        assert_eq!(
            Frame::new(vec![a.clone(), a]).unwrap_err(),
            FrameError::DuplicateColumn("a".into())
        );
    }

    #[test]
    fn records_become_typed_columns() {
        let names = vec!["x".to_owned(), "s".to_owned()];
        let records = vec![
            vec![Value::Number(1.5), Value::Text("u".into())],
            vec![Value::Missing, Value::Missing],
        ];
        let frame = Frame::from_records(&names, &records).unwrap();
        assert_eq!(frame.column("x").unwrap().data.kind(), ColumnKind::Numeric);
        assert_eq!(frame.column("s").unwrap().data.value(0), Value::Text("u".into()));
        assert_eq!(frame.column("s").unwrap().data.value(1), Value::Missing);
        assert!(frame.column("nope").is_err());
    }
}
