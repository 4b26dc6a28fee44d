use super::*;

const PROJECT: &str = r#"
[project]
name = "fraud"

[entities.customer]
key = "customer_id"

[sources.transactions]
kind = "file"
path = "data/transactions.csv"
timestamp = "ts"

[sources.labels]
kind = "file"
path = "data/labels.csv"
timestamp = "ts"

[feature_views.activity]
source = "transactions"
entity = "customer"
ttl = "7d"
allowed_lateness = "5m"
columns = { amount_log = "ln(amount + 1)" }
aggregations = [
  { name = "txn_count_1h", function = "count", window = "1h" },
  { name = "amount_sum_24h", function = "sum", column = "amount", window = "24h" },
]

[models.fraud]
labels = "labels"
label = "is_fraud"
entity = "customer"
features = ["activity:*"]
"#;

/// The 1-based line of the first line of `text` holding `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|line| line.contains(needle)).expect("needle") + 1
}

fn error(text: &str) -> ConfigError {
    Config::parse(text, "vigie.toml").expect_err("an error")
}

#[test]
fn a_project_parses_with_defaults_for_what_it_leaves_out() {
    let config = Config::parse(PROJECT, "vigie.toml").expect("valid");
    assert_eq!(config.storage, Storage::default());
    let view = &config.feature_views["activity"];
    assert_eq!(view.aggregations[1].function.get_ref(), &Function::Sum);
    assert_eq!(
        parse_duration(view.ttl.as_ref().expect("ttl").get_ref()),
        Ok(Duration::from_secs(7 * 86_400))
    );
    assert_eq!(Config::parse("", "vigie.toml").expect("empty"), Config::default());
}

#[test]
fn errors_name_the_file_line_column_and_key() {
    let typo = PROJECT.replace("window = \"1h\"", "windw = \"1h\"");
    let e = error(&typo);
    assert_eq!((e.file.as_str(), e.line), ("vigie.toml", line_of(&typo, "windw")), "{e}");
    assert!(e.message.contains("unknown field `windw`"), "{e}");

    let renamed = PROJECT.replace("source = \"transactions\"", "source = \"txns\"");
    let e = error(&renamed);
    let line = line_of(&renamed, "txns");
    let expected =
        format!("vigie.toml:{line}:10: [feature_views.activity] source: no source \"txns\"");
    assert!(e.to_string().starts_with(&expected), "{e}");
    assert!(e.message.contains("the sources are: labels, transactions"), "{e}");

    let e = error(&PROJECT.replace("ttl = \"7d\"", "ttl = \"seven days\""));
    assert!(
        e.message.contains("[feature_views.activity] ttl: \"seven days\" is not a duration"),
        "{e}"
    );
    assert_eq!(e.line, line_of(PROJECT, "ttl ="));

    let e = error(&PROJECT.replace("function = \"sum\"", "function = \"avg\""));
    assert!(e.message.contains("unknown variant `avg`"), "{e}");

    let e = error(&PROJECT.replace(", column = \"amount\"", ""));
    assert!(e.message.contains("sum of \"amount_sum_24h\" needs a `column`"), "{e}");

    let e = error(&PROJECT.replace("activity:*", "activity:nope"));
    assert!(e.message.contains("feature view \"activity\" has no feature \"nope\""), "{e}");
    assert_eq!(e.line, line_of(PROJECT, "activity:*"));

    let e =
        error(&PROJECT.replace("kind = \"file\"\npath = \"data/labels.csv\"", "kind = \"kafka\""));
    assert!(e.message.contains("[sources.labels] kind: a kafka source needs `brokers`"), "{e}");

    let e = error("[storage\noffline = 1");
    assert_eq!(e.line, 1, "{e}");

    let e = error("[storage]\nonline = \"redis://127.0.0.1\"\n");
    assert_eq!((e.line, e.column), (2, 10), "{e}");
    assert!(e.message.starts_with("[storage] online: \"redis://127.0.0.1\" is not"), "{e}");
}

#[test]
fn the_online_store_is_embedded_or_a_mongodb_collection() {
    let config = Config::parse(
        "[storage]\nonline = \"mongodb://${USER}:${PASSWORD}@db:27017/\"\n\
         online_collection = \"latest\"\n",
        "vigie.toml",
    )
    .expect("valid");
    assert_eq!(config.storage.online.get_ref(), "mongodb://${USER}:${PASSWORD}@db:27017/");
    assert_eq!(
        (config.storage.online_database.as_str(), config.storage.online_collection.as_str()),
        ("vigie", "latest")
    );
    assert_eq!(Storage::default().online.get_ref(), EMBEDDED);
}

#[test]
fn cleaning_recipes_are_checked_where_they_are_written() {
    let with = |clean: &str| {
        PROJECT.replace(
            "\n[models.fraud]",
            &format!("[feature_views.activity.clean]\n{clean}\n\n[models.fraud]"),
        )
    };
    let good = with("amount_log = { impute = \"median\", scale = \"robust\" }");
    let config = Config::parse(&good, "vigie.toml").expect("valid");
    let clean = config.feature_views["activity"].clean["amount_log"].get_ref();
    assert_eq!((clean.impute, clean.scale), (Some(CleanImpute::Median), Some(CleanScale::Robust)));

    let cases = [
        ("amount = { impute = \"mean\" }", "amount =", "\"amount\" is not a row-level feature"),
        ("amount_log = { impute = \"average\" }", "average", "unknown variant `average`"),
        ("amount_log = { impute = \"mean\", fill = 0 }", "fill = 0", "keep one"),
        ("amount_log = { scale = \"standard\", lowercase = true }", "lowercase", "mixes keys"),
        ("amount_log = { max_categories = 0 }", "max_categories", "at least 1"),
        ("amount_log = { clip = 3 }", "clip", "unknown field `clip`"),
    ];
    for (clean, needle, message) in cases {
        let text = with(clean);
        let e = error(&text);
        assert_eq!(e.line, line_of(&text, needle), "{e}");
        assert!(e.message.contains(message), "{clean}: {e}");
    }
}
