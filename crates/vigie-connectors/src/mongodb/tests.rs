//! Unit tests of the MongoDB source that need no server: paths into nested documents, column
//! types chosen from the values read, an unusable URL named without its password.

use super::*;

#[test]
fn dotted_paths_walk_sub_documents_only() {
    let document = doc! { "device": { "country": "fr", "os": { "name": "ios" } }, "tags": ["a"] };
    assert_eq!(lookup(&document, "device.country"), Some(&Bson::String("fr".into())));
    assert_eq!(lookup(&document, "device.os.name"), Some(&Bson::String("ios".into())));
    assert_eq!(lookup(&document, "device.missing"), None);
    assert_eq!(lookup(&document, "tags.0"), None, "arrays are not walked");
}

#[test]
fn column_types_follow_the_values_read() {
    let of = |values: Vec<Bson>| column_type(&values.into_iter().map(Some).collect::<Vec<_>>());
    assert_eq!(of(vec![Bson::Int32(1), Bson::Int64(2), Bson::Null]), DataType::Int64);
    assert_eq!(of(vec![Bson::Int32(1), Bson::Double(2.5)]), DataType::Float64);
    assert_eq!(of(vec![Bson::Boolean(true)]), DataType::Boolean);
    assert_eq!(
        of(vec![Bson::DateTime(DateTime::from_millis(0))]),
        DataType::Timestamp(TimeUnit::Microsecond, None)
    );
    assert_eq!(of(vec![Bson::Int32(1), Bson::String("x".into())]), DataType::Utf8, "mixed");
    assert_eq!(of(vec![]), DataType::Utf8, "only nulls");

    let values = vec![Some(Bson::Int32(3)), None, Some(Bson::Double(0.5))];
    let array = build(&values, &DataType::Float64);
    let array = array.as_any().downcast_ref::<arrow::array::Float64Array>().expect("f64");
    assert_eq!(array.iter().collect::<Vec<_>>(), [Some(3.0), None, Some(0.5)]);
}

#[test]
fn a_bad_url_is_refused_without_its_password() {
    let fields = BTreeMap::new();
    let source = MongoSource {
        url: "mangodb://vigie:hunter2@db:27017/",
        database: "shop",
        collection: "events",
        filter: None,
        fields: &fields,
        timestamp: "ts",
    };
    let error = read_since(&source, None).expect_err("not a URL").to_string();
    assert!(error.starts_with("mongodb mangodb://vigie@db:27017/: not a MongoDB URL"), "{error}");
    assert!(!error.contains("hunter2"), "{error}");
}
