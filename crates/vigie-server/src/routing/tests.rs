//! The sticky hash, key extraction from every protocol's body, and latency quantiles.

use std::time::Duration;

use serde_json::json;

use super::{BUCKETS, Latencies, basis, bucket, entity_key};

#[test]
fn buckets_are_stable_and_spread_evenly() {
    // Fixed values: a change here reshuffles every customer's variant in production.
    assert_eq!(bucket("credit", "customer-1"), bucket("credit", "customer-1"));
    assert_ne!(bucket("credit", "customer-1"), bucket("churn", "customer-1"));
    let n = 100_000;
    let below_20_percent =
        (0..n).filter(|i| bucket("credit", &format!("c{i}")) < basis(20.0)).count();
    // Binomial(100000, 0.2): standard deviation 126; 6 of them is 760.
    assert!((below_20_percent as i64 - 20_000).abs() < 760, "{below_20_percent}");
    assert_eq!((basis(0.0), basis(5.0), basis(100.0), basis(150.0)), (0, 500, BUCKETS, BUCKETS));
}

#[test]
fn the_entity_key_is_found_in_every_protocol_shape() {
    let column = "customer_id";
    let v1 = json!({"records": [{"customer_id": "c7", "x": 1}, {"customer_id": "c8"}]});
    assert_eq!(entity_key(&v1, column).as_deref(), Some("c7"));
    let mlflow = json!({"dataframe_records": [{"customer_id": 42}]});
    assert_eq!(entity_key(&mlflow, column).as_deref(), Some("42"));
    let split = json!({"dataframe_split": {"columns": ["x", "customer_id"], "data": [[1, "c9"]]}});
    assert_eq!(entity_key(&split, column).as_deref(), Some("c9"));
    let columns = json!({"inputs": {"customer_id": ["c3", "c4"]}});
    assert_eq!(entity_key(&columns, column).as_deref(), Some("c3"));
    let v2 = json!({"inputs": [
        {"name": "x", "shape": [1], "datatype": "FP64", "data": [1.0]},
        {"name": "customer_id", "shape": [1, 1], "datatype": "BYTES", "data": [["c5"]]},
    ]});
    assert_eq!(entity_key(&v2, column).as_deref(), Some("c5"));
    assert_eq!(entity_key(&json!({"records": [{"x": 1}]}), column), None);
    assert_eq!(entity_key(&json!({"records": [{"customer_id": null}]}), column), None);
}

#[test]
fn latency_quantiles_are_within_a_bucket() {
    let mut latencies = Latencies::default();
    assert_eq!(latencies.quantile_ms(0.5), None);
    for micros in 1..=1000 {
        latencies.record(Duration::from_micros(micros));
    }
    let p50 = latencies.quantile_ms(0.5).expect("p50");
    let p99 = latencies.quantile_ms(0.99).expect("p99");
    assert!((0.5..=0.5 * 1.19 + 1e-9).contains(&p50), "{p50}");
    assert!((0.99..=0.99 * 1.19 + 1e-9).contains(&p99), "{p99}");
    latencies.record(Duration::from_secs(100_000));
    assert!(latencies.quantile_ms(1.0).is_some(), "the longest lands in the last bucket");
}
