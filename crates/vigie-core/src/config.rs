//! The project file, `vigie.toml`: storage, sources, entities, feature views
//! and the models that use them.
//!
//! [`Config::parse`] reads the text (the caller reads the file) and checks
//! everything that does not need the data: unknown keys, missing fields,
//! references between sections, durations, aggregation functions. Every error
//! names the file, line, column and key, so a user can fix it without
//! guessing. Every section has a default: an empty file is a valid project on
//! embedded storage.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use toml::Spanned;

/// The default location of the offline store, relative to the project folder.
pub const DEFAULT_OFFLINE: &str = ".vigie/offline";
/// The embedded online store.
pub const EMBEDDED: &str = "embedded";

/// A mistake in the project file, located.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct ConfigError {
    /// The file, as the caller named it.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong, naming the key.
    pub message: String,
}

/// The whole project file.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The project's name and description.
    pub project: Project,
    /// Where offline and online features live.
    pub storage: Storage,
    /// The things features describe, each with its key column.
    pub entities: BTreeMap<String, Entity>,
    /// Where raw rows and events come from.
    pub sources: BTreeMap<String, Source>,
    /// Features computed from a source per entity.
    pub feature_views: BTreeMap<String, FeatureView>,
    /// Models trained from feature views.
    pub models: BTreeMap<String, ModelSpec>,
    /// An MLflow tracking server to copy runs, models and aliases to.
    pub mlflow: Mlflow,
    /// Where `vigie serve` copies every prediction for analysis.
    pub predictions: Predictions,
}

/// `[predictions]`: a MongoDB collection that receives every prediction
/// (one document per row) from the audit log, in order, exactly once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Predictions {
    /// `mongodb://HOST:PORT/?OPTIONS` (`${ENV}` is replaced from the
    /// environment); none: predictions stay in the audit log only.
    pub url: Option<String>,
    /// The database (default `vigie`).
    pub database: String,
    /// The collection (default `predictions`).
    pub collection: String,
}

impl Default for Predictions {
    fn default() -> Self {
        Predictions {
            url: None,
            database: "vigie".to_owned(),
            collection: "predictions".to_owned(),
        }
    }
}

/// `text` with every `${NAME}` replaced by the environment variable `NAME`,
/// so that passwords in URLs stay out of `vigie.toml`.
pub fn expand_env(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!("`${{` without a closing `}}` in {text:?}"));
        };
        let name = &after[..end];
        match std::env::var(name) {
            Ok(value) => out.push_str(&value),
            Err(_) => {
                return Err(format!(
                    "the environment variable {name} is not set (the url uses `${{{name}}}`); set it before running vigie"
                ));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `[mlflow]`
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Mlflow {
    /// The tracking server (`http://HOST:PORT`); default `$MLFLOW_TRACKING_URI`.
    pub tracking_uri: Option<String>,
    /// Export after every change to the registry (a training, an alias move), idempotently.
    pub mirror: bool,
}

/// `[project]`
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Project {
    /// The project's name.
    pub name: String,
    /// What it is for.
    pub description: String,
}

/// `[storage]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Storage {
    /// The offline store: a folder (relative to the project) or `s3://bucket/prefix`.
    pub offline: String,
    /// The online store: `embedded` (`.vigie/online.db`) or a MongoDB URL,
    /// `mongodb://USER:PASSWORD@HOST:PORT/?OPTIONS` (`${ENV}` is replaced from the
    /// environment), with the database and collection below.
    pub online: Spanned<String>,
    /// The online store's MongoDB database (default `vigie`).
    pub online_database: String,
    /// The online store's MongoDB collection (default `online_features`).
    pub online_collection: String,
}

impl Default for Storage {
    fn default() -> Self {
        Storage {
            offline: DEFAULT_OFFLINE.to_owned(),
            online: Spanned::new(0..0, EMBEDDED.to_owned()),
            online_database: "vigie".to_owned(),
            online_collection: "online_features".to_owned(),
        }
    }
}

/// `[entities.NAME]`: what features are about (a customer, a card, a transaction).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entity {
    /// The column that identifies one (`customer_id`).
    pub key: Spanned<String>,
    /// What it is.
    #[serde(default)]
    pub description: String,
}

/// The kinds of source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// CSV, JSON lines or Parquet files, on disk or S3.
    File,
    /// A PostgreSQL table or query.
    Postgres,
    /// A MongoDB collection.
    Mongodb,
    /// A Kafka topic of JSON events.
    Kafka,
    /// Events posted to the server's HTTP ingest route.
    Http,
}

impl SourceKind {
    fn name(self) -> &'static str {
        match self {
            SourceKind::File => "file",
            SourceKind::Postgres => "postgres",
            SourceKind::Mongodb => "mongodb",
            SourceKind::Kafka => "kafka",
            SourceKind::Http => "http",
        }
    }
}

/// `[sources.NAME]`: where rows come from, read incrementally by `timestamp`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// Which kind of system.
    pub kind: Spanned<SourceKind>,
    /// The event-time column; ingest reads only rows newer than the last one read.
    pub timestamp: Spanned<String>,
    /// Files: a path (relative to the project) or glob, or an `s3://` URL.
    pub path: Option<Spanned<String>>,
    /// Files: `csv`, `jsonl` or `parquet` (default: from the extension).
    pub format: Option<Spanned<String>>,
    /// PostgreSQL, MongoDB: the connection URL (`${ENV}` is replaced from the environment).
    pub url: Option<Spanned<String>>,
    /// PostgreSQL: a table.
    pub table: Option<Spanned<String>>,
    /// PostgreSQL: a query (instead of a table).
    pub query: Option<Spanned<String>>,
    /// MongoDB: the database.
    pub database: Option<Spanned<String>>,
    /// MongoDB: the collection.
    pub collection: Option<Spanned<String>>,
    /// MongoDB: a filter document as JSON.
    pub filter: Option<Spanned<String>>,
    /// MongoDB, Kafka, HTTP: column name → dotted path in the document (`device.country`).
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// Kafka: bootstrap servers.
    pub brokers: Option<Spanned<String>>,
    /// Kafka: the topic.
    pub topic: Option<Spanned<String>>,
    /// Kafka: the consumer group.
    pub group: Option<Spanned<String>>,
}

/// Aggregation functions of a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Function {
    /// Rows in the window.
    Count,
    /// Sum of a column.
    Sum,
    /// Mean of a column.
    Mean,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// Distinct values of a column.
    DistinctCount,
}

impl Function {
    /// The name as written in `vigie.toml`.
    pub fn name(self) -> &'static str {
        match self {
            Function::Count => "count",
            Function::Sum => "sum",
            Function::Mean => "mean",
            Function::Min => "min",
            Function::Max => "max",
            Function::DistinctCount => "distinct_count",
        }
    }
}

/// One windowed aggregation of a feature view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Aggregation {
    /// The feature's name.
    pub name: Spanned<String>,
    /// What to compute.
    pub function: Spanned<Function>,
    /// The column aggregated (a source column or a row-level feature); not for `count`.
    pub column: Option<Spanned<String>>,
    /// The window: the rows of the entity in `(t - window, t]`, e.g. `10m`, `1h`, `7d`.
    pub window: Spanned<String>,
}

/// `[feature_views.NAME]`: features of one entity, computed from one source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureView {
    /// The source's name.
    pub source: Spanned<String>,
    /// The entity's name.
    pub entity: Spanned<String>,
    /// How long a value stays valid after its event (`7d`); older values read as missing.
    #[serde(default)]
    pub ttl: Option<Spanned<String>>,
    /// How late an event may arrive (after newer ones) and still count (`5m`); later ones are dead letters.
    #[serde(default)]
    pub allowed_lateness: Option<Spanned<String>>,
    /// Row-level features: name → SQL expression over the source's columns.
    #[serde(default)]
    pub columns: BTreeMap<String, Spanned<String>>,
    /// Windowed aggregations per entity.
    #[serde(default)]
    pub aggregations: Vec<Aggregation>,
    /// Cleaning of row-level features, learned from the view's rows: feature → how.
    #[serde(default)]
    pub clean: BTreeMap<String, Spanned<Clean>>,
}

/// How missing values of a cleaned feature are filled from what was learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CleanImpute {
    /// Keep them missing (the default).
    None,
    /// The mean of the learned values (numbers).
    Mean,
    /// The median of the learned values (numbers).
    Median,
    /// The most frequent learned value (numbers) or kept category (text).
    MostFrequent,
}

/// How a cleaned number is rescaled with what was learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CleanScale {
    /// Not at all (the default).
    None,
    /// `(x - mean) / standard deviation`.
    Standard,
    /// `(x - min) / (max - min)`.
    Minmax,
    /// `(x - median) / inter-quartile range`.
    Robust,
}

/// A constant for missing values: a number for numeric features, a string for text ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CleanFill {
    /// For a numeric feature.
    Number(f64),
    /// For a text feature.
    Text(String),
}

/// `[feature_views.NAME.clean] FEATURE = { ... }`: the ML engine's cleaning transforms on
/// one row-level feature, fitted on the view's rows and applied identically by the batch
/// engine and the stream processor. Which keys apply depends on the feature's type.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Clean {
    /// Fill missing values with a learned statistic.
    #[serde(default)]
    pub impute: Option<CleanImpute>,
    /// Fill missing values with this constant instead.
    #[serde(default)]
    pub fill: Option<CleanFill>,
    /// Numbers: rescale with learned statistics.
    #[serde(default)]
    pub scale: Option<CleanScale>,
    /// Text: strip surrounding white space (default true).
    #[serde(default)]
    pub trim: Option<bool>,
    /// Text: fold to lower case (default true).
    #[serde(default)]
    pub lowercase: Option<bool>,
    /// Text: values seen on fewer learned rows than this become the rare category (default 5).
    #[serde(default)]
    pub min_frequency: Option<usize>,
    /// Text: at most this many categories are kept, the most frequent (default 256).
    #[serde(default)]
    pub max_categories: Option<usize>,
    /// Text: what rare and unseen values become (default `"other"`).
    #[serde(default)]
    pub rare: Option<String>,
}

impl Clean {
    /// Whether any text-only key is set.
    pub fn has_text_keys(&self) -> bool {
        self.trim.is_some()
            || self.lowercase.is_some()
            || self.min_frequency.is_some()
            || self.max_categories.is_some()
            || self.rare.is_some()
            || matches!(self.fill, Some(CleanFill::Text(_)))
    }

    /// Whether any number-only key is set.
    pub fn has_numeric_keys(&self) -> bool {
        self.scale.is_some_and(|s| s != CleanScale::None)
            || matches!(self.impute, Some(CleanImpute::Mean | CleanImpute::Median))
            || matches!(self.fill, Some(CleanFill::Number(_)))
    }
}

/// What a model of `vigie.toml` predicts: `task` (default `auto`, a tabular task inferred
/// from the label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelTask {
    /// Tabular; binary, multiclass or regression from the label's values.
    #[default]
    Auto,
    /// Tabular, two classes.
    Binary,
    /// Tabular, more classes.
    Multiclass,
    /// Tabular, a number.
    Regression,
    /// Many time series forecast ahead, from a source's or a feature view's rows.
    Forecast,
}

impl ModelTask {
    /// The name as written in `vigie.toml` (and taken by `vigie train --task`).
    pub fn name(self) -> &'static str {
        match self {
            ModelTask::Auto => "auto",
            ModelTask::Binary => "binary",
            ModelTask::Multiclass => "multiclass",
            ModelTask::Regression => "regression",
            ModelTask::Forecast => "forecast",
        }
    }
}

/// `[models.NAME]`: a model trained by `vigie train NAME`.
///
/// A tabular model (the default task) joins its label source with feature views
/// (`labels`, `label`, `entity`, `features`); a forecast model (`task = "forecast"`)
/// learns from the rows of a `source` or a feature `view` (`time`, `target`, `series`,
/// `horizon`…). A field of the other kind is an error; [`ModelSpec::forecast`] gives a
/// checked forecast model's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// What the model predicts (default: auto, tabular).
    #[serde(default)]
    pub task: Option<Spanned<ModelTask>>,
    /// Tabular: the source of labelled rows (entity key, event time, label).
    #[serde(default = "unset")]
    pub labels: Spanned<String>,
    /// Tabular: the label column.
    #[serde(default)]
    pub label: String,
    /// Tabular: the entity whose features are joined.
    #[serde(default = "unset")]
    pub entity: Spanned<String>,
    /// Tabular: `VIEW:FEATURE` or `VIEW:*`.
    #[serde(default)]
    pub features: Vec<Spanned<String>>,
    /// Tabular: the algorithm (default: auto).
    #[serde(default)]
    pub algorithm: Option<String>,
    /// Tabular: the positive class.
    #[serde(default)]
    pub positive: Option<String>,
    /// Forecast: the history is this source's stored rows.
    #[serde(default)]
    pub source: Option<Spanned<String>>,
    /// Forecast: the history is this feature view's rows.
    #[serde(default)]
    pub view: Option<Spanned<String>>,
    /// Forecast: the time column (default: the source's `timestamp`; a view's rows
    /// are at their event time, written under this name).
    #[serde(default)]
    pub time: Option<Spanned<String>>,
    /// Forecast: the value to forecast (a view: one of its features).
    #[serde(default)]
    pub target: Option<Spanned<String>>,
    /// Forecast: the columns whose values name a series (default: a source's rows are
    /// one series; a view's series are its entity keys, under the key column's name).
    #[serde(default)]
    pub series: Vec<Spanned<String>>,
    /// Forecast: periods ahead to forecast and to backtest.
    #[serde(default)]
    pub horizon: Option<Spanned<i64>>,
    /// Forecast: `auto` (the default), `H`, `D`, `W`, `M` or `Q`.
    #[serde(default)]
    pub frequency: Option<Spanned<String>>,
    /// Forecast: covariates known only up to the forecast origin.
    #[serde(default)]
    pub covariates: Vec<Spanned<String>>,
    /// Forecast: covariates known ahead, given for the forecast periods.
    #[serde(default)]
    pub future_covariates: Vec<Spanned<String>>,
    /// Forecast: rolling-origin backtest windows (default 3).
    #[serde(default)]
    pub backtest_windows: Option<Spanned<i64>>,
    /// Forecast: fit the strategies again at each backtest origin (default
    /// false: fitted at the first origin, run on to the later ones).
    #[serde(default)]
    pub backtest_refit: Option<Spanned<bool>>,
    /// Forecast: group each series' rows of one period into one row, the target by
    /// `sum`, `mean`, `last`, `min`, `max` or `count` (needs a `frequency`).
    #[serde(default)]
    pub aggregate: Option<Spanned<String>>,
    /// Forecast, with `aggregate`: the IANA time zone whose local days, weeks, months or
    /// quarters the rows are grouped into (default UTC). Hourly periods (with or without
    /// `aggregate`) stay UTC hours and the zone sets the clock of their calendar and written
    /// times. Times and dates written without an offset are read on the zone's wall clock.
    #[serde(default)]
    pub timezone: Option<Spanned<String>>,
    /// Forecast: the target cannot be negative; a negative value is an error naming its row.
    #[serde(default)]
    pub non_negative: Option<Spanned<bool>>,
    /// Forecast: the strategies the backtest chooses among (default all).
    #[serde(default)]
    pub strategies: Option<Spanned<Vec<Spanned<String>>>>,
    /// Forecast: the global model's training periods per series, at most (a number,
    /// or "all"); default 400 days of hourly or daily periods.
    #[serde(default)]
    pub train_window: Option<Spanned<TrainWindow>>,
}

/// A forecast model's `train_window`: a number of periods, or a word (`all`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged, expecting = "expected a number of periods, or \"all\"")]
pub enum TrainWindow {
    /// This many periods.
    Periods(i64),
    /// `all` (any other word is refused when the file is checked).
    Named(String),
}

impl fmt::Display for TrainWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrainWindow::Periods(periods) => write!(f, "{periods}"),
            TrainWindow::Named(word) => f.write_str(word),
        }
    }
}

/// An absent spanned text: empty, spanning nothing.
fn unset() -> Spanned<String> {
    Spanned::new(0..0, String::new())
}

/// Where a forecast model's history comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForecastHistory {
    /// A source's stored rows.
    Source(String),
    /// A feature view's rows.
    View(String),
}

/// The settings of a forecast model of `vigie.toml`, as checked by [`Config::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForecastSpec {
    /// Where its history comes from.
    pub history: ForecastHistory,
    /// The time column, when not the default.
    pub time: Option<String>,
    /// The value to forecast.
    pub target: String,
    /// The series columns, when not the default.
    pub series: Vec<String>,
    /// Periods ahead.
    pub horizon: usize,
    /// The frequency's code or name, when not inferred.
    pub frequency: Option<String>,
    /// Covariates known only up to the origin.
    pub covariates: Vec<String>,
    /// Covariates known ahead.
    pub future_covariates: Vec<String>,
    /// Rolling-origin backtest windows, when not the default.
    pub backtest_windows: Option<usize>,
    /// Whether the backtest fits at every origin.
    pub backtest_refit: bool,
    /// How rows of one period are grouped, when they are.
    pub aggregate: Option<String>,
    /// Whose local periods they are grouped into, when not UTC's.
    pub timezone: Option<String>,
    /// Whether a negative target is an error.
    pub non_negative: bool,
    /// The candidate strategies (empty: all).
    pub strategies: Vec<String>,
    /// The global model's training window as written (`400`, `all`), when given.
    pub train_window: Option<String>,
}

impl ModelSpec {
    /// The model's task (`auto` when not written).
    pub fn task(&self) -> ModelTask {
        self.task.as_ref().map_or(ModelTask::Auto, |task| *task.get_ref())
    }

    /// A forecast model's settings; `None` for a tabular model.
    pub fn forecast(&self) -> Option<ForecastSpec> {
        if self.task() != ModelTask::Forecast {
            return None;
        }
        let text = |value: &Option<Spanned<String>>| value.as_ref().map(|v| v.get_ref().clone());
        let texts =
            |values: &[Spanned<String>]| values.iter().map(|v| v.get_ref().clone()).collect();
        let count = |value: &Option<Spanned<i64>>| {
            value.as_ref().and_then(|v| usize::try_from(*v.get_ref()).ok())
        };
        let history = match (text(&self.source), text(&self.view)) {
            (_, Some(view)) => ForecastHistory::View(view),
            (source, None) => ForecastHistory::Source(source.unwrap_or_default()),
        };
        Some(ForecastSpec {
            history,
            time: text(&self.time),
            target: text(&self.target).unwrap_or_default(),
            series: texts(&self.series),
            horizon: count(&self.horizon).unwrap_or(0),
            frequency: text(&self.frequency).filter(|f| !f.eq_ignore_ascii_case("auto")),
            covariates: texts(&self.covariates),
            future_covariates: texts(&self.future_covariates),
            backtest_windows: count(&self.backtest_windows),
            backtest_refit: self.backtest_refit.as_ref().is_some_and(|refit| *refit.get_ref()),
            aggregate: text(&self.aggregate),
            timezone: text(&self.timezone),
            non_negative: self.non_negative.as_ref().is_some_and(|n| *n.get_ref()),
            strategies: self
                .strategies
                .as_ref()
                .map(|list| texts(list.get_ref()))
                .unwrap_or_default(),
            train_window: self.train_window.as_ref().map(|w| w.get_ref().to_string()),
        })
    }
}

/// A duration such as `10m`, `1h`, `24h`, `7d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("{text:?} is not a duration ({e}); write e.g. 10m, 1h, 7d"))
        .and_then(|d| {
            if d.is_zero() {
                Err(format!("{text:?}: the duration must be positive"))
            } else {
                Ok(d)
            }
        })
}

/// 1-based line and column of a byte offset.
/// The setting written on the line of `offset`, with its table: `[models.revenue] horizon`
/// (for a parser's message, which names neither).
fn key_at(text: &str, offset: usize) -> Option<String> {
    let before = &text[..offset.min(text.len())];
    let start = before.rfind('\n').map_or(0, |at| at + 1);
    let line = text[start..].lines().next().unwrap_or_default();
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_matches('"');
    let simple = |c: char| c.is_ascii_alphanumeric() || "_-.".contains(c);
    if key.is_empty() || !key.chars().all(simple) {
        return None;
    }
    let table = text[..start].lines().rev().map(str::trim).find(|l| l.starts_with('['));
    Some(match table {
        Some(table) => format!("{} {key}", table.split('#').next().unwrap_or(table).trim()),
        None => key.to_owned(),
    })
}

/// A parser's message in the words of the file: numbers and lists rather than Rust types.
fn readable(message: &str) -> String {
    [
        ("expected i64", "expected a whole number"),
        ("expected u64", "expected a whole number"),
        ("expected usize", "expected a whole number"),
        ("expected u32", "expected a whole number"),
        ("expected f64", "expected a number"),
        ("expected a sequence", "expected a list, e.g. [\"a\", \"b\"]"),
    ]
    .into_iter()
    .fold(message.to_owned(), |text, (rust, words)| text.replace(rust, words))
}

fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(before.len(), |at| before.len() - at - 1) + 1;
    (line, column)
}

/// What a forecast model's `frequency` may be: the codes and names
/// `vigie_ml::forecast::Frequency` reads, and `auto`.
const FREQUENCIES: &[&str] =
    &["auto", "H", "D", "W", "M", "Q", "hourly", "daily", "weekly", "monthly", "quarterly"];

/// What a forecast model's `strategies` may name: `vigie_ml::forecast::Strategy`'s names.
const STRATEGIES: &[&str] = &["seasonal_naive", "ets", "global_gbdt"];

/// What a forecast model's `aggregate` may be: the names
/// `vigie_ml::forecast::Aggregate` reads.
const AGGREGATES: &[&str] = &["sum", "mean", "last", "min", "max", "count"];

/// Names for a message: `a, b, c`.
fn listing<'a>(names: impl Iterator<Item = &'a String>) -> String {
    names.map(String::as_str).collect::<Vec<_>>().join(", ")
}

/// A feature view's feature names: row-level columns, then aggregations.
fn view_features(view: &FeatureView) -> Vec<&str> {
    view.columns
        .keys()
        .map(String::as_str)
        .chain(view.aggregations.iter().map(|a| a.name.get_ref().as_str()))
        .collect()
}

/// Builds located errors for one file.
struct Locator<'a> {
    file: &'a str,
    text: &'a str,
}

impl Locator<'_> {
    fn at<T>(&self, spanned: &Spanned<T>, message: impl fmt::Display) -> ConfigError {
        self.at_offset(spanned.span().start, message)
    }

    fn at_offset(&self, offset: usize, message: impl fmt::Display) -> ConfigError {
        let (line, column) = position(self.text, offset);
        ConfigError { file: self.file.to_owned(), line, column, message: message.to_string() }
    }

    /// At the header of `[TABLE]` (for a key that is missing from it), else the file's start.
    fn at_table(&self, table: &str, message: impl fmt::Display) -> ConfigError {
        let offset = self.text.find(&format!("[{table}]")).unwrap_or(0);
        self.at_offset(offset, message)
    }
}

impl Config {
    /// Parses and checks the text of a project file named `file` (for messages).
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|error| {
            let offset = error.span().map(|span| span.start);
            let (line, column) = offset.map_or((1, 1), |offset| position(text, offset));
            let message = readable(error.message().trim());
            let message = match offset.and_then(|offset| key_at(text, offset)) {
                Some(key) if !message.contains(&key) => format!("{key}: {message}"),
                _ => message,
            };
            ConfigError { file: file.to_owned(), line, column, message }
        })?;
        config.check(&Locator { file, text })?;
        Ok(config)
    }

    fn check(&self, at: &Locator<'_>) -> Result<(), ConfigError> {
        let online = self.storage.online.get_ref();
        // A URL from the environment (`${VAR}`) is checked once expanded, where it is used.
        if online != EMBEDDED && !online.starts_with("mongodb://") && !online.starts_with("${") {
            return Err(at.at(
                &self.storage.online,
                format!(
                    "[storage] online: {online:?} is not `embedded` or a MongoDB URL \
                     (mongodb://USER:PASSWORD@HOST:PORT/?OPTIONS; mongodb+srv:// is not supported)"
                ),
            ));
        }
        let names =
            |map: Vec<&String>| map.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
        for (name, source) in &self.sources {
            let key = |field: &str| format!("[sources.{name}] {field}");
            let kind = *source.kind.get_ref();
            let need = |field: &Option<Spanned<String>>, what: &str| -> Result<(), ConfigError> {
                if field.is_none() {
                    return Err(at.at(
                        &source.kind,
                        format!("{}: a {} source needs `{what}`", key("kind"), kind.name()),
                    ));
                }
                Ok(())
            };
            match kind {
                SourceKind::File => {
                    need(&source.path, "path")?;
                    if let Some(format) = &source.format
                        && !["csv", "jsonl", "parquet"].contains(&format.get_ref().as_str())
                    {
                        return Err(at.at(
                            format,
                            format!(
                                "{}: unknown format {:?}, expected csv, jsonl or parquet",
                                key("format"),
                                format.get_ref()
                            ),
                        ));
                    }
                }
                SourceKind::Postgres => {
                    need(&source.url, "url")?;
                    if source.table.is_some() == source.query.is_some() {
                        return Err(at.at(
                            &source.kind,
                            format!(
                                "{}: a postgres source needs `table` or `query`, not both",
                                key("kind")
                            ),
                        ));
                    }
                }
                SourceKind::Mongodb => {
                    need(&source.url, "url")?;
                    need(&source.database, "database")?;
                    need(&source.collection, "collection")?;
                }
                SourceKind::Kafka => {
                    need(&source.brokers, "brokers")?;
                    need(&source.topic, "topic")?;
                    need(&source.group, "group")?;
                }
                SourceKind::Http => {}
            }
        }
        for (name, view) in &self.feature_views {
            let key = |field: &str| format!("[feature_views.{name}] {field}");
            if !self.sources.contains_key(view.source.get_ref()) {
                return Err(at.at(
                    &view.source,
                    format!(
                        "{}: no source {:?}; the sources are: {}",
                        key("source"),
                        view.source.get_ref(),
                        names(self.sources.keys().collect())
                    ),
                ));
            }
            if !self.entities.contains_key(view.entity.get_ref()) {
                return Err(at.at(
                    &view.entity,
                    format!(
                        "{}: no entity {:?}; the entities are: {}",
                        key("entity"),
                        view.entity.get_ref(),
                        names(self.entities.keys().collect())
                    ),
                ));
            }
            for (field, value) in [("ttl", &view.ttl), ("allowed_lateness", &view.allowed_lateness)]
            {
                if let Some(value) = value {
                    parse_duration(value.get_ref())
                        .map_err(|e| at.at(value, format!("{}: {e}", key(field))))?;
                }
            }
            let mut seen: Vec<&str> = view.columns.keys().map(String::as_str).collect();
            for aggregation in &view.aggregations {
                let feature = aggregation.name.get_ref().as_str();
                if seen.contains(&feature) {
                    return Err(at.at(
                        &aggregation.name,
                        format!("{}: feature {feature:?} is defined twice", key("aggregations")),
                    ));
                }
                seen.push(feature);
                parse_duration(aggregation.window.get_ref()).map_err(|e| {
                    at.at(&aggregation.window, format!("{}: {e}", key("aggregations.window")))
                })?;
                let function = *aggregation.function.get_ref();
                match (function, &aggregation.column) {
                    (Function::Count, _) => {}
                    (_, Some(_)) => {}
                    (_, None) => {
                        return Err(at.at(
                            &aggregation.function,
                            format!(
                                "{}: {} of {feature:?} needs a `column`",
                                key("aggregations"),
                                function.name()
                            ),
                        ));
                    }
                }
            }
            for (feature, clean) in &view.clean {
                let field = format!("{}.{feature}", key("clean"));
                if !view.columns.contains_key(feature) {
                    return Err(at.at(
                        clean,
                        format!(
                            "{field}: {feature:?} is not a row-level feature of the view; \
                             its row-level features are: {}",
                            names(view.columns.keys().collect())
                        ),
                    ));
                }
                let recipe = clean.get_ref();
                let problem = if recipe.impute.is_some_and(|i| i != CleanImpute::None)
                    && recipe.fill.is_some()
                {
                    Some("`impute` and `fill` both fill missing values; keep one")
                } else if recipe.has_text_keys() && recipe.has_numeric_keys() {
                    Some(
                        "mixes keys for numbers (scale, impute mean/median, a numeric fill) \
                         with keys for text (trim, lowercase, min_frequency, max_categories, \
                         rare, a text fill)",
                    )
                } else if recipe.max_categories == Some(0) {
                    Some("max_categories must be at least 1")
                } else if matches!(&recipe.fill, Some(CleanFill::Number(x)) if !x.is_finite()) {
                    Some("fill must be a finite number")
                } else {
                    None
                };
                if let Some(problem) = problem {
                    return Err(at.at(clean, format!("{field}: {problem}")));
                }
            }
        }
        for (name, model) in &self.models {
            if model.task() == ModelTask::Forecast {
                self.check_forecast_model(name, model, at)?;
            } else {
                self.check_tabular_model(name, model, at)?;
            }
        }
        Ok(())
    }

    /// A tabular model: no forecast setting; its label source, entity and features exist.
    fn check_tabular_model(
        &self,
        name: &str,
        model: &ModelSpec,
        at: &Locator<'_>,
    ) -> Result<(), ConfigError> {
        let key = |field: &str| format!("[models.{name}] {field}");
        let task = model.task().name();
        let texts = [
            ("source", model.source.as_ref()),
            ("view", model.view.as_ref()),
            ("time", model.time.as_ref()),
            ("target", model.target.as_ref()),
            ("series", model.series.first()),
            ("frequency", model.frequency.as_ref()),
            ("covariates", model.covariates.first()),
            ("future_covariates", model.future_covariates.first()),
            ("aggregate", model.aggregate.as_ref()),
            ("timezone", model.timezone.as_ref()),
            ("strategies", model.strategies.as_ref().and_then(|list| list.get_ref().first())),
        ];
        let train_window = model.train_window.as_ref().map(|v| ("train_window", v.span().start));
        let forecast_only = texts
            .into_iter()
            .filter_map(|(field, value)| value.map(|v| (field, v.span().start)))
            .chain(
                [
                    ("horizon", model.horizon.as_ref()),
                    ("backtest_windows", model.backtest_windows.as_ref()),
                ]
                .into_iter()
                .filter_map(|(field, value)| value.map(|v| (field, v.span().start))),
            )
            .chain(model.backtest_refit.as_ref().map(|v| ("backtest_refit", v.span().start)))
            .chain(model.non_negative.as_ref().map(|v| ("non_negative", v.span().start)))
            .chain(train_window)
            .min_by_key(|&(_, offset)| offset);
        if let Some((field, offset)) = forecast_only {
            return Err(at.at_offset(
                offset,
                format!(
                    "{}: a forecast setting, but the model's task is {task}; write task = \"forecast\" \
                     for a forecast model",
                    key(field)
                ),
            ));
        }
        let table = format!("models.{name}");
        for (field, missing, what) in [
            ("labels", model.labels.get_ref().is_empty(), "the source of labelled rows"),
            ("label", model.label.is_empty(), "the label column"),
            ("entity", model.entity.get_ref().is_empty(), "the entity whose features are joined"),
        ] {
            if missing {
                return Err(at.at_table(
                    &table,
                    format!(
                        "{}: missing: {what} (or task = \"forecast\" for a forecast model)",
                        key(field)
                    ),
                ));
            }
        }
        if !self.sources.contains_key(model.labels.get_ref()) {
            return Err(at.at(
                &model.labels,
                format!(
                    "{}: no source {:?}; the sources are: {}",
                    key("labels"),
                    model.labels.get_ref(),
                    listing(self.sources.keys())
                ),
            ));
        }
        if !self.entities.contains_key(model.entity.get_ref()) {
            return Err(at.at(
                &model.entity,
                format!("{}: no entity {:?}", key("entity"), model.entity.get_ref()),
            ));
        }
        if model.features.is_empty() {
            return Err(at.at(&model.labels, format!("{}: no features listed", key("features"))));
        }
        for feature in &model.features {
            let Some((view, column)) = feature.get_ref().split_once(':') else {
                return Err(at.at(
                    feature,
                    format!(
                        "{}: {:?} is not VIEW:FEATURE or VIEW:*",
                        key("features"),
                        feature.get_ref()
                    ),
                ));
            };
            let Some(found) = self.feature_views.get(view) else {
                return Err(at.at(
                    feature,
                    format!(
                        "{}: no feature view {view:?}; the views are: {}",
                        key("features"),
                        listing(self.feature_views.keys())
                    ),
                ));
            };
            let known = column == "*" || view_features(found).contains(&column);
            if !known {
                return Err(at.at(
                    feature,
                    format!("{}: feature view {view:?} has no feature {column:?}", key("features")),
                ));
            }
            if found.entity.get_ref() != model.entity.get_ref() {
                return Err(at.at(
                    feature,
                    format!(
                        "{}: feature view {view:?} is about {:?}, the model about {:?}",
                        key("features"),
                        found.entity.get_ref(),
                        model.entity.get_ref()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// A forecast model: no tabular setting; one history (a source or a view) that exists;
    /// a target and a horizon; a view's columns among its features; one role per column.
    fn check_forecast_model(
        &self,
        name: &str,
        model: &ModelSpec,
        at: &Locator<'_>,
    ) -> Result<(), ConfigError> {
        let key = |field: &str| format!("[models.{name}] {field}");
        let table = format!("models.{name}");
        // `task` is there: it made this a forecast model.
        let task_offset = model.task.as_ref().map_or(0, |task| task.span().start);
        let tabular_only = [
            ("labels", (!model.labels.get_ref().is_empty()).then(|| model.labels.span().start)),
            ("entity", (!model.entity.get_ref().is_empty()).then(|| model.entity.span().start)),
            ("features", model.features.first().map(|f| f.span().start)),
            ("label", (!model.label.is_empty()).then_some(task_offset)),
            ("algorithm", model.algorithm.as_ref().map(|_| task_offset)),
            ("positive", model.positive.as_ref().map(|_| task_offset)),
        ];
        if let Some((field, offset)) = tabular_only
            .into_iter()
            .filter_map(|(field, offset)| offset.map(|o| (field, o)))
            .min_by_key(|&(_, offset)| offset)
        {
            return Err(at.at_offset(
                offset,
                format!(
                    "{}: not a setting of a forecast model, whose history is its `source` or \
                     `view` (time, target, series, horizon, frequency, covariates, \
                     future_covariates, backtest_windows, backtest_refit, aggregate, timezone, \
                     non_negative, strategies, train_window)",
                    key(field)
                ),
            ));
        }
        // Where the history comes from, and the columns it has by default.
        let (time_default, series_default, view) = match (&model.source, &model.view) {
            (Some(_), Some(view)) => {
                return Err(at.at(
                    view,
                    format!("{}: give `source` or `view` for the history, not both", key("view")),
                ));
            }
            (None, None) => {
                return Err(at.at_table(
                    &table,
                    format!(
                        "{}: missing: a forecast model learns from a `source`'s rows or a \
                         feature `view`'s rows",
                        key("source")
                    ),
                ));
            }
            (Some(source), None) => {
                let Some(found) = self.sources.get(source.get_ref()) else {
                    return Err(at.at(
                        source,
                        format!(
                            "{}: no source {:?}; the sources are: {}",
                            key("source"),
                            source.get_ref(),
                            listing(self.sources.keys())
                        ),
                    ));
                };
                (found.timestamp.get_ref().clone(), Vec::new(), None)
            }
            (None, Some(view)) => {
                let Some(found) = self.feature_views.get(view.get_ref()) else {
                    return Err(at.at(
                        view,
                        format!(
                            "{}: no feature view {:?}; the views are: {}",
                            key("view"),
                            view.get_ref(),
                            listing(self.feature_views.keys())
                        ),
                    ));
                };
                // The view's own checks (above) found its source and entity.
                let timestamp =
                    self.sources.get(found.source.get_ref()).map(|s| s.timestamp.get_ref().clone());
                let entity_key =
                    self.entities.get(found.entity.get_ref()).map(|e| e.key.get_ref().clone());
                (
                    timestamp.unwrap_or_default(),
                    entity_key.clone().into_iter().collect(),
                    Some((view.get_ref().as_str(), found, entity_key)),
                )
            }
        };
        let Some(target) = &model.target else {
            return Err(
                at.at_table(&table, format!("{}: missing: the value to forecast", key("target")))
            );
        };
        match &model.horizon {
            None => {
                return Err(at.at_table(
                    &table,
                    format!("{}: missing: the periods ahead to forecast", key("horizon")),
                ));
            }
            Some(horizon) if *horizon.get_ref() < 1 => {
                return Err(at.at(
                    horizon,
                    format!(
                        "{}: {} periods; it must be at least 1",
                        key("horizon"),
                        horizon.get_ref()
                    ),
                ));
            }
            Some(_) => {}
        }
        if let Some(windows) = &model.backtest_windows
            && *windows.get_ref() < 1
        {
            return Err(at.at(
                windows,
                format!(
                    "{}: {}; it must be at least 1: the backtest chooses the strategy and \
                     calibrates the intervals",
                    key("backtest_windows"),
                    windows.get_ref()
                ),
            ));
        }
        if let Some(frequency) = &model.frequency {
            let text = frequency.get_ref();
            if !FREQUENCIES.iter().any(|k| k.eq_ignore_ascii_case(text.trim())) {
                return Err(at.at(
                    frequency,
                    format!(
                        "{}: unknown frequency {text:?}, expected auto, H, D, W, M or Q",
                        key("frequency")
                    ),
                ));
            }
        }
        if let Some(list) = model.strategies.as_ref().filter(|list| list.get_ref().is_empty()) {
            return Err(at.at(
                list,
                format!(
                    "{}: name at least one of {} (or leave the key out for all)",
                    key("strategies"),
                    STRATEGIES.join(", ")
                ),
            ));
        }
        let strategies = model.strategies.iter().flat_map(|list| list.get_ref());
        if let Some(unknown) =
            strategies.into_iter().find(|s| !STRATEGIES.contains(&s.get_ref().trim()))
        {
            return Err(at.at(
                unknown,
                format!(
                    "{}: unknown strategy {:?}, expected {}",
                    key("strategies"),
                    unknown.get_ref(),
                    STRATEGIES.join(", ")
                ),
            ));
        }
        if let Some(window) = &model.train_window {
            let fine = match window.get_ref() {
                TrainWindow::Periods(periods) => *periods >= 1,
                TrainWindow::Named(word) => word.trim().eq_ignore_ascii_case("all"),
            };
            if !fine {
                return Err(at.at(
                    window,
                    format!(
                        "{}: {}; expected a number of periods (at least 1) or \"all\"",
                        key("train_window"),
                        window.get_ref()
                    ),
                ));
            }
        }
        if let Some(aggregate) = &model.aggregate {
            let text = aggregate.get_ref();
            if !AGGREGATES.iter().any(|k| k.eq_ignore_ascii_case(text.trim())) {
                return Err(at.at(
                    aggregate,
                    format!(
                        "{}: unknown aggregate {text:?}, expected one of {}",
                        key("aggregate"),
                        AGGREGATES.join(", ")
                    ),
                ));
            }
            let named = model.frequency.as_ref().map(|f| f.get_ref().trim().to_owned());
            if named.is_none_or(|f| f.eq_ignore_ascii_case("auto")) {
                return Err(at.at(
                    aggregate,
                    format!(
                        "{}: grouping rows into periods needs the periods: write frequency = \"H\", \"D\", \"W\", \"M\" or \"Q\"",
                        key("aggregate")
                    ),
                ));
            }
        }
        if let Some(timezone) = &model.timezone {
            if let Err(error) = crate::zone::parse_time_zone(timezone.get_ref()) {
                return Err(at.at(timezone, format!("{}: {error}", key("timezone"))));
            }
            let hourly = model.frequency.as_ref().is_some_and(|f| {
                let f = f.get_ref().trim();
                f.eq_ignore_ascii_case("H") || f.eq_ignore_ascii_case("hourly")
            });
            if model.aggregate.is_none() && !hourly {
                return Err(at.at(
                    timezone,
                    format!(
                        "{}: says whose local periods `aggregate` groups rows into, or whose \
                         clock hourly periods are read on; write aggregate, or frequency = \"H\"",
                        key("timezone")
                    ),
                ));
            }
        }
        // A view's rows hold its entity key and its features, nothing else.
        if let Some((view_name, view, entity_key)) = view {
            let features = view_features(view);
            let listed = || features.join(", ");
            let roles = std::iter::once(("target", target))
                .chain(model.covariates.iter().map(|c| ("covariates", c)))
                .chain(model.future_covariates.iter().map(|c| ("future_covariates", c)));
            for (field, column) in roles {
                if !features.contains(&column.get_ref().as_str()) {
                    return Err(at.at(
                        column,
                        format!(
                            "{}: feature view {view_name:?} has no feature {:?}; its features are: {}",
                            key(field),
                            column.get_ref(),
                            listed()
                        ),
                    ));
                }
            }
            for column in &model.series {
                let name = column.get_ref().as_str();
                if Some(name) != entity_key.as_deref() && !features.contains(&name) {
                    return Err(at.at(
                        column,
                        format!(
                            "{}: {name:?} is neither the key of feature view {view_name:?} ({}) nor \
                             one of its features: {}",
                            key("series"),
                            entity_key.as_deref().unwrap_or("?"),
                            listed()
                        ),
                    ));
                }
            }
        }
        // One role per column, as `vigie train --task forecast` demands.
        let time = model.time.as_ref().map_or(time_default, |t| t.get_ref().clone());
        let series: Vec<(String, Option<&Spanned<String>>)> = if model.series.is_empty() {
            series_default.into_iter().map(|s| (s, None)).collect()
        } else {
            model.series.iter().map(|s| (s.get_ref().clone(), Some(s))).collect()
        };
        let mut seen: Vec<(String, &str)> = vec![(time, "time")];
        let named = std::iter::once(("target", target.get_ref().clone(), Some(target)))
            .chain(series.into_iter().map(|(s, span)| ("series", s, span)))
            .chain(model.covariates.iter().map(|c| ("covariates", c.get_ref().clone(), Some(c))))
            .chain(
                model
                    .future_covariates
                    .iter()
                    .map(|c| ("future_covariates", c.get_ref().clone(), Some(c))),
            );
        for (field, column, span) in named {
            if let Some((_, first)) = seen.iter().find(|(name, _)| *name == column) {
                let message = format!(
                    "{}: column {column:?} is already the model's {first}; a column has one role \
                     (time, target, series, covariate)",
                    key(field)
                );
                return Err(match span {
                    Some(span) => at.at(span, message),
                    None => at.at_table(&table, message),
                });
            }
            seen.push((column, field));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
