//! Printing results: tables for people, JSON for programs.

use comfy_table::{ContentArrangement, Table, presets::UTF8_BORDERS_ONLY};

/// A table with Vigie's look.
pub fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_style(UTF8_BORDERS_ONLY)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.to_vec());
    table
}

/// A metric for people: 4 decimals, "-" when undefined.
pub fn metric(value: f64) -> String {
    if value.is_nan() { "-".to_owned() } else { format!("{value:.4}") }
}

/// `println!` that returns the error of a failed write (a closed pipe, as in
/// `vigie models list | head`) instead of panicking; `main` treats a broken
/// pipe as success.
macro_rules! outln {
    () => {{
        use std::io::Write as _;
        writeln!(std::io::stdout())
    }};
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*)
    }};
}
pub(crate) use outln;

/// Phrases joined by `; ` into one sentence that starts with a capital letter.
pub fn sentence(phrases: &[String]) -> String {
    let joined = phrases.join("; ");
    let mut chars = joined.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => joined,
    }
}

/// The line of a training's text summary that names the version it
/// registered and the aliases on it. A version that no alias points at (a
/// model's later versions are promoted by hand) says how to promote it, as
/// `vigie predict`, `vigie forecast` and `vigie serve` keep using
/// `@champion`.
pub fn registered(version: &vigie_registry::VersionInfo, run_id: &str) -> String {
    let (name, number) = (&version.model, version.version);
    if version.aliases.is_empty() {
        return format!(
            "Registered {name} v{number} (run {run_id}); @champion is unchanged: \
             `vigie models promote {name} {number}` moves it here"
        );
    }
    let aliases: String = version.aliases.iter().map(|a| format!(" @{a}")).collect();
    format!("Registered {name} v{number}{aliases} (run {run_id})")
}

/// Prints a JSON value on stdout.
pub fn json(value: &serde_json::Value) -> anyhow::Result<()> {
    use std::io::Write;
    // Buffered: stdout flushes at every line, and a training's per-series
    // report is thousands of lines.
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    serde_json::to_writer_pretty(&mut stdout, value)?;
    writeln!(stdout)?;
    stdout.flush()?;
    Ok(())
}
