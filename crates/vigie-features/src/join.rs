//! The point-in-time join: each row of an entity table (keys, an event time,
//! usually a label) gets every requested feature as it was at that time: the
//! view row of the same key with the latest time not after the row's time,
//! and none when that row is older than the view's time-to-live. No value
//! from after a row's time can reach it (a property test checks it against a
//! nested loop). The view's rows are found through a [`ViewIndex`], which
//! groups them by key without sorting them, and only the requested features
//! are decoded and gathered.
//!
//! [`ViewIndex`]: crate::index::ViewIndex

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::compute::{CastOptions, cast, cast_with_options};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use vigie_core::config::parse_duration;
use vigie_core::lineage::{StoreInput, StoreInputs};

use crate::engine::{FeatureStore, TIME};
use crate::error::{FeatureError, Result};

/// One requested feature: `VIEW:FEATURE`, or `VIEW:*` for all of a view's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureRef {
    /// The view.
    pub view: String,
    /// The feature, or `*`.
    pub feature: String,
}

impl std::str::FromStr for FeatureRef {
    type Err = FeatureError;

    fn from_str(text: &str) -> Result<Self> {
        let (view, feature) = text.split_once(':').ok_or_else(|| {
            FeatureError::InvalidData(format!("{text:?} is not VIEW:FEATURE or VIEW:*"))
        })?;
        Ok(FeatureRef { view: view.trim().to_owned(), feature: feature.trim().to_owned() })
    }
}

fn invalid(message: impl Into<String>) -> FeatureError {
    FeatureError::InvalidData(message.into())
}

impl FeatureStore {
    /// Joins `entities` with `features` as of the time in `time_column`.
    ///
    /// The entity table must hold each requested view's entity key column.
    /// The result is the entity table followed by one column per feature
    /// (named after the feature; `VIEW:FEATURE` when two views share a name).
    pub fn historical(
        &self,
        entities: &RecordBatch,
        time_column: &str,
        features: &[FeatureRef],
    ) -> Result<RecordBatch> {
        let columns_list = || {
            entities
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let times_raw = entities.column_by_name(time_column).ok_or_else(|| {
            invalid(format!(
                "the entity table has no time column {time_column:?}; its columns are: {}",
                columns_list()
            ))
        })?;
        let times = cast_with_options(
            times_raw,
            &DataType::Timestamp(TimeUnit::Microsecond, None),
            &CastOptions { safe: true, ..CastOptions::default() },
        )
        .map_err(|e| invalid(format!("time column {time_column:?}: {e}")))?;
        if let Some(row) = (0..times.len()).find(|&i| times.is_null(i)) {
            let shown = cast(times_raw, &DataType::Utf8)
                .ok()
                .and_then(|t| {
                    t.as_any().downcast_ref::<StringArray>().map(|s| s.value(row).to_owned())
                })
                .unwrap_or_default();
            return Err(invalid(format!(
                "entity table: data row {}: time column {time_column:?}: {shown:?} is not a time",
                row + 1
            )));
        }
        let times = times
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .ok_or_else(|| invalid("internal: times"))?
            .values()
            .to_vec();

        let planned = self.plan_columns(entities, features)?;

        let mut fields: Vec<Field> =
            entities.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
        let mut columns: Vec<ArrayRef> = entities.columns().to_vec();
        for PlannedView { view: view_name, columns: names } in &planned {
            let view = self.view(view_name)?;
            let key = self.entity_key(view)?;
            let key_values = entities.column_by_name(key).ok_or_else(|| {
                invalid(format!(
                    "feature view {view_name:?} is keyed by {key:?}, which the entity table lacks; its columns are: {}",
                    columns_list()
                ))
            })?;
            let key_text = cast(key_values, &DataType::Utf8).map_err(|e| invalid(e.to_string()))?;
            let key_text =
                key_text.as_any().downcast_ref::<StringArray>().ok_or_else(|| invalid("keys"))?;
            let ttl = Self::ttl_micros(view)?;
            let wanted: Vec<&str> = names.iter().map(|(name, _)| name.as_str()).collect();
            let index = self.view_index(view_name, Some(&wanted))?;
            let picks = index.as_of(key_text, &times, ttl);
            let gathered = index.gather_columns(&wanted, &picks)?;
            for ((name, output), joined) in names.iter().zip(gathered) {
                let joined = joined.ok_or_else(|| {
                    invalid(format!(
                        "feature view {view_name:?} has no computed column {name:?}; run `vigie materialize {view_name}`"
                    ))
                })?;
                fields.push(Field::new(output, joined.data_type().clone(), true));
                columns.push(joined);
            }
        }
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
            .map_err(|e| invalid(e.to_string()))
    }
}

/// The features of one view that a join adds, with their output columns.
struct PlannedView {
    view: String,
    /// (feature, output column), in request order.
    columns: Vec<(String, String)>,
}

impl FeatureStore {
    /// The requested features grouped by view, in request order, each with
    /// its output column: the feature's name, or `VIEW:FEATURE` when two
    /// views share the name or the entity table already has such a column.
    fn plan_columns(
        &self,
        entities: &RecordBatch,
        features: &[FeatureRef],
    ) -> Result<Vec<PlannedView>> {
        let mut by_view: Vec<(String, Vec<String>)> = Vec::new();
        for feature in features {
            let view = self.view(&feature.view)?;
            let names = Self::feature_names(view);
            let wanted: Vec<String> = if feature.feature == "*" {
                names
            } else if names.contains(&feature.feature) {
                vec![feature.feature.clone()]
            } else {
                return Err(invalid(format!(
                    "feature view {:?} has no feature {:?}; its features are: {}",
                    feature.view,
                    feature.feature,
                    names.join(", ")
                )));
            };
            match by_view.iter_mut().find(|(v, _)| *v == feature.view) {
                Some((_, list)) => list.extend(wanted),
                None => by_view.push((feature.view.clone(), wanted)),
            }
        }
        let mut counts: HashMap<String, usize> = HashMap::new();
        for (_, names) in &by_view {
            for name in names {
                *counts.entry(name.clone()).or_default() += 1;
            }
        }
        let schema = entities.schema();
        let output = |view: &str, name: &String| {
            if counts.get(name).copied().unwrap_or(0) > 1 || schema.field_with_name(name).is_ok() {
                format!("{view}:{name}")
            } else {
                name.clone()
            }
        };
        Ok(by_view
            .iter()
            .map(|(view, names)| PlannedView {
                view: view.clone(),
                columns: names.iter().map(|n| (n.clone(), output(view, n))).collect(),
            })
            .collect())
    }

    /// A view's time-to-live in microseconds, if it has one.
    fn ttl_micros(view: &vigie_core::config::FeatureView) -> Result<Option<i64>> {
        Ok(view
            .ttl
            .as_ref()
            .map(|t| parse_duration(t.get_ref()))
            .transpose()
            .map_err(invalid)?
            .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX)))
    }

    /// Where each model input of a join of `entities` with `features` comes
    /// from, for the model card: what the server needs to read them online.
    fn store_inputs(
        &self,
        entity: &str,
        entities: &RecordBatch,
        features: &[FeatureRef],
    ) -> Result<StoreInputs> {
        let key = self.config().entities.get(entity).map(|e| e.key.get_ref().clone()).ok_or_else(
            || FeatureError::Unknown {
                kind: "entity",
                name: entity.to_owned(),
                known: self.config().entities.keys().cloned().collect::<Vec<_>>().join(", "),
            },
        )?;
        let mut inputs = Vec::new();
        for planned in self.plan_columns(entities, features)? {
            let view = self.view(&planned.view)?;
            let view_key = self.entity_key(view)?.to_owned();
            let ttl_micros = Self::ttl_micros(view)?;
            for (feature, column) in planned.columns {
                inputs.push(StoreInput {
                    view: planned.view.clone(),
                    feature,
                    column,
                    key: view_key.clone(),
                    ttl_micros,
                });
            }
        }
        Ok(StoreInputs { entity: entity.to_owned(), key, inputs })
    }
}

/// A model's training table, built from the store.
#[derive(Debug, Clone)]
pub struct TrainingTable {
    /// The label column followed by the features, one row per labelled row.
    pub table: RecordBatch,
    /// The label column's name.
    pub label: String,
    /// Where it came from, for the model card (`labels SOURCE + VIEW:FEATURE, ...`).
    pub source: String,
    /// Where each feature column comes from, for serving by entity key.
    pub inputs: StoreInputs,
}

impl FeatureStore {
    /// The training table of `[models.NAME]`: every row of its label source,
    /// joined as of its event time with the model's features.
    pub fn training_table(&self, name: &str) -> Result<TrainingTable> {
        let spec = self.config().models.get(name).ok_or_else(|| FeatureError::Unknown {
            kind: "model",
            name: name.to_owned(),
            known: {
                let names: Vec<&str> = self.config().models.keys().map(String::as_str).collect();
                if names.is_empty() { "(none)".to_owned() } else { names.join(", ") }
            },
        })?;
        let source = spec.labels.get_ref();
        let batches = self.offline().read_source(source)?;
        let Some(first) = batches.first() else {
            return Err(invalid(format!(
                "model {name:?}: label source {source:?} has no rows yet; {}",
                self.how_to_fill(source)
            )));
        };
        let labels = arrow::compute::concat_batches(&first.schema(), &batches)
            .map_err(|e| invalid(e.to_string()))?;
        if labels.column_by_name(&spec.label).is_none() {
            return Err(invalid(format!(
                "model {name:?}: label source {source:?} has no column {:?}",
                spec.label
            )));
        }
        let features: Vec<FeatureRef> =
            spec.features.iter().map(|f| f.get_ref().parse()).collect::<Result<_>>()?;
        // Only the columns the join reads, so a feature is never renamed for clashing with
        // another column of the label source.
        let mut keep: Vec<usize> = Vec::new();
        for feature in &features {
            let key = self.entity_key(self.view(&feature.view)?)?;
            let idx = labels.schema().index_of(key).map_err(|_| {
                invalid(format!(
                    "model {name:?}: label source {source:?} has no column {key:?}, the key of feature view {:?}",
                    feature.view
                ))
            })?;
            if !keep.contains(&idx) {
                keep.push(idx);
            }
        }
        for column in [TIME, spec.label.as_str()] {
            let idx = labels.schema().index_of(column).map_err(|e| invalid(e.to_string()))?;
            if !keep.contains(&idx) {
                keep.push(idx);
            }
        }
        let labels = labels.project(&keep).map_err(|e| invalid(e.to_string()))?;
        let joined = self.historical(&labels, TIME, &features)?;
        let inputs = self.store_inputs(spec.entity.get_ref(), &labels, &features)?;
        let first_feature = labels.num_columns();
        let schema = joined.schema();
        let label_at = schema.index_of(&spec.label).map_err(|e| invalid(e.to_string()))?;
        let mut fields = vec![schema.field(label_at).clone()];
        let mut columns = vec![joined.column(label_at).clone()];
        for idx in first_feature..joined.num_columns() {
            fields.push(schema.field(idx).clone());
            columns.push(joined.column(idx).clone());
        }
        let table = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
            .map_err(|e| invalid(e.to_string()))?;
        let listed: Vec<&str> = spec.features.iter().map(|f| f.get_ref().as_str()).collect();
        Ok(TrainingTable {
            table,
            label: spec.label.clone(),
            source: format!("labels {source} + {}", listed.join(", ")),
            inputs,
        })
    }
}
