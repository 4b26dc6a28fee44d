//! Errors of the registry.

use std::path::PathBuf;

use vigie_connectors::ConnectorError;
use vigie_core::ErrorCode;
use vigie_ml::MlError;

/// An error of the registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// No model of that name.
    #[error("no model named {name:?}{hint}")]
    UnknownModel {
        /// The name asked for.
        name: String,
        /// The names that exist, as a suffix.
        hint: String,
    },
    /// The model exists but not that version.
    #[error("model {name:?} has no version {version}; its versions are {available}")]
    UnknownVersion {
        /// The model.
        name: String,
        /// The version asked for.
        version: u32,
        /// The versions that exist.
        available: String,
    },
    /// The model has no such alias.
    #[error("model {name:?} has no alias {alias:?}{hint}")]
    UnknownAlias {
        /// The model.
        name: String,
        /// The alias asked for.
        alias: String,
        /// The aliases that exist, as a suffix.
        hint: String,
    },
    /// A routing that cannot be applied: weights out of range, bad variant names, a version
    /// that is not a tabular model (nothing was changed).
    #[error("routing of {name:?}: {message}")]
    InvalidRouting {
        /// The model.
        name: String,
        /// What is wrong with it.
        message: String,
    },
    /// No run with that id.
    #[error("no run {0:?}")]
    UnknownRun(String),
    /// The change is not allowed in the current state (nothing was changed).
    #[error("{0}")]
    Conflict(String),
    /// A name or reference that cannot be used.
    #[error("{0}")]
    InvalidName(String),
    /// A file of the state folder could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The metadata database failed: locked past the timeout, unreachable, or refused a
    /// statement. Nothing of the change in progress was written.
    #[error("registry database {location}: {message}")]
    Database {
        /// The database file, or its URL without the password.
        location: String,
        /// What happened, and what to check.
        message: String,
    },
    /// A registry database or artifact store URL that cannot be used.
    #[error("{0}")]
    Location(String),
    /// The artifact store (folder or S3 bucket) failed or has no such object.
    #[error(transparent)]
    Artifacts(ConnectorError),
    /// The MLflow tracking server of an export failed or refused a request.
    #[error(transparent)]
    Mlflow(#[from] ConnectorError),
    /// A stored model file is unreadable.
    #[error("{path}: {source}")]
    Model {
        /// The file.
        path: PathBuf,
        /// Why.
        source: MlError,
    },
}

impl RegistryError {
    /// The shared classification of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            RegistryError::UnknownModel { .. }
            | RegistryError::UnknownVersion { .. }
            | RegistryError::UnknownAlias { .. }
            | RegistryError::UnknownRun(_) => ErrorCode::NotFound,
            RegistryError::Conflict(_) => ErrorCode::Conflict,
            RegistryError::InvalidName(_)
            | RegistryError::InvalidRouting { .. }
            | RegistryError::Location(_) => ErrorCode::InvalidInput,
            RegistryError::Io { .. } | RegistryError::Database { .. } => ErrorCode::Unavailable,
            RegistryError::Artifacts(source) => source.code(),
            RegistryError::Model { source, .. } => source.code(),
            RegistryError::Mlflow(source) => source.code(),
        }
    }
}

/// Result alias of the registry.
pub type Result<T, E = RegistryError> = std::result::Result<T, E>;
