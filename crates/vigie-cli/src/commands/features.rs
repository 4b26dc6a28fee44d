//! `vigie ingest`, `vigie materialize` and `vigie features get|history`: the
//! feature store from the command line. Glue only: the work is
//! `vigie_features`.

use std::path::Path;

use serde_json::{Value as Json, json};
use vigie_core::config::SourceKind;
use vigie_features::{FeatureError, FeatureRef, FeatureStore, OnlineLocation, OnlineStore};

use super::{Project, UsageError};
use crate::cli::{FeaturesCommand, Format};
use crate::output;
use crate::output::outln;
use crate::progress::Spinner;

/// The project's feature store.
pub fn store(project: &Project) -> anyhow::Result<FeatureStore> {
    Ok(FeatureStore::open(&project.dir, project.config()?)?)
}

/// Where the project's online store is: `[storage] online` of vigie.toml.
pub fn online_location(
    project: &Project,
    config: &vigie_core::Config,
) -> anyhow::Result<OnlineLocation> {
    Ok(OnlineLocation::from_config(&config.storage, &project.state_dir())
        .map_err(FeatureError::from)?)
}

/// The project's online store, for reading and writing.
pub fn online(project: &Project, store: &FeatureStore) -> anyhow::Result<OnlineStore> {
    Ok(OnlineStore::open(&online_location(project, store.config())?).map_err(FeatureError::from)?)
}

fn names_or_all(one: Option<String>, all: Vec<&String>) -> Vec<String> {
    match one {
        Some(name) => vec![name],
        None => all.into_iter().cloned().collect(),
    }
}

/// Ingests SOURCE (default: every source) with a spinner; one JSON summary per source.
pub fn ingest_sources(project: &Project, source: Option<String>) -> anyhow::Result<Vec<Json>> {
    let store = store(project)?;
    // Every source but the streaming ones, whose events come through the stream processor.
    let batch_sources = store
        .config()
        .sources
        .iter()
        .filter(|(_, s)| !matches!(s.kind.get_ref(), SourceKind::Http | SourceKind::Kafka))
        .map(|(name, _)| name)
        .collect();
    let names = names_or_all(source, batch_sources);
    if names.is_empty() {
        return Err(UsageError(
            "vigie.toml declares no [sources] that `vigie ingest` reads (files, postgres, \
             mongodb); events of http sources come through `vigie serve` and `vigie stream`"
                .into(),
        )
        .into());
    }
    let mut summaries = Vec::new();
    for name in names {
        let spinner = Spinner::new(&format!("ingesting {name}"));
        let summary = store.ingest(&name);
        spinner.finish();
        let summary = summary?;
        summaries.push(json!({
            "source": summary.source,
            "read": summary.read,
            "stored": summary.stored,
            "watermark": summary.watermark.map(vigie_features::engine::format_micros),
            "untimed": summary.untimed,
        }));
    }
    Ok(summaries)
}

/// `vigie ingest [SOURCE]`.
pub fn ingest(project: &Project, source: Option<String>, format: Format) -> anyhow::Result<()> {
    let summaries = ingest_sources(project, source)?;
    match format {
        Format::Json => output::json(&Json::Array(summaries)),
        Format::Text => {
            let mut table = output::table(&["source", "rows read", "new rows stored", "watermark"]);
            for s in &summaries {
                table.add_row(vec![
                    s["source"].as_str().unwrap_or_default().to_owned(),
                    s["read"].to_string(),
                    s["stored"].to_string(),
                    s["watermark"].as_str().unwrap_or("-").to_owned(),
                ]);
            }
            outln!("{table}")?;
            for s in summaries.iter().filter(|s| s["untimed"].as_u64().unwrap_or(0) > 0) {
                outln!(
                    "warning: source {}: {} rows have no time (NULL, or not a date) and are never \
                     read; give them one to ingest them",
                    s["source"],
                    s["untimed"]
                )?;
            }
            Ok(())
        }
    }
}

/// Computes VIEW (default: every view) and updates the online store, with a spinner; one JSON
/// summary per view.
pub fn materialize_views(project: &Project, view: Option<String>) -> anyhow::Result<Vec<Json>> {
    let store = store(project)?;
    let names = names_or_all(view, store.config().feature_views.keys().collect());
    if names.is_empty() {
        return Err(UsageError("vigie.toml declares no [feature_views]".into()).into());
    }
    let mut online = online(project, &store)?;
    let mut summaries = Vec::new();
    for name in names {
        let spinner = Spinner::new(&format!("computing {name}"));
        let computed = store.compute_view(&name);
        spinner.finish();
        let summary = computed?;
        let rows = store.view_rows(&name)?;
        let features = FeatureStore::feature_names(store.view(&name)?);
        let updated = vigie_features::online::materialize(&mut online, &name, &rows, &features)?;
        let cleaning_rows = store.cleaning_rows(&name)?;
        summaries.push(json!({
            "view": name,
            "rows": summary.rows,
            "keys": summary.keys,
            "late": summary.late,
            "days": summary.days,
            "online_updated": updated,
            "features": features,
            "cleaning_learned_from_rows": cleaning_rows,
        }));
    }
    Ok(summaries)
}

/// Ingests `source`'s new rows when `vigie ingest` reads it (not a streaming source, whose
/// events the stream processor stores); returns it with the number of rows stored.
pub fn ingest_batch_source(
    store: &FeatureStore,
    source: &str,
) -> anyhow::Result<Option<(String, usize)>> {
    let streaming = store
        .config()
        .sources
        .get(source)
        .is_some_and(|s| matches!(s.kind.get_ref(), SourceKind::Http | SourceKind::Kafka));
    if streaming {
        return Ok(None);
    }
    let spinner = Spinner::new(&format!("ingesting {source}"));
    let summary = store.ingest(source);
    spinner.finish();
    Ok(Some((source.to_owned(), summary?.stored)))
}

/// Brings the inputs of `[models.MODEL]` up to date before its training table is built:
/// ingests the batch sources it reads (its labels, its views' sources) and computes its
/// views again in the offline store (the online store is `vigie materialize`'s). Returns
/// one phrase per step, for the summary.
pub fn refresh_model_inputs(store: &FeatureStore, model: &str) -> anyhow::Result<Vec<String>> {
    let config = store.config();
    let Some(spec) = config.models.get(model) else { return Ok(Vec::new()) };
    let mut views: Vec<String> = Vec::new();
    for feature in &spec.features {
        let view = feature.get_ref().split(':').next().unwrap_or_default().to_owned();
        if !views.contains(&view) {
            views.push(view);
        }
    }
    let mut sources = vec![spec.labels.get_ref().clone()];
    for view in &views {
        let source = store.view(view)?.source.get_ref().clone();
        if !sources.contains(&source) {
            sources.push(source);
        }
    }
    let mut done = Vec::new();
    for source in &sources {
        if let Some((name, stored)) = ingest_batch_source(store, source)? {
            done.push(format!("ingested {stored} new rows of {name}"));
        }
    }
    for view in &views {
        let spinner = Spinner::new(&format!("computing {view}"));
        let computed = store.compute_view(view);
        spinner.finish();
        let summary = computed?;
        done.push(format!("computed {view}: {} rows", summary.rows));
    }
    Ok(done)
}

/// Forgets the learned cleaning of views `view` (default: all) so that their next
/// computation learns it from all their rows. Refused while a stream processor runs: it
/// would go on cleaning with the old statistics.
fn forget_cleaning(project: &Project, view: Option<String>) -> anyhow::Result<()> {
    let store = store(project)?;
    let _no_processor = vigie_features::stream::processor_lock(&super::stream::log_dir(project))?;
    for name in names_or_all(view, store.config().feature_views.keys().collect()) {
        store.forget_cleaning(&name)?;
    }
    Ok(())
}

/// `vigie materialize [VIEW] [--refit]`.
pub fn materialize(
    project: &Project,
    view: Option<String>,
    refit: bool,
    format: Format,
) -> anyhow::Result<()> {
    if refit {
        forget_cleaning(project, view.clone())?;
    }
    let summaries = materialize_views(project, view)?;
    match format {
        Format::Json => output::json(&Json::Array(summaries)),
        Format::Text => {
            let mut header = vec![
                "view",
                "feature rows",
                "entities",
                "late events",
                "days",
                "online keys updated",
            ];
            let cleaned = summaries.iter().any(|s| !s["cleaning_learned_from_rows"].is_null());
            if cleaned {
                header.push("cleaning learned from rows");
            }
            let mut table = output::table(&header);
            for s in &summaries {
                let mut row = vec![
                    s["view"].as_str().unwrap_or_default().to_owned(),
                    s["rows"].to_string(),
                    s["keys"].to_string(),
                    s["late"].to_string(),
                    s["days"].to_string(),
                    s["online_updated"].to_string(),
                ];
                if cleaned {
                    let rows = &s["cleaning_learned_from_rows"];
                    row.push(if rows.is_null() { "-".to_owned() } else { rows.to_string() });
                }
                table.add_row(row);
            }
            outln!("{table}")?;
            Ok(())
        }
    }
}

/// `vigie features …`.
pub fn run(project: &Project, command: FeaturesCommand) -> anyhow::Result<()> {
    match command {
        FeaturesCommand::Get { view, key, format } => get(project, &view, &key, format),
        FeaturesCommand::History { entities, features, out, time, format } => {
            history(project, &entities, &features, &out, time, format)
        }
    }
}

fn get(project: &Project, view_name: &str, key: &str, format: Format) -> anyhow::Result<()> {
    let store = store(project)?;
    let view = store.view(view_name)?;
    let key_column = store.entity_key(view)?;
    let (column, value) = key
        .split_once('=')
        .ok_or_else(|| UsageError(format!("--key {key:?}: expected {key_column}=VALUE")))?;
    if column.trim() != key_column {
        return Err(UsageError(format!(
            "--key {key:?}: feature view {view_name:?} is keyed by {key_column:?}, not {:?}",
            column.trim()
        ))
        .into());
    }
    let online = online(project, &store)?;
    let Some(row) = online.get(view_name, value.trim()).map_err(FeatureError::from)? else {
        return Err(UsageError(format!(
            "no features of {key_column}={} in {view_name:?} (unknown entity, or run `vigie materialize {view_name}`)",
            value.trim()
        ))
        .into());
    };
    let ttl = view.ttl.as_ref().and_then(|t| vigie_core::config::parse_duration(t.get_ref()).ok());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
    let age_seconds = (now - row.time) as f64 / 1e6;
    let expired = ttl.is_some_and(|ttl| age_seconds > ttl.as_secs_f64());
    let time = vigie_features::engine::format_micros(row.time);
    match format {
        Format::Json => output::json(&json!({
            "view": view_name,
            "key": {key_column: value.trim()},
            "time": time,
            "age_seconds": age_seconds,
            "expired": expired,
            "features": row.values,
        })),
        Format::Text => {
            outln!(
                "{view_name} {key_column}={} as of {time}{}",
                value.trim(),
                if expired {
                    " (older than the view's ttl: serving treats it as missing)"
                } else {
                    ""
                }
            )?;
            let mut table = output::table(&["feature", "value"]);
            for (name, value) in &row.values {
                table.add_row(vec![name.clone(), value.to_string()]);
            }
            outln!("{table}")?;
            Ok(())
        }
    }
}

fn history(
    project: &Project,
    entities_path: &Path,
    features: &[String],
    out: &Path,
    time: Option<String>,
    format: Format,
) -> anyhow::Result<()> {
    let store = store(project)?;
    let refs: Vec<FeatureRef> = features.iter().map(|f| f.parse()).collect::<Result<_, _>>()?;
    let entities = store.read_table(entities_path)?;
    let columns: Vec<String> =
        entities.schema().fields().iter().map(|f| f.name().clone()).collect();
    let time = match time {
        Some(time) => time,
        None => {
            let mut candidates: Vec<String> = Vec::new();
            for feature in &refs {
                let view = store.view(&feature.view)?;
                if let Some(source) = store.config().sources.get(view.source.get_ref()) {
                    candidates.push(source.timestamp.get_ref().clone());
                }
            }
            candidates.extend(["event_timestamp", "timestamp", "ts"].map(str::to_owned));
            candidates.into_iter().find(|c| columns.contains(c)).ok_or_else(|| {
                UsageError(format!(
                    "{}: no time column found; give --time COLUMN (the columns are: {})",
                    entities_path.display(),
                    columns.join(", ")
                ))
            })?
        }
    };
    let spinner = Spinner::new("joining features as of each row's time");
    let joined = store.historical(&entities, &time, &refs);
    spinner.finish();
    let joined = joined?;
    FeatureStore::write_table(out, &joined)?;
    let added = joined.num_columns() - entities.num_columns();
    let missing: Vec<(String, usize)> = joined
        .schema()
        .fields()
        .iter()
        .zip(joined.columns())
        .skip(entities.num_columns())
        .map(|(field, column)| (field.name().clone(), column.null_count()))
        .collect();
    match format {
        Format::Json => output::json(&json!({
            "rows": joined.num_rows(),
            "features": added,
            "time_column": time,
            "out": out.display().to_string(),
            "missing": missing.iter().map(|(n, c)| (n.clone(), json!(c))).collect::<serde_json::Map<_, _>>(),
        })),
        Format::Text => {
            outln!(
                "Joined {} rows of {} with {added} features as of {time:?}; wrote {}",
                joined.num_rows(),
                entities_path.display(),
                out.display()
            )?;
            let with_missing: Vec<String> =
                missing.iter().filter(|(_, c)| *c > 0).map(|(n, c)| format!("{n} ({c})")).collect();
            if !with_missing.is_empty() {
                outln!(
                    "rows with no value (no earlier event, or older than the ttl): {}",
                    with_missing.join(", ")
                )?;
            }
            Ok(())
        }
    }
}
