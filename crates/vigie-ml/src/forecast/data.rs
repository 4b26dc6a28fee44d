//! The forecasting input: many series in long form, checked once into a
//! [`Panel`] of contiguous series on one calendar grid.
//!
//! Every check names what the user can fix: the series, the data row (1 is
//! the first row of the table, so the caller adds the file name and header
//! offset) and the time. This module does not decide whether a series is
//! long enough for a horizon; `fit` does, knowing the parameters.

use std::collections::BTreeMap;
use std::sync::Arc;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::calendar::{self, Frequency, Grid, format_time};
use crate::error::{MlError, Result};
use vigie_core::zone::TimeZone;

/// One covariate column: a name and one value per row (`NaN` is missing).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Covariate {
    /// The column's name, as the user writes it in parameters and messages.
    pub name: String,
    /// One value per row of the table.
    pub values: Vec<f64>,
}

/// Many time series in long form: one row per series and period.
///
/// Rows may come in any order; within a series, timestamps must be distinct
/// and leave no gap on the frequency's grid.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SeriesTable {
    /// The series of each row, e.g. `store=3|line=toys` (shared: one key per
    /// series, not one string per row).
    pub series: Vec<Arc<str>>,
    /// The time of each row, in seconds since the Unix epoch (UTC).
    pub times: Vec<f64>,
    /// The target of each row; every value must be finite.
    pub values: Vec<f64>,
    /// Covariate columns (promotions, prices…), each with one value per row.
    pub covariates: Vec<Covariate>,
    /// The number messages give each row (1-based, e.g. the row of the file it
    /// was read from); empty: its position in the table, from 1.
    #[serde(default)]
    pub row_numbers: Vec<usize>,
}

impl SeriesTable {
    /// The rows for which `keep(row)` holds, with their row numbers.
    pub fn filter(&self, mut keep: impl FnMut(usize) -> bool) -> SeriesTable {
        let rows: Vec<usize> = (0..self.series.len()).filter(|&row| keep(row)).collect();
        // A column shorter than the keys reads as missing; `Panel::build` then names it.
        let pick = |values: &[f64]| {
            rows.iter().map(|&r| values.get(r).copied().unwrap_or(f64::NAN)).collect::<Vec<f64>>()
        };
        SeriesTable {
            series: rows.iter().map(|&r| self.series[r].clone()).collect(),
            times: pick(&self.times),
            values: pick(&self.values),
            covariates: self
                .covariates
                .iter()
                .map(|c| Covariate { name: c.name.clone(), values: pick(&c.values) })
                .collect(),
            row_numbers: rows.iter().map(|&r| row_number(&self.row_numbers, r)).collect(),
        }
    }
}

/// Covariate values for the periods to forecast: one row per series and period.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CovariateTable {
    /// The series of each row.
    pub series: Vec<Arc<str>>,
    /// The time of each row, in seconds since the Unix epoch (UTC).
    pub times: Vec<f64>,
    /// Covariate columns, each with one value per row.
    pub covariates: Vec<Covariate>,
    /// The number messages give each row, as in [`SeriesTable::row_numbers`].
    #[serde(default)]
    pub row_numbers: Vec<usize>,
}

/// One checked series: contiguous periods from `start`, sorted by time.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    /// The series' key.
    pub key: String,
    /// Period of the first value.
    pub start: i64,
    /// The target, one value per period.
    pub values: Vec<f64>,
    /// Per covariate column of the panel, one value per period.
    pub covariates: Vec<Vec<f64>>,
    /// The number messages give the row of each value (1-based, see
    /// [`SeriesTable::row_numbers`]).
    pub rows: Vec<usize>,
}

impl Series {
    /// Period of the last value.
    pub fn end(&self) -> i64 {
        self.start + self.values.len() as i64 - 1
    }
}

/// Checked series on one grid, sorted by key.
#[derive(Debug, Clone)]
pub(crate) struct Panel {
    /// The calendar grid of every series.
    pub grid: Grid,
    /// Names of the covariate columns, in table order.
    pub covariate_names: Vec<String>,
    /// The series, sorted by key.
    pub series: Vec<Series>,
}

/// Largest target magnitude accepted: squares and sums of a long series stay finite.
const MAX_TARGET: f64 = 1e100;
/// Largest covariate magnitude accepted: the trees read covariates as `f32`.
const MAX_COVARIATE: f64 = 1e30;

/// `data row N` for the row numbered `number` (1-based).
pub(crate) fn data_row(number: usize) -> String {
    format!("data row {number}")
}

/// The number messages give the 0-based table row `row`.
fn row_number(numbers: &[usize], row: usize) -> usize {
    numbers.get(row).copied().unwrap_or(row + 1)
}

fn invalid(message: String) -> MlError {
    MlError::InvalidData(message)
}

/// Checks that every column has one value per row and names are distinct.
fn check_shape(
    keys: &[Arc<str>],
    columns: &[(&str, usize)],
    covariates: &[Covariate],
    numbers: &[usize],
) -> Result<()> {
    let n_rows = keys.len();
    if !numbers.is_empty() && numbers.len() != n_rows {
        return Err(invalid(format!("{} row numbers for {n_rows} rows", numbers.len())));
    }
    for &(name, len) in columns {
        if len != n_rows {
            return Err(invalid(format!("column {name} has {len} values for {n_rows} rows")));
        }
    }
    for (idx, covariate) in covariates.iter().enumerate() {
        if covariate.values.len() != n_rows {
            return Err(invalid(format!(
                "covariate {:?} has {} values for {n_rows} rows",
                covariate.name,
                covariate.values.len()
            )));
        }
        if covariates[..idx].iter().any(|other| other.name == covariate.name) {
            return Err(invalid(format!("covariate {:?} appears twice", covariate.name)));
        }
        if let Some(row) = covariate.values.iter().position(|v| v.abs() > MAX_COVARIATE) {
            return Err(invalid(format!(
                "series {:?}: covariate {:?} is {} at {}, beyond ±{MAX_COVARIATE:e}",
                keys[row],
                covariate.name,
                covariate.values[row],
                data_row(row_number(numbers, row))
            )));
        }
    }
    Ok(())
}

/// Row indices of each series, by key.
fn group(keys: &[Arc<str>]) -> BTreeMap<&str, Vec<usize>> {
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    // Rows of one series usually follow each other: a run of equal keys is
    // looked up once.
    let mut start = 0;
    while start < keys.len() {
        let key = &keys[start];
        let end = start + keys[start..].iter().take_while(|&k| k == key).count();
        groups.entry(&**key).or_default().extend(start..end);
        start = end;
    }
    groups
}

/// Sorts one series' rows by period and checks they are contiguous.
/// Returns the first period and the table rows in period order.
fn contiguous(
    key: &str,
    rows: &[usize],
    table: &SeriesTable,
    grid: &Grid,
) -> Result<(i64, Vec<usize>)> {
    let number = |row: usize| data_row(row_number(&table.row_numbers, row));
    let mut periods = Vec::with_capacity(rows.len());
    for &row in rows {
        let period = grid.period(table.times[row]).map_err(|reason| {
            // A time between two periods: readings more frequent than the grid's, as often as not.
            let hint = if table.times[row].is_finite() && grid.frequency.fixed_step().is_some() {
                format!(
                    " (several rows per {} period? group them with --aggregate)",
                    grid.frequency
                )
            } else {
                String::new()
            };
            invalid(format!("series {key:?}: {reason} at {}{hint}", number(row)))
        })?;
        periods.push((period, row));
    }
    periods.sort_unstable();
    for pair in periods.windows(2) {
        let ((before, before_row), (after, after_row)) = (pair[0], pair[1]);
        if after == before && table.times[before_row] != table.times[after_row] {
            return Err(invalid(format!(
                "series {key:?}: {} at {} and {} at {} fall in the same {} period (rows of events \
                 are grouped into one per period by an aggregate: `--aggregate sum`, or \
                 `aggregate` in vigie.toml; or is the frequency right?)",
                grid.format(table.times[before_row]),
                number(before_row),
                grid.format(table.times[after_row]),
                number(after_row),
                grid.frequency
            )));
        }
        if after == before {
            return Err(invalid(format!(
                "series {key:?}: duplicate time {} at {} and {} (rows of events are grouped into \
                 one per period by an aggregate: `--aggregate sum`, or `aggregate` in vigie.toml)",
                grid.format(grid.time(after)),
                number(before_row),
                number(after_row)
            )));
        }
        if after > before + 1 {
            let missing = after - before - 1;
            return Err(invalid(format!(
                "series {key:?}: gap after {} ({}): the next time is {} ({}), {missing} {} period{} \
                 missing from {}",
                grid.format(grid.time(before)),
                number(before_row),
                grid.format(grid.time(after)),
                number(after_row),
                grid.frequency,
                if missing == 1 { "" } else { "s" },
                grid.format(grid.time(before + 1))
            )));
        }
    }
    let start = periods.first().map_or(0, |&(period, _)| period);
    Ok((start, periods.into_iter().map(|(_, row)| row).collect()))
}

impl Panel {
    /// Checks `table` and builds its series. The grid is `grid` when given
    /// (new rows for a fitted model), else built through the first row's time
    /// at `frequency`, inferred from the timestamps when `None`, with hourly
    /// periods on `zone`'s clock ([`Grid::in_zone`]): messages then name times
    /// as the user reads them.
    pub fn build(
        table: &SeriesTable,
        frequency: Option<Frequency>,
        grid: Option<Grid>,
        zone: Option<TimeZone>,
    ) -> Result<Panel> {
        let n_rows = table.series.len();
        check_shape(
            &table.series,
            &[("times", table.times.len()), ("values", table.values.len())],
            &table.covariates,
            &table.row_numbers,
        )?;
        let number = |row: usize| data_row(row_number(&table.row_numbers, row));
        if n_rows == 0 {
            return Err(invalid("the table has no rows".into()));
        }
        for row in 0..n_rows {
            let key = &table.series[row];
            if !table.times[row].is_finite() {
                return Err(invalid(format!(
                    "series {key:?}: time is {} at {}",
                    table.times[row],
                    number(row)
                )));
            }
            let value = table.values[row];
            if !value.is_finite() || value.abs() > MAX_TARGET {
                let (shown, beyond) = if value.is_finite() {
                    (format!("{value:e}"), format!(", beyond ±{MAX_TARGET:e}"))
                } else {
                    (value.to_string(), String::new())
                };
                return Err(invalid(format!(
                    "series {key:?}: target is {shown} at {} ({}){beyond}",
                    number(row),
                    format_time(table.times[row]),
                )));
            }
        }
        let groups = group(&table.series);
        let grid = match grid {
            Some(grid) => grid,
            None => {
                let frequency = match frequency {
                    Some(frequency) => frequency,
                    None => {
                        let sorted: Vec<Vec<f64>> = groups
                            .values()
                            .map(|rows| {
                                let mut times: Vec<f64> =
                                    rows.iter().map(|&r| table.times[r]).collect();
                                times.sort_by(f64::total_cmp);
                                times
                            })
                            .collect();
                        calendar::infer(sorted.iter().map(Vec::as_slice))?
                    }
                };
                Grid::through(frequency, table.times[0]).in_zone(zone)
            }
        };
        // Each series is checked and gathered on its own, side by side; the
        // first series (by key) with a problem names it, as one after the
        // other would.
        let groups: Vec<(&str, Vec<usize>)> = groups.into_iter().collect();
        let series = groups
            .par_iter()
            .map(|(key, rows)| {
                let (start, rows) = contiguous(key, rows, table, &grid)?;
                Ok(Series {
                    key: (*key).to_owned(),
                    start,
                    values: rows.iter().map(|&r| table.values[r]).collect(),
                    covariates: table
                        .covariates
                        .iter()
                        .map(|c| rows.iter().map(|&r| c.values[r]).collect())
                        .collect(),
                    rows: rows.iter().map(|&r| row_number(&table.row_numbers, r)).collect(),
                })
            })
            .collect::<Vec<Result<Series>>>()
            .into_iter()
            .collect::<Result<Vec<Series>>>()?;
        Ok(Panel {
            grid,
            covariate_names: table.covariates.iter().map(|c| c.name.clone()).collect(),
            series,
        })
    }
}

/// Future covariate values, looked up by series and period.
#[derive(Debug)]
pub(crate) struct FutureValues {
    /// Covariate names of the table.
    names: Vec<String>,
    /// Series → period → table row.
    rows: BTreeMap<Arc<str>, BTreeMap<i64, usize>>,
    /// The table's columns.
    columns: Vec<Vec<f64>>,
}

impl FutureValues {
    /// Indexes `table` on `grid`; duplicate or off-grid rows are errors.
    pub fn build(table: &CovariateTable, grid: &Grid) -> Result<FutureValues> {
        let n_rows = table.series.len();
        check_shape(
            &table.series,
            &[("times", table.times.len())],
            &table.covariates,
            &table.row_numbers,
        )?;
        let number = |row: usize| data_row(row_number(&table.row_numbers, row));
        let mut rows: BTreeMap<Arc<str>, BTreeMap<i64, usize>> = BTreeMap::new();
        for row in 0..n_rows {
            let key = &table.series[row];
            let period = grid.period(table.times[row]).map_err(|reason| {
                invalid(format!("future covariates: series {key:?}: {reason} at {}", number(row)))
            })?;
            if let Some(first) = rows.entry(key.clone()).or_default().insert(period, row) {
                return Err(invalid(format!(
                    "future covariates: series {key:?}: duplicate time {} at {} and {}",
                    grid.format(grid.time(period)),
                    number(first),
                    number(row)
                )));
            }
        }
        Ok(FutureValues {
            names: table.covariates.iter().map(|c| c.name.clone()).collect(),
            rows,
            columns: table.covariates.iter().map(|c| c.values.clone()).collect(),
        })
    }

    /// Position of the column `name`, if the table has it.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// The value of column `column` for `series` at `period`, if the table has that row.
    pub fn value(&self, column: usize, series: &str, period: i64) -> Option<f64> {
        let row = *self.rows.get(series)?.get(&period)?;
        self.columns.get(column)?.get(row).copied()
    }
}
