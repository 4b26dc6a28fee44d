//! `vigie example load`: the example's seeded card transactions written to
//! real servers, for the project in `examples/fraud-on-servers` (and its test):
//!
//! - PostgreSQL: table `transactions`, every transaction with its label (the
//!   bank's OLTP history, where the labels come from);
//! - MongoDB: `bank.customers`, one profile document per customer with
//!   nested fields (home country, segment) and the time it was last updated;
//! - Kafka: topic `card-transactions`, every transaction as a JSON event
//!   without its label, keyed by customer (what the payment system streams).
//!
//! Glue only: the generator is `vigie init`'s, the clients are `vigie_connectors`'.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value as Json, json};
use vigie_connectors::mongodb::MongoSink;
use vigie_connectors::postgres::{PgClient, PgOptions};

use crate::cli::{ExampleLoadArgs, Format};
use crate::example;
use crate::output::{self, outln};
use crate::progress::Spinner;

/// One generated transaction, as the CSV of `vigie init` has it.
struct Row<'a> {
    cells: Vec<&'a str>,
}

const COLUMNS: [&str; 11] = [
    "transaction_id",
    "customer_id",
    "ts",
    "amount",
    "merchant_id",
    "category",
    "country",
    "home_country",
    "device_id",
    "channel",
    "is_fraud",
];

impl Row<'_> {
    fn get(&self, column: &str) -> &str {
        COLUMNS
            .iter()
            .position(|c| *c == column)
            .and_then(|i| self.cells.get(i))
            .copied()
            .unwrap_or("")
    }

    /// The transaction as an event: every column but the label, the amount a number.
    fn event(&self) -> Json {
        let mut event = serde_json::Map::new();
        for column in COLUMNS.iter().filter(|c| **c != "is_fraud") {
            let value = self.get(column);
            event.insert(
                (*column).to_owned(),
                match *column {
                    "amount" => value.parse::<f64>().map_or(Json::Null, Json::from),
                    _ => Json::String(value.to_owned()),
                },
            );
        }
        Json::Object(event)
    }
}

/// `vigie example load`.
pub fn load(args: ExampleLoadArgs) -> anyhow::Result<()> {
    let today = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| (d.as_secs() / 86_400) as i64);
    let csv = example::transactions(args.rows, args.seed, today);
    let rows: Vec<Row<'_>> =
        csv.lines().skip(1).map(|line| Row { cells: line.split(',').collect() }).collect();
    let mut summary = json!({"transactions": rows.len(), "frauds": rows.iter().filter(|r| r.get("is_fraud") == "1").count()});

    let spinner = Spinner::new("writing the transactions to PostgreSQL");
    let written = load_postgres(&args.postgres, &rows);
    spinner.finish();
    summary["postgres"] = json!({"table": "transactions", "rows": written?});

    let spinner = Spinner::new("writing the customer profiles to MongoDB");
    let written = load_mongodb(&args.mongodb, &args.mongodb_database, &rows);
    spinner.finish();
    let collection = format!("{}.customers", args.mongodb_database);
    summary["mongodb"] = json!({"collection": collection, "documents": written?});

    let spinner = Spinner::new("sending the transactions to Kafka");
    vigie_connectors::kafka::create_topic(&args.kafka, &args.topic, 3)?;
    let events: Vec<Json> = rows.iter().map(Row::event).collect();
    let sent =
        vigie_connectors::kafka::produce(&args.kafka, &args.topic, &events, Some("customer_id"));
    spinner.finish();
    sent?;
    summary["kafka"] = json!({"topic": args.topic, "events": events.len()});

    match args.format {
        Format::Json => output::json(&summary),
        Format::Text => {
            outln!(
                "{} transactions ({} fraudulent): PostgreSQL table transactions, {} customer \
                 profiles in MongoDB {collection}, {} events on Kafka topic {}",
                summary["transactions"],
                summary["frauds"],
                summary["mongodb"]["documents"],
                summary["kafka"]["events"],
                args.topic
            )?;
            Ok(())
        }
    }
}

/// Replaces table `transactions` with `rows`; returns how many were written.
fn load_postgres(url: &str, rows: &[Row<'_>]) -> anyhow::Result<usize> {
    let mut client = PgClient::connect(url, PgOptions::default())?;
    client.batch_execute(
        "DROP TABLE IF EXISTS transactions;
         CREATE TABLE transactions (
             transaction_id text PRIMARY KEY, customer_id text NOT NULL, ts timestamptz NOT NULL,
             amount double precision, merchant_id text, category text, country text,
             home_country text, device_id text, channel text, is_fraud integer NOT NULL
         );",
    )?;
    for chunk in rows.chunks(1_000) {
        let values: Vec<String> = chunk
            .iter()
            .map(|row| {
                // Generated identifiers and codes: letters, digits, dashes and colons only.
                let text = |column: &str| format!("'{}'", row.get(column).replace('\'', "''"));
                format!(
                    "({}, {}, {}::timestamp AT TIME ZONE 'UTC', {}, {}, {}, {}, {}, {}, {}, {})",
                    text("transaction_id"),
                    text("customer_id"),
                    text("ts"),
                    row.get("amount").parse::<f64>().unwrap_or(f64::NAN),
                    text("merchant_id"),
                    text("category"),
                    text("country"),
                    text("home_country"),
                    text("device_id"),
                    text("channel"),
                    row.get("is_fraud").parse::<i32>().unwrap_or(0),
                )
            })
            .collect();
        client.batch_execute(&format!("INSERT INTO transactions VALUES {};", values.join(",")))?;
    }
    Ok(rows.len())
}

/// Writes one profile per customer into `DATABASE.customers`: home country and segment nested
/// under `profile`, `updated_at` a day before the customer's first transaction.
fn load_mongodb(url: &str, database: &str, rows: &[Row<'_>]) -> anyhow::Result<usize> {
    let mut first: BTreeMap<&str, &Row<'_>> = BTreeMap::new();
    let mut spent: BTreeMap<&str, (f64, usize)> = BTreeMap::new();
    for row in rows {
        let customer = row.get("customer_id");
        first.entry(customer).or_insert(row);
        let entry = spent.entry(customer).or_insert((0.0, 0));
        entry.0 += row.get("amount").parse::<f64>().unwrap_or(0.0);
        entry.1 += 1;
    }
    let documents: Vec<Json> = first
        .iter()
        .map(|(customer, row)| {
            let (total, count) = spent.get(customer).copied().unwrap_or((0.0, 1));
            let mean = total / count.max(1) as f64;
            let segment = if mean > 80.0 {
                "premium"
            } else if mean > 25.0 {
                "standard"
            } else {
                "basic"
            };
            let opened = humantime::parse_rfc3339_weak(row.get("ts"))
                .map(|t| t - Duration::from_secs(86_400))
                .map(|t| humantime::format_rfc3339_millis(t).to_string())
                .unwrap_or_default();
            json!({
                "_id": customer,
                "customer_id": customer,
                "profile": {"home_country": row.get("home_country"), "segment": segment},
                "updated_at": {"$date": opened},
            })
        })
        .collect();
    let sink = MongoSink::new(url, database, "customers", Duration::from_secs(10))?;
    sink.insert_once(&documents)?;
    Ok(documents.len())
}
