//! Errors of the model store.

use std::path::PathBuf;

use vigie_core::ErrorCode;
use vigie_ml::MlError;

/// An error of the model store.
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
    /// A name or reference that cannot be a model.
    #[error("{0}")]
    InvalidName(String),
    /// The state folder could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
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
            RegistryError::UnknownModel { .. } | RegistryError::UnknownVersion { .. } => {
                ErrorCode::NotFound
            }
            RegistryError::InvalidName(_) => ErrorCode::InvalidInput,
            RegistryError::Io { .. } => ErrorCode::Unavailable,
            RegistryError::Model { source, .. } => source.code(),
        }
    }
}
