//! Tests of the metrics module.
