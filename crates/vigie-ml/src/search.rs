//! Hyper-parameter spaces and the candidates grid and random search draw from them.
//!
//! A space maps parameter names to a list of values (grid) or a range
//! (random search samples ranges, log-uniformly when both ends are
//! positive and an order of magnitude apart). Candidates are JSON objects
//! merged over the algorithm's defaults, so every algorithm's parameter
//! struct is searchable without code of its own.

use std::collections::BTreeMap;

use serde_json::{Map, Value as Json};

use crate::error::{MlError, Result};
use crate::rng::Rng;

/// How to explore a space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SearchKind {
    /// Only the defaults (or the given parameters).
    #[default]
    None,
    /// Every combination, in order, up to the trial limit.
    Grid,
    /// Seeded random draws.
    Random,
}

impl std::str::FromStr for SearchKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "none" => Ok(SearchKind::None),
            "grid" => Ok(SearchKind::Grid),
            "random" => Ok(SearchKind::Random),
            other => Err(format!("unknown search {other:?}, expected none, grid or random")),
        }
    }
}

/// The values one parameter may take.
#[derive(Debug, Clone, PartialEq)]
pub enum Domain {
    /// An explicit list.
    Choice(Vec<Json>),
    /// Integers in `low..=high`.
    IntRange(i64, i64),
    /// Reals in `[low, high]`.
    FloatRange(f64, f64),
}

impl Domain {
    fn grid_values(&self) -> Vec<Json> {
        match self {
            Domain::Choice(values) => values.clone(),
            Domain::IntRange(low, high) => {
                // Five points spread over the range for a grid.
                let mut values: Vec<i64> = (0..5).map(|k| low + (high - low) * k / 4).collect();
                values.dedup();
                values.into_iter().map(Json::from).collect()
            }
            Domain::FloatRange(low, high) => {
                (0..5).map(|k| Json::from(low + (high - low) * k as f64 / 4.0)).collect()
            }
        }
    }

    fn sample(&self, rng: &mut Rng) -> Json {
        match self {
            Domain::Choice(values) => {
                values.get(rng.below(values.len().max(1))).cloned().unwrap_or(Json::Null)
            }
            Domain::IntRange(low, high) => {
                Json::from(low + rng.below((high - low + 1).max(1) as usize) as i64)
            }
            Domain::FloatRange(low, high) => {
                let u = rng.next_f64();
                if *low > 0.0 && high / low >= 10.0 {
                    Json::from((low.ln() + u * (high.ln() - low.ln())).exp())
                } else {
                    Json::from(low + u * (high - low))
                }
            }
        }
    }
}

/// A search space: parameter name → domain.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Space {
    /// The parameters, in name order.
    pub domains: BTreeMap<String, Domain>,
}

/// A parameter's value as written: an integer, a float, `true`/`false`,
/// `null` or `none` (no value), else the text.
pub fn parse_scalar(text: &str) -> Json {
    let text = text.trim();
    if let Ok(i) = text.parse::<i64>() {
        return Json::from(i);
    }
    if let Ok(x) = text.parse::<f64>() {
        return Json::from(x);
    }
    match text {
        "true" => Json::Bool(true),
        "false" => Json::Bool(false),
        "null" | "none" => Json::Null,
        _ => Json::from(text),
    }
}

impl Space {
    /// Parses `name=v1,v2;name=low..high` (integers give an integer range).
    pub fn parse(text: &str) -> Result<Self> {
        let mut domains = BTreeMap::new();
        for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, values) = part
                .split_once('=')
                .ok_or_else(|| MlError::param("space", format!("{part:?} is not name=values")))?;
            let name = name.trim().to_owned();
            let domain = if let Some((low, high)) = values.split_once("..") {
                match (parse_scalar(low), parse_scalar(high)) {
                    (Json::Number(l), Json::Number(h)) if l.is_i64() && h.is_i64() => {
                        let (l, h) = (l.as_i64().unwrap_or(0), h.as_i64().unwrap_or(0));
                        if l > h {
                            return Err(MlError::param(
                                &name,
                                "range low end is above its high end",
                            ));
                        }
                        Domain::IntRange(l, h)
                    }
                    (Json::Number(l), Json::Number(h)) => {
                        let (l, h) = (l.as_f64().unwrap_or(0.0), h.as_f64().unwrap_or(0.0));
                        if l > h || !l.is_finite() || !h.is_finite() {
                            return Err(MlError::param(
                                &name,
                                "range low end is above its high end",
                            ));
                        }
                        Domain::FloatRange(l, h)
                    }
                    _ => {
                        return Err(MlError::param(
                            &name,
                            format!("{values:?} is not a numeric range"),
                        ));
                    }
                }
            } else {
                Domain::Choice(values.split(',').map(parse_scalar).collect())
            };
            domains.insert(name, domain);
        }
        Ok(Space { domains })
    }

    /// The first `limit` grid points, in odometer order over names.
    pub fn grid(&self, limit: usize) -> Vec<Map<String, Json>> {
        let axes: Vec<(&String, Vec<Json>)> =
            self.domains.iter().map(|(n, d)| (n, d.grid_values())).collect();
        let mut out = Vec::new();
        let mut index = vec![0usize; axes.len()];
        if axes.iter().any(|(_, values)| values.is_empty()) {
            return out;
        }
        while out.len() < limit {
            let candidate = axes
                .iter()
                .zip(&index)
                .map(|((name, values), &i)| ((*name).clone(), values[i].clone()))
                .collect();
            out.push(candidate);
            // Advance the odometer; stop after the last combination.
            let mut axis = axes.len();
            loop {
                if axis == 0 {
                    return out;
                }
                axis -= 1;
                index[axis] += 1;
                if index[axis] < axes[axis].1.len() {
                    break;
                }
                index[axis] = 0;
            }
        }
        out
    }

    /// `n` random candidates drawn with `seed`.
    pub fn random(&self, n: usize, seed: u64) -> Vec<Map<String, Json>> {
        let mut rng = Rng::new(seed ^ 0x5345_4152_4348);
        (0..n)
            .map(|_| {
                self.domains.iter().map(|(name, d)| (name.clone(), d.sample(&mut rng))).collect()
            })
            .collect()
    }
}

/// Overlays `overrides` on the JSON object `base`.
pub fn merge(base: &Json, overrides: &Map<String, Json>) -> Json {
    let mut merged = base.clone();
    if let Json::Object(map) = &mut merged {
        for (key, value) in overrides {
            map.insert(key.clone(), value.clone());
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_and_ranges_and_enumerates_the_grid() {
        let space = Space::parse("learning_rate=0.05,0.1; max_leaves=15,31,63").unwrap();
        let grid = space.grid(100);
        assert_eq!(grid.len(), 6);
        assert_eq!(grid[0]["learning_rate"], Json::from(0.05));
        assert_eq!(grid[5]["max_leaves"], Json::from(63));
        assert_eq!(space.grid(4).len(), 4);
        let ranges = Space::parse("l2=0.001..10;max_leaves=8..64").unwrap();
        let draws = ranges.random(50, 3);
        assert_eq!(draws, ranges.random(50, 3), "same seed, same trials");
        for draw in &draws {
            let l2 = draw["l2"].as_f64().unwrap();
            assert!((0.001..=10.0).contains(&l2));
            let leaves = draw["max_leaves"].as_i64().unwrap();
            assert!((8..=64).contains(&leaves));
        }
        assert!(Space::parse("l2").is_err());
        assert!(Space::parse("l2=5..1").is_err());
    }
}
