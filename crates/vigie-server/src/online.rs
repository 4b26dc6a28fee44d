//! Reads of the online store (crate `vigie-online`, embedded or MongoDB)
//! for the server: a small pool of read-only handles, used off the async
//! runtime (both backends block) except for a few keys of the embedded
//! store, which are read in place (a read from SQLite's cache takes
//! microseconds, less than the two thread switches of the blocking pool
//! cost on a busy machine); every read timed in
//! `vigie_online_store_duration_seconds`; and the route that returns an
//! entity's latest features, `GET /v1/features/{view}/{key}`. A store that
//! cannot be read answers 503 (MongoDB down, a broken file), and readiness
//! says so.
//!
//! The store is opened on first use, so `vigie serve` starts before the
//! first `vigie materialize` (or with MongoDB down), and sees what a later
//! one writes.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, UNIX_EPOCH};

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value as Json, json};
use vigie_core::ErrorCode;
use vigie_online::{OnlineError, OnlineLocation, OnlineStore};

use crate::auth::{Caller, Right};
use crate::catalog::Shared;
use crate::error::ApiError;
use crate::metrics::Metrics;

/// Most keys of the embedded store read in place on the async runtime.
const INLINE_KEYS: usize = 16;

/// Idle handles kept for reuse; more are opened under load and closed after (MongoDB
/// handles share the location's client and its connection pool).
const POOL_SIZE: usize = 8;

/// The server's read-only access to the online store.
pub struct OnlineReader {
    location: OnlineLocation,
    idle: Mutex<Vec<OnlineStore>>,
    metrics: Arc<Metrics>,
}

impl From<OnlineError> for ApiError {
    fn from(error: OnlineError) -> Self {
        ApiError::from_code(error.code(), format!("online store: {error}"))
    }
}

impl OnlineReader {
    /// A reader of the store at `location` (opened on first use).
    pub fn new(location: OnlineLocation, metrics: Arc<Metrics>) -> Arc<OnlineReader> {
        Arc::new(OnlineReader { location, idle: Mutex::new(Vec::new()), metrics })
    }

    /// Runs `read` of `keys` keys on a pooled connection, on a blocking
    /// thread unless the store is embedded and the keys are few, and times it
    /// as one online-store read.
    pub async fn read<T: Send + 'static>(
        self: &Arc<Self>,
        keys: usize,
        read: impl FnOnce(&OnlineStore) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        if keys <= INLINE_KEYS && self.location.is_embedded() {
            return self.read_here(read);
        }
        let reader = Arc::clone(self);
        tokio::task::spawn_blocking(move || reader.read_here(read)).await.map_err(|e| {
            ApiError::from_code(ErrorCode::Internal, format!("online read failed: {e}"))
        })?
    }

    fn read_here<T>(
        &self,
        read: impl FnOnce(&OnlineStore) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let started = Instant::now();
        let store = self.checkout()?;
        let result = read(&store);
        self.checkin(store);
        self.metrics.online_store_duration.observe(started.elapsed().as_secs_f64());
        result
    }

    /// Whether the store answers, for readiness: `Ok` with what was found
    /// (no embedded file yet is fine: the first `vigie materialize` creates
    /// it), or why it cannot be read. Bounded by `limit`, so a hung disk or
    /// server is an answer.
    pub async fn check(self: &Arc<Self>, limit: Duration) -> Result<String, String> {
        // On the blocking pool whatever the store, so that the limit holds.
        let read = self.read(usize::MAX, |store| Ok(store.views()?));
        match tokio::time::timeout(limit, read).await {
            Ok(Ok(views)) => {
                Ok(format!("{} feature view(s) readable in {}", views.len(), self.location))
            }
            Ok(Err(error)) if error.status == StatusCode::NOT_FOUND => {
                Ok("no store yet (`vigie materialize` creates it); predictions by record only"
                    .to_owned())
            }
            Ok(Err(error)) => Err(error.message),
            Err(_) => Err(format!("no answer within {limit:?} from {}", self.location)),
        }
    }

    fn checkout(&self) -> Result<OnlineStore, ApiError> {
        // Checked every time: a file removed since is no store, whatever handles are pooled.
        if !self.location.exists() {
            return Err(ApiError::not_found(
                "the online store is empty: run `vigie materialize` to fill it",
            ));
        }
        if let Some(store) = self.idle.lock().ok().and_then(|mut idle| idle.pop()) {
            return Ok(store);
        }
        Ok(OnlineStore::open_read_only(&self.location)?)
    }

    fn checkin(&self, store: OnlineStore) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < POOL_SIZE
        {
            idle.push(store);
        }
    }
}

/// An event time (microseconds since the epoch) in RFC 3339.
pub fn format_time(micros: i64) -> String {
    let since_epoch = Duration::from_micros(micros.max(0).unsigned_abs());
    humantime::format_rfc3339_micros(UNIX_EPOCH + since_epoch).to_string()
}

/// Whether a row of event time `micros` is older than `ttl_micros` now.
pub fn is_stale(micros: i64, ttl_micros: Option<i64>) -> bool {
    let now = std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
    ttl_micros.is_some_and(|ttl| now.saturating_sub(micros) > ttl)
}

/// The time-to-live of `view`, as recorded by a served model trained on it.
fn view_ttl(shared: &Shared, view: &str) -> Option<i64> {
    let catalog = shared.catalog();
    catalog
        .models
        .values()
        .filter_map(|served| served.model.card.store.as_ref())
        .flat_map(|store| &store.inputs)
        .find(|input| input.view == view)
        .and_then(|input| input.ttl_micros)
}

/// `GET /v1/features/{view}/{key}`: the latest features of one entity.
pub async fn features(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    Extension(online): Extension<Arc<OnlineReader>>,
    Path((view, key)): Path<(String, String)>,
) -> Result<axum::Json<Json>, ApiError> {
    caller.require(Right::Predict)?;
    let (lookup_view, lookup_key) = (view.clone(), key.clone());
    let row = online
        .read(1, move |store| {
            let row = store.get(&lookup_view, &lookup_key)?;
            if row.is_none() {
                let views = store.views()?;
                if !views.contains(&lookup_view) {
                    return Err(ApiError::not_found(format!(
                        "no feature view {lookup_view:?} in the online store; its views are: {}",
                        if views.is_empty() { "(none)".to_owned() } else { views.join(", ") }
                    )));
                }
            }
            Ok(row)
        })
        .await?;
    let row = row.ok_or_else(|| {
        ApiError::not_found(format!("no features of key {key:?} in feature view {view:?}"))
    })?;
    let mut reply = json!({
        "view": view,
        "key": key,
        "time": format_time(row.time),
        "features": row.values,
    });
    if let Some(ttl) = view_ttl(&shared, &view) {
        reply["stale"] = json!(is_stale(row.time, Some(ttl)));
    }
    Ok(axum::Json(reply))
}
