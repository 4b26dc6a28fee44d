//! End-to-end tests of the `vigie` binary: run it as a user would, in a fresh
//! project folder, on a small real table (ISLP's `Default.csv`).

mod audit;
mod auth;
mod backends;
mod demo;
mod entity;
mod example;
mod features;
mod forecast;
mod forecast_project;
mod kafka;
mod metrics;
mod mlflow;
mod openapi;
mod predictions;
mod registry;
mod routing;
mod serve;
mod stream;
mod support;
mod train_predict;
mod tritonclient;
