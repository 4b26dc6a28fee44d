//! One module per command; [`run`] dispatches.

mod audit;
mod demo;
mod example;
mod features;
mod forecast;
mod git;
mod init;
mod mlflow;
mod models;
mod predict;
mod routing;
mod runs;
mod serve;
mod stream;
mod train;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use vigie_core::{ColumnKind, ErrorCode};
use vigie_registry::{Registry, RegistryLocation};

use crate::cli::{Cli, Command, ExampleCommand};

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let project = Project {
        dir: cli.project.clone(),
        registry_url: cli.registry_url.clone().filter(|url| !url.is_empty()),
        artifacts_url: cli.artifacts_url.clone().filter(|url| !url.is_empty()),
    };
    match cli.command {
        Command::Demo(args) => demo::run(&project, args),
        Command::Init(args) => init::run(&project, args),
        Command::Ingest { source, format } => features::ingest(&project, source, format),
        Command::Materialize { view, refit, format } => {
            features::materialize(&project, view, refit, format)
        }
        Command::Features { command } => features::run(&project, command),
        Command::Stream { once, format } => stream::run(&project, once, format),
        Command::Serve {
            addr,
            model,
            max_in_flight,
            audit_durability,
            audit_flush_ms,
            security,
        } => {
            let durability = match audit_durability {
                crate::cli::AuditDurability::Disk => vigie_server::Durability::Disk,
                crate::cli::AuditDurability::Process => vigie_server::Durability::Process {
                    flush_every: std::time::Duration::from_millis(audit_flush_ms),
                },
            };
            serve::run(&project, &addr, model, max_in_flight, durability, security)
        }
        Command::Train(args) => train::run(&project, *args),
        Command::Predict(args) => predict::run(&project, args),
        Command::Forecast(args) => forecast::run(&project, args),
        Command::Models { command } => models::run(&project, command),
        Command::Runs { command } => runs::run(&project, command),
        Command::Mlflow { command } => mlflow::run(&project, command),
        Command::Audit { command } => audit::run(&project, command),
        Command::Example { command: ExampleCommand::Load(args) } => example::load(args),
    }
}

/// The exit code for an error: 2 when the user's input is at fault, else 1.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    for cause in error.chain() {
        let code = if let Some(e) = cause.downcast_ref::<vigie_ml::MlError>() {
            Some(e.code())
        } else if let Some(e) = cause.downcast_ref::<vigie_connectors::ConnectorError>() {
            Some(e.code())
        } else if let Some(e) = cause.downcast_ref::<vigie_registry::RegistryError>() {
            Some(e.code())
        } else if let Some(e) = cause.downcast_ref::<vigie_features::FeatureError>() {
            Some(e.code())
        } else if cause.downcast_ref::<vigie_core::ConfigError>().is_some() {
            Some(ErrorCode::InvalidInput)
        } else {
            cause.downcast_ref::<UsageError>().map(|_| ErrorCode::InvalidInput)
        };
        if let Some(code) = code {
            return code.exit_code() as u8;
        }
    }
    1
}

/// A mistake in the command line itself.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The project folder and where its registry lives.
#[derive(Clone)]
pub struct Project {
    /// The folder.
    pub dir: PathBuf,
    /// The registry's database, when not SQLite in the state folder (`--registry-url`).
    pub registry_url: Option<String>,
    /// The artifact store, when not the state folder (`--artifacts-url`).
    pub artifacts_url: Option<String>,
}

impl Project {
    /// The state folder (`.vigie`).
    pub fn state_dir(&self) -> PathBuf {
        self.dir.join(".vigie")
    }

    /// The project file, `vigie.toml` (the embedded defaults when there is none).
    pub fn config(&self) -> anyhow::Result<vigie_core::Config> {
        let path = self.dir.join("vigie.toml");
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(vigie_core::Config::parse(&text, &path.display().to_string())?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(vigie_core::Config::default()),
            Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
        }
    }

    /// The registry (created on first use).
    pub fn registry(&self) -> anyhow::Result<Registry> {
        let mut location = RegistryLocation::new(&self.state_dir());
        location.database = self.registry_url.clone();
        location.artifacts = self.artifacts_url.clone();
        Ok(Registry::connect(&location)?)
    }

    /// Starts the tracked run of a training of `name` on `source`, in `experiment`
    /// (default: the model's name), by the current user. Returns the run id and the user.
    pub fn start_training_run(
        &self,
        registry: &mut Registry,
        name: &str,
        experiment: Option<&str>,
        source: &str,
    ) -> anyhow::Result<(String, String)> {
        let user = user();
        let run_id = registry.start_run(&vigie_registry::NewRun {
            experiment: experiment.unwrap_or(name).to_owned(),
            name: format!("train {name}"),
            user: user.clone(),
            git_commit: self.git_commit(),
            data_source: Some(source.to_owned()),
            ..vigie_registry::NewRun::default()
        })?;
        Ok((run_id, user))
    }

    /// Ends a training run whose model is trained: `record` logs the run's parameters and
    /// metrics and gives the model, which is registered, and the run ends FINISHED. A
    /// registry or artifact store that fails on the way leaves the run FAILED, with why.
    pub fn register_run_model(
        registry: &mut Registry,
        run_id: &str,
        user: &str,
        record: impl FnOnce(&mut Registry) -> anyhow::Result<vigie_ml::SavedModel>,
    ) -> anyhow::Result<(vigie_ml::SavedModel, vigie_registry::VersionInfo)> {
        let registered = record(registry).and_then(|mut saved| {
            let finished = vigie_registry::RunStatus::Finished;
            let version = registry.register_and_end_run(&mut saved, run_id, user, finished)?;
            Ok((saved, version))
        });
        registered.map_err(|error| Project::fail_training_run(registry, run_id, error))
    }

    /// Ends a training run that failed with `error`, kept in its `error` tag so that
    /// `vigie runs show` says why; returns `error` (with a note when the registry could
    /// not record it either).
    pub fn fail_training_run(
        registry: &mut Registry,
        run_id: &str,
        error: anyhow::Error,
    ) -> anyhow::Error {
        let recorded = registry
            .set_tags(run_id, &[("error".to_owned(), format!("{error:#}"))])
            .and_then(|()| registry.end_run(run_id, vigie_registry::RunStatus::Failed));
        match recorded {
            Ok(()) => error,
            Err(also) => {
                error.context(format!("(run {run_id} could not be marked FAILED: {also})"))
            }
        }
    }

    /// The code version: the project's git commit, when it is a git checkout.
    pub fn git_commit(&self) -> Option<String> {
        git::head_commit(&self.dir)
    }
}

/// What a run records of the data it trained on.
pub fn run_data(data: &vigie_ml::model::DataFingerprint) -> vigie_registry::RunData<'_> {
    vigie_registry::RunData { sha256: &data.sha256, source: &data.source, rows: data.rows as u64 }
}

/// Who is running the command.
pub fn user() -> String {
    std::env::var("VIGIE_USER")
        .or_else(|_| std::env::var("USER"))
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// Parses `COL=TYPE` pairs.
pub fn column_types(pairs: &[String]) -> anyhow::Result<HashMap<String, ColumnKind>> {
    let mut types = HashMap::new();
    for pair in pairs {
        let (column, kind) = pair
            .split_once('=')
            .ok_or_else(|| UsageError(format!("--column-type {pair:?}: expected COLUMN=TYPE")))?;
        let kind: ColumnKind =
            kind.parse().map_err(|e: String| UsageError(format!("--column-type {pair:?}: {e}")))?;
        types.insert(column.to_owned(), kind);
    }
    Ok(types)
}

/// Reads a table, naming the file in any error.
pub fn read_table(
    path: &Path,
    types: &HashMap<String, ColumnKind>,
) -> anyhow::Result<vigie_core::Frame> {
    vigie_connectors::files::read_table(path, types)
        .with_context(|| "cannot read the data".to_owned())
}

/// The column names of a table, read cheaply for CSV (its header line) and from the schema otherwise.
pub fn header(path: &Path) -> anyhow::Result<Vec<String>> {
    if is_csv(path) {
        use std::io::BufRead;
        let io = |source| vigie_connectors::ConnectorError::Io { path: path.to_owned(), source };
        let file = std::fs::File::open(path).map_err(io)?;
        let mut line = String::new();
        std::io::BufReader::new(file).read_line(&mut line).map_err(io)?;
        return Ok(line
            .trim_end_matches(['\r', '\n'])
            .split(',')
            .map(|s| s.trim_matches('"').to_owned())
            .collect());
    }
    let frame = read_table(path, &HashMap::new())?;
    Ok(frame.names().into_iter().map(str::to_owned).collect())
}

/// Whether `path` names a CSV file (whose cells are all text until typed).
pub fn is_csv(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("csv"))
}

/// Now, as RFC 3339 UTC.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}
