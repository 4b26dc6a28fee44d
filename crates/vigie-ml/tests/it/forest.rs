//! Tests of the forest module.
