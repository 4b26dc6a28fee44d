//! From a table of named columns (a [`Frame`], as read from a file or a
//! request) to the forecasting tables: which columns are the series keys, the
//! time, the target and the covariates.
//!
//! Rows with a target are history ([`SeriesTable`]); rows without one are
//! covariate values for periods to forecast ([`CovariateTable`]). Both keep
//! each row's number in the frame (from 1), so every later message names the
//! row the user wrote. This module reads no file and chooses no strategy.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use vigie_core::zone::{TimeZone, WallClock, wall_clock_instants};
use vigie_core::{ColumnData, Frame, TextColumn};

use super::calendar::{MAX_ABS_TIME, TimeWriting, format_time, parse_written_time};
use super::data::{Covariate, CovariateTable, SeriesTable};
use super::periods::{Aggregate, PartialPeriod, PeriodGrouping, group_future, group_history};
use crate::error::{MlError, Result};

/// The key of the one series of a table without series columns.
pub const SINGLE_SERIES: &str = "all";

/// What each column of a forecasting table is.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ColumnRoles {
    /// The time column: ISO dates or times (`2024-03-05`, `2024-03-05T13:00:00Z`).
    pub time: String,
    /// The value to forecast.
    pub target: String,
    /// The columns whose values together name a series (none: one series).
    pub series: Vec<String>,
    /// Numeric or boolean covariate columns.
    pub covariates: Vec<String>,
    /// Rows of events grouped into periods (see `periods.rs`); `None`: one row per
    /// series and period already.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<PeriodGrouping>,
    /// The target cannot be negative (revenue, units sold, visits): a
    /// negative value is an error naming its row, when training and in the
    /// rows a forecast is given. Forecasts and intervals of a series that
    /// was never negative are clipped at 0 either way.
    #[serde(default)]
    pub non_negative: bool,
    /// The zone whose wall clock times and dates written without an offset
    /// are read on (`2024-11-03 01:30` in America/New_York); `None`: UTC.
    /// A time the clocks skip is an error naming its row; one they repeat is
    /// the earlier instant, or the later once the series has reached the
    /// earlier (one row per period) or passed it (rows of events, grouped:
    /// two events at the same time of the first pass are both earlier), so
    /// rows in time order read the repeated hour as written.
    /// Times with an offset or `Z`, and times typed by the file, are
    /// instants already. Saved by its IANA name; models saved before it
    /// existed read `None`.
    #[serde(default, with = "super::periods::zone_name", skip_serializing_if = "Option::is_none")]
    pub timezone: Option<TimeZone>,
}

/// A frame split into history and future rows.
#[derive(Debug, Clone, Default)]
pub struct FrameTables {
    /// The rows with a target.
    pub history: SeriesTable,
    /// The rows without a target: covariates of periods to forecast.
    pub future: CovariateTable,
    /// For each series key, its values of the series columns, in [`ColumnRoles::series`] order.
    pub keys: BTreeMap<String, Vec<String>>,
    /// The history's last period when rows grouped by a sum or count look cut short in it.
    pub partial: Option<PartialPeriod>,
    /// How every time was written, when all alike (months `2024-03`,
    /// quarters `2024-Q1`), so that forecasts can write theirs the same way
    /// ([`ForecastModel::write_times`](super::ForecastModel::write_times)).
    pub written: TimeWriting,
}

impl ColumnRoles {
    /// Every column the roles name, time first.
    pub fn columns(&self) -> Vec<&str> {
        let mut names = vec![self.time.as_str(), self.target.as_str()];
        names.extend(self.series.iter().map(String::as_str));
        names.extend(self.covariates.iter().map(String::as_str));
        names
    }

    /// The role of `column`, as a setting names it: `time`, `target`, `series` or
    /// `covariates` (empty for a column the roles do not name).
    pub fn role_of(&self, column: &str) -> &'static str {
        if column == self.time {
            "time"
        } else if column == self.target {
            "target"
        } else if self.series.iter().any(|name| name == column) {
            "series"
        } else if self.covariates.iter().any(|name| name == column) {
            "covariates"
        } else {
            ""
        }
    }

    /// The key of a series from its values of the series columns: the value
    /// itself for one column, `column=value|column=value` for several.
    pub fn key(&self, values: &[String]) -> String {
        match (self.series.as_slice(), values) {
            ([], _) => SINGLE_SERIES.to_owned(),
            ([_], [value]) => value.clone(),
            (names, values) => names
                .iter()
                .zip(values)
                .map(|(name, value)| format!("{name}={value}"))
                .collect::<Vec<_>>()
                .join("|"),
        }
    }

    /// Checks that no column has two roles.
    pub fn check(&self) -> Result<()> {
        let names = self.columns();
        for (idx, name) in names.iter().enumerate() {
            if names[..idx].contains(name) {
                return Err(MlError::param(
                    "columns",
                    format!("column {name:?} is given two roles (time, target, series, covariate)"),
                ));
            }
        }
        Ok(())
    }
}

/// `data row N` of the 0-based frame row `row`.
fn at(row: usize) -> String {
    format!("data row {}", row + 1)
}

/// Whether the cell of `row` equals the one above it (both present: an
/// empty cell is an error [`split_frame`] names at its row).
fn same_cell(data: &ColumnData, row: usize) -> bool {
    match data {
        ColumnData::Text(text) => {
            let code = text.codes[row];
            code != TextColumn::MISSING && code == text.codes[row - 1]
        }
        ColumnData::Numeric(values) | ColumnData::Boolean(values) => {
            !values[row].is_nan() && values[row].to_bits() == values[row - 1].to_bits()
        }
    }
}

/// A number as a key part: integers without a fraction.
fn key_text(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        value.to_string()
    }
}

/// The instant at which `zone`'s clocks show `wall` (seconds of the wall
/// clock); in a repeated hour the earlier one, unless the series already
/// reached it (`latest`; passed it, when `events` share instants). Says why
/// a time the clocks skip has none.
fn instant_on(
    zone: TimeZone,
    wall: f64,
    latest: f64,
    events: bool,
) -> std::result::Result<f64, String> {
    let whole = wall.floor();
    let fraction = wall - whole;
    let skipped = || {
        format!(
            "{} does not exist in {} (the clocks skip that hour); write it with its offset",
            format_time(wall).trim_end_matches('Z'),
            zone.name()
        )
    };
    if !whole.is_finite() || whole.abs() > MAX_ABS_TIME {
        return Err(skipped());
    }
    match wall_clock_instants(zone, whole as i64) {
        Some(WallClock::Single(at)) => Ok(at as f64 + fraction),
        Some(WallClock::Repeated(earlier, later)) => {
            let earlier = earlier as f64 + fraction;
            // One row per period: a second row at a repeated time is the
            // later pass. Events may share an instant: only a time behind
            // one already read (the clock went back) is the later pass.
            let second_pass = if events { latest > earlier } else { latest >= earlier };
            Ok(if second_pass { later as f64 + fraction } else { earlier })
        }
        Some(WallClock::Skipped) | None => Err(skipped()),
    }
}

/// Splits `frame` by `roles` into history and future rows, grouped into
/// periods when the roles say so.
pub fn split_frame(frame: &Frame, roles: &ColumnRoles) -> Result<FrameTables> {
    split_frame_after(frame, roles, &|_| None).map(|(tables, _)| tables)
}

/// [`split_frame`], leaving out of the history the rows at or before
/// `known(key)`, the last time already known of their series (rows of one
/// period each only: rows of events are grouped first, and their periods
/// are compared by the caller). Those rows are checked as every other row
/// is, but not kept: a forecast given a whole table again keeps only its
/// newest rows, and building the others cost about 0.08 s and 70 MB of peak
/// memory for 600,000 rows of 1,000 daily series. Returns the tables and the
/// number of rows left out.
pub(crate) fn split_frame_after(
    frame: &Frame,
    roles: &ColumnRoles,
    known: &dyn Fn(&str) -> Option<f64>,
) -> Result<(FrameTables, usize)> {
    roles.check()?;
    let column = |name: &str, role: &str| {
        frame.column(name).map_err(|_| {
            MlError::InvalidData(format!(
                "no {role} column {name:?}; the columns are: {}",
                frame.names().join(", ")
            ))
        })
    };
    let time = column(&roles.time, "time")?;
    let target = column(&roles.target, "target")?;
    let series: Vec<_> =
        roles.series.iter().map(|name| column(name, "series")).collect::<Result<_>>()?;
    let covariates: Vec<_> =
        roles.covariates.iter().map(|name| column(name, "covariate")).collect::<Result<_>>()?;
    // Numeric columns are read in place; text ones are read into numbers.
    fn numbers<'a>(data: &'a ColumnData, name: &str, role: &str) -> Result<Cow<'a, [f64]>> {
        match data {
            ColumnData::Numeric(values) | ColumnData::Boolean(values) => Ok(Cow::Borrowed(values)),
            // Covariates read as text: numbers, and flags written true or false.
            ColumnData::Text(text) if role == "covariate" => {
                let read: Vec<Option<f64>> =
                    text.dictionary.iter().map(|v| flag_or_number(v)).collect();
                (0..text.codes.len())
                    .map(|row| match text.get(row) {
                        None => Ok(f64::NAN),
                        Some(value) => read[text.codes[row] as usize].ok_or_else(|| {
                            MlError::InvalidData(format!(
                                "the covariate column {name:?} at {}: {value:?} is neither a \
                                 number nor true or false",
                                at(row)
                            ))
                        }),
                    })
                    .collect::<Result<Vec<f64>>>()
                    .map(Cow::Owned)
            }
            ColumnData::Text(text) => {
                let row = (0..text.codes.len()).find(|&i| text.get(i).is_some()).unwrap_or(0);
                Err(MlError::InvalidData(format!(
                    "the {role} column {name:?} holds text ({:?} at {}); it must be numeric",
                    text.get(row).unwrap_or_default(),
                    at(row)
                )))
            }
        }
    }
    let counted = roles.group.is_some_and(|g| g.target == Aggregate::Count);
    let target_values = match &target.data {
        // Counting rows needs no number: an order id counts one, an empty cell is a future row.
        ColumnData::Text(text) if counted => (0..text.codes.len())
            .map(|row| if text.get(row).is_some() { 1.0 } else { f64::NAN })
            .collect::<Vec<f64>>()
            .into(),
        data => numbers(data, &roles.target, "target")?,
    };
    let covariate_values: Vec<Cow<'_, [f64]>> =
        covariates.iter().map(|c| numbers(&c.data, &c.name, "covariate")).collect::<Result<_>>()?;

    let mut tables = FrameTables::default();
    tables.history.covariates = roles
        .covariates
        .iter()
        .map(|name| Covariate { name: name.clone(), values: Vec::new() })
        .collect();
    tables.future.covariates = tables.history.covariates.clone();
    let history = &mut tables.history;
    history.series.reserve(frame.n_rows());
    history.times.reserve(frame.n_rows());
    history.values.reserve(frame.n_rows());
    history.row_numbers.reserve(frame.n_rows());
    for covariate in &mut history.covariates {
        covariate.values.reserve(frame.n_rows());
    }
    let mut key_values = Vec::with_capacity(series.len());
    // One shared key per series: each row holds a reference to it, not a copy.
    let mut key: Arc<str> = Arc::from("");
    // The last time known of the current series, looked up once per run of its rows.
    let mut known_until: Option<f64> = None;
    let mut left_out = 0;
    let skip_known = roles.group.is_none();
    let mut parsed_times: Vec<Option<(f64, bool)>> = match &time.data {
        ColumnData::Text(text) => vec![None; text.dictionary.len()],
        ColumnData::Numeric(_) | ColumnData::Boolean(_) => Vec::new(),
    };
    // Per series, the latest instant read, to place times of a repeated hour.
    let mut latest: HashMap<Arc<str>, f64> = HashMap::new();
    // How the times are written: the one way every distinct text shares.
    let mut written: Option<TimeWriting> = match time.data {
        ColumnData::Text(_) if frame.n_rows() > 0 => None,
        _ => Some(TimeWriting::Dates),
    };
    for row in 0..frame.n_rows() {
        let (seconds, on_wall_clock) = match &time.data {
            ColumnData::Text(text) => {
                let value = text.get(row).ok_or_else(|| {
                    MlError::InvalidData(format!(
                        "the time column {:?} is empty at {}",
                        roles.time,
                        at(row)
                    ))
                })?;
                // A file repeats each time once per series: each distinct
                // text is parsed once (its first row names a failure).
                let code = text.codes[row] as usize;
                let (seconds, has_offset) = match parsed_times[code] {
                    Some(parsed) => parsed,
                    None => {
                        let this = TimeWriting::of(value);
                        written = match written {
                            None => Some(this),
                            Some(before) if before == this => Some(this),
                            Some(_) => Some(TimeWriting::Dates),
                        };
                        let parsed = parse_written_time(value).map_err(|reason| {
                            MlError::InvalidData(format!(
                                "column {:?} at {}: {reason}",
                                roles.time,
                                at(row)
                            ))
                        })?;
                        parsed_times[code] = Some(parsed);
                        parsed
                    }
                };
                (seconds, !has_offset)
            }
            // Dates and timestamps typed by the file: seconds since the epoch.
            ColumnData::Numeric(values) | ColumnData::Boolean(values) => {
                let value = values[row];
                if !value.is_finite() {
                    return Err(MlError::InvalidData(format!(
                        "the time column {:?} is empty at {}",
                        roles.time,
                        at(row)
                    )));
                }
                (value, false)
            }
        };
        // Rows of one series usually follow each other: a row whose series
        // cells equal the previous row's takes its key, already checked,
        // without formatting it again (about a quarter of reading 1,000 series).
        let same_series = row > 0 && series.iter().all(|column| same_cell(&column.data, row));
        if !same_series {
            key_values.clear();
            for column in &series {
                let value = match &column.data {
                    ColumnData::Text(text) => text.get(row).map(str::to_owned),
                    ColumnData::Numeric(values) | ColumnData::Boolean(values) => {
                        Some(values[row]).filter(|v| !v.is_nan()).map(key_text)
                    }
                };
                key_values.push(value.ok_or_else(|| {
                    MlError::InvalidData(format!(
                        "the series column {:?} is empty at {}",
                        column.name,
                        at(row)
                    ))
                })?);
            }
            key = roles.key(&key_values).into();
            if let Some(known) = tables.keys.get(&*key) {
                if *known != key_values {
                    return Err(MlError::InvalidData(format!(
                        "series values {key_values:?} at {} and {known:?} make the same key \
                         {key:?}; a series value must not contain '=' or '|'",
                        at(row)
                    )));
                }
            } else {
                tables.keys.insert(key.to_string(), key_values.clone());
            }
            known_until = if skip_known { known(&key) } else { None };
        }
        let seconds = match roles.timezone {
            Some(zone) if on_wall_clock => {
                let latest = latest.entry(key.clone()).or_insert(f64::NEG_INFINITY);
                let events = roles.group.is_some();
                let instant = instant_on(zone, seconds, *latest, events).map_err(|reason| {
                    MlError::InvalidData(format!(
                        "column {:?} at {}: {reason}",
                        roles.time,
                        at(row)
                    ))
                })?;
                *latest = latest.max(instant);
                instant
            }
            _ => seconds,
        };
        let value = target_values[row];
        if value.is_nan() {
            let future = &mut tables.future;
            future.series.push(key.clone());
            future.times.push(seconds);
            future.row_numbers.push(row + 1);
            for (covariate, values) in future.covariates.iter_mut().zip(&covariate_values) {
                covariate.values.push(values[row]);
            }
        } else {
            if roles.non_negative && value < 0.0 {
                return Err(MlError::InvalidData(format!(
                    "series {key:?}: the target {:?} is {value} at {}, and it cannot be negative \
                     (non-negative target)",
                    roles.target,
                    at(row)
                )));
            }
            if known_until.is_some_and(|last| seconds <= last) {
                left_out += 1;
                continue;
            }
            let history = &mut tables.history;
            history.series.push(key.clone());
            history.times.push(seconds);
            history.values.push(value);
            history.row_numbers.push(row + 1);
            for (covariate, values) in history.covariates.iter_mut().zip(&covariate_values) {
                covariate.values.push(values[row]);
            }
        }
    }
    if let Some(grouping) = roles.group {
        (tables.history, tables.partial) = group_history(&tables.history, grouping)?;
        tables.future = group_future(&tables.future, grouping)?;
    }
    tables.written = written.unwrap_or_default();
    Ok((tables, left_out))
}

/// A covariate cell read as text: `true` and `false` (any case) as 1 and
/// 0, else a number; `None` for anything else.
fn flag_or_number(text: &str) -> Option<f64> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("true") {
        Some(1.0)
    } else if text.eq_ignore_ascii_case("false") {
        Some(0.0)
    } else {
        text.parse::<f64>().ok().filter(|v| v.is_finite())
    }
}
