//! The admin routes of `/v1`: what is served and how it is routed, routing changes, alias
//! moves (promotions), rollbacks and per-variant statistics.
//!
//! Every route here is in [`router`], apart from the prediction routes, so that the check of
//! an `admin` right is one layer on it. Writes go through the registry on the blocking pool
//! (its clients block), then reload the catalog at once from the same connection, so the reply
//! already describes what is served; other replicas follow through their generation watcher.
//! Until authentication names the caller, changes are recorded as made by the user `api`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Request;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value as Json, json};
use vigie_registry::{AliasMove, Registry, RegistryError, Routing, RoutingChange};

use crate::auth::{Caller, Right};
use crate::catalog::Shared;
use crate::error::ApiError;
use crate::routing::{Route, VariantSnapshot};
use crate::rows::parse_body;

/// The admin routes: reading needs any authenticated caller, changing needs
/// the `admin` right.
pub fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v1/models", get(models))
        .route("/v1/models/{name}/routing", get(routing).put(set_routing))
        .route("/v1/models/{name}/aliases/{alias}", axum::routing::put(set_alias))
        .route("/v1/models/{name}/rollback", post(rollback))
        .route("/v1/models/{name}/variants", get(variants))
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(axum::middleware::from_fn(admin_to_change))
}

/// Lets reads through and changes only with the `admin` right.
async fn admin_to_change(caller: Caller, request: Request, next: Next) -> Response {
    if request.method() != axum::http::Method::GET
        && let Err(refused) = caller.require(Right::Admin)
    {
        return crate::error::unread_body(refused.into_response());
    }
    next.run(request).await
}

/// A method an admin route does not take: a JSON 405 like every other error.
async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    crate::error::unread_body(
        ApiError {
            status: axum::http::StatusCode::METHOD_NOT_ALLOWED,
            message: format!("{} does not take {method}", uri.path()),
        }
        .into_response(),
    )
}

fn registry_error(error: RegistryError) -> ApiError {
    ApiError::from_code(error.code(), error.to_string())
}

/// Runs `work` on a fresh registry connection on the blocking pool; with `reload`, then
/// reloads the catalog from that connection.
async fn with_registry<T: Send + 'static>(
    shared: &Arc<Shared>,
    reload: bool,
    work: impl FnOnce(&mut Registry) -> Result<T, RegistryError> + Send + 'static,
) -> Result<T, ApiError> {
    let shared = Arc::clone(shared);
    tokio::task::spawn_blocking(move || {
        let unavailable = |e: String| ApiError::from_code(vigie_core::ErrorCode::Unavailable, e);
        let mut registry = shared.open_registry().map_err(unavailable)?;
        let value = work(&mut registry).map_err(registry_error)?;
        if reload {
            shared.refresh(&registry).map_err(unavailable)?;
        }
        Ok(value)
    })
    .await
    .map_err(|e| {
        ApiError::from_code(vigie_core::ErrorCode::Internal, format!("registry task failed: {e}"))
    })?
}

/// What a route serves: the routing, its answering variants and its shadow.
fn route_json(route: &Route) -> Json {
    let variants: Vec<Json> = route
        .variants()
        .into_iter()
        .map(|(name, version, weight)| json!({"name": name, "version": version, "weight": weight}))
        .collect();
    json!({
        "routing": route.spec,
        "description": route.spec.to_string(),
        "champion": route.champion.version,
        "variants": variants,
        "shadow": route.shadow().map(|s| json!({"version": s.version})),
        "problem": route.problem,
    })
}

/// How `name` is served: its routing; a forecast model, which has none, its serving
/// version and route; null when this server does not serve it.
fn served_route(shared: &Shared, name: &str) -> Json {
    if let Some(served) = shared.catalog().forecasters.get(name) {
        return json!({
            "task": "forecast",
            "version": served.version,
            "route": format!("/v1/models/{name}/forecast"),
        });
    }
    shared.route(name).map_or(Json::Null, |route| route_json(&route))
}

fn change_json(change: &RoutingChange) -> Json {
    json!({"from": change.from, "to": change.to, "user": change.user, "at": change.at, "reason": change.reason})
}

fn move_json(moved: &AliasMove) -> Json {
    json!({
        "model": moved.model, "alias": moved.alias, "from_version": moved.from_version,
        "to_version": moved.to_version, "kind": moved.kind, "user": moved.user, "at": moved.at,
        "reason": moved.reason,
    })
}

/// `GET /v1/models`: every served model with its versions, aliases and routing (a
/// forecast model: its serving version and route).
async fn models(State(shared): State<Arc<Shared>>) -> Result<axum::Json<Json>, ApiError> {
    let catalog = shared.catalog();
    let names: Vec<String> =
        catalog.models.keys().chain(catalog.forecasters.keys()).cloned().collect();
    let registered = with_registry(&shared, false, move |registry| {
        names
            .into_iter()
            .map(|name| {
                let versions: Vec<u32> =
                    registry.versions(&name)?.iter().map(|v| v.version).collect();
                let aliases: Map<String, Json> =
                    registry.aliases(&name)?.into_iter().map(|(a, v)| (a, json!(v))).collect();
                Ok((name, versions, aliases))
            })
            .collect::<Result<Vec<_>, RegistryError>>()
    })
    .await?;
    let models: Vec<Json> = registered
        .into_iter()
        .map(|(name, versions, aliases)| {
            let mut entry = json!({"name": name, "versions": versions, "aliases": aliases});
            entry["serving"] = served_route(&shared, &name);
            entry
        })
        .collect();
    let skipped: Vec<Json> = catalog
        .skipped
        .iter()
        .map(|(name, reason)| json!({"name": name, "reason": reason}))
        .collect();
    Ok(axum::Json(json!({"generation": catalog.generation, "models": models, "skipped": skipped})))
}

/// `GET /v1/models/{name}/routing`: the routing served and its history.
async fn routing(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
) -> Result<axum::Json<Json>, ApiError> {
    let route = shared.route(&name)?;
    let model = name.clone();
    let history = with_registry(&shared, false, move |r| r.routing_history(&model)).await?;
    let mut reply = route_json(&route);
    reply["model"] = json!(name);
    reply["history"] = history.iter().map(change_json).collect();
    Ok(axum::Json(reply))
}

/// The optional `reason` of a change body.
fn reason(body: &Json) -> Result<String, ApiError> {
    match body.get("reason") {
        None | Some(Json::Null) => Ok(String::new()),
        Some(Json::String(text)) => Ok(text.clone()),
        Some(_) => Err(ApiError::bad_request("field \"reason\": expected a string")),
    }
}

/// Refuses a routing body without a known `mode` (by name: serde would take a
/// number as a variant's index) or with a field its mode does not read, rather than
/// ignoring it (a `weight` sent with `"mode": "champion"` is a mistake).
fn only_fields_of_its_mode(body: &Json) -> Result<(), ApiError> {
    let Some(object) = body.as_object() else { return Ok(()) };
    let mode = object.get("mode").and_then(Json::as_str).unwrap_or_default();
    let own: &[&str] = match mode {
        "champion" => &[],
        "canary" => &["version", "weight"],
        "ab" => &["variants"],
        _ => {
            let given = object.get("mode").map_or_else(|| "nothing".to_owned(), Json::to_string);
            return Err(ApiError::bad_request(format!(
                "field \"mode\": unknown mode {given}; expected \"champion\", \"canary\" or \"ab\""
            )));
        }
    };
    match object
        .keys()
        .find(|k| !["mode", "shadow", "reason"].contains(&k.as_str()) && !own.contains(&k.as_str()))
    {
        Some(field) => {
            Err(ApiError::bad_request(format!("field {field:?} does not apply to mode {mode:?}")))
        }
        None => Ok(()),
    }
}

/// `PUT /v1/models/{name}/routing`: replaces the routing (body: the routing and a `reason`).
async fn set_routing(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<axum::Json<Json>, ApiError> {
    let body = parse_body(&body?)?;
    let reason = reason(&body)?;
    only_fields_of_its_mode(&body)?;
    let wanted: Routing = serde_json::from_value(body).map_err(|e| {
        ApiError::bad_request(format!(
            "routing: {e}; expected {{\"mode\": \"champion\"}}, {{\"mode\": \"canary\", \"version\": V, \"weight\": PERCENT}} or {{\"mode\": \"ab\", \"variants\": [{{\"name\", \"version\", \"weight\"}}, …]}}, each with an optional \"shadow\": V"
        ))
    })?;
    let model = name.clone();
    let user = caller.subject.clone();
    let change = with_registry(&shared, true, move |registry| {
        registry.set_routing(&model, &wanted, &user, &reason)
    })
    .await?;
    Ok(axum::Json(
        json!({"model": name, "change": change_json(&change), "serving": served_route(&shared, &name)}),
    ))
}

/// `PUT /v1/models/{name}/aliases/{alias}`: points an alias at a version (`{"version", "reason"}`).
async fn set_alias(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    Path((name, alias)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<axum::Json<Json>, ApiError> {
    let body = parse_body(&body?)?;
    let reason = reason(&body)?;
    let version = body
        .get("version")
        .and_then(Json::as_u64)
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| ApiError::bad_request("field \"version\": expected a version number"))?;
    let model = name.clone();
    let user = caller.subject.clone();
    let moved = with_registry(&shared, true, move |registry| {
        registry.set_alias(&model, &alias, version, &user, &reason)
    })
    .await?;
    Ok(axum::Json(json!({"move": move_json(&moved), "serving": served_route(&shared, &name)})))
}

/// `POST /v1/models/{name}/rollback`: moves an alias (`alias`, default champion) back.
async fn rollback(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<axum::Json<Json>, ApiError> {
    let body = body?;
    let body =
        if body.iter().all(u8::is_ascii_whitespace) { json!({}) } else { parse_body(&body)? };
    let reason = reason(&body)?;
    let alias = match body.get("alias") {
        None | Some(Json::Null) => crate::routing::CHAMPION.to_owned(),
        Some(Json::String(alias)) => alias.clone(),
        Some(_) => return Err(ApiError::bad_request("field \"alias\": expected a string")),
    };
    let model = name.clone();
    let user = caller.subject.clone();
    let moved = with_registry(&shared, true, move |registry| {
        registry.rollback(&model, &alias, &user, &reason)
    })
    .await?;
    Ok(axum::Json(json!({"move": move_json(&moved), "serving": served_route(&shared, &name)})))
}

fn snapshot_json(snapshot: &VariantSnapshot) -> Json {
    let counters = &snapshot.counters;
    let mean = |sum: f64, n: u64| if n == 0 { Json::Null } else { json!(sum / n as f64) };
    let mut entry = json!({
        "variant": snapshot.variant,
        "version": snapshot.version,
        "requests": counters.requests,
        "rows": counters.rows,
        "mean_score": mean(counters.score_sum, counters.scored_rows),
        "latency_ms": {"p50": counters.latency.quantile_ms(0.5), "p99": counters.latency.quantile_ms(0.99)},
    });
    if snapshot.variant == crate::routing::SHADOW {
        entry["failures"] = json!(counters.failures);
        entry["dropped"] = json!(counters.dropped);
        entry["unrecorded"] = json!(counters.unrecorded);
        entry["mean_abs_difference"] = mean(counters.abs_difference_sum, counters.rows);
    }
    entry
}

/// `GET /v1/models/{name}/variants`: per-variant counters since the server started.
async fn variants(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
) -> Result<axum::Json<Json>, ApiError> {
    shared.serving(&name)?;
    let snapshots = shared.routing().snapshot(Some(&name));
    Ok(axum::Json(json!({
        "model": name,
        "since": "server start (kept in memory, per replica)",
        "variants": snapshots.iter().map(snapshot_json).collect::<Vec<_>>(),
    })))
}
