//! Rows of events grouped into periods (`vigie train --aggregate`): every
//! row of one series whose time falls in one period becomes one row at the
//! period's start, its target aggregated ([`Aggregate`]) and each covariate
//! the mean of its known values.
//!
//! Periods start on the UTC hour, the UTC day, Monday of the ISO week, the
//! first of the month and the first of the quarter; with a time zone
//! ([`PeriodGrouping::timezone`]), on the local day, week, month or quarter
//! of that zone, each labelled by its local start as a time without a zone
//! (the rows of 2024-03-05 in New York are the period `2024-03-05`, whatever
//! their UTC dates). Hourly periods stay UTC hours, since daylight saving
//! repeats and skips local ones; the zone then sets the wall clock of their
//! calendar features and written times instead. A period without rows
//! inside a series' span is a sum or a count of nothing, so `sum` and
//! `count` fill it with 0 (and unknown covariates); the other aggregates
//! leave it out, and the panel then reports the gap as for any table.
//!
//! Rows without a target (future covariates) are grouped the same way, their
//! covariates averaged. This module decides nothing else: the grouped tables
//! go through the same checks as a table of one row per period.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use vigie_core::zone::TimeZone;

use super::calendar::{Frequency, Grid, MAX_ABS_TIME, format_time, local_time, period_start};
use super::data::{Covariate, CovariateTable, SeriesTable};
use crate::error::{MlError, Result};

/// How the targets of one period's rows become its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    /// The total (revenue from transactions); an empty period is 0.
    Sum,
    /// The mean (prices, temperatures).
    Mean,
    /// The value of the latest row of the period (stock levels, balances).
    Last,
    /// The smallest value.
    Min,
    /// The largest value.
    Max,
    /// How many rows have a target (orders, visits; the target may be text,
    /// such as an order id); an empty period is 0.
    Count,
}

impl Aggregate {
    /// All aggregates, as named in settings.
    pub const ALL: [Aggregate; 6] = [
        Aggregate::Sum,
        Aggregate::Mean,
        Aggregate::Last,
        Aggregate::Min,
        Aggregate::Max,
        Aggregate::Count,
    ];

    /// The name in settings and messages (`sum`).
    pub fn name(self) -> &'static str {
        match self {
            Aggregate::Sum => "sum",
            Aggregate::Mean => "mean",
            Aggregate::Last => "last",
            Aggregate::Min => "min",
            Aggregate::Max => "max",
            Aggregate::Count => "count",
        }
    }

    /// Whether a period with no rows has a value (0).
    fn fills_empty_periods(self) -> bool {
        matches!(self, Aggregate::Sum | Aggregate::Count)
    }
}

impl fmt::Display for Aggregate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Aggregate {
    type Err = MlError;

    fn from_str(text: &str) -> Result<Self> {
        let wanted = text.trim();
        Aggregate::ALL.into_iter().find(|a| a.name().eq_ignore_ascii_case(wanted)).ok_or_else(|| {
            MlError::param(
                "aggregate",
                format!("unknown aggregate {text:?}, expected one of sum, mean, last, min, max, count"),
            )
        })
    }
}

/// Rows grouped into periods of `frequency`, the target by `target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodGrouping {
    /// The periods.
    pub frequency: Frequency,
    /// How a period's targets become one value.
    pub target: Aggregate,
    /// The zone whose local days, weeks, months or quarters the periods
    /// are; `None`: UTC. Hourly periods stay UTC hours (daylight saving
    /// repeats and skips local ones): for them the zone is the wall clock of
    /// the forecast's calendar and written times ([`ForecastParams::timezone`](super::ForecastParams::timezone)).
    /// Saved by its IANA name; models saved before it existed read `None`.
    #[serde(default, with = "zone_name")]
    pub timezone: Option<TimeZone>,
}

impl PeriodGrouping {
    /// UTC periods of `frequency`, the target by `target`.
    pub fn utc(frequency: Frequency, target: Aggregate) -> PeriodGrouping {
        PeriodGrouping { frequency, target, timezone: None }
    }

    /// Whose periods these are, for summaries: `UTC`, the zone's local ones
    /// (`America/Bogota`), or for hourly periods in a zone
    /// `UTC hours on America/New_York's clock`.
    pub fn zone_label(&self) -> String {
        match self.timezone {
            None => "UTC".to_owned(),
            Some(zone) if self.frequency == Frequency::Hourly => {
                format!("UTC hours on {}'s clock", zone.name())
            }
            Some(zone) => zone.name().to_owned(),
        }
    }

    /// The start of the period the instant `time` falls in, as
    /// [`period_start`] gives it, of the local time in [`Self::timezone`]
    /// (hourly periods: the UTC hour).
    fn start(&self, time: f64) -> std::result::Result<f64, String> {
        period_start(self.frequency, self.on_clock(time)?)
    }

    /// The instant `time` on the clock the periods are counted on: the zone's local
    /// time for its days, weeks, months and quarters; else as it is.
    fn on_clock(&self, time: f64) -> std::result::Result<f64, String> {
        Ok(match self.timezone {
            Some(zone)
                if self.frequency != Frequency::Hourly
                    && time.is_finite()
                    && time.abs() <= MAX_ABS_TIME =>
            {
                local_time(zone, time)
                    .ok_or_else(|| format!("time {time} s is not a time in range"))?
            }
            _ => time,
        })
    }

    /// How far into its period `start` (on the periods' clock) the instant `time` is,
    /// from 0 to 1: a day's 18:00 is 0.75.
    fn elapsed(&self, start: f64, time: f64) -> std::result::Result<f64, String> {
        let end = period_start(self.frequency, start + 1.5 * self.frequency.longest_period())?;
        Ok((self.on_clock(time)? - start) / (end - start))
    }
}

/// The last period of a grouped history when it looks cut short: its latest row came
/// earlier in the period than in every one of the periods before it (at most
/// [`PARTIAL_LOOKBACK`], at least [`PARTIAL_EVIDENCE`]), so its sum or count may hold
/// only part of the period, as when data is read in the middle of a day.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PartialPeriod {
    /// The period's start (on the periods' clock, as the history's times).
    pub start: f64,
    /// How far into the period its latest row is, from 0 to 1.
    pub elapsed: f64,
    /// The least of the same over the periods before it.
    pub usual: f64,
    /// Periods compared.
    pub compared: usize,
}

/// Periods before the last whose latest rows it is compared with, at most.
const PARTIAL_LOOKBACK: usize = 28;

/// Periods before the last needed to say anything.
const PARTIAL_EVIDENCE: usize = 7;

/// The last period of `groups` when it looks cut short ([`PartialPeriod`]), for the
/// aggregates a missing part changes the level of (sum, count).
fn partial_period(
    groups: &[(&Arc<str>, f64, Group)],
    grouping: PeriodGrouping,
) -> Result<Option<PartialPeriod>> {
    if !matches!(grouping.target, Aggregate::Sum | Aggregate::Count) {
        return Ok(None);
    }
    // Each period's latest row over every series.
    let mut latest: std::collections::BTreeMap<i64, f64> = std::collections::BTreeMap::new();
    for (_, start, group) in groups {
        let slot = latest.entry(*start as i64).or_insert(f64::NEG_INFINITY);
        *slot = slot.max(group.last.0);
    }
    let mut periods = latest.iter().rev();
    let Some((&last, &last_time)) = periods.next() else { return Ok(None) };
    let elapsed =
        |start: i64, time: f64| grouping.elapsed(start as f64, time).map_err(MlError::InvalidData);
    let before: Vec<f64> = periods
        .take(PARTIAL_LOOKBACK)
        .map(|(&start, &time)| elapsed(start, time))
        .collect::<Result<_>>()?;
    if before.len() < PARTIAL_EVIDENCE {
        return Ok(None);
    }
    let usual = before.iter().copied().fold(f64::INFINITY, f64::min);
    let now = elapsed(last, last_time)?;
    Ok((now < usual).then_some(PartialPeriod {
        start: last as f64,
        elapsed: now,
        usual,
        compared: before.len(),
    }))
}

/// A zone saved by its IANA name.
pub(super) mod zone_name {
    use serde::{Deserialize, Deserializer, Serializer};
    use vigie_core::zone::{TimeZone, parse_time_zone};

    pub(in crate::forecast) fn serialize<S: Serializer>(
        zone: &Option<TimeZone>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match zone {
            Some(zone) => serializer.serialize_some(zone.name()),
            None => serializer.serialize_none(),
        }
    }

    pub(in crate::forecast) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<TimeZone>, D::Error> {
        Option::<String>::deserialize(deserializer)?
            .map(|name| parse_time_zone(&name).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// One group's running values.
struct Group {
    /// Position of the group's first row in the table (its row number in messages).
    first_row: usize,
    rows: usize,
    sum: f64,
    min: f64,
    max: f64,
    /// The latest row's time and target; a later row of the same time wins.
    last: (f64, f64),
    /// Per covariate: sum and count of its known values.
    covariates: Vec<(f64, usize)>,
}

impl Group {
    fn new(first_row: usize, covariates: usize) -> Group {
        Group {
            first_row,
            rows: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            last: (f64::NEG_INFINITY, f64::NAN),
            covariates: vec![(0.0, 0); covariates],
        }
    }

    fn add(&mut self, time: f64, value: f64, covariates: impl Iterator<Item = f64>) {
        self.rows += 1;
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        if time >= self.last.0 {
            self.last = (time, value);
        }
        for ((sum, known), value) in self.covariates.iter_mut().zip(covariates) {
            if !value.is_nan() {
                *sum += value;
                *known += 1;
            }
        }
    }

    fn target(&self, how: Aggregate) -> f64 {
        match how {
            Aggregate::Sum => self.sum,
            Aggregate::Mean => self.sum / self.rows as f64,
            Aggregate::Last => self.last.1,
            Aggregate::Min => self.min,
            Aggregate::Max => self.max,
            Aggregate::Count => self.rows as f64,
        }
    }

    fn covariate(&self, column: usize) -> f64 {
        let (sum, known) = self.covariates[column];
        if known == 0 { f64::NAN } else { sum / known as f64 }
    }
}

/// The groups of rows by series and period start, in order of first row.
fn groups<'a>(
    series: &'a [Arc<str>],
    times: &[f64],
    covariates: &[Covariate],
    grouping: PeriodGrouping,
    mut value: impl FnMut(usize) -> f64,
) -> Result<Vec<(&'a Arc<str>, f64, Group)>> {
    let mut index: HashMap<(&str, i64), usize> = HashMap::new();
    let mut out: Vec<(&Arc<str>, f64, Group)> = Vec::new();
    for (row, key) in series.iter().enumerate() {
        let start = grouping.start(times[row]).map_err(MlError::InvalidData)?;
        // Period starts are whole seconds: an exact key.
        let slot = *index.entry((key, start as i64)).or_insert_with(|| {
            out.push((key, start, Group::new(row, covariates.len())));
            out.len() - 1
        });
        let value = value(row);
        out[slot].2.add(times[row], value, covariates.iter().map(|c| c.values[row]));
    }
    Ok(out)
}

/// The columns of `covariates`, named, without values.
fn no_values(covariates: &[Covariate]) -> Vec<Covariate> {
    covariates.iter().map(|c| Covariate { name: c.name.clone(), values: Vec::new() }).collect()
}

/// `table` with one row per series and period of `grouping`, and its last period when
/// it looks cut short.
pub(crate) fn group_history(
    table: &SeriesTable,
    grouping: PeriodGrouping,
) -> Result<(SeriesTable, Option<PartialPeriod>)> {
    let how = grouping.target;
    let mut groups =
        groups(&table.series, &table.times, &table.covariates, grouping, |row| table.values[row])?;
    let partial = partial_period(&groups, grouping)?;
    let number = |row: usize| table.row_numbers.get(row).copied().unwrap_or(row + 1);
    // Finite values whose sum is not: the rows are fine, the period is not.
    if let Some((key, start, group)) = groups
        .iter()
        .find(|(_, _, g)| g.min.is_finite() && g.max.is_finite() && !g.target(how).is_finite())
    {
        return Err(MlError::InvalidData(format!(
            "series {key:?}: the {} of the target over the {} period {} ({} rows from data row \
             {}) is {}: the values are too large to add up",
            how.name(),
            grouping.frequency,
            format_time(*start),
            group.rows,
            number(group.first_row),
            group.target(how)
        )));
    }
    let mut out =
        SeriesTable { covariates: no_values(&table.covariates), ..SeriesTable::default() };
    let mut push =
        |key: &Arc<str>, time: f64, value: f64, covariates: &dyn Fn(usize) -> f64, row| {
            out.series.push(key.clone());
            out.times.push(time);
            out.values.push(value);
            for (column, covariate) in out.covariates.iter_mut().enumerate() {
                covariate.values.push(covariates(column));
            }
            out.row_numbers.push(row);
        };
    if !how.fills_empty_periods() {
        for (key, start, group) in &groups {
            push(key, *start, group.target(how), &|c| group.covariate(c), number(group.first_row));
        }
        return Ok((out, partial));
    }
    // Each series' periods in order, the empty ones between its first and last filled.
    groups.sort_by(|a, b| a.0.cmp(b.0).then(a.1.total_cmp(&b.1)));
    let Some(first) = groups.first() else { return Ok((out, partial)) };
    let grid = Grid::through(grouping.frequency, first.1);
    let mut previous: Option<(&Arc<str>, i64)> = None;
    for (key, start, group) in &groups {
        let period = grid.period(*start).map_err(MlError::InvalidData)?;
        if let Some((before_key, before)) = previous
            && before_key == *key
        {
            for empty in before + 1..period {
                // The row named in messages about a filled period: the next real one.
                push(key, grid.time(empty), 0.0, &|_| f64::NAN, number(group.first_row));
            }
        }
        push(key, *start, group.target(how), &|c| group.covariate(c), number(group.first_row));
        previous = Some((key, period));
    }
    Ok((out, partial))
}

/// `table` (future covariates) with one row per series and period of
/// `grouping`, each covariate the mean of its known values.
pub(crate) fn group_future(
    table: &CovariateTable,
    grouping: PeriodGrouping,
) -> Result<CovariateTable> {
    let groups = groups(&table.series, &table.times, &table.covariates, grouping, |_| 0.0)?;
    let number = |row: usize| table.row_numbers.get(row).copied().unwrap_or(row + 1);
    let mut out =
        CovariateTable { covariates: no_values(&table.covariates), ..CovariateTable::default() };
    for (key, start, group) in &groups {
        out.series.push(Arc::clone(key));
        out.times.push(*start);
        out.row_numbers.push(number(group.first_row));
        for (column, covariate) in out.covariates.iter_mut().enumerate() {
            covariate.values.push(group.covariate(column));
        }
    }
    Ok(out)
}
