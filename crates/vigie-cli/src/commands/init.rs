//! `vigie init [DIR]`: write the example project (see `crate::example`).

use std::path::{Path, PathBuf};

use serde_json::json;

use super::{Project, UsageError};
use crate::cli::{Format, InitArgs};
use crate::example;
use crate::output;
use crate::output::outln;

pub fn run(project: &Project, args: InitArgs) -> anyhow::Result<()> {
    let dir = args.dir.clone().unwrap_or_else(|| project.dir.clone());
    let exists = |path: &[&str]| path.iter().fold(dir.clone(), |p, part| p.join(part)).exists();
    let taken = exists(&["vigie.toml"])
        || exists(&["data", "transactions.csv"])
        || exists(&["data", "revenue.csv"]);
    if !args.force && taken {
        return Err(UsageError(format!(
            "{} already has a vigie.toml, data/transactions.csv or data/revenue.csv; use --force \
             to overwrite",
            dir.display()
        ))
        .into());
    }
    if args.rows == 0 {
        return Err(UsageError("--rows must be at least 1".into()).into());
    }
    let written = write_example(&dir, args.rows, args.seed)?;
    let (config, data, rows, frauds) =
        (&written.config, &written.data, written.rows, written.frauds);
    match args.format {
        Format::Json => output::json(&json!({
            "project": dir.display().to_string(),
            "config": config.display().to_string(),
            "data": data.display().to_string(),
            "rows": rows,
            "fraud_rows": frauds,
            "revenue": {
                "data": written.revenue.display().to_string(),
                "rows": written.revenue_rows,
                "series": written.revenue_series,
            },
        })),
        Format::Text => {
            outln!(
                "Wrote {}, {} ({rows} transactions, {frauds} fraudulent) and {} ({} days of \
                 revenue of {} store × product line series).",
                config.display(),
                data.display(),
                written.revenue.display(),
                example::revenue::DAYS,
                written.revenue_series
            )?;
            outln!("Next, in {}:", dir.display())?;
            outln!("  vigie ingest && vigie materialize && vigie train fraud")?;
            outln!("  vigie train revenue && vigie forecast --model revenue --horizon 28")?;
            Ok(())
        }
    }
}

/// What [`write_example`] wrote.
pub struct Written {
    /// The project file.
    pub config: PathBuf,
    /// The generated transactions.
    pub data: PathBuf,
    /// Transactions written.
    pub rows: usize,
    /// Of which fraudulent.
    pub frauds: usize,
    /// The generated revenue series.
    pub revenue: PathBuf,
    /// Their rows.
    pub revenue_rows: usize,
    /// How many series.
    pub revenue_series: usize,
}

/// Writes the example project in `dir`: its vigie.toml, `rows` seeded transactions
/// ending today and seeded revenue series ending yesterday (overwriting all three).
pub fn write_example(dir: &Path, rows: usize, seed: u64) -> anyhow::Result<Written> {
    let config = dir.join("vigie.toml");
    let data = dir.join("data").join("transactions.csv");
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |e: std::io::Error| anyhow::anyhow!("cannot write {path}: {e}")
    };
    std::fs::create_dir_all(dir.join("data")).map_err(io(dir))?;
    std::fs::write(&config, example::PROJECT_FILE).map_err(io(&config))?;
    let today = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| (d.as_secs() / 86_400) as i64);
    let csv = example::transactions(rows, seed, today);
    let rows = csv.lines().count().saturating_sub(1);
    let frauds = csv.lines().skip(1).filter(|l| l.ends_with(",1")).count();
    std::fs::write(&data, csv).map_err(io(&data))?;
    let revenue = dir.join("data").join("revenue.csv");
    let csv = example::revenue(seed, today);
    let revenue_rows = csv.lines().count().saturating_sub(1);
    std::fs::write(&revenue, csv).map_err(io(&revenue))?;
    let revenue_series = example::revenue::STORES * example::revenue::LINES.len();
    Ok(Written { config, data, rows, frauds, revenue, revenue_rows, revenue_series })
}
