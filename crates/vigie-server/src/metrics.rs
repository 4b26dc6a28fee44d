//! `/metrics`: the server's counters and histograms in Prometheus' text
//! format, for a Prometheus server to scrape.
//!
//! One [`Metrics`] owns a private registry (no process-wide globals, so two
//! servers in one process do not mix their numbers). The [`track`]
//! middleware counts and times every request; the audit log observes the
//! scores, missing inputs and its own commits ([`crate::audit`]). Labels
//! are bounded: routes are route patterns, never raw paths, and model
//! labels are set only once a model was resolved.
//!
//! The online store's reads are timed in `vigie_online_store_duration_seconds`
//! (`online.rs`); live accuracy from feedback registers its own metrics
//! here (`feedback/live.rs`).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};
use vigie_core::Frame;

/// The labels of the model version a request was answered by, left in the
/// response's extensions by the scoring handlers for [`track`].
#[derive(Debug, Clone)]
pub struct ServedLabels {
    /// The model's name.
    pub model: String,
    /// Its version.
    pub version: String,
    /// The routing variant (champion, pinned, ...).
    pub variant: String,
}

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    prediction_duration: HistogramVec,
    score: HistogramVec,
    missing_features: IntCounterVec,
    /// Time of one online-store read (all the lookups of one request).
    pub(crate) online_store_duration: Histogram,
    /// Requests being handled (probes and `/metrics` aside).
    pub(crate) requests_in_flight: IntGauge,
    /// Requests answered 503 at once because too many were in flight.
    pub(crate) requests_shed: IntCounter,
    /// Predictions waiting for the audit writer.
    pub(crate) audit_queue_depth: IntGauge,
    /// Time of one audit commit: append and `fdatasync` (append only with `--audit-durability process`).
    pub(crate) audit_commit_duration: Histogram,
    /// Time of one background `fdatasync` (`--audit-durability process`).
    pub(crate) audit_flush_duration: Histogram,
    /// Records per audit commit.
    pub(crate) audit_batch_records: Histogram,
}

/// Latency buckets in seconds: 0.5 ms to about 8 s, doubling.
fn latency_buckets() -> Vec<f64> {
    prometheus::exponential_buckets(0.0005, 2.0, 15).unwrap_or_default()
}

/// Score buckets: 0.05 to 0.95 by 0.05, computed so the bounds print exactly.
fn score_buckets() -> Vec<f64> {
    (1..20).map(|k| f64::from(k) / 20.0).collect()
}

impl Metrics {
    /// A fresh set of metrics in a registry of its own.
    pub fn new() -> Result<Arc<Metrics>, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("vigie_requests_total", "HTTP requests answered, by route and status"),
            &["route", "model", "version", "variant", "status"],
        )?;
        let prediction_duration = HistogramVec::new(
            HistogramOpts::new(
                "vigie_prediction_duration_seconds",
                "Time to answer a scoring request, audit commit included",
            )
            .buckets(latency_buckets()),
            &["model", "version", "variant"],
        )?;
        let score = HistogramVec::new(
            HistogramOpts::new(
                "vigie_prediction_score",
                "Scores given (binary: the positive class' probability; multiclass: the \
                 chosen class' probability)",
            )
            .buckets(score_buckets()),
            &["model", "version"],
        )?;
        let missing_features = IntCounterVec::new(
            Opts::new("vigie_missing_features_total", "Model inputs received missing (null)"),
            &["model", "feature"],
        )?;
        let requests_in_flight = IntGauge::new(
            "vigie_requests_in_flight",
            "Requests being handled (health probes and /metrics aside)",
        )?;
        let requests_shed = IntCounter::new(
            "vigie_requests_shed_total",
            "Requests answered 503 at once because --max-in-flight requests were being handled",
        )?;
        let audit_queue_depth =
            IntGauge::new("vigie_audit_queue_depth", "Predictions waiting for the audit writer")?;
        let audit_commit_duration = Histogram::with_opts(
            HistogramOpts::new(
                "vigie_audit_commit_duration_seconds",
                "Time of one audit group commit (append and fdatasync; append only when durable once written)",
            )
            .buckets(latency_buckets()),
        )?;
        let audit_flush_duration = Histogram::with_opts(
            HistogramOpts::new(
                "vigie_audit_flush_duration_seconds",
                "Time of one background fdatasync of the audit log (durable once written)",
            )
            .buckets(latency_buckets()),
        )?;
        let audit_batch_records = Histogram::with_opts(
            HistogramOpts::new("vigie_audit_batch_records", "Records per audit group commit")
                .buckets(prometheus::exponential_buckets(1.0, 2.0, 12)?),
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(prediction_duration.clone()))?;
        registry.register(Box::new(score.clone()))?;
        registry.register(Box::new(missing_features.clone()))?;
        registry.register(Box::new(requests_in_flight.clone()))?;
        registry.register(Box::new(requests_shed.clone()))?;
        let online_store_duration = Histogram::with_opts(
            HistogramOpts::new(
                "vigie_online_store_duration_seconds",
                "Time of one read of the online store (all the lookups of one request)",
            )
            .const_label("store", "embedded")
            .buckets(prometheus::exponential_buckets(0.00005, 2.0, 16)?),
        )?;
        registry.register(Box::new(online_store_duration.clone()))?;
        registry.register(Box::new(audit_queue_depth.clone()))?;
        registry.register(Box::new(audit_commit_duration.clone()))?;
        registry.register(Box::new(audit_flush_duration.clone()))?;
        registry.register(Box::new(audit_batch_records.clone()))?;
        Ok(Arc::new(Metrics {
            registry,
            requests,
            prediction_duration,
            score,
            missing_features,
            online_store_duration,
            requests_in_flight,
            requests_shed,
            audit_queue_depth,
            audit_commit_duration,
            audit_flush_duration,
            audit_batch_records,
        }))
    }

    /// Adds a metric of another part of the server (the prediction store, feedback).
    pub(crate) fn register(
        &self,
        collector: Box<dyn prometheus::core::Collector>,
    ) -> Result<(), prometheus::Error> {
        self.registry.register(collector)
    }

    /// Every metric in Prometheus' text exposition format.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        TextEncoder::new().encode_to_string(&self.registry.gather())
    }

    /// Observes one request's scores and the inputs that came missing.
    pub(crate) fn observe_prediction(
        &self,
        labels: &ServedLabels,
        inputs: &Frame,
        scores: impl Iterator<Item = f64>,
    ) {
        let histogram = self.score.with_label_values(&[&labels.model, &labels.version]);
        for score in scores.filter(|s| s.is_finite()) {
            histogram.observe(score);
        }
        for column in inputs.columns() {
            let missing = column.data.missing_count();
            if missing > 0 {
                self.missing_features
                    .with_label_values(&[&labels.model, &column.name])
                    .inc_by(missing as u64);
            }
        }
    }
}

/// `GET /metrics`.
pub async fn render(metrics: axum::Extension<Arc<Metrics>>) -> Response {
    match metrics.render() {
        Ok(text) => {
            ([(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"))], text)
                .into_response()
        }
        Err(error) => crate::ApiError::from_code(
            vigie_core::ErrorCode::Internal,
            format!("cannot render the metrics: {error}"),
        )
        .into_response(),
    }
}

/// Counts and times every request by route pattern and status, with the
/// model labels a scoring handler left in the response. A 503 (audit queue
/// full, audit log or registry unavailable) gets `Retry-After: 1`: the
/// condition is transient and clients should back off, not give up.
pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let started = Instant::now();
    let mut response = next.run(request).await;
    let elapsed = started.elapsed().as_secs_f64();
    let status = response.status();
    let labels = response.extensions().get::<ServedLabels>();
    let (model, version, variant) =
        labels.map_or(("", "", ""), |l| (l.model.as_str(), l.version.as_str(), l.variant.as_str()));
    metrics
        .requests
        .with_label_values(&[route.as_str(), model, version, variant, status.as_str()])
        .inc();
    if labels.is_some() && status.is_success() {
        metrics.prediction_duration.with_label_values(&[model, version, variant]).observe(elapsed);
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response.headers_mut().entry(header::RETRY_AFTER).or_insert(HeaderValue::from_static("1"));
    }
    response
}
