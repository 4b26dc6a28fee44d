//! Routing between a model's versions, written once and run on SQLite and on PostgreSQL:
//! changes are checked, recorded with who and why, visible to watchers through the
//! generation counter, refused whole when wrong, and an older database gains the routing
//! tables when opened.
#![expect(
    clippy::unwrap_used,
    reason = "test bodies: each runs inside the #[test] functions that on_every_backend! writes"
)]

use vigie_connectors::postgres::{PgClient, PgOptions};
use vigie_registry::{AbVariant, RegistryError, Routing, Split};

use crate::support::{Place, on_every_backend, register};

on_every_backend!(
    routing_changes_are_recorded_and_bump_the_generation,
    wrong_routings_change_nothing,
    a_routed_version_cannot_be_deleted,
    a_database_of_schema_1_gains_the_routing_tables,
);

fn canary(version: u32, weight: f64) -> Routing {
    Routing { split: Split::Canary { version, weight }, shadow: None }
}

fn routing_changes_are_recorded_and_bump_the_generation(place: &Place) {
    let mut registry = place.open();
    for _ in 0..3 {
        register(&mut registry, "fraud");
    }
    assert_eq!(registry.routing("fraud").unwrap(), Routing::champion(), "the default");

    let before = registry.generation().unwrap();
    let mut wanted = canary(2, 20.0);
    wanted.shadow = Some(3);
    let change = registry.set_routing("fraud", &wanted, "ana", "try v2 on a fifth").unwrap();
    assert_eq!((change.from, change.to.clone()), (Routing::champion(), wanted.clone()));
    assert!(registry.generation().unwrap() > before, "routing changes are visible to watchers");

    let ab = Routing {
        split: Split::Ab {
            variants: vec![
                AbVariant { name: "a".into(), version: 1, weight: 50.0 },
                AbVariant { name: "b".into(), version: 2, weight: 50.0 },
            ],
        },
        shadow: None,
    };
    registry.set_routing("fraud", &ab, "ben", "fair test").unwrap();
    // Another connection (another server) reads the same routing.
    assert_eq!(place.open().routing("fraud").unwrap(), ab);

    registry.set_routing("fraud", &Routing::champion(), "ben", "done").unwrap();
    let history = registry.routing_history("fraud").unwrap();
    let lines: Vec<(&Routing, &Routing, &str, &str)> =
        history.iter().map(|c| (&c.from, &c.to, c.user.as_str(), c.reason.as_str())).collect();
    assert_eq!(
        lines,
        [
            (&Routing::champion(), &wanted, "ana", "try v2 on a fifth"),
            (&wanted, &ab, "ben", "fair test"),
            (&ab, &Routing::champion(), "ben", "done"),
        ]
    );
    assert!(history.iter().all(|c| c.at.ends_with('Z')), "times are RFC 3339 UTC");
}

fn wrong_routings_change_nothing(place: &Place) {
    let mut registry = place.open();
    register(&mut registry, "fraud");
    register(&mut registry, "fraud");
    registry.set_routing("fraud", &canary(2, 5.0), "ana", "").unwrap();
    let generation = registry.generation().unwrap();

    let error = registry.set_routing("fraud", &canary(9, 5.0), "x", "").unwrap_err();
    assert!(matches!(error, RegistryError::UnknownVersion { version: 9, .. }), "{error:?}");
    assert!(error.to_string().contains("its versions are 1, 2"), "{error}");
    let error = registry.set_routing("fraud", &canary(2, 150.0), "x", "").unwrap_err();
    assert!(matches!(error, RegistryError::InvalidRouting { .. }), "{error:?}");
    assert!(error.to_string().contains("150"), "{error}");
    assert_eq!(error.code(), vigie_core::ErrorCode::InvalidInput);
    let shadow_missing = Routing { split: Split::Champion, shadow: Some(7) };
    assert!(matches!(
        registry.set_routing("fraud", &shadow_missing, "x", ""),
        Err(RegistryError::UnknownVersion { version: 7, .. })
    ));
    assert!(matches!(
        registry.set_routing("ghost", &canary(1, 5.0), "x", ""),
        Err(RegistryError::UnknownModel { .. })
    ));
    assert!(matches!(registry.routing("ghost"), Err(RegistryError::UnknownModel { .. })));

    assert_eq!(registry.generation().unwrap(), generation);
    assert_eq!(registry.routing("fraud").unwrap(), canary(2, 5.0));
    assert_eq!(registry.routing_history("fraud").unwrap().len(), 1);
}

fn a_routed_version_cannot_be_deleted(place: &Place) {
    let mut registry = place.open();
    register(&mut registry, "fraud");
    register(&mut registry, "fraud");
    let shadow = Routing { split: Split::Champion, shadow: Some(2) };
    registry.set_routing("fraud", &shadow, "ana", "").unwrap();
    let error = registry.delete_version("fraud", 2).unwrap_err();
    assert!(matches!(error, RegistryError::Conflict(_)), "{error:?}");
    assert!(error.to_string().contains("change the routing first"), "{error}");
    registry.set_routing("fraud", &Routing::champion(), "ana", "").unwrap();
    registry.delete_version("fraud", 2).unwrap();
}

/// Runs statements on the test's database directly, as an older Vigie would have left it.
fn raw_sql(place: &Place, sql: &str) {
    match &place.location.database {
        Some(url) => {
            PgClient::connect(url, PgOptions::default()).unwrap().batch_execute(sql).unwrap()
        }
        None => rusqlite::Connection::open(place.dir.path().join("registry.db"))
            .unwrap()
            .execute_batch(sql)
            .unwrap(),
    }
}

fn a_database_of_schema_1_gains_the_routing_tables(place: &Place) {
    {
        let mut registry = place.open();
        register(&mut registry, "fraud");
        register(&mut registry, "fraud");
    }
    raw_sql(
        place,
        "DROP TABLE routing_history; DROP TABLE routing;
         UPDATE meta SET value = '1' WHERE key = 'schema_version';",
    );
    let mut registry = place.open();
    assert_eq!(registry.routing("fraud").unwrap(), Routing::champion());
    registry.set_routing("fraud", &canary(2, 10.0), "ana", "after the upgrade").unwrap();
    assert_eq!(place.open().routing("fraud").unwrap(), canary(2, 10.0));
    // A database of a newer schema than this build is still refused.
    raw_sql(place, "UPDATE meta SET value = '99' WHERE key = 'schema_version';");
    let Err(error) = vigie_registry::Registry::connect(&place.location) else {
        panic!("opened a database of schema 99")
    };
    assert!(error.to_string().contains("newer Vigie (schema 99)"), "{error}");
}
