//! End-to-end tests of the `vigie` binary: run it as a user would, in a fresh
//! project folder, on a small real table (ISLP's `Default.csv`).

mod auth;
mod backends;
mod features;
mod forecast;
mod mlflow;
mod registry;
mod serve;
mod support;
mod train_predict;
