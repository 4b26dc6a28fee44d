//! `vigie mlflow export`: the registry copied to an MLflow tracking server.
//!
//! Glue only: the export itself is `vigie_registry::mlflow_export`, the HTTP client
//! `vigie_connectors::mlflow`. Progress lines go to stderr, the summary to stdout.

use anyhow::Context as _;
use serde_json::{Value as Json, json};
use vigie_connectors::mlflow::MlflowClient;
use vigie_registry::{ExportCount, ExportSummary, mlflow_export};

use super::{Project, UsageError};
use crate::cli::{Format, MlflowCommand};
use crate::output;

pub fn run(project: &Project, command: MlflowCommand) -> anyhow::Result<()> {
    match command {
        MlflowCommand::Export { tracking_uri, format } => export(project, &tracking_uri, format),
    }
}

fn export(project: &Project, tracking_uri: &str, format: Format) -> anyhow::Result<()> {
    if !(tracking_uri.starts_with("http://") || tracking_uri.starts_with("https://")) {
        return Err(UsageError(format!(
            "--tracking-uri {tracking_uri:?}: expected the address of an MLflow tracking server, \
             http://HOST:PORT or https://… (file stores and databases are not supported)"
        ))
        .into());
    }
    let registry = project.registry()?;
    let client = MlflowClient::new(tracking_uri);
    let summary = mlflow_export::export(&registry, &client, |line| eprintln!("{line}"))
        .with_context(|| format!("cannot export to MLflow at {tracking_uri}"))?;
    match format {
        Format::Json => output::json(&summary_json(tracking_uri, &summary)),
        Format::Text => {
            println!("Exported to MLflow at {tracking_uri}");
            let mut table = output::table(&["", "created", "already there", "skipped"]);
            for (name, count) in rows(&summary) {
                table.add_row(vec![
                    name.to_owned(),
                    count.created.to_string(),
                    count.present.to_string(),
                    count.skipped.to_string(),
                ]);
            }
            println!("{table}");
            println!(
                "{} metric values logged; {} NaN values left out",
                summary.metric_values, summary.nan_metric_values
            );
            Ok(())
        }
    }
}

fn rows(summary: &ExportSummary) -> [(&'static str, ExportCount); 6] {
    [
        ("experiments", summary.experiments),
        ("runs", summary.runs),
        ("artifacts", summary.artifacts),
        ("models", summary.models),
        ("versions", summary.versions),
        ("aliases", summary.aliases),
    ]
}

fn summary_json(tracking_uri: &str, summary: &ExportSummary) -> Json {
    let mut object = serde_json::Map::new();
    object.insert("tracking_uri".to_owned(), json!(tracking_uri));
    for (name, count) in rows(summary) {
        object.insert(
            name.to_owned(),
            json!({"created": count.created, "present": count.present, "skipped": count.skipped}),
        );
    }
    object.insert("metric_values".to_owned(), json!(summary.metric_values));
    object.insert("nan_metric_values".to_owned(), json!(summary.nan_metric_values));
    Json::Object(object)
}
