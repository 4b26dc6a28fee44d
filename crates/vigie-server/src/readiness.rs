//! Readiness: whether this server should be sent traffic now, and if not,
//! why. `GET /v2/health/ready` is 200 only when every required check
//! passes, else 503 with a JSON body naming each one that fails (`error`,
//! the field KServe V2 clients read, and `checks`, one entry per check):
//!
//! - `draining`: the server is stopping (SIGTERM or Ctrl-C): it accepts no
//!   more connections and finishes the requests in flight.
//! - `catalog`: the models served and the registry generation. `vigie serve`
//!   loads them before it opens its port, so this reports rather than gates.
//! - `audit`: the audit writer takes records; no prediction is answered
//!   without one.
//! - `online_store`: the online store can be read, embedded or MongoDB
//!   (no embedded file yet is fine: predictions by record need none; a
//!   MongoDB that does not answer is not ready, since predictions by entity
//!   would fail).
//! - `prediction_store`: reported, never required: while MongoDB is down the
//!   audit log spools the predictions and the server keeps answering.
//!
//! `GET /v2/models/{name}[/versions/{v}]/ready` runs the same checks for one
//! model, the online store only when that model reads features from it. The
//! V2 protocol says "4xx" for not ready; tritonclient and Kubernetes test
//! for 200, and 503 is the usual "up, but send no traffic". Liveness is not
//! readiness: `/v2/health/live` and MLflow's `/ping` and `/health` answer
//! 200 whenever the process serves HTTP, as MLflow's do once its model is
//! loaded (ours is loaded before the port opens).

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value as Json, json};

use crate::audit::AuditLog;
use crate::catalog::{Served, Shared};
use crate::online::OnlineReader;
use crate::predictions::PredictionStoreState;

/// Longest a readiness probe waits for the online store: a hung disk is "not ready".
const ONLINE_STORE_LIMIT: Duration = Duration::from_secs(2);

/// What readiness checks besides the catalog.
pub struct Readiness {
    audit: Arc<AuditLog>,
    online: Arc<OnlineReader>,
    predictions: Option<Arc<PredictionStoreState>>,
}

/// One check: what it found, and whether readiness requires it to pass.
struct Check {
    name: &'static str,
    found: Result<String, String>,
    required: bool,
}

/// Every check of one probe.
pub struct Report {
    checks: Vec<Check>,
}

impl Readiness {
    /// Readiness over these stores.
    pub fn new(
        audit: Arc<AuditLog>,
        online: Arc<OnlineReader>,
        predictions: Option<Arc<PredictionStoreState>>,
    ) -> Arc<Readiness> {
        Arc::new(Readiness { audit, online, predictions })
    }

    /// Runs the checks for the server, or for `model` alone.
    pub async fn report(&self, shared: &Shared, model: Option<&Served>) -> Report {
        let draining = if shared.is_draining() {
            Err("the server is stopping: it accepts no connection and finishes the requests in \
                 flight"
                .to_owned())
        } else {
            Ok("accepting requests".to_owned())
        };
        let catalog = shared.catalog();
        let mut loaded = format!(
            "{} model(s) served ({} forecast), as of registry generation {}",
            catalog.models.len() + catalog.forecasters.len(),
            catalog.forecasters.len(),
            catalog.generation
        );
        for (name, reason) in &catalog.skipped {
            loaded.push_str(&format!("; {name} not served: {reason}"));
        }
        let mut checks = vec![
            Check { name: "draining", found: draining, required: true },
            Check { name: "catalog", found: Ok(loaded), required: true },
            Check {
                name: "audit",
                found: self.audit.health().map(|()| "the writer takes records".to_owned()),
                required: true,
            },
        ];
        if model.is_none_or(|served| served.model.card.store.is_some()) {
            let found = self.online.check(ONLINE_STORE_LIMIT).await;
            checks.push(Check { name: "online_store", found, required: true });
        }
        if let Some(predictions) = &self.predictions {
            let found = predictions.describe();
            checks.push(Check { name: "prediction_store", found, required: false });
        }
        Report { checks }
    }
}

impl Report {
    /// Whether every required check passed.
    pub fn is_ready(&self) -> bool {
        self.checks.iter().all(|check| check.found.is_ok() || !check.required)
    }

    /// `body` with `ready` and `checks`: a 200 when ready, else a 503 whose
    /// `error` names every required check that failed.
    pub fn respond(self, mut body: Json) -> Response {
        let ready = self.is_ready();
        let failing: Vec<String> = self
            .checks
            .iter()
            .filter(|check| check.required)
            .filter_map(|check| {
                check.found.as_ref().err().map(|why| format!("{}: {why}", check.name))
            })
            .collect();
        let checks: Map<String, Json> = self
            .checks
            .into_iter()
            .map(|check| {
                let (ok, detail) = match check.found {
                    Ok(detail) => (true, detail),
                    Err(detail) => (false, detail),
                };
                let entry = json!({"ok": ok, "required": check.required, "detail": detail});
                (check.name.to_owned(), entry)
            })
            .collect();
        body["ready"] = json!(ready);
        body["checks"] = Json::Object(checks);
        if ready {
            return (StatusCode::OK, axum::Json(body)).into_response();
        }
        body["error"] = json!(format!("not ready: {}", failing.join("; ")));
        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests;
