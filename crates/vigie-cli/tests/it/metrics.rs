//! `/metrics` of `vigie serve`: the Prometheus text counts requests by
//! route and status, has latency and score histograms per model and
//! version, counts missing inputs and audit commits; and a real Prometheus
//! (`VIGIE_TEST_PROMETHEUS_BIN`, from scripts/services.sh) scrapes it and
//! answers a PromQL `rate` over it. Without the binary that test skips
//! loudly, except in CI (`CI=true`), where it fails.

use std::io::Write as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

use crate::audit::{post, records, train};
use crate::support::Project;
use crate::support::{Server, agent};

/// The value of the sample of `name` whose labels include every one of `labels`.
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().filter(|line| !line.starts_with('#')).find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
        let all = labels.iter().all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
        (metric == name && all).then(|| value.parse().ok()).flatten()
    })
}

fn metrics_text(base: &str) -> String {
    let mut response = agent().get(format!("{base}/metrics")).call().expect("GET /metrics");
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok());
    assert_eq!(content_type, Some("text/plain; version=0.0.4"));
    response.body_mut().read_to_string().expect("the metrics")
}

#[test]
fn metrics_count_time_and_score_every_prediction() {
    let project = Project::new();
    train(&project);
    let server = Server::start(&project, &[]);
    let before = metrics_text(&server.base);
    assert_eq!(sample(&before, "vigie_audit_queue_depth", &[]), Some(0.0), "{before}");

    let agent = agent();
    let predict = format!("{}/v1/models/credit/predict", server.base);
    for seed in 0..3 {
        let (status, reply) =
            post(&agent, &predict, &json!({"records": records(seed, 2)})).expect("predict");
        assert_eq!(status, 200, "{reply}");
    }
    let missing = json!({"records": [{"student": "No", "balance": null, "income": 30000.0}]});
    let (status, reply) = post(&agent, &predict, &missing).expect("predict");
    assert_eq!(status, 200, "{reply}");
    let unknown = format!("{}/v1/models/nope/predict", server.base);
    assert_eq!(post(&agent, &unknown, &json!({"records": []})).expect("post").0, 404);

    let text = metrics_text(&server.base);
    let v1 = [("route", "/v1/models/{name}/predict"), ("model", "credit"), ("version", "1")];
    let ok = [&v1[..], &[("variant", "champion"), ("status", "200")]].concat();
    assert_eq!(sample(&text, "vigie_requests_total", &ok), Some(4.0), "{text}");
    let refused = [("route", "/v1/models/{name}/predict"), ("model", ""), ("status", "404")];
    assert_eq!(sample(&text, "vigie_requests_total", &refused), Some(1.0), "{text}");
    let served = [("model", "credit"), ("version", "1"), ("variant", "champion")];
    assert_eq!(sample(&text, "vigie_prediction_duration_seconds_count", &served), Some(4.0));
    let every_bucket = [&served[..], &[("le", "+Inf")]].concat();
    assert_eq!(sample(&text, "vigie_prediction_duration_seconds_bucket", &every_bucket), Some(4.0));
    let fast_bucket = [&served[..], &[("le", "0.0005")]].concat();
    assert!(sample(&text, "vigie_prediction_duration_seconds_bucket", &fast_bucket).is_some());
    let scored = [("model", "credit"), ("version", "1")];
    assert_eq!(sample(&text, "vigie_prediction_score_count", &scored), Some(7.0), "7 rows");
    let below_one = [&scored[..], &[("le", "0.95")]].concat();
    assert!(sample(&text, "vigie_prediction_score_bucket", &below_one).is_some());
    let balance = [("model", "credit"), ("feature", "balance")];
    assert_eq!(sample(&text, "vigie_missing_features_total", &balance), Some(1.0), "{text}");
    let income = [("model", "credit"), ("feature", "income")];
    assert_eq!(sample(&text, "vigie_missing_features_total", &income), None, "none missing");
    assert_eq!(sample(&text, "vigie_audit_batch_records_sum", &[]), Some(4.0), "{text}");
    assert!(sample(&text, "vigie_audit_commit_duration_seconds_count", &[]) >= Some(1.0));
    assert_eq!(sample(&text, "vigie_audit_queue_depth", &[]), Some(0.0));
    // Records of a model not trained from the feature store read no online store.
    let online = [("store", "embedded")];
    assert_eq!(sample(&text, "vigie_online_store_duration_seconds_count", &online), Some(0.0));
}

/// The prometheus binary from `VIGIE_TEST_PROMETHEUS_BIN`, or none (after saying so) outside CI.
fn prometheus_bin() -> Option<String> {
    let variable = "VIGIE_TEST_PROMETHEUS_BIN";
    if let Some(value) = std::env::var(variable).ok().filter(|value| !value.is_empty()) {
        return Some(value);
    }
    assert_ne!(
        std::env::var("CI").as_deref(),
        Ok("true"),
        "CI=true but {variable} is unset: CI must provide Prometheus (scripts/services.sh)"
    );
    // Straight to the stderr handle, not eprintln!, which the test harness captures.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: {variable} is not set, so this test has no Prometheus \
         (run it with scripts/services.sh run prometheus -- cargo test -p vigie-cli --test it metrics)"
    );
    None
}

/// A Prometheus server, stopped by its PID when dropped.
struct Prometheus {
    child: Child,
    base: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

/// Starts Prometheus scraping `target` (host:port) every second.
fn start_prometheus(bin: &str, project: &Project, target: &str) -> Prometheus {
    let config = project.path("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
             scrape_configs:\n  - job_name: vigie\n    static_configs: [{{targets: ['{target}']}}]\n"
        ),
    )
    .expect("write prometheus.yml");
    let address = format!("127.0.0.1:{}", free_port());
    let log = std::fs::File::create(project.path("prometheus.log")).expect("the log");
    let child = Command::new(bin)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", project.path("prometheus-data").display()))
        .arg(format!("--web.listen-address={address}"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start prometheus");
    Prometheus { child, base: format!("http://{address}") }
}

/// The value of a PromQL query's first result, if any yet.
fn query(agent: &ureq::Agent, prometheus: &Prometheus, promql: &str) -> Option<f64> {
    let mut response = agent
        .get(format!("{}/api/v1/query", prometheus.base))
        .query("query", promql)
        .call()
        .ok()?;
    let reply: Json = serde_json::from_str(&response.body_mut().read_to_string().ok()?).ok()?;
    reply["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

#[test]
fn a_real_prometheus_scrapes_the_request_rate() {
    let Some(bin) = prometheus_bin() else { return };
    let project = Project::new();
    train(&project);
    let server = Server::start(&project, &[]);
    let prometheus = start_prometheus(&bin, &project, server.host());
    let agent = agent();
    let started = Instant::now();
    let ready = format!("{}/-/ready", prometheus.base);
    while agent.get(&ready).call().ok().map(|r| r.status().as_u16()) != Some(200) {
        let log = std::fs::read_to_string(project.path("prometheus.log")).unwrap_or_default();
        assert!(started.elapsed() < Duration::from_secs(60), "Prometheus not ready: {log}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let predict = format!("{}/v1/models/credit/predict", server.base);
    let rate =
        "sum(rate(vigie_requests_total{job=\"vigie\",model=\"credit\",status=\"200\"}[10s]))";
    let started = Instant::now();
    let mut sent = 0;
    let measured = loop {
        let (status, reply) =
            post(&agent, &predict, &json!({"records": records(sent, 1)})).expect("predict");
        assert_eq!(status, 200, "{reply}");
        sent += 1;
        if let Some(value) = query(&agent, &prometheus, rate).filter(|v| *v > 0.0) {
            break value;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "no positive rate after 90 s and {sent} predictions"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = writeln!(std::io::stderr(), "PromQL {rate} = {measured} after {sent} predictions");
    assert_eq!(query(&agent, &prometheus, "up{job=\"vigie\"}"), Some(1.0));
    let scraped = "max(vigie_prediction_duration_seconds_count{model=\"credit\",version=\"1\"})";
    assert!(query(&agent, &prometheus, scraped).is_some_and(|n| n >= 1.0));
}
