//! Where trained models live: today a directory of versioned model files in
//! the project's state folder; the registry issue adds runs, aliases,
//! lineage, SQLite/PostgreSQL metadata and MLflow export on top.

mod error;
pub mod store;

pub use error::RegistryError;
pub use store::{ModelRef, ModelStore, StoredVersion};
