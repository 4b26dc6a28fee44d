//! Errors of reading and writing external data.

use std::path::PathBuf;

use vigie_core::ErrorCode;

/// An error reading or writing data.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// The file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The content is not valid for its format (names the line and column where known).
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where.
        message: String,
    },
    /// The file's extension names no format we read.
    #[error("{path}: unknown file format (expected .csv, .parquet or .pq)")]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
}

impl ConnectorError {
    /// The shared classification of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            ConnectorError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                ErrorCode::NotFound
            }
            ConnectorError::Io { .. } => ErrorCode::Unavailable,
            ConnectorError::Format { .. } | ConnectorError::UnknownFormat { .. } => {
                ErrorCode::InvalidInput
            }
        }
    }
}
