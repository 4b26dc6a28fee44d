//! Routing specs: their JSON shape and the checks that need no registry.

use serde_json::json;

use super::{AbVariant, Routing, Split};

fn parse(value: serde_json::Value) -> Routing {
    serde_json::from_value(value).expect("a routing")
}

fn ab(weights: &[(&str, u32, f64)]) -> Routing {
    let variants = weights
        .iter()
        .map(|(name, version, weight)| AbVariant {
            name: (*name).to_owned(),
            version: *version,
            weight: *weight,
        })
        .collect();
    Routing { split: Split::Ab { variants }, shadow: None }
}

#[test]
fn specs_read_and_write_as_json_tagged_by_mode() {
    assert_eq!(parse(json!({"mode": "champion"})), Routing::champion());
    let canary = parse(json!({"mode": "canary", "version": 2, "weight": 20, "shadow": 3}));
    assert_eq!(canary.split, Split::Canary { version: 2, weight: 20.0 });
    assert_eq!(canary.shadow, Some(3));
    assert_eq!(canary.versions(), [2, 3]);
    assert_eq!(
        serde_json::to_value(&canary).expect("json"),
        json!({"mode": "canary", "version": 2, "weight": 20.0, "shadow": 3})
    );
    assert_eq!(canary.to_string(), "canary v2 at 20%, the rest to the champion; shadow v3");
    let error = serde_json::from_value::<Routing>(json!({"mode": "blue-green"})).unwrap_err();
    assert!(error.to_string().contains("unknown variant `blue-green`"), "{error}");
}

#[test]
fn weights_are_percentages_and_ab_weights_sum_to_100() {
    let canary = |weight| Routing { split: Split::Canary { version: 2, weight }, shadow: None };
    assert_eq!(canary(0.0).check(), Ok(()));
    assert_eq!(canary(100.0).check(), Ok(()));
    let error = canary(150.0).check().unwrap_err();
    assert!(error.contains("150") && error.contains("0 to 100"), "{error}");
    assert!(canary(f64::NAN).check().is_err());
    assert!(canary(-1.0).check().is_err());

    assert_eq!(ab(&[("a", 1, 50.0), ("b", 2, 50.0)]).check(), Ok(()));
    assert_eq!(ab(&[("a", 1, 33.3), ("b", 2, 33.3), ("c", 3, 33.4)]).check(), Ok(()));
    let error = ab(&[("a", 1, 50.0), ("b", 2, 40.0)]).check().unwrap_err();
    assert!(error.contains("sum to 90"), "{error}");
    assert!(ab(&[("a", 1, 100.0)]).check().unwrap_err().contains("at least 2"));
    assert!(ab(&[("a", 1, 50.0), ("a", 2, 50.0)]).check().unwrap_err().contains("twice"));
    assert!(ab(&[("a", 1, 50.0), ("shadow", 2, 50.0)]).check().unwrap_err().contains("reserved"));
    assert!(ab(&[("a", 1, 50.0), ("b c", 2, 50.0)]).check().is_err());
}
