//! `vigie models route`: a model's routing between versions, set in the registry and
//! printed; the routing lines of `vigie models show`; and the entity key columns `vigie serve`
//! routes by.

use std::collections::BTreeMap;

use serde_json::{Value as Json, json};
use vigie_registry::{AbVariant, Registry, Routing, RoutingChange, Split};

use super::{Project, UsageError, user};
use crate::cli::{Format, RouteArgs};
use crate::output;
use crate::output::outln;

/// The routing the arguments describe (the whole routing: what is not named is cleared).
fn wanted(args: &RouteArgs) -> anyhow::Result<Routing> {
    let split = match (args.canary, args.weight, args.ab.is_empty()) {
        (Some(version), Some(weight), true) => Split::Canary { version, weight },
        (None, None, false) => Split::Ab { variants: ab_variants(&args.ab)? },
        _ => Split::Champion,
    };
    Ok(Routing { split, shadow: args.shadow })
}

/// `V1=W1,V2=W2…` as variants named a, b, c….
fn ab_variants(pairs: &[String]) -> anyhow::Result<Vec<AbVariant>> {
    let names = ('a'..='z').map(String::from);
    if pairs.len() > 26 {
        return Err(UsageError(format!("--ab: {} variants; at most 26", pairs.len())).into());
    }
    pairs
        .iter()
        .zip(names)
        .map(|(pair, name)| {
            let parsed = pair.split_once('=').and_then(|(version, weight)| {
                let version = version.trim().trim_start_matches('v').parse().ok()?;
                Some((version, weight.trim().trim_end_matches('%').parse().ok()?))
            });
            let (version, weight) = parsed.ok_or_else(|| {
                UsageError(format!("--ab {pair:?}: expected VERSION=WEIGHT, e.g. 2=50"))
            })?;
            Ok(AbVariant { name, version, weight })
        })
        .collect()
}

/// A routing as JSON, as the registry stores it and the server's admin routes send it.
pub fn routing_json(routing: &Routing) -> Json {
    serde_json::to_value(routing).unwrap_or(Json::Null)
}

fn change_json(change: &RoutingChange) -> Json {
    json!({
        "model": change.model, "from": routing_json(&change.from), "to": routing_json(&change.to),
        "user": change.user, "at": change.at, "reason": change.reason,
    })
}

/// The routing history as a table.
pub fn history_table(history: &[RoutingChange]) -> comfy_table::Table {
    let mut table = output::table(&["when", "routing", "who", "why"]);
    for change in history {
        table.add_row(vec![
            change.at.clone(),
            change.to.to_string(),
            change.user.clone(),
            change.reason.clone(),
        ]);
    }
    table
}

/// `vigie models route NAME …`
pub fn route(registry: &mut Registry, args: RouteArgs) -> anyhow::Result<()> {
    let routing = wanted(&args)?;
    let change = registry.set_routing(&args.name, &routing, &user(), &args.reason)?;
    match args.format {
        Format::Json => output::json(&change_json(&change)),
        Format::Text => {
            outln!("{}: {} (was: {})", change.model, change.to, change.from)?;
            Ok(())
        }
    }
}

/// The routing of `name` and its history, for `vigie models show`.
pub fn show_json(registry: &Registry, name: &str) -> anyhow::Result<Json> {
    let routing = registry.routing(name)?;
    let history = registry.routing_history(name)?;
    Ok(json!({
        "spec": routing_json(&routing),
        "description": routing.to_string(),
        "history": history.iter().map(change_json).collect::<Vec<_>>(),
    }))
}

/// Prints the routing of `name` and its history, for `vigie models show`.
pub fn show_text(registry: &Registry, name: &str) -> anyhow::Result<()> {
    outln!("routing: {}", registry.routing(name)?)?;
    let history = registry.routing_history(name)?;
    if !history.is_empty() {
        outln!("{}", history_table(&history))?;
    }
    Ok(())
}

/// Each model of vigie.toml with its entity's key column: the sticky routing key `vigie serve`
/// reads from a request's first record. Models trained from a file have none; an unreadable
/// vigie.toml is a warning (routing then falls back to request keys and ids).
pub fn key_columns(project: &Project) -> BTreeMap<String, String> {
    let config = match project.config() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("warning: no entity keys for routing: {error:#}");
            return BTreeMap::new();
        }
    };
    config
        .models
        .iter()
        .filter_map(|(name, spec)| {
            let entity = config.entities.get(spec.entity.get_ref())?;
            Some((name.clone(), entity.key.get_ref().clone()))
        })
        .collect()
}
