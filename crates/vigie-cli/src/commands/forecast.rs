//! `vigie train --task forecast`, `vigie train MODEL` of a forecast model of
//! vigie.toml, and `vigie forecast`: read a long table of series (a file, or
//! the rows of a source or feature view through `history`), backtest and
//! fit, register the model; forecast from its saved history or from newer
//! rows, with intervals.
//!
//! Glue only: the table's roles and rows are split by
//! `vigie_ml::forecast::split_frame`, the modelling is `vigie_ml::forecast`.

mod history;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::Context as _;
use serde_json::{Map, Value as Json, json};
use vigie_core::config::ForecastSpec;
use vigie_core::zone::parse_time_zone;
use vigie_core::{Column, ColumnData, ColumnKind, Frame, TextColumn};
use vigie_ml::SavedModel;
use vigie_ml::forecast::{
    self, Aggregate, BacktestReport, ColumnRoles, ForecastCard, ForecastParams, ForecastRow,
    Forecaster, Frequency, NewerRows, PartialPeriod, PeriodGrouping, Strategy, format_period_time,
    split_frame,
};
use vigie_ml::model::DataFingerprint;
use vigie_registry::{ModelRef, Registry, RunBatch};

use super::models::metrics_json;
use super::{Project, UsageError, header, is_csv, now_rfc3339, read_table};
use crate::cli::{
    DEFAULT_CLASS_WEIGHT, DEFAULT_CV, DEFAULT_FOLDS, DEFAULT_THRESHOLD_GOAL, DEFAULT_TRIALS,
    ForecastArgs, Format, TableFormat, TrainArgs,
};
use crate::output;
use crate::output::outln;
use crate::progress::Bars;

/// The backtest of every strategy, the chosen one marked, for people.
pub fn backtest_table(report: &BacktestReport) -> comfy_table::Table {
    let metrics = ["mase", "smape", "mae", "rmse"];
    let mut header = vec!["strategy"];
    header.extend(metrics);
    header.extend(["coverage 80%", "coverage 95%", "msis 95%"]);
    let mut table = output::table(&header);
    for (name, scores) in &report.strategies {
        let chosen = name == report.strategy.name();
        let mut row = vec![if chosen { format!("{name} ←") } else { name.clone() }];
        for metric in metrics {
            row.push(scores.get(metric).map_or("-".to_owned(), |m| output::metric(m.mean)));
        }
        // Only the chosen strategy's intervals are calibrated and scored.
        for interval in ["coverage_80", "coverage_95", "msis_95"] {
            let value = if chosen { report.overall.get(interval).map(|m| m.mean) } else { None };
            row.push(value.map_or("-".to_owned(), output::metric));
        }
        table.add_row(row);
    }
    table
}

/// The chosen strategy's backtest scores of each series, hardest first
/// (highest MASE): `[{"series": KEY, "columns": {COLUMN: VALUE}, "metrics":
/// {METRIC: VALUE}}]`, the per-series report of `--format json`.
pub fn per_series_json(forecaster: &Forecaster) -> Json {
    let report = forecaster.model.report();
    let columns = &forecaster.card.columns.series;
    Json::Array(
        hardest_first(&report.per_series)
            .into_iter()
            .map(|(key, metrics)| {
                let values = forecaster.keys.get(key).map(Vec::as_slice).unwrap_or_default();
                let named: Map<String, Json> = columns
                    .iter()
                    .zip(values)
                    .map(|(column, value)| (column.clone(), Json::from(value.as_str())))
                    .collect();
                json!({"series": key, "columns": named, "metrics": metrics})
            })
            .collect(),
    )
}

/// The warning about a last period that looks cut short.
fn partial_sentence(partial: &PartialPeriod, frequency: Frequency) -> String {
    format!(
        "Warning: the last {frequency} period, {}, may be partial: its latest row is {:.0}% of \
         the way through it, earlier than in each of the {} periods before (at least {:.0}%). \
         If the data stops inside it, its total is short and forecasts start low: train on \
         rows up to a period's end",
        format_period_time(partial.start, frequency),
        100.0 * partial.elapsed,
        partial.compared,
        100.0 * partial.usual
    )
}

/// How many series the backtest scored in no window: too short before its first origin.
fn not_backtested(forecaster: &Forecaster) -> usize {
    forecaster.keys.len().saturating_sub(forecaster.model.report().per_series.len())
}

/// The series of the backtest by MASE, highest first (ties by key); series
/// without one (all 0 before every origin) last.
fn hardest_first(
    per_series: &BTreeMap<String, BTreeMap<String, f64>>,
) -> Vec<(&String, &BTreeMap<String, f64>)> {
    let mase = |metrics: &BTreeMap<String, f64>| {
        metrics.get("mase").copied().filter(|m| !m.is_nan()).unwrap_or(f64::NEG_INFINITY)
    };
    let mut series: Vec<_> = per_series.iter().collect();
    series.sort_by(|a, b| mase(b.1).total_cmp(&mase(a.1)).then_with(|| a.0.cmp(b.0)));
    series
}

/// The text summaries' line naming the series the backtest found hardest,
/// when there are several.
pub fn hardest_series_line(report: &BacktestReport) -> Option<String> {
    if report.per_series.len() < 2 {
        return None;
    }
    let shown: Vec<String> = hardest_first(&report.per_series)
        .into_iter()
        .filter_map(|(key, metrics)| Some(format!("{key} {:.3}", metrics.get("mase")?)))
        .take(3)
        .collect();
    if shown.is_empty() {
        return None;
    }
    Some(format!(
        "Hardest series in the backtest (MASE): {}; every series' scores: --format json (\"per_series\")",
        shown.join(", ")
    ))
}

/// The column types to read a forecasting table with: text keys and times
/// (so `2024-03` or `007` stay as written), numeric target (as typed in the
/// file when its rows are counted: an order id counts as well as a number)
/// and covariates. Only columns present in the file are typed; the caller
/// reports the others.
fn column_types(path: &Path, roles: &ColumnRoles) -> anyhow::Result<HashMap<String, ColumnKind>> {
    let present = header(path)?;
    let mut types = HashMap::new();
    let mut set = |name: &str, kind: ColumnKind| {
        if present.iter().any(|p| p == name) {
            types.insert(name.to_owned(), kind);
        }
    };
    // Parquet times keep their file type (dates and timestamps read as seconds).
    if is_csv(path) {
        set(&roles.time, ColumnKind::Text);
    }
    for name in &roles.series {
        set(name, ColumnKind::Text);
    }
    if !roles.group.is_some_and(|g| g.target == Aggregate::Count) {
        set(&roles.target, ColumnKind::Numeric);
    }
    // Covariates are numbers, or flags written true/false (1 and 0): a
    // column whose first rows hold anything but numbers is read as text,
    // and each cell as a flag or a number (naming the row of one that is
    // neither).
    let texts = if is_csv(path) && !roles.covariates.is_empty() {
        vigie_connectors::files::non_numeric_columns(path, 1_000)?
    } else {
        Vec::new()
    };
    for name in &roles.covariates {
        set(name, if texts.contains(name) { ColumnKind::Text } else { ColumnKind::Numeric });
    }
    Ok(types)
}

/// `error` in the context `what FILE`, saying where a data row of a CSV file is when the error names one.
fn in_file(error: impl Into<anyhow::Error>, what: &str, path: &Path) -> anyhow::Error {
    let error = error.into();
    let hint = if is_csv(path) && format!("{error:#}").contains("data row ") {
        " (data row N is on line N+1)"
    } else {
        ""
    };
    error.context(format!("{what} {}{hint}", path.display()))
}

fn refuse_tabular_flags(args: &TrainArgs) -> anyhow::Result<()> {
    let given: Vec<&str> = [
        ("--positive", args.positive.is_some()),
        ("--ignore", !args.ignore.is_empty()),
        ("--algorithm", args.algorithm != "auto"),
        ("--search", args.search != "none"),
        ("--space", args.space.is_some()),
        ("--impute", args.impute.is_some()),
        ("--scale", args.scale.is_some()),
        ("--encode", args.encode.is_some()),
        ("--column-type", !args.column_types.is_empty()),
        ("--missing-indicator", args.missing_indicator.is_some()),
        ("--min-frequency", args.min_frequency.is_some()),
        // Flags with a default count as given when they differ from it.
        ("--cv", args.cv != DEFAULT_CV),
        ("--folds", args.folds != DEFAULT_FOLDS),
        ("--trials", args.trials != DEFAULT_TRIALS),
        ("--time-budget", args.time_budget.is_some()),
        ("--threshold-goal", args.threshold_goal != DEFAULT_THRESHOLD_GOAL),
        ("--class-weight", args.class_weight != DEFAULT_CLASS_WEIGHT),
    ]
    .into_iter()
    .filter_map(|(flag, set)| set.then_some(flag))
    .collect();
    if given.is_empty() {
        Ok(())
    } else {
        Err(UsageError(format!(
            "{}: not for --task forecast (see `vigie train --help`)",
            given.join(", ")
        ))
        .into())
    }
}

/// What a forecast training is asked for, from the flags of `vigie train --task forecast`
/// or from a model of vigie.toml: both are checked and trained by the same code.
struct Request {
    time: String,
    target: String,
    series: Vec<String>,
    covariates: Vec<String>,
    future_covariates: Vec<String>,
    horizon: Option<usize>,
    frequency: Option<String>,
    backtest_windows: Option<usize>,
    backtest_refit: bool,
    /// `--aggregate`: how each series' rows of one period are grouped.
    aggregate: Option<String>,
    /// `--timezone`: whose local periods they are grouped into (default UTC).
    timezone: Option<String>,
    /// `--non-negative`: a negative target is an error.
    non_negative: bool,
    /// `--strategies`: the candidates (empty: all).
    strategies: Vec<String>,
    /// `--train-window`: the global model's training periods per series, at most, or `all`.
    train_window: Option<String>,
    /// `--param KEY=VALUE` over the global model's boosting defaults.
    gbdt_params: Vec<String>,
    seed: u64,
}

/// Where the history of a training comes from, for messages and the run.
enum Origin<'a> {
    /// `--data FILE`.
    File(&'a Path),
    /// A source or feature view of the project, as `StoreHistory::read` brought it.
    Store(&'a history::StoreHistory),
}

impl Origin<'_> {
    /// The history's description for the model card and the run.
    fn describe(&self) -> String {
        match self {
            Origin::File(path) => path.display().to_string(),
            Origin::Store(store) => store.description.clone(),
        }
    }

    /// `error` in the context of training on this history.
    fn context(&self, error: impl Into<anyhow::Error>) -> anyhow::Error {
        match self {
            Origin::File(path) => in_file(error, "cannot train on", path),
            Origin::Store(store) => error.into().context(format!(
                "cannot train on {} (data row N is its Nth row, {})",
                store.description, store.order
            )),
        }
    }
}

impl Request {
    /// The checked column roles and parameters.
    fn settings(&self) -> anyhow::Result<(ColumnRoles, ForecastParams)> {
        let horizon = match self.horizon {
            Some(0) => return Err(UsageError("--horizon must be at least 1 period".into()).into()),
            Some(horizon) => horizon,
            None => {
                return Err(
                    UsageError("--task forecast needs --horizon H (periods ahead)".into()).into()
                );
            }
        };
        if self.backtest_windows == Some(0) {
            return Err(UsageError(
                "--backtest-windows must be at least 1: the backtest chooses the strategy and calibrates the intervals"
                    .into(),
            )
            .into());
        }
        let mut covariates = self.covariates.clone();
        covariates.extend(self.future_covariates.iter().cloned());
        let frequency = match self.frequency.as_deref() {
            None | Some("auto") => None,
            Some(code) => Some(
                code.parse::<Frequency>().map_err(|e| UsageError(format!("--frequency: {e}")))?,
            ),
        };
        let timezone = self
            .timezone
            .as_deref()
            .map(parse_time_zone)
            .transpose()
            .map_err(|e| UsageError(format!("--timezone: {e}")))?;
        let group = match (&self.aggregate, frequency) {
            (None, frequency) if timezone.is_some() && frequency != Some(Frequency::Hourly) => {
                return Err(UsageError(
                    "--timezone says whose local periods --aggregate groups rows into, or whose \
                     clock hourly periods are read on: give --aggregate, or --frequency H"
                        .into(),
                )
                .into());
            }
            (None, _) => None,
            (Some(how), Some(frequency)) => Some(PeriodGrouping {
                frequency,
                target: how.parse().map_err(|e| UsageError(format!("--aggregate: {e}")))?,
                timezone,
            }),
            (Some(_), None) => {
                return Err(UsageError(
                    "--aggregate groups rows into periods: give them with --frequency H, D, W, M or Q"
                        .into(),
                )
                .into());
            }
        };
        let roles = ColumnRoles {
            time: self.time.clone(),
            target: self.target.clone(),
            series: self.series.clone(),
            covariates,
            group,
            non_negative: self.non_negative,
            timezone,
        };
        roles.check().map_err(|e| UsageError(e.to_string()))?;
        let mut params = ForecastParams::new(horizon);
        params.frequency = frequency;
        params.timezone = timezone;
        params.backtest_windows = self.backtest_windows;
        params.backtest_refit = self.backtest_refit;
        params.train_window = match self.train_window.as_deref().map(str::trim) {
            None => None,
            Some(word) if word.eq_ignore_ascii_case("all") => Some(usize::MAX),
            Some(text) => match text.parse::<usize>() {
                Ok(periods) if periods > 0 => Some(periods),
                _ => {
                    return Err(UsageError(format!(
                        "--train-window {text:?}: expected a number of periods (at least 1) or all"
                    ))
                    .into());
                }
            },
        };
        if !self.strategies.is_empty() {
            params.strategies = self
                .strategies
                .iter()
                .map(|name| {
                    Strategy::ALL.into_iter().find(|s| s.name() == name.trim()).ok_or_else(|| {
                        UsageError(format!(
                            "--strategies: unknown strategy {name:?}, expected {}",
                            Strategy::ALL.map(Strategy::name).join(", ")
                        ))
                    })
                })
                .collect::<Result<_, _>>()?;
        }
        if !self.gbdt_params.is_empty() {
            let mut gbdt = match serde_json::to_value(&params.gbdt)? {
                serde_json::Value::Object(map) => map,
                other => anyhow::bail!("boosting parameters are not an object: {other}"),
            };
            // One at a time, so that an error names its key.
            for (key, value) in super::train::parse_params(&self.gbdt_params)? {
                gbdt.insert(key.clone(), value.clone());
                params.gbdt = serde_json::from_value(serde_json::Value::Object(gbdt.clone()))
                    .map_err(|e| {
                        UsageError(format!(
                            "--param {key}={value}: {e} (of the global model's boosting)"
                        ))
                    })?;
            }
        }
        params.past_only_covariates = self.covariates.clone();
        params.seed = self.seed;
        Ok((roles, params))
    }
}

/// `vigie train --task forecast --data FILE`.
pub fn train(project: &Project, args: TrainArgs) -> anyhow::Result<()> {
    refuse_tabular_flags(&args)?;
    let path =
        args.data.clone().ok_or_else(|| UsageError("--task forecast needs --data FILE".into()))?;
    let target = args.target.clone().ok_or_else(|| {
        UsageError("--task forecast needs --target COLUMN (the value to forecast)".into())
    })?;
    let time = args
        .time
        .clone()
        .ok_or_else(|| UsageError("--task forecast needs --time COLUMN".into()))?;
    let request = Request {
        time,
        target,
        series: args.series.clone(),
        covariates: args.covariates.clone(),
        future_covariates: args.future_covariates.clone(),
        horizon: args.horizon,
        frequency: args.frequency.clone(),
        backtest_windows: args.backtest_windows,
        backtest_refit: args.backtest_refit,
        aggregate: args.aggregate.clone(),
        timezone: args.timezone.clone(),
        non_negative: args.non_negative,
        strategies: args.strategies.clone(),
        train_window: args.train_window.clone(),
        gbdt_params: args.params.clone(),
        seed: args.seed,
    };
    let (roles, params) = request.settings()?;
    let name = match &args.name {
        Some(name) => name.clone(),
        None => path.file_stem().and_then(|s| s.to_str()).unwrap_or("forecast").to_owned(),
    };
    vigie_registry::validate_name(&name)?;
    let frame = read_table(&path, &column_types(&path, &roles)?)?;
    fit_and_register(project, &args, &name, &roles, &params, &frame, Origin::File(&path))
}

/// `vigie train MODEL` for a forecast model of vigie.toml: its source's or view's rows,
/// brought up to date, trained as `vigie train --task forecast` trains a file. The flags
/// `--horizon`, `--frequency` and `--backtest-windows` override vigie.toml's.
pub fn train_declared(
    project: &Project,
    args: TrainArgs,
    spec: ForecastSpec,
) -> anyhow::Result<()> {
    refuse_tabular_flags(&args)?;
    let model = args.from_store.clone().unwrap_or_default();
    let in_toml: Vec<&str> = [
        ("--label", args.label.is_some()),
        ("--time", args.time.is_some()),
        ("--target", args.target.is_some()),
        ("--series", !args.series.is_empty()),
        ("--covariates", !args.covariates.is_empty()),
        ("--future-covariates", !args.future_covariates.is_empty()),
    ]
    .into_iter()
    .filter_map(|(flag, set)| set.then_some(flag))
    .collect();
    if !in_toml.is_empty() {
        return Err(UsageError(format!(
            "{}: model {model:?} takes its columns from [models.{model}] of vigie.toml; change them there",
            in_toml.join(", ")
        ))
        .into());
    }
    if !["auto", "forecast"].contains(&args.task.as_str()) {
        return Err(UsageError(format!(
            "--task {}: model {model:?} of vigie.toml is a forecast model",
            args.task
        ))
        .into());
    }
    let name = args.name.clone().unwrap_or_else(|| model.clone());
    vigie_registry::validate_name(&name)?;
    let store = super::features::store(project)?;
    let mut history = history::plan(&store, &spec)?;
    let request = Request {
        time: history.time.clone(),
        target: spec.target.clone(),
        series: history.series.clone(),
        covariates: spec.covariates.clone(),
        future_covariates: spec.future_covariates.clone(),
        horizon: args.horizon.or(Some(spec.horizon)),
        frequency: args.frequency.clone().or(spec.frequency.clone()),
        backtest_windows: args.backtest_windows.or(spec.backtest_windows),
        backtest_refit: args.backtest_refit || spec.backtest_refit,
        aggregate: args.aggregate.clone().or(spec.aggregate.clone()),
        timezone: args.timezone.clone().or(spec.timezone.clone()),
        non_negative: args.non_negative || spec.non_negative,
        strategies: if args.strategies.is_empty() {
            spec.strategies.clone()
        } else {
            args.strategies.clone()
        },
        train_window: args.train_window.clone().or(spec.train_window.clone()),
        gbdt_params: args.params.clone(),
        seed: args.seed,
    };
    let (roles, params) = request.settings()?;
    let frame = history
        .read(&store, &roles)
        .map_err(|error| error.context(format!("vigie.toml [models.{model}]")))?;
    fit_and_register(project, &args, &name, &roles, &params, &frame, Origin::Store(&history))
}

/// Backtests and fits on `frame`, registers the model and prints the summary: the one
/// training of every forecast model.
fn fit_and_register(
    project: &Project,
    args: &TrainArgs,
    name: &str,
    roles: &ColumnRoles,
    params: &ForecastParams,
    frame: &Frame,
    origin: Origin<'_>,
) -> anyhow::Result<()> {
    let source = origin.describe();
    let columns = roles.columns();
    // The fingerprint (a SHA-256 of the columns read) is taken on a thread of its own
    // from the start: on 1,000 daily series it takes 0.04 s of one core, while the
    // table is split into series on the other (before, it competed with the fit).
    let (tables, mut registry, run, started, bars, fitted, data) =
        std::thread::scope(|scope| -> anyhow::Result<_> {
            let fingerprint = scope.spawn(|| DataFingerprint::of(frame, &columns, &source));
            let tables = split_frame(frame, roles).map_err(|e| origin.context(e))?;
            let mut registry = project.registry()?;
            let run = project.start_training_run(
                &mut registry,
                name,
                args.experiment.as_deref(),
                &source,
            )?;
            if let Origin::Store(store) = origin {
                registry.set_tags(&run.0, &store.lineage)?;
            }
            let started = std::time::Instant::now();
            let bars = Bars::new();
            let fitted = forecast::fit_with_progress(&tables.history, params, &bars);
            Ok((tables, registry, run, started, bars, fitted, fingerprint.join()))
        })?;
    let (run_id, user) = run;
    bars.finish();
    let Ok(data) = data else {
        let error = anyhow::anyhow!("hashing the training data failed");
        return Err(Project::fail_training_run(&mut registry, &run_id, error));
    };
    let (mut model, report) = match fitted {
        Ok(fitted) => fitted,
        Err(error) => {
            let error = origin.context(error);
            return Err(Project::fail_training_run(&mut registry, &run_id, error));
        }
    };
    model.write_times(tables.written);
    let card = ForecastCard {
        name: name.to_owned(),
        version: 0,
        columns: roles.clone(),
        past_only_covariates: params.past_only_covariates.clone(),
        // Neither the flag nor vigie.toml said: the frequency's default, as run.
        backtest_windows: params.backtest_windows.unwrap_or(report.origins.len()),
        data,
        seed: params.seed,
        train_seconds: started.elapsed().as_secs_f64(),
        trained_at: now_rfc3339(),
        vigie_version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    let keys = tables.keys.into_iter().filter(|(key, _)| model.last_time(key).is_some()).collect();
    let forecaster = Forecaster { card, keys, model };
    let (saved, version) =
        Project::register_run_model(&mut registry, &run_id, &user, |registry| {
            track(registry, &run_id, &forecaster, params)?;
            Ok(SavedModel::from(forecaster))
        })?;
    super::mlflow::mirror(project);
    let forecaster = saved.into_forecast()?;
    let card = &forecaster.card;
    let model = &forecaster.model;
    let unused = tables.future.series.len();
    let refreshed = match origin {
        Origin::File(_) => None,
        Origin::Store(store) => Some(&store.refreshed),
    };

    match args.format {
        Format::Json => output::json(&json!({
            "model": card.name,
            "version": card.version,
            "task": "forecast",
            "strategy": model.strategy().name(),
            "why": report.why,
            "horizon": model.horizon(),
            "frequency": model.frequency().code(),
            "backtest": metrics_json(&report.overall),
            "backtest_windows": card.backtest_windows,
            "gbdt": params.gbdt,
            "baselines": report.strategies.iter().map(|(name, m)| (name.clone(), Json::Object(metrics_json(m)))).collect::<Map<_, _>>(),
            "series": forecaster.keys.len(),
            "rows": tables.history.series.len(),
            "rows_without_target": unused,
            "aggregate": card.columns.group.map(|g| g.target.name()),
            "timezone": forecaster.timezone().map(|zone| zone.name()),
            "non_negative": card.columns.non_negative,
            "interval_level_power": model.interval_widths().level_power,
            "per_series": per_series_json(&forecaster),
            "series_not_backtested": not_backtested(&forecaster),
            "backtest_unscaled": report.unscaled,
            "partial_last_period": tables.partial.map(|p| json!({
                "start": format_period_time(p.start, model.frequency()),
                "elapsed": p.elapsed,
                "least_before": p.usual,
                "periods_compared": p.compared,
            })),
            "train_window": params.train_window_for(model.frequency()),
            "future_covariates": model.required_future_covariates(),
            "history": refreshed.map(history::Refreshed::json),
            "train_seconds": card.train_seconds,
            "data_sha256": card.data.sha256,
            "run_id": run_id,
            "aliases": version.aliases,
            "path": registry.artifact_path(&version).display().to_string(),
        })),
        Format::Text => {
            if let Some(refreshed) = refreshed {
                outln!("{}", refreshed.sentence())?;
            }
            outln!(
                "Trained {} v{}: forecast of {} {} series, horizon {}, in {:.1}s",
                card.name,
                card.version,
                forecaster.keys.len(),
                model.frequency(),
                model.horizon(),
                card.train_seconds
            )?;
            match (card.columns.group, model.hourly_zone()) {
                (Some(group), _) => outln!(
                    "Rows grouped into {} {} periods ({}) of the series (the target's {}, the covariates' mean)",
                    tables.history.series.len(),
                    group.frequency,
                    group.zone_label(),
                    group.target
                )?,
                (None, Some(zone)) => {
                    outln!("Hourly periods read on {}'s clock (UTC hours)", zone.name())?
                }
                (None, None) => {}
            }
            if unused > 0 {
                outln!("{unused} rows without a target were not used for training")?;
            }
            if let Some(partial) = tables.partial {
                outln!("{}", partial_sentence(&partial, model.frequency()))?;
            }
            outln!("{}", backtest_table(&report))?;
            outln!("{}", report.why)?;
            if model.strategy() != Strategy::GlobalGbdt && !card.columns.covariates.is_empty() {
                outln!(
                    "{} reads no covariates: this model does not use {}, and its forecasts do \
                     not need them",
                    model.strategy().name(),
                    card.columns.covariates.join(", ")
                )?;
            }
            if let Some(line) = hardest_series_line(&report) {
                outln!("{line}")?;
            }
            let short = not_backtested(&forecaster);
            if short > 0 {
                outln!(
                    "{short} of {} series had too little history before every backtest origin \
                     (two seasons) to be scored: they take the strategy and interval widths the \
                     others chose, in their own scale",
                    forecaster.keys.len()
                )?;
            }
            if report.unscaled > 0 {
                outln!(
                    "{} of {} backtested series-windows were all 0 before their origin: MASE and \
                     MSIS, which divide by the history's error, leave them out",
                    report.unscaled,
                    report.scored
                )?;
            }
            outln!("{}", model.interval_widths().describe())?;
            outln!("{}", output::registered(&version, &run_id))?;
            Ok(())
        }
    }
}

/// Records the run: parameters (the global model's boosting ones as
/// `gbdt.KEY`), the chosen strategy's backtest and every strategy's scores.
fn track(
    registry: &mut Registry,
    run_id: &str,
    forecaster: &Forecaster,
    forecast_params: &ForecastParams,
) -> anyhow::Result<()> {
    let card = &forecaster.card;
    let model = &forecaster.model;
    let report = model.report();
    let list = |values: &[String]| values.join(",");
    let mut params = vec![
        ("task".to_owned(), "forecast".to_owned()),
        ("strategy".to_owned(), model.strategy().name().to_owned()),
        ("horizon".to_owned(), model.horizon().to_string()),
        ("frequency".to_owned(), model.frequency().code().to_owned()),
        ("backtest_windows".to_owned(), card.backtest_windows.to_string()),
        ("time".to_owned(), card.columns.time.clone()),
        ("target".to_owned(), card.columns.target.clone()),
        ("series".to_owned(), list(&card.columns.series)),
        ("covariates".to_owned(), list(&card.columns.covariates)),
        ("past_only_covariates".to_owned(), list(&card.past_only_covariates)),
        ("seed".to_owned(), card.seed.to_string()),
        ("backtest_refit".to_owned(), forecast_params.backtest_refit.to_string()),
        (
            "train_window".to_owned(),
            forecast_params
                .train_window_for(model.frequency())
                .map_or_else(|| "all".to_owned(), |w| w.to_string()),
        ),
        (
            "strategies".to_owned(),
            forecast_params.strategies.iter().map(|s| s.name()).collect::<Vec<_>>().join(","),
        ),
        (
            "aggregate".to_owned(),
            card.columns.group.map_or_else(String::new, |g| g.target.to_string()),
        ),
        ("non_negative".to_owned(), card.columns.non_negative.to_string()),
        ("interval_level_power".to_owned(), model.interval_widths().level_power.to_string()),
        (
            "timezone".to_owned(),
            forecaster.timezone().map_or_else(String::new, |zone| zone.name().to_owned()),
        ),
    ];
    if let Json::Object(gbdt) = serde_json::to_value(&forecast_params.gbdt)? {
        params.extend(gbdt.iter().map(|(key, value)| (format!("gbdt.{key}"), value.to_string())));
    }
    let mut metrics = Vec::new();
    for (name, summary) in &report.overall {
        metrics.push((format!("backtest_{name}"), 0, summary.mean));
        metrics.push((format!("backtest_{name}_std"), 0, summary.std));
    }
    for (strategy, scores) in &report.strategies {
        for (name, summary) in scores {
            metrics.push((format!("{strategy}_{name}"), 0, summary.mean));
        }
    }
    let tags = [
        ("task".to_owned(), "forecast".to_owned()),
        ("model".to_owned(), card.name.clone()),
        ("why".to_owned(), report.why.clone()),
        ("series".to_owned(), forecaster.keys.len().to_string()),
        ("vigie_version".to_owned(), card.vigie_version.clone()),
    ];
    let data = Some(super::run_data(&card.data));
    let batch = RunBatch { params: &params, metrics: &metrics, tags: &tags, data };
    registry.log_batch(run_id, batch)?;
    Ok(())
}

/// The format `vigie forecast` writes: `--format`, else by `--out`'s extension. A file
/// named for another format is refused rather than written as CSV under that name.
fn out_format(out: Option<&Path>, format: Option<TableFormat>) -> anyhow::Result<TableFormat> {
    let extension =
        out.and_then(|path| path.extension()).and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let named = match extension.as_deref() {
        None => None,
        Some("csv" | "txt") => Some(TableFormat::Csv),
        Some("json") => Some(TableFormat::Json),
        Some(other) => {
            return Err(UsageError(format!(
                "--out {}: forecasts are written as CSV or JSON, not .{other}; name a .csv or \
                 .json file",
                out.map(Path::display).map(|p| p.to_string()).unwrap_or_default()
            ))
            .into());
        }
    };
    match (format, named) {
        (Some(given), Some(named)) if given != named => Err(UsageError(format!(
            "--format {} but --out names a .{} file",
            given.name(),
            named.name()
        ))
        .into()),
        (Some(given), _) => Ok(given),
        (None, named) => Ok(named.unwrap_or_default()),
    }
}

/// `vigie forecast`.
pub fn run(project: &Project, args: ForecastArgs) -> anyhow::Result<()> {
    let format = out_format(args.out.as_deref(), args.format)?;
    let reference: ModelRef = args.model.parse()?;
    let registry = project.registry()?;
    let info = registry.resolve(&reference)?;
    let forecaster = registry.load(&info)?.into_forecast()?;
    let roles = &forecaster.card.columns;
    let newer = match &args.data {
        None => NewerRows::default(),
        Some(path) => {
            let frame = read_table(path, &column_types(path, roles)?)?;
            forecaster.newer_rows(&frame).map_err(|e| in_file(e, "cannot read", path))?
        }
    };
    let rows = forecaster.forecast(args.horizon, &newer, None).map_err(|e| {
        let what = format!("cannot forecast {} v{} from", info.model, info.version);
        match &args.data {
            Some(path) => in_file(e, &what, path),
            None => anyhow::Error::new(e)
                .context(format!("cannot forecast {} v{}", info.model, info.version)),
        }
    })?;
    let out = forecast_frame(&forecaster, &rows)?;
    match (&args.out, format) {
        (Some(path), TableFormat::Csv) => vigie_connectors::files::write_csv(path, &out)?,
        (Some(path), TableFormat::Json) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            let mut writer = std::io::BufWriter::new(file);
            serde_json::to_writer_pretty(&mut writer, &records(&out))?;
            std::io::Write::flush(&mut writer)?;
        }
        (None, TableFormat::Csv) => {
            let mut stdout = std::io::stdout().lock();
            vigie_connectors::files::write_csv_to(&mut stdout, &out)?;
        }
        (None, TableFormat::Json) => output::json(&records(&out))?,
    }
    let skipped = (newer.skipped > 0)
        .then(|| format!("{} rows of --data the model already knew were skipped", newer.skipped));
    match (&args.out, skipped) {
        (Some(path), skipped) => eprintln!(
            "Wrote {} forecasts ({} series × {} periods) of {} v{} to {}{}",
            rows.len(),
            forecaster.keys.len(),
            args.horizon,
            info.model,
            info.version,
            path.display(),
            skipped.map(|s| format!("; {s}")).unwrap_or_default()
        ),
        // The forecasts went to stdout: the note goes beside them, on stderr.
        (None, Some(skipped)) => eprintln!("{skipped}"),
        (None, None) => {}
    }
    Ok(())
}

/// The forecasts as a table: series columns, time, forecast and intervals.
fn forecast_frame(forecaster: &Forecaster, rows: &[ForecastRow]) -> anyhow::Result<Frame> {
    let roles = &forecaster.card.columns;
    let mut columns = Vec::new();
    for (idx, name) in roles.series.iter().enumerate() {
        let values = rows.iter().map(|row| {
            forecaster.keys.get(&row.series).and_then(|values| values.get(idx)).map(String::as_str)
        });
        columns.push(Column {
            name: name.clone(),
            data: ColumnData::Text(TextColumn::from_values(values)),
        });
    }
    let times: Vec<String> =
        rows.iter().map(|row| forecaster.model.format_time(row.time)).collect();
    columns.push(Column {
        name: roles.time.clone(),
        data: ColumnData::Text(TextColumn::from_values(times.iter().map(|t| Some(t.as_str())))),
    });
    let numbers = |f: fn(&ForecastRow) -> f64| ColumnData::Numeric(rows.iter().map(f).collect());
    for (name, data) in [
        ("forecast", numbers(|r| r.forecast)),
        ("lo80", numbers(|r| r.lo80)),
        ("hi80", numbers(|r| r.hi80)),
        ("lo95", numbers(|r| r.lo95)),
        ("hi95", numbers(|r| r.hi95)),
    ] {
        columns.push(Column { name: name.to_owned(), data });
    }
    Frame::new(columns).map_err(|e| {
        UsageError(format!("forecast columns clash: {e}; rename the series or time column")).into()
    })
}

/// A table as JSON records, one object per row.
fn records(frame: &Frame) -> Json {
    let rows = (0..frame.n_rows())
        .map(|row| {
            let record: Map<String, Json> = frame
                .columns()
                .iter()
                .map(|column| {
                    let value = match &column.data {
                        ColumnData::Text(text) => text.get(row).map_or(Json::Null, Json::from),
                        ColumnData::Numeric(values) | ColumnData::Boolean(values) => values
                            .get(row)
                            .copied()
                            .filter(|v| v.is_finite())
                            .map_or(Json::Null, Json::from),
                    };
                    (column.name.clone(), value)
                })
                .collect();
            Json::Object(record)
        })
        .collect();
    Json::Array(rows)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::hardest_first;

    #[test]
    fn the_hardest_series_come_first_and_those_without_mase_last() {
        let scores = |mase: Option<f64>| {
            let mut metrics = BTreeMap::from([("mae".to_owned(), 1.0)]);
            metrics.extend(mase.map(|m| ("mase".to_owned(), m)));
            metrics
        };
        let per_series = BTreeMap::from([
            ("a".to_owned(), scores(None)),
            ("b".to_owned(), scores(Some(0.5))),
            ("c".to_owned(), scores(Some(2.0))),
            ("d".to_owned(), scores(Some(f64::NAN))),
            ("e".to_owned(), scores(Some(0.5))),
        ]);
        let order: Vec<&str> =
            hardest_first(&per_series).into_iter().map(|(key, _)| key.as_str()).collect();
        assert_eq!(order, ["c", "b", "e", "a", "d"]);
    }
}
