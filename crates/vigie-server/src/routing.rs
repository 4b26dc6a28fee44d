//! Routing between a model's versions: which version answers a request (champion, canary,
//! A/B variant), the shadow version scored beside it, and per-variant counters.
//!
//! The registry stores each model's [`Routing`]; when the catalog loads it also loads the
//! versions the routing names into a [`Route`]. A request is routed by a sticky key, hashed
//! with XXH3-64 under a fixed seed into one of 10 000 buckets, so one key always lands on one
//! variant, and raising a canary's weight only adds keys to it. The key is, first found: the
//! `X-Vigie-Routing-Key` header, the key the protocol's body carries (`key` in /v1,
//! `parameters.routing_key` in KServe V2), the value of the model's entity key column in the
//! request's first record (`vigie serve` reads the column from `[models.NAME] entity` in
//! vigie.toml), else the request id. A request with several records goes to one variant as a
//! whole.
//!
//! The shadow version scores the same request on the blocking pool after the reply is built;
//! its scores are counted and compared (mean, mean absolute difference from the answered
//! scores) and written to the audit log as a record of their own: the same request id, the
//! variant `shadow`, never awaited by the reply nor returned to the client. At most
//! [`MAX_SHADOW_JOBS`] run at once; beyond that a shadow scoring is dropped and counted, so a
//! slow shadow never slows the answered path. A stopping server waits for the running ones
//! ([`RoutingState::shadows_finished`]), so their records are on disk before it exits.
//!
//! Counters live in memory since the server started ([`RoutingState::snapshot`]); they are the
//! hook for the Prometheus exporter, which this module does not build.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value as Json;
use vigie_core::Frame;
use vigie_ml::Model;
use vigie_registry::{ModelRef, Registry, Routing, Selector, Split};

use crate::audit::{AuditLog, Prediction};
use crate::catalog::{Served, Shared};
use crate::error::ApiError;
use crate::rows::score;

/// The header a client names its sticky routing key in.
pub const ROUTING_KEY_HEADER: &str = "x-vigie-routing-key";
/// Reply header: the model that answered.
pub const MODEL_HEADER: &str = "x-vigie-model";
/// Reply header: the version that answered.
pub const VERSION_HEADER: &str = "x-vigie-model-version";
/// Reply header: the variant that answered.
pub const VARIANT_HEADER: &str = "x-vigie-variant";
/// Shadow scorings allowed to run at once; more are dropped (and counted).
pub const MAX_SHADOW_JOBS: usize = 32;

/// Buckets a key is hashed into; a weight of 1% is 100 buckets.
const BUCKETS: u64 = 10_000;
/// The fixed seed of the sticky hash: changing it reshuffles every key's variant.
const HASH_SEED: u64 = 0x5649_4749_4552_5254;

/// The variant name of the champion (all traffic, or the rest beside a canary).
pub const CHAMPION: &str = "champion";
/// The variant name of a canary.
pub const CANARY: &str = "canary";
/// The variant name of the shadow version.
pub const SHADOW: &str = "shadow";
/// The variant name of a request that named its version (routing bypassed).
pub const EXPLICIT: &str = "explicit";

/// One answering arm of a route: requests whose bucket is below `upper` (and above the
/// previous arm's) go to `served`.
#[derive(Debug)]
struct Arm {
    name: String,
    served: Arc<Served>,
    upper: u64,
}

/// A model's routing as loaded: the versions it needs, ready to answer.
#[derive(Debug)]
pub struct Route {
    /// The stored routing.
    pub spec: Routing,
    /// The champion (serving) version.
    pub champion: Arc<Served>,
    arms: Vec<Arm>,
    shadow: Option<Arc<Served>>,
    /// Why the stored routing is not applied (a version failed to load), when it is not:
    /// then all traffic goes to the champion.
    pub problem: Option<String>,
}

impl Route {
    /// All traffic to `champion`.
    pub fn champion_only(champion: Arc<Served>) -> Route {
        Route { spec: Routing::champion(), champion, arms: Vec::new(), shadow: None, problem: None }
    }

    /// The route of `spec`, loading the versions it names (`champion` is already loaded).
    pub fn load(registry: &Registry, champion: Arc<Served>, spec: Routing) -> Route {
        match Route::load_arms(registry, &champion, &spec) {
            Ok((arms, shadow)) => Route { spec, champion, arms, shadow, problem: None },
            Err(problem) => Route { problem: Some(problem), ..Route::champion_only(champion) },
        }
    }

    /// The answering variants: name, version and share in percent.
    pub fn variants(&self) -> Vec<(String, u32, f64)> {
        if self.arms.is_empty() {
            return vec![(CHAMPION.to_owned(), self.champion.version, 100.0)];
        }
        let mut lower = 0;
        self.arms
            .iter()
            .map(|arm| {
                let share = (arm.upper - lower) as f64 * 100.0 / BUCKETS as f64;
                lower = arm.upper;
                (arm.name.clone(), arm.served.version, share)
            })
            .collect()
    }

    /// The shadow version, when there is one.
    pub fn shadow(&self) -> Option<&Arc<Served>> {
        self.shadow.as_ref()
    }

    /// Whether requests need a key: only when several arms share the traffic.
    fn splits(&self) -> bool {
        self.arms.len() > 1
    }

    /// The arm of a key.
    fn arm_of(&self, key: &str) -> (&str, &Arc<Served>) {
        let bucket = bucket(&self.champion.name, key);
        self.arms
            .iter()
            .find(|arm| bucket < arm.upper)
            .map_or((CHAMPION, &self.champion), |arm| (arm.name.as_str(), &arm.served))
    }
}

impl Route {
    fn load_arms(
        registry: &Registry,
        champion: &Arc<Served>,
        spec: &Routing,
    ) -> Result<(Vec<Arm>, Option<Arc<Served>>), String> {
        let mut loaded: BTreeMap<u32, Arc<Served>> = BTreeMap::new();
        loaded.insert(champion.version, Arc::clone(champion));
        let mut version = |v: u32| -> Result<Arc<Served>, String> {
            if let Some(found) = loaded.get(&v) {
                return Ok(Arc::clone(found));
            }
            let served = Arc::new(load_version(registry, &champion.name, v)?);
            loaded.insert(v, Arc::clone(&served));
            Ok(served)
        };
        let arms = match &spec.split {
            Split::Champion => Vec::new(),
            Split::Canary { version: canary, weight } => vec![
                Arm { name: CANARY.to_owned(), served: version(*canary)?, upper: basis(*weight) },
                Arm { name: CHAMPION.to_owned(), served: Arc::clone(champion), upper: BUCKETS },
            ],
            Split::Ab { variants } => {
                let mut total = 0.0;
                let mut arms = Vec::with_capacity(variants.len());
                for variant in variants {
                    total += variant.weight;
                    arms.push(Arm {
                        name: variant.name.clone(),
                        served: version(variant.version)?,
                        upper: basis(total),
                    });
                }
                // The weights sum to 100 up to rounding: the last arm takes every bucket left.
                if let Some(last) = arms.last_mut() {
                    last.upper = BUCKETS;
                }
                arms
            }
        };
        let shadow = spec.shadow.map(&mut version).transpose()?;
        Ok((arms, shadow))
    }
}

/// A percentage as a bucket bound.
fn basis(percent: f64) -> u64 {
    ((percent.clamp(0.0, 100.0) * BUCKETS as f64 / 100.0).round() as u64).min(BUCKETS)
}

/// The bucket of `key` for `model`: the model's name is hashed too, so one customer's
/// variants in two models' experiments are independent.
fn bucket(model: &str, key: &str) -> u64 {
    let mut bytes = Vec::with_capacity(model.len() + 1 + key.len());
    bytes.extend_from_slice(model.as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(key.as_bytes());
    twox_hash::XxHash3_64::oneshot_with_seed(HASH_SEED, &bytes) % BUCKETS
}

fn load_version(registry: &Registry, name: &str, version: u32) -> Result<Served, String> {
    let reference = ModelRef { name: name.to_owned(), selector: Selector::Version(version) };
    let info = registry.resolve(&reference).map_err(|e| e.to_string())?;
    let model = registry
        .load(&info)
        .map_err(|e| e.to_string())?
        .into_tabular()
        .map_err(|e| format!("{name} v{version}: {e}"))?;
    Ok(Served { name: name.to_owned(), version, aliases: info.aliases, model })
}

/// The route of every served model, as the registry stores them. A routing that cannot be
/// read or loaded leaves its model on its champion, with the reason in [`Route::problem`].
pub fn load_routes(
    registry: &Registry,
    models: &BTreeMap<String, Arc<Served>>,
) -> BTreeMap<String, Arc<Route>> {
    models
        .iter()
        .map(|(name, champion)| {
            let route = match registry.routing(name) {
                Ok(spec) => Route::load(registry, Arc::clone(champion), spec),
                Err(error) => Route {
                    problem: Some(error.to_string()),
                    ..Route::champion_only(Arc::clone(champion))
                },
            };
            (name.clone(), Arc::new(route))
        })
        .collect()
}

/// The version chosen for one request, and what to do after scoring it.
#[derive(Debug)]
pub struct Pick {
    /// The version that answers.
    pub served: Arc<Served>,
    /// The variant's name (`champion`, `canary`, an A/B variant, `explicit`).
    pub variant: String,
    shadow: Option<Arc<Served>>,
    started: Instant,
}

/// Where a request's sticky key may come from, besides the header.
#[derive(Debug, Default)]
pub struct KeySources<'a> {
    /// A key the protocol's body carries (`key` in /v1, `parameters.routing_key` in V2).
    pub explicit: Option<&'a Json>,
    /// The parsed body, searched for the entity key column.
    pub body: Option<&'a Json>,
    /// The request id, the last resort.
    pub request_id: &'a str,
}

impl Pick {
    /// A request that named its version: routing is bypassed, no shadow runs.
    pub fn explicit(served: Arc<Served>) -> Pick {
        Pick { served, variant: EXPLICIT.to_owned(), shadow: None, started: Instant::now() }
    }

    /// The reply headers naming the model, version and variant that answered.
    pub fn headers(&self) -> [(HeaderName, HeaderValue); 3] {
        let value = |text: &str| {
            HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
        };
        [
            (HeaderName::from_static(MODEL_HEADER), value(&self.served.name)),
            (HeaderName::from_static(VERSION_HEADER), value(&self.served.version.to_string())),
            (HeaderName::from_static(VARIANT_HEADER), value(&self.variant)),
        ]
    }

    /// Counts the answered request and starts the shadow scoring, if any. `frame_for` builds
    /// the request's input frame for another model (the shadow's inputs may differ); `audit`
    /// is what the shadow's record shares with the answered one.
    pub fn finish<F>(
        self,
        shared: &Arc<Shared>,
        outputs: &[Vec<f64>],
        audit: ShadowAudit<'_>,
        frame_for: F,
    ) where
        F: FnOnce(&Model) -> Result<Frame, ApiError> + Send + 'static,
    {
        let state = shared.routing();
        let elapsed = self.started.elapsed();
        state.count(&self.served, &self.variant, outputs, elapsed);
        let Some(shadow) = self.shadow else { return };
        // The slot is held until the shadow's record is durable, so a drain waits for it.
        let Ok(slot) = Arc::clone(&state.shadow_slots).try_acquire_owned() else {
            state.count_dropped(&shadow);
            return;
        };
        let answered: Vec<f64> = outputs.iter().map(|o| first(o)).collect();
        let (shared, audit_log) = (Arc::clone(shared), Arc::clone(audit.log));
        let (request_id, caller, route) =
            (audit.request_id.to_owned(), audit.caller.to_owned(), audit.route);
        tokio::spawn(async move {
            let _slot = slot;
            let scorer = Arc::clone(&shadow);
            let scoring = tokio::task::spawn_blocking(move || {
                let started = Instant::now();
                let scored = frame_for(&scorer.model).and_then(|frame| {
                    let outputs = score(&scorer.model, &frame)?;
                    Ok((frame, outputs))
                });
                (scored, started.elapsed())
            });
            let state = shared.routing();
            // A panic while scoring is a failure like any other.
            let Ok((Ok((frame, outputs)), elapsed)) = scoring.await else {
                state.count_shadow(&shadow, None, &answered, Duration::ZERO);
                return;
            };
            state.count_shadow(&shadow, Some(&outputs), &answered, elapsed);
            let recorded = audit_log
                .record_shadow(Prediction {
                    request_id: &request_id,
                    caller: &caller,
                    route,
                    variant: SHADOW,
                    served: &shadow,
                    inputs: &frame,
                    outputs: &outputs,
                })
                .await;
            if recorded.is_err() {
                state.count_unrecorded(&shadow);
            }
        });
    }
}

/// What a shadow's audit record shares with the answered request's record.
#[derive(Clone, Copy)]
pub struct ShadowAudit<'a> {
    /// The log both records go to.
    pub log: &'a Arc<AuditLog>,
    /// The request id, the same in both records.
    pub request_id: &'a str,
    /// Who asked.
    pub caller: &'a str,
    /// The route pattern that answered.
    pub route: &'static str,
}

fn first(outputs: &[f64]) -> f64 {
    outputs.first().copied().unwrap_or(f64::NAN)
}

/// Chooses the version that answers a request for `name`.
pub fn pick(
    shared: &Shared,
    name: &str,
    headers: &HeaderMap,
    sources: &KeySources<'_>,
) -> Result<Pick, ApiError> {
    let route = shared.route(name)?;
    // The key is looked for only when several arms share the traffic.
    let (variant, served) = if route.splits() {
        route.arm_of(&sticky_key(shared, name, headers, sources))
    } else {
        (CHAMPION, &route.champion)
    };
    Ok(Pick {
        served: Arc::clone(served),
        variant: variant.to_owned(),
        shadow: route.shadow.clone(),
        started: Instant::now(),
    })
}

fn sticky_key(
    shared: &Shared,
    name: &str,
    headers: &HeaderMap,
    sources: &KeySources<'_>,
) -> String {
    if let Some(key) = headers.get(ROUTING_KEY_HEADER).and_then(|v| v.to_str().ok()) {
        return key.to_owned();
    }
    if let Some(key) = sources.explicit.and_then(key_text) {
        return key;
    }
    let column = shared.routing().key_column(name);
    if let Some(key) = column.zip(sources.body).and_then(|(c, body)| entity_key(body, &c)) {
        return key;
    }
    sources.request_id.to_owned()
}

/// A JSON scalar as a key: strings as they are, numbers and booleans as written.
fn key_text(value: &Json) -> Option<String> {
    match value {
        Json::String(text) => Some(text.clone()),
        Json::Number(_) | Json::Bool(_) => Some(value.to_string()),
        _ => None,
    }
}

/// The value of `column` in a request's first record, in any protocol's body shape: records
/// (`records`, `dataframe_records`, `instances`, `inputs` as records), `dataframe_split`,
/// column-wise `inputs`, and KServe V2 tensors.
pub fn entity_key(body: &Json, column: &str) -> Option<String> {
    for field in ["records", "dataframe_records", "instances", "inputs"] {
        match body.get(field) {
            Some(Json::Array(rows)) => {
                let first_row = rows.first()?;
                if let Some(value) = first_row.get(column) {
                    return key_text(value);
                }
                // KServe V2: a tensor per column.
                if let Some(tensor) =
                    rows.iter().find(|t| t.get("name").and_then(Json::as_str) == Some(column))
                {
                    let data = tensor.get("data")?.as_array()?.first()?;
                    return key_text(data.as_array().and_then(|d| d.first()).unwrap_or(data));
                }
            }
            Some(Json::Object(columns)) => {
                return columns.get(column)?.as_array()?.first().and_then(key_text);
            }
            _ => {}
        }
    }
    let split = body.get("dataframe_split")?;
    let position = split.get("columns")?.as_array()?.iter().position(|c| c == column)?;
    split.get("data")?.as_array()?.first()?.as_array()?.get(position).and_then(key_text)
}

/// Latency buckets: bucket `i` holds durations below 2^((i+1)/4) microseconds, so a
/// percentile is known within 19%; the last bucket (about 18 minutes) holds the rest.
const LATENCY_BUCKETS: usize = 120;

/// A latency histogram with logarithmic buckets.
#[derive(Debug, Clone)]
pub struct Latencies {
    counts: [u64; LATENCY_BUCKETS],
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies { counts: [0; LATENCY_BUCKETS] }
    }
}

impl Latencies {
    /// Adds one duration.
    pub fn record(&mut self, elapsed: Duration) {
        let micros = elapsed.as_secs_f64() * 1e6;
        let index = if micros < 1.0 { 0 } else { (micros.log2() * 4.0).floor() as usize };
        if let Some(count) = self.counts.get_mut(index.min(LATENCY_BUCKETS - 1)) {
            *count += 1;
        }
    }

    /// The `quantile` (0 to 1) in milliseconds, as its bucket's upper bound; none when empty.
    pub fn quantile_ms(&self, quantile: f64) -> Option<f64> {
        let total: u64 = self.counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((quantile * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(2f64.powf((index + 1) as f64 / 4.0) / 1000.0);
            }
        }
        None
    }
}

/// What one variant of one model did since the server started.
#[derive(Debug, Clone, Default)]
pub struct VariantCounters {
    /// Requests answered (for the shadow: requests scored).
    pub requests: u64,
    /// Rows scored.
    pub rows: u64,
    /// Sum of the first output (the score) over the rows where it is a number.
    pub score_sum: f64,
    /// Rows whose first output is a number.
    pub scored_rows: u64,
    /// Scoring latency, from routing to the reply built (the shadow: its own scoring).
    pub latency: Latencies,
    /// Shadow only: scorings that failed (the shadow's inputs missing from the request...).
    pub failures: u64,
    /// Shadow only: scorings dropped because [`MAX_SHADOW_JOBS`] were running.
    pub dropped: u64,
    /// Shadow only: sum over rows of |shadow score - answered score|.
    pub abs_difference_sum: f64,
    /// Shadow only: scorings whose audit record was refused (queue full, log unwritable).
    pub unrecorded: u64,
}

impl VariantCounters {
    fn add_scores<'a>(&mut self, scores: impl Iterator<Item = f64> + 'a, elapsed: Duration) {
        self.requests += 1;
        for score in scores {
            self.rows += 1;
            if score.is_finite() {
                self.score_sum += score;
                self.scored_rows += 1;
            }
        }
        self.latency.record(elapsed);
    }
}

/// One line of the per-variant statistics.
#[derive(Debug, Clone)]
pub struct VariantSnapshot {
    /// Model.
    pub model: String,
    /// Variant (`champion`, `canary`, an A/B variant, `shadow`, `explicit`).
    pub variant: String,
    /// Version.
    pub version: u32,
    /// Its counters.
    pub counters: VariantCounters,
}

/// The routing state a server keeps beside its catalog: the entity key column of each model
/// and the per-variant counters.
#[derive(Debug)]
pub struct RoutingState {
    key_columns: RwLock<BTreeMap<String, String>>,
    counters: Mutex<BTreeMap<(String, String, u32), VariantCounters>>,
    /// [`MAX_SHADOW_JOBS`] permits, one per running shadow scoring.
    shadow_slots: Arc<tokio::sync::Semaphore>,
}

impl Default for RoutingState {
    fn default() -> Self {
        RoutingState {
            key_columns: RwLock::default(),
            counters: Mutex::default(),
            shadow_slots: Arc::new(tokio::sync::Semaphore::new(MAX_SHADOW_JOBS)),
        }
    }
}

impl RoutingState {
    /// Sets the column whose value is each model's sticky key (model → column).
    pub fn set_key_columns(&self, columns: BTreeMap<String, String>) {
        if let Ok(mut slot) = self.key_columns.write() {
            *slot = columns;
        }
    }

    /// The entity key column of `model`, when known.
    pub fn key_column(&self, model: &str) -> Option<String> {
        self.key_columns.read().ok().and_then(|columns| columns.get(model).cloned())
    }

    fn update(&self, served: &Served, variant: &str, change: impl FnOnce(&mut VariantCounters)) {
        if let Ok(mut counters) = self.counters.lock() {
            let key = (served.name.clone(), variant.to_owned(), served.version);
            change(counters.entry(key).or_default());
        }
    }

    fn count(&self, served: &Served, variant: &str, outputs: &[Vec<f64>], elapsed: Duration) {
        self.update(served, variant, |c| c.add_scores(outputs.iter().map(|o| first(o)), elapsed));
    }

    fn count_dropped(&self, shadow: &Served) {
        self.update(shadow, SHADOW, |c| c.dropped += 1);
    }

    fn count_unrecorded(&self, shadow: &Served) {
        self.update(shadow, SHADOW, |c| c.unrecorded += 1);
    }

    /// Waits until no shadow scoring runs, their records written: a stopping server calls it
    /// once every request has its reply.
    pub async fn shadows_finished(&self) {
        let all = u32::try_from(MAX_SHADOW_JOBS).unwrap_or(u32::MAX);
        // The semaphore is never closed: this returns once every place is free.
        let _ = self.shadow_slots.acquire_many(all).await;
    }

    fn count_shadow(
        &self,
        shadow: &Served,
        scored: Option<&[Vec<f64>]>,
        answered: &[f64],
        elapsed: Duration,
    ) {
        self.update(shadow, SHADOW, |c| match scored {
            None => c.failures += 1,
            Some(outputs) => {
                c.add_scores(outputs.iter().map(|o| first(o)), elapsed);
                c.abs_difference_sum += outputs
                    .iter()
                    .zip(answered)
                    .map(|(o, a)| (first(o) - a).abs())
                    .filter(|d| d.is_finite())
                    .sum::<f64>();
            }
        });
    }

    /// Every variant's counters (of `model`, or of all models), by model, variant, version.
    pub fn snapshot(&self, model: Option<&str>) -> Vec<VariantSnapshot> {
        let Ok(counters) = self.counters.lock() else { return Vec::new() };
        counters
            .iter()
            .filter(|((name, _, _), _)| model.is_none_or(|m| m == name))
            .map(|((name, variant, version), counters)| VariantSnapshot {
                model: name.clone(),
                variant: variant.clone(),
                version: *version,
                counters: counters.clone(),
            })
            .collect()
    }
}

impl Shared {
    /// The route of `name` in the current catalog.
    pub fn route(&self, name: &str) -> Result<Arc<Route>, ApiError> {
        let catalog = self.catalog();
        match catalog.routes.get(name) {
            Some(route) => Ok(Arc::clone(route)),
            None => self.serving(name).map(|champion| Arc::new(Route::champion_only(champion))),
        }
    }
}

#[cfg(test)]
mod tests;
