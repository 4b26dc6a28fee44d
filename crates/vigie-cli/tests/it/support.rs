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

/// A running `vigie serve` of a project, stopped (killed) when dropped.
pub struct Server {
    /// The process.
    pub child: std::process::Child,
    /// `http://HOST:PORT` (or `https://`), from the first line it prints.
    pub base: String,
    /// The client: 4xx and 5xx replies are answers, not errors.
    pub agent: ureq::Agent,
}

impl Server {
    /// `vigie serve --addr 127.0.0.1:0 EXTRA…` with the project's environment.
    pub fn start(project: &Project, extra: &[&str]) -> Server {
        let args: Vec<&str> =
            ["--addr", "127.0.0.1:0"].iter().copied().chain(extra.iter().copied()).collect();
        Server::launch(project, &args, agent())
    }

    /// `vigie serve ARGS…`, talked to through `agent`.
    pub fn launch(project: &Project, args: &[&str], agent: ureq::Agent) -> Server {
        use std::io::{BufRead, BufReader};
        use std::process::{Command, Stdio};
        let mut child = Command::new(env!("CARGO_BIN_EXE_vigie"))
            .arg("--project")
            .arg(project.dir.path())
            .arg("serve")
            .args(args)
            .env_remove("VIGIE_REGISTRY_URL")
            .env_remove("VIGIE_ARTIFACTS_URL")
            .envs(project.env.iter().map(|(name, value)| (name, value)))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start vigie serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("the address line");
        let base = line.trim().strip_prefix("listening on ").expect("listening on …").to_owned();
        Server { child, base, agent }
    }

    /// The host:port it listens on.
    pub fn host(&self) -> &str {
        self.base.split_once("://").map_or(self.base.as_str(), |(_, host)| host)
    }

    /// GET `path`: the status and the body (JSON, else the text as a JSON string).
    pub fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let mut response = self.agent.get(format!("{}{path}", self.base)).call().expect("get");
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_string().expect("body");
        (status, serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)))
    }

    /// POST the JSON `body` to `path`: the status and the body.
    pub fn post(&self, path: &str, body: &str) -> (u16, serde_json::Value) {
        let mut response = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .send(body)
            .expect("post");
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().expect("body");
        (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client that returns 4xx and 5xx replies instead of failing on them.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

/// Polls `probe` until it gives a value, failing after `limit` (a slow
/// machine's bound, not a timing test).
pub fn eventually<T>(
    what: &str,
    limit: std::time::Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> T {
    let started = std::time::Instant::now();
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(started.elapsed() < limit, "{what}: not after {limit:?}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
