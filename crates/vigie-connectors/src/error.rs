//! Errors of reading and writing external data and of talking to external servers.

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
    /// An MLflow tracking server could not be reached, or refused or garbled a request.
    #[error("mlflow {endpoint}: {message}")]
    Mlflow {
        /// The method and path of the request.
        endpoint: String,
        /// The HTTP status of the answer; none when no answer came.
        status: Option<u16>,
        /// The server's error code and message (or why no answer came).
        message: String,
    },
    /// A PostgreSQL server could not be reached, or refused or failed a statement.
    #[error("postgresql {location}: {message}")]
    Postgres {
        /// The server's URL without the password.
        location: String,
        /// What happened, and what to check.
        message: String,
    },
    /// A PostgreSQL URL that cannot be used.
    #[error("postgresql {location}: {message}")]
    PostgresUrl {
        /// The URL without the password.
        location: String,
        /// What is wrong with it.
        message: String,
    },
    /// A MongoDB server could not be reached, or failed a query.
    #[error("mongodb {location}: {message}")]
    Mongo {
        /// The server's URL without the password.
        location: String,
        /// What happened, and what to check.
        message: String,
    },
    /// A feature-store source whose definition or data cannot be read as asked: an unknown
    /// table, a query the server refuses, a timestamp column of the wrong type, a bad filter.
    #[error("{system} {location}: {message}")]
    SourceInput {
        /// `postgresql` or `mongodb`.
        system: &'static str,
        /// The server's URL without the password.
        location: String,
        /// What is wrong, and what to change.
        message: String,
    },
    /// A SQL value of an unexpected type (a schema that does not match this build).
    #[error("unexpected SQL value in column {column}: {message}")]
    SqlType {
        /// The column's position in the select list, from 0.
        column: usize,
        /// What was expected and found.
        message: String,
    },
    /// A Kafka broker could not be reached, or refused a request.
    #[error("kafka {brokers}: {message}")]
    Kafka {
        /// The bootstrap servers.
        brokers: String,
        /// What happened.
        message: String,
    },
    /// An artifact store (folder or S3 bucket) refused or failed a request.
    #[error("{location}: {message}")]
    Artifacts {
        /// The object's file path or `s3://` URL (or the store's, before any object).
        location: String,
        /// What happened.
        message: String,
        /// True when the object does not exist.
        not_found: bool,
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
            // A 4xx is a request the server refuses (a bad name, a source outside the run);
            // no answer, a 5xx or a garbled answer is the server's problem.
            ConnectorError::Mlflow { status: Some(400..=499), .. } => ErrorCode::InvalidInput,
            ConnectorError::Mlflow { .. } => ErrorCode::Unavailable,
            ConnectorError::PostgresUrl { .. } | ConnectorError::SourceInput { .. } => {
                ErrorCode::InvalidInput
            }
            ConnectorError::Mongo { .. } | ConnectorError::Kafka { .. } => ErrorCode::Unavailable,
            ConnectorError::Postgres { .. } | ConnectorError::SqlType { .. } => {
                ErrorCode::Unavailable
            }
            ConnectorError::Artifacts { not_found: true, .. } => ErrorCode::NotFound,
            ConnectorError::Artifacts { .. } => ErrorCode::Unavailable,
        }
    }
}
