//! The online store: the latest feature row of each entity key per view,
//! read by key. Two backends behind one type, [`OnlineStore`], chosen by
//! [`OnlineLocation`] from `[storage] online` of `vigie.toml`:
//!
//! - embedded (the default): SQLite, `.vigie/online.db` (WAL), read in
//!   microseconds, no server (`embedded`);
//! - MongoDB: one document per view and key whose fields are the features,
//!   so other applications and models read them as ordinary documents
//!   (`vigie_connectors::mongodb::MongoLatest`).
//!
//! Both keep the same rule, written once in [`rows`]: a row replaces the
//! stored row of its key only when it is newer (later event time, then later
//! arrival), or is the same event with other values (provisional values made
//! final), decided by the store itself in one atomic statement, so writing
//! the same history twice, overlapping history, or two writers at once leave
//! the newest row. Callers never ask which backend they have.
//!
//! It is its own small crate (no arrow, no DataFusion) so that both the
//! feature store, which writes it, and the prediction server, which reads
//! it, use the same code without the server linking DataFusion. Turning a
//! computed view into rows is the feature store's job
//! (`vigie_features::online::materialize`); this crate stores and reads rows.
//! Redis as an online store is not written.

mod embedded;
mod error;
pub mod rows;
mod store;

pub use error::{OnlineError, Result};
pub use rows::{LatestRow, OnlineRow};
pub use store::{OnlineLocation, OnlineStore};

#[cfg(test)]
mod tests;
