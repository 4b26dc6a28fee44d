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

/// A project with a source of daily sales, a view over it and a forecast model of each kind.
const FORECASTS: &str = r#"
[entities.store]
key = "store_id"

[sources.sales]
kind = "file"
path = "data/sales.csv"
timestamp = "day"

[feature_views.daily]
source = "sales"
entity = "store"
columns = { revenue = "revenue", promo = "promo", region = "region" }
aggregations = [{ name = "revenue_7d", function = "sum", column = "revenue", window = "7d" }]

[models.by_line]
task = "forecast"
source = "sales"
target = "revenue"
series = ["store_id", "line"]
horizon = 28
frequency = "D"
future_covariates = ["promo"]

[models.by_store]
task = "forecast"
view = "daily"
time = "date"
target = "revenue"
horizon = 14
covariates = ["revenue_7d"]
backtest_windows = 2
backtest_refit = true
"#;

#[test]
fn forecast_models_take_their_history_from_a_source_or_a_view() {
    let config = Config::parse(FORECASTS, "vigie.toml").expect("valid");
    let by_line = config.models["by_line"].forecast().expect("a forecast model");
    assert_eq!(
        by_line,
        ForecastSpec {
            history: ForecastHistory::Source("sales".to_owned()),
            time: None,
            target: "revenue".to_owned(),
            series: vec!["store_id".to_owned(), "line".to_owned()],
            horizon: 28,
            frequency: Some("D".to_owned()),
            covariates: Vec::new(),
            future_covariates: vec!["promo".to_owned()],
            backtest_windows: None,
            backtest_refit: false,
            aggregate: None,
            timezone: None,
            non_negative: false,
            strategies: Vec::new(),
            train_window: None,
        }
    );
    let by_store = config.models["by_store"].forecast().expect("a forecast model");
    assert_eq!(by_store.history, ForecastHistory::View("daily".to_owned()));
    assert_eq!(
        (
            by_store.time.as_deref(),
            by_store.horizon,
            by_store.backtest_windows,
            by_store.backtest_refit
        ),
        (Some("date"), 14, Some(2), true)
    );
    assert_eq!(by_store.covariates, ["revenue_7d"]);

    // An hourly model takes a zone without grouping: the clock its hours are read on.
    let hourly =
        FORECASTS.replace("frequency = \"D\"", "frequency = \"H\"\ntimezone = \"Europe/Paris\"");
    let config = Config::parse(&hourly, "vigie.toml").expect("valid");
    let by_line = config.models["by_line"].forecast().expect("a forecast model");
    assert_eq!(by_line.timezone.as_deref(), Some("Europe/Paris"));

    let tabular = Config::parse(PROJECT, "vigie.toml").expect("valid");
    assert_eq!(tabular.models["fraud"].task(), ModelTask::Auto);
    assert_eq!(tabular.models["fraud"].forecast(), None);
}

#[test]
fn forecast_model_errors_name_the_line_column_and_key() {
    // (edit of FORECASTS, the text its error's line holds, the column, the message's start)
    let cases: [(&str, &str, &str, usize, &str); 12] = [
        (
            "source = \"sales\"\ntarget",
            "source = \"salez\"\ntarget",
            "salez",
            10,
            "[models.by_line] source: no source \"salez\"; the sources are: sales",
        ),
        (
            "view = \"daily\"",
            "view = \"weekly\"",
            "weekly",
            8,
            "[models.by_store] view: no feature view \"weekly\"; the views are: daily",
        ),
        (
            "view = \"daily\"",
            "view = \"daily\"\nsource = \"sales\"",
            "view = \"daily\"",
            8,
            "[models.by_store] view: give `source` or `view` for the history, not both",
        ),
        (
            "source = \"sales\"\ntarget",
            "target",
            "[models.by_line]",
            1,
            "[models.by_line] source: missing: a forecast model learns from",
        ),
        (
            "horizon = 28\n",
            "",
            "[models.by_line]",
            1,
            "[models.by_line] horizon: missing: the periods ahead to forecast",
        ),
        (
            "horizon = 14",
            "horizon = 0",
            "horizon = 0",
            11,
            "[models.by_store] horizon: 0 periods; it must be at least 1",
        ),
        (
            "frequency = \"D\"",
            "frequency = \"fortnightly\"",
            "fortnightly",
            13,
            "[models.by_line] frequency: unknown frequency \"fortnightly\", expected auto, H, D",
        ),
        (
            "backtest_windows = 2",
            "backtest_windows = 0",
            "backtest_windows = 0",
            20,
            "[models.by_store] backtest_windows: 0; it must be at least 1",
        ),
        (
            "covariates = [\"revenue_7d\"]",
            "covariates = [\"revenue_30d\"]",
            "revenue_30d",
            15,
            "[models.by_store] covariates: feature view \"daily\" has no feature \"revenue_30d\"; \
             its features are: promo, region, revenue, revenue_7d",
        ),
        (
            "time = \"date\"",
            "time = \"date\"\nseries = [\"line\"]",
            "series = [\"line\"]",
            11,
            "[models.by_store] series: \"line\" is neither the key of feature view \"daily\" \
             (store_id) nor one of its features",
        ),
        (
            "future_covariates = [\"promo\"]",
            "future_covariates = [\"promo\", \"line\"]",
            "future_covariates",
            31,
            "[models.by_line] future_covariates: column \"line\" is already the model's series",
        ),
        (
            "covariates = [\"revenue_7d\"]",
            "covariates = [\"revenue_7d\", \"revenue\"]",
            "covariates = [\"revenue_7d\", ",
            29,
            "[models.by_store] covariates: column \"revenue\" is already the model's target",
        ),
    ];
    for (from, to, needle, column, start) in cases {
        assert!(FORECASTS.contains(from), "{from:?}");
        let text = FORECASTS.replacen(from, to, 1);
        let e = error(&text);
        assert_eq!((e.line, e.column), (line_of(&text, needle), column), "{e}");
        assert!(e.message.starts_with(start), "{start:?} is not the start of: {e}");
    }
}

#[test]
fn values_of_the_wrong_type_name_their_table_and_key() {
    for (from, to, needle, expected) in [
        (
            "horizon = 28",
            "horizon = \"28\"",
            "horizon",
            "[models.by_line] horizon: invalid type: string \"28\", expected a whole number",
        ),
        (
            "frequency = \"D\"",
            "frequency = \"D\"\ntrain_window = true",
            "train_window",
            "[models.by_line] train_window: expected a number of periods, or \"all\"",
        ),
        (
            "frequency = \"D\"",
            "frequency = \"D\"\nstrategies = \"ets\"",
            "strategies",
            "[models.by_line] strategies: invalid type: string \"ets\", expected a list, e.g. \
             [\"a\", \"b\"]",
        ),
        (
            "horizon = 28",
            "horizon = 28\nhorizon = 7",
            "horizon = 7",
            "[models.by_line] horizon: duplicate key",
        ),
    ] {
        assert!(FORECASTS.contains(from), "{from:?}");
        let text = FORECASTS.replacen(from, to, 1);
        let e = error(&text);
        assert_eq!(e.line, line_of(&text, needle), "{e}");
        assert_eq!(e.message, expected);
    }
}

#[test]
fn a_setting_of_the_other_kind_of_model_is_an_error() {
    // A forecast setting on a tabular model, named where it is written.
    let text = PROJECT
        .replace("entity = \"customer\"\nfeatures", "entity = \"customer\"\nhorizon = 7\nfeatures");
    let e = error(&text);
    assert_eq!((e.line, e.column), (line_of(&text, "horizon = 7"), 11), "{e}");
    assert!(
        e.message.starts_with(
            "[models.fraud] horizon: a forecast setting, but the model's task is auto; \
             write task = \"forecast\""
        ),
        "{e}"
    );
    let text = PROJECT.replace(
        "entity = \"customer\"\nfeatures",
        "entity = \"customer\"\nbacktest_refit = true\nfeatures",
    );
    let e = error(&text);
    assert_eq!((e.line, e.column), (line_of(&text, "backtest_refit = true"), 18), "{e}");
    assert!(e.message.starts_with("[models.fraud] backtest_refit: a forecast setting"), "{e}");
    let text = PROJECT
        .replace("label = \"is_fraud\"", "label = \"is_fraud\"\ntask = \"binary\"\ntarget = \"x\"");
    let e = error(&text);
    assert_eq!(e.line, line_of(&text, "target = \"x\""), "{e}");
    assert!(e.message.contains("the model's task is binary"), "{e}");

    // A tabular setting on a forecast model.
    let text = FORECASTS.replace("horizon = 14", "horizon = 14\nfeatures = [\"daily:*\"]");
    let e = error(&text);
    assert_eq!((e.line, e.column), (line_of(&text, "features = "), 13), "{e}");
    assert!(
        e.message.starts_with("[models.by_store] features: not a setting of a forecast model"),
        "{e}"
    );
    // `label` carries no position of its own: the error points at `task`.
    let text = FORECASTS.replace("horizon = 28", "horizon = 28\nlabel = \"revenue\"");
    let e = error(&text);
    let task_line = text.lines().position(|l| l.starts_with("[models.by_line]")).unwrap() + 2;
    assert_eq!((e.line, e.column), (task_line, 8), "{e}");
    assert!(e.message.starts_with("[models.by_line] label: not a setting"), "{e}");

    // A tabular model without its label source, and an unknown task.
    let text = PROJECT.replace("labels = \"labels\"\n", "");
    let e = error(&text);
    assert_eq!(e.line, line_of(&text, "[models.fraud]"), "{e}");
    assert!(
        e.message.starts_with("[models.fraud] labels: missing: the source of labelled rows"),
        "{e}"
    );
    let e = error(&FORECASTS.replacen("task = \"forecast\"", "task = \"forecasting\"", 1));
    assert!(e.message.contains("unknown variant `forecasting`"), "{e}");
    assert_eq!(e.line, line_of(FORECASTS, "task = \"forecast\""), "{e}");
}
