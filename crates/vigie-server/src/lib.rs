//! Vigie's prediction server: every registered model's serving version over
//! REST, speaking three protocols on one port.
//!
//! - Open Inference Protocol (KServe V2): health, server and model metadata,
//!   readiness, `infer` with and without a version ([`v2`]).
//! - MLflow scoring: `POST /invocations` (`dataframe_split`,
//!   `dataframe_records`, `instances`, `inputs`), `/ping`, `/health` ([`mlflow`]).
//! - Vigie's own `/v1/models/{name}/predict`, with exact explanations ([`v1`]),
//!   from records or by entity key with features read from the online store
//!   (`entity`, `online`); `/v1/features/{view}/{key}`; `/v1/feedback`,
//!   ground truth for live accuracy (`feedback`).
//!
//! [`Catalog`] holds the served models; a thread watches the registry's
//! generation counter and swaps in a new catalog when a version or alias
//! changes, so a promotion or rollback is served without a restart. Every
//! error is a 4xx or 5xx with a JSON body naming the problem.
//!
//! Every prediction is recorded in a hash-chained audit log, durable before
//! the reply ([`audit`]); `/metrics` exports Prometheus metrics ([`Metrics`]).
//!
//! `/v1/openapi.json` documents every route ([`openapi`]).
//!
//! Not yet: authentication and TLS (so [`serve`] binds loopback addresses
//! only), routing between versions.

pub mod audit;
mod binary;
mod catalog;
mod entity;
mod error;
mod feedback;
mod metrics;
mod mlflow;
mod online;
mod openapi;
mod rows;
mod v1;
mod v2;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::{Extension, Router};

pub use audit::{AuditLog, AuditOptions};
pub use catalog::{Catalog, OpenRegistry, Served, Shared};
pub use error::ApiError;
pub use feedback::FeedbackLog;
pub use metrics::Metrics;
pub use online::OnlineReader;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// The stores the routes read besides the registry: the online store
/// (features by entity key) and the feedback log (ground truth).
pub struct Stores {
    /// Read-only access to the online store.
    pub online: Arc<OnlineReader>,
    /// Feedback on past predictions.
    pub feedback: Arc<FeedbackLog>,
}

/// The routes of every protocol over the shared catalog; predictions are
/// recorded in `audit`, and counted in `metrics`.
pub fn router(
    shared: Arc<Shared>,
    audit: Arc<AuditLog>,
    metrics: Arc<Metrics>,
    stores: Stores,
) -> Router {
    let kserve = Router::new()
        .route("/v2", get(v2::server_metadata))
        .route("/v2/health/live", get(v2::live))
        .route("/v2/health/ready", get(v2::ready))
        .route("/v2/models/{name}", get(v2::model_metadata))
        .route("/v2/models/{name}/ready", get(v2::model_ready))
        .route("/v2/models/{name}/versions/{version}", get(v2::version_metadata))
        .route("/v2/models/{name}/versions/{version}/ready", get(v2::version_ready))
        .route("/v2/models/{name}/infer", post(v2::infer))
        .route("/v2/models/{name}/versions/{version}/infer", post(v2::infer_version))
        .layer(axum::middleware::map_response(v2::protocol_error));
    Router::new()
        .merge(kserve)
        .route("/invocations", post(mlflow::invocations))
        .route("/ping", get(mlflow::ping))
        .route("/health", get(mlflow::ping))
        .route("/v1/models/{name}/predict", post(v1::predict))
        .route("/v1/features/{view}/{key}", get(online::features))
        .route("/v1/feedback", post(feedback::feedback))
        .route("/v1/openapi.json", get(openapi::document))
        .fallback(error::not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(error::refuse_declared_oversize))
        .layer(axum::middleware::from_fn_with_state(metrics.clone(), metrics::track))
        // After the layers above: no body limit, not counted as traffic.
        .route("/metrics", get(metrics::render))
        .layer(Extension(audit))
        .layer(Extension(metrics))
        .layer(Extension(stores.online))
        .layer(Extension(stores.feedback))
        .with_state(shared)
}

/// Serves on `addr` until Ctrl-C or SIGTERM, then lets in-flight requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    audit: Arc<AuditLog>,
    metrics: Arc<Metrics>,
    stores: Stores,
) -> std::io::Result<()> {
    axum::serve(listener, router(shared, audit, metrics, stores))
        .with_graceful_shutdown(shutdown())
        .await
}

/// Whether `addr` is a loopback address, the only kind served without authentication.
pub fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
