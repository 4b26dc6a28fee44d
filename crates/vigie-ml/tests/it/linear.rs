//! Tests of the linear module.
