//! Integration tests of the feature store: one binary, one module per area.

mod clean;
mod join;
mod kafka;
mod sources;
mod store;
mod stream;
mod window;
