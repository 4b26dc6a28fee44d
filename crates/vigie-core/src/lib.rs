//! Vigie's shared vocabulary: the project file ([`Config`], `vigie.toml`),
//! the columnar [`Frame`] every part reads and
//! writes, single-row [`Value`]s for serving, the feature-store origin of a
//! model's inputs ([`lineage`]), IANA time zones ([`zone`]), and the closed [`ErrorCode`]
//! that every crate's error maps to (the server turns it into an HTTP status,
//! the CLI into an exit code).
//!
//! This crate depends on nothing of ours and does no I/O.

pub mod config;
mod error;
pub mod frame;
pub mod lineage;
mod value;
pub mod zone;

pub use config::{Config, ConfigError};
pub use error::ErrorCode;
pub use frame::{Column, ColumnData, ColumnKind, Frame, FrameError, TextColumn};
pub use value::Value;
