//! How a model's traffic is split between its versions, stored beside its aliases.
//!
//! A [`Routing`] is one [`Split`] of the answered traffic (all to the champion, a weighted
//! canary beside the champion, or an A/B test over named variants) and, optionally, one shadow
//! version that is scored on every request but never answered. Shadow combines with any split:
//! a canary and a shadow can run at once. The champion is whatever the `champion` alias (else
//! the latest version) points at when the server loads, so a promotion or rollback moves the
//! champion's share without touching the routing.
//!
//! Every change is one transaction that checks the versions (they exist and are tabular
//! models), writes the routing, appends a history line (who, when, why, from, to) and bumps the
//! registry's generation, so a watching server reloads it. This module only stores and checks
//! routings; choosing a variant per request is the server's job.

use serde::{Deserialize, Serialize};
use vigie_connectors::sql::SqlRow;

use super::{bump_generation, now, unknown_model, unknown_version, versions_of};
use crate::db::{Sql, Tx};
use crate::{Registry, RegistryError, Result, validate_name};

/// Variant names the server uses for itself, refused as A/B variant names.
const RESERVED_NAMES: [&str; 3] = ["canary", "shadow", "explicit"];

/// How a model's traffic is routed between its versions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Routing {
    /// How the answered traffic is split.
    #[serde(flatten)]
    pub split: Split,
    /// A version scored on every routed request off the reply path and never answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<u32>,
}

/// How the answered traffic is split; stored and sent as JSON tagged by `mode`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Split {
    /// All traffic to the champion.
    #[default]
    Champion,
    /// `weight` percent of the keys to `version`, the rest to the champion.
    Canary {
        /// The canary version.
        version: u32,
        /// Its share of the keys, in percent (0 to 100).
        weight: f64,
    },
    /// Named variants sharing the keys by weight (percent, summing to 100).
    Ab {
        /// The variants, in the order their shares are laid out.
        variants: Vec<AbVariant>,
    },
}

/// One arm of an A/B test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AbVariant {
    /// The variant's name, as replies and statistics report it.
    pub name: String,
    /// The version it serves.
    pub version: u32,
    /// Its share of the keys, in percent.
    pub weight: f64,
}

/// One change of a model's routing, as the history keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutingChange {
    /// Model.
    pub model: String,
    /// The routing before.
    pub from: Routing,
    /// The routing after.
    pub to: Routing,
    /// Who.
    pub user: String,
    /// When (RFC 3339).
    pub at: String,
    /// Why.
    pub reason: String,
}

impl Routing {
    /// All traffic to the champion, no shadow.
    pub fn champion() -> Self {
        Routing::default()
    }

    /// Every version the routing names (the champion is not named: it follows its alias).
    pub fn versions(&self) -> Vec<u32> {
        let mut versions: Vec<u32> = match &self.split {
            Split::Champion => Vec::new(),
            Split::Canary { version, .. } => vec![*version],
            Split::Ab { variants } => variants.iter().map(|v| v.version).collect(),
        };
        versions.extend(self.shadow);
        versions
    }

    /// Checks weights and names, without looking at the registry.
    pub fn check(&self) -> std::result::Result<(), String> {
        match &self.split {
            Split::Champion => Ok(()),
            Split::Canary { weight, .. } => check_weight("the canary's weight", *weight),
            Split::Ab { variants } => check_variants(variants),
        }
    }
}

fn check_weight(what: &str, weight: f64) -> std::result::Result<(), String> {
    if weight.is_finite() && (0.0..=100.0).contains(&weight) {
        Ok(())
    } else {
        Err(format!("{what} is {weight}; a weight is a percentage from 0 to 100"))
    }
}

fn check_variants(variants: &[AbVariant]) -> std::result::Result<(), String> {
    if variants.len() < 2 {
        return Err(format!("an A/B test needs at least 2 variants, got {}", variants.len()));
    }
    for (index, variant) in variants.iter().enumerate() {
        validate_name(&variant.name)
            .map_err(|e| format!("variants[{index}]: the name {:?}: {e}", variant.name))?;
        if RESERVED_NAMES.contains(&variant.name.as_str()) {
            return Err(format!(
                "variants[{index}]: {:?} is reserved; reserved names: {}",
                variant.name,
                RESERVED_NAMES.join(", ")
            ));
        }
        if variants[..index].iter().any(|earlier| earlier.name == variant.name) {
            return Err(format!("variants[{index}]: the name {:?} is used twice", variant.name));
        }
        check_weight(&format!("variant {:?}'s weight", variant.name), variant.weight)?;
    }
    let total: f64 = variants.iter().map(|v| v.weight).sum();
    if (total - 100.0).abs() > 1e-6 {
        return Err(format!("the A/B weights sum to {total}; they must sum to 100"));
    }
    Ok(())
}

impl std::fmt::Display for Routing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.split {
            Split::Champion => write!(f, "all traffic to the champion")?,
            Split::Canary { version, weight } => {
                write!(f, "canary v{version} at {weight}%, the rest to the champion")?;
            }
            Split::Ab { variants } => {
                let arms: Vec<String> = variants
                    .iter()
                    .map(|v| format!("{} v{} {}%", v.name, v.version, v.weight))
                    .collect();
                write!(f, "A/B test: {}", arms.join(", "))?;
            }
        }
        if let Some(shadow) = self.shadow {
            write!(f, "; shadow v{shadow}")?;
        }
        Ok(())
    }
}

fn parse_spec(db: &impl Sql, text: &str) -> Result<Routing> {
    serde_json::from_str(text).map_err(|e| RegistryError::Database {
        location: db.location().to_owned(),
        message: format!("a stored routing is unreadable ({e}): {text}"),
    })
}

fn spec_text(routing: &Routing) -> String {
    // A struct of numbers, strings and tags always serializes.
    serde_json::to_string(routing).unwrap_or_default()
}

/// The stored routing of a model (the default when none was set).
fn routing_of(db: &impl Sql, name: &str) -> Result<Routing> {
    match db.query_opt("SELECT spec FROM routing WHERE model = $1", &[name.into()])? {
        Some(row) => parse_spec(db, &db.read(row.text(0))?),
        None => Ok(Routing::default()),
    }
}

fn routing_change(db: &impl Sql, row: &SqlRow) -> Result<RoutingChange> {
    Ok(RoutingChange {
        model: db.read(row.text(0))?,
        from: parse_spec(db, &db.read(row.text(1))?)?,
        to: parse_spec(db, &db.read(row.text(2))?)?,
        user: db.read(row.text(3))?,
        at: db.read(row.text(4))?,
        reason: db.read(row.text(5))?,
    })
}

/// Refuses to delete a version the routing of its model still names.
pub(super) fn refuse_routed_version(tx: &Tx<'_>, name: &str, version: u32) -> Result<()> {
    let routing = routing_of(tx, name)?;
    if routing.versions().contains(&version) {
        return Err(RegistryError::Conflict(format!(
            "{name} v{version} is routed to ({routing}); change the routing first"
        )));
    }
    Ok(())
}

impl Registry {
    /// The routing of a model (all to the champion when none was set).
    pub fn routing(&self, name: &str) -> Result<Routing> {
        if versions_of(&self.db, name)?.is_empty() {
            return Err(unknown_model(&self.db, name)?);
        }
        routing_of(&self.db, name)
    }

    /// Replaces the routing of a model, recording who and why, after checking that its weights
    /// add up and that every version it names exists and is a tabular model.
    pub fn set_routing(
        &mut self,
        name: &str,
        routing: &Routing,
        user: &str,
        reason: &str,
    ) -> Result<RoutingChange> {
        routing
            .check()
            .map_err(|message| RegistryError::InvalidRouting { name: name.to_owned(), message })?;
        self.db.transaction(|tx| {
            let known = versions_of(tx, name)?;
            if known.is_empty() {
                return Err(unknown_model(tx, name)?);
            }
            for version in routing.versions() {
                let info = known
                    .iter()
                    .find(|v| v.version == version)
                    .ok_or_else(|| unknown_version(name, version, &known))?;
                if info.task == "forecast" {
                    return Err(RegistryError::InvalidRouting {
                        name: name.to_owned(),
                        message: format!(
                            "v{version} is a forecast model: its champion answers the forecast \
                             route, and canary, shadow and A/B routing are for tabular models"
                        ),
                    });
                }
            }
            let from = routing_of(tx, name)?;
            let spec = spec_text(routing);
            tx.execute(
                "INSERT INTO routing(model, spec) VALUES ($1, $2)
                 ON CONFLICT(model) DO UPDATE SET spec = excluded.spec",
                &[name.into(), (&spec).into()],
            )?;
            let at = now();
            tx.execute(
                "INSERT INTO routing_history(model, from_spec, to_spec, user_name, at, reason)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    name.into(),
                    (&spec_text(&from)).into(),
                    (&spec).into(),
                    user.into(),
                    (&at).into(),
                    reason.into(),
                ],
            )?;
            bump_generation(tx)?;
            Ok(RoutingChange {
                model: name.to_owned(),
                from,
                to: routing.clone(),
                user: user.to_owned(),
                at,
                reason: reason.to_owned(),
            })
        })
    }

    /// Every routing change of a model, oldest first.
    pub fn routing_history(&self, name: &str) -> Result<Vec<RoutingChange>> {
        let rows = self.db.query(
            "SELECT model, from_spec, to_spec, user_name, at, reason FROM routing_history
             WHERE model = $1 ORDER BY id",
            &[name.into()],
        )?;
        rows.iter().map(|row| routing_change(&self.db, row)).collect()
    }
}

#[cfg(test)]
mod tests;
