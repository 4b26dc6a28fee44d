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
use crate::output::outln;

pub fn run(project: &Project, command: MlflowCommand) -> anyhow::Result<()> {
    match command {
        MlflowCommand::Export { tracking_uri, format } => {
            let tracking_uri = match tracking_uri {
                Some(uri) => uri,
                None => project.config()?.mlflow.tracking_uri.ok_or_else(|| {
                    UsageError(
                        "no MLflow server: give --tracking-uri, set MLFLOW_TRACKING_URI or \
                         [mlflow] tracking_uri in vigie.toml"
                            .into(),
                    )
                })?,
            };
            export(project, &tracking_uri, format)
        }
    }
}

fn check_uri(tracking_uri: &str) -> anyhow::Result<()> {
    if !(tracking_uri.starts_with("http://") || tracking_uri.starts_with("https://")) {
        return Err(UsageError(format!(
            "MLflow tracking URI {tracking_uri:?}: expected the address of an MLflow tracking \
             server, http://HOST:PORT or https://… (file stores and databases are not supported)"
        ))
        .into());
    }
    Ok(())
}

/// After a change to the registry: when vigie.toml asks for `[mlflow] mirror = true`, export
/// everything (idempotently). A failure is a warning, not an error: the change is made, and
/// the next export or mirror catches up.
pub fn mirror(project: &Project) {
    let Ok(config) = project.config() else { return };
    if !config.mlflow.mirror {
        return;
    }
    let uri = config
        .mlflow
        .tracking_uri
        .or_else(|| std::env::var("MLFLOW_TRACKING_URI").ok().filter(|u| !u.is_empty()));
    let Some(uri) = uri else {
        eprintln!(
            "warning: [mlflow] mirror = true but no tracking_uri (nor MLFLOW_TRACKING_URI); nothing mirrored"
        );
        return;
    };
    let outcome = check_uri(&uri).and_then(|()| {
        let registry = project.registry()?;
        let client = MlflowClient::new(&uri);
        Ok(mlflow_export::export(&registry, &client, |_| {})?)
    });
    match outcome {
        Ok(summary) => eprintln!(
            "mirrored to MLflow at {uri}: {} runs, {} versions, {} aliases created",
            summary.runs.created, summary.versions.created, summary.aliases.created
        ),
        Err(error) => eprintln!(
            "warning: mirroring to MLflow at {uri} failed: {error:#}; run `vigie mlflow export` once it is back"
        ),
    }
}

fn export(project: &Project, tracking_uri: &str, format: Format) -> anyhow::Result<()> {
    check_uri(tracking_uri)?;
    let registry = project.registry()?;
    let client = MlflowClient::new(tracking_uri);
    let summary = mlflow_export::export(&registry, &client, |line| eprintln!("{line}"))
        .with_context(|| format!("cannot export to MLflow at {tracking_uri}"))?;
    match format {
        Format::Json => output::json(&summary_json(tracking_uri, &summary)),
        Format::Text => {
            outln!("Exported to MLflow at {tracking_uri}")?;
            let mut table = output::table(&["", "created", "already there", "skipped"]);
            for (name, count) in rows(&summary) {
                table.add_row(vec![
                    name.to_owned(),
                    count.created.to_string(),
                    count.present.to_string(),
                    count.skipped.to_string(),
                ]);
            }
            outln!("{table}")?;
            outln!(
                "{} metric values logged; {} NaN values left out",
                summary.metric_values,
                summary.nan_metric_values
            )?;
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
