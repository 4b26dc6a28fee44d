//! The batch engine: sources (files here, databases through `sources`)
//! ingested into the offline store, feature
//! views computed over the whole history with DataFusion (row-level SQL
//! expressions) and the window kernel (per-entity aggregations), and the
//! point-in-time join that builds training sets.
//!
//! DataFusion runs on a private multi-threaded tokio runtime; every public
//! function here blocks. The stream processor (`stream`) runs the same
//! compiled view (`compile`, `evaluate`) on micro-batches of events.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::array::{
    Array, ArrayRef, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray, UInt64Array,
};
use arrow::compute::{
    CastOptions, cast, cast_with_options, concat_batches, take, take_record_batch,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::datasource::MemTable;
use datafusion::prelude::{CsvReadOptions, JsonReadOptions, ParquetReadOptions, SessionContext};
use vigie_core::Config;
use vigie_core::config::{FeatureView, Source, SourceKind, parse_duration};

use crate::clean::Cleaning;
use crate::error::{FeatureError, Result};
use crate::index::ViewIndex;
use crate::offline::{Offline, SourceState};
use crate::sources;
use crate::window::{self, Cell, Event, WindowSpec, text_hash};

/// The event time column added to ingested rows (microseconds, UTC).
pub const TIME: &str = "_time";
/// The arrival number column added to ingested rows.
pub const ARRIVAL: &str = "_arrival";
/// The entity key column of a view's rows (text).
pub const KEY: &str = "_key";

/// What one ingest did.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestSummary {
    /// The source.
    pub source: String,
    /// Rows read from the source.
    pub read: usize,
    /// New rows stored (newer than the previous watermark).
    pub stored: usize,
    /// The latest event time stored, microseconds since the epoch.
    pub watermark: Option<i64>,
    /// Rows of a database source without a time (NULL, absent or not a date): never read.
    pub untimed: u64,
}

/// What computing a view did.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewSummary {
    /// The view.
    pub view: String,
    /// Feature rows written (one per accepted event).
    pub rows: usize,
    /// Distinct entity keys.
    pub keys: usize,
    /// Events that arrived later than the allowed lateness (dead letters, not counted).
    pub late: usize,
    /// Event days (partitions) written.
    pub days: usize,
}

/// A project's feature store: its configuration, offline store and SQL engine.
pub struct FeatureStore {
    project_dir: PathBuf,
    config: Config,
    offline: Offline,
    runtime: tokio::runtime::Runtime,
    /// Each view's learned cleaning, once read or learned.
    cleanings: Mutex<HashMap<String, Arc<Cleaning>>>,
}

fn known<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<&str> = names.map(String::as_str).collect();
    if names.is_empty() { "(none)".to_owned() } else { names.join(", ") }
}

/// `"name"`: a SQL identifier, quoted so that case and spaces survive.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn invalid(message: impl Into<String>) -> FeatureError {
    FeatureError::InvalidData(message.into())
}

fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

/// An event time as RFC 3339, for messages and summaries.
pub fn format_micros(time: i64) -> String {
    let seconds = time.div_euclid(1_000_000);
    let system = if seconds >= 0 {
        std::time::UNIX_EPOCH + Duration::from_secs(seconds.unsigned_abs())
    } else {
        std::time::UNIX_EPOCH - Duration::from_secs(seconds.unsigned_abs())
    };
    humantime::format_rfc3339_seconds(system).to_string()
}

impl FeatureStore {
    /// The store of the project in `project_dir`, configured by `config`.
    pub fn open(project_dir: &Path, config: Config) -> Result<Self> {
        let offline = if config.storage.offline.starts_with("s3://") {
            Offline::s3(&config.storage.offline)?
        } else {
            Offline::local(&project_dir.join(&config.storage.offline))?
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(std::thread::available_parallelism().map_or(2, usize::from))
            .thread_name("vigie-features")
            .enable_all()
            .build()
            .map_err(|e| {
                FeatureError::storage(project_dir)(format!("cannot start the SQL engine: {e}"))
            })?;
        Ok(FeatureStore {
            project_dir: project_dir.to_owned(),
            config,
            offline,
            runtime,
            cleanings: Mutex::new(HashMap::new()),
        })
    }

    /// The project's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The offline store.
    pub fn offline(&self) -> &Offline {
        &self.offline
    }

    fn source(&self, name: &str) -> Result<&Source> {
        self.config.sources.get(name).ok_or_else(|| FeatureError::Unknown {
            kind: "source",
            name: name.to_owned(),
            known: known(self.config.sources.keys()),
        })
    }

    /// What to run to store rows of `source`: `vigie ingest` for files and databases, the
    /// stream processor for streaming sources.
    pub(crate) fn how_to_fill(&self, source: &str) -> String {
        match self.config.sources.get(source).map(|s| *s.kind.get_ref()) {
            Some(SourceKind::Kafka) => {
                "run `vigie stream` (or `vigie serve`) to read its topic".to_owned()
            }
            Some(SourceKind::Http) => format!(
                "post its events to `vigie serve` (POST /v1/events/{source}), which stores them"
            ),
            _ => format!("run `vigie ingest {source}`"),
        }
    }

    /// A feature view's definition.
    pub fn view(&self, name: &str) -> Result<&FeatureView> {
        self.config.feature_views.get(name).ok_or_else(|| FeatureError::Unknown {
            kind: "feature view",
            name: name.to_owned(),
            known: known(self.config.feature_views.keys()),
        })
    }

    /// A fingerprint of a view's definition (and its source's), recorded with
    /// the runs that train on it: it changes whenever the features could.
    pub fn view_version(&self, name: &str) -> Result<String> {
        let view = self.view(name)?;
        let source = self.source(view.source.get_ref())?;
        let text = serde_json::to_string(&(view, source))
            .map_err(|e| invalid(format!("feature view {name:?}: {e}")))?;
        Ok(format!("{:016x}", text_hash(&text)))
    }

    /// The key column of a view's entity.
    pub fn entity_key(&self, view: &FeatureView) -> Result<&str> {
        let entity = view.entity.get_ref();
        self.config.entities.get(entity).map(|e| e.key.get_ref().as_str()).ok_or_else(|| {
            FeatureError::Unknown {
                kind: "entity",
                name: entity.clone(),
                known: known(self.config.entities.keys()),
            }
        })
    }

    /// Reads a CSV, JSON lines or Parquet file (or folder) into batches.
    pub fn read_file(&self, path: &Path, format: Option<&str>) -> Result<Vec<RecordBatch>> {
        if !path.exists() {
            return Err(FeatureError::storage(path)("no such file or folder".into()));
        }
        self.read_location(&path.display().to_string(), format)
    }

    /// Reads a file (or folder) at a local path or an `s3://BUCKET/KEY` URL (settings from
    /// the `AWS_*` environment, as the offline store's): CSV, JSON lines or Parquet, by
    /// `format` or else the extension.
    fn read_location(&self, location: &str, format: Option<&str>) -> Result<Vec<RecordBatch>> {
        let extension =
            Path::new(location).extension().and_then(|e| e.to_str()).unwrap_or_default().to_owned();
        let format = format.map_or_else(
            || match extension.as_str() {
                "json" | "jsonl" | "ndjson" => "jsonl".to_owned(),
                "parquet" | "pq" => "parquet".to_owned(),
                _ => "csv".to_owned(),
            },
            str::to_owned,
        );
        let dotted = format!(".{extension}");
        let context = format!("cannot read {location}");
        let ctx = SessionContext::new();
        if let Some(rest) = location.strip_prefix("s3://") {
            let bucket = rest.split('/').next().unwrap_or_default();
            let store = vigie_connectors::artifacts::ArtifactStore::s3(
                &format!("s3://{bucket}"),
                &vigie_connectors::artifacts::S3Options::default(),
            )
            .map_err(|error| FeatureError::Storage {
                path: location.into(),
                message: error.to_string(),
            })?;
            let url = url::Url::parse(&format!("s3://{bucket}"))
                .map_err(|e| invalid(format!("{location}: {e}")))?;
            ctx.register_object_store(&url, store.object_store());
        }
        self.runtime.block_on(async {
            let frame = match format.as_str() {
                "csv" => {
                    ctx.read_csv(location, CsvReadOptions::new().file_extension(&dotted)).await
                }
                "jsonl" => {
                    ctx.read_json(location, JsonReadOptions::default().file_extension(&dotted))
                        .await
                }
                _ => {
                    ctx.read_parquet(
                        location,
                        ParquetReadOptions::default().file_extension(&dotted),
                    )
                    .await
                }
            }
            .map_err(FeatureError::engine(context.clone()))?;
            frame.collect().await.map_err(FeatureError::engine(context))
        })
    }

    /// Reads a whole table file into one batch.
    pub fn read_table(&self, path: &Path) -> Result<RecordBatch> {
        let batches = self.read_file(path, None)?;
        let Some(first) = batches.first() else {
            return Err(invalid(format!("{}: no rows", path.display())));
        };
        concat_batches(&first.schema(), &batches)
            .map_err(|e| invalid(format!("{}: {e}", path.display())))
    }

    /// Writes a table as CSV, or Parquet when the path ends in `.parquet`.
    pub fn write_table(path: &Path, batch: &RecordBatch) -> Result<()> {
        let fail = |e: &dyn std::fmt::Display| FeatureError::storage(path)(e.to_string());
        let partial = path.with_extension("partial");
        let file = std::fs::File::create(&partial).map_err(|e| fail(&e))?;
        if path.extension().is_some_and(|e| e == "parquet") {
            let mut writer = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None)
                .map_err(|e| fail(&e))?;
            writer.write(batch).map_err(|e| fail(&e))?;
            writer.close().map_err(|e| fail(&e))?;
        } else {
            let mut writer = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .with_timestamp_format("%Y-%m-%dT%H:%M:%S%.f".to_owned())
                .build(std::io::BufWriter::new(file));
            writer.write(batch).map_err(|e| fail(&e))?;
        }
        std::fs::rename(&partial, path).map_err(|e| fail(&e))
    }

    /// Reads the new rows of `source` into the offline store: a file's rows later than the
    /// watermark, or a database's (PostgreSQL, MongoDB) read with the watermark pushed into
    /// the query. Either every new row is stored and the watermark moves, or (on any error,
    /// a source that goes away included) nothing is stored and the state stays as it was.
    pub fn ingest(&self, name: &str) -> Result<IngestSummary> {
        let source = self.source(name)?;
        let mut state = self.offline.state(name)?;
        let previous = state.watermark;
        let (batches, untimed, origin) = match source.kind.get_ref() {
            SourceKind::File => {
                let path_text =
                    source.path.as_ref().map(|p| p.get_ref().as_str()).unwrap_or_default();
                let format = source.format.as_ref().map(|f| f.get_ref().as_str());
                if path_text.starts_with("s3://") {
                    (self.read_location(path_text, format)?, 0, path_text.to_owned())
                } else {
                    let path = self.project_dir.join(path_text);
                    (self.read_file(&path, format)?, 0, path.display().to_string())
                }
            }
            SourceKind::Postgres | SourceKind::Mongodb => sources::read(name, source, previous)?,
            SourceKind::Http => {
                return Err(FeatureError::Unsupported(format!(
                    "source {name:?}: an http source takes events posted to `vigie serve` \
                     (POST /v1/events/{name}), which its stream processor (or `vigie stream`) \
                     stores; `vigie ingest` reads files, postgres and mongodb"
                )));
            }
            SourceKind::Kafka => {
                return Err(FeatureError::Unsupported(format!(
                    "source {name:?}: a kafka source is read by the stream processor \
                     (`vigie stream`, or `vigie serve`); `vigie ingest` reads files, postgres \
                     and mongodb"
                )));
            }
        };
        let timestamp = source.timestamp.get_ref();
        let target = self.offline.source_schema(name)?;
        let mut stored = Vec::new();
        let read: usize = batches.iter().map(RecordBatch::num_rows).sum();
        let first_arrival = state.next_arrival;
        if let Some(first) = batches.first().filter(|_| read > 0) {
            // The rows of one ingest arrive together: they are numbered in event-time order
            // (read order among equal times), so no row of one ingest is ever late.
            let all = concat_batches(&first.schema(), &batches)
                .map_err(|e| invalid(format!("{origin}: {e}")))?;
            let times = event_times(&all, timestamp, &origin, 0)?;
            let time_values = times
                .as_any()
                .downcast_ref::<TimestampMicrosecondArray>()
                .ok_or_else(|| invalid("internal: event times"))?;
            let mut keep: Vec<u32> = (0..all.num_rows())
                .filter(|&i| previous.is_none_or(|mark| time_values.value(i) > mark))
                .map(|i| i as u32)
                .collect();
            keep.sort_by_key(|&i| (time_values.value(i as usize), i));
            if !keep.is_empty() {
                let n = keep.len() as u64;
                stored.push(numbered(
                    &all,
                    &times,
                    keep,
                    state.next_arrival,
                    target.as_ref(),
                    &origin,
                )?);
                state.next_arrival += n;
                // No row of an ingest is late: no dead letter of it can be missing.
                state.last_part = None;
            }
        }
        let count: usize = stored.iter().map(RecordBatch::num_rows).sum();
        if count > 0 {
            let newest = stored
                .iter()
                .filter_map(|b| b.column_by_name(TIME))
                .filter_map(|c| c.as_any().downcast_ref::<TimestampMicrosecondArray>())
                .flat_map(|a| a.values().iter().copied())
                .max();
            self.offline.append(name, first_arrival, &stored)?;
            state.watermark = newest.max(previous);
            self.offline.set_state(name, &state)?;
        }
        Ok(IngestSummary {
            source: name.to_owned(),
            read,
            stored: count,
            watermark: state.watermark,
            untimed,
        })
    }

    /// Stores events of streaming source `name` as its next part, numbered in the order they
    /// arrived (so the lateness rule judges them as they arrived), and records with
    /// `position` how far its log or topic was read. `prepared` is the part made ahead by
    /// [`EventRows::prepare`], used when numbered from the source's next arrival. Returns
    /// the rows as stored (with `_time` and `_arrival`). The part and the state are written
    /// as by [`ingest`], so a crash between them redoes the same part.
    ///
    /// [`ingest`]: FeatureStore::ingest
    pub(crate) fn store_events(
        &self,
        name: &str,
        events: &EventRows<'_>,
        prepared: Option<PreparedPart>,
        position: impl FnOnce(&mut SourceState),
    ) -> Result<Option<RecordBatch>> {
        let mut state = self.offline.state(name)?;
        let stored = if events.batch.num_rows() == 0 {
            None
        } else {
            // A part numbered from another arrival (rows stored meanwhile) is made again.
            let part = match prepared.filter(|part| part.first == state.next_arrival) {
                Some(part) => part,
                None => events.prepare(name, state.next_arrival)?,
            };
            self.offline.append_encoded(name, part.first, part.bytes)?;
            state.last_part = Some(part.first);
            state.next_arrival += part.rows.num_rows() as u64;
            state.watermark = part.newest.max(state.watermark);
            Some(part.rows)
        };
        position(&mut state);
        self.offline.set_state(name, &state)?;
        Ok(stored)
    }

    /// Compiles view `name` for execution: the SQL of its row-level features and aggregation
    /// inputs over its source, its windows and its allowed lateness.
    pub(crate) fn compile(&self, name: &str) -> Result<Compiled> {
        let view = self.view(name)?;
        let key = self.entity_key(view)?.to_owned();
        let mut select = vec![
            format!("CAST({} AS VARCHAR) AS {}", quote(&key), quote(KEY)),
            quote(TIME),
            quote(ARRIVAL),
        ];
        for (feature, expression) in &view.columns {
            select.push(format!("({}) AS {}", expression.get_ref(), quote(feature)));
        }
        let mut specs = Vec::new();
        for (idx, aggregation) in view.aggregations.iter().enumerate() {
            let input = match &aggregation.column {
                Some(column) => match view.columns.get(column.get_ref()) {
                    Some(expression) => format!("({})", expression.get_ref()),
                    None => quote(column.get_ref()),
                },
                None => "1".to_owned(),
            };
            select.push(format!("{input} AS {}", quote(&format!("_agg{idx}"))));
            let window = parse_duration(aggregation.window.get_ref()).map_err(invalid)?;
            specs.push(WindowSpec {
                function: *aggregation.function.get_ref(),
                window: micros(window),
            });
        }
        let lateness = view
            .allowed_lateness
            .as_ref()
            .map(|l| parse_duration(l.get_ref()).map(micros))
            .transpose()
            .map_err(invalid)?
            .unwrap_or(0);
        Ok(Compiled {
            name: name.to_owned(),
            source: view.source.get_ref().clone(),
            key,
            sql: format!("SELECT {} FROM source", select.join(", ")),
            specs,
            lateness,
            columns: view.columns.keys().cloned().collect(),
            aggregations: view.aggregations.iter().map(|a| a.name.get_ref().clone()).collect(),
        })
    }

    /// Runs a compiled view's SQL over stored source rows (`batches`, of `schema`): one row
    /// per input row with its key, time, arrival, row-level features and aggregation inputs.
    /// An expression that does not plan is named with its feature.
    pub(crate) fn evaluate(
        &self,
        compiled: &Compiled,
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
    ) -> Result<RecordBatch> {
        let name = &compiled.name;
        let source = &compiled.source;
        for column in [compiled.key.as_str(), TIME, ARRIVAL] {
            if schema.field_with_name(column).is_err() {
                return Err(invalid(format!(
                    "feature view {name:?}: source {source:?} has no column {column:?} (the entity key); its columns are: {}",
                    schema
                        .fields()
                        .iter()
                        .map(|f| f.name().as_str())
                        .filter(|n| !n.starts_with('_'))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        let view = self.view(name)?;
        let context = format!("feature view {name:?}");
        let table = MemTable::try_new(schema, vec![batches])
            .map_err(FeatureError::engine(context.clone()))?;
        let ctx = SessionContext::new();
        let computed = self.runtime.block_on(async {
            ctx.register_table("source", Arc::new(table))
                .map_err(FeatureError::engine(context.clone()))?;
            let frame = match ctx.sql(&compiled.sql).await {
                Ok(frame) => frame,
                Err(error) => {
                    // Name the expression at fault: plan each one alone.
                    for (feature, expression) in &view.columns {
                        let alone = format!("SELECT ({}) FROM source", expression.get_ref());
                        if let Err(cause) = ctx.sql(&alone).await {
                            return Err(FeatureError::Engine {
                                context: format!(
                                    "feature view {name:?}: column {feature:?} = {:?}",
                                    expression.get_ref()
                                ),
                                source: cause,
                            });
                        }
                    }
                    return Err(FeatureError::engine(context.clone())(error));
                }
            };
            frame.collect().await.map_err(FeatureError::engine(context.clone()))
        })?;
        let Some(first) = computed.first() else {
            return Err(invalid(format!("feature view {name:?}: no rows")));
        };
        let rows =
            concat_batches(&first.schema(), &computed).map_err(|e| invalid(e.to_string()))?;
        if view.clean.is_empty() {
            return Ok(rows);
        }
        self.cleaning(name, &rows)?.apply(name, view, rows)
    }

    /// View `name`'s learned cleaning: as read or learned before, else as stored, else
    /// learned from `rows` (the view's evaluated rows) and stored, so that every later
    /// computation, batch or stream, cleans with the same statistics.
    fn cleaning(&self, name: &str, rows: &RecordBatch) -> Result<Arc<Cleaning>> {
        let view = self.view(name)?;
        let mut cache = self.cleanings.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(known) = cache.get(name).filter(|c| c.fits(view)) {
            return Ok(Arc::clone(known));
        }
        let cleaning = match self.offline.cleaning(name)? {
            Some(stored) if stored.fits(view) => stored,
            _ => {
                let learned = Cleaning::fit(name, view, rows)?;
                self.offline.set_cleaning(name, &learned)?;
                learned
            }
        };
        let cleaning = Arc::new(cleaning);
        cache.insert(name.to_owned(), Arc::clone(&cleaning));
        Ok(cleaning)
    }

    /// Forgets view `name`'s learned cleaning: its next computation learns it again
    /// from all the rows it computes (`vigie materialize --refit`).
    pub fn forget_cleaning(&self, name: &str) -> Result<()> {
        self.view(name)?;
        self.cleanings.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(name);
        self.offline.forget_cleaning(name)
    }

    /// Rows view `name`'s cleaning was learned from, if it has one.
    pub fn cleaning_rows(&self, name: &str) -> Result<Option<usize>> {
        let view = self.view(name)?;
        Ok(self.offline.cleaning(name)?.filter(|c| c.fits(view)).map(|c| c.rows))
    }

    /// Computes every row of a view from its source's history and replaces
    /// the view's rows in the offline store.
    pub fn compute_view(&self, name: &str) -> Result<ViewSummary> {
        let compiled = self.compile(name)?;
        let source = &compiled.source;
        let batches = self.offline.read_source(source)?;
        if batches.iter().all(|b| b.num_rows() == 0) {
            return Err(invalid(format!(
                "feature view {name:?}: source {source:?} has no rows yet; {}",
                self.how_to_fill(source)
            )));
        }
        let schema = batches[0].schema();
        let all = self.evaluate(&compiled, schema, batches)?;
        let (rows, late) = run_windows(&all, &compiled)?;
        let keys = rows
            .column_by_name(KEY)
            .and_then(|c| c.as_any().downcast_ref::<StringArray>())
            .map_or(0, |k| {
                let mut distinct: Vec<&str> = k.iter().flatten().collect();
                distinct.dedup();
                distinct.len()
            });
        let parts = by_day(&rows)?;
        self.offline.replace_view(name, &parts)?;
        Ok(ViewSummary {
            view: name.to_owned(),
            rows: rows.num_rows(),
            keys,
            late,
            days: parts.len(),
        })
    }

    /// A view's feature names, row-level first, in definition order.
    pub fn feature_names(view: &FeatureView) -> Vec<String> {
        view.columns
            .keys()
            .cloned()
            .chain(view.aggregations.iter().map(|a| a.name.get_ref().clone()))
            .collect()
    }

    /// Every computed row of a view, sorted by key, time and arrival.
    pub fn view_rows(&self, name: &str) -> Result<RecordBatch> {
        self.view_index(name, None)?.sorted_rows()
    }

    /// A view's computed rows indexed by key (see [`ViewIndex`]): the key, time and arrival
    /// columns, and the feature columns `features` (every column when `None`); only those
    /// are decoded. A named feature the view lacks is not an error here:
    /// [`ViewIndex::gather`] finds it missing.
    pub fn view_index(&self, name: &str, features: Option<&[&str]>) -> Result<ViewIndex> {
        self.view(name)?;
        let columns: Option<Vec<&str>> = features
            .map(|names| [KEY, TIME, ARRIVAL].into_iter().chain(names.iter().copied()).collect());
        let batches = self.offline.read_view_columns(name, columns.as_deref())?;
        if batches.is_empty() {
            return Err(invalid(format!(
                "feature view {name:?} has not been computed yet; run `vigie materialize {name}`"
            )));
        }
        ViewIndex::new(batches)
    }
}

/// The event time of every row of `batch`, from column `column`: ISO 8601
/// text or a date/timestamp type.
fn event_times(
    batch: &RecordBatch,
    column: &str,
    origin: &str,
    row_offset: usize,
) -> Result<ArrayRef> {
    let Some(values) = batch.column_by_name(column) else {
        return Err(invalid(format!(
            "{origin}: no timestamp column {column:?}; the columns are: {}",
            batch
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let wanted = DataType::Timestamp(TimeUnit::Microsecond, None);
    let times =
        cast_with_options(values, &wanted, &CastOptions { safe: true, ..CastOptions::default() })
            .map_err(|e| invalid(format!("{origin}: column {column:?}: {e}")))?;
    if let Some(row) = (0..times.len()).find(|&i| times.is_null(i)) {
        let shown = cast(values, &DataType::Utf8)
            .ok()
            .as_ref()
            .and_then(|t| t.as_any().downcast_ref::<StringArray>().map(|s| s.value(row).to_owned()))
            .filter(|s| !s.is_empty());
        return Err(invalid(format!(
            "{origin}: data row {}: column {column:?}: {} is not a time (write e.g. 2024-03-05T13:00:00)",
            row_offset + row + 1,
            shown.map_or("an empty cell".to_owned(), |s| format!("{s:?}"))
        )));
    }
    Ok(times)
}

/// The rows `keep` of `all`, in that order, with their event `times` and arrival numbers from
/// `first_arrival` appended as the `_time` and `_arrival` columns, cast to the source's types.
fn numbered(
    all: &RecordBatch,
    times: &ArrayRef,
    keep: Vec<u32>,
    first_arrival: u64,
    target: Option<&SchemaRef>,
    origin: &str,
) -> Result<RecordBatch> {
    let n = keep.len() as u64;
    // Every row in order (the stream's events): the columns as they are.
    let every_row =
        keep.len() == all.num_rows() && keep.iter().enumerate().all(|(i, &k)| i == k as usize);
    let mut columns: Vec<ArrayRef> = if every_row {
        let mut columns = all.columns().to_vec();
        columns.push(Arc::clone(times));
        columns
    } else {
        let indices = arrow::array::UInt32Array::from(keep);
        let mut columns: Vec<ArrayRef> = all
            .columns()
            .iter()
            .map(|c| take(c.as_ref(), &indices, None))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| invalid(format!("{origin}: {e}")))?;
        columns.push(take(times, &indices, None).map_err(|e| invalid(e.to_string()))?);
        columns
    };
    columns
        .push(Arc::new(UInt64Array::from((first_arrival..first_arrival + n).collect::<Vec<_>>())));
    let mut fields: Vec<Field> =
        all.schema().fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect();
    fields.push(Field::new(TIME, DataType::Timestamp(TimeUnit::Microsecond, None), false));
    fields.push(Field::new(ARRIVAL, DataType::UInt64, false));
    let out = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| invalid(format!("{origin}: {e}")))?;
    match target {
        Some(schema) => conform(&out, schema, origin),
        None => Ok(out),
    }
}

/// Casts a new part to the types of the source's first part, so one source has one schema.
fn conform(batch: &RecordBatch, schema: &SchemaRef, origin: &str) -> Result<RecordBatch> {
    let mut columns = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let column = batch.column_by_name(field.name()).ok_or_else(|| {
            invalid(format!("{origin}: column {:?} of the earlier rows is missing", field.name()))
        })?;
        let converted = cast(column, field.data_type()).map_err(|e| {
            invalid(format!(
                "{origin}: column {:?} cannot be read as {} like the earlier rows: {e}",
                field.name(),
                field.data_type()
            ))
        })?;
        columns.push(converted);
    }
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| invalid(e.to_string()))
}

/// Events of a streaming source as rows, before they are stored.
pub(crate) struct EventRows<'a> {
    /// The source columns.
    pub(crate) batch: &'a RecordBatch,
    /// Each row's event time, microseconds, as the events' checks read it.
    pub(crate) times: &'a [i64],
    /// The types of the source's stored columns, which a new part is cast to.
    pub(crate) target: Option<&'a SchemaRef>,
}

/// Events made into a part of their source: numbered, typed and encoded, not yet written.
pub(crate) struct PreparedPart {
    /// The arrival number of its first row.
    first: u64,
    /// Its rows, with `_time` and `_arrival`.
    rows: RecordBatch,
    /// Its Parquet object.
    bytes: Vec<u8>,
    /// The latest event time in it.
    newest: Option<i64>,
}

impl EventRows<'_> {
    /// The part these rows make when numbered from arrival `first`: pure computation, so the
    /// stream processor makes the next part on its reading thread.
    pub(crate) fn prepare(&self, source: &str, first: u64) -> Result<PreparedPart> {
        let origin = format!("source {source:?} (events)");
        let batch = self.batch;
        if self.times.len() != batch.num_rows() {
            return Err(invalid(format!(
                "internal: {origin}: {} times for {} rows",
                self.times.len(),
                batch.num_rows()
            )));
        }
        let newest = self.times.iter().copied().max();
        let times: ArrayRef = Arc::new(TimestampMicrosecondArray::from(self.times.to_vec()));
        let keep = (0..batch.num_rows() as u32).collect();
        let rows = numbered(batch, &times, keep, first, self.target, &origin)?;
        let bytes = crate::offline::encode_parquet(std::slice::from_ref(&rows))
            .map_err(|e| invalid(format!("{origin}: {e}")))?;
        Ok(PreparedPart { first, rows, bytes, newest })
    }
}

fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> Result<&'a T> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| invalid(format!("internal: column {name:?} missing or of the wrong type")))
}

/// The cells of an aggregation input column.
pub(crate) fn cells(values: &ArrayRef) -> Result<Vec<Cell>> {
    Ok(match values.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let text = cast(values, &DataType::Utf8).map_err(|e| invalid(e.to_string()))?;
            let text =
                text.as_any().downcast_ref::<StringArray>().ok_or_else(|| invalid("text"))?;
            text.iter().map(|v| v.map_or(Cell::Missing, |s| Cell::Text(text_hash(s)))).collect()
        }
        _ => {
            let numbers = cast(values, &DataType::Float64).map_err(|e| {
                invalid(format!("an aggregated column must be numeric or text: {e}"))
            })?;
            let numbers = numbers
                .as_any()
                .downcast_ref::<Float64Array>()
                .ok_or_else(|| invalid("numbers"))?;
            numbers.iter().map(|v| v.map_or(Cell::Missing, Cell::Number)).collect()
        }
    })
}

/// A view compiled for execution by the batch engine and the stream processor alike.
#[derive(Debug, Clone)]
pub(crate) struct Compiled {
    /// The view.
    pub(crate) name: String,
    /// Its source.
    pub(crate) source: String,
    /// The entity key column.
    key: String,
    /// The SQL of the row-level features and aggregation inputs over table `source`.
    sql: String,
    /// One window per aggregation.
    pub(crate) specs: Vec<WindowSpec>,
    /// The allowed lateness, microseconds.
    pub(crate) lateness: i64,
    /// Row-level feature names, in definition order.
    pub(crate) columns: Vec<String>,
    /// Aggregation names, in definition order.
    pub(crate) aggregations: Vec<String>,
}

/// The window kernel's events of evaluated rows (see [`FeatureStore::evaluate`]), in row order.
pub(crate) fn events(all: &RecordBatch, specs: usize) -> Result<Vec<Event>> {
    let keys_column = cast(
        all.column_by_name(KEY).ok_or_else(|| invalid("internal: no key column"))?,
        &DataType::Utf8,
    )
    .map_err(|e| invalid(e.to_string()))?;
    let keys = keys_column.as_any().downcast_ref::<StringArray>().ok_or_else(|| invalid("keys"))?;
    let times = column::<TimestampMicrosecondArray>(all, TIME)?;
    let arrivals = column::<UInt64Array>(all, ARRIVAL)?;
    let n = all.num_rows();
    if let Some(row) = (0..n).find(|&i| keys.is_null(i)) {
        return Err(invalid(format!(
            "the entity key is empty on ingested row {}",
            arrivals.value(row) + 1
        )));
    }
    let inputs: Vec<Vec<Cell>> = (0..specs)
        .map(|idx| {
            all.column_by_name(&format!("_agg{idx}"))
                .ok_or_else(|| invalid("internal: aggregation input"))
                .and_then(cells)
        })
        .collect::<Result<_>>()?;
    Ok((0..n)
        .map(|i| Event {
            key: keys.value(i).to_owned(),
            time: times.value(i),
            arrival: arrivals.value(i),
            cells: inputs.iter().map(|column| column[i]).collect(),
        })
        .collect())
}

/// A row-level feature column as views store it: text as UTF-8, booleans and every
/// numeric type as `Float64`, anything else as computed.
pub(crate) fn feature_array(values: &ArrayRef) -> Result<ArrayRef> {
    Ok(match values.data_type() {
        DataType::Utf8View | DataType::LargeUtf8 => {
            cast(values, &DataType::Utf8).map_err(|e| invalid(e.to_string()))?
        }
        DataType::Boolean
        | DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64
        | DataType::Float32 => {
            cast(values, &DataType::Float64).map_err(|e| invalid(e.to_string()))?
        }
        _ => values.clone(),
    })
}

/// Runs the lateness rule and the windows over evaluated rows; returns the
/// view's rows (key, time, arrival, row-level features, aggregations) and how
/// many events were late.
fn run_windows(all: &RecordBatch, compiled: &Compiled) -> Result<(RecordBatch, usize)> {
    let specs = &compiled.specs;
    let events = events(all, specs.len())?;
    // The arrival numbers are distinct: they index the rows back.
    let row_of: std::collections::HashMap<u64, usize> =
        events.iter().enumerate().map(|(i, e)| (e.arrival, i)).collect();
    let (results, late_arrivals) = window::batch(&events, specs, compiled.lateness);
    drop(events);
    let late = late_arrivals.len();
    let mut order = Vec::with_capacity(results.len());
    let mut outputs: Vec<Vec<f64>> = vec![Vec::with_capacity(results.len()); specs.len()];
    for result in results {
        order.push(
            row_of.get(&result.arrival).copied().ok_or_else(|| invalid("internal: arrival"))?,
        );
        for (values, value) in outputs.iter_mut().zip(result.values) {
            values.push(value);
        }
    }
    let indices =
        arrow::array::UInt32Array::from(order.iter().map(|&i| i as u32).collect::<Vec<_>>());
    let mut fields = vec![
        Field::new(KEY, DataType::Utf8, false),
        Field::new(TIME, DataType::Timestamp(TimeUnit::Microsecond, None), false),
        Field::new(ARRIVAL, DataType::UInt64, false),
    ];
    let pick = |array: &dyn Array| take(array, &indices, None).map_err(|e| invalid(e.to_string()));
    let keys = cast(
        all.column_by_name(KEY).ok_or_else(|| invalid("internal: no key column"))?,
        &DataType::Utf8,
    )
    .map_err(|e| invalid(e.to_string()))?;
    let mut columns: Vec<ArrayRef> = vec![
        pick(keys.as_ref())?,
        pick(column::<TimestampMicrosecondArray>(all, TIME)?)?,
        pick(column::<UInt64Array>(all, ARRIVAL)?)?,
    ];
    for feature in &compiled.columns {
        let values = feature_array(
            all.column_by_name(feature).ok_or_else(|| invalid("internal: feature column"))?,
        )?;
        fields.push(Field::new(feature, values.data_type().clone(), true));
        columns.push(pick(values.as_ref())?);
    }
    for (name, values) in compiled.aggregations.iter().zip(outputs) {
        fields.push(Field::new(name, DataType::Float64, true));
        columns.push(Arc::new(Float64Array::from(values)));
    }
    let rows = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| invalid(e.to_string()))?;
    Ok((rows, late))
}

/// Splits view rows by the UTC day of their event time.
fn by_day(rows: &RecordBatch) -> Result<Vec<(String, Vec<RecordBatch>)>> {
    let times = column::<TimestampMicrosecondArray>(rows, TIME)?;
    let mut days: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for i in 0..rows.num_rows() {
        let day = format_micros(times.value(i)).chars().take(10).collect::<String>();
        days.entry(day).or_default().push(i as u32);
    }
    days.into_iter()
        .map(|(day, indices)| {
            let batch = take_record_batch(rows, &arrow::array::UInt32Array::from(indices))
                .map_err(|e| invalid(e.to_string()))?;
            Ok((day, vec![batch]))
        })
        .collect()
}
