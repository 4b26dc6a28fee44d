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
//!   ground truth for live accuracy (`feedback`); `/v1/events/{source}`,
//!   events for the stream processor (`events`); and the admin routes of
//!   `/v1` ([`admin`]): models, routing, aliases, rollback, per-variant
//!   statistics.
//!
//! [`Catalog`] holds the served models and their routing between versions
//! ([`routing`]: champion, canary by sticky key, A/B, shadow); a thread
//! watches the registry's generation counter and swaps in a new catalog when
//! a version, alias or routing changes, so a promotion, rollback or routing
//! change is served without a restart. Every reply names the model, version
//! and routing variant that answered. Every error is a 4xx or 5xx with a JSON
//! body naming the problem.
//!
//! Every prediction is recorded in a hash-chained audit log, durable before
//! the reply ([`audit`]); `/metrics` exports Prometheus metrics ([`Metrics`]).
//!
//! `/v1/openapi.json` documents every route ([`openapi`]).
//!
//! Every route but the health checks, `/metrics` and the OpenAPI document
//! is behind [`auth`]: OAuth2 bearer JWTs checked against the issuer's keys,
//! scopes mapped to [`Right`]s, or an anonymous caller with every right when
//! no issuer is configured (the CLI allows that on loopback addresses only).
//! [`tls`] serves the same routes over HTTPS (rustls, TLS 1.2+).
//!
//! Under load and when stopping: at most `max_in_flight` requests are handled
//! at once, more are answered 503 with `Retry-After` (`shedding`); large
//! requests are scored off the async runtime (`scoring`); readiness says
//! whether the server should get traffic and why not (`readiness`); on
//! SIGTERM or Ctrl-C [`serve`] stops accepting, turns unready, lets the
//! requests in flight and their shadow scorings finish, then returns.

pub mod admin;
pub mod audit;
pub mod auth;
mod binary;
mod catalog;
mod entity;
mod error;
mod events;
mod feedback;
mod forecast;
mod metrics;
mod mlflow;
mod online;
mod openapi;
mod predictions;
mod readiness;
pub mod routing;
mod rows;
mod scoring;
mod shedding;
pub mod tls;
mod v1;
mod v2;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::serve::ListenerExt as _;
use axum::{Extension, Router};

pub use audit::{AuditLog, AuditOptions, Durability};
pub use auth::{Access, AuthConfig, AuthError, Authenticator, Caller, Right};
pub use catalog::{Catalog, OpenRegistry, Served, ServedForecast, Shared};
pub use error::ApiError;
pub use events::{EventError, EventMetrics, EventSink, Events};
pub use feedback::FeedbackLog;
pub use metrics::Metrics;
pub use online::OnlineReader;
pub use predictions::{PredictionStore, PredictionStoreState};
pub use routing::{Route, RoutingState, VariantCounters, VariantSnapshot};
pub use shedding::DEFAULT_MAX_IN_FLIGHT;
pub use tls::TlsError;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// The stores the routes read besides the registry: the online store
/// (features by entity key) and the feedback log (ground truth).
pub struct Stores {
    /// Read-only access to the online store.
    pub online: Arc<OnlineReader>,
    /// Feedback on past predictions.
    pub feedback: Arc<FeedbackLog>,
    /// The event log of the HTTP sources, when the project has any.
    pub events: Option<Events>,
    /// The prediction store's copier, when one runs (its state is reported by readiness).
    pub predictions: Option<Arc<PredictionStoreState>>,
}

/// What the routes need besides the catalog.
pub struct Parts {
    /// Where every prediction is recorded before its reply.
    pub audit: Arc<AuditLog>,
    /// The metrics `/metrics` exports.
    pub metrics: Arc<Metrics>,
    /// Who may call (OAuth2), or anyone (loopback only).
    pub access: Arc<Access>,
    /// The online store and the feedback log.
    pub stores: Stores,
    /// Requests handled at once before more are shed with 503 ([`DEFAULT_MAX_IN_FLIGHT`]).
    pub max_in_flight: usize,
}

/// The routes of every protocol over the shared catalog, behind
/// authentication; predictions are recorded in the audit log and counted in
/// the metrics (refused requests too).
pub fn router(shared: Arc<Shared>, parts: Parts) -> Router {
    let Parts { audit, metrics, access, stores, max_in_flight } = parts;
    let admission = shedding::Admission::new(max_in_flight, metrics.clone());
    let readiness =
        readiness::Readiness::new(audit.clone(), stores.online.clone(), stores.predictions.clone());
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
    let mut app = Router::new()
        .merge(kserve)
        .route("/invocations", post(mlflow::invocations))
        .route("/ping", get(mlflow::ping))
        .route("/health", get(mlflow::ping))
        .route("/v1/models/{name}/predict", post(v1::predict))
        .route("/v1/models/{name}/forecast", post(forecast::forecast))
        .route("/v1/features/{view}/{key}", get(online::features))
        .route("/v1/feedback", post(feedback::feedback))
        .route("/v1/events/{source}", post(events::post))
        .route("/v1/openapi.json", get(openapi::document))
        .merge(admin::router())
        .fallback(error::not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(error::REQUEST_TIME_LIMIT, error::time_limit))
        .layer(axum::middleware::from_fn(error::refuse_declared_oversize))
        .layer(axum::middleware::from_fn_with_state(access, auth::authenticate))
        .layer(axum::middleware::from_fn_with_state(admission, shedding::admit))
        .layer(axum::middleware::from_fn_with_state(metrics.clone(), metrics::track))
        // After the layers above: no body limit, not counted as traffic.
        .route("/metrics", get(metrics::render))
        .layer(Extension(audit))
        .layer(Extension(metrics))
        .layer(Extension(stores.online))
        .layer(Extension(stores.feedback))
        .layer(Extension(readiness));
    if let Some(events) = stores.events {
        app = app.layer(Extension(events));
    }
    app.with_state(shared)
}

/// Serves on `listener` (over TLS when `tls` is given) until Ctrl-C or
/// SIGTERM, then drains as [`serve_until`] does.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    parts: Parts,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> std::io::Result<()> {
    serve_until(listener, shared, parts, tls, shutdown()).await
}

/// Serves as [`serve`] does until `stop` completes (`vigie demo` stops its
/// in-process server this way), then drains: readiness turns 503 at once,
/// the listener closes (new connections are refused), idle connections
/// close, each request in flight gets its reply (axum's graceful shutdown),
/// and the shadow scorings they started write their records. Every answered
/// prediction was durable before its reply, so the audit log then holds
/// everything; its writer stops when the last handle is dropped.
pub async fn serve_until(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    parts: Parts,
    tls: Option<Arc<rustls::ServerConfig>>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(Arc::clone(&shared), parts);
    let stopping = Arc::clone(&shared);
    let stop = async move {
        stop.await;
        stopping.start_draining();
    };
    match tls {
        None => {
            let listener = listener.tap_io(no_delay);
            axum::serve(listener, app).with_graceful_shutdown(stop).await?;
        }
        Some(config) => {
            let listener = tls::TlsListener::new(listener, config)?;
            axum::serve(listener, app).with_graceful_shutdown(stop).await?;
        }
    }
    shared.routing().shadows_finished().await;
    Ok(())
}

/// Replies leave at once: without `TCP_NODELAY` a reply can wait for the
/// client's acknowledgement of the one before (Nagle's algorithm).
pub(crate) fn no_delay(stream: &mut tokio::net::TcpStream) {
    // Best effort: a socket that refuses it still works, only slower.
    let _ = stream.set_nodelay(true);
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
    eprintln!("stopping: no new connections; finishing the requests in flight");
}
