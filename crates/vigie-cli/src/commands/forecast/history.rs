//! A forecast model's history from the feature store, for `vigie train MODEL`: the
//! rows of its source, or of its feature view as the batch engine computes them,
//! brought up to date and shaped like the table `vigie train --task forecast --data
//! FILE` reads, so one code path trains both.
//!
//! Which rows. A source: every row stored in the offline store, in event-time order,
//! after ingesting its new rows (files, PostgreSQL, MongoDB; a streaming source's
//! events are stored by the stream processor). A view: every row `vigie materialize`
//! computes (one per event of its source, late events excluded; sorted by key and
//! time), after ingesting its source and recomputing the view's offline rows (the
//! online store is left to `vigie materialize`). The time is the source's event time
//! (a view's rows are at their event's time); a view's series are its entity keys,
//! under the key column's name. As with a file, rows without a target give future
//! covariates and are not trained on, and each series must have one row per period
//! (duplicate times and gaps are errors naming the series and the times) unless the
//! model's `aggregate` groups them into periods (`vigie_ml::forecast::split_frame`).
//!
//! Not here: the modelling (`vigie_ml::forecast`), the settings' checks (`Request`).

use std::path::Path;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema};

use serde_json::{Value as Json, json};
use vigie_core::config::{ForecastHistory, ForecastSpec};
use vigie_core::{Column, Frame};
use vigie_features::FeatureStore;
use vigie_features::engine::{KEY, TIME};
use vigie_ml::forecast::ColumnRoles;

use crate::commands::UsageError;
use crate::commands::features::ingest_batch_source;
use crate::progress::Spinner;

/// Where the rows come from.
enum Kind {
    /// A source: its name and timestamp column.
    Source { name: String, timestamp: String },
    /// A feature view: its name, its source's name and its entity's key column.
    View { name: String, source: String, key: String },
}

/// What bringing the history up to date did.
#[derive(Debug, Default)]
pub struct Refreshed {
    /// The source ingested and its rows newly stored (none for a streaming source).
    ingested: Option<(String, usize)>,
    /// The view recomputed: its rows and the late events left out.
    computed: Option<(String, usize, usize)>,
    /// Rows of the history read.
    rows: usize,
}

impl Refreshed {
    /// The summary's `history` object.
    pub fn json(&self) -> Json {
        json!({
            "ingested": self.ingested.as_ref().map(|(source, stored)| json!({"source": source, "stored": stored})),
            "computed": self.computed.as_ref().map(|(view, rows, late)| json!({"view": view, "rows": rows, "late": late})),
            "rows": self.rows,
        })
    }

    /// One line for people.
    pub fn sentence(&self) -> String {
        let mut parts = Vec::new();
        if let Some((source, stored)) = &self.ingested {
            parts.push(format!("ingested {stored} new rows of {source}"));
        }
        if let Some((view, rows, late)) = &self.computed {
            let late =
                if *late > 0 { format!(", {late} late events left out") } else { String::new() };
            parts.push(format!("computed {view}: {rows} rows{late}"));
        }
        parts.push(format!("read {} history rows", self.rows));
        crate::output::sentence(&parts)
    }
}

/// A forecast model's history in the feature store: its column names, where its rows
/// come from and, once [`StoreHistory::read`], what bringing them up to date did.
pub struct StoreHistory {
    /// `source "sales"` or `feature view "daily"`, for messages and the model card.
    pub description: String,
    /// The order of the rows read, for messages that number them.
    pub order: &'static str,
    /// The time column of the table.
    pub time: String,
    /// The series columns of the table.
    pub series: Vec<String>,
    /// Tags of the training run: the view's definition fingerprint.
    pub lineage: Vec<(String, String)>,
    /// What [`StoreHistory::read`] did.
    pub refreshed: Refreshed,
    kind: Kind,
}

/// Where `spec`'s history is and how its table's columns are named (no I/O).
pub fn plan(store: &FeatureStore, spec: &ForecastSpec) -> anyhow::Result<StoreHistory> {
    let config = store.config();
    let timestamp_of = |source: &str| {
        config.sources.get(source).map(|s| s.timestamp.get_ref().clone()).ok_or_else(|| {
            UsageError(format!("vigie.toml has no source {source:?}; check `[models]`"))
        })
    };
    let (description, order, kind, default_series, lineage) = match &spec.history {
        ForecastHistory::Source(name) => {
            let timestamp = timestamp_of(name)?;
            let kind = Kind::Source { name: name.clone(), timestamp };
            (format!("source {name:?}"), "in event-time order", kind, Vec::new(), Vec::new())
        }
        ForecastHistory::View(name) => {
            let view = store.view(name)?;
            let key = store.entity_key(view)?.to_owned();
            let source = view.source.get_ref().clone();
            let lineage = vec![(format!("feature_view.{name}"), store.view_version(name)?)];
            let kind = Kind::View { name: name.clone(), source, key: key.clone() };
            (format!("feature view {name:?}"), "sorted by key and time", kind, vec![key], lineage)
        }
    };
    let time = match (&spec.time, &kind) {
        (Some(time), _) => time.clone(),
        (None, Kind::Source { timestamp, .. }) => timestamp.clone(),
        (None, Kind::View { source, .. }) => timestamp_of(source)?,
    };
    let series = if spec.series.is_empty() { default_series } else { spec.series.clone() };
    Ok(StoreHistory {
        description,
        order,
        time,
        series,
        lineage,
        refreshed: Refreshed::default(),
        kind,
    })
}

impl StoreHistory {
    /// Brings the rows up to date and reads the columns `roles` names, under their names.
    pub fn read(&mut self, store: &FeatureStore, roles: &ColumnRoles) -> anyhow::Result<Frame> {
        let source = match &self.kind {
            Kind::Source { name, .. } | Kind::View { source: name, .. } => name.clone(),
        };
        self.refreshed.ingested = ingest_batch_source(store, &source)?;
        // (column in the store, column of the table), in the roles' order.
        let mut picks: Vec<(&str, &str)> = Vec::new();
        // A stored column to read as the text it was written as.
        let mut as_text: Option<&str> = None;
        let (batches, noun) = match &self.kind {
            Kind::Source { name, timestamp } => {
                let batches = store.offline().read_source(name)?;
                if batches.iter().all(|b| b.num_rows() == 0) {
                    let how = if self.refreshed.ingested.is_some() {
                        ""
                    } else {
                        "; its events are stored by `vigie serve` or `vigie stream`"
                    };
                    return Err(UsageError(format!("source {name:?} has no rows yet{how}")).into());
                }
                // With a time zone, a timestamp stored as written (text, or a date or time
                // without a zone) is read on the zone's clock, as a file's is, rather than as
                // the UTC instant ingest took it for. Otherwise the event time ingest parsed.
                let schema = batches[0].schema();
                let wall_clock = roles.timezone.is_some()
                    && schema.field_with_name(timestamp).is_ok_and(|field| {
                        matches!(
                            field.data_type(),
                            DataType::Utf8
                                | DataType::LargeUtf8
                                | DataType::Date32
                                | DataType::Date64
                                | DataType::Timestamp(_, None)
                        )
                    });
                for column in roles.columns() {
                    let stored = if column == timestamp && !wall_clock { TIME } else { column };
                    picks.push((stored, column));
                }
                if wall_clock {
                    as_text = Some(timestamp.as_str());
                }
                (batches, "column")
            }
            Kind::View { name, key, .. } => {
                let spinner = Spinner::new(&format!("computing {name}"));
                let computed = store.compute_view(name);
                spinner.finish();
                let summary = computed?;
                self.refreshed.computed = Some((name.clone(), summary.rows, summary.late));
                for column in roles.columns() {
                    let stored = if column == roles.time {
                        TIME
                    } else if column == key && roles.series.contains(key) {
                        KEY
                    } else {
                        column
                    };
                    picks.push((stored, column));
                }
                (vec![store.view_rows(name)?], "feature")
            }
        };
        let schema = batches[0].schema();
        let fields: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let mut indices = Vec::with_capacity(picks.len());
        for (stored, column) in &picks {
            let idx = fields.iter().position(|f| f == stored).ok_or_else(|| {
                // The store's own columns (`_time`, `_key`…) are not the user's.
                let listed: Vec<&str> =
                    fields.iter().copied().filter(|f| !f.starts_with('_')).collect();
                UsageError(format!(
                    "{}: {} has no {noun} {stored:?}; its {noun}s are: {}",
                    roles.role_of(column),
                    self.description,
                    listed.join(", ")
                ))
            })?;
            indices.push(idx);
        }
        let mut projected =
            batches.iter().map(|b| b.project(&indices)).collect::<Result<Vec<_>, _>>()?;
        if let Some(column) = as_text {
            projected =
                projected.iter().map(|b| column_as_text(b, column)).collect::<Result<_, _>>()?;
        }
        let frame = vigie_connectors::files::frame_from_batches(
            Path::new(&self.description),
            &projected[0].schema(),
            &projected,
        )?;
        self.refreshed.rows = frame.n_rows();
        let columns: Vec<Column> = frame
            .columns()
            .iter()
            .zip(&picks)
            .map(|(column, (_, name))| Column {
                name: (*name).to_owned(),
                data: column.data.clone(),
            })
            .collect();
        Ok(Frame::new(columns)?)
    }
}

/// `batch` with its column `name` cast to text: dates and times without a zone as ISO 8601
/// (`2024-03-10T02:30:00`), which the model then reads on its zone's clock.
fn column_as_text(batch: &RecordBatch, name: &str) -> anyhow::Result<RecordBatch> {
    let schema = batch.schema();
    let idx = schema.index_of(name)?;
    let mut columns = batch.columns().to_vec();
    columns[idx] = arrow::compute::cast(&columns[idx], &DataType::Utf8)?;
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields[idx] = Field::new(name, DataType::Utf8, true);
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?)
}
