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

/// `[models.NAME]`: a model trained from feature views by `vigie train NAME`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// The source of labelled rows (entity key, event time, label).
    pub labels: Spanned<String>,
    /// The label column.
    pub label: String,
    /// The entity whose features are joined.
    pub entity: Spanned<String>,
    /// `VIEW:FEATURE` or `VIEW:*`.
    pub features: Vec<Spanned<String>>,
    /// The algorithm (default: auto).
    #[serde(default)]
    pub algorithm: Option<String>,
    /// The positive class.
    #[serde(default)]
    pub positive: Option<String>,
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
fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(before.len(), |at| before.len() - at - 1) + 1;
    (line, column)
}

/// Builds located errors for one file.
struct Locator<'a> {
    file: &'a str,
    text: &'a str,
}

impl Locator<'_> {
    fn at<T>(&self, spanned: &Spanned<T>, message: impl fmt::Display) -> ConfigError {
        let (line, column) = position(self.text, spanned.span().start);
        ConfigError { file: self.file.to_owned(), line, column, message: message.to_string() }
    }
}

impl Config {
    /// Parses and checks the text of a project file named `file` (for messages).
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|error| {
            let (line, column) = error.span().map_or((1, 1), |span| position(text, span.start));
            ConfigError {
                file: file.to_owned(),
                line,
                column,
                message: error.message().trim().to_owned(),
            }
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
            let key = |field: &str| format!("[models.{name}] {field}");
            if !self.sources.contains_key(model.labels.get_ref()) {
                return Err(at.at(
                    &model.labels,
                    format!(
                        "{}: no source {:?}; the sources are: {}",
                        key("labels"),
                        model.labels.get_ref(),
                        names(self.sources.keys().collect())
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
                return Err(
                    at.at(&model.labels, format!("{}: no features listed", key("features")))
                );
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
                            names(self.feature_views.keys().collect())
                        ),
                    ));
                };
                let known = column == "*"
                    || found.columns.contains_key(column)
                    || found.aggregations.iter().any(|a| a.name.get_ref() == column);
                if !known {
                    return Err(at.at(
                        feature,
                        format!(
                            "{}: feature view {view:?} has no feature {column:?}",
                            key("features")
                        ),
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
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
