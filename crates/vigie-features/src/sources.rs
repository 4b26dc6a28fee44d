//! The database sources of [`FeatureStore::ingest`](crate::FeatureStore::ingest): PostgreSQL
//! and MongoDB rows newer than the source's watermark, read through `vigie-connectors` (the
//! only crate that links their clients) as Arrow record batches. What happens to the rows next
//! (numbering, storing, the watermark) is the same for every kind and lives in the engine.
//!
//! `${NAME}` in a source's `url` is replaced by the environment variable `NAME`, so passwords
//! stay out of `vigie.toml`. Files are read by the engine (they need its SQL runtime); Kafka
//! and HTTP sources are events for the stream processor, not batch ingest.

use arrow::array::RecordBatch;
use vigie_connectors::mongodb::MongoSource;
use vigie_connectors::postgres::{PgRelation, redact_url};
use vigie_core::config::{Source, SourceKind, expand_env};

use crate::error::{FeatureError, Result};

fn text(field: &Option<toml::Spanned<String>>) -> Option<&str> {
    field.as_ref().map(|value| value.get_ref().as_str())
}

/// Reads the rows of database source `name` newer than `watermark`; returns them, how many
/// rows have no time (never read), and how to name where they came from in messages
/// (`source "orders" (postgresql postgres://vigie@db/shop)`).
pub(crate) fn read(
    name: &str,
    source: &Source,
    watermark: Option<i64>,
) -> Result<(Vec<RecordBatch>, u64, String)> {
    let kind = *source.kind.get_ref();
    let url = text(&source.url).ok_or_else(|| {
        FeatureError::InvalidData(format!("source {name:?}: a {kind:?} source needs `url`"))
    })?;
    let url = expand_env(url)
        .map_err(|e| FeatureError::InvalidData(format!("source {name:?}: url: {e}")))?;
    let failed = |error| FeatureError::Source { name: name.to_owned(), error };
    let timestamp = source.timestamp.get_ref();
    let rows = match kind {
        SourceKind::Postgres => {
            let relation = match (text(&source.table), text(&source.query)) {
                (Some(table), None) => PgRelation::Table(table),
                (None, Some(query)) => PgRelation::Query(query),
                _ => {
                    return Err(FeatureError::InvalidData(format!(
                        "source {name:?}: a postgres source needs `table` or `query`, not both"
                    )));
                }
            };
            vigie_connectors::postgres::read_since(&url, relation, timestamp, watermark)
                .map_err(failed)?
        }
        SourceKind::Mongodb => {
            fn need<'s>(
                name: &str,
                field: &'s Option<toml::Spanned<String>>,
                key: &str,
            ) -> Result<&'s str> {
                text(field).ok_or_else(|| {
                    FeatureError::InvalidData(format!(
                        "source {name:?}: a mongodb source needs `{key}`"
                    ))
                })
            }
            let mongo = MongoSource {
                url: &url,
                database: need(name, &source.database, "database")?,
                collection: need(name, &source.collection, "collection")?,
                filter: text(&source.filter),
                fields: &source.fields,
                timestamp,
            };
            vigie_connectors::mongodb::read_since(&mongo, watermark).map_err(failed)?
        }
        other => {
            return Err(FeatureError::Unsupported(format!(
                "source {name:?}: {other:?} sources are not read by `vigie ingest`"
            )));
        }
    };
    let system = if kind == SourceKind::Postgres { "postgresql" } else { "mongodb" };
    Ok((rows.batches, rows.untimed, format!("source {name:?} ({system} {})", redact_url(&url))))
}

#[cfg(test)]
mod tests;
