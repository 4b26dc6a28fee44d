//! Tests of forecasting on seeded synthetic revenue: the chosen strategy beats
//! seasonal naive, intervals cover a held-out horizon, no value after an
//! origin reaches its forecast, frequencies are inferred, bad tables get
//! errors naming the series and row, a saved model forecasts identically,
//! and the global model is scale-free; tables read from files split into
//! history and future rows, and a forecaster round-trips through the model file.

use std::sync::OnceLock;

use proptest::prelude::*;
use vigie_core::{Column, ColumnData, Frame, TextColumn};
use vigie_ml::forecast::{
    self, Aggregate, BacktestReport, ColumnRoles, Covariate, CovariateTable, ForecastCard,
    ForecastModel, ForecastParams, ForecastRow, Forecaster, Frequency, PeriodGrouping, SeriesTable,
    Strategy, TimeWriting, format_time, split_frame,
};
use vigie_ml::model::DataFingerprint;
use vigie_ml::rng::Rng;
use vigie_ml::{MlError, SavedModel, format};

const DAY: f64 = 86_400.0;
/// 2021-01-04, a Monday, in days since the epoch.
const START_DAY: f64 = 18_631.0;

/// Days since 1970-01-01 of a civil date (Hinnant's algorithm, restated so the
/// test does not trust the code under test for its timestamps).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn date(year: i64, month: i64, day: i64) -> f64 {
    days_from_civil(year, month, day) as f64 * DAY
}

/// Daily series named `keys`, `days` days each from 2024-01-01, series after
/// series; `value(series, day)` is the target.
fn daily_table(
    keys: &[impl AsRef<str>],
    days: usize,
    mut value: impl FnMut(usize, usize) -> f64,
) -> SeriesTable {
    let mut table = SeriesTable::default();
    for (series, key) in keys.iter().enumerate() {
        for day in 0..days {
            table.series.push(key.as_ref().into());
            table.times.push(date(2024, 1, 1) + DAY * day as f64);
            table.values.push(value(series, day));
        }
    }
    table
}

/// What the generator makes: all rows, and where the training part ends.
struct Revenue {
    table: SeriesTable,
    /// Days per series.
    n_days: usize,
    n_series: usize,
}

/// `n_series` daily revenue series of `n_days`: scales from 10 to 10,000,
/// linear trend, weekday pattern, yearly cycle, promotions (8% of days,
/// uplift 1.3–1.7, known ahead, with a 20% price cut) and 8% lognormal noise.
/// A past-only covariate `footfall` (noisy revenue / scale) is included when asked.
fn revenue(n_series: usize, n_days: usize, seed: u64, with_footfall: bool) -> Revenue {
    let mut rng = Rng::new(seed);
    let mut table = SeriesTable::default();
    let (mut promo, mut price, mut footfall) = (Vec::new(), Vec::new(), Vec::new());
    for s in 0..n_series {
        let base = 10f64.powf(1.0 + 3.0 * rng.next_f64());
        let growth = (rng.next_f64() - 0.3) * 0.0008;
        let weekly: Vec<f64> = (0..7)
            .map(|d| if d >= 5 { 1.3 + 0.3 * rng.next_f64() } else { 0.9 + 0.2 * rng.next_f64() })
            .collect();
        let yearly_amplitude = 0.1 + 0.3 * rng.next_f64();
        let phase = rng.next_f64() * std::f64::consts::TAU;
        let uplift = 1.3 + 0.4 * rng.next_f64();
        let base_price = 5.0 + 20.0 * rng.next_f64();
        for t in 0..n_days {
            let on_promo = rng.next_f64() < 0.08;
            let day_of_year = (t as f64 + 3.0) % 365.25;
            let yearly = 1.0
                + yearly_amplitude * (std::f64::consts::TAU * day_of_year / 365.25 + phase).sin();
            let y = base
                * (1.0 + growth * t as f64)
                * weekly[t % 7]
                * yearly
                * if on_promo { uplift } else { 1.0 }
                * (0.08 * rng.normal()).exp();
            table.series.push(format!("store={}|line={}", s / 4, s % 4).into());
            table.times.push((START_DAY + t as f64) * DAY);
            table.values.push(y);
            promo.push(if on_promo { 1.0 } else { 0.0 });
            price.push(base_price * if on_promo { 0.8 } else { 1.0 });
            footfall.push(y / base * (0.1 * rng.normal()).exp());
        }
    }
    table.covariates = vec![
        Covariate { name: "promo".into(), values: promo },
        Covariate { name: "price".into(), values: price },
    ];
    if with_footfall {
        table.covariates.push(Covariate { name: "footfall".into(), values: footfall });
    }
    Revenue { table, n_days, n_series }
}

/// The rows of `table` whose day index within the series satisfies `keep`.
fn rows_where(revenue: &Revenue, keep: impl Fn(usize) -> bool) -> SeriesTable {
    let table = &revenue.table;
    let rows: Vec<usize> = (0..table.series.len()).filter(|&r| keep(r % revenue.n_days)).collect();
    SeriesTable {
        series: rows.iter().map(|&r| table.series[r].clone()).collect(),
        times: rows.iter().map(|&r| table.times[r]).collect(),
        values: rows.iter().map(|&r| table.values[r]).collect(),
        covariates: table
            .covariates
            .iter()
            .map(|c| Covariate {
                name: c.name.clone(),
                values: rows.iter().map(|&r| c.values[r]).collect(),
            })
            .collect(),
        row_numbers: Vec::new(),
    }
}

/// The covariates of `table` without its target.
fn covariates_of(table: &SeriesTable) -> CovariateTable {
    CovariateTable {
        series: table.series.clone(),
        times: table.times.clone(),
        covariates: table.covariates.clone(),
        row_numbers: Vec::new(),
    }
}

const HORIZON: usize = 28;
const TRAIN_DAYS: usize = 3 * 365;

/// Three years of 32 series (training) and the next 28 days (held out),
/// fitted once with the default parameters.
struct Fixture {
    revenue: Revenue,
    train: SeriesTable,
    held_out: SeriesTable,
    model: ForecastModel,
    report: BacktestReport,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let revenue = revenue(32, TRAIN_DAYS + HORIZON, 7, false);
        let train = rows_where(&revenue, |day| day < TRAIN_DAYS);
        let held_out = rows_where(&revenue, |day| day >= TRAIN_DAYS);
        let (model, report) =
            forecast::fit(&train, &ForecastParams::new(HORIZON)).expect("the fixture fits");
        Fixture { revenue, train, held_out, model, report }
    })
}

fn mase_of(report: &BacktestReport, strategy: Strategy) -> f64 {
    report.strategies[strategy.name()]["mase"].mean
}

#[test]
fn global_model_wins_the_backtest_and_beats_seasonal_naive() {
    let report = &fixture().report;
    let (gbdt, ets, naive) = (
        mase_of(report, Strategy::GlobalGbdt),
        mase_of(report, Strategy::Ets),
        mase_of(report, Strategy::SeasonalNaive),
    );
    eprintln!("backtest MASE: global_gbdt {gbdt:.3}, ets {ets:.3}, seasonal_naive {naive:.3}");
    eprintln!("{}", report.why);
    assert_eq!(report.strategy, Strategy::GlobalGbdt);
    assert_eq!(report.overall["mase"], report.strategies["global_gbdt"]["mase"]);
    // Promotions are known ahead and only the global model sees them.
    assert!(gbdt < 0.8 * naive, "global {gbdt} vs seasonal naive {naive}");
    assert!(gbdt < ets, "global {gbdt} vs ets {ets}");
    assert!(ets < naive, "ets {ets} vs seasonal naive {naive}");
    assert!(
        report.why.starts_with(
            "global_gbdt had the lowest mean MASE over 3 rolling-origin windows of 28 daily periods"
        ),
        "{}",
        report.why
    );
    assert_eq!(report.origins.len(), 3);
    assert_eq!(report.origins[2], (START_DAY + (TRAIN_DAYS - 1 - HORIZON) as f64) * DAY);
    assert_eq!((report.scored, report.skipped), (3 * 32, 0));
    assert_eq!(report.per_series.len(), 32);
    assert_eq!(report.ets_forms.values().sum::<usize>(), 32);
    // Coverage is measured leaving one window out, so it is an honest estimate.
    assert!(!report.coverage_in_sample);
    let coverage_95 = report.overall["coverage_95"].mean;
    let coverage_80 = report.overall["coverage_80"].mean;
    eprintln!(
        "backtest coverage (leave one window out): 80% {coverage_80:.3}, 95% {coverage_95:.3}"
    );
    assert!((0.88..=0.99).contains(&coverage_95), "{coverage_95}");
    assert!((0.70..=0.90).contains(&coverage_80), "{coverage_80}");
}

#[test]
fn forecasts_cover_the_held_out_horizon() {
    let fixture = fixture();
    let future = covariates_of(&fixture.held_out);
    let rows = fixture.model.forecast(HORIZON, None, Some(&future)).unwrap();
    assert_eq!(rows.len(), fixture.revenue.n_series * HORIZON);
    let (mut inside_80, mut inside_95) = (0, 0);
    let (mut model_error, mut naive_error) = (0.0, 0.0);
    // M4's scaled interval score of the 95% intervals, each series' scale being its
    // in-sample seasonal-naive MAE over the training days.
    let mut interval_score = 0.0;
    for (idx, row) in rows.iter().enumerate() {
        let series = idx / HORIZON;
        let values = &fixture.revenue.table.values[series * fixture.revenue.n_days..];
        let scale = (7..TRAIN_DAYS).map(|t| (values[t] - values[t - 7]).abs()).sum::<f64>()
            / (TRAIN_DAYS - 7) as f64;
        let day = TRAIN_DAYS + row.step - 1;
        let actual_row = series * fixture.revenue.n_days + day;
        assert_eq!(*row.series, *fixture.revenue.table.series[actual_row]);
        assert_eq!(row.time, fixture.revenue.table.times[actual_row]);
        let actual = fixture.revenue.table.values[actual_row];
        assert!(
            row.lo95 <= row.lo80
                && row.lo80 <= row.forecast
                && row.forecast <= row.hi80
                && row.hi80 <= row.hi95
        );
        inside_80 += usize::from(row.lo80 <= actual && actual <= row.hi80);
        inside_95 += usize::from(row.lo95 <= actual && actual <= row.hi95);
        let miss = (row.lo95 - actual).max(0.0) + (actual - row.hi95).max(0.0);
        interval_score += (row.hi95 - row.lo95 + 40.0 * miss) / scale;
        let last_week = fixture.revenue.table.values
            [series * fixture.revenue.n_days + TRAIN_DAYS - 7 + (row.step - 1) % 7];
        model_error += (actual - row.forecast).abs() / actual;
        naive_error += (actual - last_week).abs() / actual;
    }
    let n = rows.len() as f64;
    let (coverage_80, coverage_95) = (inside_80 as f64 / n, inside_95 as f64 / n);
    eprintln!(
        "held-out coverage: 80% {coverage_80:.3}, 95% {coverage_95:.3}; mean relative error: model {:.3}, seasonal naive {:.3}",
        model_error / n,
        naive_error / n
    );
    assert!((0.85..=1.0).contains(&coverage_95), "{coverage_95}");
    assert!((0.65..=0.95).contains(&coverage_80), "{coverage_80}");
    assert!(model_error < 0.8 * naive_error);
    // The backtest's estimate of the same score (leaving one window out) is of the
    // held-out one's size.
    let held_out = interval_score / n;
    let backtested = fixture.report.overall["msis_95"].mean;
    eprintln!("MSIS 95%: held out {held_out:.3}, backtest {backtested:.3}");
    assert!(
        (0.5 * backtested..=2.0 * backtested).contains(&held_out),
        "{held_out} vs {backtested}"
    );
}

#[test]
fn intervals_widen_with_the_forecast_when_errors_are_in_percent() {
    let fixture = fixture();
    // The generator's noise is lognormal: errors in percent of the level, which the
    // backtest's interval scores see.
    let widths = fixture.model.interval_widths();
    eprintln!("{}", widths.describe());
    assert!(widths.level_power > 0.0, "{}", widths.describe());
    let future = covariates_of(&fixture.held_out);
    let rows = fixture.model.forecast(HORIZON, None, Some(&future)).unwrap();
    // Within each series, forecasts well above its mean (weekends, promotions) get
    // wider intervals than those below it, relative to the series' mean width.
    let (mut high, mut low) = (Vec::new(), Vec::new());
    for series in rows.chunks(HORIZON) {
        let mean = |f: fn(&ForecastRow) -> f64| series.iter().map(f).sum::<f64>() / HORIZON as f64;
        let mean_forecast = mean(|r| r.forecast);
        let mean_width = mean(|r| r.hi95 - r.lo95);
        for row in series {
            let width = (row.hi95 - row.lo95) / mean_width;
            if row.forecast > 1.2 * mean_forecast {
                high.push(width);
            } else if row.forecast < 0.9 * mean_forecast {
                low.push(width);
            }
        }
    }
    let average = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (high, low) = (average(&high), average(&low));
    eprintln!("relative 95% width: high forecasts {high:.3}, low forecasts {low:.3}");
    assert!(high > 1.15 * low, "high {high} vs low {low}");
}

#[test]
fn future_covariates_are_required_when_the_model_uses_them() {
    let fixture = fixture();
    assert_eq!(fixture.model.required_future_covariates(), ["promo", "price"]);
    let error = fixture.model.forecast(HORIZON, None, None).unwrap_err();
    assert_eq!(
        error.to_string(),
        "the model uses the future-known covariates [\"promo\", \"price\"]: give their values for every series and forecast period"
    );
    let short = rows_where(&fixture.revenue, |day| (TRAIN_DAYS..TRAIN_DAYS + 10).contains(&day));
    let error = fixture.model.forecast(14, None, Some(&covariates_of(&short))).unwrap_err();
    assert_eq!(
        error.to_string(),
        "future covariate \"promo\" is missing for series \"store=0|line=0\" at 2024-01-14 (step 11 of 14)"
    );
    let error = fixture.model.forecast(HORIZON + 1, None, None).unwrap_err();
    assert!(matches!(error, MlError::InvalidParameter { .. }), "{error}");
    // Rows beyond the horizon are not read.
    let mut changed = covariates_of(&fixture.held_out);
    for (idx, value) in changed.covariates[0].values.iter_mut().enumerate() {
        if idx % HORIZON >= 14 {
            *value = 1.0 - *value;
        }
    }
    let future = covariates_of(&fixture.held_out);
    assert_eq!(
        fixture.model.forecast(14, None, Some(&future)).unwrap(),
        fixture.model.forecast(14, None, Some(&changed)).unwrap()
    );
}

#[test]
fn a_saved_model_forecasts_identically() {
    let fixture = fixture();
    let future = covariates_of(&fixture.held_out);
    let expected = fixture.model.forecast(HORIZON, None, Some(&future)).unwrap();
    let json = serde_json::to_string(&fixture.model).unwrap();
    let from_json: ForecastModel = serde_json::from_str(&json).unwrap();
    assert_eq!(from_json, fixture.model);
    assert_eq!(from_json.forecast(HORIZON, None, Some(&future)).unwrap(), expected);
    let mut cbor = Vec::new();
    ciborium::into_writer(&fixture.model, &mut cbor).unwrap();
    let from_cbor: ForecastModel = ciborium::from_reader(cbor.as_slice()).unwrap();
    assert_eq!(from_cbor.forecast(HORIZON, None, Some(&future)).unwrap(), expected);
    // A model whose trees read a feature the spec does not write is refused on load.
    let corrupted = json.replacen("\"n_features\":", "\"n_features\":1000,\"_\":", 1);
    assert!(serde_json::from_str::<ForecastModel>(&corrupted).is_err());
}

#[test]
fn newer_history_moves_the_origin_without_refitting() {
    let fixture = fixture();
    let newer = rows_where(&fixture.revenue, |day| (TRAIN_DAYS..TRAIN_DAYS + 7).contains(&day));
    let future = covariates_of(&fixture.held_out);
    let rows = fixture.model.forecast(21, Some(&newer), Some(&future)).unwrap();
    let first = &rows[0];
    assert_eq!((first.step, first.time), (1, (START_DAY + (TRAIN_DAYS + 7) as f64) * DAY));
    // The same state as a model fitted on the longer history would start from:
    // the forecast after newer history differs from the one without it.
    let without = fixture.model.forecast(HORIZON, None, Some(&future)).unwrap();
    assert_ne!(rows[0].forecast, without[7].forecast);
    // The newer rows' promotions are those a week before the first forecasts
    // (the global model reads covariates a season back): other ones change them.
    let mut other_promos = newer.clone();
    for promo in &mut other_promos.covariates[0].values {
        *promo = 1.0 - *promo;
    }
    let moved = fixture.model.forecast(21, Some(&other_promos), Some(&future)).unwrap();
    let first_week = |rows: &[ForecastRow]| -> Vec<f64> {
        rows.iter().filter(|r| r.step <= 7).map(|r| r.forecast).collect()
    };
    assert_ne!(first_week(&moved), first_week(&rows));

    let error = fixture.model.forecast(7, Some(&fixture.train), Some(&future)).unwrap_err();
    assert_eq!(
        error.to_string(),
        "series \"store=0|line=0\": time 2021-01-04 at data row 1 is not after 2024-01-03, the last time the model knows"
    );
    let mut stranger = newer.clone();
    for key in &mut stranger.series {
        *key = "store=99|line=0".into();
    }
    stranger.series.truncate(1);
    stranger.times.truncate(1);
    stranger.values.truncate(1);
    for c in &mut stranger.covariates {
        c.values.truncate(1);
    }
    let error = fixture.model.forecast(7, Some(&stranger), Some(&future)).unwrap_err();
    assert_eq!(
        error.to_string(),
        "series \"store=99|line=0\" (data row 1) is not in the training data; refit to forecast a new series"
    );
}

#[test]
fn a_series_times_1000_gets_forecasts_times_1000() {
    let revenue = revenue(8, 500, 11, false);
    let mut table = revenue.table.clone();
    let first_series: Vec<usize> = (0..revenue.n_days).collect();
    for &row in &first_series {
        table.series.push("copy×1000".into());
        table.times.push(table.times[row]);
        table.values.push(table.values[row] * 1000.0);
        for c in &mut table.covariates {
            c.values.push(c.values[row]);
        }
    }
    let params = ForecastParams {
        strategies: vec![Strategy::GlobalGbdt],
        backtest_windows: Some(2),
        ..ForecastParams::new(14)
    };
    let (model, report) = forecast::fit(&table, &params).unwrap();
    assert_eq!(report.strategy, Strategy::GlobalGbdt);
    let future_rows = (0..14).map(|step| (START_DAY + (revenue.n_days + step) as f64) * DAY);
    let keys = model.series_keys().map(str::to_owned).collect::<Vec<_>>();
    let mut future = CovariateTable {
        covariates: vec![
            Covariate { name: "promo".into(), values: Vec::new() },
            Covariate { name: "price".into(), values: Vec::new() },
        ],
        ..CovariateTable::default()
    };
    for key in &keys {
        for (step, time) in future_rows.clone().enumerate() {
            future.series.push(key.as_str().into());
            future.times.push(time);
            future.covariates[0].values.push(if step % 5 == 0 { 1.0 } else { 0.0 });
            future.covariates[1].values.push(10.0);
        }
    }
    let rows = model.forecast(14, None, Some(&future)).unwrap();
    let of =
        |key: &str| rows.iter().filter(|r| r.series == key).cloned().collect::<Vec<ForecastRow>>();
    let (copy, original) = (of("copy×1000"), of(&table.series[0]));
    assert_eq!(copy.len(), 14);
    for (big, small) in copy.iter().zip(&original) {
        for (b, s) in [
            (big.forecast, small.forecast),
            (big.lo80, small.lo80),
            (big.hi80, small.hi80),
            (big.lo95, small.lo95),
            (big.hi95, small.hi95),
        ] {
            assert!(
                (b - 1000.0 * s).abs() <= 1e-9 * b.abs(),
                "step {}: {b} vs 1000 × {s}",
                big.step
            );
        }
    }
    let (big, small) = (&report.per_series["copy×1000"], &report.per_series[&*table.series[0]]);
    assert!((big["mase"] - small["mase"]).abs() < 1e-12, "{big:?} vs {small:?}");
    assert!((big["mae"] - 1000.0 * small["mae"]).abs() < 1e-9 * big["mae"], "{big:?} vs {small:?}");
}

/// A small panel with a past-only covariate for the leakage property, its
/// backtest, and the seconds between two periods: daily, or the same values
/// one hour apart (hourly series have their own features: lags of a week,
/// the mean of the same hour over the last seven days).
type LeakageFixture = (Revenue, ForecastParams, forecast::Backtest, f64);

fn leakage_fixture(hourly: bool) -> &'static LeakageFixture {
    static DAILY: OnceLock<LeakageFixture> = OnceLock::new();
    static HOURLY: OnceLock<LeakageFixture> = OnceLock::new();
    (if hourly { &HOURLY } else { &DAILY }).get_or_init(|| {
        let mut revenue = revenue(6, 400, 3, true);
        let period = if hourly { 3_600.0 } else { DAY };
        if hourly {
            for time in &mut revenue.table.times {
                *time = START_DAY * DAY + (*time - START_DAY * DAY) / DAY * period;
            }
        }
        let params = ForecastParams {
            backtest_windows: Some(3),
            past_only_covariates: vec!["footfall".into()],
            gbdt: vigie_ml::gbdt::GbdtParams { n_rounds: 40, ..forecast::default_gbdt_params() },
            ..ForecastParams::new(14)
        };
        let backtest = forecast::backtest(&revenue.table, &params).expect("the fixture backtests");
        assert_eq!(backtest.frequency, if hourly { Frequency::Hourly } else { Frequency::Daily });
        (revenue, params, backtest, period)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    /// Changing any target or past-only covariate after an origin, or a
    /// future-known covariate after the origin's horizon, leaves every
    /// forecast made at or before that origin unchanged, training included,
    /// for daily and hourly series.
    #[test]
    fn values_after_an_origin_do_not_change_its_forecasts(
        window in 0usize..3,
        seed in any::<u64>(),
        share in 0.05f64..1.0,
    ) {
        for hourly in [false, true] {
            let (revenue, params, base, period) = leakage_fixture(hourly);
            let origin = base.windows[window].origin;
            let horizon_end = origin + params.horizon as f64 * period;
            let mut table = revenue.table.clone();
            let mut rng = Rng::new(seed);
            let mut changed = 0;
            for row in 0..table.values.len() {
                if table.times[row] > origin && rng.next_f64() < share {
                    table.values[row] *= 0.2 + 3.0 * rng.next_f64();
                    table.covariates[2].values[row] = rng.normal();
                    changed += 1;
                }
                if table.times[row] > horizon_end && rng.next_f64() < share {
                    table.covariates[0].values[row] = 1.0 - table.covariates[0].values[row];
                    table.covariates[1].values[row] *= 2.0;
                }
            }
            prop_assert!(changed > 0, "the draw changed no value after the origin");
            let perturbed = forecast::backtest(&table, params).unwrap();
            for earlier in 0..=window {
                let (before, after) = (&base.windows[earlier], &perturbed.windows[earlier]);
                prop_assert_eq!(before.origin, after.origin);
                for (a, b) in before.series.iter().zip(&after.series) {
                    prop_assert_eq!(&a.series, &b.series);
                    prop_assert_eq!(
                        &a.forecasts, &b.forecasts,
                        "hourly {} window {} series {}", hourly, earlier, &a.series
                    );
                    prop_assert_eq!(a.scale, b.scale);
                }
            }
        }
    }
}

/// By default the strategies are fitted once, at the first origin, and read
/// the history up to the later ones; `backtest_refit` fits them at each.
/// Both agree on the first window and on everything that is not fitted.
#[test]
fn the_backtest_fits_at_the_first_origin_unless_asked_to_refit() {
    let (revenue, params, once, _) = leakage_fixture(false);
    let refit_params = ForecastParams { backtest_refit: true, ..params.clone() };
    let refit = forecast::backtest(&revenue.table, &refit_params).expect("backtests");
    assert_eq!(once.windows.len(), 3);
    assert_eq!(once.windows[0], refit.windows[0]);
    for window in 1..3 {
        let (a, b) = (&once.windows[window], &refit.windows[window]);
        assert_eq!(a.origin, b.origin);
        let mut refitted_differ = 0;
        for (x, y) in a.series.iter().zip(&b.series) {
            assert_eq!((&x.series, &x.actual, x.scale), (&y.series, &y.actual, y.scale));
            assert_eq!(x.forecasts["seasonal_naive"], y.forecasts["seasonal_naive"]);
            refitted_differ +=
                usize::from(x.forecasts["global_gbdt"] != y.forecasts["global_gbdt"]);
            // The once-fitted models still forecast from this window's origin.
            let earlier = &once.windows[window - 1].series.iter().find(|s| s.series == x.series);
            if let Some(earlier) = earlier {
                assert_ne!(earlier.forecasts["global_gbdt"], x.forecasts["global_gbdt"]);
                assert_ne!(earlier.forecasts["ets"], x.forecasts["ets"]);
            }
        }
        assert!(refitted_differ > 0, "window {window}: refitting changed no forecast");
    }
}

/// `n` timestamps per series for two series, from `time(i)`.
fn two_series(n: usize, time: impl Fn(usize) -> f64) -> SeriesTable {
    let mut table = SeriesTable::default();
    for key in ["a", "b"] {
        for i in 0..n {
            table.series.push(key.into());
            table.times.push(time(i));
            table.values.push(10.0 + (i % 4) as f64 + if key == "b" { 5.0 } else { 0.0 });
        }
    }
    table
}

fn month_start(i: usize) -> f64 {
    date(2015 + (i / 12) as i64, (i % 12) as i64 + 1, 1)
}

fn month_end(i: usize) -> f64 {
    month_start(i + 1) - DAY + 12.0 * 3600.0
}

#[test]
fn frequency_is_inferred_and_forecast_times_follow_the_calendar() {
    let hourly = two_series(100, |i| date(2024, 3, 30) + 3600.0 * i as f64);
    let daily = two_series(60, |i| date(2024, 2, 20) + DAY * i as f64);
    let weekly = two_series(120, |i| date(2022, 1, 2) + 7.0 * DAY * i as f64);
    let monthly = two_series(40, month_start);
    let month_ends = two_series(40, month_end);
    let quarterly = two_series(20, |i| month_start(3 * i));
    let cases = [
        (&hourly, Frequency::Hourly),
        (&daily, Frequency::Daily),
        (&weekly, Frequency::Weekly),
        (&monthly, Frequency::Monthly),
        (&month_ends, Frequency::Monthly),
        (&quarterly, Frequency::Quarterly),
    ];
    for (table, expected) in cases {
        assert_eq!(forecast::infer_frequency(table).unwrap(), expected);
    }
    let next_times = |table: &SeriesTable| -> Vec<f64> {
        let params =
            ForecastParams { strategies: vec![Strategy::SeasonalNaive], ..ForecastParams::new(3) };
        let (model, _) = forecast::fit(table, &params).unwrap();
        model.forecast(3, None, None).unwrap().iter().take(3).map(|r| r.time).collect()
    };
    // The 40th month from 2015-01 is 2018-04.
    assert_eq!(next_times(&monthly), [date(2018, 5, 1), date(2018, 6, 1), date(2018, 7, 1)]);
    let noon = 12.0 * 3600.0;
    assert_eq!(
        next_times(&month_ends),
        [date(2018, 5, 31) + noon, date(2018, 6, 30) + noon, date(2018, 7, 31) + noon]
    );
    assert_eq!(next_times(&quarterly), [date(2020, 1, 1), date(2020, 4, 1), date(2020, 7, 1)]);
    assert_eq!(next_times(&weekly)[0], date(2022, 1, 2) + 120.0 * 7.0 * DAY);
    assert_eq!(next_times(&hourly)[0], date(2024, 3, 30) + 100.0 * 3600.0);
    // Month ends through February of a leap year.
    let leap = two_series(38, |i| month_end(i + 12));
    let (model, _) = forecast::fit(
        &leap,
        &ForecastParams {
            strategies: vec![Strategy::SeasonalNaive],
            backtest_windows: Some(1),
            ..ForecastParams::new(12)
        },
    )
    .unwrap();
    let times: Vec<f64> = model.forecast(12, None, None).unwrap().iter().map(|r| r.time).collect();
    assert_eq!(times[11], date(2020, 2, 29) + noon);
    // A given frequency is used as is; a daily table read as hourly has gaps.
    let params = ForecastParams { frequency: Some(Frequency::Hourly), ..ForecastParams::new(3) };
    let error = forecast::fit(&daily, &params).unwrap_err();
    assert_eq!(
        error.to_string(),
        "series \"a\": gap after 2024-02-20T00:00:00Z (data row 1): the next time is 2024-02-21T00:00:00Z (data row 2), 23 hourly periods missing from 2024-02-20T01:00:00Z"
    );
    let irregular = two_series(10, |i| 1000.0 * (i * i) as f64);
    assert_eq!(
        forecast::infer_frequency(&irregular).unwrap_err().to_string(),
        "cannot infer the frequency: none of the 18 gaps between consecutive timestamps is an hour, a day, a week, a month or a quarter; give the frequency"
    );
    // Readings every 15 minutes are told how to make hours of them.
    let quarter_hours = two_series(10, |i| 900.0 * i as f64);
    let error = forecast::infer_frequency(&quarter_hours).unwrap_err().to_string();
    assert!(
        error.ends_with("18 are shorter than an hour, the shortest period forecast: group the rows into hours or days (--aggregate sum, mean, last, min, max or count, with --frequency H or D; `aggregate` in vigie.toml)"),
        "{error}"
    );
}

/// The message of fitting `table` with seasonal naive only.
fn fit_error(table: &SeriesTable, horizon: usize) -> String {
    let params = ForecastParams {
        strategies: vec![Strategy::SeasonalNaive],
        ..ForecastParams::new(horizon)
    };
    forecast::fit(table, &params).expect_err("the table is refused").to_string()
}

#[test]
fn bad_tables_get_errors_naming_the_series_and_row() {
    let daily = |n| two_series(n, |i| date(2024, 1, 1) + DAY * i as f64);
    let mut gap = daily(60);
    gap.times[80] = gap.times[79]; // series b's day 20 repeats day 19.
    assert_eq!(
        fit_error(&gap, 7),
        "series \"b\": duplicate time 2024-01-20 at data row 80 and data row 81 (rows of events \
         are grouped into one per period by an aggregate: `--aggregate sum`, or `aggregate` in \
         vigie.toml)"
    );
    let mut gap = daily(60);
    gap.times.remove(80);
    gap.series.remove(80);
    gap.values.remove(80);
    assert_eq!(
        fit_error(&gap, 7),
        "series \"b\": gap after 2024-01-20 (data row 80): the next time is 2024-01-22 (data row 81), 1 daily period missing from 2024-01-21"
    );
    // Days read as months: two rows of one month, not a repeated time.
    let params = ForecastParams {
        frequency: Some(Frequency::Monthly),
        strategies: vec![Strategy::SeasonalNaive],
        ..ForecastParams::new(3)
    };
    assert_eq!(
        forecast::fit(&daily(60), &params).unwrap_err().to_string(),
        "series \"a\": 2024-01-01 at data row 1 and 2024-01-02 at data row 2 fall in the same \
         monthly period (rows of events are grouped into one per period by an aggregate: \
         `--aggregate sum`, or `aggregate` in vigie.toml; or is the frequency right?)"
    );
    let mut nan = daily(60);
    nan.values[70] = f64::NAN;
    assert_eq!(fit_error(&nan, 7), "series \"b\": target is NaN at data row 71 (2024-01-11)");
    let mut short = daily(60);
    short.series.truncate(60 + 20);
    short.times.truncate(60 + 20);
    short.values.truncate(60 + 20);
    assert_eq!(
        fit_error(&short, 28),
        "series \"b\" has 20 daily periods (last at data row 80, 2024-01-20); it needs at least 28: two seasons (14 periods), and no fewer than the horizon (28)"
    );
    assert_eq!(fit_error(&daily(60), 0), "invalid parameter horizon: must be at least 1 period");
    // Horizons past the history, however large, are refused before any arithmetic on them.
    for horizon in [61, 1 << 32, usize::MAX] {
        assert_eq!(
            fit_error(&daily(60), horizon),
            format!(
                "invalid parameter horizon: {horizon} periods is longer than the whole history \
                 (60 daily periods from the earliest time to the latest)"
            )
        );
    }
    let params = ForecastParams { backtest_windows: Some(usize::MAX), ..ForecastParams::new(7) };
    assert_eq!(
        forecast::fit(&daily(60), &params).unwrap_err().to_string(),
        format!(
            "invalid parameter backtest_windows: {} is more than the history's 60 daily periods \
             (from the earliest time to the latest)",
            usize::MAX
        )
    );
    // 15 days are two seasons and a day: the backtest could score one step of the 7.
    assert_eq!(
        fit_error(&daily(15), 7),
        "the backtest needs 21 daily periods (two seasons of 7, then the horizon of 7 to \
         forecast and score); the table covers 15: use a shorter horizon"
    );
    let mut off_grid = daily(60);
    off_grid.times[5] += 3600.0;
    assert_eq!(
        fit_error(&off_grid, 7),
        "series \"a\": time 2024-01-06T01:00:00Z is not on the daily grid through 2024-01-06 at data row 6 (several rows per daily period? group them with --aggregate)"
    );
    let mut covariate = daily(60);
    covariate.covariates.push(Covariate { name: "promo".into(), values: vec![f64::NAN; 120] });
    assert_eq!(
        fit_error(&covariate, 7),
        "covariate \"promo\" has no value in any row of the history: nothing to learn from it \
         (leave it out of the covariates)"
    );
    let mut covariate = daily(60);
    covariate.covariates.push(Covariate { name: "promo".into(), values: vec![0.0; 119] });
    assert_eq!(fit_error(&covariate, 7), "covariate \"promo\" has 119 values for 120 rows");
    let params =
        ForecastParams { past_only_covariates: vec!["footfall".into()], ..ForecastParams::new(7) };
    assert_eq!(
        forecast::fit(&daily(60), &params).unwrap_err().to_string(),
        "invalid parameter past_only_covariates: \"footfall\" is not a covariate of the table; the covariates are []"
    );
    let params = ForecastParams { backtest_windows: Some(20), ..ForecastParams::new(7) };
    assert_eq!(
        forecast::fit(&daily(60), &params).unwrap_err().to_string(),
        "invalid parameter backtest_windows: 20 windows of 7 periods after two seasons of history need 154 daily periods; the table covers 60"
    );
    // Series a ends before series b has two seasons of history at the origin.
    let mut staggered = SeriesTable::default();
    for (key, days) in [("a", 0..30), ("b", 50..66)] {
        for day in days {
            staggered.series.push(key.into());
            staggered.times.push(date(2024, 1, 1) + DAY * day as f64);
            staggered.values.push(1.0);
        }
    }
    let params = ForecastParams { backtest_windows: Some(1), ..ForecastParams::new(7) };
    assert_eq!(
        forecast::fit(&staggered, &params).unwrap_err().to_string(),
        "no series has two seasons (14 daily periods) of history before the first backtest origin 2024-02-28; use fewer backtest windows or a shorter horizon"
    );
    let mut huge = daily(60);
    huge.values[3] = 1e200;
    assert_eq!(
        fit_error(&huge, 7),
        "series \"a\": target is 1e200 at data row 4 (2024-01-04), beyond ±1e100"
    );
    assert_eq!(fit_error(&SeriesTable::default(), 7), "the table has no rows");
}

/// Three years of weekly revenue (156 points) with a yearly cycle: the
/// season is 52 weeks, so ETS has few seasons to learn from and the global
/// model, pooling 30 series, does better than both baselines.
#[test]
fn weekly_series_with_a_yearly_season() {
    let mut rng = Rng::new(5);
    let mut table = SeriesTable::default();
    let mut promo = Vec::new();
    for s in 0..30 {
        let base = 10f64.powf(1.0 + 3.0 * rng.next_f64());
        let growth = (rng.next_f64() - 0.3) * 0.004;
        let amplitude = 0.1 + 0.3 * rng.next_f64();
        let phase = rng.next_f64() * std::f64::consts::TAU;
        for t in 0..156 {
            let on_promo = rng.next_f64() < 0.1;
            let yearly = 1.0 + amplitude * (std::f64::consts::TAU * t as f64 / 52.18 + phase).sin();
            let y = base
                * (1.0 + growth * t as f64)
                * yearly
                * if on_promo { 1.4 } else { 1.0 }
                * (0.06 * rng.normal()).exp();
            table.series.push(format!("s{s:02}").into());
            table.times.push(date(2021, 1, 3) + 7.0 * DAY * t as f64);
            table.values.push(y);
            promo.push(if on_promo { 1.0 } else { 0.0 });
        }
    }
    table.covariates = vec![Covariate { name: "promo".into(), values: promo }];
    let (model, report) = forecast::fit(&table, &ForecastParams::new(13)).unwrap();
    let (gbdt, ets, naive) = (
        mase_of(&report, Strategy::GlobalGbdt),
        mase_of(&report, Strategy::Ets),
        mase_of(&report, Strategy::SeasonalNaive),
    );
    eprintln!(
        "weekly backtest MASE: global_gbdt {gbdt:.3}, ets {ets:.3}, seasonal_naive {naive:.3}"
    );
    assert_eq!((report.strategy, report.frequency), (Strategy::GlobalGbdt, Frequency::Weekly));
    assert!(gbdt < 0.8 * naive && gbdt < ets, "{}", report.why);
    let coverage_95 = report.overall["coverage_95"].mean;
    assert!((0.88..=0.99).contains(&coverage_95), "{coverage_95}");
    assert_eq!(model.frequency(), Frequency::Weekly);
}

/// A frame in the shape of a file: text times, two series columns, a target
/// that is empty on the last two rows of each series (future periods), a promo.
fn revenue_frame(days: usize) -> Frame {
    let (mut stores, mut lines, mut times, mut values, mut promo) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (store, line) in [("7", "toys"), ("7", "food"), ("12", "toys")] {
        for day in 0..days {
            stores.push(store);
            lines.push(line);
            times.push(format_time((START_DAY + day as f64) * DAY));
            values.push(if day + 2 < days { 100.0 + (day % 7) as f64 } else { f64::NAN });
            promo.push((day % 2) as f64);
        }
    }
    let text =
        |values: Vec<&str>| ColumnData::Text(TextColumn::from_values(values.into_iter().map(Some)));
    Frame::new(vec![
        Column { name: "store".into(), data: text(stores) },
        Column { name: "line".into(), data: text(lines) },
        Column { name: "date".into(), data: text(times.iter().map(String::as_str).collect()) },
        Column { name: "revenue".into(), data: ColumnData::Numeric(values) },
        Column { name: "promo".into(), data: ColumnData::Numeric(promo) },
    ])
    .expect("frame")
}

fn roles() -> ColumnRoles {
    ColumnRoles {
        time: "date".into(),
        target: "revenue".into(),
        series: vec!["store".into(), "line".into()],
        covariates: vec!["promo".into()],
        group: None,
        non_negative: false,
        timezone: None,
    }
}

#[test]
fn rows_counted_per_period_may_have_a_text_target() {
    // Orders by id; the empty id on the 3rd is a future row (its promotion known ahead).
    let text = |values: &[&str]| {
        ColumnData::Text(TextColumn::from_values(
            values.iter().map(|v| (!v.is_empty()).then_some(*v)),
        ))
    };
    let frame = Frame::new(vec![
        Column {
            name: "at".into(),
            data: text(&[
                "2024-01-01T09:00:00Z",
                "2024-01-01T18:30:00Z",
                "2024-01-02T10:00:00Z",
                "2024-01-03T12:00:00Z",
            ]),
        },
        Column { name: "order".into(), data: text(&["A1", "A2", "A3", ""]) },
        Column { name: "promo".into(), data: ColumnData::Numeric(vec![1.0, 0.0, 0.0, 1.0]) },
    ])
    .expect("frame");
    let mut roles = ColumnRoles {
        time: "at".into(),
        target: "order".into(),
        series: Vec::new(),
        covariates: vec!["promo".into()],
        group: Some(PeriodGrouping::utc(Frequency::Daily, Aggregate::Count)),
        non_negative: false,
        timezone: None,
    };
    let tables = split_frame(&frame, &roles).expect("split");
    assert_eq!(tables.history.values, [2.0, 1.0]);
    assert_eq!(tables.history.covariates[0].values, [0.5, 0.0]);
    assert_eq!((tables.future.times.len(), tables.future.row_numbers.as_slice()), (1, &[4][..]));
    // Any other aggregate needs numbers, and says so.
    roles.group = Some(PeriodGrouping::utc(Frequency::Daily, Aggregate::Sum));
    let error = split_frame(&frame, &roles).unwrap_err().to_string();
    assert!(error.contains("the target column \"order\" holds text"), "{error}");
}

#[test]
fn rows_of_series_in_any_order_get_their_own_keys_and_times() {
    // Runs of one series, series that come back, a numeric series column and
    // times that repeat across series: each row keeps its own key and time.
    let text = |values: &[&str]| {
        ColumnData::Text(TextColumn::from_values(values.iter().map(|v| Some(*v))))
    };
    let days = ["2024-01-01", "2024-01-02", "2024-01-01", "2024-01-01", "2024-01-03", "2024-01-02"];
    let frame = |days: &[&str]| {
        Frame::new(vec![
            Column { name: "date".into(), data: text(days) },
            Column {
                name: "store".into(),
                data: ColumnData::Numeric(vec![7.0, 7.0, 12.0, 7.0, 7.0, 12.0]),
            },
            Column {
                name: "line".into(),
                data: text(&["toys", "toys", "toys", "food", "toys", "toys"]),
            },
            Column { name: "revenue".into(), data: ColumnData::Numeric(vec![1.0; 6]) },
            Column { name: "promo".into(), data: ColumnData::Numeric(vec![0.0; 6]) },
        ])
        .expect("frame")
    };
    let history = split_frame(&frame(&days), &roles()).expect("split").history;
    let (toys7, toys12, food7) = ("store=7|line=toys", "store=12|line=toys", "store=7|line=food");
    let keys: Vec<&str> = history.series.iter().map(|key| &**key).collect();
    assert_eq!(keys, [toys7, toys7, toys12, food7, toys7, toys12]);
    let day = |d: f64| (d + days_from_civil(2024, 1, 1) as f64) * DAY;
    assert_eq!(history.times, [day(0.0), day(1.0), day(0.0), day(0.0), day(2.0), day(1.0)]);
    // A time that does not parse is named at its first row, wherever it repeats.
    let mut bad = days;
    (bad[2], bad[5]) = ("2024-02-30", "2024-02-30");
    let error = split_frame(&frame(&bad), &roles()).unwrap_err().to_string();
    assert!(error.contains("\"date\" at data row 3: \"2024-02-30\""), "{error}");
}

#[test]
fn frames_split_into_history_and_future_rows_that_keep_their_row_numbers() {
    let tables = split_frame(&revenue_frame(10), &roles()).unwrap();
    assert_eq!(tables.history.series.len(), 3 * 8);
    assert_eq!(tables.future.series.len(), 3 * 2);
    assert_eq!(tables.future.row_numbers, [9, 10, 19, 20, 29, 30]);
    assert_eq!(&*tables.history.series[0], "store=7|line=toys");
    assert_eq!(tables.keys["store=12|line=toys"], ["12", "toys"]);
    assert_eq!(tables.history.times[1], (START_DAY + 1.0) * DAY);
    assert_eq!(tables.future.covariates[0].values, [0.0, 1.0, 0.0, 1.0, 0.0, 1.0]);
    // One series column: the key is the value; none: one series.
    let mut single = roles();
    single.series = vec!["line".into()];
    let by_line = split_frame(&revenue_frame(10), &single).unwrap().history;
    assert!(by_line.series.contains(&"toys".into()));
    single.series.clear();
    assert_eq!(split_frame(&revenue_frame(10), &single).unwrap().keys.len(), 1);

    // Rows dropped from the history keep the numbers messages give them.
    let history = &tables.history;
    let gapped = history.filter(|row| history.row_numbers[row] != 15);
    let error = forecast::fit(&gapped, &ForecastParams::new(1)).unwrap_err().to_string();
    assert!(error.contains("data row 14") && error.contains("data row 16"), "{error}");
}

#[test]
fn frames_with_bad_cells_get_errors_naming_the_column_and_row() {
    let check = |frame: Frame, roles: &ColumnRoles, expected: &[&str]| {
        let error = split_frame(&frame, roles).unwrap_err().to_string();
        for part in expected {
            assert!(error.contains(part), "{part:?} not in: {error}");
        }
    };
    let with = |name: &str, data: ColumnData| {
        let frame = revenue_frame(4);
        let mut columns: Vec<Column> =
            frame.columns().iter().filter(|c| c.name != name).cloned().collect();
        columns.push(Column { name: name.into(), data });
        Frame::new(columns).unwrap()
    };
    let mut dates: Vec<Option<&str>> = vec![Some("2021-01-04"); 12];
    dates[5] = Some("2021-02-30");
    check(
        with("date", ColumnData::Text(TextColumn::from_values(dates.clone()))),
        &roles(),
        &["\"date\"", "data row 6", "day out of range"],
    );
    dates[5] = None;
    check(
        with("date", ColumnData::Text(TextColumn::from_values(dates))),
        &roles(),
        &["time column \"date\" is empty at data row 6"],
    );
    check(
        with("revenue", ColumnData::Text(TextColumn::from_values(vec![Some("lots"); 12]))),
        &roles(),
        &["target column \"revenue\" holds text", "\"lots\""],
    );
    let mut missing = roles();
    missing.series.push("region".into());
    check(revenue_frame(4), &missing, &["no series column \"region\"", "store, line, date"]);
    let mut twice = roles();
    twice.covariates.push("store".into());
    check(revenue_frame(4), &twice, &["\"store\" is given two roles"]);
    let mut keys: Vec<Option<&str>> = vec![Some("7"); 12];
    keys[2] = None;
    check(
        with("store", ColumnData::Text(TextColumn::from_values(keys))),
        &roles(),
        &["series column \"store\" is empty at data row 3"],
    );
}

#[test]
fn a_forecaster_round_trips_through_the_model_file() {
    let fixture = fixture();
    let future = covariates_of(&fixture.held_out);
    let expected = fixture.model.forecast(HORIZON, None, Some(&future)).unwrap();
    let keys =
        fixture.model.series_keys().map(|key| (key.to_owned(), vec![key.to_owned()])).collect();
    let card = ForecastCard {
        name: "revenue".into(),
        version: 0,
        columns: ColumnRoles {
            time: "date".into(),
            target: "revenue".into(),
            series: vec!["series".into()],
            covariates: vec!["promo".into(), "price".into()],
            group: None,
            non_negative: false,
            timezone: None,
        },
        past_only_covariates: Vec::new(),
        backtest_windows: 3,
        data: DataFingerprint {
            sha256: "0".repeat(64),
            rows: fixture.train.series.len(),
            columns: 5,
            source: "test".into(),
        },
        seed: 0,
        train_seconds: 1.0,
        trained_at: "2026-01-01T00:00:00Z".into(),
        vigie_version: "test".into(),
    };
    let saved = SavedModel::from(Forecaster { card, keys, model: fixture.model.clone() });
    let bytes = format::encode(&saved).unwrap();
    let loaded = format::decode(&bytes).unwrap();
    assert_eq!(loaded, saved);
    assert_eq!((loaded.task(), loaded.algorithm()), ("forecast", "global_gbdt"));
    assert!(loaded.metrics().contains_key("mase"));
    let error = loaded.clone().into_tabular().unwrap_err().to_string();
    assert!(error.contains("is a forecast model: use `vigie forecast"), "{error}");
    let forecaster = loaded.into_forecast().unwrap();
    assert_eq!(forecaster.model.forecast(HORIZON, None, Some(&future)).unwrap(), expected);

    // A series without column values is refused on load.
    let SavedModel::Forecast(mut broken) = saved else { unreachable!() };
    broken.keys.pop_first();
    let bytes = format::encode(&SavedModel::Forecast(broken)).unwrap();
    let error = format::decode(&bytes).unwrap_err().to_string();
    assert!(error.contains("has no column values"), "{error}");
}

/// Times and dates written without an offset are read on the clock of the
/// roles' zone: an hour the clocks skip is absent (and an error if written),
/// a repeated one is read in row order, and a date is its local midnight.
#[test]
fn times_without_an_offset_are_read_on_the_clock_of_the_zone() {
    let frame = |times: &[&str]| {
        Frame::new(vec![
            Column {
                name: "at".into(),
                data: ColumnData::Text(TextColumn::from_values(times.iter().map(|t| Some(*t)))),
            },
            Column { name: "load".into(), data: ColumnData::Numeric(vec![1.0; times.len()]) },
        ])
        .expect("frame")
    };
    let mut roles = ColumnRoles {
        time: "at".into(),
        target: "load".into(),
        series: Vec::new(),
        covariates: Vec::new(),
        group: None,
        non_negative: false,
        timezone: Some(vigie_core::zone::parse_time_zone("America/New_York").unwrap()),
    };
    let hour = 3_600.0;
    // Meter readings on New York's clock around both changes of 2024.
    let spring =
        ["2024-03-10 00:00", "2024-03-10 01:00", "2024-03-10T03:00:00", "2024-03-10 04:00"];
    let read = split_frame(&frame(&spring), &roles).expect("spring").history.times;
    let midnight_est = date(2024, 3, 10) + 5.0 * hour;
    assert_eq!(read, [0.0, 1.0, 2.0, 3.0].map(|h| midnight_est + h * hour));
    let autumn = ["2024-11-03 00:00", "2024-11-03 01:00", "2024-11-03 01:00", "2024-11-03 02:00"];
    let read = split_frame(&frame(&autumn), &roles).expect("autumn").history.times;
    let midnight_edt = date(2024, 11, 3) + 4.0 * hour;
    assert_eq!(read, [0.0, 1.0, 2.0, 3.0].map(|h| midnight_edt + h * hour));
    // An offset is an instant whatever the zone.
    let read = split_frame(&frame(&["2024-11-03T01:00:00-05:00"]), &roles).unwrap().history.times;
    assert_eq!(read, [midnight_edt + 2.0 * hour]);
    // A time the clocks skip names its row.
    let error = split_frame(&frame(&["2024-03-10 01:00", "2024-03-10 02:30"]), &roles)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("data row 2")
            && error.contains("2024-03-10T02:30:00 does not exist in America/New_York"),
        "{error}"
    );
    // Training names times on the zone's clock too.
    let gap =
        split_frame(&frame(&["2024-03-10 00:00", "2024-03-10 01:00", "2024-03-10 05:00"]), &roles)
            .expect("a gap splits");
    let params = ForecastParams {
        frequency: Some(Frequency::Hourly),
        timezone: roles.timezone,
        ..ForecastParams::new(1)
    };
    let error = forecast::fit(&gap.history, &params).unwrap_err().to_string();
    assert!(
        error.contains("gap after 2024-03-10T01:00:00-05:00 (data row 2): the next time is 2024-03-10T05:00:00-04:00"),
        "{error}"
    );
    // A date is its local midnight, so grouping into the zone's days keeps it on its day.
    roles.group = Some(PeriodGrouping {
        frequency: Frequency::Daily,
        target: Aggregate::Sum,
        timezone: roles.timezone,
    });
    let tables = split_frame(&frame(&["2024-03-05", "2024-03-05 23:30", "2024-03-06"]), &roles)
        .expect("dates");
    assert_eq!(tables.history.times, [date(2024, 3, 5), date(2024, 3, 6)]);
    assert_eq!(tables.history.values, [2.0, 1.0]);
    // Events grouped into hours may share a time: in the repeated hour, two
    // events of the first pass at 01:20 are both the earlier 1 a.m.; the
    // clock going back (01:10 after 01:50) starts the later one.
    roles.group = Some(PeriodGrouping {
        frequency: Frequency::Hourly,
        target: Aggregate::Sum,
        timezone: roles.timezone,
    });
    let events = [
        "2024-11-03 00:30",
        "2024-11-03 01:20",
        "2024-11-03 01:20",
        "2024-11-03 01:50",
        "2024-11-03 01:10",
        "2024-11-03 01:30",
        "2024-11-03 02:05",
    ];
    let tables = split_frame(&frame(&events), &roles).expect("events");
    assert_eq!(tables.history.times, [0.0, 1.0, 2.0, 3.0].map(|h| midnight_edt + h * hour));
    assert_eq!(tables.history.values, [1.0, 3.0, 2.0, 1.0]);
    // Without a zone, the same texts are UTC.
    roles.timezone = None;
    roles.group = None;
    let read = split_frame(&frame(&["2024-03-10 01:00"]), &roles).unwrap().history.times;
    assert_eq!(read, [date(2024, 3, 10) + hour]);
}

#[test]
fn the_global_model_forecasts_a_noiseless_pattern_at_every_step() {
    // A shop open from 09:00 to 16:59 (100 an hour), closed otherwise, 60 days. Every
    // feature ratio takes a few exact values; the recursion's first prediction is a hair
    // off 100, which once sent every later lag across hessboost's cuts (09:00 forecast
    // as 0 and the open hours drifting down to 75).
    let mut table = SeriesTable::default();
    for hour in 0..60 * 24 {
        table.series.push("shop".into());
        table.times.push(date(2024, 1, 1) + 3_600.0 * hour as f64);
        table.values.push(if (9..17).contains(&(hour % 24)) { 100.0 } else { 0.0 });
    }
    let params =
        ForecastParams { strategies: vec![Strategy::GlobalGbdt], ..ForecastParams::new(24) };
    let (model, _) = forecast::fit(&table, &params).expect("fitted");
    let rows = model.forecast(24, None, None).expect("forecast");
    for row in &rows {
        let hour = (row.step - 1) % 24;
        let expected = if (9..17).contains(&hour) { 100.0 } else { 0.0 };
        assert!((row.forecast - expected).abs() < 1.0, "hour {hour}: {}", row.forecast);
    }
}

#[test]
fn hourly_forecasts_keep_the_wall_clock_hours_across_daylight_saving() {
    // A New York shop open from 09:00 to 16:59 local time (100 an hour), its
    // history ending on Saturday 9 March 2024 at 23:00 local. Clocks go
    // forward on Sunday: 9 a.m. is then 13:00 UTC, where it was 14:00.
    let new_york = vigie_core::zone::parse_time_zone("America/New_York").ok();
    let hour = 3_600.0;
    let first = date(2024, 2, 1) + 5.0 * hour; // midnight EST
    let mut table = SeriesTable::default();
    for h in 0..(38 * 24) {
        let local_hour = h % 24;
        table.series.push("shop".into());
        table.times.push(first + hour * h as f64);
        table.values.push(if (9..17).contains(&local_hour) { 100.0 } else { 0.0 });
    }
    assert_eq!(*table.times.last().unwrap(), date(2024, 3, 10) + 4.0 * hour);
    let expected: Vec<String> = [10, 11]
        .into_iter()
        .flat_map(|day| {
            (13..21).map(move |utc| format_time(date(2024, 3, day) + utc as f64 * hour))
        })
        .collect();
    // Seasonal naive repeats the same local hour of the day before, ETS
    // takes that hour's seasonal state, and the global model's lags of
    // whole days read it too (with UTC hours each opened at 10 a.m.).
    for strategy in [Strategy::SeasonalNaive, Strategy::Ets, Strategy::GlobalGbdt] {
        let params = ForecastParams {
            strategies: vec![strategy],
            frequency: Some(Frequency::Hourly),
            timezone: new_york,
            ..ForecastParams::new(48)
        };
        let (model, _) = forecast::fit(&table, &params).expect("fitted");
        let rows = model.forecast(48, None, None).expect("forecast");
        let open: Vec<String> = rows
            .iter()
            .filter(|row| row.forecast > 50.0)
            .map(|row| format_time(row.time))
            .collect();
        assert_eq!(open, expected, "{strategy}");
    }
}

#[test]
fn one_outlier_widens_the_intervals_to_its_size_and_no_further() {
    // A weekly pattern of 10..70 and one day of 1,000,000 in the last backtest windows.
    let table = daily_table(&["shop"], 70, |_, day| {
        if day == 60 { 1_000_000.0 } else { 10.0 * (day % 7 + 1) as f64 }
    });
    let params =
        ForecastParams { strategies: vec![Strategy::SeasonalNaive], ..ForecastParams::new(7) };
    let (model, _) = forecast::fit(&table, &params).expect("fitted");
    let rows = model.forecast(7, None, None).expect("forecast");
    for row in &rows {
        assert_eq!(row.forecast, 10.0 * (row.step as f64));
        // The backtest missed by 1,000,000 once in 21 days: the 95% bound may
        // reach about that, not the thousands of times more the
        // outlier-inflated scale gave.
        assert!(row.hi95 < 3_000_000.0, "step {}: {}", row.step, row.hi95);
        assert!(row.hi80 < 1_000.0, "step {}: {}", row.step, row.hi80);
    }
}

#[test]
fn a_level_shift_in_one_series_widens_its_intervals_and_not_the_others() {
    // Ten stores sell a weekly pattern with noise of 3; one jumps by 200 twenty
    // days before the end, inside the backtest. Pooled as one, its misses set every
    // store's 95% interval at about ±230.
    let mut rng = Rng::new(5);
    let stores: Vec<String> = (0..10).map(|store| format!("s{store}")).collect();
    let table = daily_table(&stores, 140, |store, day| {
        let shift = if store == 9 && day >= 120 { 200.0 } else { 0.0 };
        10.0 * (day % 7 + 1) as f64 + 3.0 * rng.normal() + shift
    });
    let (model, _) = forecast::fit(&table, &ForecastParams::new(14)).unwrap();
    let rows = model.forecast(14, None, None).unwrap();
    for row in &rows {
        let half_95 = row.hi95 - row.forecast;
        if row.series == "s9" {
            assert!(half_95 > 50.0, "{row:?}");
        } else {
            assert!(half_95 < 15.0, "{row:?}");
        }
    }
}

#[test]
fn a_launch_after_a_stray_sale_does_not_make_the_global_model_run_away() {
    // Five SKUs sell a weekly ramp of 10 to 70 with a trend; the sixth sold 1 on day
    // 10, then nothing until it launched six days before the end. Its first sales are
    // tens of times its level, and learnt as they were, every other SKU's 14-day
    // forecast rose to hundreds or thousands.
    let mut rng = Rng::new(3);
    let skus: Vec<String> = (0..6).map(|sku| format!("sku{sku}")).collect();
    let table = daily_table(&skus, 126, |sku, day| {
        let ramp = 10.0 * (day % 7 + 1) as f64;
        match (sku, day) {
            (0, 10) => 1.0,
            (0, 0..120) => 0.0,
            (0, _) => ramp,
            _ => ramp * (1.0 + sku as f64 * 0.1) + day as f64 * 0.2 + (3.0 * rng.normal()).round(),
        }
    });
    let mut params = ForecastParams::new(14);
    params.strategies = vec![Strategy::GlobalGbdt];
    let (model, _) = forecast::fit(&table, &params).unwrap();
    for row in model.forecast(14, None, None).unwrap() {
        assert!((0.0..=200.0).contains(&row.forecast), "{row:?}");
    }
}

#[test]
fn a_series_that_was_all_zero_is_left_out_of_mase() {
    // Series "new" sold nothing until a spike of 5,000,000 in the backtest;
    // with no scale, its MASE would be its raw error and decide the choice.
    let steady = [1.0, 4.0, 7.0, 10.0, 13.0, 16.0, 19.0];
    let table = daily_table(&["new", "steady"], 70, |series, day| match (series, day) {
        (1, _) => steady[day % 7],
        (_, 65) => 5_000_000.0,
        _ => 0.0,
    });
    let (_, report) = forecast::fit(&table, &ForecastParams::new(7)).expect("fitted");
    assert_eq!(report.unscaled, 3, "{report:?}");
    assert!(!report.per_series["new"].contains_key("mase"), "{report:?}");
    assert!(report.overall["mase"].mean < 1.0, "{:?}", report.overall);
    for scores in report.strategies.values() {
        assert!(scores["mase"].mean < 1.0, "{scores:?}");
    }
}

#[test]
fn months_written_as_months_are_forecast_as_months() {
    let months: Vec<String> =
        (0..48).map(|i| format!("{}-{:02}", 2020 + i / 12, i % 12 + 1)).collect();
    let frame = |times: &[String]| {
        Frame::new(vec![
            Column {
                name: "month".into(),
                data: ColumnData::Text(TextColumn::from_values(
                    times.iter().map(|t| Some(t.as_str())),
                )),
            },
            Column {
                name: "sales".into(),
                data: ColumnData::Numeric(
                    (0..times.len()).map(|i| 100.0 + (i % 12) as f64 * 5.0).collect(),
                ),
            },
        ])
        .expect("frame")
    };
    let roles = ColumnRoles {
        time: "month".into(),
        target: "sales".into(),
        series: Vec::new(),
        covariates: Vec::new(),
        group: None,
        non_negative: false,
        timezone: None,
    };
    let params =
        ForecastParams { strategies: vec![Strategy::SeasonalNaive], ..ForecastParams::new(3) };
    let written = |model: &ForecastModel| -> Vec<String> {
        let rows = model.forecast(3, None, None).expect("forecast");
        rows.iter().map(|row| model.format_time(row.time)).collect()
    };
    // Times all written one way come back that way; one date among them
    // (`dated`, at position `at`) makes them all dates.
    let check = |times: &[String],
                 way: TimeWriting,
                 dates: [&str; 3],
                 back: [&str; 3],
                 at: usize,
                 dated: &str| {
        let tables = split_frame(&frame(times), &roles).expect("read");
        assert_eq!(tables.written, way);
        let (mut model, _) = forecast::fit(&tables.history, &params).expect("fitted");
        assert_eq!(written(&model), dates);
        model.write_times(tables.written);
        assert_eq!(written(&model), back);
        let mut mixed = times.to_vec();
        mixed[at] = dated.into();
        assert_eq!(split_frame(&frame(&mixed), &roles).expect("read").written, TimeWriting::Dates);
    };
    check(
        &months,
        TimeWriting::Months,
        ["2024-01-01", "2024-02-01", "2024-03-01"],
        ["2024-01", "2024-02", "2024-03"],
        5,
        "2020-06-01",
    );
    // Quarters, as pandas writes them (2020Q1) or with a dash, come back as 2026-Q1.
    let quarters: Vec<String> =
        (0..24).map(|i| format!("{}Q{}", 2020 + i / 4, i % 4 + 1)).collect();
    check(
        &quarters,
        TimeWriting::Quarters,
        ["2026-01-01", "2026-04-01", "2026-07-01"],
        ["2026-Q1", "2026-Q2", "2026-Q3"],
        3,
        "2020-10-01",
    );
}

#[test]
fn one_outlier_in_one_series_leaves_every_forecast_near_its_history() {
    // Two stores with a weekly pattern of 10..70; store A sold 1,000,000 on
    // day 100 of 140. Its target of 25,000 times its level once sent both
    // stores' recursive forecasts to 1e25.
    let mut table = SeriesTable::default();
    for store in ["A", "D"] {
        for day in 0..140 {
            table.series.push(store.into());
            table.times.push(date(2024, 1, 1) + 86_400.0 * day as f64);
            let wobble = ((day * 7 + store.len() * 3) % 5) as f64 - 2.0;
            let value: f64 = if store == "A" && day == 100 { 1_000_000.0 } else { 0.0 };
            table.values.push(value.max(10.0 * (day % 7 + 1) as f64 + wobble));
        }
    }
    let params =
        ForecastParams { strategies: vec![Strategy::GlobalGbdt], ..ForecastParams::new(14) };
    let (model, _) = forecast::fit(&table, &params).expect("fitted");
    for row in model.forecast(14, None, None).expect("forecast") {
        assert!(
            (0.0..=150.0).contains(&row.forecast),
            "{} step {}: {}",
            row.series,
            row.step,
            row.forecast
        );
    }
}

#[test]
fn a_product_that_started_selling_late_gets_intervals_of_its_own_noise() {
    // Sold nothing for 120 days, then a weekly pattern with ±3 of noise. The
    // 120 zeros once made the interval scale 0.02 and the 80% band ±0.09.
    let mut values = vec![0.0; 120];
    values
        .extend((120..140).map(|day| 10.0 * (day % 7 + 1) as f64 + ((day * 5) % 11) as f64 - 5.0));
    let table = SeriesTable {
        series: vec!["new".into(); values.len()],
        times: (0..values.len()).map(|day| date(2024, 1, 1) + 86_400.0 * day as f64).collect(),
        values,
        ..SeriesTable::default()
    };
    let params =
        ForecastParams { strategies: vec![Strategy::SeasonalNaive], ..ForecastParams::new(7) };
    let (model, _) = forecast::fit(&table, &params).expect("fitted");
    for row in model.forecast(7, None, None).expect("forecast") {
        assert!(row.hi80 - row.lo80 > 2.0, "step {}: {} to {}", row.step, row.lo80, row.hi80);
    }
}
