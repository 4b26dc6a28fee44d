//! Experiment tracking and the model registry.
//!
//! Every training is a *run* (parameters, metrics with per-step history,
//! tags, artifacts, data fingerprint, code version, user, times, status),
//! grouped in *experiments*; a search's trials are child runs of the
//! search's run. Registered models have immutable *versions*, each linked
//! to the run that produced it, and *aliases* (`champion`, `challenger`, any
//! name) whose every move is kept in a history. Metadata lives in SQLite
//! (`.vigie/registry.db`, the default) or a PostgreSQL database that several
//! Vigie processes share; model files are artifacts under `artifacts/RUN/` in
//! the state folder or an S3 bucket ([`RegistryLocation`]). Each change is one
//! transaction, and a generation counter increases with every change to
//! versions, aliases or routing ([`Routing`]: champion, canary, shadow, A/B), so a
//! server can watch it and reload without a restart.
//!
//! [`mlflow_export`] copies all of it to an MLflow tracking server, idempotently.

mod db;
mod error;
pub mod mlflow_export;
mod queries;
mod reference;
mod registry;
mod tracking;

pub use db::WRITE_LOCK_KEY;
pub use error::{RegistryError, Result};
pub use mlflow_export::{ExportCount, ExportSummary};
pub use reference::{ModelRef, Selector, validate_name};
pub use registry::{
    AbVariant, AliasMove, LOCK_TIMEOUT, ModelSummary, Registry, RegistryLocation, Routing,
    RoutingChange, Split, VersionInfo,
};
pub use tracking::{MetricPoint, NewRun, RunBatch, RunData, RunDetail, RunStatus, RunSummary};
