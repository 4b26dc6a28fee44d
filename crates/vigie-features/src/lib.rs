//! The feature store: feature views declared in `vigie.toml`, computed over
//! history for training and kept fresh online for serving.
//!
//! - [`engine`]: every source (files here; PostgreSQL and MongoDB through
//!   `sources`) ingested incrementally into the offline store
//!   (Parquet), views computed by DataFusion (row-level SQL expressions) and
//!   the [`window`] kernel (per-entity sliding aggregations, lateness rule).
//! - [`clean`]: the view's learned cleaning of row-level features (the ML
//!   engine's imputation, scaling and text categorisation), shared by both
//!   executions.
//! - [`join`]: the point-in-time join that builds training sets, over a
//!   view's rows grouped by key ([`index`]).
//! - [`online`]: materialisation of views into the online store (crate
//!   `vigie-online`: embedded, or a MongoDB collection), latest row per
//!   entity key.
//! - [`offline`]: the Parquet layout, on disk or S3.
//! - [`events`]: the log of events posted to HTTP sources, their checks and
//!   their conversion to rows; [`stream`]: the stream processor, which runs
//!   the same compiled views and window kernel over them as they arrive.
//!
//! DataFusion lives in this crate only; database clients live in
//! `vigie-connectors`; the offline store and file sources may be on S3.

pub mod clean;
pub mod engine;
mod error;
pub mod events;
pub mod index;
pub mod join;
pub mod offline;
pub mod online;
mod sources;
pub mod stream;
pub mod window;

pub use engine::{FeatureStore, IngestSummary, ViewSummary};
pub use error::{FeatureError, Result};
pub use events::{AppendError, Appended, DeadLetter, EventLog, Refusal};
pub use index::ViewIndex;
pub use join::{FeatureRef, TrainingTable};
pub use online::{OnlineError, OnlineLocation, OnlineRow, OnlineStore};
pub use stream::{Progress, StepSummary, StreamProcessor};
