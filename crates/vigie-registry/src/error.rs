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
    /// The metadata database failed (locked, unreachable, corrupted).
    #[error("registry database: {0}")]
    Database(#[from] rusqlite::Error),
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
            RegistryError::InvalidName(_) => ErrorCode::InvalidInput,
            RegistryError::Io { .. } | RegistryError::Database(_) => ErrorCode::Unavailable,
            RegistryError::Model { source, .. } => source.code(),
            RegistryError::Mlflow(source) => source.code(),
        }
    }
}

/// Result alias of the registry.
pub type Result<T, E = RegistryError> = std::result::Result<T, E>;
