//! `POST /v1/events/{source}`: events for a streaming source (`kind =
//! "http"`), the embedded alternative to a Kafka topic. Every event of a
//! request is checked first and then all are appended to the source's
//! durable log, or none is: a refused event is a 400 naming its position and
//! field (`events[3].ts`). The reply, a 202, comes once the events are on
//! disk; the stream processor (run by `vigie serve` or `vigie stream`) turns
//! them into features.
//!
//! The log belongs to the feature store, which this crate does not link: the
//! CLI passes it in as an [`EventSink`].

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::Path;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use prometheus::{IntCounter, IntCounterVec, Opts};
use serde_json::{Value as Json, json};
use vigie_core::ErrorCode;

use crate::auth::{Caller, Right};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::rows::parse_body;

/// Why an append was not done.
#[derive(Debug)]
pub enum EventError {
    /// No such source, or not one that takes posted events (404).
    UnknownSource(String),
    /// An event is refused; the message names its position and field (400).
    Refused(String),
    /// The log cannot be written (503).
    Unavailable(String),
}

/// Where posted events go: the feature store's event log.
pub trait EventSink: Send + Sync {
    /// Checks `events` and appends them all to `source`'s log, durable on return, or
    /// appends none; returns the sequence number of the first.
    fn append(&self, source: &str, events: &[Json]) -> Result<u64, EventError>;
}

/// The counters of events received and processed.
pub struct EventMetrics {
    received: IntCounterVec,
    processed: IntCounterVec,
    online_updates: IntCounter,
}

impl EventMetrics {
    /// The counters, registered with the server's metrics.
    pub fn register(metrics: &Metrics) -> Result<Arc<EventMetrics>, prometheus::Error> {
        let received = IntCounterVec::new(
            Opts::new(
                "vigie_events_received_total",
                "Events posted to /v1/events, by source and outcome (accepted, refused)",
            ),
            &["source", "outcome"],
        )?;
        let processed = IntCounterVec::new(
            Opts::new(
                "vigie_stream_events_total",
                "Events read by the stream processor, by outcome (stored, dead_letter: cannot \
                 be stored; late: stored but refused by a view's lateness rule)",
            ),
            &["outcome"],
        )?;
        let online_updates = IntCounter::new(
            "vigie_stream_online_updates_total",
            "Online rows written by the stream processor",
        )?;
        metrics.register(Box::new(received.clone()))?;
        metrics.register(Box::new(processed.clone()))?;
        metrics.register(Box::new(online_updates.clone()))?;
        Ok(Arc::new(EventMetrics { received, processed, online_updates }))
    }

    /// Counts one step of the stream processor.
    pub fn processed(&self, stored: u64, dead_letters: u64, late: u64, online_updates: u64) {
        self.processed.with_label_values(&["stored"]).inc_by(stored);
        self.processed.with_label_values(&["dead_letter"]).inc_by(dead_letters);
        self.processed.with_label_values(&["late"]).inc_by(late);
        self.online_updates.inc_by(online_updates);
    }
}

/// The event log and the counters of the stream processor, in the router's extensions.
#[derive(Clone)]
pub struct Events {
    /// The log, when the project has HTTP sources.
    pub sink: Option<Arc<dyn EventSink>>,
    /// The counters.
    pub metrics: Arc<EventMetrics>,
}

/// `POST /v1/events/{source}` with `{"events": [{...}, ...]}`.
pub async fn post(
    caller: Caller,
    Path(source): Path<String>,
    events: Option<Extension<Events>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, axum::Json<Json>), ApiError> {
    caller.require(Right::Ingest)?;
    let Some((events, sink)) =
        events.and_then(|Extension(events)| events.sink.clone().map(|sink| (events, sink)))
    else {
        return Err(ApiError::from_code(
            ErrorCode::NotFound,
            format!(
                "no source {source:?} takes events: the project has no source with kind = \"http\""
            ),
        ));
    };
    let body = parse_body(&body?)?;
    let list = match body.get("events") {
        Some(Json::Array(list)) => list,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "events: expected a list of event objects, got {}",
                kind(other)
            )));
        }
        None => {
            return Err(ApiError::bad_request(
                "missing field \"events\": send {\"events\": [{...}, ...]}",
            ));
        }
    };
    if let Some(extra) = body.as_object().and_then(|o| o.keys().find(|k| *k != "events")) {
        return Err(ApiError::bad_request(format!(
            "unknown field {extra:?}: the body has only \"events\""
        )));
    }
    let count = list.len();
    let name = source.clone();
    let appended = tokio::task::spawn_blocking(move || {
        let list = match body {
            Json::Object(mut fields) => fields.remove("events"),
            _ => None,
        };
        match list {
            Some(Json::Array(list)) => sink.append(&name, &list),
            _ => Err(EventError::Unavailable("internal: the events vanished".into())),
        }
    })
    .await
    .map_err(|e| ApiError::from_code(ErrorCode::Internal, format!("event log: {e}")))?;
    let outcome = if appended.is_ok() { "accepted" } else { "refused" };
    events.metrics.received.with_label_values(&[source.as_str(), outcome]).inc_by(count as u64);
    let first = appended.map_err(|error| match error {
        EventError::UnknownSource(message) => ApiError::from_code(ErrorCode::NotFound, message),
        EventError::Refused(message) => ApiError::bad_request(message),
        EventError::Unavailable(message) => {
            ApiError::from_code(ErrorCode::Unavailable, format!("event log: {message}"))
        }
    })?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({
            "source": source,
            "accepted": count,
            "first_sequence": first,
        })),
    ))
}

fn kind(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "text",
        Json::Array(_) => "a list",
        Json::Object(_) => "an object",
    }
}
