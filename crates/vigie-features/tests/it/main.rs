//! Integration tests of the feature store: one binary, one module per area.

mod join;
mod store;
mod window;
