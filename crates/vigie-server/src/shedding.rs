//! Load shedding: at most `--max-in-flight` requests are handled at once; one
//! more is answered at once with 503, `Retry-After: 1` and the JSON error
//! every route uses, its body unread, rather than queued without bound
//! behind the others. Shed requests are counted in
//! `vigie_requests_shed_total`, those being handled in
//! `vigie_requests_in_flight`.
//!
//! The health and readiness probes are neither counted nor shed, so a
//! server at its limit still answers its orchestrator (`/metrics` is outside
//! this layer too). The limit is on requests, not connections: hyper reads
//! each connection in a task of its own, and a request is counted from its
//! head until its reply is built.

use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::{Semaphore, SemaphorePermit};
use vigie_core::ErrorCode;

use crate::error::{ApiError, unread_body};
use crate::metrics::Metrics;

/// `vigie serve`'s default limit. A request in flight mostly waits (for the
/// audit log's group commit and its `fdatasync`, for the online store), so
/// the limit bounds memory and queueing, not CPU, and is not a multiple of
/// the cores. By Little's law 100 000 requests/s at 1 ms each keep 100 in
/// flight; 1024 absorbs a 10 ms `fdatasync` stall at that rate. It stays
/// under the audit queue's 4096 places (`AuditOptions::queue_capacity`) with
/// the 32 shadow records, so requests alone cannot fill that queue: an
/// overload is refused here, before any scoring, not after it. Bodies may
/// be up to 8 MiB, so on a small machine set it lower.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 1024;

/// The route patterns neither counted nor shed: liveness and readiness.
const PROBES: [&str; 6] = [
    "/v2/health/live",
    "/v2/health/ready",
    "/v2/models/{name}/ready",
    "/v2/models/{name}/versions/{version}/ready",
    "/ping",
    "/health",
];

/// The limit, and the requests being handled under it.
pub struct Admission {
    slots: Semaphore,
    limit: usize,
    metrics: Arc<Metrics>,
}

impl Admission {
    /// At most `limit` requests at once (at least one).
    pub fn new(limit: usize, metrics: Arc<Metrics>) -> Arc<Admission> {
        let limit = limit.clamp(1, Semaphore::MAX_PERMITS);
        Arc::new(Admission { slots: Semaphore::new(limit), limit, metrics })
    }

    /// The 503 of a request over the limit.
    fn shed(&self) -> Response {
        self.metrics.requests_shed.inc();
        let mut response = ApiError::from_code(
            ErrorCode::Unavailable,
            format!(
                "the server is handling its limit of {} requests (--max-in-flight); retry shortly",
                self.limit
            ),
        )
        .into_response();
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        unread_body(response)
    }
}

/// One request being handled; its place is given back when dropped, also
/// when the client leaves before the reply.
struct InFlight<'a> {
    admission: &'a Admission,
    _slot: SemaphorePermit<'a>,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.admission.metrics.requests_in_flight.dec();
    }
}

/// The middleware: lets a request through if a place is free, else sheds it.
pub async fn admit(
    State(admission): State<Arc<Admission>>,
    request: Request,
    next: Next,
) -> Response {
    let probe = request
        .extensions()
        .get::<MatchedPath>()
        .is_some_and(|path| PROBES.contains(&path.as_str()));
    if probe {
        return next.run(request).await;
    }
    let Ok(slot) = admission.slots.try_acquire() else {
        return admission.shed();
    };
    admission.metrics.requests_in_flight.inc();
    let _in_flight = InFlight { admission: &admission, _slot: slot };
    next.run(request).await
}
