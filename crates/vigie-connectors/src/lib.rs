//! Sources and sinks of data: files (CSV and Parquet, through Arrow), and the
//! feature store's database sources as Arrow record batches read since a
//! watermark: `postgres::read_since` (a table or query) and
//! `mongodb::read_since` (a collection, nested fields flattened); `mongodb::MongoLatest`,
//! the online store's collection of latest features per key; `kafka`, a
//! topic of JSON events read in a consumer group (and a producer), one module
//! per system. Also the clients of external servers that are not
//! data sources: `mlflow`, the tracking server the registry exports to;
//! `postgres`, the registry's shared metadata database (rows as [`sql`]
//! values); `artifacts`, model files on local disk or S3.
//!
//! Data connectors turn external bytes into [`vigie_core::Frame`]s (and
//! back) and name the file, line and column of any problem; clients name the
//! endpoint and quote the server's answer.

pub mod artifacts;
mod error;
pub mod files;
pub mod kafka;
pub mod mlflow;
pub mod mongodb;
pub mod postgres;
pub mod sql;

pub use error::ConnectorError;

/// The rows of a database source read since a watermark.
#[derive(Debug)]
pub struct SourceRows {
    /// The rows whose time is later than the watermark, in time order.
    pub batches: Vec<arrow::array::RecordBatch>,
    /// Rows (or documents) matching the source whose time is missing (NULL, absent or not a
    /// date): never read, since no watermark can place them, and counted so they are not lost
    /// silently.
    pub untimed: u64,
}
