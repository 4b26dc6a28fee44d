//! Sources and sinks of data: files today (CSV and Parquet, through Arrow);
//! PostgreSQL, MongoDB, S3 and Kafka as the feature-store issue adds them,
//! one module per system. Also the clients of external servers that are not
//! data sources: `mlflow`, the tracking server the registry exports to.
//!
//! Data connectors turn external bytes into [`vigie_core::Frame`]s (and
//! back) and name the file, line and column of any problem; clients name the
//! endpoint and quote the server's answer.

mod error;
pub mod files;
pub mod mlflow;

pub use error::ConnectorError;
