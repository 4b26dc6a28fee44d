//! Unit tests of the forecasting internals: civil dates and the grid, the
//! incremental history, the global model's feature row, ETS on series with a
//! known answer, and conformal interval widths.

use super::calendar::{
    Grid, TimeWriting, black_friday, civil_from_days, days_from_civil, easter_sunday,
    format_period_time, format_time, parse_time, period_start,
};
use super::ets::{EtsFit, SeasonKind, TrendKind};
use super::global::{FeatureSpec, Known};
use super::interval::{IntervalWidths, Residual, interval_score, relative_level};
use super::periods::{group_future, group_history};
use super::state::{CovariateColumns, History, Summary};
use super::*;

const DAY: f64 = 86_400.0;

#[test]
fn civil_dates_round_trip() {
    assert_eq!(days_from_civil(1970, 1, 1), 0);
    assert_eq!(civil_from_days(0), (1970, 1, 1));
    // 2000-03-01 is day 11,017 (Python: date(2000, 3, 1) - date(1970, 1, 1)).
    assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    assert_eq!(civil_from_days(-1), (1969, 12, 31));
    for days in -800_000..800_000 {
        let (y, m, d) = civil_from_days(days);
        assert_eq!(days_from_civil(y, m, d), days);
    }
    assert_eq!(format_time(0.0), "1970-01-01");
    assert_eq!(format_time(DAY + 3_723.0), "1970-01-02T01:02:03Z");
    assert_eq!(format_time(f64::NAN), "NaN s");
    // An hourly column writes midnight with its clock too; a daily one writes dates.
    assert_eq!(format_period_time(DAY, Frequency::Hourly), "1970-01-02T00:00:00Z");
    assert_eq!(format_period_time(DAY + 3_600.0, Frequency::Hourly), "1970-01-02T01:00:00Z");
    assert_eq!(format_period_time(DAY, Frequency::Daily), "1970-01-02");
}

#[test]
fn times_parse_from_iso_8601_and_back() {
    // 2000-03-01 is day 11,017 (as above).
    let march_first = 11_017.0 * DAY;
    assert_eq!(parse_time("2000-03-01"), Ok(march_first));
    assert_eq!(parse_time(" 2000-03 "), Ok(march_first));
    // Quarters, as people and pandas write them, start on their first month.
    let first_of = |month: u32| days_from_civil(2000, month, 1) as f64 * DAY;
    assert_eq!(parse_time("2000-Q1"), Ok(first_of(1)));
    assert_eq!(parse_time("2000Q2"), Ok(first_of(4)));
    assert_eq!(parse_time("2000-q4"), Ok(first_of(10)));
    assert!(parse_time("2000-Q5").unwrap_err().contains("quarter out of range"));
    assert!(parse_time("2000-Q1T10:00").is_err());
    assert_eq!(parse_time("2000-03-01T13:05"), Ok(march_first + 13.0 * 3600.0 + 300.0));
    assert_eq!(parse_time("2000-03-01 13:05:07.5"), Ok(march_first + 47_107.5));
    assert_eq!(parse_time("2000-03-01T13:00:00Z"), Ok(march_first + 13.0 * 3600.0));
    assert_eq!(parse_time("2000-03-01T13:00:00+02:00"), Ok(march_first + 11.0 * 3600.0));
    assert_eq!(parse_time("2000-03-01T13:00:00-01:30"), Ok(march_first + 14.5 * 3600.0));
    for time in [0.0, march_first, march_first + 3_723.0, -DAY] {
        assert_eq!(parse_time(&format_time(time)), Ok(time));
    }
    for (text, reason) in [
        ("2000-02-30", "day out of range"),
        ("2000-13-01", "month out of range"),
        ("00-01-01", "four digits"),
        ("2000-01-01T25:00", "clock out of range"),
        ("2000-01-01T10:7", "bad minute"),
        ("yesterday", "four digits"),
        ("2000-01-01-05", "too many parts"),
        ("", "four digits"),
    ] {
        let message = parse_time(text).expect_err(text);
        assert!(message.contains(reason), "{text:?}: {message}");
        assert!(message.contains("2024-03-05"), "{message}");
    }
}

/// A quarter is no month, a month no day, week or hour; a date is any period's.
#[test]
fn times_written_as_quarters_or_months_are_refused_by_finer_periods() {
    use Frequency::*;
    for frequency in [Hourly, Daily, Weekly, Monthly, Quarterly] {
        assert_eq!(TimeWriting::Dates.refused_by(frequency), None, "{frequency:?}");
        let quarters = TimeWriting::Quarters.refused_by(frequency);
        assert_eq!(quarters.is_some(), frequency != Quarterly, "{frequency:?}");
        let months = TimeWriting::Months.refused_by(frequency);
        assert_eq!(months.is_some(), !matches!(frequency, Monthly | Quarterly), "{frequency:?}");
    }
    assert_eq!(
        TimeWriting::Quarters.refused_by(Monthly).unwrap(),
        "the times are quarters (like 2024-Q1), which are not monthly periods: write each row's \
         date (or time)"
    );
}

#[test]
fn grids_number_periods_and_give_their_times_back() {
    let month_end = days_from_civil(2023, 1, 31) as f64 * DAY;
    let monthly = Grid::through(Frequency::Monthly, month_end);
    let period = monthly.period(month_end).unwrap();
    assert_eq!(period, 2023 * 12);
    assert_eq!(monthly.time(period + 1), days_from_civil(2023, 2, 28) as f64 * DAY);
    assert_eq!(monthly.time(period + 13), days_from_civil(2024, 2, 29) as f64 * DAY);
    let fifteenth = days_from_civil(2023, 1, 15) as f64 * DAY;
    let quarterly = Grid::through(Frequency::Quarterly, fifteenth);
    assert_eq!(quarterly.period(fifteenth).unwrap(), 2023 * 4);
    assert_eq!(quarterly.time(2023 * 4 + 1), days_from_civil(2023, 4, 15) as f64 * DAY);
    let sunday = days_from_civil(2024, 1, 7) as f64 * DAY;
    let weekly = Grid::through(Frequency::Weekly, sunday);
    let period = weekly.period(sunday + 7.0 * DAY).unwrap();
    assert_eq!(weekly.time(period), sunday + 7.0 * DAY);
    assert!(weekly.period(sunday + DAY).is_err());
    assert!(weekly.period(f64::INFINITY).is_err());
    assert!(weekly.period(1e300).is_err());
    let mut calendar = [0f32; 4];
    let daily = Grid::through(Frequency::Daily, sunday);
    daily.calendar_into(daily.period(sunday).unwrap(), &mut calendar);
    // Sunday is day 6 of the week (Monday 0), 7 January, day 6 of the year (from 0).
    assert_eq!(calendar, [6.0, 7.0, 1.0, 6.0]);
}

#[test]
fn moving_holidays_fall_on_their_dates() {
    // Easter Sundays and Black Fridays from published calendars.
    for (year, month, day) in
        [(2011, 4, 24), (2019, 4, 21), (2023, 4, 9), (2024, 3, 31), (2038, 4, 25)]
    {
        assert_eq!(civil_from_days(easter_sunday(year)), (year, month, day));
    }
    for (year, day) in [(2011, 25), (2019, 29), (2023, 24), (2024, 29), (2025, 28)] {
        assert_eq!(civil_from_days(black_friday(year)), (year, 11, day));
    }
    let daily = Grid::through(Frequency::Daily, 0.0);
    let mut holidays = [0f32; 2];
    let at = |year, month, day| days_from_civil(year, month, day);
    // 2024-11-30: 1 day after Black Friday; the nearest Easter is the next
    // one, 141 days ahead (clamped to 14).
    daily.holidays_into(at(2024, 11, 30), &mut holidays);
    assert_eq!(holidays, [-14.0, 1.0]);
    // 2024-03-29, Good Friday: 2 days before Easter; the last Black Friday is far behind.
    daily.holidays_into(at(2024, 3, 29), &mut holidays);
    assert_eq!(holidays, [-2.0, 14.0]);
    // 2024-01-02 is nearer the previous Black Friday than the next: still far.
    daily.holidays_into(at(2024, 1, 2), &mut holidays);
    assert_eq!(holidays, [-14.0, 14.0]);
}

#[test]
fn hourly_calendars_follow_the_wall_clock_of_a_zone_across_daylight_saving() {
    let new_york = vigie_core::zone::parse_time_zone("America/New_York").ok();
    let first = parse_time("2024-03-09T00:00:00Z").expect("a time");
    let utc = Grid::through(Frequency::Hourly, first);
    let local = utc.in_zone(new_york);
    let hour_and_day = |grid: &Grid, time: &str| {
        let mut calendar = [0f32; 2];
        grid.calendar_into(grid.period(parse_time(time).expect("a time")).unwrap(), &mut calendar);
        calendar
    };
    // 14:00 UTC is 9 a.m. in New York on Saturday 9 March (UTC-5) and, once
    // daylight saving starts on Sunday 10 March, 13:00 UTC is (UTC-4).
    assert_eq!(hour_and_day(&local, "2024-03-09T14:00:00Z"), [9.0, 5.0]);
    assert_eq!(hour_and_day(&local, "2024-03-11T13:00:00Z"), [9.0, 0.0]);
    assert_eq!(hour_and_day(&utc, "2024-03-11T13:00:00Z"), [13.0, 0.0]);
    // 03:00 UTC on Sunday is still Saturday evening in New York.
    assert_eq!(hour_and_day(&local, "2024-03-10T03:00:00Z"), [22.0, 5.0]);
    // Written times carry the wall clock and its offset: the hour daylight
    // saving skips (02:00-02:59 local on 10 March) never appears, and each
    // UTC hour has its own label.
    let written: Vec<String> = ["2024-03-10T06:00:00Z", "2024-03-10T07:00:00Z"]
        .iter()
        .map(|t| local.format(parse_time(t).expect("a time")))
        .collect();
    assert_eq!(written, ["2024-03-10T01:00:00-05:00", "2024-03-10T03:00:00-04:00"]);
    for text in &written {
        let back = parse_time(text).expect("read back");
        assert_eq!(local.format(back), *text);
    }
    assert_eq!(utc.format(parse_time("2024-03-10T07:00:00Z").unwrap()), "2024-03-10T07:00:00Z");
    // Holidays by the local date: 03:30 UTC on 30 November is Black Friday evening in New York.
    let mut holidays = [0f32; 2];
    local.holidays_into(
        local.period(parse_time("2024-11-30T03:00:00Z").unwrap()).unwrap(),
        &mut holidays,
    );
    assert_eq!(holidays[1], 0.0);
    utc.holidays_into(
        utc.period(parse_time("2024-11-30T03:00:00Z").unwrap()).unwrap(),
        &mut holidays,
    );
    assert_eq!(holidays[1], 1.0);
    // Only hourly grids take a zone; a saved grid keeps it, an older one reads UTC.
    let daily = Grid::through(Frequency::Daily, first);
    assert_eq!(daily.in_zone(new_york), daily);
    let saved = serde_json::to_value(local).expect("saved");
    assert_eq!(saved["zone"], "America/New_York");
    assert_eq!(serde_json::from_value::<Grid>(saved.clone()).expect("read"), local);
    let mut older = saved;
    older.as_object_mut().expect("an object").remove("zone");
    assert_eq!(serde_json::from_value::<Grid>(older).expect("read"), utc);
}

#[test]
fn a_history_grown_in_steps_equals_one_built_at_once() {
    let values: Vec<f64> =
        (0..500).map(|t| 100.0 + (t % 7) as f64 * 3.0 + (t as f64 * 0.37).sin()).collect();
    let past: Vec<f64> = (0..500).map(|t| t as f64).collect();
    let future: Vec<f64> = (0..500).map(|t| (t * t) as f64).collect();
    let (past_all, future_all) = ([&past[..]], [&future[..]]);
    let (past_first, future_first) = ([&past[..123]], [&future[..123]]);
    let all = CovariateColumns { past: &past_all, future: &future_all, future_keep: 30 };
    let first = CovariateColumns { past: &past_first, future: &future_first, future_keep: 30 };
    let whole = History::of(10, &values, all, 100, 7);
    let mut grown = History::of(10, &values[..123], first, 100, 7);
    for t in 123..500 {
        grown.push(values[t], &[past[t]], &[future[t]]);
    }
    grown.compact();
    assert_eq!(grown, whole);
    assert_eq!(whole.last_period, 509);
    assert_eq!(whole.recent(), &values[129..]);
    assert_eq!(whole.past_covariates, [499.0]);
    assert_eq!(whole.covariate_tails, [&future[470..]]);
    let seasonal_mae = (7..500).map(|t| (values[t] - values[t - 7]).abs()).sum::<f64>() / 493.0;
    assert!((whole.summary.scale().unwrap() - seasonal_mae).abs() < 1e-9);
    // A constant series has no seasonal error: the scale falls back to its mean absolute value.
    let constant = History::of(0, &[5.0; 20], CovariateColumns::default(), 7, 7);
    assert_eq!(constant.summary.scale(), Some(5.0));
    assert_eq!(constant.interval_scale(), 5.0);
    let zeros = History::of(0, &[0.0; 20], CovariateColumns::default(), 7, 7);
    assert_eq!(zeros.summary.scale(), None);
    assert_eq!(zeros.interval_scale(), 1.0);
}

#[test]
fn the_interval_scale_reads_recent_errors_and_leaves_out_an_outlier() {
    // Seasonal differences of 2, one day of 1,000,000 among them.
    let mut values: Vec<f64> =
        (0..200).map(|t| 100.0 + (t % 7) as f64 + 2.0 * (t / 7) as f64).collect();
    let calm = History::of(0, &values, CovariateColumns::default(), 7, 7);
    assert!((calm.interval_scale() - 2.0).abs() < 1e-9, "{}", calm.interval_scale());
    values[180] = 1_000_000.0;
    let outlier = History::of(0, &values, CovariateColumns::default(), 7, 7);
    assert!((outlier.interval_scale() - 2.0).abs() < 1e-9, "{}", outlier.interval_scale());
    assert!(outlier.summary.scale().unwrap() > 10_000.0);
    // A perfectly seasonal series falls back to its one-step differences.
    let weekly: Vec<f64> = (0..70).map(|t| 10.0 * (t % 7 + 1) as f64).collect();
    let weekly = History::of(0, &weekly, CovariateColumns::default(), 7, 7);
    // Of its 69 one-step differences, 60 are 10 and 9 are 60; the 7 largest are left out.
    let expected = (60.0 * 10.0 + 2.0 * 60.0) / 62.0;
    assert!((weekly.interval_scale() - expected).abs() < 1e-9, "{}", weekly.interval_scale());
}

#[test]
fn feature_rows_are_ratios_to_the_last_season() {
    let spec = FeatureSpec {
        frequency: Frequency::Daily,
        season: 7,
        lags: vec![1, 7, 30],
        windows: vec![14],
        future_covariates: vec!["promo".into()],
        past_covariates: vec!["footfall".into()],
        holidays: false,
        year_ago: 0,
        day_of_year: true,
        seasonal_mean: 4,
        wall_clock_lags: false,
        covariate_lags: vec![7, 25],
    };
    let grid = Grid::through(Frequency::Daily, 0.0);
    // The promotion before the target: 1 on days 0, 10 and 13, 0 otherwise.
    let promos: Vec<f64> = (0..20).map(|t| f64::from(u8::from([0, 10, 13].contains(&t)))).collect();
    let recent: Vec<f64> = (1..=20).map(f64::from).collect();
    let mut summary = Summary::new();
    for (t, &value) in recent.iter().enumerate() {
        summary.push(&recent[..t], value, 7);
    }
    let mut row = vec![0f32; spec.n_features()];
    let known = Known {
        recent: &recent,
        summary: &summary,
        past_covariates: &[0.5],
        covariates_before: &[&promos],
    };
    let level = spec.write_row(&grid, &known, 20, &[1.0], &mut row);
    // Level: mean of 14..=20.
    assert_eq!(level, 17.0);
    let names: Vec<String> = spec.feature_infos().into_iter().map(|f| f.name).collect();
    assert_eq!(
        names,
        [
            "lag_1",
            "lag_7",
            "lag_30",
            "rolling_mean_14",
            "seasonal_mean_4",
            "rolling_std_7",
            "history_mean",
            "history_std",
            "day_of_week",
            "day_of_month",
            "month",
            "day_of_year",
            "promo",
            "footfall_last",
            "promo_lag_7",
            "promo_lag_25"
        ]
    );
    assert_eq!(spec.covariate_keep(), 25);
    // The values kept reach the longest lag, the season and the seasons averaged.
    assert_eq!(spec.keep(), 30);
    let short = FeatureSpec { lags: vec![1], windows: vec![], seasonal_mean: 0, ..spec.clone() };
    assert_eq!(short.keep(), 7);
    assert_eq!(FeatureSpec { seasonal_mean: 6, ..short }.keep(), 42);
    assert_eq!(row[0], (20.0 / 17.0) as f32);
    assert_eq!(row[1], (14.0 / 17.0) as f32);
    assert!(row[2].is_nan(), "lag 30 is before the first value");
    assert_eq!(row[3], (13.5 / 17.0) as f32);
    // The values one and two seasons back (14 and 7); three and four are before the first.
    assert_eq!(row[4], (10.5 / 17.0) as f32);
    // Population standard deviation of 14..=20 is 2.
    assert_eq!(row[5], (2.0 / 17.0) as f32);
    assert_eq!(row[6], (10.5 / 17.0) as f32);
    // 1970-01-21 was a Wednesday.
    assert_eq!(&row[8..12], [2.0, 21.0, 1.0, 20.0]);
    // The promotion at the target, the footfall before it, the promotion a
    // week before (day 13) and 25 days before (before the first value).
    assert_eq!(&row[12..15], [1.0, 0.5, 1.0]);
    assert!(row[15].is_nan());
    // Scaling the history scales nothing in the row.
    let big: Vec<f64> = recent.iter().map(|v| v * 1000.0).collect();
    let mut big_summary = Summary::new();
    for (t, &value) in big.iter().enumerate() {
        big_summary.push(&big[..t], value, 7);
    }
    let mut big_row = vec![0f32; spec.n_features()];
    let big_known = Known { covariates_before: &[&promos], ..known };
    let big_known = Known { recent: &big, summary: &big_summary, ..big_known };
    let big_level = spec.write_row(&grid, &big_known, 20, &[1.0], &mut big_row);
    assert_eq!(big_level, 17_000.0);
    for (a, b) in row.iter().zip(&big_row) {
        assert!(
            a == b || (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-6 * a.abs(),
            "{a} vs {b}"
        );
    }
}

/// A noise-free series: level, slope and a seasonal pattern of `m`.
fn seasonal_series(n: usize, m: usize, multiplicative: bool) -> Vec<f64> {
    (0..n)
        .map(|t| {
            let trend = 100.0 + 0.5 * t as f64;
            let season = [0.8, 1.0, 1.3, 0.9, 1.1, 1.2, 0.7][t % m];
            if multiplicative { trend * season } else { trend + 20.0 * (season - 1.0) }
        })
        .collect()
}

#[test]
fn ets_forecasts_a_clean_seasonal_series() {
    for multiplicative in [false, true] {
        let values = seasonal_series(7 * 30 + 14, 7, multiplicative);
        let (train, test) = values.split_at(7 * 30);
        let fit = EtsFit::fit(train, 0, 7).unwrap();
        let forecast =
            fit.forecast(&Grid::through(Frequency::Daily, 0.0), train.len() as i64 - 1, 14);
        let error = forecast.iter().zip(test).map(|(f, y)| (f - y).abs() / y).fold(0.0, f64::max);
        assert!(error < 0.02, "{} relative error {error}", fit.form());
        // The slope is constant: the undamped trend fits as well with one parameter fewer.
        assert_eq!(fit.trend, TrendKind::Additive, "{}", fit.form());
        let expected =
            if multiplicative { SeasonKind::Multiplicative } else { SeasonKind::Additive };
        assert_eq!(fit.season, expected, "{}", fit.form());
    }
    // Too short for two seasons: no fit.
    assert!(EtsFit::fit(&[1.0; 13], 0, 7).is_none());
}

#[test]
fn ets_updated_with_its_own_forecasts_keeps_forecasting_the_same() {
    let values: Vec<f64> = seasonal_series(120, 7, true)
        .iter()
        .enumerate()
        .map(|(t, v)| v * (1.0 + 0.05 * (t as f64 * 1.7).sin()))
        .collect();
    let fit = EtsFit::fit(&values, 3, 7).unwrap();
    let last = 3 + values.len() as i64 - 1;
    let grid = Grid::through(Frequency::Daily, 0.0);
    let forecast = fit.forecast(&grid, last, 10);
    let mut updated = fit.clone();
    for (step, &value) in forecast.iter().take(4).enumerate() {
        assert!(updated.update(last + 1 + step as i64, value));
    }
    let after = updated.forecast(&grid, last + 4, 6);
    for (a, b) in after.iter().zip(&forecast[4..]) {
        assert!((a - b).abs() <= 1e-9 * b.abs(), "{a} vs {b}");
    }
}

/// The name of the one series of [`flat`]'s residuals.
fn one() -> Vec<String> {
    vec!["s".to_owned()]
}

/// Residuals at a relative level of 1, as the intervals had before they scaled with the level.
fn flat(by_step: Vec<Vec<f64>>) -> Vec<Vec<Residual>> {
    by_step
        .into_iter()
        .map(|step| {
            step.into_iter().map(|scaled| Residual { scaled, level: 1.0, series: 0 }).collect()
        })
        .collect()
}

#[test]
fn interval_widths_are_conformal_quantiles_per_step() {
    // One step, residuals 1..=19: the 95% rank is ceil(20 * 0.95) = 19, the 80% rank 16.
    let residuals = flat(vec![(1..=19).rev().map(f64::from).collect::<Vec<_>>()]);
    let widths = IntervalWidths::calibrate(&residuals, &one()).unwrap();
    assert_eq!((widths.width_80.clone(), widths.width_95.clone()), (vec![16.0], vec![19.0]));
    assert_eq!(widths.at(1), Some((16.0, 19.0)));
    assert_eq!(widths.at(0), None);
    assert_eq!(widths.at(2), None);
    // At level 1 every power scores alike, and the first, 0, is kept.
    assert_eq!(widths.level_power, 0.0);
    assert_eq!(widths.at_level(1, 9.0), Some((16.0, 19.0)));
    // Steps pool their neighbours, further while they hold fewer than 200
    // residuals: here every step pools all 31 (ranks 26 and 31).
    let sparse = flat(vec![(1..=30).map(f64::from).collect(), Vec::new(), Vec::new(), vec![50.0]]);
    let widths = IntervalWidths::calibrate(&sparse, &one()).unwrap();
    assert_eq!(widths.width_80, [26.0; 4]);
    assert_eq!(widths.width_95, [50.0; 4]);
    // With enough residuals, a step pools only the steps beside it: 300 per step, the
    // first step's pool is steps 1 and 2 (600 values), the fourth's steps 3 to 5.
    let dense = flat((0..5).map(|h| vec![f64::from(h); 300]).collect());
    let widths = IntervalWidths::calibrate(&dense, &one()).unwrap();
    assert_eq!(widths.width_80, [1.0, 2.0, 3.0, 4.0, 4.0]);
    assert_eq!(widths.width_95, [1.0, 2.0, 3.0, 4.0, 4.0]);
    assert!(IntervalWidths::calibrate(&[Vec::new()], &one()).is_none());
}

#[test]
fn one_erratic_series_widens_its_own_intervals_and_not_the_others() {
    // Three windows of 14 days: nine series miss by 1..=10 scale units, the tenth (a
    // level shift) by 70 times that.
    let names: Vec<String> = (0..10).map(|i| format!("s{i}")).collect();
    let step: Vec<Residual> = (0..10)
        .flat_map(|series| {
            let size = if series == 9 { 70.0 } else { 1.0 };
            (0..42).map(move |k| Residual {
                scaled: size * f64::from(k % 10 + 1),
                level: 1.0,
                series,
            })
        })
        .collect();
    let widths = IntervalWidths::calibrate(&[step], &names).unwrap();
    let (_, calm_95) = widths.at(1).unwrap();
    let calm = calm_95 * widths.series_factor("s0");
    let erratic = calm_95 * widths.series_factor("s9");
    // Pooled as one, the 95% quantile would be the erratic series' (at least 70).
    assert!((9.0..=11.0).contains(&calm), "calm series' 95% half-width {calm}");
    assert!(erratic > 300.0, "erratic series' 95% half-width {erratic}");
    assert_eq!(widths.series_factor("s0"), 1.0);
    assert_eq!(widths.series_factor("s8"), 1.0);
    // A series the backtest did not score takes the pool's width.
    assert_eq!(widths.series_factor("new"), 1.0);
}

#[test]
fn interval_widths_scale_with_the_forecast_level_when_the_residuals_do() {
    // Errors in percent: at relative level u, residuals are u times 1..=10 (in the
    // same order at every level), so dividing by u^1 leaves ten copies of 1..=10.
    let levels = [0.1, 0.3, 1.0, 3.0, 10.0];
    let proportional: Vec<Residual> = levels
        .iter()
        .flat_map(|&level| {
            (1..=10).map(move |k| Residual { scaled: level * f64::from(k), level, series: 0 })
        })
        .collect();
    let widths = IntervalWidths::calibrate(&[proportional], &one()).unwrap();
    assert_eq!(widths.level_power, 1.0);
    // 50 residuals 1..=10 five times each: ranks 41 and 49 of 50.
    assert_eq!(widths.at(1), Some((9.0, 10.0)));
    assert_eq!(widths.at_level(1, 0.1), Some((0.9, 1.0)));
    assert_eq!(widths.at_level(1, 10.0), Some((90.0, 100.0)));
    // Errors that do not grow with the level keep one width for all forecasts.
    let constant: Vec<Residual> = levels
        .iter()
        .flat_map(|&level| {
            (1..=10).map(move |k| Residual { scaled: f64::from(k), level, series: 0 })
        })
        .collect();
    let widths = IntervalWidths::calibrate(&[constant], &one()).unwrap();
    assert_eq!(widths.level_power, 0.0);
    assert_eq!(widths.at_level(1, 10.0), widths.at(1));
}

#[test]
fn intervals_follow_the_level_of_series_that_were_never_negative() {
    // The mean absolute value of the last season (7 values).
    let sales = History::of(
        0,
        &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
        CovariateColumns::default(),
        7,
        7,
    );
    assert_eq!(sales.interval_level(), 5.0);
    // A series that crossed zero keeps one width per step.
    let profit = History::of(
        0,
        &[1.0, -2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
        CovariateColumns::default(),
        7,
        7,
    );
    assert_eq!(profit.interval_level(), 0.0);
    assert_eq!(relative_level(0.1, profit.interval_level()), 1.0);
}

#[test]
fn interval_scores_are_the_width_plus_the_weighted_miss() {
    // Half-width 2 at 95%: width 4, plus 2 / 0.05 = 40 times the miss.
    assert_eq!(interval_score(2.0, 1.0, 0.95), 4.0);
    assert_eq!(interval_score(2.0, 2.0, 0.95), 4.0);
    assert!((interval_score(2.0, 3.0, 0.95) - 44.0).abs() < 1e-9);
    // At 80%, 10 times the miss.
    assert!((interval_score(2.0, 3.0, 0.8) - 14.0).abs() < 1e-9);
}

#[test]
fn relative_levels_are_bounded_and_neutral_without_a_level() {
    assert_eq!(relative_level(50.0, 100.0), 0.5);
    assert_eq!(relative_level(-50.0, 100.0), 0.5);
    assert_eq!(relative_level(0.0, 100.0), 0.05);
    assert_eq!(relative_level(1e9, 100.0), 20.0);
    assert_eq!(relative_level(50.0, 0.0), 1.0);
    assert_eq!(relative_level(50.0, f64::NAN), 1.0);
    assert_eq!(relative_level(f64::NAN, 100.0), 1.0);
}

#[test]
fn hourly_backtests_span_two_weeks_when_half_the_history_allows() {
    use super::params::default_backtest_windows;
    // Bikeshare: 48-hour windows, 12 weeks of history: 7 windows of two days.
    assert_eq!(default_backtest_windows(Frequency::Hourly, 48, 2_016), 7);
    // 100 hours: two weeks would be 112 windows of 3; half the history holds 16.
    assert_eq!(default_backtest_windows(Frequency::Hourly, 3, 100), 16);
    // Never fewer than 3, and 3 for other frequencies.
    assert_eq!(default_backtest_windows(Frequency::Hourly, 48, 200), 3);
    assert_eq!(default_backtest_windows(Frequency::Daily, 28, 672), 3);
    assert_eq!(default_backtest_windows(Frequency::Monthly, 12, 144), 3);
}

#[test]
fn periods_start_on_the_hour_day_monday_month_and_quarter() {
    let at = |text: &str| parse_time(text).expect("a time");
    let start = |frequency, text: &str| format_time(period_start(frequency, at(text)).unwrap());
    assert_eq!(start(Frequency::Hourly, "2024-03-05T13:59:59Z"), "2024-03-05T13:00:00Z");
    assert_eq!(start(Frequency::Daily, "2024-03-05T23:59:59Z"), "2024-03-05");
    // 2024-03-05 is a Tuesday; 2024-03-04 a Monday; a Sunday belongs to the week before.
    assert_eq!(start(Frequency::Weekly, "2024-03-05T08:00:00Z"), "2024-03-04");
    assert_eq!(start(Frequency::Weekly, "2024-03-04"), "2024-03-04");
    assert_eq!(start(Frequency::Weekly, "2024-03-10T23:00:00Z"), "2024-03-04");
    assert_eq!(start(Frequency::Weekly, "1969-12-31"), "1969-12-29");
    assert_eq!(start(Frequency::Monthly, "2024-02-29T12:00:00Z"), "2024-02-01");
    assert_eq!(start(Frequency::Quarterly, "2024-06-30"), "2024-04-01");
    assert_eq!(start(Frequency::Quarterly, "2024-12-31"), "2024-10-01");
    assert!(period_start(Frequency::Daily, f64::NAN).is_err());
}

/// A table of `(series, time, value, covariate)` rows.
fn events(rows: &[(&str, &str, f64, f64)]) -> SeriesTable {
    SeriesTable {
        series: rows.iter().map(|r| r.0.into()).collect(),
        times: rows.iter().map(|r| parse_time(r.1).expect("a time")).collect(),
        values: rows.iter().map(|r| r.2).collect(),
        covariates: vec![Covariate {
            name: "promo".into(),
            values: rows.iter().map(|r| r.3).collect(),
        }],
        row_numbers: Vec::new(),
    }
}

/// The grouped table's rows as `(series, time, value, covariate, row number)`.
fn grouped_rows(table: &SeriesTable) -> Vec<(String, String, f64, String, usize)> {
    (0..table.series.len())
        .map(|row| {
            (
                table.series[row].to_string(),
                format_time(table.times[row]),
                table.values[row],
                format!("{:?}", table.covariates[0].values[row]),
                table.row_numbers[row],
            )
        })
        .collect()
}

#[test]
fn events_grouped_into_periods_aggregate_the_target_and_average_the_covariates() {
    // Out of order; series b has no event on the 2nd.
    let table = events(&[
        ("a", "2024-01-01T09:00:00Z", 10.0, 1.0),
        ("b", "2024-01-03T10:00:00Z", 7.0, f64::NAN),
        ("a", "2024-01-02T18:00:00Z", 4.0, 0.0),
        ("a", "2024-01-01T20:00:00Z", 5.0, 0.0),
        ("b", "2024-01-01T00:00:00Z", 2.0, 1.0),
        ("a", "2024-01-01T08:00:00Z", 1.0, f64::NAN),
    ]);
    let by = |target| PeriodGrouping::utc(Frequency::Daily, target);
    let sum = group_history(&table, by(Aggregate::Sum)).expect("grouped").0;
    assert_eq!(
        grouped_rows(&sum),
        [
            ("a".into(), "2024-01-01".into(), 16.0, "0.5".into(), 1),
            ("a".into(), "2024-01-02".into(), 4.0, "0.0".into(), 3),
            ("b".into(), "2024-01-01".into(), 2.0, "1.0".into(), 5),
            // An empty day of a sum is 0, its covariates unknown; messages name the next row.
            ("b".into(), "2024-01-02".into(), 0.0, "NaN".into(), 2),
            ("b".into(), "2024-01-03".into(), 7.0, "NaN".into(), 2),
        ]
    );
    let values = |how| {
        let grouped = group_history(&table, by(how)).expect("grouped").0;
        grouped
            .series
            .iter()
            .zip(&grouped.values)
            .map(|(s, v)| format!("{s}:{v}"))
            .collect::<Vec<_>>()
    };
    // In order of each group's first row; no filled days.
    assert_eq!(values(Aggregate::Mean), ["a:5.333333333333333", "b:7", "a:4", "b:2"]);
    // The latest row of 2024-01-01 in series a is the one at 20:00, whatever the order.
    assert_eq!(values(Aggregate::Last), ["a:5", "b:7", "a:4", "b:2"]);
    assert_eq!(values(Aggregate::Min), ["a:1", "b:7", "a:4", "b:2"]);
    assert_eq!(values(Aggregate::Max), ["a:10", "b:7", "a:4", "b:2"]);
    let count = group_history(&table, by(Aggregate::Count)).expect("grouped").0;
    assert_eq!(count.values, [3.0, 1.0, 1.0, 0.0, 1.0]);
    // Finite values whose sum is not name the period and its rows.
    let huge = events(&[
        ("a", "2024-01-01T09:00:00Z", 1.0, 0.0),
        ("a", "2024-01-02T09:00:00Z", 1e308, 0.0),
        ("a", "2024-01-02T10:00:00Z", 1e308, 0.0),
    ]);
    let error = group_history(&huge, by(Aggregate::Sum)).unwrap_err().to_string();
    assert_eq!(
        error,
        "series \"a\": the sum of the target over the daily period 2024-01-02 (2 rows from data \
         row 2) is inf: the values are too large to add up"
    );
    assert!(group_history(&huge, by(Aggregate::Max)).is_ok());

    // Weekly: Monday 2024-01-01 starts the week of every row.
    let weekly = PeriodGrouping::utc(Frequency::Weekly, Aggregate::Sum);
    let weeks = group_history(&table, weekly).expect("grouped").0;
    assert_eq!(
        (weeks.series.as_slice(), weeks.values.as_slice()),
        (&["a".into(), "b".into()][..], &[20.0, 9.0][..])
    );

    // Future rows: their covariates averaged per series and period.
    let future = CovariateTable {
        series: vec!["a".into(), "a".into(), "a".into()],
        times: ["2024-01-09T01:00:00Z", "2024-01-09T05:00:00Z", "2024-01-10"]
            .iter()
            .map(|t| parse_time(t).expect("a time"))
            .collect(),
        covariates: vec![Covariate { name: "promo".into(), values: vec![1.0, 0.0, 1.0] }],
        row_numbers: vec![8, 9, 10],
    };
    let future = group_future(&future, by(Aggregate::Sum)).expect("grouped");
    assert_eq!(future.covariates[0].values, [0.5, 1.0]);
    assert_eq!(future.row_numbers, [8, 10]);
    assert_eq!(format_time(future.times[0]), "2024-01-09");
}

#[test]
fn events_are_grouped_into_the_local_periods_of_a_time_zone() {
    let zone = |name| Some(vigie_core::zone::parse_time_zone(name).expect("a zone"));
    let new_york = |frequency| PeriodGrouping {
        timezone: zone("America/New_York"),
        ..PeriodGrouping::utc(frequency, Aggregate::Sum)
    };
    // 2024-03-10 is the day New York moves to daylight saving (UTC-5 to UTC-4).
    let table = events(&[
        // The evening of Saturday 9 March in New York, Sunday in UTC.
        ("a", "2024-03-10T03:30:00Z", 1.0, 0.0),
        ("a", "2024-03-09T23:00:00-05:00", 2.0, 0.0),
        // Sunday 10 March in New York, before and after the change.
        ("a", "2024-03-10T06:30:00Z", 4.0, 0.0),
        ("a", "2024-03-11T03:59:00Z", 8.0, 0.0),
        // Monday 11 March in New York, 00:00 EDT.
        ("a", "2024-03-11T04:00:00Z", 16.0, 0.0),
        // 31 March 23:30 EDT: April in UTC, March in New York.
        ("a", "2024-04-01T03:30:00Z", 32.0, 0.0),
    ]);
    let daily = group_history(&table, new_york(Frequency::Daily)).expect("grouped").0;
    let days: Vec<(String, f64)> =
        daily.times.iter().map(|&t| format_time(t)).zip(daily.values.iter().copied()).collect();
    assert_eq!(
        &days[..3],
        [
            ("2024-03-09".to_owned(), 3.0),
            ("2024-03-10".to_owned(), 12.0),
            ("2024-03-11".to_owned(), 16.0),
        ]
    );
    assert_eq!(days.last(), Some(&("2024-03-31".to_owned(), 32.0)));
    // Local weeks: Saturday 9 and Sunday 10 March end the week of Monday 4 March, and
    // Sunday 31 March (April in UTC) the week of Monday 25 March. Local months keep it in March.
    let weekly = group_history(&table, new_york(Frequency::Weekly)).expect("grouped").0;
    assert_eq!(weekly.values, [15.0, 16.0, 0.0, 32.0]);
    assert_eq!(format_time(weekly.times[1]), "2024-03-11");
    let monthly = group_history(&table, new_york(Frequency::Monthly)).expect("grouped").0;
    assert_eq!(
        (monthly.values.as_slice(), format_time(monthly.times[0])),
        (&[63.0][..], "2024-03-01".to_owned())
    );
    // UTC, for comparison: the Saturday evening is Sunday, the last row April.
    let utc = group_history(&table, PeriodGrouping::utc(Frequency::Monthly, Aggregate::Sum))
        .expect("grouped")
        .0;
    assert_eq!(utc.values, [31.0, 32.0]);
    // Future covariates follow the same local days.
    let future = CovariateTable {
        series: vec!["a".into(), "a".into()],
        times: vec![
            parse_time("2024-04-02T02:00:00Z").expect("a time"),
            parse_time("2024-04-01T20:00:00Z").expect("a time"),
        ],
        covariates: vec![Covariate { name: "promo".into(), values: vec![1.0, 0.0] }],
        row_numbers: vec![8, 9],
    };
    let future = group_future(&future, new_york(Frequency::Daily)).expect("grouped");
    assert_eq!(
        (future.covariates[0].values.as_slice(), format_time(future.times[0])),
        (&[0.5][..], "2024-04-01".to_owned())
    );
    // A zone saved in a model card is read back.
    let saved = serde_json::to_string(&new_york(Frequency::Daily)).expect("saved");
    assert!(saved.contains("\"America/New_York\""), "{saved}");
    let read: PeriodGrouping = serde_json::from_str(&saved).expect("read");
    assert_eq!(read, new_york(Frequency::Daily));
    let older: PeriodGrouping =
        serde_json::from_str(r#"{"frequency":"daily","target":"sum"}"#).expect("read");
    assert_eq!(older.timezone, None);
    // Hourly periods stay UTC hours, zone or not: the hour daylight saving
    // repeats (01:00-01:59 twice in New York on 2024-11-03) is two periods.
    let fall_back = SeriesTable {
        series: vec!["a".into(); 3],
        times: ["2024-11-03T05:10:00Z", "2024-11-03T05:50:00Z", "2024-11-03T06:20:00Z"]
            .iter()
            .map(|t| parse_time(t).expect("a time"))
            .collect(),
        values: vec![1.0, 2.0, 4.0],
        covariates: Vec::new(),
        row_numbers: Vec::new(),
    };
    let hourly = group_history(&fall_back, new_york(Frequency::Hourly)).expect("grouped").0;
    assert_eq!(hourly.values, [3.0, 4.0]);
    assert_eq!(format_time(hourly.times[0]), "2024-11-03T05:00:00Z");
}

#[test]
fn short_histories_backtest_from_an_origin_at_every_period_left() {
    use super::params::default_backtest_plan;
    // Enough history: the default windows, a horizon apart.
    assert_eq!(default_backtest_plan(Frequency::Monthly, 12, 144), (3, 12));
    assert_eq!(default_backtest_plan(Frequency::Daily, 28, 700), (3, 28));
    // 30 months, horizon 6: 6 months after two years, one origin at each.
    assert_eq!(default_backtest_plan(Frequency::Monthly, 6, 30), (6, 1));
    assert_eq!(default_backtest_plan(Frequency::Monthly, 6, 40), (16, 1));
    // Nothing after two seasons: the default, which the backtest then refuses by name.
    assert_eq!(default_backtest_plan(Frequency::Daily, 7, 14), (3, 7));
}

#[test]
fn the_global_model_learns_from_400_days_of_fine_series_unless_told() {
    let params = ForecastParams::new(7);
    assert_eq!(params.train_window_for(Frequency::Daily), Some(400));
    assert_eq!(params.train_window_for(Frequency::Hourly), Some(9_600));
    for coarse in [Frequency::Weekly, Frequency::Monthly, Frequency::Quarterly] {
        assert_eq!(params.train_window_for(coarse), None);
    }
    let told = ForecastParams { train_window: Some(56), ..ForecastParams::new(7) };
    assert_eq!(told.train_window_for(Frequency::Monthly), Some(56));
    let all = ForecastParams { train_window: Some(usize::MAX), ..ForecastParams::new(7) };
    assert_eq!(all.train_window_for(Frequency::Daily), None);
}

#[test]
fn a_last_period_that_ends_earlier_than_every_one_before_is_flagged_as_partial() {
    // Two shops' sales every hour from 09:00 to 19:00 (New York) for ten days; the
    // last day's rows stop at `last_hour`.
    let shop_days = |last_hour: u32| -> SeriesTable {
        let mut rows = Vec::new();
        for day in 1..=10 {
            let until = if day == 10 { last_hour } else { 19 };
            for hour in 9..=until {
                for shop in ["uptown", "harbor"] {
                    rows.push((shop, format!("2024-01-{day:02}T{hour:02}:30:00-05:00")));
                }
            }
        }
        let rows: Vec<(&str, &str, f64, f64)> =
            rows.iter().map(|(shop, time)| (*shop, time.as_str(), 1.0, 0.0)).collect();
        events(&rows)
    };
    let zone = vigie_core::zone::parse_time_zone("America/New_York").expect("a zone");
    let daily =
        |target| PeriodGrouping { frequency: Frequency::Daily, target, timezone: Some(zone) };
    // Read at 15:30: the tenth day's count is short, and said to be.
    let (_, partial) = group_history(&shop_days(15), daily(Aggregate::Count)).expect("grouped");
    let partial = partial.expect("the last day is partial");
    assert_eq!(format_time(partial.start), "2024-01-10");
    assert!((partial.elapsed - 15.5 / 24.0).abs() < 1e-9, "{partial:?}");
    assert!((partial.usual - 19.5 / 24.0).abs() < 1e-9, "{partial:?}");
    assert_eq!(partial.compared, 9);
    // A whole last day is not; nor are the aggregates a missing part does not lower.
    let (_, whole) = group_history(&shop_days(19), daily(Aggregate::Sum)).expect("grouped");
    assert_eq!(whole, None);
    let (_, mean) = group_history(&shop_days(15), daily(Aggregate::Mean)).expect("grouped");
    assert_eq!(mean, None);
    // Too few days before to tell.
    let mut short = shop_days(15);
    let keep: Vec<usize> = (0..short.times.len())
        .filter(|&row| short.times[row] >= parse_time("2024-01-05T00:00:00Z").expect("a time"))
        .collect();
    for column in [&mut short.times, &mut short.values, &mut short.covariates[0].values] {
        *column = keep.iter().map(|&row| column[row]).collect();
    }
    short.series = keep.iter().map(|&row| short.series[row].clone()).collect();
    let (_, unsure) = group_history(&short, daily(Aggregate::Count)).expect("grouped");
    assert_eq!(unsure, None, "5 days before the last are too few");
}

#[test]
fn rows_at_or_before_their_series_known_time_are_checked_and_left_out() {
    use vigie_core::{Column, ColumnData, Frame, TextColumn};
    let day = |d: i64| (days_from_civil(2024, 1, 1) + d) as f64 * DAY;
    let frame = |revenue: Vec<f64>| {
        let stores = ["a", "a", "a", "b", "b", "c", "c"];
        let days = [0, 1, 2, 0, 1, 0, 1];
        let dates: Vec<String> =
            days.iter().map(|&d| format_time(day(d))[..10].to_owned()).collect();
        Frame::new(vec![
            Column {
                name: "store".into(),
                data: ColumnData::Text(TextColumn::from_values(stores.map(Some))),
            },
            Column {
                name: "date".into(),
                data: ColumnData::Text(TextColumn::from_values(
                    dates.iter().map(|d| Some(d.as_str())),
                )),
            },
            Column { name: "revenue".into(), data: ColumnData::Numeric(revenue) },
        ])
        .expect("frame")
    };
    let mut roles = ColumnRoles {
        time: "date".into(),
        target: "revenue".into(),
        series: vec!["store".into()],
        ..ColumnRoles::default()
    };
    // a is known to day 1, b not at all, c to day 1: a's day 2 and b's rows stay.
    let known = |key: &str| match key {
        "a" | "c" => Some(day(1)),
        _ => None,
    };
    let values = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0];
    let (tables, left_out) =
        super::frame::split_frame_after(&frame(values.clone()), &roles, &known).expect("split");
    assert_eq!(left_out, 4);
    assert_eq!(tables.history.series, ["a".into(), "b".into(), "b".into()]);
    assert_eq!(tables.history.values, [3.0, 4.0, 5.0]);
    assert_eq!(tables.history.row_numbers, [3, 4, 5]);
    assert_eq!(tables.history.times, [day(2), day(0), day(1)]);
    assert_eq!(tables.keys.len(), 3, "every series is named, known rows or not");
    // A row left out is still checked: a negative target is named at its row.
    roles.non_negative = true;
    let mut negative = values;
    negative[5] = -1.0;
    let error =
        super::frame::split_frame_after(&frame(negative), &roles, &known).unwrap_err().to_string();
    assert!(error.contains("at data row 6"), "{error}");
}
