//! The command-line grammar (clap derive). Only this crate knows clap.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Vigie: train, register, serve and watch business ML models from one binary.
#[derive(Debug, Parser)]
#[command(name = "vigie", version, about, long_about = None)]
pub struct Cli {
    /// The project folder (holds vigie.toml and the .vigie state folder).
    #[arg(long, global = true, default_value = ".", value_name = "DIR")]
    pub project: PathBuf,
    /// The registry's metadata database: postgres://USER:PASSWORD@HOST:PORT/DATABASE for one that
    /// several Vigie processes share [default: SQLite in DIR/.vigie/registry.db].
    #[arg(
        long,
        global = true,
        env = "VIGIE_REGISTRY_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub registry_url: Option<String>,
    /// Where model files are kept: s3://BUCKET[/PREFIX], with credentials, region and endpoint
    /// from the AWS_* variables (AWS_ENDPOINT_URL for S3-compatible servers) [default: DIR/.vigie].
    #[arg(
        long,
        global = true,
        env = "VIGIE_ARTIFACTS_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub artifacts_url: Option<String>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Output format of commands that print results.
/// `vigie serve --audit-durability`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuditDurability {
    /// Answer once the audit record is fdatasync'ed.
    Disk,
    /// Answer once the audit record is written to the operating system.
    Process,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// Human-readable text and tables.
    #[default]
    Text,
    /// One JSON document on stdout.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The whole loop in one process, on the embedded defaults: write the example project in
    /// --project (default: here), ingest, materialize, train the fraud model with CV and a
    /// canary version, serve both on loopback, send traffic and ground truth over HTTP, then
    /// print metrics, the canary split, an explanation and the audit log's check.
    Demo(DemoArgs),
    /// Write an example project that runs as is: a commented vigie.toml and a seeded table of
    /// card transactions with fraud patterns.
    Init(InitArgs),
    /// Read the new rows of the project's sources (all, or SOURCE) into the offline store.
    Ingest {
        /// One source of vigie.toml (default: every source).
        source: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Compute feature views (all, or VIEW) over their history into the offline store and
    /// update the online store with each entity's latest values.
    Materialize {
        /// One feature view of vigie.toml (default: every view).
        view: Option<String>,
        /// Learn the views' cleaning (`[feature_views.V.clean]`) again from all their rows,
        /// instead of keeping what was learned when they were first computed. No stream
        /// processor may run meanwhile (stop `vigie serve` and `vigie stream`).
        #[arg(long)]
        refit: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Run the stream processor in the foreground: events posted to the project's HTTP sources
    /// (`POST /v1/events/SOURCE` on `vigie serve`) into the offline store and, through the
    /// feature views' windows, into the online store. `vigie serve` runs it too, unless a
    /// `vigie stream` already does. Stops on Ctrl-C or SIGTERM.
    Stream {
        /// Process what the logs hold now, then exit.
        #[arg(long)]
        once: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Serve every registered model's champion over REST: KServe V2 (/v2), MLflow scoring
    /// (/invocations) and /v1/models/NAME/predict; promotions and rollbacks apply without restart.
    ///
    /// /v2/health/ready is 200 once the models are loaded, the audit log takes records and the
    /// online store (if any) can be read, else 503 naming what is not. On SIGTERM or Ctrl-C the
    /// server stops accepting connections, turns unready, finishes the requests in flight (their
    /// audit records are durable before each reply, see --audit-durability) and exits 0.
    Serve {
        /// The address to listen on; beyond loopback, TLS and OAuth2 are required.
        #[arg(long, default_value = "127.0.0.1:8080", value_name = "HOST:PORT")]
        addr: String,
        /// Serve this model alone (the one /invocations scores).
        #[arg(long, value_name = "NAME")]
        model: Option<String>,
        /// Requests handled at once; one more is answered 503 with Retry-After at once, never
        /// queued. Health probes and /metrics are not counted. Requests mostly wait on the audit
        /// log's disk flush, not the CPU, hence a fixed default rather than one per core.
        #[arg(
            long,
            default_value_t = vigie_server::DEFAULT_MAX_IN_FLIGHT,
            value_name = "N",
            value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
        )]
        max_in_flight: usize,
        /// When a prediction's audit record is durable, so when the prediction is answered: disk
        /// (after fdatasync: it survives a power loss) or process (once written to the operating
        /// system: it survives kill -9 and any crash of vigie; the log is fdatasync'ed every
        /// --audit-flush-ms, so a power loss or kernel crash can lose that last interval).
        #[arg(long, value_enum, default_value_t = AuditDurability::Disk, value_name = "WHEN")]
        audit_durability: AuditDurability,
        /// With --audit-durability process: the longest time between two flushes of the audit log.
        #[arg(
            long,
            default_value_t = 10,
            value_name = "MS",
            value_parser = clap::builder::RangedU64ValueParser::<u64>::new().range(1..=60_000)
        )]
        audit_flush_ms: u64,
        /// TLS and OAuth2 bearer tokens.
        #[command(flatten)]
        security: ServeSecurityArgs,
    },
    /// Read online features, or build point-in-time-correct training tables.
    Features {
        /// What to do.
        #[command(subcommand)]
        command: FeaturesCommand,
    },
    /// Train a model on a table: cross-validate, pick, fit on all rows, track the run, register a new version.
    Train(Box<TrainArgs>),
    /// Score a table with a saved model, optionally with per-column explanations.
    Predict(PredictArgs),
    /// Forecast every series of a forecast model (`vigie train --task forecast`) with 80% and 95% intervals.
    Forecast(ForecastArgs),
    /// The model registry: list, inspect, compare, promote, roll back, alias.
    Models {
        /// What to do.
        #[command(subcommand)]
        command: ModelsCommand,
    },
    /// Tracked training runs: list, inspect, compare.
    Runs {
        /// What to do.
        #[command(subcommand)]
        command: RunsCommand,
    },
    /// MLflow interoperability: copy runs, model files, models, versions and aliases to a tracking server.
    Mlflow {
        /// What to do.
        #[command(subcommand)]
        command: MlflowCommand,
    },
    /// The example project on real servers (examples/fraud-on-servers).
    Example {
        /// What to do.
        #[command(subcommand)]
        command: ExampleCommand,
    },
    /// The audit log of every prediction `vigie serve` answered: check its hash chain, list records.
    Audit {
        /// What to do.
        #[command(subcommand)]
        command: AuditCommand,
    },
}

/// `vigie audit …`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check every record's hash and its link to the record before; on a break, name the file
    /// and line and exit 1.
    Verify {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Recorded predictions, newest first.
    List {
        /// Only this model's predictions.
        #[arg(long, value_name = "NAME")]
        model: Option<String>,
        /// Only the prediction with this request id.
        #[arg(long, value_name = "ID")]
        request_id: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 20, value_name = "N")]
        limit: usize,
        /// Output format (json: the records in full, inputs and outputs of every row).
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

/// `vigie example`.
#[derive(Debug, Subcommand)]
pub enum ExampleCommand {
    /// Write the seeded card transactions of `vigie init` to real servers: every transaction
    /// with its label into PostgreSQL (table `transactions`, replaced), a profile per customer
    /// into MongoDB (`bank.customers` by default), and every transaction as a JSON event into
    /// Kafka (topic `card-transactions` by default).
    Load(ExampleLoadArgs),
}

/// `vigie example load`.
#[derive(Debug, Args)]
pub struct ExampleLoadArgs {
    /// PostgreSQL URL.
    #[arg(long, env = "VIGIE_EXAMPLE_POSTGRES_URL", value_name = "URL")]
    pub postgres: String,
    /// MongoDB URL.
    #[arg(long, env = "VIGIE_EXAMPLE_MONGODB_URL", value_name = "URL")]
    pub mongodb: String,
    /// Kafka bootstrap servers.
    #[arg(long, env = "VIGIE_EXAMPLE_KAFKA_BROKERS", value_name = "HOST:PORT")]
    pub kafka: String,
    /// The MongoDB database of the `customers` collection.
    #[arg(long, default_value = "bank", value_name = "NAME")]
    pub mongodb_database: String,
    /// The Kafka topic (created with 3 partitions when missing).
    #[arg(long, default_value = "card-transactions", value_name = "NAME")]
    pub topic: String,
    /// About how many transactions to generate.
    #[arg(long, default_value_t = 20_000, value_name = "N")]
    pub rows: usize,
    /// The generator's seed.
    #[arg(long, default_value_t = 7, value_name = "S")]
    pub seed: u64,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// `vigie serve`: HTTPS and OAuth2 bearer tokens.
#[derive(Debug, Args)]
pub struct ServeSecurityArgs {
    /// Serve HTTPS (TLS 1.2+) with this PEM certificate chain.
    #[arg(long, env = "VIGIE_TLS_CERT", value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "VIGIE_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Require OAuth2 bearer JWTs from this issuer (its `iss`, e.g. https://login.example.com/realm).
    #[arg(long, env = "VIGIE_OAUTH_ISSUER", value_name = "URL", requires = "oauth_audience")]
    pub oauth_issuer: Option<String>,
    /// The audience (`aud`) tokens must name.
    #[arg(long, env = "VIGIE_OAUTH_AUDIENCE", value_name = "AUD", requires = "oauth_issuer")]
    pub oauth_audience: Option<String>,
    /// The issuer's JWKS URL [default: jwks_uri of ISSUER/.well-known/openid-configuration].
    #[arg(long, env = "VIGIE_OAUTH_JWKS_URL", value_name = "URL", requires = "oauth_issuer")]
    pub oauth_jwks_url: Option<String>,
}

/// `vigie demo`
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Transactions to generate.
    #[arg(long, default_value_t = 20_000, value_name = "N")]
    pub rows: usize,
    /// Replace the project already in the folder: its vigie.toml, data/transactions.csv and the
    /// whole .vigie state folder (models, runs, audit log).
    #[arg(long)]
    pub force: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// `vigie init`
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The folder to create the project in (default: --project).
    pub dir: Option<PathBuf>,
    /// Transactions to generate.
    #[arg(long, default_value_t = 20_000, value_name = "N")]
    pub rows: usize,
    /// Seed of the generator.
    #[arg(long, default_value_t = 7, value_name = "S")]
    pub seed: u64,
    /// Overwrite an existing vigie.toml and data.
    #[arg(long)]
    pub force: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// `vigie features …`
#[derive(Debug, Subcommand)]
pub enum FeaturesCommand {
    /// The latest features of one entity from the online store.
    Get {
        /// The feature view.
        view: String,
        /// The entity, as KEY_COLUMN=VALUE (e.g. customer_id=42).
        #[arg(long, value_name = "COLUMN=VALUE")]
        key: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Join a table of entities and times with features as they were at each time
    /// (no later value, time-to-live respected).
    History {
        /// The entity table (.csv, .jsonl or .parquet): the views' key columns and a time column.
        #[arg(long, value_name = "FILE")]
        entities: PathBuf,
        /// Features to add: VIEW:FEATURE or VIEW:* (comma-separated).
        #[arg(long, value_name = "VIEW:FEATURE,...", value_delimiter = ',', required = true)]
        features: Vec<String>,
        /// Where to write the joined table (.csv or .parquet).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// The time column of the entity table (default: the views' source timestamp column,
        /// else event_timestamp, timestamp or ts).
        #[arg(long, value_name = "COLUMN")]
        time: Option<String>,
        /// Output format of the summary.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

/// `vigie mlflow …`
#[derive(Debug, Subcommand)]
pub enum MlflowCommand {
    /// Copy experiments, runs (params, metric histories, tags), model files, registered models,
    /// versions and aliases to an MLflow tracking server; what is already there is left alone.
    Export {
        /// The tracking server (http://HOST:PORT), started with --artifacts-destination so it
        /// accepts model files [default: [mlflow] tracking_uri of vigie.toml].
        #[arg(long, env = "MLFLOW_TRACKING_URI", value_name = "URI")]
        tracking_uri: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

/// `vigie runs …`
#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// Runs, newest first.
    List {
        /// Only this experiment's runs.
        #[arg(long)]
        experiment: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// One run in full: data, code version, parameters, metric histories, artifacts, children.
    Show {
        /// The run id (or a unique prefix of 6+ characters).
        run: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Runs side by side: parameters and final metric values.
    Compare {
        /// Two or more run ids.
        #[arg(required = true, num_args = 2..)]
        runs: Vec<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

/// `vigie models …`
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Every saved model with its latest version and cross-validated score.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// One model version in full: data, run, parameters, metrics, threshold, transforms, alias history.
    Show {
        /// NAME, NAME:VERSION or NAME@ALIAS (default: the champion, else the latest version).
        model: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Versions side by side: algorithm, cross-validated metrics, threshold, data.
    Compare {
        /// Two or more of NAME:VERSION or NAME@ALIAS.
        #[arg(required = true, num_args = 2..)]
        models: Vec<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Point an alias (default champion) at a version.
    Promote {
        /// The model.
        name: String,
        /// The version to promote.
        version: u32,
        /// The alias to move.
        #[arg(long, default_value = "champion")]
        alias: String,
        /// Why (kept in the alias history).
        #[arg(long, default_value = "")]
        reason: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Move an alias (default champion) back to the version it pointed at before.
    Rollback {
        /// The model.
        name: String,
        /// The alias to move back.
        #[arg(long, default_value = "champion")]
        alias: String,
        /// Why (kept in the alias history).
        #[arg(long, default_value = "")]
        reason: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Remove a version from the registry (refused while an alias points at it;
    /// its run and model file stay for lineage).
    Delete {
        /// The model.
        name: String,
        /// The version to remove.
        version: u32,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Route a model's traffic between its versions: a canary, an A/B test, a shadow, or all to
    /// the champion. Each call replaces the whole routing; `vigie serve` applies it without a
    /// restart.
    Route(RouteArgs),
    /// Set (NAME ALIAS VERSION) or delete (NAME ALIAS --delete) any alias.
    Alias {
        /// The model.
        name: String,
        /// The alias (challenger, staging, any name).
        alias: String,
        /// The version it should point at.
        #[arg(required_unless_present = "delete")]
        version: Option<u32>,
        /// Remove the alias instead.
        #[arg(long, conflicts_with = "version")]
        delete: bool,
        /// Why (kept in the alias history).
        #[arg(long, default_value = "")]
        reason: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

/// `vigie models route`
#[derive(Debug, Args)]
#[command(
    group(clap::ArgGroup::new("routing").required(true).multiple(true)
        .args(["canary", "ab", "shadow", "champion_only"])),
    after_help = "Examples:\n  vigie models route credit --canary 3 --weight 5 --reason \"try v3 on 5%\"\n  \
vigie models route credit --shadow 4\n  vigie models route credit --ab 2=50,3=50 --shadow 4\n  \
vigie models route credit --champion-only\n\n\
Requests are routed by a sticky key (the X-Vigie-Routing-Key header, the request's key, the \
model's entity key column, else the request id), so one customer always sees one version; \
the shadow version is scored on every request and never answered."
)]
pub struct RouteArgs {
    /// The model.
    pub name: String,
    /// Send --weight percent of the keys to this version, the rest to the champion.
    #[arg(long, value_name = "VERSION", requires = "weight", conflicts_with_all = ["ab", "champion_only"])]
    pub canary: Option<u32>,
    /// The canary's share of the keys, in percent (0 to 100).
    #[arg(long, value_name = "PCT", requires = "canary")]
    pub weight: Option<f64>,
    /// An A/B test: versions and their weights in percent, summing to 100 (variants a, b, c…).
    #[arg(
        long,
        value_name = "V1=W1,V2=W2",
        value_delimiter = ',',
        conflicts_with = "champion_only"
    )]
    pub ab: Vec<String>,
    /// Also score this version on every request, without answering with it.
    #[arg(long, value_name = "VERSION", conflicts_with = "champion_only")]
    pub shadow: Option<u32>,
    /// All traffic to the champion, no shadow.
    #[arg(long)]
    pub champion_only: bool,
    /// Why (kept in the routing history).
    #[arg(long, default_value = "")]
    pub reason: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// `vigie train`
/// Defaults of `vigie train`'s table-only flags, named so that `--task forecast` can tell
/// whether one was given.
pub const DEFAULT_CV: usize = 5;
pub const DEFAULT_FOLDS: &str = "stratified";
pub const DEFAULT_TRIALS: usize = 20;
pub const DEFAULT_THRESHOLD_GOAL: &str = "max-f1";
pub const DEFAULT_CLASS_WEIGHT: &str = "none";

#[derive(Debug, Args)]
#[command(
    after_help = "Forecasting: vigie train --task forecast --data FILE --time COLUMN --target COLUMN \
[--series COL,COL] --horizon H [--frequency auto|H|D|W|M|Q] [--covariates COL,...] \
[--future-covariates COL,...] [--backtest-windows N] [--strategies NAME,...] [--train-window N|all] \
[--aggregate sum|mean|last|min|max|count] [--timezone ZONE] [--non-negative]. The rolling-origin backtest picks the strategy \
(global gradient-boosted trees, ETS, seasonal naive) and calibrates 80% and 95% intervals."
)]
pub struct TrainArgs {
    /// A model declared in vigie.toml, trained from the feature store instead of --data: a
    /// tabular model's label source joined with its features as of each row's time; a forecast
    /// model's source or feature view, brought up to date first (ingested, recomputed).
    #[arg(value_name = "MODEL", required_unless_present = "data", conflicts_with = "data")]
    pub from_store: Option<String>,
    /// The training table (.csv or .parquet).
    #[arg(long, value_name = "FILE")]
    pub data: Option<PathBuf>,
    /// The column to predict (every task but forecast; from vigie.toml for MODEL).
    #[arg(long, value_name = "COLUMN", required_unless_present_any = ["target", "from_store"])]
    pub label: Option<String>,
    /// Forecasting: the column to forecast.
    #[arg(long, value_name = "COLUMN", conflicts_with = "label")]
    pub target: Option<String>,
    /// Forecasting: the time column (ISO dates or times: 2024-03-05, 2024-03-05T13:00:00).
    #[arg(long, value_name = "COLUMN")]
    pub time: Option<String>,
    /// Forecasting: the columns whose values name a series (default: the table is one series).
    #[arg(long, value_name = "COL,COL", value_delimiter = ',')]
    pub series: Vec<String>,
    /// Forecasting: periods ahead to forecast and to backtest.
    #[arg(long, value_name = "H")]
    pub horizon: Option<usize>,
    /// Forecasting: the series' frequency (hourly, daily, weekly, monthly, quarterly); default
    /// auto, inferred from the times (or vigie.toml's for MODEL).
    #[arg(long, value_name = "auto|H|D|W|M|Q")]
    pub frequency: Option<String>,
    /// Forecasting: covariates known only up to the forecast origin (footfall, last week's visits).
    #[arg(long, value_name = "COL,...", value_delimiter = ',')]
    pub covariates: Vec<String>,
    /// Forecasting: covariates known ahead (promotions, prices, holidays), given for forecast
    /// periods. Covariates are numbers, or flags written true/false (read as 1 and 0).
    #[arg(long, value_name = "COL,...", value_delimiter = ',')]
    pub future_covariates: Vec<String>,
    /// Forecasting: rolling-origin backtest windows (the last ones of the history); default
    /// vigie.toml's for MODEL, else 3, or for hourly series enough to span two weeks (at most
    /// half the history, at least 3).
    #[arg(long, value_name = "N")]
    pub backtest_windows: Option<usize>,
    /// Forecasting: fit every strategy again at each backtest origin (by default they are fitted
    /// once, at the first origin, and read the history up to the later ones).
    #[arg(long)]
    pub backtest_refit: bool,
    /// Forecasting: group each series' rows of one period (of --frequency, which it needs) into
    /// one row at the period's start: the target by sum, mean, last, min, max or count, each
    /// covariate by its mean. With sum and count an empty period is 0. Without it, two rows of
    /// one series in one period are an error.
    #[arg(long, value_name = "sum|mean|last|min|max|count")]
    pub aggregate: Option<String>,
    /// Forecasting, with --aggregate: group into the local days, weeks, months or quarters of
    /// this IANA time zone (Europe/Paris, America/New_York) instead of UTC ones. Times with an
    /// offset or Z are converted; times and dates without one are read on the zone's wall clock
    /// (a time the clocks skip is an error, the hour they repeat is read in row order: the
    /// earlier first). Hourly periods (with or without --aggregate) stay UTC hours; the zone
    /// sets their clock: hour, weekday and holidays, and forecast times written with their
    /// offset.
    #[arg(long, value_name = "ZONE")]
    pub timezone: Option<String>,
    /// Forecasting: the target cannot be negative (revenue, units, visits): a negative value is
    /// an error naming its row, in training and in the rows `vigie forecast --data` is given.
    #[arg(long)]
    pub non_negative: bool,
    /// Forecasting: the strategies the backtest chooses among (default all: seasonal_naive,
    /// ets, global_gbdt); seasonal naive is always backtested as the reference.
    #[arg(long, value_name = "NAME,...", value_delimiter = ',')]
    pub strategies: Vec<String>,
    /// Forecasting: the global model learns from at most the last N periods of each series
    /// (its features still read the history before them), or from all; default 400 days of
    /// hourly or daily periods, all of weekly and coarser ones.
    #[arg(long, value_name = "N|all")]
    pub train_window: Option<String>,
    /// The positive class of a binary label (default: the minority class).
    #[arg(long, value_name = "VALUE")]
    pub positive: Option<String>,
    /// Columns not to use as features (ids, leaks), comma-separated.
    #[arg(long, value_name = "COL,COL", value_delimiter = ',')]
    pub ignore: Vec<String>,
    /// What to predict.
    #[arg(long, default_value = "auto", value_name = "auto|binary|multiclass|regression|forecast")]
    pub task: String,
    /// The algorithm; auto cross-validates gbdt, random-forest and a linear model and keeps the best.
    #[arg(
        long,
        default_value = "auto",
        value_name = "auto|gbdt|random-forest|logistic|linear-svm|mlp|linear"
    )]
    pub algorithm: String,
    /// Cross-validation folds (stratified for classification); below 2, one 80/20 hold-out.
    #[arg(long, default_value_t = DEFAULT_CV, value_name = "K")]
    pub cv: usize,
    /// How rows are split into folds: stratified (by class; plain K-fold for regression),
    /// group:COLUMN (rows sharing a value stay together) or time:COLUMN (test on later rows).
    /// The group or time column is not used as a feature.
    #[arg(long, default_value = DEFAULT_FOLDS, value_name = "SCHEME")]
    pub folds: String,
    /// Fill missing numbers: none, mean, median, most-frequent or constant:VALUE (default: per algorithm).
    #[arg(long, value_name = "STRATEGY")]
    pub impute: Option<String>,
    /// Add a 0/1 column marking numbers that were missing (true or false; default: per algorithm).
    #[arg(long, value_name = "BOOL")]
    pub missing_indicator: Option<bool>,
    /// Scale numbers: none, standard, minmax or robust (default: per algorithm).
    #[arg(long, value_name = "SCALING")]
    pub scale: Option<String>,
    /// Encode text columns: native, onehot, ordinal, target or hashing:BUCKETS (default: per algorithm).
    #[arg(long, value_name = "ENCODING")]
    pub encode: Option<String>,
    /// Categories seen on fewer training rows than this share one rare bucket.
    #[arg(long, value_name = "N")]
    pub min_frequency: Option<usize>,
    /// Hyper-parameter search.
    #[arg(long, default_value = "none", value_name = "none|grid|random")]
    pub search: String,
    /// Most candidates the search tries.
    #[arg(long, default_value_t = DEFAULT_TRIALS, value_name = "N")]
    pub trials: usize,
    /// Start no new candidate after this many seconds.
    #[arg(long, value_name = "SECS")]
    pub time_budget: Option<f64>,
    /// Seed of every random choice (folds, sampling, search).
    #[arg(long, default_value_t = 42, value_name = "S")]
    pub seed: u64,
    /// The model's name (default: the data file's name).
    #[arg(long, value_name = "MODEL")]
    pub name: Option<String>,
    /// The experiment the run is tracked in (default: the model's name).
    #[arg(long, value_name = "NAME")]
    pub experiment: Option<String>,
    /// A hyper-parameter over the defaults, e.g. `--param learning_rate=0.1` (repeatable); with
    /// --task forecast, of the global model's boosting (n_rounds, learning_rate, max_leaves, ...,
    /// max_rows: the most training rows, default 50000, `none` for all).
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// The searched space, e.g. `learning_rate=0.02..0.2;max_leaves=15,31,63` (default: the algorithm's).
    #[arg(long, value_name = "SPEC")]
    pub space: Option<String>,
    /// What the binary decision threshold is chosen for: max-f1, recall:R or fpr:F.
    #[arg(long, default_value = DEFAULT_THRESHOLD_GOAL, value_name = "GOAL")]
    pub threshold_goal: String,
    /// Class weighting for imbalanced labels.
    #[arg(long, default_value = DEFAULT_CLASS_WEIGHT, value_name = "none|balanced")]
    pub class_weight: String,
    /// Fix a column's type instead of inferring it, e.g. `--column-type zip=text` (repeatable).
    #[arg(long = "column-type", value_name = "COL=TYPE")]
    pub column_types: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// `vigie predict`
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// NAME, NAME:VERSION or NAME@ALIAS (default: the champion, else the latest version).
    #[arg(long, value_name = "NAME[:VERSION|@ALIAS]")]
    pub model: String,
    /// The table to score (.csv or .parquet).
    #[arg(long, value_name = "FILE")]
    pub data: PathBuf,
    /// Where to write the scores (.csv).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Add one contribution column per input column (exact TreeSHAP or linear; Shapley values
    /// against a reference row for the MLP).
    #[arg(long)]
    pub explain: bool,
    /// Columns copied to the output to identify rows (default: the columns the model does not read).
    #[arg(long, value_name = "COL,COL", value_delimiter = ',')]
    pub id: Vec<String>,
    /// Output format of the summary.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// Output format of a table of results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum TableFormat {
    /// Comma-separated values with a header line.
    #[default]
    Csv,
    /// A JSON array of objects, one per row.
    Json,
}

impl TableFormat {
    /// As `--format` takes it.
    pub fn name(self) -> &'static str {
        match self {
            TableFormat::Csv => "csv",
            TableFormat::Json => "json",
        }
    }
}

/// `vigie forecast`
#[derive(Debug, Args)]
pub struct ForecastArgs {
    /// NAME, NAME:VERSION or NAME@ALIAS (default: the champion, else the latest version).
    #[arg(long, value_name = "NAME[:VERSION|@ALIAS]")]
    pub model: String,
    /// Periods ahead (at most the horizon the model was trained for).
    #[arg(long, value_name = "H")]
    pub horizon: usize,
    /// Newer rows (.csv or .parquet, the training columns): rows with a target move each series
    /// forward without retraining (rows the model already knows are skipped); rows without one
    /// give the future covariates of the forecast periods.
    #[arg(long, value_name = "FILE")]
    pub data: Option<PathBuf>,
    /// Where to write the forecasts (default: standard output).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Format of the forecasts: one row per series and period with the series columns, the time,
    /// forecast, lo80, hi80, lo95, hi95 (default: by --out's extension, .json or .csv; else csv).
    #[arg(long, value_enum)]
    pub format: Option<TableFormat>,
}
