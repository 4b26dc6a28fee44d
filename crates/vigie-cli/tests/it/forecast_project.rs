//! Forecasting inside a project: forecast models declared in `vigie.toml`,
//! trained from a source's or a feature view's rows exactly as `vigie train
//! --task forecast --data` trains a file, their settings checked with the
//! file, line and key; the forecast route taking newer rows as `vigie
//! forecast --data` does; the example project's revenue model out of the box;
//! and the `task` key of a tabular model.

use std::fmt::Write as _;

use serde_json::json;

use crate::forecast::date;
use crate::support::Project;

/// 2024-01-01, a Monday, in days since the epoch.
const FIRST_DAY: i64 = 19_723;
const DAYS: usize = 120;
const LINES: [&str; 2] = ["toys", "food"];

/// Units sold by series `series` on day `day`: a level, a weekly pattern, promotions.
fn units(series: usize, day: usize) -> u32 {
    let level = [40.0, 300.0, 12.0, 90.0, 25.0, 150.0][series];
    let weekly = [0.9, 0.85, 0.95, 1.0, 1.2, 1.5, 1.3][day % 7];
    let uplift = if promo(series, day) { 1.4 } else { 1.0 };
    let wobble = 1.0 + ((day * 7919 + series * 104_729) % 17) as f64 / 170.0;
    (level * weekly * uplift * wobble).round() as u32
}

fn promo(series: usize, day: usize) -> bool {
    (day * 7 + series * 3).is_multiple_of(11)
}

fn price(series: usize, day: usize) -> f64 {
    (2.5 + series as f64 + (day / 30) as f64 * 0.25) * if promo(series, day) { 0.8 } else { 1.0 }
}

/// `stores` × `lines` series of `days` days: `store,line,date,units,price,promo,revenue`.
fn sales(stores: &[&str], lines: &[&str], days: usize) -> String {
    let mut csv = "store,line,date,units,price,promo,revenue\n".to_owned();
    for (s, store) in stores.iter().enumerate() {
        for (l, line) in lines.iter().enumerate() {
            let series = s * lines.len() + l;
            for day in 0..days {
                let (units, price) = (units(series, day), price(series, day));
                writeln!(
                    csv,
                    "{store},{line},{},{units},{price},{},{}",
                    date(FIRST_DAY + day as i64),
                    u8::from(promo(series, day)),
                    f64::from(units) * price
                )
                .expect("write to a string");
            }
        }
    }
    csv
}

/// A project with `vigie.toml` and `data/sales.csv`.
fn project(toml: &str, csv: &str) -> Project {
    let project = Project::new();
    std::fs::create_dir_all(project.path("data")).expect("data folder");
    std::fs::write(project.path("vigie.toml"), toml).expect("write vigie.toml");
    std::fs::write(project.path("data/sales.csv"), csv).expect("write the sales");
    project
}

const BY_LINE: &str = r#"
[sources.sales]
kind = "file"
path = "data/sales.csv"
timestamp = "date"

[models.revenue]
task = "forecast"
source = "sales"
target = "revenue"
series = ["store", "line"]
horizon = 7
future_covariates = ["promo"]
"#;

/// The backtest of a `--format json` training summary: strategy, metrics, baselines.
fn backtest(trained: &serde_json::Value) -> serde_json::Value {
    serde_json::json!([trained["strategy"], trained["backtest"], trained["baselines"]])
}

#[test]
fn a_forecast_model_of_vigie_toml_trains_from_its_source_as_the_flags_train_the_file() {
    let project = project(BY_LINE, &sales(&["S1", "S2"], &LINES, DAYS));
    let declared = project.json(&["train", "revenue", "--format", "json"]);
    assert_eq!(
        (declared["model"].as_str(), declared["version"].as_u64()),
        (Some("revenue"), Some(1))
    );
    assert_eq!(
        declared["history"]["ingested"]["stored"].as_u64(),
        Some(4 * DAYS as u64),
        "{declared}"
    );
    assert_eq!(declared["history"]["rows"].as_u64(), Some(4 * DAYS as u64));
    assert_eq!((declared["series"].as_u64(), declared["horizon"].as_u64()), (Some(4), Some(7)));

    let data = project.path("data/sales.csv");
    let flags = project.json(&[
        "train",
        "--task",
        "forecast",
        "--data",
        data.to_str().expect("utf-8"),
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
        "--name",
        "flags",
        "--format",
        "json",
    ]);
    assert_eq!(backtest(&declared), backtest(&flags), "the same history, the same training");

    // The same forecasts, in the same columns, from the same future promotions.
    let mut future = "store,line,date,promo\n".to_owned();
    for (store, line) in [("S1", "toys"), ("S1", "food"), ("S2", "toys"), ("S2", "food")] {
        for day in DAYS..DAYS + 7 {
            writeln!(future, "{store},{line},{},{}", date(FIRST_DAY + day as i64), day % 2)
                .unwrap();
        }
    }
    std::fs::write(project.path("future.csv"), future).expect("write");
    let forecast = |model: &str| {
        let future = project.path("future.csv");
        project.ok(&[
            "forecast",
            "--model",
            model,
            "--horizon",
            "7",
            "--data",
            future.to_str().unwrap(),
        ])
    };
    let from_toml = forecast("revenue");
    assert!(
        from_toml.starts_with("store,line,date,forecast,lo80,hi80,lo95,hi95\nS1,food,"),
        "{from_toml}"
    );
    assert_eq!(from_toml.lines().count(), 1 + 4 * 7);
    assert_eq!(from_toml, forecast("flags"));

    // Again: nothing new to ingest, the same model as version 2.
    let again = project.json(&["train", "revenue", "--format", "json"]);
    assert_eq!(again["history"]["ingested"]["stored"], 0, "{again}");
    assert_eq!((again["version"].as_u64(), backtest(&again)), (Some(2), backtest(&declared)));
    let text = project.ok(&["train", "revenue", "--horizon", "5", "--backtest-windows", "2"]);
    assert!(text.starts_with("Ingested 0 new rows of sales; read 480 history rows\n"), "{text}");
    assert!(
        text.contains("horizon 5,") && text.contains("over 2 rolling-origin windows"),
        "{text}"
    );
}

const BY_STORE: &str = r#"
[entities.store]
key = "store"

[sources.sales]
kind = "file"
path = "data/sales.csv"
timestamp = "date"

[feature_views.daily]
source = "sales"
entity = "store"
columns = { revenue = "units * price", promo = "promo" }
aggregations = [{ name = "units_7d", function = "sum", column = "units", window = "7d" }]

[models.by_store]
task = "forecast"
view = "daily"
target = "revenue"
covariates = ["units_7d"]
horizon = 7
backtest_windows = 2
"#;

/// `vigie train --task forecast` of `table` (store, date, revenue, units_7d) as
/// [`BY_STORE`] declares its model, then `extra`: the JSON summary, for comparing a
/// view's training with the table computed by hand.
fn train_by_store_table(project: &Project, table: &str, extra: &[&str]) -> serde_json::Value {
    let expected = project.path("expected.csv");
    std::fs::write(&expected, table).expect("write");
    let mut args = vec![
        "train",
        "--task",
        "forecast",
        "--data",
        expected.to_str().expect("utf-8"),
        "--time",
        "date",
        "--target",
        "revenue",
        "--series",
        "store",
        "--covariates",
        "units_7d",
        "--horizon",
        "7",
        "--backtest-windows",
        "2",
        "--name",
        "flags",
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    project.json(&args)
}

#[test]
fn a_forecast_model_trains_on_the_rows_of_its_feature_view() {
    let stores = ["S1", "S2", "S3"];
    let project = project(BY_STORE, &sales(&stores, &["all"], DAYS));
    let trained = project.json(&["train", "by_store", "--format", "json"]);
    let history = &trained["history"];
    assert_eq!(history["ingested"]["stored"].as_u64(), Some(3 * DAYS as u64), "{trained}");
    assert_eq!(history["computed"]["view"], "daily");
    assert_eq!(history["computed"]["rows"].as_u64(), Some(3 * DAYS as u64));
    assert_eq!(
        (history["computed"]["late"].as_u64(), history["rows"].as_u64()),
        (Some(0), Some(360))
    );
    assert_eq!(trained["series"], 3);

    // The view's rows, computed here by hand: revenue per row, units over (t - 7d, t].
    let mut table = "store,date,revenue,units_7d\n".to_owned();
    for (s, store) in stores.iter().enumerate() {
        for day in 0..DAYS {
            let units_7d: u32 = (day.saturating_sub(6)..=day).map(|d| units(s, d)).sum();
            let revenue = f64::from(units(s, day)) * price(s, day);
            writeln!(table, "{store},{},{revenue},{units_7d}", date(FIRST_DAY + day as i64))
                .unwrap();
        }
    }
    let flags = train_by_store_table(&project, &table, &[]);
    assert_eq!(backtest(&trained), backtest(&flags), "the view's rows are the table");

    // Forecasts are written under the entity's key and the source's time column.
    let out = project.ok(&["forecast", "--model", "by_store", "--horizon", "2"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "store,date,forecast,lo80,hi80,lo95,hi95");
    assert!(lines[1].starts_with(&format!("S1,{},", date(FIRST_DAY + DAYS as i64))), "{out}");
    assert_eq!(lines.len(), 1 + 3 * 2);
}

#[test]
fn a_view_with_two_rows_of_a_series_in_one_period_is_refused_as_a_file_is() {
    // Two product lines per store: the view, keyed by store, has two rows per store and day.
    let project = project(BY_STORE, &sales(&["S1"], &LINES, 30));
    let error = project.fails(&["train", "by_store"], 2);
    for part in [
        "cannot train on feature view \"daily\" (data row N is its Nth row, sorted by key and time)",
        "series \"S1\": duplicate time 2024-01-01 at data row 1 and data row 2",
    ] {
        assert!(error.contains(part), "{part:?} not in: {error}");
    }
    // A missing day of a store: the gap, as for a file.
    let csv: String = sales(&["S1"], &["all"], 40)
        .lines()
        .filter(|line| !line.contains(",2024-01-10,"))
        .map(|line| format!("{line}\n"))
        .collect();
    let project = self::project(BY_STORE, &csv);
    let error = project.fails(&["train", "by_store"], 2);
    assert!(error.contains("series \"S1\": gap after 2024-01-09 (data row 9)"), "{error}");
    assert!(project.json(&["models", "list", "--format", "json"]).as_array().unwrap().is_empty());
}

#[test]
fn a_view_of_events_trains_once_its_rows_are_grouped_into_periods() {
    // Two product lines per store: two rows per store and day, summed into one.
    let stores = ["S1", "S2"];
    let toml = BY_STORE.replace(
        "backtest_windows = 2",
        "backtest_windows = 2\nfrequency = \"D\"\naggregate = \"sum\"",
    );
    let project = project(&toml, &sales(&stores, &LINES, DAYS));
    let trained = project.json(&["train", "by_store", "--format", "json"]);
    assert_eq!(trained["history"]["rows"].as_u64(), Some((2 * 2 * DAYS) as u64), "{trained}");
    assert_eq!(
        (trained["rows"].as_u64(), trained["aggregate"].as_str()),
        (Some((2 * DAYS) as u64), Some("sum"))
    );

    // The same periods by hand: each store's daily revenue summed over its lines, and the
    // mean of the view's units over (t - 7d, t] on the day's two rows. A view row counts the
    // events processed before it and itself: the day's first row (toys, first in the file)
    // does not yet count the day's food units.
    let mut table = "store,date,revenue,units_7d\n".to_owned();
    for (s, store) in stores.iter().enumerate() {
        let (toys, food) = (2 * s, 2 * s + 1);
        for day in 0..DAYS {
            let revenue: f64 =
                [toys, food].iter().map(|&k| f64::from(units(k, day)) * price(k, day)).sum();
            let week = |k: usize| (day.saturating_sub(6)..=day).map(|d| units(k, d)).sum::<u32>();
            let both = f64::from(week(toys) + week(food));
            let units_7d = (both - f64::from(units(food, day)) + both) / 2.0;
            writeln!(table, "{store},{},{revenue},{units_7d}", date(FIRST_DAY + day as i64))
                .unwrap();
        }
    }
    let flags = train_by_store_table(&project, &table, &["--frequency", "D"]);
    assert_eq!(backtest(&trained), backtest(&flags), "the grouped rows are the daily table");
    let text = project.ok(&["train", "by_store"]);
    assert!(
        text.contains("Rows grouped into 240 daily periods (UTC) of the series (the target's sum, the covariates' mean)"),
        "{text}"
    );

    // Grouping needs the periods; unknown names and bad windows are named by line and column.
    for (setting, line_start, needle, expected) in [
        (
            "aggregate = \"sum\"",
            "aggregate",
            "\"sum\"",
            "[models.by_store] aggregate: grouping rows into periods needs the periods",
        ),
        (
            "strategies = [\"ets\", \"arima\"]",
            "strategies",
            "\"arima\"",
            "[models.by_store] strategies: unknown strategy \"arima\", expected seasonal_naive, ets, global_gbdt",
        ),
        (
            "strategies = []",
            "strategies",
            "[]",
            "[models.by_store] strategies: name at least one of seasonal_naive, ets, global_gbdt (or leave the key out for all)",
        ),
        (
            "frequency = \"D\"\naggregate = \"total\"",
            "aggregate",
            "\"total\"",
            "[models.by_store] aggregate: unknown aggregate \"total\", expected one of sum, mean, last, min, max, count",
        ),
        (
            "train_window = 0",
            "train_window",
            "0",
            "[models.by_store] train_window: 0; expected a number of periods (at least 1) or \"all\"",
        ),
        (
            "train_window = \"recent\"",
            "train_window",
            "\"recent\"",
            "[models.by_store] train_window: recent; expected a number of periods (at least 1) or \"all\"",
        ),
        (
            "frequency = \"D\"\naggregate = \"sum\"\ntimezone = \"Mars/Olympus\"",
            "timezone",
            "\"Mars/Olympus\"",
            "[models.by_store] timezone: unknown time zone \"Mars/Olympus\"; expected an IANA name",
        ),
        (
            "frequency = \"D\"\ntimezone = \"Europe/Paris\"",
            "timezone",
            "\"Europe/Paris\"",
            "[models.by_store] timezone: says whose local periods `aggregate` groups rows into",
        ),
    ] {
        let toml =
            BY_STORE.replace("backtest_windows = 2", &format!("backtest_windows = 2\n{setting}"));
        std::fs::write(project.path("vigie.toml"), &toml).unwrap();
        let (line, column) = toml
            .lines()
            .enumerate()
            .find_map(|(n, l)| {
                l.starts_with(line_start).then(|| (n + 1, l.find(needle).unwrap() + 1))
            })
            .unwrap();
        let error = project.fails(&["train", "by_store"], 2);
        assert!(error.contains(&format!("vigie.toml:{line}:{column}: {expected}")), "{error}");
    }

    // The global model's window in vigie.toml, as with --train-window.
    let toml = BY_STORE.replace(
        "backtest_windows = 2",
        "backtest_windows = 2\nfrequency = \"D\"\naggregate = \"sum\"\ntrain_window = 30",
    );
    std::fs::write(project.path("vigie.toml"), &toml).unwrap();
    let trained = project.json(&["train", "by_store", "--format", "json"]);
    assert_eq!(trained["train_window"], 30, "{trained}");
    // And its time zone: the view's events are at midnight UTC, the evening before in New
    // York, so each day's rows become the day before's, and the next day to forecast too.
    let next_day = |trained: &serde_json::Value| {
        let model = format!("by_store:{}", trained["version"]);
        let csv = project.ok(&["forecast", "--model", &model, "--horizon", "1"]);
        csv.lines().nth(1).and_then(|row| row.split(',').nth(1)).map(str::to_owned)
    };
    assert_eq!(next_day(&trained), Some(date(FIRST_DAY + DAYS as i64)));
    let in_new_york =
        toml.replace("train_window = 30", "train_window = 30\ntimezone = \"America/New_York\"");
    std::fs::write(project.path("vigie.toml"), in_new_york).unwrap();
    let local = project.json(&["train", "by_store", "--format", "json"]);
    assert_eq!(local["timezone"], "America/New_York", "{local}");
    assert_eq!(next_day(&local), Some(date(FIRST_DAY + DAYS as i64 - 1)));
    // A target declared non-negative: its rows are checked, and the summary says so.
    let non_negative = toml.replace("train_window = 30", "train_window = 30\nnon_negative = true");
    std::fs::write(project.path("vigie.toml"), &non_negative).unwrap();
    let declared = project.json(&["train", "by_store", "--format", "json"]);
    assert_eq!(declared["non_negative"], true, "{declared}");
}

#[test]
fn bad_forecast_settings_in_vigie_toml_are_named_by_line_column_and_key() {
    let toml = BY_LINE.replace("horizon = 7", "horizon = 0");
    let project = project(&toml, &sales(&["S1"], &LINES, 30));
    let error = project.fails(&["train", "revenue"], 2);
    let line = toml.lines().position(|l| l == "horizon = 0").unwrap() + 1;
    assert!(
        error.contains(&format!(
            "vigie.toml:{line}:11: [models.revenue] horizon: 0 periods; it must be at least 1"
        )),
        "{error}"
    );
    let toml = BY_LINE.replace("horizon = 7", "horizon = 7\nfeatures = [\"x:*\"]");
    std::fs::write(project.path("vigie.toml"), &toml).unwrap();
    let error = project.fails(&["train", "revenue"], 2);
    assert!(
        error.contains("[models.revenue] features: not a setting of a forecast model"),
        "{error}"
    );

    // Columns come from vigie.toml alone; the tabular flags and tasks are refused.
    std::fs::write(project.path("vigie.toml"), BY_LINE).unwrap();
    let error = project.fails(&["train", "revenue", "--target", "units"], 2);
    assert!(
        error.contains("--target: model \"revenue\" takes its columns from [models.revenue]"),
        "{error}"
    );
    let error = project.fails(&["train", "revenue", "--label", "units"], 2);
    assert!(error.contains("--label: model \"revenue\" takes its columns from"), "{error}");
    let error = project.fails(&["train", "revenue", "--algorithm", "gbdt"], 2);
    assert!(error.contains("--algorithm: not for --task forecast"), "{error}");
    // A column the source does not have: the model and the key that names it.
    let toml = BY_LINE.replace("target = \"revenue\"", "target = \"revenu\"");
    std::fs::write(project.path("vigie.toml"), &toml).unwrap();
    let error = project.fails(&["train", "revenue"], 2);
    assert!(
        error.contains(
            "vigie.toml [models.revenue]: target: source \"sales\" has no column \"revenu\""
        ),
        "{error}"
    );
    std::fs::write(project.path("vigie.toml"), BY_LINE).unwrap();
    let error = project.fails(&["train", "revenue", "--task", "regression"], 2);
    assert!(
        error.contains("--task regression: model \"revenue\" of vigie.toml is a forecast model"),
        "{error}"
    );
    let error = project.fails(&["train", "revenue", "--horizon", "0"], 2);
    assert!(error.contains("--horizon must be at least 1"), "{error}");
    assert!(project.json(&["models", "list", "--format", "json"]).as_array().unwrap().is_empty());
}

/// A CSV's data rows as JSON records: numbers where a cell parses as one, nothing for an
/// empty cell.
pub(crate) fn records(csv: &str) -> Vec<serde_json::Value> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    lines
        .map(|line| {
            let mut record = serde_json::Map::new();
            for (name, cell) in header.iter().zip(line.split(',')) {
                let value = match cell.parse::<f64>() {
                    _ if cell.is_empty() => continue,
                    _ if *name == "store" || *name == "line" || *name == "date" => json!(cell),
                    Ok(number) => json!(number),
                    Err(_) => json!(cell),
                };
                record.insert((*name).to_owned(), value);
            }
            serde_json::Value::Object(record)
        })
        .collect()
}

#[test]
fn the_forecast_route_takes_newer_history_and_future_covariates_as_vigie_forecast_data_does() {
    let project = project(BY_LINE, &sales(&["S1", "S2"], &LINES, DAYS));
    let trained = project.json(&["train", "revenue", "--format", "json"]);
    assert_eq!(
        trained["strategy"], "global_gbdt",
        "on this data the promotions make the global model win, so it needs them ahead: {trained}"
    );
    // Three newer days of actuals, then the promotions of the next seven.
    let all = sales(&["S1", "S2"], &LINES, DAYS + 10);
    let mut newer = "store,line,date,revenue,promo\n".to_owned();
    for line in all.lines().skip(1) {
        let cells: Vec<&str> = line.split(',').collect();
        let day = (0..DAYS + 10).position(|d| date(FIRST_DAY + d as i64) == cells[2]).unwrap();
        let revenue = if day < DAYS + 3 { cells[6] } else { "" };
        if day >= DAYS {
            writeln!(newer, "{},{},{},{revenue},{}", cells[0], cells[1], cells[2], cells[5])
                .unwrap();
        }
    }
    std::fs::write(project.path("newer.csv"), &newer).expect("write");
    let newer_path = project.path("newer.csv");
    let cli: serde_json::Value = serde_json::from_str(&project.ok(&[
        "forecast",
        "--model",
        "revenue",
        "--horizon",
        "7",
        "--data",
        newer_path.to_str().unwrap(),
        "--format",
        "json",
    ]))
    .expect("json");
    let cli = cli.as_array().expect("rows").clone();
    assert_eq!(cli.len(), 4 * 7);
    assert_eq!(cli[0]["date"], date(FIRST_DAY + DAYS as i64 + 3), "after the newer actuals");

    let server = crate::support::Server::start(&project, &[]);
    let rows = records(&newer);
    let (status, reply) = server
        .post("/v1/models/revenue/forecast", &json!({"horizon": 7, "data": rows}).to_string());
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        reply["forecasts"].as_array(),
        Some(&cli),
        "the route forecasts as vigie forecast --data"
    );

    // One series: its rows alone, and only its future promotions are needed.
    let one: Vec<&serde_json::Value> =
        rows.iter().filter(|r| r["store"] == "S2" && r["line"] == "food").collect();
    let body = json!({"horizon": 7, "series": [{"store": "S2", "line": "food"}], "data": one});
    let (status, reply) = server.post("/v1/models/revenue/forecast", &body.to_string());
    assert_eq!(status, 200, "{reply}");
    let expected: Vec<&serde_json::Value> =
        cli.iter().filter(|r| r["store"] == "S2" && r["line"] == "food").collect();
    assert_eq!(reply["forecasts"].as_array().map(|r| r.iter().collect::<Vec<_>>()), Some(expected));
    // The audit record holds the rows the answer used.
    let listed = project.json(&[
        "audit",
        "list",
        "--request-id",
        reply["request_id"].as_str().expect("id"),
        "--format",
        "json",
    ]);
    assert_eq!(
        listed[0]["rows"][0]["inputs"]["data"].as_array().map(Vec::len),
        Some(10),
        "{listed}"
    );

    // Bad rows: a 400 naming the field.
    let with = |edit: &dyn Fn(&mut Vec<serde_json::Value>)| {
        let mut rows = rows.clone();
        edit(&mut rows);
        json!({"horizon": 7, "data": rows}).to_string()
    };
    let history_only: Vec<serde_json::Value> =
        rows.iter().filter(|r| r.get("revenue").is_some()).cloned().collect();
    let cases: Vec<(String, &str)> = vec![
        (
            json!({"horizon": 7, "data": history_only}).to_string(),
            "field \"data\": model \"revenue\" needs the future values of promo for every forecast period",
        ),
        (json!({"horizon": 7}).to_string(), "needs the future values of promo"),
        (
            with(&|rows| {
                rows[5].as_object_mut().unwrap().remove("promo");
            }),
            "data: future covariate \"promo\" is missing for series \"store=S1|line=toys\" at 2024-05-05 (step 3 of 7)",
        ),
        (
            with(&|rows| rows[2]["date"] = json!("2024-13-40")),
            "data[2].date: \"2024-13-40\" is not a time",
        ),
        (
            with(&|rows| rows[2]["date"] = json!(20240101)),
            "data[2].date: expected a date or time as text",
        ),
        (
            with(&|rows| rows[0]["store"] = json!("S9")),
            "data[0]: model \"revenue\" forecasts no series store=S9, line=toys",
        ),
        (with(&|rows| rows[1]["revenue"] = json!("lots")), "data[1].revenue: expected a number"),
        (
            with(&|rows| rows[0]["city"] = json!("Paris")),
            "data[0].city: not a column of model \"revenue\"",
        ),
        (
            with(&|rows| {
                rows[0].as_object_mut().unwrap().remove("line");
            }),
            "data[0].line: missing",
        ),
        (
            with(&|rows| {
                rows.remove(0);
            }),
            "data: series \"store=S1|line=toys\": gap between",
        ),
        (json!({"data": {"store": "S1"}}).to_string(), "field \"data\": expected a list of rows"),
    ];
    for (body, message) in cases {
        let (status, reply) = server.post("/v1/models/revenue/forecast", &body);
        let text = reply["error"]["message"].as_str().unwrap_or_default();
        assert_eq!(status, 400, "{message}: {reply}");
        assert!(text.contains(message), "{message:?} not in: {text}");
    }
}

#[test]
fn the_example_project_forecasts_its_revenue_out_of_the_box() {
    let project = Project::new();
    let written = project.json(&["init", "--rows", "3000", "--format", "json"]);
    assert_eq!(written["revenue"]["series"], 27, "3 stores × 9 product lines: {written}");
    let csv = std::fs::read_to_string(project.path("data/revenue.csv")).expect("the revenue");
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("store,product_line,date,revenue,promo,price"));
    let rows: Vec<Vec<&str>> = lines.map(|line| line.split(',').collect()).collect();
    assert_eq!(written["revenue"]["rows"].as_u64(), Some(rows.len() as u64));
    // Every series ends yesterday (UTC); the late store has a shorter history.
    let today = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| (d.as_secs() / 86_400) as i64)
        .expect("a clock after 1970");
    let yesterday = date(today - 1);
    let mut lengths = std::collections::BTreeMap::new();
    for row in &rows {
        *lengths.entry((row[0], row[1])).or_insert(0) += 1;
        let revenue: f64 = row[3].parse().expect("revenue");
        assert!(revenue >= 0.0, "{row:?}");
        if row[2].ends_with("-12-25") || row[2].ends_with("-01-01") {
            assert_eq!(revenue, 0.0, "the stores close on 25 December and 1 January: {row:?}");
        }
    }
    assert_eq!(lengths.len(), 27);
    assert!(lengths.iter().all(|((store, _), &n)| (*store == "S3") != (n == 730)), "{lengths:?}");
    assert!(lengths.values().all(|&n| n >= 42), "two weeks and the horizon at least: {lengths:?}");
    for (store, line) in lengths.keys() {
        let last = rows.iter().rfind(|r| r[0] == *store && r[1] == *line).expect("a row");
        assert_eq!(last[2], yesterday, "{last:?}");
    }

    // The commands the README gives, as they are.
    let trained = project.json(&["train", "revenue", "--format", "json"]);
    assert_eq!((trained["series"].as_u64(), trained["horizon"].as_u64()), (Some(27), Some(28)));
    assert_eq!(trained["history"]["ingested"]["stored"].as_u64(), Some(rows.len() as u64));
    let mase = trained["backtest"]["mase"]["mean"].as_f64().expect("mase");
    let naive = trained["baselines"]["seasonal_naive"]["mase"]["mean"].as_f64().expect("naive");
    assert!(mase < naive, "the chosen strategy beats repeating last week: {trained}");
    let forecasts = project.ok(&["forecast", "--model", "revenue", "--horizon", "28"]);
    let lines: Vec<&str> = forecasts.lines().collect();
    assert_eq!(lines[0], "store,product_line,date,forecast,lo80,hi80,lo95,hi95");
    assert_eq!(lines.len(), 1 + 27 * 28);
    assert!(lines[1].starts_with(&format!("S1,apparel,{},", date(today))), "{}", lines[1]);

    // Seeded: the same seed on the same day writes the same file.
    let again = Project::new();
    again.ok(&["init", "--rows", "3000"]);
    let other = std::fs::read_to_string(again.path("data/revenue.csv")).expect("the revenue");
    assert!(other == csv, "the same revenue from the same seed");
}

#[test]
fn a_tabular_model_s_task_in_vigie_toml_reaches_training() {
    let project = Project::new();
    project.ok(&["init", "--rows", "2000"]);
    let toml = std::fs::read_to_string(project.path("vigie.toml")).expect("vigie.toml");
    let toml = toml.replace("label = \"is_fraud\"", "label = \"is_fraud\"\ntask = \"regression\"");
    std::fs::write(project.path("vigie.toml"), toml).expect("write");
    project.ok(&["ingest", "transactions"]);
    project.ok(&["materialize"]);
    let trained =
        project.json(&["train", "fraud", "--cv", "2", "--algorithm", "linear", "--format", "json"]);
    assert_eq!(trained["task"], "regression", "vigie.toml's task, not the label's guess");
    let error = project.fails(&["train", "fraud", "--task", "forecast"], 2);
    assert!(
        error.contains("--task forecast: model \"fraud\" of vigie.toml is a regression model"),
        "{error}"
    );
}

#[test]
fn a_sources_times_without_an_offset_are_read_on_the_models_zone_as_a_files_are() {
    // Sales at 02:00 and 12:00 on New York's clock, written without an offset: in UTC the
    // 02:00 sale is 06:00 or 07:00 the same day, read as UTC 02:00 it would be the evening
    // before in New York.
    let mut csv = "ts,amount\n".to_owned();
    for day in 0..60 {
        for (hour, amount) in [(2, 10 + day % 7), (12, 30 + day % 5)] {
            writeln!(csv, "{}T{hour:02}:00:00,{amount}", date(FIRST_DAY + day)).expect("write");
        }
    }
    let toml = r#"
[sources.sales]
kind = "file"
path = "data/sales.csv"
timestamp = "ts"

[models.daily]
task = "forecast"
source = "sales"
target = "amount"
horizon = 7
frequency = "D"
aggregate = "sum"
timezone = "America/New_York"
strategies = ["seasonal_naive"]
"#;
    let project = project(toml, &csv);
    let declared = project.json(&["train", "daily", "--format", "json"]);
    let data = project.path("data/sales.csv");
    let flags = project.json(&[
        "train",
        "--task",
        "forecast",
        "--data",
        data.to_str().expect("utf-8"),
        "--time",
        "ts",
        "--target",
        "amount",
        "--horizon",
        "7",
        "--frequency",
        "D",
        "--aggregate",
        "sum",
        "--timezone",
        "America/New_York",
        "--strategies",
        "seasonal_naive",
        "--name",
        "from_file",
        "--format",
        "json",
    ]);
    assert_eq!(declared["rows"], 60, "one local day each: {declared}");
    assert_eq!(declared["rows"], flags["rows"]);
    assert_eq!(backtest(&declared), backtest(&flags), "the same days, the same backtest");
}
