//! `vigie-bench-features`: times Vigie's feature store on the data that
//! `bench/features.py` writes, and prints one JSON object per command for it
//! to put next to Feast and Polars.
//!
//! What is timed:
//! - `join`: [`FeatureStore::historical`] with the entity table already in
//!   memory, what `vigie features history` runs between reading the entity
//!   file and writing the result: reading the view's Parquet parts from the
//!   offline store, grouping their rows by key ([`ViewIndex`]), the as-of
//!   search per row and gathering every feature column. Reading the entity file and the
//!   view's computation (`vigie materialize`) are timed apart, as setup.
//! - `online`: [`OnlineStore::get`] of one key on a read-only store, as the
//!   server reads it (SQLite lookup and JSON decoding of the row), one call
//!   per key, after a warm-up pass over other keys.
//! - `stream`: [`StreamProcessor::catch_up`] over events already in a Kafka
//!   topic (or an HTTP source's event log), from poll to online write; the
//!   consumer group is joined on a warm-up batch first, untimed.
//!
//! Timings never appear in tests; only `bench/features.sh` runs this.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use arrow::array::{Array, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{Value as Json, json};
use vigie_core::Config;
use vigie_features::online::materialize;
use vigie_features::{
    EventLog, FeatureRef, FeatureStore, OnlineLocation, OnlineStore, StepSummary, StreamProcessor,
    ViewIndex,
};

/// The feature view every join and online read asks for.
const VIEW: &str = "customer_stats";

/// Command-line arguments.
#[derive(Debug, Parser)]
#[command(about = "Times Vigie's feature store (join, online read, stream); prints JSON")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Point-in-time join of an entity table with every feature of a view.
    Join(JoinArgs),
    /// Online reads of one entity's features, one key per call.
    Online(OnlineArgs),
    /// Events per second through the stream processor into the online store.
    Stream(StreamArgs),
}

#[derive(Debug, clap::Args)]
struct JoinArgs {
    /// Project folder (written here: vigie.toml and the offline store).
    #[arg(long)]
    project: PathBuf,
    /// Feature rows (Parquet: customer_id, ts, f00..fNN).
    #[arg(long)]
    features: PathBuf,
    /// Entity rows (Parquet: customer_id, event_timestamp, label, row).
    #[arg(long)]
    entities: PathBuf,
    /// Feature columns f00.. in the feature file.
    #[arg(long, default_value_t = 20)]
    n_features: usize,
    /// The view's time-to-live.
    #[arg(long, default_value = "7d")]
    ttl: String,
    /// Timed joins (the median counts).
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Where to write the joined table (Parquet, untimed), for the agreement check.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct OnlineArgs {
    /// A project that `join` computed the view of.
    #[arg(long)]
    project: PathBuf,
    /// Feature columns f00.. of the view.
    #[arg(long, default_value_t = 20)]
    n_features: usize,
    /// Keys to read, one per line, in order.
    #[arg(long)]
    keys: PathBuf,
    /// Keys read before timing (from the end of the list, so the timed ones are not cached
    /// by having just been read).
    #[arg(long, default_value_t = 1000)]
    warmup: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum StreamSource {
    /// A Kafka topic on a real broker.
    Kafka,
    /// An HTTP source's event log (what `vigie serve` appends posted events to).
    Http,
}

#[derive(Debug, clap::Args)]
struct StreamArgs {
    /// Where the events come from.
    #[arg(long, value_enum, default_value = "kafka")]
    source: StreamSource,
    /// Project folder (emptied first).
    #[arg(long)]
    project: PathBuf,
    /// Kafka brokers (`host:port`), for `--source kafka`.
    #[arg(long, env = "VIGIE_TEST_KAFKA_BROKERS")]
    brokers: Option<String>,
    /// Timed events.
    #[arg(long, default_value_t = 1_000_000)]
    events: usize,
    /// Events processed before timing (joins the consumer group, opens the log).
    #[arg(long, default_value_t = 20_000)]
    warmup: usize,
    /// Distinct customers (entity keys).
    #[arg(long, default_value_t = 10_000)]
    customers: u64,
    /// Partitions of the topic (events keyed by customer).
    #[arg(long, default_value_t = 2)]
    partitions: i32,
    /// Events per append to the HTTP source's log (one request of `vigie serve` each).
    #[arg(long, default_value_t = 1000)]
    request_events: usize,
    /// Seed of the event generator.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let report = match args.command {
        Command::Join(join) => run_join(&join)?,
        Command::Online(online) => run_online(&online)?,
        Command::Stream(stream) => run_stream(&stream)?,
    };
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// Timing summary of repeated single calls, in microseconds.
fn summarize(mut nanos: Vec<f64>) -> Json {
    if nanos.is_empty() {
        return Json::Null;
    }
    nanos.sort_by(f64::total_cmp);
    let n = nanos.len();
    let quantile = |q: f64| nanos[((q * (n - 1) as f64).round() as usize).min(n - 1)] / 1e3;
    json!({
        "median": quantile(0.5),
        "p90": quantile(0.9),
        "p99": quantile(0.99),
        "p999": quantile(0.999),
        "max": nanos[n - 1] / 1e3,
        "mean": nanos.iter().sum::<f64>() / n as f64 / 1e3,
        "calls": n,
    })
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Peak resident memory of this process in MiB, where the OS tells it.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// CPU seconds used so far by this thread, and by the whole process (every thread, ended
/// ones included), where Linux tells them: `/proc/thread-self/schedstat` (nanoseconds) and
/// `/proc/self/stat` (clock ticks, 100 a second on Linux).
fn cpu_seconds() -> (Option<f64>, Option<f64>) {
    let thread = std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse::<f64>().ok())
        .map(|nanos| nanos / 1e9);
    let process = std::fs::read_to_string("/proc/self/stat").ok().and_then(|text| {
        // Fields after the command name (in parentheses): utime and stime are the 12th and 13th.
        let after = text.rsplit_once(')')?.1;
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        Some(ticks / 100.0)
    });
    (thread, process)
}

fn feature_names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("f{i:02}")).collect()
}

/// The project of the join and online benchmarks: one file source, one view of `n` row-level
/// features with a time-to-live.
fn file_project(features: &Path, n: usize, ttl: &str) -> Result<String> {
    let path = std::path::absolute(features)?;
    let columns: Vec<String> =
        feature_names(n).iter().map(|name| format!("{name} = \"{name}\"")).collect();
    Ok(format!(
        r#"[entities.customer]
key = "customer_id"

[sources.stats]
kind = "file"
path = {path:?}
timestamp = "ts"

[feature_views.{VIEW}]
source = "stats"
entity = "customer"
ttl = "{ttl}"
columns = {{ {} }}
"#,
        columns.join(", ")
    ))
}

fn open_store(project: &Path, text: &str) -> Result<FeatureStore> {
    std::fs::create_dir_all(project)?;
    std::fs::write(project.join("vigie.toml"), text)?;
    let config = Config::parse(text, "vigie.toml").map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(FeatureStore::open(project, config)?)
}

fn reopen_store(project: &Path) -> Result<FeatureStore> {
    let text = std::fs::read_to_string(project.join("vigie.toml"))
        .with_context(|| format!("{}: run `join` first", project.display()))?;
    let config = Config::parse(&text, "vigie.toml").map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(FeatureStore::open(project, config)?)
}

/// Non-null count and sum of a joined feature column, for a quick agreement check.
fn checksum(batch: &RecordBatch, column: &str) -> Result<Json> {
    let values = batch
        .column_by_name(column)
        .and_then(|c| c.as_any().downcast_ref::<Float64Array>())
        .with_context(|| format!("joined column {column:?}"))?;
    let present = values.len() - values.null_count();
    let sum: f64 = values.iter().flatten().sum();
    Ok(json!({"present": present, "sum": sum}))
}

fn run_join(args: &JoinArgs) -> Result<Json> {
    if args.project.exists() {
        std::fs::remove_dir_all(&args.project)?;
    }
    let text = file_project(&args.features, args.n_features, &args.ttl)?;
    let store = open_store(&args.project, &text)?;

    // Setup, as `vigie ingest` and `vigie materialize` would do it once.
    let started = Instant::now();
    let ingest = store.ingest("stats")?;
    let ingest_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let view = store.compute_view(VIEW)?;
    let compute_s = started.elapsed().as_secs_f64();

    // What `vigie features history` reads first.
    let started = Instant::now();
    let entities = store.read_table(&args.entities)?;
    let read_entities_s = started.elapsed().as_secs_f64();

    let wanted = [FeatureRef { view: VIEW.to_owned(), feature: "*".to_owned() }];
    let mut seconds = Vec::new();
    let mut joined = None;
    for _ in 0..args.repeats.max(1) {
        let started = Instant::now();
        let result = store.historical(&entities, "event_timestamp", &wanted)?;
        seconds.push(started.elapsed().as_secs_f64());
        joined = Some(black_box(result));
    }
    let joined = joined.context("at least one join ran")?;

    // The same join in its parts, through the public pieces `historical` is made of.
    let names = feature_names(args.n_features);
    let columns: Vec<&str> =
        ["_key", "_time", "_arrival"].into_iter().chain(names.iter().map(String::as_str)).collect();
    let started = Instant::now();
    let batches = store.offline().read_view_columns(VIEW, Some(&columns))?;
    let read_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let index = ViewIndex::new(batches)?;
    let index_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let keys = cast(
        entities.column_by_name("customer_id").context("entity key column")?,
        &DataType::Utf8,
    )?;
    let keys = keys.as_any().downcast_ref::<StringArray>().context("keys as text")?;
    let times = cast(
        entities.column_by_name("event_timestamp").context("entity time column")?,
        &DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None),
    )?;
    let times = times
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .context("times")?
        .values()
        .to_vec();
    let ttl = vigie_core::config::parse_duration(&args.ttl).map_err(anyhow::Error::msg)?;
    let ttl = i64::try_from(ttl.as_micros())?;
    let prepare_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let picks = index.as_of(keys, &times, Some(ttl));
    let as_of_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let wanted: Vec<&str> = names.iter().map(String::as_str).collect();
    let gathered = index.gather_columns(&wanted, &picks)?;
    let take_s = started.elapsed().as_secs_f64();
    black_box(gathered);
    drop(index);

    if let Some(out) = &args.out {
        FeatureStore::write_table(out, &joined)?;
    }
    Ok(json!({
        "what": "FeatureStore::historical(entities in memory, event_timestamp, customer_stats:*)",
        "label_rows": entities.num_rows(),
        "feature_rows": ingest.stored,
        "features": args.n_features,
        "keys": view.keys,
        "join_seconds": seconds,
        "join_median_s": median(seconds.clone()),
        "parts_s": {
            "read the view's parts (key, time, arrival, features)": read_s,
            "ViewIndex::new (group by key, no sort)": index_s,
            "entity keys and times (cast)": prepare_s,
            "ViewIndex::as_of": as_of_s,
            "ViewIndex::gather_columns (every feature column)": take_s,
        },
        "setup_s": {
            "ingest": ingest_s,
            "compute_view": compute_s,
            "read_entities": read_entities_s,
        },
        "checksum_f00": checksum(&joined, "f00")?,
        "peak_rss_mib": peak_rss_mib(),
    }))
}

fn run_online(args: &OnlineArgs) -> Result<Json> {
    let store = reopen_store(&args.project)?;
    let db = args.project.join(".vigie/online.db");
    if db.exists() {
        std::fs::remove_file(&db)?;
    }
    let names = feature_names(args.n_features);
    // Setup, as `vigie materialize` does it: the latest row of each key.
    let started = Instant::now();
    let rows = store.view_rows(VIEW)?;
    let mut writer = OnlineStore::open(&OnlineLocation::embedded(&db))?;
    let written = materialize(&mut writer, VIEW, &rows, &names)?;
    drop(writer);
    let materialize_s = started.elapsed().as_secs_f64();
    drop(rows);

    let keys: Vec<String> = std::fs::read_to_string(&args.keys)?
        .lines()
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
        .collect();
    if keys.is_empty() {
        bail!("{}: no keys", args.keys.display());
    }
    // The server's way in: a read-only connection.
    let reader = OnlineStore::open_read_only(&OnlineLocation::embedded(&db))?;
    for key in keys.iter().rev().take(args.warmup) {
        black_box(reader.get(VIEW, key)?);
    }
    let mut nanos = Vec::with_capacity(keys.len());
    let mut missing = 0usize;
    let mut values = 0usize;
    for key in &keys {
        let started = Instant::now();
        let row = reader.get(VIEW, key)?;
        nanos.push(started.elapsed().as_nanos() as f64);
        match black_box(row) {
            Some(row) => values += row.values.len(),
            None => missing += 1,
        }
    }
    let found = keys.len() - missing;
    Ok(json!({
        "what": "OnlineStore::get(view, key) on a read-only store: SQLite lookup + JSON row decoded",
        "keys_stored": written,
        "materialize_s": materialize_s,
        "latency_us": summarize(nanos),
        "missing": missing,
        "features_per_row": if found > 0 { values as f64 / found as f64 } else { 0.0 },
        "peak_rss_mib": peak_rss_mib(),
    }))
}

/// A seeded generator (splitmix64): the same events on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `count` card payments from `first` on, one every 86.4 ms of event time (a million a day),
/// each up to 30 s earlier than its place in the sequence (out of order, within the allowed
/// lateness), over `customers` customers and 500 merchants.
fn payments(rng: &mut Rng, first: usize, count: usize, customers: u64) -> Vec<Json> {
    // 2024-03-01T00:00:00Z.
    let start = UNIX_EPOCH + Duration::from_secs(1_709_251_200);
    (first..first + count)
        .map(|i| {
            let jitter = (rng.uniform() * 30e6) as u64;
            let micros = (i as u64 * 86_400).saturating_sub(jitter);
            let time = humantime::format_rfc3339_micros(start + Duration::from_micros(micros));
            let customer = rng.next() % customers;
            let amount = (rng.uniform() * rng.uniform() * 50_000.0).round() / 100.0;
            let merchant = rng.next() % 500;
            json!({
                "customer_id": customer,
                "ts": time.to_string(),
                "amount": amount,
                "merchant": format!("m{merchant:03}"),
            })
        })
        .collect()
}

fn stream_project(args: &StreamArgs, topic: &str) -> Result<String> {
    let source = match args.source {
        StreamSource::Kafka => {
            let brokers = args.brokers.as_deref().context(
                "--brokers or VIGIE_TEST_KAFKA_BROKERS (source scripts/services.sh && start_services kafka)",
            )?;
            format!(
                "kind = \"kafka\"\nbrokers = \"{brokers}\"\ntopic = \"{topic}\"\ngroup = \"{topic}\"\n"
            )
        }
        StreamSource::Http => "kind = \"http\"\n".to_owned(),
    };
    Ok(format!(
        r#"[entities.customer]
key = "customer_id"

[sources.payments]
{source}timestamp = "ts"
fields = {{ customer_id = "customer_id", ts = "ts", amount = "amount", merchant = "merchant" }}

[feature_views.payments_live]
source = "payments"
entity = "customer"
allowed_lateness = "1m"
aggregations = [
  {{ name = "count_10m", function = "count", window = "10m" }},
  {{ name = "sum_amount_1h", function = "sum", column = "amount", window = "1h" }},
  {{ name = "max_amount_24h", function = "max", column = "amount", window = "24h" }},
]
"#
    ))
}

fn run_stream(args: &StreamArgs) -> Result<Json> {
    if args.project.exists() {
        std::fs::remove_dir_all(&args.project)?;
    }
    let unique = format!(
        "fsbench-{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis()
    );
    let text = stream_project(args, &unique)?;
    let store = open_store(&args.project, &text)?;
    let log_root = args.project.join(".vigie/events");
    let dead_dir = args.project.join(".vigie/dead");
    let online =
        OnlineStore::open(&OnlineLocation::embedded(args.project.join(".vigie/online.db")))?;

    let mut rng = Rng(args.seed);
    let warmup = payments(&mut rng, 0, args.warmup, args.customers);
    let timed = payments(&mut rng, args.warmup, args.events, args.customers);
    let total = (args.warmup + args.events) as u64;

    // Puts events where the processor reads them; returns the seconds it took.
    let log = EventLog::open(&log_root, store.config())?;
    let put = |events: &[Json]| -> Result<f64> {
        let started = Instant::now();
        match args.source {
            StreamSource::Kafka => {
                let brokers = args.brokers.as_deref().context("brokers")?;
                vigie_connectors::kafka::produce(brokers, &unique, events, Some("customer_id"))?;
            }
            StreamSource::Http => {
                for request in events.chunks(args.request_events.max(1)) {
                    log.append("payments", request).map_err(|e| anyhow::anyhow!("{e}"))?;
                }
            }
        }
        Ok(started.elapsed().as_secs_f64())
    };

    if args.source == StreamSource::Kafka {
        let brokers = args.brokers.as_deref().context("brokers")?;
        vigie_connectors::kafka::create_topic(brokers, &unique, args.partitions)?;
    }
    put(&warmup)?;
    let mut processor = StreamProcessor::open(&store, &log_root, &dead_dir, online)?;
    let started = Instant::now();
    let first = processor.catch_up(|_| {})?;
    let warmup_s = started.elapsed().as_secs_f64();
    if first.events != args.warmup as u64 {
        bail!("the warm-up read {} events, not {}", first.events, args.warmup);
    }

    let put_s = put(&timed)?;
    let mut steps = Vec::new();
    let started = Instant::now();
    let mut last = started;
    // `catch_up` stops where the source said it stood when it last ran dry. tansu (its log
    // on moto S3) sometimes reports a partition's end short of messages it has acknowledged,
    // so `catch_up` runs again until every produced event is read (each call counted).
    let cpu_before = cpu_seconds();
    let mut summary = StepSummary::default();
    let mut catch_ups = 0u32;
    while summary.events < args.events as u64 && started.elapsed() < Duration::from_secs(600) {
        catch_ups += 1;
        let more = processor.catch_up(|step| {
            let now = Instant::now();
            steps.push((step.events, now.duration_since(last).as_secs_f64()));
            last = now;
        })?;
        summary.add(&more);
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu_after = cpu_seconds();
    let busy = |before: Option<f64>, after: Option<f64>| Some((after? - before?) / seconds);
    let cpu = json!({
        "what": "CPU seconds per second of the timed part: the processor's own thread, and \
                 this whole process (the read-ahead thread, DataFusion's and librdkafka's)",
        "processor_thread": busy(cpu_before.0, cpu_after.0),
        "process": busy(cpu_before.1, cpu_after.1),
    });
    if summary.events != args.events as u64 {
        bail!("catch_up read {} events, not {}", summary.events, args.events);
    }
    let mut step_rates: Vec<f64> =
        steps.iter().filter(|(_, s)| *s > 0.0).map(|(n, s)| *n as f64 / s).collect();
    step_rates.sort_by(f64::total_cmp);
    drop(processor);

    // The source alone: every message read again by a new consumer group, parsed as JSON and
    // dropped, timed from the first message (the group join excluded).
    let ceiling = match args.source {
        StreamSource::Kafka => {
            let brokers = args.brokers.as_deref().context("brokers")?;
            let mut reader = vigie_connectors::kafka::KafkaReader::open(
                brokers,
                &unique,
                &format!("{unique}-ceiling"),
                Default::default(),
            )?;
            let mut read = 0u64;
            let mut first_at = None;
            let deadline = Instant::now() + Duration::from_secs(600);
            while read < total && Instant::now() < deadline {
                let batch = reader.poll(16_384, Duration::from_millis(100))?;
                if !batch.is_empty() && first_at.is_none() {
                    first_at = Some((Instant::now(), batch.len() as u64));
                }
                read += batch.len() as u64;
                black_box(batch);
            }
            first_at.map(|(at, first)| {
                let seconds = at.elapsed().as_secs_f64();
                json!({
                    "what": "KafkaReader::poll (librdkafka fetch + serde_json parse), nothing stored",
                    "events": read - first,
                    "seconds": seconds,
                    "events_per_s": (read - first) as f64 / seconds,
                })
            })
        }
        StreamSource::Http => None,
    };

    // Stream == batch: each key's online row equals the batch engine's latest row over the
    // same stored events (untimed).
    let reader = OnlineStore::open_read_only(&OnlineLocation::embedded(
        args.project.join(".vigie/online.db"),
    ))?;
    let batch = store.compute_view("payments_live")?;
    let rows = store.view_rows("payments_live")?;
    let keys = rows
        .column_by_name("_key")
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .context("view keys")?;
    let names = ["count_10m", "sum_amount_1h", "max_amount_24h"];
    let columns = names
        .iter()
        .map(|name| {
            rows.column_by_name(name)
                .and_then(|c| c.as_any().downcast_ref::<Float64Array>())
                .context("aggregation column")
        })
        .collect::<Result<Vec<_>>>()?;
    let (mut compared, mut differing, mut sample) = (0usize, 0usize, None);
    let n = rows.num_rows();
    for i in (0..n).filter(|&i| i + 1 == n || keys.value(i + 1) != keys.value(i)) {
        let key = keys.value(i);
        let online = reader.get("payments_live", key)?;
        compared += 1;
        let same = online.as_ref().is_some_and(|row| {
            names.iter().zip(&columns).all(|(name, column)| {
                row.values.get(*name).and_then(Json::as_f64) == Some(column.value(i))
            })
        });
        differing += usize::from(!same);
        if sample.is_none() {
            sample = online.map(|row| json!({"customer_id": key, "values": row.values}));
        }
    }
    let agreement = json!({
        "keys_compared": compared,
        "keys_differing": differing,
        "batch_rows": batch.rows,
        "batch_late": batch.late,
    });
    Ok(json!({
        "what": "StreamProcessor::catch_up over events already in the source: poll, JSON, \
                 to_batch, Parquet part + state, DataFusion per micro-batch, window kernel, \
                 SQLite upserts, offset commit",
        "source": match args.source { StreamSource::Kafka => "kafka", StreamSource::Http => "http" },
        "events": summary.events,
        "stored": summary.stored,
        "dead_letters": summary.dead_letters,
        "late": summary.late,
        "online_updates": summary.updated,
        "waiting": summary.waiting,
        "seconds": seconds,
        "events_per_s": summary.events as f64 / seconds,
        "micro_batches": steps.len(),
        "catch_up_calls": catch_ups,
        "cpu_per_second": cpu,
        "micro_batch_events_per_s": {
            "min": step_rates.first(),
            "median": median(step_rates.clone()),
            "max": step_rates.last(),
        },
        "warmup": {"events": first.events, "seconds": warmup_s},
        "put": {"events": args.events, "seconds": put_s, "events_per_s": args.events as f64 / put_s},
        "source_ceiling": ceiling,
        "customers": args.customers,
        "partitions": args.partitions,
        "stream_equals_batch": agreement,
        "sample_online_row": sample,
        "peak_rss_mib": peak_rss_mib(),
    }))
}
