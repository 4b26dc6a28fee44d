//! Integration tests of the ML engine: one binary, one module per area.

mod forecast;
mod forest;
mod linear;
mod metrics;
mod model;
mod support;
