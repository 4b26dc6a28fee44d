//! Running the binary in a scratch project.

use std::path::{Path, PathBuf};
use std::process::Output;

/// A scratch project folder, and the variables its commands run with.
pub struct Project {
    pub dir: tempfile::TempDir,
    pub env: Vec<(String, String)>,
}

/// The workspace's test data folder.
pub fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data").join(name)
}

impl Project {
    pub fn new() -> Self {
        Project { dir: tempfile::tempdir().expect("temp dir"), env: Vec::new() }
    }

    /// The same project with `name=value` set for every command.
    pub fn with_env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `vigie --project DIR ARGS…`.
    pub fn run(&self, args: &[&str]) -> Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_vigie"))
            .arg("--project")
            .arg(self.dir.path())
            .args(args)
            // The registry is the project's own unless a test says otherwise.
            .env_remove("VIGIE_REGISTRY_URL")
            .env_remove("VIGIE_ARTIFACTS_URL")
            .envs(self.env.iter().map(|(name, value)| (name, value)))
            .output()
            .expect("run vigie")
    }

    /// Runs and expects success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "vigie {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            String::from_utf8_lossy(&output.stdout)
        );
        String::from_utf8(output.stdout).expect("utf-8 stdout")
    }

    /// Runs and expects failure with exit code `code`; returns stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let output = self.run(args);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(code), "vigie {args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "vigie {args:?} panicked: {stderr}");
        stderr
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.ok(args)).expect("json on stdout")
    }
}

/// Reads a CSV written by `vigie predict` into a header and rows of cells.
pub fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).expect("read csv");
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default().split(',').map(str::to_owned).collect();
    let rows = lines.map(|l| l.split(',').map(str::to_owned).collect()).collect();
    (header, rows)
}

/// The address of a real server from `variable`, or `None` after saying so
/// loudly: outside CI a test without its server skips; in CI (`CI=true`) it
/// fails, since CI starts every server (`scripts/services.sh`). `start` is
/// the command that runs the test with its server.
pub fn service(variable: &str, service: &str, start: &str) -> Option<String> {
    use std::io::Write;
    if let Some(value) = std::env::var(variable).ok().filter(|value| !value.is_empty()) {
        return Some(value);
    }
    assert_ne!(
        std::env::var("CI").as_deref(),
        Ok("true"),
        "CI=true but {variable} is unset: CI must start the {service} (scripts/services.sh)"
    );
    // Straight to the stderr handle, not eprintln!, which the test harness captures.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: {variable} is not set, so this test has no {service} (run it with: {start})"
    );
    None
}
