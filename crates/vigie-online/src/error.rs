//! Why the online store cannot be opened, read or written.

use vigie_core::ErrorCode;

/// Why the online store cannot be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum OnlineError {
    /// SQLite refused or failed.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// The store's folder could not be made.
    #[error("{path}: {source}")]
    Folder {
        /// The folder.
        path: String,
        /// The system's error.
        source: std::io::Error,
    },
    /// A stored row is not a JSON object, or a document has no event time.
    #[error("the row of {view:?} {key:?} is unreadable")]
    Unreadable {
        /// The view.
        view: String,
        /// The entity key.
        key: String,
    },
    /// The MongoDB server is unreachable, or refused a read or a write (names the server
    /// without its password).
    #[error(transparent)]
    Mongo(#[from] vigie_connectors::ConnectorError),
    /// `[storage] online` cannot be used as it is.
    #[error("vigie.toml [storage] online: {0}")]
    Config(String),
}

impl OnlineError {
    /// The shared classification of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            OnlineError::Sqlite(_) | OnlineError::Folder { .. } => ErrorCode::Unavailable,
            OnlineError::Unreadable { .. } => ErrorCode::Corrupted,
            OnlineError::Mongo(error) => error.code(),
            OnlineError::Config(_) => ErrorCode::InvalidInput,
        }
    }
}

/// Results of the online store.
pub type Result<T> = std::result::Result<T, OnlineError>;
