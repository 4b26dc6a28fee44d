//! A view's learned cleaning (`[feature_views.V.clean]`): the statistics are
//! learned once from the view's rows, stored, and reused by later
//! computations until the definition changes or they are forgotten; cleaned
//! values and the aggregations over them follow those statistics; a recipe
//! that does not fit the feature's type is an error naming the view and the
//! feature. (That the stream processor cleans as the batch engine does is
//! checked in `stream.rs`, whose view cleans two features.)

use std::path::Path;

use arrow::array::{Array, Float64Array, StringArray, TimestampMicrosecondArray};
use vigie_core::Config;
use vigie_features::FeatureStore;

const PROJECT: &str = r#"
[entities.customer]
key = "customer_id"

[sources.transactions]
kind = "file"
path = "transactions.csv"
timestamp = "ts"

[feature_views.activity]
source = "transactions"
entity = "customer"
columns = { amount_clean = "amount", amount_raw = "amount", shop = "merchant" }
aggregations = [
  { name = "sum_1d", function = "sum", column = "amount_clean", window = "1d" },
  { name = "shops_1d", function = "distinct_count", column = "shop", window = "1d" },
]

[feature_views.activity.clean]
amount_clean = { impute = "median", scale = "standard" }
shop = { min_frequency = 2, rare = "rare", impute = "most-frequent" }
"#;

/// Amounts 10, 20, 30, 40 and one missing; merchants with case and spaces, `Cafe`
/// three times, `shop` twice, `fuel` once (rare).
const FIRST: &str = "\
customer_id,ts,amount,merchant
1,2024-03-01T00:00:00,10, Cafe
1,2024-03-01T01:00:00,,cafe
2,2024-03-01T00:10:00,20,SHOP
2,2024-03-01T00:20:00,30,fuel
2,2024-03-01T00:30:00,40,shop
3,2024-03-01T00:40:00,20,
3,2024-03-01T00:50:00,20,CAFE
";

fn store(dir: &Path, project: &str) -> FeatureStore {
    let config = Config::parse(project, "vigie.toml").expect("config");
    FeatureStore::open(dir, config).expect("store")
}

/// The view's rows as (customer, amount_clean, amount_raw, shop, sum_1d, shops_1d), in
/// key and time order.
type Row = (String, Option<f64>, Option<f64>, Option<String>, f64, f64);

fn rows(store: &FeatureStore) -> Vec<Row> {
    let batch = store.view_rows("activity").expect("rows");
    let text = |name: &str| {
        batch.column_by_name(name).expect(name).as_any().downcast_ref::<StringArray>().cloned()
    };
    let numbers = |name: &str| {
        batch
            .column_by_name(name)
            .expect(name)
            .as_any()
            .downcast_ref::<Float64Array>()
            .cloned()
            .expect("numbers")
    };
    let (keys, shop) = (text("_key").expect("keys"), text("shop").expect("text shop"));
    let (clean, raw) = (numbers("amount_clean"), numbers("amount_raw"));
    let (sum, shops) = (numbers("sum_1d"), numbers("shops_1d"));
    let maybe = |a: &Float64Array, i: usize| (!a.is_null(i)).then(|| a.value(i));
    (0..batch.num_rows())
        .map(|i| {
            (
                keys.value(i).to_owned(),
                maybe(&clean, i),
                maybe(&raw, i),
                (!shop.is_null(i)).then(|| shop.value(i).to_owned()),
                sum.value(i),
                shops.value(i),
            )
        })
        .collect()
}

#[test]
fn cleaning_is_learned_once_and_applied_to_features_and_their_aggregations() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("transactions.csv"), FIRST).expect("write");
    let store = store(dir.path(), PROJECT);
    store.ingest("transactions").expect("ingest");
    store.compute_view("activity").expect("compute");
    assert_eq!(store.cleaning_rows("activity").expect("cleaning"), Some(7));

    // Learned on the 6 present amounts (10, 20, 30, 40, 20, 20): median 20, mean 140/6,
    // population standard deviation as scikit-learn's StandardScaler.
    let present = [10.0, 20.0, 30.0, 40.0, 20.0, 20.0];
    let mean = present.iter().sum::<f64>() / 6.0;
    let std = (present.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 6.0).sqrt();
    let scaled = |x: f64| (x - mean) / std;
    let all = rows(&store);
    assert_eq!(all.len(), 7);
    for (key, clean, raw, _, _, _) in &all {
        let expected = scaled(raw.unwrap_or(20.0));
        let clean = clean.expect("imputed");
        assert!((clean - expected).abs() < 1e-12, "customer {key}: {clean} != {expected}");
    }
    // Text: trimmed, lower case; `fuel` (one row) is rare; missing → the most frequent kept
    // category (`cafe`, 3 rows, against `shop`, 2).
    let shops: Vec<&str> = all.iter().map(|r| r.3.as_deref().expect("filled")).collect();
    assert_eq!(shops, ["cafe", "cafe", "shop", "rare", "shop", "cafe", "cafe"]);
    // Aggregations read the cleaned values: customer 1's second row sums 10 and the
    // median-filled missing amount, scaled; customer 2's last row counts 2 distinct shops
    // (`shop` twice and `rare`).
    assert!((all[1].4 - (scaled(10.0) + scaled(20.0))).abs() < 1e-12, "{:?}", all[1]);
    assert_eq!(all[4].5, 2.0);

    // New rows do not change what was learned: a far larger amount is scaled with the old
    // statistics, and a new merchant is rare.
    let second = "4,2024-03-02T00:00:00,1000,bakery\n";
    std::fs::write(dir.path().join("transactions.csv"), format!("{FIRST}{second}"))
        .expect("append");
    store.ingest("transactions").expect("ingest");
    store.compute_view("activity").expect("compute");
    assert_eq!(store.cleaning_rows("activity").expect("cleaning"), Some(7));
    let all = rows(&store);
    let new = all.iter().find(|r| r.0 == "4").expect("customer 4");
    assert!((new.1.expect("value") - scaled(1000.0)).abs() < 1e-9);
    assert_eq!(new.3.as_deref(), Some("rare"));

    // Another process reads the stored statistics rather than learning them again.
    let other = self::store(dir.path(), PROJECT);
    other.compute_view("activity").expect("compute");
    assert_eq!(rows(&other), all);

    // Forgotten (`vigie materialize --refit`), they are learned from all 8 rows.
    other.forget_cleaning("activity").expect("forget");
    other.compute_view("activity").expect("compute");
    assert_eq!(other.cleaning_rows("activity").expect("cleaning"), Some(8));
    let refitted = rows(&other);
    let new = refitted.iter().find(|r| r.0 == "4").expect("customer 4");
    assert!(new.1.expect("value") < scaled(1000.0), "a new, wider scale");

    // A changed recipe is learned again without being asked.
    let changed = PROJECT.replace("scale = \"standard\"", "scale = \"minmax\"");
    let changed = self::store(dir.path(), &changed);
    changed.compute_view("activity").expect("compute");
    let minmax = rows(&changed);
    let (low, high) = minmax
        .iter()
        .filter_map(|r| r.1)
        .fold((f64::MAX, f64::MIN), |(l, h), v| (l.min(v), h.max(v)));
    assert_eq!((low, high), (0.0, 1.0), "min-max over the learned rows");
}

#[test]
fn the_stored_time_order_is_kept() {
    // Cleaning rewrites columns, not rows: times stay with their rows.
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("transactions.csv"), FIRST).expect("write");
    let store = store(dir.path(), PROJECT);
    store.ingest("transactions").expect("ingest");
    store.compute_view("activity").expect("compute");
    let batch = store.view_rows("activity").expect("rows");
    let times = batch
        .column_by_name("_time")
        .expect("times")
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .cloned()
        .expect("times");
    let raw = batch
        .column_by_name("amount_raw")
        .expect("raw")
        .as_any()
        .downcast_ref::<Float64Array>()
        .cloned()
        .expect("numbers");
    // Customer 2's rows at 00:10, 00:20, 00:30 carry 20, 30, 40.
    let at = |minutes: i64| 1_709_251_200_000_000 + minutes * 60_000_000;
    for (minutes, amount) in [(10, 20.0), (20, 30.0), (30, 40.0)] {
        let row = (0..batch.num_rows()).find(|&i| times.value(i) == at(minutes)).expect("row");
        assert_eq!(raw.value(row), amount);
    }
}

#[test]
fn a_recipe_that_does_not_fit_the_feature_type_names_the_view_and_feature() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("transactions.csv"), FIRST).expect("write");
    let cases = [
        (
            "shop = { min_frequency = 2, rare = \"rare\", impute = \"most-frequent\" }",
            "shop = { scale = \"robust\" }",
            "[feature_views.activity.clean] shop: the feature is text",
        ),
        (
            "amount_clean = { impute = \"median\", scale = \"standard\" }",
            "amount_clean = { lowercase = false }",
            "[feature_views.activity.clean] amount_clean: the feature is a number",
        ),
    ];
    for (from, to, expected) in cases {
        let project = PROJECT.replace(from, to);
        let store = store(dir.path(), &project);
        store.ingest("transactions").expect("ingest");
        let error = store.compute_view("activity").expect_err("refused").to_string();
        assert!(error.contains(expected), "{error}");
        assert_eq!(store.cleaning_rows("activity").expect("nothing stored"), None);
    }
}
