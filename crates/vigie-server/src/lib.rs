//! Vigie's prediction server: every registered model's serving version over
//! REST, speaking three protocols on one port.
//!
//! - Open Inference Protocol (KServe V2): health, server and model metadata,
//!   readiness, `infer` with and without a version ([`v2`]).
//! - MLflow scoring: `POST /invocations` (`dataframe_split`,
//!   `dataframe_records`, `instances`, `inputs`), `/ping`, `/health` ([`mlflow`]).
//! - Vigie's own `/v1/models/{name}/predict`, with exact explanations ([`v1`]).
//!
//! [`Catalog`] holds the served models; a thread watches the registry's
//! generation counter and swaps in a new catalog when a version or alias
//! changes, so a promotion or rollback is served without a restart. Every
//! error is a 4xx or 5xx with a JSON body naming the problem.
//!
//! Every route but the health checks is behind [`auth`]: OAuth2 bearer JWTs
//! checked against the issuer's keys, scopes mapped to [`Right`]s, or an
//! anonymous caller with every right when no issuer is configured (the CLI
//! allows that on loopback addresses only). [`tls`] serves the same routes
//! over HTTPS (rustls, TLS 1.2+).
//!
//! Not yet: routing between versions, audit, metrics, the OpenAPI document.

pub mod auth;
mod catalog;
mod error;
mod mlflow;
mod rows;
pub mod tls;
mod v1;
mod v2;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

pub use auth::{Access, AuthConfig, AuthError, Authenticator, Caller, Right};
pub use catalog::{Catalog, OpenRegistry, Served, Shared};
pub use error::ApiError;
pub use tls::TlsError;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// The routes of every protocol over the shared catalog.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v2", get(v2::server_metadata))
        .route("/v2/health/live", get(v2::live))
        .route("/v2/health/ready", get(v2::ready))
        .route("/v2/models/{name}", get(v2::model_metadata))
        .route("/v2/models/{name}/ready", get(v2::model_ready))
        .route("/v2/models/{name}/versions/{version}", get(v2::version_metadata))
        .route("/v2/models/{name}/versions/{version}/ready", get(v2::version_ready))
        .route("/v2/models/{name}/infer", post(v2::infer))
        .route("/v2/models/{name}/versions/{version}/infer", post(v2::infer_version))
        .route("/invocations", post(mlflow::invocations))
        .route("/ping", get(mlflow::ping))
        .route("/health", get(mlflow::ping))
        .route("/v1/models/{name}/predict", post(v1::predict))
        .fallback(error::not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(error::refuse_declared_oversize))
        .with_state(shared)
}

/// The routes behind the authentication layer of `access`.
pub fn app(shared: Arc<Shared>, access: Arc<Access>) -> Router {
    router(shared).layer(axum::middleware::from_fn_with_state(access, auth::authenticate))
}

/// Serves on `listener` (over TLS when `tls` is given) until Ctrl-C or
/// SIGTERM, then lets in-flight requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    access: Arc<Access>,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> std::io::Result<()> {
    let app = app(shared, access);
    match tls {
        None => axum::serve(listener, app).with_graceful_shutdown(shutdown()).await,
        Some(config) => {
            let listener = tls::TlsListener::new(listener, config)?;
            axum::serve(listener, app).with_graceful_shutdown(shutdown()).await
        }
    }
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
