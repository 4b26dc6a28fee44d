//! Everything that can go wrong while ingesting, computing, storing or
//! joining features.

use std::path::PathBuf;

use vigie_core::ErrorCode;

/// An error of the feature store.
#[derive(Debug, thiserror::Error)]
pub enum FeatureError {
    /// A name that `vigie.toml` does not define.
    #[error("no {kind} {name:?} in vigie.toml; the {kind}s are: {known}")]
    Unknown {
        /// `source`, `feature view`, `entity`, `model`.
        kind: &'static str,
        /// The name asked for.
        name: String,
        /// The names defined.
        known: String,
    },
    /// The data does not fit the definition (a missing column, a bad timestamp).
    #[error("{0}")]
    InvalidData(String),
    /// A source kind this build cannot read yet.
    #[error("{0}")]
    Unsupported(String),
    /// A database source could not be read (names the server by its URL without the password).
    #[error("source {name:?}: {error}")]
    Source {
        /// The source's name in vigie.toml.
        name: String,
        /// What the connector reported. Not marked `#[source]`: the message already holds it,
        /// and a printed error chain would repeat it.
        error: vigie_connectors::ConnectorError,
    },
    /// The SQL engine refused or failed (names the view and expression when it can).
    #[error("{context}")]
    Engine {
        /// What was being computed.
        context: String,
        /// The engine's error.
        #[source]
        source: datafusion::error::DataFusionError,
    },
    /// Reading or writing the offline store failed.
    #[error("{path}: {message}")]
    Storage {
        /// The file or folder.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// Another stream processor holds the project's lock.
    #[error("{0}: another stream processor (`vigie stream` or `vigie serve`) runs on this project")]
    Busy(PathBuf),
    /// Another process appends to the project's event logs.
    #[error("{0}: another `vigie serve` appends to this project's event logs")]
    LogBusy(PathBuf),
    /// The online store failed. Not marked `#[source]`, as for `Source`: a printed error chain
    /// would repeat the message.
    #[error("online store: {0}")]
    Online(vigie_online::OnlineError),
}

impl From<vigie_online::OnlineError> for FeatureError {
    fn from(error: vigie_online::OnlineError) -> Self {
        FeatureError::Online(error)
    }
}

impl FeatureError {
    /// The shared classification of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            FeatureError::Unknown { .. } => ErrorCode::NotFound,
            FeatureError::InvalidData(_) | FeatureError::Unsupported(_) => ErrorCode::InvalidInput,
            FeatureError::Engine { source, .. } => match source {
                datafusion::error::DataFusionError::Plan(_)
                | datafusion::error::DataFusionError::SQL(..)
                | datafusion::error::DataFusionError::SchemaError(..) => ErrorCode::InvalidInput,
                _ => ErrorCode::Internal,
            },
            FeatureError::Source { error, .. } => error.code(),
            FeatureError::Storage { .. } => ErrorCode::Unavailable,
            FeatureError::Busy(_) | FeatureError::LogBusy(_) => ErrorCode::Conflict,
            FeatureError::Online(error) => error.code(),
        }
    }

    pub(crate) fn engine(
        context: impl Into<String>,
    ) -> impl FnOnce(datafusion::error::DataFusionError) -> Self {
        let context = context.into();
        move |source| FeatureError::Engine { context, source }
    }

    pub(crate) fn storage(path: impl Into<PathBuf>) -> impl FnOnce(String) -> Self {
        let path = path.into();
        move |message| FeatureError::Storage { path, message }
    }
}

/// Result alias of the feature store.
pub type Result<T, E = FeatureError> = std::result::Result<T, E>;
