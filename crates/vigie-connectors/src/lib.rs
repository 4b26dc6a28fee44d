//! Sources and sinks of data: files today (CSV and Parquet, through Arrow);
//! PostgreSQL, MongoDB, S3 and Kafka as the feature-store issue adds them,
//! one module per system.
//!
//! Everything here turns external bytes into [`vigie_core::Frame`]s (and
//! back) and names the file, line and column of any problem.

mod error;
pub mod files;

pub use error::ConnectorError;
