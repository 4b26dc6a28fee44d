//! Turning the label column into a training target: which task, which
//! classes, which one is positive, and a numeric `y` per row.

use vigie_core::{ColumnData, Frame};

use crate::error::{MlError, Result};
use crate::matrix::Task;

/// The task as the user asked for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TaskChoice {
    /// Decide from the label: two distinct values → binary, text with more → multiclass, else regression.
    #[default]
    Auto,
    /// Two classes.
    Binary,
    /// Several classes.
    Multiclass,
    /// A number.
    Regression,
}

impl std::str::FromStr for TaskChoice {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(TaskChoice::Auto),
            "binary" => Ok(TaskChoice::Binary),
            "multiclass" => Ok(TaskChoice::Multiclass),
            "regression" => Ok(TaskChoice::Regression),
            other => Err(format!(
                "unknown task {other:?}, expected auto, binary, multiclass or regression"
            )),
        }
    }
}

/// The prepared target.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The task.
    pub task: Task,
    /// One value per row: 0/1, a class index or the regression value.
    pub y: Vec<f32>,
    /// Class names in output order (binary: negative then positive).
    pub classes: Vec<String>,
}

/// Most classes a multiclass label may have.
const MAX_CLASSES: usize = 100;

fn class_name(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 { format!("{}", x as i64) } else { format!("{x}") }
}

/// Builds the target from column `label` of `frame`. `positive` names the
/// positive class of a binary task (default: the minority class).
pub fn prepare(
    frame: &Frame,
    label: &str,
    choice: TaskChoice,
    positive: Option<&str>,
) -> Result<Target> {
    let column =
        frame.column(label).map_err(|e| MlError::InvalidData(format!("label column: {e}")))?;
    let missing = column.data.missing_count();
    if missing > 0 {
        let first =
            (0..column.data.len()).find(|&i| column.data.value(i).is_missing()).unwrap_or(0);
        return Err(MlError::InvalidData(format!(
            "label column {label:?} is missing on {missing} rows (first at data row {}); drop or fill them first",
            first + 1
        )));
    }
    if frame.n_rows() == 0 {
        return Err(MlError::InvalidData("the table has no rows".into()));
    }
    // Distinct values as strings, with counts, in a stable order.
    let (names, codes): (Vec<String>, Vec<usize>) = match &column.data {
        ColumnData::Text(text) => {
            (text.dictionary.clone(), text.codes.iter().map(|&c| c as usize).collect())
        }
        ColumnData::Boolean(values) => (
            vec!["false".into(), "true".into()],
            values.iter().map(|&x| usize::from(x != 0.0)).collect(),
        ),
        ColumnData::Numeric(values) => {
            let is_numeric_target = match choice {
                TaskChoice::Regression => true,
                TaskChoice::Binary | TaskChoice::Multiclass => false,
                TaskChoice::Auto => {
                    let mut distinct: Vec<f64> = values.clone();
                    distinct.sort_by(f64::total_cmp);
                    distinct.dedup();
                    distinct.len() > 2
                }
            };
            if is_numeric_target {
                if let Some(row) = values.iter().position(|x| !x.is_finite()) {
                    return Err(MlError::InvalidData(format!(
                        "label column {label:?} is not finite at data row {}",
                        row + 1
                    )));
                }
                return Ok(Target {
                    task: Task::Regression,
                    y: values.iter().map(|&x| x as f32).collect(),
                    classes: Vec::new(),
                });
            }
            let mut distinct: Vec<f64> = values.clone();
            distinct.sort_by(f64::total_cmp);
            distinct.dedup();
            let codes = values.iter().map(|x| distinct.partition_point(|d| d < x)).collect();
            (distinct.into_iter().map(class_name).collect(), codes)
        }
    };
    if choice == TaskChoice::Regression {
        return Err(MlError::InvalidData(format!(
            "label column {label:?} is {}, a regression needs numbers",
            column.data.kind()
        )));
    }
    let mut counts = vec![0usize; names.len()];
    for &c in &codes {
        counts[c] += 1;
    }
    // Keep classes that occur, sorted by name for a stable output order.
    let mut present: Vec<usize> = (0..names.len()).filter(|&c| counts[c] > 0).collect();
    present.sort_by(|&a, &b| names[a].cmp(&names[b]));
    if present.len() < 2 {
        let only = present.first().map_or("", |&c| names[c].as_str());
        return Err(MlError::InvalidData(format!(
            "label column {label:?} has a single class {only:?}; a classifier needs two"
        )));
    }
    let binary = match choice {
        TaskChoice::Binary => {
            if present.len() != 2 {
                return Err(MlError::InvalidData(format!(
                    "label column {label:?} has {} classes, --task binary needs exactly two",
                    present.len()
                )));
            }
            true
        }
        TaskChoice::Multiclass => false,
        _ => present.len() == 2,
    };
    if binary {
        let positive_code = match positive {
            Some(wanted) => *present.iter().find(|&&c| names[c] == wanted).ok_or_else(|| {
                MlError::InvalidData(format!(
                    "--positive {wanted:?} is not a value of label column {label:?}; its values are {}",
                    present.iter().map(|&c| format!("{:?}", names[c])).collect::<Vec<_>>().join(", ")
                ))
            })?,
            // The minority class; on a tie, the later name.
            None => *present.iter().min_by_key(|&&c| (counts[c], std::cmp::Reverse(names[c].clone()))).unwrap_or(&present[1]),
        };
        let negative_code = *present.iter().find(|&&c| c != positive_code).unwrap_or(&present[0]);
        let y = codes.iter().map(|&c| if c == positive_code { 1.0 } else { 0.0 }).collect();
        return Ok(Target {
            task: Task::Binary,
            y,
            classes: vec![names[negative_code].clone(), names[positive_code].clone()],
        });
    }
    if present.len() > MAX_CLASSES {
        return Err(MlError::InvalidData(format!(
            "label column {label:?} has {} distinct values, more than {MAX_CLASSES} classes; use --task regression if it is a number",
            present.len()
        )));
    }
    let mut index = vec![0usize; names.len()];
    for (k, &c) in present.iter().enumerate() {
        index[c] = k;
    }
    Ok(Target {
        task: Task::Multiclass { n_classes: present.len() },
        y: codes.iter().map(|&c| index[c] as f32).collect(),
        classes: present.iter().map(|&c| names[c].clone()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use vigie_core::{Column, TextColumn};

    use super::*;

    fn frame(data: ColumnData) -> Frame {
        Frame::new(vec![Column { name: "y".into(), data }]).unwrap()
    }

    #[test]
    fn binary_text_label_defaults_to_the_minority_class() {
        let f =
            frame(ColumnData::Text(TextColumn::from_values(["No", "Yes", "No", "No"].map(Some))));
        let target = prepare(&f, "y", TaskChoice::Auto, None).unwrap();
        assert_eq!(target.task, Task::Binary);
        assert_eq!(target.classes, ["No", "Yes"]);
        assert_eq!(target.y, [0.0, 1.0, 0.0, 0.0]);
        let flipped = prepare(&f, "y", TaskChoice::Auto, Some("No")).unwrap();
        assert_eq!(flipped.y, [1.0, 0.0, 1.0, 1.0]);
        assert!(
            prepare(&f, "y", TaskChoice::Auto, Some("Maybe"))
                .unwrap_err()
                .to_string()
                .contains("\"Maybe\"")
        );
    }

    #[test]
    fn numeric_labels_pick_binary_or_regression_and_bad_labels_are_named() {
        let binary = frame(ColumnData::Numeric(vec![0.0, 1.0, 1.0]));
        // "0" is the minority class, so it is the positive one.
        assert_eq!(prepare(&binary, "y", TaskChoice::Auto, None).unwrap().classes, ["1", "0"]);
        let regression = frame(ColumnData::Numeric(vec![0.5, 1.0, 2.0]));
        assert_eq!(
            prepare(&regression, "y", TaskChoice::Auto, None).unwrap().task,
            Task::Regression
        );
        let single = frame(ColumnData::Numeric(vec![1.0, 1.0]));
        assert!(
            prepare(&single, "y", TaskChoice::Auto, None)
                .unwrap_err()
                .to_string()
                .contains("single class")
        );
        let missing = frame(ColumnData::Numeric(vec![1.0, f64::NAN]));
        assert!(
            prepare(&missing, "y", TaskChoice::Auto, None)
                .unwrap_err()
                .to_string()
                .contains("row 2")
        );
        assert!(
            prepare(&binary, "nope", TaskChoice::Auto, None)
                .unwrap_err()
                .to_string()
                .contains("nope")
        );
    }
}
