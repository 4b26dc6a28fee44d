//! Forecasting through the CLI: `train --task forecast` backtests and
//! registers a model, `forecast` writes every series' future periods with
//! intervals, from the saved history or from newer rows, and bad input gets a
//! message naming the file, the row and the problem.

use std::fmt::Write as _;

use serde_json::json;

use crate::support::{Project, read_csv};

const SERIES: [(&str, &str); 4] =
    [("007", "toys"), ("007", "food"), ("12", "toys"), ("12", "food")];
const DAYS: usize = 140;
/// 2024-01-01, a Monday, in days since the epoch.
const FIRST_DAY: i64 = 19_723;

/// `YYYY-MM-DD` of a day number (Hinnant's `civil_from_days`, restated so the
/// test does not trust the code under test for its dates).
pub(crate) fn date(days: i64) -> String {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// Promotions on a fixed pattern, known ahead.
fn promo(series: usize, day: usize) -> bool {
    (day * 7 + series * 3).is_multiple_of(11)
}

/// Daily revenue: a level per series, a weekly pattern, a promotion uplift
/// and a small deterministic wobble.
fn revenue(series: usize, day: usize) -> f64 {
    let level = [120.0, 2_400.0, 35.0, 800.0][series];
    let weekly = [0.9, 0.85, 0.95, 1.0, 1.2, 1.5, 1.3][day % 7];
    let uplift = if promo(series, day) { 1.4 } else { 1.0 };
    let wobble = 1.0 + ((day * 7919 + series * 104_729) % 17) as f64 / 170.0;
    (level * weekly * uplift * wobble * 100.0).round() / 100.0
}

/// The CSV of days `days` of every series; rows past `known` have no revenue.
fn table(days: std::ops::Range<usize>, known: usize) -> String {
    let mut csv = "store,line,date,revenue,promo\n".to_owned();
    for (s, (store, line)) in SERIES.iter().enumerate() {
        for day in days.clone() {
            let value = if day < known { revenue(s, day).to_string() } else { String::new() };
            let promo = u8::from(promo(s, day));
            writeln!(csv, "{store},{line},{},{value},{promo}", date(FIRST_DAY + day as i64))
                .expect("write to a string");
        }
    }
    csv
}

/// The arguments of `vigie train --task forecast` of the project's
/// revenue.csv (written first if absent), horizon 7, JSON, then `extra`.
fn train_args(project: &Project, extra: &[&str]) -> Vec<String> {
    let data = project.path("revenue.csv");
    if !data.exists() {
        std::fs::write(&data, table(0..DAYS, DAYS)).expect("write the table");
    }
    let mut args = vec![
        "train",
        "--task",
        "forecast",
        "--data",
        data.to_str().expect("utf-8 path"),
        "--time",
        "date",
        "--target",
        "revenue",
        "--series",
        "store,line",
        "--horizon",
        "7",
        "--future-covariates",
        "promo",
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    args.into_iter().map(str::to_owned).collect()
}

/// `vigie train` with [`train_args`]: the JSON it prints.
fn train_with(project: &Project, extra: &[&str]) -> serde_json::Value {
    let args = train_args(project, extra);
    project.json(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// `vigie train` with [`train_args`] failing with exit code 2: its message.
fn train_fails(project: &Project, extra: &[&str]) -> String {
    let args = train_args(project, extra);
    project.fails(&args.iter().map(String::as_str).collect::<Vec<_>>(), 2)
}

/// `vigie train` with [`train_args`] and a text summary: what it prints.
fn train_text(project: &Project, extra: &[&str]) -> String {
    let args: Vec<String> = train_args(project, extra)
        .into_iter()
        .map(|arg| if arg == "json" { "text".to_owned() } else { arg })
        .collect();
    project.ok(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn train(project: &Project, name: &str) -> serde_json::Value {
    train_with(project, &["--name", name])
}

/// Checks a forecast CSV: one row per series and day after `last_day`, in order, intervals nested.
fn check_forecasts(path: &std::path::Path, first_day: usize, horizon: usize) -> Vec<Vec<String>> {
    let (header, rows) = read_csv(path);
    assert_eq!(header, ["store", "line", "date", "forecast", "lo80", "hi80", "lo95", "hi95"]);
    assert_eq!(rows.len(), SERIES.len() * horizon);
    let mut seen = Vec::new();
    for row in &rows {
        let key = (row[0].clone(), row[1].clone());
        if !seen.contains(&key) {
            seen.push(key);
        }
        let step =
            rows.iter().filter(|r| r[..2] == row[..2]).position(|r| r == row).expect("the row");
        assert_eq!(row[2], date(FIRST_DAY + (first_day + step) as i64), "{row:?}");
        let numbers: Vec<f64> =
            row[3..].iter().map(|cell| cell.parse().expect("a number")).collect();
        let [forecast, lo80, hi80, lo95, hi95] = numbers[..] else { unreachable!() };
        assert!(lo95 <= lo80 && lo80 <= forecast && forecast <= hi80 && hi80 <= hi95, "{row:?}");
        assert!(lo95 >= 0.0, "revenue is never negative, nor its interval: {row:?}");
    }
    let mut expected: Vec<(String, String)> =
        SERIES.iter().map(|(s, l)| ((*s).to_owned(), (*l).to_owned())).collect();
    expected.sort();
    seen.sort();
    assert_eq!(seen, expected, "series values as written (leading zeros kept)");
    rows
}

#[test]
fn train_backtests_registers_and_forecast_writes_every_series_with_intervals() {
    let project = Project::new();
    let trained = train(&project, "revenue");
    assert_eq!(trained["task"], "forecast");
    assert_eq!((trained["version"].as_u64(), trained["horizon"].as_u64()), (Some(1), Some(7)));
    assert_eq!(trained["frequency"], "D");
    assert_eq!(trained["series"], 4);
    assert_eq!(trained["aliases"], serde_json::json!(["champion"]));
    for metric in
        ["mase", "smape", "mae", "rmse", "coverage_80", "coverage_95", "msis_80", "msis_95"]
    {
        assert!(trained["backtest"][metric]["mean"].is_number(), "{metric}: {trained}");
        assert!(trained["backtest"][metric]["std"].is_number(), "{metric}: {trained}");
    }
    let strategy = trained["strategy"].as_str().unwrap().to_owned();
    let baselines = trained["baselines"].as_object().unwrap();
    for name in ["seasonal_naive", "ets", "global_gbdt"] {
        assert!(baselines[name]["mase"]["mean"].is_number(), "{name}: {trained}");
    }
    let best =
        baselines.values().map(|b| b["mase"]["mean"].as_f64().unwrap()).fold(f64::MAX, f64::min);
    assert_eq!(baselines[&strategy]["mase"]["mean"].as_f64(), Some(best), "the lowest MASE wins");
    assert!(
        best < baselines["seasonal_naive"]["mase"]["mean"].as_f64().unwrap(),
        "a fitted strategy beats repeating last week on a series with promotions: {trained}"
    );
    // How interval widths follow the forecast: one of the powers the backtest tries.
    let power = trained["interval_level_power"].as_f64().unwrap();
    assert!([0.0, 0.5, 1.0].contains(&power), "{trained}");
    // Each series' backtest scores, hardest (highest MASE) first, named by its columns.
    let per_series = trained["per_series"].as_array().unwrap();
    assert_eq!(per_series.len(), 4, "{trained}");
    let mut named = Vec::new();
    for entry in per_series {
        let store = entry["columns"]["store"].as_str().unwrap();
        let line = entry["columns"]["line"].as_str().unwrap();
        assert_eq!(entry["series"], format!("store={store}|line={line}"));
        named.push((store, line));
        for metric in ["mase", "smape", "mae", "rmse", "coverage_80", "coverage_95", "msis_95"] {
            assert!(entry["metrics"][metric].is_number(), "{metric}: {entry}");
        }
    }
    named.sort();
    let mut expected = SERIES.to_vec();
    expected.sort();
    assert_eq!(named, expected, "{trained}");
    let mase: Vec<f64> =
        per_series.iter().map(|e| e["metrics"]["mase"].as_f64().unwrap()).collect();
    assert!(mase.windows(2).all(|pair| pair[0] >= pair[1]), "{mase:?}");

    // Future rows give the promotions of the forecast days.
    let future = project.path("future.csv");
    std::fs::write(&future, table(DAYS..DAYS + 7, DAYS)).unwrap();
    let out = project.path("forecasts.csv");
    let future_arg = future.to_str().unwrap();
    project.ok(&[
        "forecast",
        "--model",
        "revenue",
        "--horizon",
        "7",
        "--data",
        future_arg,
        "--out",
        out.to_str().unwrap(),
    ]);
    let rows = check_forecasts(&out, DAYS, 7);

    // JSON on stdout holds the same values.
    let json: serde_json::Value = serde_json::from_str(&project.ok(&[
        "forecast",
        "--model",
        "revenue:1",
        "--horizon",
        "7",
        "--data",
        future_arg,
        "--format",
        "json",
    ]))
    .unwrap();
    let records = json.as_array().unwrap();
    assert_eq!(records.len(), rows.len());
    for (record, row) in records.iter().zip(&rows) {
        assert_eq!(record["store"], row[0].as_str());
        assert_eq!(record["date"], row[2].as_str());
        assert_eq!(record["forecast"].as_f64(), row[3].parse::<f64>().ok());
    }

    // Promotions written true/false read as 1/0, in training and in future
    // rows, mixed with 1 and 0 as a spreadsheet may.
    let flags = |csv: String| {
        csv.lines()
            .enumerate()
            .map(|(at, line)| match (line.rsplit_once(','), at % 3) {
                (Some((rest, "1")), 0 | 1) => format!("{rest},true\n"),
                (Some((rest, "0")), 0 | 1) => format!("{rest},FALSE\n"),
                _ => format!("{line}\n"),
            })
            .collect::<String>()
    };
    std::fs::write(project.path("flags.csv"), flags(table(0..DAYS, DAYS))).unwrap();
    std::fs::write(project.path("future_flags.csv"), flags(table(DAYS..DAYS + 7, DAYS))).unwrap();
    let mut args = train_args(&project, &["--name", "flags"]);
    let data = args.iter().position(|a| a == "--data").unwrap() + 1;
    args[data] = project.path("flags.csv").to_str().unwrap().to_owned();
    project.json(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let flagged: serde_json::Value = serde_json::from_str(&project.ok(&[
        "forecast",
        "--model",
        "flags",
        "--horizon",
        "7",
        "--data",
        project.path("future_flags.csv").to_str().unwrap(),
        "--format",
        "json",
    ]))
    .unwrap();
    assert_eq!(flagged, json, "the same forecasts as with 1 and 0");
    // A cell that is neither is named, row and value.
    let mut lines: Vec<String> = flags(table(0..DAYS, DAYS)).lines().map(str::to_owned).collect();
    let (rest, _) = lines[300].rsplit_once(',').map(|(r, v)| (r.to_owned(), v.to_owned())).unwrap();
    lines[300] = format!("{rest},yes");
    std::fs::write(project.path("flags.csv"), lines.join("\n") + "\n").unwrap();
    let stderr = project.fails(&args.iter().map(String::as_str).collect::<Vec<_>>(), 2);
    assert!(
        stderr.contains("the covariate column \"promo\" at data row 300: \"yes\" is neither a number nor true or false"),
        "{stderr}"
    );

    // Newer actuals move the origin without retraining; rows the model knows are skipped,
    // and the user is told so whether the forecasts go to a file or to stdout.
    std::fs::write(&future, table(0..DAYS + 10, DAYS + 7)).unwrap();
    let newer = ["forecast", "--model", "revenue", "--horizon", "3", "--data", future_arg];
    let output = project.run(&[&newer[..], &["--out", out.to_str().unwrap()]].concat());
    assert!(output.status.success(), "{output:?}");
    check_forecasts(&out, DAYS + 7, 3);
    let known = format!("{} rows of --data the model already knew were skipped", DAYS * 4);
    assert!(String::from_utf8_lossy(&output.stderr).contains(&known), "{output:?}");
    let output = project.run(&newer);
    assert!(output.status.success(), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains(&known), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("store,line,date,forecast"));

    // The version is in the registry like any other model.
    let shown = project.json(&["models", "show", "revenue", "--format", "json"]);
    assert_eq!(
        (shown["task"].as_str(), shown["strategy"].as_str()),
        (Some("forecast"), Some(strategy.as_str()))
    );
    assert_eq!(shown["columns"]["series"], serde_json::json!(["store", "line"]));
    assert_eq!(shown["interval_level_power"], trained["interval_level_power"]);
    assert_eq!(shown["per_series"], trained["per_series"]);
    assert_eq!(
        shown["future_covariates"].as_array().map(Vec::len),
        Some(usize::from(strategy == "global_gbdt"))
    );
    let listed = project.json(&["models", "list", "--format", "json"]);
    assert_eq!(listed[0]["metric"], "mase");
    assert_eq!(listed[0]["score"], trained["backtest"]["mase"]["mean"]);
    let run =
        project.json(&["runs", "show", trained["run_id"].as_str().unwrap(), "--format", "json"]);
    assert_eq!(run["status"], "FINISHED");
    assert!(run.to_string().contains("backtest_mase"), "{run}");
    assert_eq!(trained["gbdt"]["n_rounds"], 150, "the defaults: {trained}");
    assert!(run.to_string().contains("gbdt.n_rounds"), "{run}");
}

/// [`table`] as events: each day's revenue in two halves, at 09:00 and at 17:30 (the
/// promotion on both), and future days' promotions at noon.
fn events(days: std::ops::Range<usize>, known: usize) -> String {
    let mut csv = "store,line,at,revenue,promo\n".to_owned();
    for (s, (store, line)) in SERIES.iter().enumerate() {
        for day in days.clone() {
            let promo = u8::from(promo(s, day));
            let day_text = date(FIRST_DAY + day as i64);
            if day < known {
                let half = revenue(s, day) / 2.0;
                for clock in ["09:00:00", "17:30:00"] {
                    writeln!(csv, "{store},{line},{day_text}T{clock}Z,{half},{promo}")
                        .expect("write to a string");
                }
            } else {
                writeln!(csv, "{store},{line},{day_text}T12:00:00Z,,{promo}")
                    .expect("write to a string");
            }
        }
    }
    csv
}

#[test]
fn events_grouped_into_days_train_and_forecast_as_the_daily_table_does() {
    let project = Project::new();
    let daily = train_with(&project, &["--name", "daily", "--frequency", "D"]);
    let path = project.path("events.csv");
    std::fs::write(&path, events(0..DAYS, DAYS)).unwrap();
    let mut args =
        train_args(&project, &["--name", "events", "--aggregate", "sum", "--frequency", "D"]);
    let data = args.iter().position(|a| a == "--data").unwrap() + 1;
    args[data] = path.to_str().unwrap().to_owned();
    let time = args.iter().position(|a| a == "date").unwrap();
    args[time] = "at".to_owned();
    let grouped = project.json(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(
        (grouped["rows"].as_u64(), grouped["aggregate"].as_str()),
        (Some((4 * DAYS) as u64), Some("sum"))
    );
    let scores =
        |t: &serde_json::Value| serde_json::json!([t["strategy"], t["backtest"], t["baselines"]]);
    assert_eq!(scores(&grouped), scores(&daily), "the same days, the same model");
    assert!(grouped["partial_last_period"].is_null(), "whole days: {grouped}");
    // Read at noon on the last day, its evening sales not in yet: its sum is short, and
    // the summary says so.
    let last_evening = format!("{}T17:30", date(FIRST_DAY + DAYS as i64 - 1));
    let cut: String = events(0..DAYS, DAYS)
        .lines()
        .filter(|line| !line.contains(&last_evening))
        .map(|line| format!("{line}\n"))
        .collect();
    let cut_path = project.path("cut.csv");
    std::fs::write(&cut_path, cut).unwrap();
    let cut_args: Vec<&str> = args
        .iter()
        .map(|a| match a.as_str() {
            "json" => "text",
            "events" => "cut",
            other if other == args[data] => cut_path.to_str().unwrap(),
            other => other,
        })
        .collect();
    let text = project.ok(&cut_args);
    let warning = format!(
        "Warning: the last daily period, {}, may be partial: its latest row is 38% of the way \
         through it, earlier than in each of the 28 periods before (at least 73%)",
        date(FIRST_DAY + DAYS as i64 - 1)
    );
    assert!(text.contains(&warning), "{text}");

    // Newer events and future promotions, grouped the same way when forecasting.
    let newer = project.path("newer.csv");
    std::fs::write(&newer, events(DAYS..DAYS + 10, DAYS + 7)).unwrap();
    let same_days = project.path("same-days.csv");
    std::fs::write(&same_days, table(DAYS..DAYS + 10, DAYS + 7)).unwrap();
    let forecast = |model: &str, data: &std::path::Path| {
        project.ok(&[
            "forecast",
            "--model",
            model,
            "--horizon",
            "3",
            "--data",
            data.to_str().unwrap(),
        ])
    };
    let from_events = forecast("events", &newer);
    assert_eq!(from_events.replace("at,", "date,"), forecast("daily", &same_days));
    let out = project.path("out.csv");
    std::fs::write(&out, from_events.replace("at,", "date,")).unwrap();
    check_forecasts(&out, DAYS + 7, 3);

    // The forecast route groups the events of its `data` as the CLI does.
    let cli: serde_json::Value = serde_json::from_str(&project.ok(&[
        "forecast",
        "--model",
        "events",
        "--horizon",
        "3",
        "--data",
        newer.to_str().unwrap(),
        "--format",
        "json",
    ]))
    .expect("json");
    let server = crate::support::Server::start(&project, &[]);
    let data = crate::forecast_project::records(&events(DAYS..DAYS + 10, DAYS + 7));
    let body = serde_json::json!({"horizon": 3, "data": data}).to_string();
    let (status, reply) = server.post("/v1/models/events/forecast", &body);
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["forecasts"], cli, "the route forecasts as vigie forecast --data");

    // Without the periods, grouping is refused.
    let no_periods: Vec<&str> =
        args.iter().map(String::as_str).filter(|a| !["--frequency", "D"].contains(a)).collect();
    let error = project.fails(&no_periods, 2);
    assert!(
        error.contains("--aggregate groups rows into periods: give them with --frequency"),
        "{error}"
    );
}

#[test]
fn events_are_grouped_into_the_local_days_of_a_time_zone() {
    let project = Project::new();
    let daily = train_with(&project, &["--name", "daily", "--frequency", "D"]);
    // Each day's halves at 09:00 and 21:30 in Bogota (UTC-5): the second half is the next
    // day in UTC.
    let local = events(0..DAYS, DAYS)
        .replace("T09:00:00Z", "T09:00:00-05:00")
        .replace("T17:30:00Z", "T21:30:00-05:00");
    let path = project.path("bogota.csv");
    std::fs::write(&path, local).unwrap();
    let grouped_in = |zone: Option<&str>, name: &str| {
        let mut extra = vec!["--name", name, "--aggregate", "sum", "--frequency", "D"];
        extra.extend(zone.map(|zone| ["--timezone", zone]).into_iter().flatten());
        let mut args = train_args(&project, &extra);
        let data = args.iter().position(|a| a == "--data").unwrap() + 1;
        args[data] = path.to_str().unwrap().to_owned();
        let time = args.iter().position(|a| a == "date").unwrap();
        args[time] = "at".to_owned();
        args
    };
    let args = grouped_in(Some("america/bogota"), "bogota");
    let grouped = project.json(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(grouped["timezone"], "America/Bogota", "{grouped}");
    let scores =
        |t: &serde_json::Value| serde_json::json!([t["strategy"], t["backtest"], t["baselines"]]);
    assert_eq!(scores(&grouped), scores(&daily), "Bogota's days are the table's days");
    let utc_args = grouped_in(None, "utc");
    let utc = project.json(&utc_args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(utc["timezone"].is_null(), "{utc}");
    // In UTC days, each evening's half moves to the next day: one more day per series.
    assert_eq!(utc["rows"].as_u64(), grouped["rows"].as_u64().map(|rows| rows + 4));
    let as_text: Vec<&str> =
        args.iter().map(|a| if a == "json" { "text" } else { a.as_str() }).collect();
    let text = project.ok(&as_text);
    assert!(text.contains("periods (America/Bogota)"), "{text}");
    let shown = project.ok(&["models", "show", "bogota:1"]);
    assert!(shown.contains("rows grouped into daily periods (America/Bogota) by sum"), "{shown}");
    // Both summaries say how the intervals' widths are set, and which series were hardest.
    assert!(text.contains("\nIntervals: ") && shown.contains("\nIntervals: "), "{text}\n{shown}");
    assert!(
        text.contains("\nHardest series in the backtest (MASE): ")
            && shown.contains("\nHardest series in the backtest (MASE): "),
        "{text}\n{shown}"
    );
    // A later version is not promoted by itself, and the summary says how to.
    assert!(
        text.contains("Registered bogota v2 (run ")
            && text.contains(
                "); @champion is unchanged: `vigie models promote bogota 2` moves it here"
            ),
        "{text}"
    );

    // Refused: an unknown zone, a zone without grouping.
    let unknown = grouped_in(Some("Europe/Pari"), "unknown");
    let error = project.fails(&unknown.iter().map(String::as_str).collect::<Vec<_>>(), 2);
    assert!(error.contains("--timezone: unknown time zone \"Europe/Pari\""), "{error}");
    let error = train_fails(&project, &["--name", "lone", "--timezone", "Europe/Paris"]);
    assert!(error.contains("--timezone says whose local periods --aggregate groups"), "{error}");
}

/// Hourly events of two shops over three weeks around the start of daylight
/// saving in New York (2024-03-10), busiest from 9 a.m. to 6 p.m. local time;
/// each hour's sales are events at `past` minutes past the hour, in UTC.
fn shop_hours(past: &[i64], on_new_york_clock: bool) -> String {
    // 2024-02-26T00:00:00Z in seconds; New York moves from UTC-5 to UTC-4 at
    // 2024-03-10T07:00:00Z. Times are written in UTC, or on New York's wall
    // clock without an offset.
    let (first, change) = (1_708_905_600_i64, 1_710_054_000_i64);
    let mut csv = "shop,at,sales\n".to_owned();
    for shop in ["uptown", "harbor"] {
        for hour in 0..21 * 24 {
            let start = first + hour * 3_600;
            let offset = if start < change { -5 } else { -4 };
            let local_hour = (start / 3_600 + offset).rem_euclid(24);
            let busy = if (9..18).contains(&local_hour) { 40.0 } else { 4.0 };
            let scale = if shop == "uptown" { 1.0 } else { 2.5 };
            for &minutes in past {
                let shift = if on_new_york_clock { offset * 3_600 } else { 0 };
                let time = start + minutes * 60 + shift;
                let (days, seconds) = (time.div_euclid(86_400), time.rem_euclid(86_400));
                let wobble = ((hour * 37 + minutes) % 7) as f64;
                writeln!(
                    csv,
                    "{shop},{}T{:02}:{:02}:00{},{}",
                    date(days),
                    seconds / 3_600,
                    seconds / 60 % 60,
                    if on_new_york_clock { "" } else { "Z" },
                    scale * busy / past.len() as f64 + wobble
                )
                .expect("write to a string");
            }
        }
    }
    csv
}

#[test]
fn hourly_events_stay_utc_hours_and_forecast_on_the_local_clock_of_a_zone() {
    let project = Project::new();
    let path = project.path("shops.csv");
    std::fs::write(&path, shop_hours(&[10, 40], false)).unwrap();
    // `vigie train` of three weeks of hourly shop sales in `data`, with `extra` arguments.
    let train_args = |data: &std::path::Path, name: &str, extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = [
            "train",
            "--task",
            "forecast",
            "--time",
            "at",
            "--target",
            "sales",
            "--series",
            "shop",
            "--horizon",
            "24",
            "--frequency",
            "H",
            "--seed",
            "3",
            "--name",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        args.push(name.to_owned());
        args.extend(["--data".to_owned(), data.to_str().unwrap().to_owned()]);
        args.extend(extra.iter().map(|a| a.to_string()));
        args
    };
    let train = |name: &str, zone: Option<&str>| {
        let mut extra = vec!["--aggregate", "sum", "--format", "json"];
        extra.extend(zone.map(|zone| ["--timezone", zone]).into_iter().flatten());
        let args = train_args(&path, name, &extra);
        project.json(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let local = train("ny", Some("America/New_York"));
    assert_eq!(local["timezone"], "America/New_York", "{local}");
    let utc = train("utc", None);
    // The same UTC hours either way: two events per hour, summed.
    assert_eq!(local["rows"], utc["rows"]);
    assert_eq!(local["rows"].as_u64(), Some(2 * 21 * 24), "{local}");
    let forecast = |model: &str| {
        let out = project.path(&format!("{model}.csv"));
        let out_arg = out.to_str().unwrap();
        project.ok(&["forecast", "--model", model, "--horizon", "24", "--out", out_arg]);
        let (header, rows) = read_csv(&out);
        assert_eq!(header[..3], ["shop", "at", "forecast"]);
        rows
    };
    let rows = forecast("ny");
    assert_eq!(rows.len(), 48, "24 hours of 2 shops");
    // After 2024-03-17T23:00:00Z, the last hour of history, each UTC hour on
    // New York's clock in daylight saving time.
    let uptown: Vec<&Vec<String>> = rows.iter().filter(|r| r[0] == "uptown").collect();
    assert_eq!(uptown[0][1], "2024-03-17T20:00:00-04:00");
    assert_eq!(uptown[23][1], "2024-03-18T19:00:00-04:00");
    assert!(uptown.iter().all(|r| r[1].ends_with("-04:00")), "{uptown:?}");
    // Business hours, read on the local clock, forecast busier than the night.
    let at = |hour: &str| -> f64 {
        uptown.iter().find(|r| r[1].contains(&format!("T{hour}:00:00"))).expect("that hour")[2]
            .parse()
            .expect("a number")
    };
    assert!(at("12") > 3.0 * at("03"), "noon {} against 3 a.m. {}", at("12"), at("03"));
    // The forecast route writes the same local times.
    let server = crate::support::Server::start(&project, &[]);
    let body = json!({"horizon": 2, "series": [{"shop": "uptown"}]}).to_string();
    let (status, reply) = server.post("/v1/models/ny/forecast", &body);
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["forecasts"][0]["at"], "2024-03-17T20:00:00-04:00", "{reply}");
    assert_eq!(reply["forecasts"][1]["at"], "2024-03-17T21:00:00-04:00", "{reply}");
    // Without a zone the same hours are written in UTC.
    let utc_rows = forecast("utc");
    assert_eq!(utc_rows[0][1], "2024-03-18T00:00:00Z");
    // The model says which clock it reads.
    let shown = project.json(&["models", "show", "ny", "--format", "json"]);
    assert_eq!(shown["timezone"], "America/New_York", "{shown}");
    let shown = project.ok(&["models", "show", "ny"]);
    assert!(
        shown.contains("rows grouped into hourly periods (UTC hours on America/New_York's clock)"),
        "{shown}"
    );

    // Rows already one per hour need no grouping for the same clock.
    let hourly = project.path("hourly.csv");
    std::fs::write(&hourly, shop_hours(&[0], false)).unwrap();
    let args = train_args(&hourly, "rows", &["--timezone", "America/New_York"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let text = project.ok(&args);
    assert!(text.contains("Hourly periods read on America/New_York's clock (UTC hours)"), "{text}");
    let rows = forecast("rows");
    assert_eq!(rows[0][1], "2024-03-17T20:00:00-04:00");
    let shown = project.json(&["models", "show", "rows", "--format", "json"]);
    assert_eq!(shown["timezone"], "America/New_York", "{shown}");
    let shown = project.ok(&["models", "show", "rows"]);
    assert!(shown.contains("hourly periods read on America/New_York's clock"), "{shown}");
    // The same readings written on New York's clock without an offset: the
    // zone places them (the clocks skipped 02:00 on 10 March), so the model
    // and its forecasts are the same. Without the zone they are UTC, with a gap.
    let wall = project.path("on_the_wall_clock.csv");
    std::fs::write(&wall, shop_hours(&[0], true)).unwrap();
    let wall_args = train_args(&wall, "wall", &["--timezone", "America/New_York"]);
    project.ok(&wall_args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(forecast("wall"), forecast("rows"));
    let error = project
        .fails(&wall_args[..wall_args.len() - 2].iter().map(String::as_str).collect::<Vec<_>>(), 2);
    assert!(error.contains("gap after 2024-03-10T01:00:00Z"), "{error}");
    // Messages name times on the zone's clock, as the rows were written.
    let newer = project.path("newer.csv");
    std::fs::write(&newer, "shop,at,sales\nuptown,2024-03-17 20:30,4\n").unwrap();
    let newer = newer.to_str().unwrap();
    let error =
        project.fails(&["forecast", "--model", "wall", "--horizon", "2", "--data", newer], 2);
    assert!(
        error.contains(
            "time 2024-03-17T20:30:00-04:00 is not on the hourly grid through 2024-03-17T21:00:00-04:00"
        ),
        "{error}"
    );
    // The forecast route reads times without an offset on the model's clock too, as
    // `--data` does: 20:00 in New York is the hour after the history's last (23:00Z).
    std::fs::write(project.path("next.csv"), "shop,at,sales\nuptown,2024-03-17T20:00:00,9\n")
        .unwrap();
    let next = project.path("next.csv");
    let next = next.to_str().unwrap();
    let next_args = ["forecast", "--model", "wall", "--horizon", "2", "--data", next];
    let cli: serde_json::Value =
        serde_json::from_str(&project.ok(&[&next_args[..], &["--format", "json"]].concat()))
            .expect("json");
    let uptown: Vec<&serde_json::Value> =
        cli.as_array().expect("rows").iter().filter(|r| r["shop"] == "uptown").collect();
    assert_eq!(uptown[0]["at"], "2024-03-17T21:00:00-04:00", "{cli}");
    drop(server);
    let server = crate::support::Server::start(&project, &[]);
    let row = json!({"shop": "uptown", "at": "2024-03-17T20:00:00", "sales": 9});
    let body = json!({"horizon": 2, "series": [{"shop": "uptown"}], "data": [row]});
    let (status, reply) = server.post("/v1/models/wall/forecast", &body.to_string());
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["skipped_rows"], 0, "{reply}");
    assert_eq!(
        reply["forecasts"].as_array().map(|rows| rows.iter().collect::<Vec<_>>()),
        Some(uptown),
        "the route's rows are --data's"
    );
    // A time the clocks skip is a 400 naming the row, as `--data` refuses it.
    let row = json!({"shop": "uptown", "at": "2024-03-10T02:30:00", "sales": 9});
    let body = json!({"series": [{"shop": "uptown"}], "data": [row]});
    let (status, reply) = server.post("/v1/models/wall/forecast", &body.to_string());
    assert_eq!(status, 400, "{reply}");
    let message = reply["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("data row 1") && message.contains("2024-03-10"), "{message}");
    // A gap after the model's last hour is named on its clock, as the rows are written.
    let row = json!({"shop": "uptown", "at": "2024-03-17T22:00:00", "sales": 9});
    let body = json!({"series": [{"shop": "uptown"}], "data": [row]});
    let (status, reply) = server.post("/v1/models/wall/forecast", &body.to_string());
    assert_eq!(status, 400, "{reply}");
    let message = reply["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(
            "gap between 2024-03-17T19:00:00-04:00, the last time the model knows, and \
             2024-03-17T22:00:00-04:00 at data row 1"
        ),
        "{message}"
    );
    // Daily rows without grouping have no clock to read: refused.
    let daily: Vec<&str> = args.iter().map(|&a| if a == "H" { "D" } else { a }).collect();
    let error = project.fails(&daily, 2);
    assert!(error.contains("give --aggregate, or --frequency H"), "{error}");
}

#[test]
fn the_global_models_boosting_takes_param_and_the_backtest_can_refit() {
    let project = Project::new();
    let once = train_with(&project, &["--param", "n_rounds=30", "--param", "max_leaves=7"]);
    assert_eq!(
        (once["gbdt"]["n_rounds"].as_u64(), once["gbdt"]["max_leaves"].as_u64()),
        (Some(30), Some(7))
    );
    let refit = train_with(
        &project,
        &["--param", "n_rounds=30", "--param", "max_leaves=7", "--backtest-refit"],
    );
    // Fitted again at the later origins: other global-model forecasts there, so other scores.
    assert_ne!(
        once["baselines"]["global_gbdt"]["mase"], refit["baselines"]["global_gbdt"]["mase"],
        "{once}\n{refit}"
    );
    let run =
        project.json(&["runs", "show", refit["run_id"].as_str().unwrap(), "--format", "json"]);
    let text = run.to_string();
    assert!(text.contains("gbdt.max_leaves") && text.contains("backtest_refit"), "{run}");
    let error = train_fails(&project, &["--param", "n_rounds=many"]);
    assert!(error.contains("--param") && error.contains("n_rounds"), "{error}");
    let error = train_fails(&project, &["--param", "depth_of_field=3"]);
    assert!(error.contains("unknown field `depth_of_field`"), "{error}");

    // The trees learn from 50,000 rows at most by default; fewer when asked, or all.
    assert_eq!(once["gbdt"]["max_rows"], 50_000);
    let sampled = train_with(&project, &["--param", "n_rounds=30", "--param", "max_rows=200"]);
    assert_eq!(sampled["gbdt"]["max_rows"], 200);
    assert_ne!(sampled["baselines"]["global_gbdt"], once["baselines"]["global_gbdt"]);
    let every_row = train_with(&project, &["--param", "max_rows=none"]);
    assert!(every_row["gbdt"]["max_rows"].is_null(), "{every_row}");
    let error = train_fails(&project, &["--param", "max_rows=0"]);
    assert!(error.contains("max_rows") && error.contains("at least 1"), "{error}");

    // The global model's training rows: 400 days by default (all of these 140), or fewer.
    assert_eq!(once["train_window"], 400);
    let recent = train_with(&project, &["--train-window", "56"]);
    assert_eq!(recent["train_window"], 56);
    assert_ne!(recent["baselines"]["global_gbdt"], once["baselines"]["global_gbdt"]);
    assert_eq!(recent["baselines"]["ets"], once["baselines"]["ets"], "ETS is not windowed");
    let all = train_with(&project, &["--train-window", "all"]);
    assert!(all["train_window"].is_null(), "{all}");
    let error = train_fails(&project, &["--train-window", "0"]);
    assert!(
        error.contains("--train-window \"0\": expected a number of periods (at least 1) or all"),
        "{error}"
    );

    // The candidates can be narrowed; seasonal naive stays the reference.
    let ets = train_with(&project, &["--strategies", "ets"]);
    assert_eq!(ets["strategy"], "ets");
    let mut backtested: Vec<&String> = ets["baselines"].as_object().unwrap().keys().collect();
    backtested.sort();
    assert_eq!(backtested, ["ets", "seasonal_naive"]);
    assert_eq!(ets["baselines"]["ets"], once["baselines"]["ets"], "the same ETS backtest");
    let error = train_fails(&project, &["--strategies", "ets,prophet"]);
    assert!(
        error.contains(
            "--strategies: unknown strategy \"prophet\", expected seasonal_naive, ets, global_gbdt"
        ),
        "{error}"
    );
}

#[test]
fn forecast_models_version_compare_and_roll_back_like_any_other() {
    let project = Project::new();
    train(&project, "revenue");
    let second = train(&project, "revenue");
    assert_eq!(second["version"], 2);
    let compared =
        project.json(&["models", "compare", "revenue:1", "revenue:2", "--format", "json"]);
    assert_eq!(
        compared[0]["backtest"]["mase"], compared[1]["backtest"]["mase"],
        "same data, same seed"
    );
    assert_eq!((&compared[0]["horizon"], &compared[0]["frequency"]), (&json!(7), &json!("D")));
    let text = project.ok(&["models", "compare", "revenue:1", "revenue:2"]);
    assert!(text.contains("7 daily periods"), "{text}");
    // The runs' backtest scores, side by side.
    let runs = compared.as_array().expect("versions").iter().map(|v| v["run_id"].as_str());
    let runs: Vec<&str> = runs.map(|run| run.expect("a run id")).collect();
    let text = project.ok(&["runs", "compare", runs[0], runs[1]]);
    assert!(text.contains("backtest_mase") && !text.contains("backtest_mase_std"), "{text}");
    project.json(&["models", "promote", "revenue", "2", "--format", "json"]);
    assert_eq!(project.json(&["models", "show", "revenue", "--format", "json"])["version"], 2);
    project.json(&["models", "rollback", "revenue", "--format", "json"]);
    assert_eq!(project.json(&["models", "show", "revenue", "--format", "json"])["version"], 1);
    let text = project.ok(&["models", "show", "revenue"]);
    assert!(text.contains("lowest mean MASE"), "the summary says why: {text}");
}

#[test]
fn bad_forecasting_input_gets_a_clear_error_and_saves_nothing() {
    let project = Project::new();
    let data = project.path("revenue.csv");
    let data_arg = data.to_str().unwrap();
    let forecast_args = |extra: &[&'static str]| {
        let mut args = vec![
            "train",
            "--task",
            "forecast",
            "--data",
            data_arg,
            "--time",
            "date",
            "--target",
            "revenue",
            "--series",
            "store,line",
        ];
        args.extend_from_slice(extra);
        args
    };

    // A date that does not parse: the file, its line and the column.
    let mut csv = table(0..DAYS, DAYS);
    csv = csv.replacen("2024-01-05", "2024-01-32", 1);
    std::fs::write(&data, &csv).unwrap();
    let error = project.fails(&forecast_args(&["--horizon", "7"]), 2);
    for part in
        ["revenue.csv", "data row 5", "line N+1", "\"date\"", "2024-01-32", "day out of range"]
    {
        assert!(error.contains(part), "{part:?} not in: {error}");
    }
    // A missing day inside a series: the series and both rows around the gap.
    let csv = table(0..DAYS, DAYS);
    let without: String = csv
        .lines()
        .filter(|line| !line.starts_with("12,food,2024-01-10"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&data, without).unwrap();
    let error = project.fails(&forecast_args(&["--horizon", "7"]), 2);
    assert!(error.contains("series \"store=12|line=food\": gap after 2024-01-09"), "{error}");
    // A series shorter than two seasons and the horizon.
    std::fs::write(&data, table(0..18, 18)).unwrap();
    let error = project.fails(&forecast_args(&["--horizon", "7", "--backtest-windows", "1"]), 2);
    assert!(error.contains("need 21 daily periods; the table covers 18"), "{error}");
    // A negative target where it cannot be: the file, the series and the row.
    let negative: String = csv
        .lines()
        .map(|line| match line.strip_prefix("12,food,2024-01-10,") {
            Some(rest) => format!("12,food,2024-01-10,-3.5,{}\n", rest.rsplit(',').next().unwrap()),
            None => format!("{line}\n"),
        })
        .collect();
    std::fs::write(&data, &negative).unwrap();
    let error = project.fails(&forecast_args(&["--horizon", "7", "--non-negative"]), 2);
    let row = negative.lines().position(|l| l.starts_with("12,food,2024-01-10,")).unwrap();
    for part in [
        "revenue.csv".to_owned(),
        "series \"store=12|line=food\"".to_owned(),
        format!("the target \"revenue\" is -3.5 at data row {row}, and it cannot be negative"),
    ] {
        assert!(error.contains(&part), "{part:?} not in: {error}");
    }
    // Flags out of range or of the other kind of task.
    std::fs::write(&data, &csv).unwrap();
    let error = project.fails(&forecast_args(&["--horizon", "0"]), 2);
    assert!(error.contains("--horizon must be at least 1"), "{error}");
    let error = project.fails(&forecast_args(&["--horizon", "7", "--algorithm", "gbdt"]), 2);
    assert!(error.contains("--algorithm: not for --task forecast"), "{error}");
    let error = project
        .fails(&forecast_args(&["--horizon", "7", "--cv", "10", "--class-weight", "balanced"]), 2);
    assert!(error.contains("--cv, --class-weight: not for --task forecast"), "{error}");
    let error = project.fails(&forecast_args(&["--horizon", "9223372036854775807"]), 2);
    assert!(
        error.contains("9223372036854775807 periods is longer than the whole history"),
        "{error}"
    );
    // Each training that failed once its run started is a FAILED run that keeps its error.
    let runs = project.json(&["runs", "list", "--format", "json"]);
    let failed: Vec<String> = runs
        .as_array()
        .expect("runs")
        .iter()
        .filter(|run| run["status"] == "FAILED")
        .map(|run| {
            let id = run["id"].as_str().expect("an id");
            let shown = project.json(&["runs", "show", id, "--format", "json"]);
            shown["tags"]["error"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    assert!(failed.iter().all(|error| !error.is_empty()), "{failed:?}");
    assert!(
        failed.iter().any(|error| error.contains("longer than the whole history")),
        "{failed:?}"
    );
    let error =
        project.fails(&["train", "--data", data_arg, "--label", "revenue", "--horizon", "7"], 2);
    assert!(error.contains("--horizon: for --task forecast only"), "{error}");
    let error = project.fails(&forecast_args(&["--horizon", "7", "--frequency", "fortnightly"]), 2);
    assert!(error.contains("expected one of H, D, W, M, Q"), "{error}");
    assert!(
        project.json(&["models", "list", "--format", "json"]).as_array().unwrap().is_empty(),
        "nothing saved"
    );

    // A trained model: wrong horizon, missing future promotions, the wrong command.
    train(&project, "revenue");
    let error = project.fails(&["forecast", "--model", "revenue", "--horizon", "8"], 2);
    assert!(error.contains("between 1 and 7"), "{error}");
    let strategy =
        project.json(&["models", "show", "revenue", "--format", "json"])["strategy"].clone();
    if strategy == "global_gbdt" {
        let error = project.fails(&["forecast", "--model", "revenue", "--horizon", "7"], 2);
        assert!(error.contains("future-known covariates [\"promo\"]"), "{error}");
    }
    let error =
        project.fails(&["predict", "--model", "revenue", "--data", data_arg, "--out", "x.csv"], 2);
    assert!(error.contains("is a forecast model: use `vigie forecast --model revenue`"), "{error}");
    let error = project.fails(&["forecast", "--model", "nothing", "--horizon", "1"], 2);
    assert!(error.contains("registered models: revenue"), "{error}");
    // `vigie forecast --model MODEL --data` of one newer row (store, line, revenue): its error.
    let newer = project.path("newer.csv");
    let refused_newer = |model: &str, store: &str, line: &str, revenue: &str| {
        let day = date(FIRST_DAY + DAYS as i64);
        let row = format!("store,line,date,revenue,promo\n{store},{line},{day},{revenue},0\n");
        std::fs::write(&newer, row).unwrap();
        let data = newer.to_str().unwrap();
        project.fails(&["forecast", "--model", model, "--horizon", "1", "--data", data], 2)
    };
    // Forecasts go to a .csv or .json file, never CSV under another name.
    let error = project
        .fails(&["forecast", "--model", "revenue", "--horizon", "1", "--out", "f.parquet"], 2);
    assert!(error.contains("written as CSV or JSON, not .parquet"), "{error}");
    let error = project.fails(
        &["forecast", "--model", "revenue", "--horizon", "1", "--out", "f.json", "--format", "csv"],
        2,
    );
    assert!(error.contains("--format csv but --out names a .json file"), "{error}");
    // An empty --data file says so.
    std::fs::write(&newer, "").unwrap();
    let newer_arg = newer.to_str().unwrap();
    let error = project
        .fails(&["forecast", "--model", "revenue", "--horizon", "1", "--data", newer_arg], 2);
    assert!(error.contains("the file is empty"), "{error}");
    // A strategy without covariates says it does not use them, and forecasts without them.
    let text = train_text(&project, &["--name", "smooth", "--strategies", "ets"]);
    assert!(text.contains("ets reads no covariates: this model does not use promo"), "{text}");
    project.ok(&["forecast", "--model", "smooth", "--horizon", "7"]);
    // A misspelt target column: without it every row would be a future row.
    let day = date(FIRST_DAY + DAYS as i64);
    std::fs::write(&newer, format!("store,line,date,Revenue,promo\n12,toys,{day},5,0\n")).unwrap();
    let newer_arg = newer.to_str().unwrap();
    let error = project
        .fails(&["forecast", "--model", "revenue", "--horizon", "1", "--data", newer_arg], 2);
    assert!(
        error.contains(
            "no target column \"revenue\" but a column \"Revenue\" the model does not know"
        ),
        "{error}"
    );
    // Newer rows written as months are no days of a daily model (nor quarters).
    for (month, written) in [("2024-03", "months (like 2024-03)"), ("2024-Q1", "quarters")] {
        std::fs::write(&newer, format!("store,line,date,revenue,promo\n12,toys,{month},5,0\n"))
            .unwrap();
        let error = project
            .fails(&["forecast", "--model", "revenue", "--horizon", "1", "--data", newer_arg], 2);
        assert!(
            error.contains(&format!("column \"date\": the times are {written}"))
                && error.contains("which are not daily periods: write each row's date"),
            "{error}"
        );
    }
    // A newer row for a series the model never saw.
    let error = refused_newer("revenue", "99", "toys", "5");
    assert!(
        error.contains("\"store=99|line=toys\"") && error.contains("not in the training data"),
        "{error}"
    );
    // A model of a non-negative target refuses a negative newer value too.
    let trained = project.json(&forecast_args(&[
        "--horizon",
        "7",
        "--non-negative",
        "--name",
        "positive",
        "--format",
        "json",
    ]));
    assert_eq!(trained["non_negative"], true, "{trained}");
    let shown = project.ok(&["models", "show", "positive:1"]);
    assert!(shown.contains("target non-negative: a negative value is refused"), "{shown}");
    let error = refused_newer("positive:1", "12", "toys", "-1");
    assert!(
        error.contains("the target \"revenue\" is -1 at data row 1, and it cannot be negative"),
        "{error}"
    );
}

#[test]
fn vigie_serve_forecasts_as_vigie_forecast_does_and_refuses_bad_requests() {
    let project = Project::new();
    let data = project.path("revenue.csv");
    std::fs::write(&data, table(0..DAYS, DAYS)).expect("write the table");
    let trained = project.json(&[
        "train",
        "--task",
        "forecast",
        "--data",
        data.to_str().expect("utf-8 path"),
        "--time",
        "date",
        "--target",
        "revenue",
        "--series",
        "store,line",
        "--horizon",
        "7",
        "--name",
        "revenue",
        "--format",
        "json",
    ]);
    assert_eq!(trained["model"], "revenue", "{trained}");
    let cli: serde_json::Value = serde_json::from_str(&project.ok(&[
        "forecast",
        "--model",
        "revenue",
        "--horizon",
        "5",
        "--format",
        "json",
    ]))
    .expect("json");

    let server = crate::support::Server::start(&project, &[]);
    // `body` posted to `path` is refused with `code` and a message holding `part`.
    let refused = |path: &str, body: &str, code: u16, part: &str| {
        let (status, reply) = server.post(path, body);
        assert_eq!(status, code, "{body}: {reply}");
        let text = reply["error"]["message"].as_str().unwrap_or_default();
        assert!(text.contains(part), "{body}: {text}");
    };
    let (status, all) = server.post("/v1/models/revenue/forecast", r#"{"horizon": 5}"#);
    assert_eq!(status, 200, "{all}");
    assert_eq!(
        (&all["model"], &all["version"], &all["horizon"]),
        (&json!("revenue"), &json!(1), &json!(5))
    );
    assert_eq!(all["forecasts"], cli, "the server's rows are vigie forecast's");

    // One series by its columns: its rows only, in order.
    let one = cli.as_array().expect("rows")[0].clone();
    let body = json!({"horizon": 5, "series": [{"store": one["store"], "line": one["line"]}]});
    let (status, picked) = server.post("/v1/models/revenue/forecast", &body.to_string());
    assert_eq!(status, 200, "{picked}");
    let expected: Vec<&serde_json::Value> = cli
        .as_array()
        .expect("rows")
        .iter()
        .filter(|r| r["store"] == one["store"] && r["line"] == one["line"])
        .collect();
    assert_eq!(
        picked["forecasts"].as_array().map(|r| r.iter().collect::<Vec<_>>()),
        Some(expected)
    );
    // Recorded in the audit log before the reply.
    let listed = project.json(&[
        "audit",
        "list",
        "--request-id",
        picked["request_id"].as_str().expect("id"),
        "--format",
        "json",
    ]);
    assert_eq!(listed[0]["route"], "/v1/models/{name}/forecast", "{listed}");

    for (body, code, message) in [
        (
            r#"{"horizon": 0}"#,
            400,
            "field \"horizon\": expected a whole number of periods from 1 to 7",
        ),
        (r#"{"horizon": 8}"#, 400, "from 1 to 7"),
        (
            r#"{"series": [{"store": "nowhere", "line": "x"}]}"#,
            404,
            "forecasts no series store=nowhere, line=x",
        ),
        (r#"{"series": [{"store": "s0"}]}"#, 400, "series[0].line: missing"),
        (
            r#"{"series": [{"store": "s0", "line": "a", "city": "Paris"}]}"#,
            400,
            "series[0].city: not a series column",
        ),
        (r#"{"series": "s0"}"#, 400, "field \"series\": expected a list"),
    ] {
        refused("/v1/models/revenue/forecast", body, code, message);
    }
    // The body itself: an object of known fields, each series once.
    for (body, message) in [
        ("[1]", "the body: expected a JSON object"),
        ("42", "the body: expected a JSON object"),
        (r#"{"horizn": 3}"#, "field \"horizn\": not a field of a forecast request"),
        (r#"{"version": 2}"#, "field \"version\": not a field of a forecast request"),
    ] {
        refused("/v1/models/revenue/forecast", body, 400, message);
    }
    let twice = json!({"series": [
        {"store": one["store"], "line": one["line"]},
        {"store": one["store"], "line": one["line"]},
    ]});
    refused("/v1/models/revenue/forecast", &twice.to_string(), 400, "the same series as series[0]");
    // A row the model already knows is left out and counted, whatever its value.
    let known = json!({"store": one["store"], "line": one["line"],
        "date": date(FIRST_DAY + DAYS as i64 - 1), "revenue": 999_999});
    let body = json!({"horizon": 5, "series": [{"store": one["store"], "line": one["line"]}], "data": [known]});
    let (status, reply) = server.post("/v1/models/revenue/forecast", &body.to_string());
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["skipped_rows"], 1, "{reply}");
    assert_eq!(reply["forecasts"], picked["forecasts"], "unchanged by the known row");
    // A value written as text is refused, naming its field.
    let text = json!({"store": one["store"], "line": one["line"],
        "date": date(FIRST_DAY + DAYS as i64), "revenue": "5"});
    let body = json!({"horizon": 5, "series": [{"store": one["store"], "line": one["line"]}], "data": [text]});
    refused(
        "/v1/models/revenue/forecast",
        &body.to_string(),
        400,
        "data[0].revenue: expected a number, true or false, or null",
    );
    // Listed among the served models, with its route; the tabular routes point to it.
    let (status, listed) = server.get("/v1/models");
    assert_eq!(status, 200, "{listed}");
    let entry = listed["models"]
        .as_array()
        .and_then(|models| models.iter().find(|m| m["name"] == "revenue"))
        .unwrap_or_else(|| panic!("revenue not listed: {listed}"));
    assert_eq!(
        entry["serving"],
        json!({"task": "forecast", "version": 1, "route": "/v1/models/revenue/forecast"})
    );
    let (status, ready) = server.get("/v2/health/ready");
    assert_eq!((status, &ready["models"]), (200, &json!(1)), "{ready}");
    let hint = "is a forecast model: POST /v1/models/revenue/forecast";
    refused("/v1/models/revenue/predict", r#"{"rows": [{}]}"#, 404, hint);
    let (status, reply) = server.post("/v1/models/nothing/forecast", "{}");
    assert_eq!(status, 404, "{reply}");
    assert!(reply["error"]["message"].as_str().unwrap_or_default().contains("revenue"), "{reply}");
}

#[test]
fn a_series_too_short_for_every_backtest_origin_is_forecast_and_counted() {
    let project = Project::new();
    // Store 12's food line opened 16 days before the end: two seasons and two days,
    // too few before any of the three origins (21, 14 and 7 days before the end).
    let opened = date(FIRST_DAY + DAYS as i64 - 16);
    let late = |csv: String| -> String {
        csv.lines()
            .filter(|line| !line.starts_with("12,food,") || line[8..18] >= *opened)
            .map(|line| format!("{line}\n"))
            .collect()
    };
    std::fs::write(project.path("revenue.csv"), late(table(0..DAYS, DAYS))).expect("write");
    let future = project.path("future.csv");
    std::fs::write(&future, late(table(0..DAYS + 7, DAYS))).expect("write");
    let trained = train(&project, "revenue");
    assert_eq!(trained["series"], 4, "{trained}");
    assert_eq!(trained["series_not_backtested"], 1, "{trained}");
    let scored: Vec<&serde_json::Value> = trained["per_series"]
        .as_array()
        .expect("per_series")
        .iter()
        .map(|s| &s["series"])
        .collect();
    assert_eq!(scored.len(), 3, "{scored:?}");
    assert!(!scored.contains(&&json!("store=12|line=food")), "{scored:?}");
    // `vigie forecast` of the next 7 days into the project's file `name`: its path.
    let forecast_to = |name: &str| {
        let out = project.path(name);
        let (out_arg, future_arg) = (out.to_str().expect("utf-8"), future.to_str().expect("utf-8"));
        let args = ["--horizon", "7", "--out", out_arg, "--data", future_arg];
        project.ok(&[&["forecast", "--model", "revenue"], &args[..]].concat());
        out
    };
    let (_, rows) = read_csv(&forecast_to("forecast.csv"));
    // The same rows as JSON records, by the file's extension.
    let json_out = forecast_to("forecast.json");
    let records: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_out).expect("read")).expect("json");
    assert_eq!(records.as_array().map(Vec::len), Some(rows.len()), "{records}");
    assert_eq!(records[0]["store"], rows[0][0].as_str(), "{records}");
    let food: Vec<&Vec<String>> = rows.iter().filter(|r| r[0] == "12" && r[1] == "food").collect();
    assert_eq!(food.len(), 7, "the short series is forecast too");
    assert!(
        food.iter().all(|r| r[4].parse::<f64>().unwrap() < r[3].parse::<f64>().unwrap()),
        "with intervals: {food:?}"
    );
    let text = train_text(&project, &["--name", "again"]);
    assert!(
        text.contains("1 of 4 series had too little history before every backtest origin"),
        "{text}"
    );
}

#[test]
fn a_training_whose_model_cannot_be_stored_is_a_failed_run_that_says_why() {
    let project = Project::new();
    // A file where the model files' folder should be: no model file can be written there.
    std::fs::create_dir_all(project.path(".vigie")).expect("the state folder");
    std::fs::write(project.path(".vigie/artifacts"), "not a folder").expect("write a file");
    let args = train_args(&project, &["--name", "revenue"]);
    let error = project.fails(&args.iter().map(String::as_str).collect::<Vec<_>>(), 1);
    assert!(error.contains("artifacts"), "{error}");
    let runs = project.json(&["runs", "list", "--format", "json"]);
    let failed = runs.as_array().expect("runs").iter().find(|run| run["status"] == "FAILED");
    let id = failed.and_then(|run| run["id"].as_str()).expect("a FAILED run");
    let shown = project.json(&["runs", "show", id, "--format", "json"]);
    assert!(shown["tags"]["error"].as_str().unwrap_or_default().contains("artifacts"), "{shown}");
    let models = project.json(&["models", "list", "--format", "json"]);
    assert_eq!(models, serde_json::json!([]), "nothing registered");
}
