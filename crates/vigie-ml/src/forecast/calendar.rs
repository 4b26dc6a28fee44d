//! Calendar arithmetic for forecasting: frequencies, the civil (proleptic
//! Gregorian, UTC) date of a timestamp, and the grid that numbers periods.
//!
//! Timestamps are seconds since the Unix epoch in UTC. Hourly, daily and
//! weekly series sit on a grid of fixed steps; monthly and quarterly series
//! are numbered by calendar month, so a month of 28 or 31 days is one period.
//! This module does no time-zone or daylight-saving handling: a series
//! recorded at local midnight across a clock change is off the daily grid.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use vigie_core::zone::{TimeZone, local_seconds};

use crate::error::{MlError, Result};

const HOUR: f64 = 3_600.0;
const DAY: f64 = 86_400.0;
const WEEK: f64 = 7.0 * DAY;
/// A timestamp within this many seconds of a grid point is on the grid.
const GRID_TOLERANCE: f64 = 1e-3;
/// Timestamps beyond ±10^13 s (about 317,000 years) are refused, so that
/// period numbers and civil dates cannot overflow.
pub(crate) const MAX_ABS_TIME: f64 = 1e13;

/// How often a series is observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Frequency {
    /// Every hour; the season is a day (24 periods).
    Hourly,
    /// Every day; the season is a week (7 periods).
    Daily,
    /// Every week; the season is a year (52 periods).
    Weekly,
    /// Every calendar month; the season is a year (12 periods).
    Monthly,
    /// Every calendar quarter; the season is a year (4 periods).
    Quarterly,
}

impl Frequency {
    /// The length of the longest period of this frequency on a UTC clock, in seconds:
    /// an hour, a day, a week, 31 days, 92 days. Half of it again past a period's
    /// start is inside the next period, whatever the lengths of local days and months.
    pub(crate) fn longest_period(self) -> f64 {
        match self {
            Frequency::Hourly => HOUR,
            Frequency::Daily => DAY,
            Frequency::Weekly => WEEK,
            Frequency::Monthly => 31.0 * DAY,
            Frequency::Quarterly => 92.0 * DAY,
        }
    }

    /// All frequencies, finest first.
    pub const ALL: [Frequency; 5] = [
        Frequency::Hourly,
        Frequency::Daily,
        Frequency::Weekly,
        Frequency::Monthly,
        Frequency::Quarterly,
    ];

    /// Periods in one season: the cycle that seasonal naive repeats and ETS models.
    pub fn season_length(self) -> usize {
        match self {
            Frequency::Hourly => 24,
            Frequency::Daily => 7,
            Frequency::Weekly => 52,
            Frequency::Monthly => 12,
            Frequency::Quarterly => 4,
        }
    }

    /// The one-letter code (`H`, `D`, `W`, `M`, `Q`).
    pub fn code(self) -> &'static str {
        match self {
            Frequency::Hourly => "H",
            Frequency::Daily => "D",
            Frequency::Weekly => "W",
            Frequency::Monthly => "M",
            Frequency::Quarterly => "Q",
        }
    }

    /// The adjective used in messages (`daily`).
    pub fn name(self) -> &'static str {
        match self {
            Frequency::Hourly => "hourly",
            Frequency::Daily => "daily",
            Frequency::Weekly => "weekly",
            Frequency::Monthly => "monthly",
            Frequency::Quarterly => "quarterly",
        }
    }

    /// The fixed step in seconds of hourly, daily and weekly grids.
    pub(crate) fn fixed_step(self) -> Option<f64> {
        match self {
            Frequency::Hourly => Some(HOUR),
            Frequency::Daily => Some(DAY),
            Frequency::Weekly => Some(WEEK),
            Frequency::Monthly | Frequency::Quarterly => None,
        }
    }

    /// The frequency whose step a gap of `seconds` between two timestamps is, if any.
    fn of_gap(seconds: f64) -> Option<Frequency> {
        let near = |target: f64| (seconds - target).abs() <= GRID_TOLERANCE;
        if near(HOUR) {
            Some(Frequency::Hourly)
        } else if near(DAY) {
            Some(Frequency::Daily)
        } else if near(WEEK) {
            Some(Frequency::Weekly)
        } else if (28.0 * DAY..=31.0 * DAY).contains(&seconds) {
            Some(Frequency::Monthly)
        } else if (89.0 * DAY..=92.0 * DAY).contains(&seconds) {
            Some(Frequency::Quarterly)
        } else {
            None
        }
    }
}

impl fmt::Display for Frequency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Frequency {
    type Err = MlError;

    /// Reads `H`, `D`, `W`, `M`, `Q` or the names `hourly` … `quarterly`, in any case.
    fn from_str(text: &str) -> Result<Self> {
        let wanted = text.trim();
        Frequency::ALL
            .into_iter()
            .find(|f| {
                f.code().eq_ignore_ascii_case(wanted) || f.name().eq_ignore_ascii_case(wanted)
            })
            .ok_or_else(|| {
                MlError::param(
                    "frequency",
                    format!("unknown frequency {text:?}, expected one of H, D, W, M, Q"),
                )
            })
    }
}

/// The start of the period of `frequency` that `time` falls in: the UTC
/// hour, the UTC day, Monday of its ISO week, the first of its month or of
/// its quarter (at 00:00 UTC); or why there is none (not finite, too far).
pub(crate) fn period_start(frequency: Frequency, time: f64) -> std::result::Result<f64, String> {
    if !time.is_finite() || time.abs() > MAX_ABS_TIME {
        return Err(format!("time {time} s is not a time in range"));
    }
    let days = (time / DAY).floor();
    Ok(match frequency {
        Frequency::Hourly => (time / HOUR).floor() * HOUR,
        Frequency::Daily => days * DAY,
        // 1970-01-01 was a Thursday: Monday is 3 days before.
        Frequency::Weekly => (days - (days + 3.0).rem_euclid(7.0)) * DAY,
        Frequency::Monthly | Frequency::Quarterly => {
            let (year, month, _) = civil_from_days(days as i64);
            let month =
                if frequency == Frequency::Quarterly { month - (month - 1) % 3 } else { month };
            days_from_civil(year, month, 1) as f64 * DAY
        }
    })
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's `days_from_civil`).
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The civil date `(year, month 1..=12, day 1..=31)` of a day number (Hinnant's `civil_from_days`).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Whether `year` is a leap year of the Gregorian calendar.
fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Days in `month` (1..=12) of `year`.
pub(crate) fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A timestamp as `2024-03-05` (midnight) or `2024-03-05T13:00:00Z`: how
/// messages and forecast tables write times, and what [`parse_time`] reads back.
pub fn format_time(time: f64) -> String {
    if !time.is_finite() || time.abs() > MAX_ABS_TIME {
        return format!("{time} s");
    }
    let days = (time / DAY).floor();
    let seconds = (time - days * DAY).floor() as i64;
    let (year, month, day) = civil_from_days(days as i64);
    if seconds == 0 {
        format!("{year:04}-{month:02}-{day:02}")
    } else {
        let (hour, minute, second) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
        format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
    }
}

/// A timestamp as a table of `frequency` writes it: a date for daily and
/// longer periods, a full time (`2024-03-05T00:00:00Z`, midnight included)
/// for hourly ones, so one column never mixes the two forms.
pub fn format_period_time(time: f64, frequency: Frequency) -> String {
    let text = format_time(time);
    if frequency == Frequency::Hourly && text.len() == 10 {
        format!("{text}T00:00:00Z")
    } else {
        text
    }
}

/// The instant `time` (seconds since the epoch, UTC) on `zone`'s wall clock,
/// daylight saving included; `None` when not finite or beyond the calendar.
pub(crate) fn local_time(zone: TimeZone, time: f64) -> Option<f64> {
    if !time.is_finite() || time.abs() > MAX_ABS_TIME {
        return None;
    }
    let whole = time.floor();
    local_seconds(zone, whole as i64).map(|seconds| seconds as f64 + (time - whole))
}

/// Which day of the month monthly and quarterly timestamps fall on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum MonthDay {
    /// This day (clamped to the month's length).
    Day(u32),
    /// The month's last day.
    Last,
}

/// Numbers the periods of one frequency and turns a period back into a timestamp.
///
/// Hourly, daily and weekly periods are `(time - phase) / step`; monthly
/// periods are `year * 12 + month - 1` and quarterly `year * 4 + quarter`.
/// Generated timestamps keep the phase (or the day of month and time of day)
/// of the first timestamp the grid was built from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct Grid {
    /// The frequency.
    pub frequency: Frequency,
    /// Offset of fixed-step grids, in `[0, step)` seconds.
    phase: f64,
    /// Day of the month of monthly and quarterly timestamps.
    month_day: MonthDay,
    /// Month within the quarter (0..3) of quarterly timestamps.
    month_of_quarter: u32,
    /// Seconds after midnight of monthly and quarterly timestamps.
    seconds_of_day: f64,
    /// The zone whose wall clock the calendar features of hourly periods
    /// read ([`Grid::in_zone`]); the periods themselves stay UTC hours.
    /// Saved by its IANA name; models saved before it existed read `None`.
    #[serde(default, with = "super::periods::zone_name")]
    zone: Option<TimeZone>,
    /// Whether monthly and quarterly times are written as their month
    /// (`2024-03`), as the training data wrote them, rather than as a date.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    months: bool,
    /// Whether quarterly times are written as their quarter (`2024-Q1`), as
    /// the training data wrote them, rather than as a date.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    quarters: bool,
}

impl Grid {
    /// The grid of `frequency` through the timestamp `first` (finite, checked by the caller).
    pub fn through(frequency: Frequency, first: f64) -> Grid {
        let first = first.clamp(-MAX_ABS_TIME, MAX_ABS_TIME);
        let days = (first / DAY).floor();
        let (year, month, day) = civil_from_days(days as i64);
        let month_day =
            if day == days_in_month(year, month) { MonthDay::Last } else { MonthDay::Day(day) };
        Grid {
            frequency,
            phase: frequency.fixed_step().map_or(0.0, |step| first.rem_euclid(step)),
            month_day,
            month_of_quarter: (month - 1) % 3,
            seconds_of_day: first - days * DAY,
            zone: None,
            months: false,
            quarters: false,
        }
    }

    /// This grid with its hourly periods' calendar (hour, weekday, holidays)
    /// and written times in `zone`'s wall clock, daylight saving included:
    /// a shop's 9 a.m. stays its 9 a.m. in summer and winter, while the
    /// periods stay UTC hours, which daylight saving never repeats or skips.
    /// Other frequencies are unchanged: their periods, when grouped in a
    /// zone, are already local dates.
    pub fn in_zone(self, zone: Option<TimeZone>) -> Grid {
        let zone = zone.filter(|_| self.frequency == Frequency::Hourly);
        Grid { zone, ..self }
    }

    /// This grid writing times as a training table wrote them all: monthly
    /// and quarterly times as their month (`2024-03`), quarterly ones as
    /// their quarter (`2024-Q1`); other frequencies, and dates, unchanged.
    pub(crate) fn written_as(self, writing: TimeWriting) -> Grid {
        let months = writing == TimeWriting::Months
            && matches!(self.frequency, Frequency::Monthly | Frequency::Quarterly);
        let quarters = writing == TimeWriting::Quarters && self.frequency == Frequency::Quarterly;
        Grid { months, quarters, ..self }
    }

    /// The zone of the hourly calendar, if any.
    pub fn zone(&self) -> Option<TimeZone> {
        self.zone
    }

    /// How many periods back from hourly `period` a `lag` of whole days
    /// reaches the same hour on the zone's wall clock: one more or fewer
    /// than `lag` across a daylight-saving change (9 a.m. the day before is
    /// 23 or 25 hours back), else `lag`. `lag` itself without a zone, for
    /// lags that are not whole days, and when the hour did not exist that
    /// day (the clocks skipped it).
    pub(crate) fn wall_clock_lag(&self, period: i64, lag: usize) -> usize {
        let Some(zone) = self.zone else { return lag };
        if lag == 0 || !lag.is_multiple_of(24) {
            return lag;
        }
        let back = period - lag as i64;
        let local = |p: i64| local_time(zone, self.time(p));
        let offset = |p: i64| local(p).map(|l| l - self.time(p));
        let (Some(now), Some(then)) = (offset(period), offset(back)) else { return lag };
        if now == then {
            return lag;
        }
        let candidate = back + ((now - then) / HOUR).round() as i64;
        let wanted = local(period).map(|l| l - (lag / 24) as f64 * DAY);
        if candidate < period && local(candidate) == wanted {
            (period - candidate) as usize
        } else {
            lag
        }
    }

    /// `time` on the wall clock of the grid's zone (UTC without one).
    fn wall_clock(&self, time: f64) -> f64 {
        self.zone.and_then(|zone| local_time(zone, time)).unwrap_or(time)
    }

    /// A period's time as the forecast tables write it: [`format_period_time`],
    /// or with a zone, its wall-clock time and offset
    /// (`2024-03-10T03:00:00-04:00`), so the two hours that share a local
    /// label when daylight saving ends stay apart.
    pub fn format(&self, time: f64) -> String {
        if self.quarters && time.is_finite() && time.abs() <= MAX_ABS_TIME {
            let (year, month, _) = civil_from_days((time / DAY).floor() as i64);
            return format!("{year:04}-Q{}", (month - 1) / 3 + 1);
        }
        if self.months {
            let text = format_period_time(time, self.frequency);
            return text.get(..7).filter(|_| text.len() == 10).unwrap_or(&text).to_owned();
        }
        let local = self.wall_clock(time);
        if self.zone.is_none() || !time.is_finite() || time.abs() > MAX_ABS_TIME {
            return format_period_time(time, self.frequency);
        }
        let offset = (local - time).round() as i64;
        let text = format_period_time(local, self.frequency);
        let stem = text.strip_suffix('Z').unwrap_or(&text);
        let sign = if offset < 0 { '-' } else { '+' };
        let minutes = offset.abs() / 60;
        format!("{stem}{sign}{:02}:{:02}", minutes / 60, minutes % 60)
    }

    /// The period of `time`, or why it has none (not finite, too far, off the grid).
    pub fn period(&self, time: f64) -> std::result::Result<i64, String> {
        if !time.is_finite() {
            return Err(format!("time is {time}"));
        }
        if time.abs() > MAX_ABS_TIME {
            return Err(format!("time {time} s is out of range"));
        }
        match self.frequency.fixed_step() {
            Some(step) => {
                let steps = ((time - self.phase) / step).round();
                let on_grid = self.phase + steps * step;
                if (time - on_grid).abs() > GRID_TOLERANCE {
                    return Err(format!(
                        "time {} is not on the {} grid through {}",
                        self.format(time),
                        self.frequency,
                        self.format(on_grid)
                    ));
                }
                Ok(steps as i64)
            }
            None => {
                let (year, month, _) = civil_from_days((time / DAY).floor() as i64);
                let month_index = i64::from(month) - 1;
                Ok(match self.frequency {
                    Frequency::Quarterly => year * 4 + month_index / 3,
                    _ => year * 12 + month_index,
                })
            }
        }
    }

    /// The timestamp of `period`.
    pub fn time(&self, period: i64) -> f64 {
        if let Some(step) = self.frequency.fixed_step() {
            return self.phase + period as f64 * step;
        }
        let month_number = match self.frequency {
            Frequency::Quarterly => period * 3 + i64::from(self.month_of_quarter),
            _ => period,
        };
        let year = month_number.div_euclid(12);
        let month = month_number.rem_euclid(12) as u32 + 1;
        let length = days_in_month(year, month);
        let day = match self.month_day {
            MonthDay::Day(day) => day.min(length),
            MonthDay::Last => length,
        };
        days_from_civil(year, month, day) as f64 * DAY + self.seconds_of_day
    }

    /// Calendar features of `period` in [`Grid::calendar_names`] order, into `out`.
    pub fn calendar_into(&self, period: i64, out: &mut [f32]) {
        let time = self.wall_clock(self.time(period));
        let days = (time / DAY).floor();
        let (year, month, day) = civil_from_days(days as i64);
        let day_of_week = (days as i64 + 3).rem_euclid(7); // 1970-01-01 was a Thursday; Monday is 0.
        let day_of_year = days as i64 - days_from_civil(year, 1, 1);
        let hour = ((time - days * DAY) / HOUR).floor();
        let values: &[f64] = match self.frequency {
            Frequency::Hourly => &[hour, day_of_week as f64],
            Frequency::Daily => {
                &[day_of_week as f64, f64::from(day), f64::from(month), day_of_year as f64]
            }
            Frequency::Weekly => &[(day_of_year / 7) as f64, f64::from(month)],
            Frequency::Monthly => &[f64::from(month)],
            Frequency::Quarterly => &[f64::from((month - 1) / 3 + 1)],
        };
        for (slot, value) in out.iter_mut().zip(values) {
            *slot = *value as f32;
        }
    }

    /// Signed days from `period` (its first day) to the nearest Easter Sunday
    /// and the nearest Black Friday, each within `±HOLIDAY_REACH` days.
    ///
    /// These are the two yearly retail events whose date moves, so that day
    /// of year and month cannot place them; fixed-date holidays (Christmas,
    /// New Year) are already placed by the calendar features.
    pub fn holidays_into(&self, period: i64, out: &mut [f32]) {
        let days = (self.wall_clock(self.time(period)) / DAY).floor() as i64;
        let (year, _, _) = civil_from_days(days);
        let nearest = |holiday: fn(i64) -> i64| -> f32 {
            let distance = [year - 1, year, year + 1]
                .into_iter()
                .map(|y| days - holiday(y))
                .min_by_key(|d| d.abs())
                .unwrap_or(HOLIDAY_REACH);
            distance.clamp(-HOLIDAY_REACH, HOLIDAY_REACH) as f32
        };
        let values = [nearest(easter_sunday), nearest(black_friday)];
        for (slot, value) in out.iter_mut().zip(values) {
            *slot = value;
        }
    }

    /// Names of the holiday features, in [`Grid::holidays_into`] order.
    pub const HOLIDAY_NAMES: [&'static str; 2] = ["days_from_easter", "days_from_black_friday"];

    /// Names of the calendar features of this frequency.
    pub fn calendar_names(frequency: Frequency) -> &'static [&'static str] {
        match frequency {
            Frequency::Hourly => &["hour", "day_of_week"],
            Frequency::Daily => &["day_of_week", "day_of_month", "month", "day_of_year"],
            Frequency::Weekly => &["week_of_year", "month"],
            Frequency::Monthly => &["month"],
            Frequency::Quarterly => &["quarter"],
        }
    }
}

/// How far (in days) the holiday features tell one day from another; beyond,
/// every day is "far from the holiday" alike.
const HOLIDAY_REACH: i64 = 14;

/// Western Easter Sunday of `year` (Gregorian computus, the anonymous
/// algorithm of Meeus, *Astronomical Algorithms*, ch. 8), in days since the epoch.
pub(crate) fn easter_sunday(year: i64) -> i64 {
    let a = year.rem_euclid(19);
    let b = year.div_euclid(100);
    let c = year.rem_euclid(100);
    let d = b.div_euclid(4);
    let e = b.rem_euclid(4);
    let f = (b + 8).div_euclid(25);
    let g = (b - f + 1).div_euclid(3);
    let h = (19 * a + b - d - g + 15).rem_euclid(30);
    let i = c.div_euclid(4);
    let k = c.rem_euclid(4);
    let l = (32 + 2 * e + 2 * i - h - k).rem_euclid(7);
    let m = (a + 11 * h + 22 * l).div_euclid(451);
    let month = (h + l - 7 * m + 114).div_euclid(31);
    let day = (h + l - 7 * m + 114).rem_euclid(31) + 1;
    days_from_civil(year, month as u32, day as u32)
}

/// Black Friday of `year`: the day after the fourth Thursday of November
/// (US Thanksgiving), in days since the epoch.
pub(crate) fn black_friday(year: i64) -> i64 {
    let first = days_from_civil(year, 11, 1);
    let weekday = (first + 3).rem_euclid(7); // Monday is 0, as in `calendar_into`.
    let first_thursday = first + (3 - weekday).rem_euclid(7);
    first_thursday + 21 + 1
}

/// The frequency of series given as sorted timestamps: the class (hourly,
/// daily, …) of the most common gap between consecutive timestamps.
pub(crate) fn infer<'a>(series: impl Iterator<Item = &'a [f64]>) -> Result<Frequency> {
    let mut votes = [0usize; 5];
    let mut gaps = 0usize;
    let mut shorter_than_an_hour = 0usize;
    for times in series {
        for pair in times.windows(2) {
            let gap = pair[1] - pair[0];
            if gap > 0.0 {
                gaps += 1;
                if let Some(frequency) = Frequency::of_gap(gap) {
                    votes[frequency as usize] += 1;
                } else if gap < HOUR {
                    shorter_than_an_hour += 1;
                }
            }
        }
    }
    let (best, count) = votes
        .iter()
        .enumerate()
        .max_by_key(|&(idx, count)| (*count, std::cmp::Reverse(idx)))
        .map_or((0, 0), |(idx, count)| (idx, *count));
    if count == 0 {
        let hint = if shorter_than_an_hour * 2 > gaps {
            format!(
                "; {shorter_than_an_hour} are shorter than an hour, the shortest period \
                 forecast: group the rows into hours or days (--aggregate sum, mean, last, min, \
                 max or count, with --frequency H or D; `aggregate` in vigie.toml)"
            )
        } else {
            "; give the frequency".to_owned()
        };
        return Err(MlError::InvalidData(format!(
            "cannot infer the frequency: none of the {gaps} gaps between consecutive timestamps \
             is an hour, a day, a week, a month or a quarter{hint}"
        )));
    }
    Ok(Frequency::ALL[best])
}

/// Reads an ISO 8601 time into seconds since the Unix epoch (UTC): a month
/// (`2024-03`, its first day), a date (`2024-03-05`), or a date and time
/// (`2024-03-05T13:00`, `2024-03-05 13:00:00`, optional fraction of a second,
/// optional `Z` or `+HH:MM` / `-HH:MM` offset). Says what is wrong otherwise.
pub fn parse_time(text: &str) -> std::result::Result<f64, String> {
    parse_written_time(text).map(|(seconds, _)| seconds)
}

/// How every time of a training table was written, when all alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeWriting {
    /// Dates or times (`2024-03-05`, `2024-03-05T13:00:00Z`), or a mix.
    #[default]
    Dates,
    /// Months (`2024-03`).
    Months,
    /// Quarters (`2024-Q1`, `2024Q1`).
    Quarters,
}

impl TimeWriting {
    /// How `text`, one time of a table, is written.
    pub(crate) fn of(text: &str) -> TimeWriting {
        let text = text.trim();
        let month = text.split_once('-').is_some_and(|(year, month)| {
            year.len() == 4
                && (1..=2).contains(&month.len())
                && text.bytes().filter(|&b| b != b'-').all(|b| b.is_ascii_digit())
        });
        if month {
            TimeWriting::Months
        } else if written_quarter(text).is_some() {
            TimeWriting::Quarters
        } else {
            TimeWriting::Dates
        }
    }

    /// Why times all written this way cannot be periods of `frequency`, or
    /// `None` when they can: a quarter names no single month, a month no
    /// single day, week or hour. (Training finds it too, as gaps; a forecast's
    /// few newer rows might have none.)
    pub(crate) fn refused_by(self, frequency: Frequency) -> Option<String> {
        let finer_than_a_month =
            matches!(frequency, Frequency::Hourly | Frequency::Daily | Frequency::Weekly);
        let (what, example) = match self {
            TimeWriting::Quarters if frequency != Frequency::Quarterly => ("quarters", "2024-Q1"),
            TimeWriting::Months if finer_than_a_month => ("months", "2024-03"),
            _ => return None,
        };
        Some(format!(
            "the times are {what} (like {example}), which are not {} periods: write each row's \
             date (or time)",
            frequency.name()
        ))
    }
}

/// The year and quarter of a quarter written `2019-Q1`, `2019Q1` (as
/// pandas writes a quarterly period) or `2019-q1`; `None` for other text.
fn written_quarter(text: &str) -> Option<(i64, u32)> {
    let (year, quarter) = text.split_once(['Q', 'q'])?;
    let year = year.strip_suffix('-').unwrap_or(year);
    let digits =
        |part: &str, len: usize| part.len() == len && part.bytes().all(|b| b.is_ascii_digit());
    if !(digits(year, 4) && digits(quarter, 1)) {
        return None;
    }
    Some((year.parse().ok()?, quarter.parse().ok()?))
}

/// [`parse_time`], and whether the text named its offset (`Z`, `+01:00`):
/// without one, the seconds are those of the wall clock it was written on.
pub(crate) fn parse_written_time(text: &str) -> std::result::Result<(f64, bool), String> {
    let text = text.trim();
    let expected = "expected a date like 2024-03-05 or a time like 2024-03-05T13:00:00";
    let bad = |what: &str| format!("{text:?} is not a time ({what}; {expected})");
    let (date, rest) = match text.find(['T', 't', ' ']) {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
    };
    if rest.is_none()
        && let Some((year, quarter)) = written_quarter(date)
    {
        if !(1..=4).contains(&quarter) {
            return Err(bad("quarter out of range"));
        }
        return Ok((days_from_civil(year, 3 * quarter - 2, 1) as f64 * DAY, false));
    }
    let mut parts = date.split('-');
    let number = |part: Option<&str>, digits: std::ops::RangeInclusive<usize>, what: &str| {
        part.filter(|p| digits.contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|p| p.parse::<i64>().ok())
            .ok_or_else(|| bad(what))
    };
    let year = number(parts.next(), 4..=4, "the year needs four digits")?;
    let month = number(parts.next(), 1..=2, "no month")?;
    let day = match parts.next() {
        Some(day) => number(Some(day), 1..=2, "bad day")?,
        None if rest.is_none() => 1,
        None => return Err(bad("no day")),
    };
    if parts.next().is_some() {
        return Err(bad("too many parts in the date"));
    }
    if !(1..=12).contains(&month) {
        return Err(bad("month out of range"));
    }
    let month = month as u32;
    if day < 1 || day > i64::from(days_in_month(year, month)) {
        return Err(bad("day out of range"));
    }
    let mut seconds = days_from_civil(year, month, day as u32) as f64 * DAY;
    let Some(clock) = rest else {
        return Ok((seconds, false));
    };
    let (clock, offset) = match clock.find(['Z', 'z', '+', '-']) {
        Some(at) => (&clock[..at], Some(&clock[at..])),
        None => (clock, None),
    };
    let mut fields = clock.split(':');
    let hour = number(fields.next(), 1..=2, "bad hour")?;
    let minute = number(fields.next(), 2..=2, "bad minute")?;
    let second: f64 = match fields.next() {
        None => 0.0,
        Some(field) => {
            let whole = field.split('.').next().unwrap_or_default();
            if whole.len() != 2 {
                return Err(bad("bad second"));
            }
            field.parse().map_err(|_| bad("bad second"))?
        }
    };
    if fields.next().is_some() || hour > 23 || minute > 59 || !(0.0..61.0).contains(&second) {
        return Err(bad("clock out of range"));
    }
    seconds += hour as f64 * HOUR + minute as f64 * 60.0 + second;
    match offset {
        None => {}
        Some(zulu) if zulu.eq_ignore_ascii_case("z") => {}
        Some(offset) => {
            let sign = if offset.starts_with('-') { -1.0 } else { 1.0 };
            let mut fields = offset[1..].split(':');
            let hours = number(fields.next(), 2..=2, "bad offset")?;
            let minutes = match fields.next() {
                Some(m) => number(Some(m), 2..=2, "bad offset")?,
                None => 0,
            };
            if hours > 23 || minutes > 59 {
                return Err(bad("offset out of range"));
            }
            seconds -= sign * (hours as f64 * HOUR + minutes as f64 * 60.0);
        }
    }
    Ok((seconds, offset.is_some()))
}
