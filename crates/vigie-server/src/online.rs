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
//! one writes. An embedded file removed or replaced is noticed within
//! [`IDENTITY_MAX_AGE`] by predictions (at once by readiness): its path's
//! device and inode are looked at again only that often, as a `stat` costs
//! as much as a cached read.

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

/// Which store file a handle reads: its device and inode (see `OnlineLocation::identity`).
type Identity = (u64, u64);

/// How long the store file's identity is trusted before a read looks again
/// (a `stat` of its path costs as much as the read of a key from SQLite's cache).
const IDENTITY_MAX_AGE: Duration = Duration::from_millis(100);

/// The server's read-only access to the online store.
pub struct OnlineReader {
    location: OnlineLocation,
    idle: Mutex<Pool>,
    /// When the store's identity was last looked at, and what it was.
    seen: Mutex<Option<(Instant, Option<Identity>)>>,
    metrics: Arc<Metrics>,
}

/// Idle handles, all opened on the store of one identity.
#[derive(Default)]
struct Pool {
    identity: Option<Identity>,
    handles: Vec<OnlineStore>,
}

impl From<OnlineError> for ApiError {
    fn from(error: OnlineError) -> Self {
        ApiError::from_code(error.code(), format!("online store: {error}"))
    }
}

impl OnlineReader {
    /// A reader of the store at `location` (opened on first use).
    pub fn new(location: OnlineLocation, metrics: Arc<Metrics>) -> Arc<OnlineReader> {
        Arc::new(OnlineReader {
            location,
            idle: Mutex::new(Pool::default()),
            seen: Mutex::new(None),
            metrics,
        })
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
            return self.read_here(read, false);
        }
        let reader = Arc::clone(self);
        tokio::task::spawn_blocking(move || reader.read_here(read, false)).await.map_err(|e| {
            ApiError::from_code(ErrorCode::Internal, format!("online read failed: {e}"))
        })?
    }

    /// Runs `read` on a pooled handle; `fresh`: looks at the store's identity now,
    /// else trusts what was seen up to [`IDENTITY_MAX_AGE`] ago.
    fn read_here<T>(
        &self,
        read: impl FnOnce(&OnlineStore) -> Result<T, ApiError>,
        fresh: bool,
    ) -> Result<T, ApiError> {
        let started = Instant::now();
        let (identity, store) = self.checkout(fresh)?;
        let result = read(&store);
        self.checkin(identity, store);
        self.metrics.online_store_duration.observe(started.elapsed().as_secs_f64());
        result
    }

    /// Whether the store answers, for readiness: `Ok` with what was found
    /// (no embedded file yet is fine: the first `vigie materialize` creates
    /// it), or why it cannot be read. Bounded by `limit`, so a hung disk or
    /// server is an answer.
    pub async fn check(self: &Arc<Self>, limit: Duration) -> Result<String, String> {
        // On the blocking pool whatever the store, so that the limit holds, and with the
        // store's identity looked at now, so that readiness sees a removed file at once.
        let reader = Arc::clone(self);
        let read =
            tokio::task::spawn_blocking(move || reader.read_here(|store| Ok(store.views()?), true));
        let read = async {
            read.await.map_err(|e| {
                ApiError::from_code(ErrorCode::Internal, format!("online read failed: {e}"))
            })?
        };
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

    /// The store's identity: looked at when `fresh` or older than [`IDENTITY_MAX_AGE`].
    fn identity(&self, fresh: bool) -> Option<Identity> {
        let mut seen = self.seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match *seen {
            Some((at, identity)) if !fresh && at.elapsed() < IDENTITY_MAX_AGE => identity,
            _ => {
                let identity = self.location.identity();
                *seen = Some((Instant::now(), identity));
                identity
            }
        }
    }

    /// A handle on the store as it is now (within [`IDENTITY_MAX_AGE`]): a removed file is
    /// no store, and handles on a file since replaced are closed, whatever is pooled.
    fn checkout(&self, fresh: bool) -> Result<(Identity, OnlineStore), ApiError> {
        let Some(identity) = self.identity(fresh) else {
            return Err(ApiError::not_found(
                "the online store is empty: run `vigie materialize` to fill it",
            ));
        };
        if let Ok(mut idle) = self.idle.lock() {
            if idle.identity != Some(identity) {
                idle.handles.clear();
                idle.identity = Some(identity);
            }
            if let Some(store) = idle.handles.pop() {
                return Ok((identity, store));
            }
        }
        Ok((identity, OnlineStore::open_read_only(&self.location)?))
    }

    fn checkin(&self, identity: Identity, store: OnlineStore) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.identity == Some(identity)
            && idle.handles.len() < POOL_SIZE
        {
            idle.handles.push(store);
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

#[cfg(test)]
mod tests {
    use serde_json::json;
    use vigie_online::LatestRow;

    use super::*;

    /// Writes `amount` as the one row of key `c1` in view `v` of the store at `location`.
    fn write(location: &OnlineLocation, amount: f64) {
        let mut store = OnlineStore::open(location).expect("open for writing");
        let values = json!({ "amount": amount }).as_object().expect("an object").clone();
        store.write("v", [LatestRow { key: "c1", time: 1, arrival: 0, values }]).expect("write");
    }

    fn amount(reader: &OnlineReader) -> Result<Option<Json>, ApiError> {
        reader.read_here(
            |store| Ok(store.get("v", "c1")?.map(|row| row.values["amount"].clone())),
            false,
        )
    }

    #[test]
    fn a_store_file_replaced_or_removed_is_seen_within_the_identity_age() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = dir.path().join("online.db");
        let location = OnlineLocation::embedded(&path);
        let reader = OnlineReader::new(location.clone(), Metrics::new().expect("metrics"));
        assert_eq!(amount(&reader).map_err(|e| e.status), Err(StatusCode::NOT_FOUND));
        std::thread::sleep(IDENTITY_MAX_AGE * 2);
        write(&location, 1.0);
        assert_eq!(amount(&reader).expect("read"), Some(json!(1.0)));

        // Another file at the path (a store rebuilt from scratch): the pooled handle on the
        // old one is dropped once the identity is looked at again, not read on.
        for suffix in ["", "-wal", "-shm"] {
            let from = dir.path().join(format!("online.db{suffix}"));
            if from.exists() {
                std::fs::rename(from, dir.path().join(format!("old.db{suffix}"))).expect("move");
            }
        }
        write(&location, 2.0);
        std::thread::sleep(IDENTITY_MAX_AGE * 2);
        assert_eq!(amount(&reader).expect("read"), Some(json!(2.0)));

        // Removed: no store, as before any was written.
        std::fs::remove_file(&path).expect("remove");
        std::thread::sleep(IDENTITY_MAX_AGE * 2);
        assert_eq!(amount(&reader).map_err(|e| e.status), Err(StatusCode::NOT_FOUND));
    }
}
