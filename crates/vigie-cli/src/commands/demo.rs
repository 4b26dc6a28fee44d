//! `vigie demo`: the whole loop in one process, on the embedded defaults, so a
//! newcomer sees what Vigie does with one command and no server to install.
//!
//! In the project folder: write the example project (as `vigie init`) and keep
//! its last week of transactions aside, ingest, materialize, train the `fraud`
//! model from the feature store with cross-validation (version 1, the
//! champion) and a second version (the canary), then let the kept week
//! "arrive" (ingested and materialized incrementally), serve the models
//! in-process on a loopback port the OS picks (the same setup as `vigie
//! serve`), route 20% of customers to the canary through the admin API, score
//! every customer by entity key over HTTP, send the new week's transactions
//! (their features as of their time, never seen in training) as records, feed back the
//! generated labels for half of the predictions, explain one fraudulent
//! transaction, stop the server and check the audit log. Everything it writes
//! stays in the folder, so `vigie models show fraud` or `vigie audit list`
//! run there afterwards see it. Glue only: each step is the library or
//! command code the other commands run.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser as _;
use serde_json::{Value as Json, json};

use super::{Project, UsageError};
use crate::cli::{Cli, Command, DemoArgs, Format, TrainArgs};
use crate::output::outln;
use crate::progress::Spinner;

/// Fewest transactions the demo generates: fewer hold too few frauds to cross-validate.
const MIN_ROWS: usize = 2_000;
/// The model the example project declares.
const MODEL: &str = "fraud";
/// The canary's share of customers, in percent.
const CANARY_WEIGHT: f64 = 20.0;
/// Seed of the generated transactions (as `vigie init`'s default).
const DATA_SEED: u64 = 7;
/// Every how many predictions one asks for an explanation.
const EXPLAIN_EVERY: usize = 10;
/// The last days of generated transactions, kept from training and sent as new traffic.
const NEW_DAYS: u64 = 7;
/// New fraudulent transactions scored as records, at most.
const REPLAYED_FRAUDS: usize = 50;
/// New legitimate transactions scored as records, at most.
const REPLAYED_LEGITIMATE: usize = 150;
/// Every how many predictions one gets its ground truth back.
const FEEDBACK_EVERY: usize = 2;
/// How long the in-process server may take to answer its readiness check.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `vigie demo`.
pub fn run(project: &Project, args: DemoArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    if args.rows < MIN_ROWS {
        return Err(UsageError(format!(
            "--rows {}: the demo needs at least {MIN_ROWS} transactions (enough frauds to learn)",
            args.rows
        ))
        .into());
    }
    prepare_folder(&project.dir, args.force)?;
    let mut steps = Steps::default();
    let written = steps.run("writing the example project (vigie init)", || {
        super::init::write_example(&project.dir, args.rows, DATA_SEED)
    })?;
    let held_out = hold_out_last_days(&written.data, NEW_DAYS)?;
    let ingested = steps.run(
        "ingesting the transactions (and the sales) into the offline store (vigie ingest)",
        || super::features::ingest_sources(project, None),
    )?;
    let materialized = steps
        .run("computing feature views, updating the online store (vigie materialize)", || {
            super::features::materialize_views(project, None)
        })?;
    let (champion, canary) = train_versions(project, &mut steps)?;
    let arrived = steps.run(
        "new transactions since training arrive: ingested, features updated (vigie ingest, \
         vigie materialize)",
        || {
            append(&written.data, &held_out.rows)?;
            super::features::ingest_sources(project, None)?;
            super::features::materialize_views(project, None)
        },
    )?;
    let plan = Plan {
        champion: champion.version.version,
        canary: canary.version.version,
        calls: calls(&latest_labels(&written.data)?, &new_transactions(project, held_out.count)?),
    };
    let served = serve_and_send(project, &mut steps, &plan)?;
    let audit_dir = absolute(&super::audit::audit_dir(project));
    let verified = steps
        .run("verifying the audit log's hash chain (vigie audit verify)", || {
            Ok(vigie_server::audit::verify(&audit_dir)?)
        })?;
    let facts = json!({
        "project": absolute(&project.dir).display().to_string(),
        "data": {"path": absolute(&written.data).display().to_string(), "rows": written.rows, "fraud_rows": written.frauds},
        "ingested": ingested,
        "materialized": materialized,
        "new_transactions": {
            "since": held_out.since,
            "rows": held_out.count,
            "frauds": held_out.frauds,
            "materialized": arrived,
        },
        "models": [trained_json(&champion, "champion"), trained_json(&canary, "canary")],
        "server": served,
        "audit": {
            "dir": audit_dir.display().to_string(),
            "ok": true,
            "records": verified.records,
            "segments": verified.segments,
            "head": verified.head,
        },
        "steps": steps.timings,
        "seconds": started.elapsed().as_secs_f64(),
        "next": NEXT,
    });
    match args.format {
        Format::Json => crate::output::json(&facts),
        Format::Text => {
            print_story(&facts)?;
            Ok(())
        }
    }
}

/// Trains fraud v1 as `vigie train fraud` does (the champion: the first version) and a
/// gradient-boosted v2 with another seed (the canary), both with 5-fold cross-validation.
fn train_versions(
    project: &Project,
    steps: &mut Steps,
) -> anyhow::Result<(super::train::Fitted, super::train::Fitted)> {
    let champion = steps
        .run("training fraud v1 from the feature store, 5-fold CV (vigie train fraud)", || {
            super::train::fit(project, &train_args(&["fraud"])?)
        })?;
    let canary =
        steps.run("training v2 for the canary: gradient-boosted trees, 5-fold CV", || {
            super::train::fit(
                project,
                &train_args(&["fraud", "--algorithm", "gbdt", "--seed", "43"])?,
            )
        })?;
    if !champion.version.aliases.iter().any(|alias| alias == "champion") {
        return Err(anyhow::anyhow!(
            "fraud v{} is not the champion: the registry already held fraud versions",
            champion.version.version
        ));
    }
    Ok((champion, canary))
}

/// What to run afterwards, in the demo's folder.
const NEXT: &[&str] = &[
    "vigie serve                 # serve the models again, on 127.0.0.1:8080",
    "vigie models show fraud     # the champion: data, run, CV metrics, threshold, routing",
    "vigie audit list            # the recorded predictions, newest first",
];

/// Refuses a folder that already holds a Vigie project unless `force`; with `force`, removes
/// its state folder so the demo's versions are 1 and 2 and its logs start empty.
fn prepare_folder(dir: &Path, force: bool) -> anyhow::Result<()> {
    let config = dir.join("vigie.toml");
    let state = dir.join(".vigie");
    if !config.exists() && !state.exists() {
        return Ok(());
    }
    if !force {
        return Err(UsageError(format!(
            "{} already holds a Vigie project (vigie.toml or .vigie); the demo writes a fresh \
             one: run it in an empty folder (--project DIR), or add --force to replace its \
             vigie.toml, data/transactions.csv, data/revenue.csv and .vigie state",
            dir.display()
        ))
        .into());
    }
    if state.exists() {
        std::fs::remove_dir_all(&state)
            .with_context(|| format!("cannot remove {}", state.display()))?;
    }
    Ok(())
}

/// The arguments of `vigie train ARGS…`, with every default the command has.
fn train_args(args: &[&str]) -> anyhow::Result<TrainArgs> {
    let line = ["vigie", "train"].iter().chain(args);
    match Cli::try_parse_from(line)?.command {
        Command::Train(args) => Ok(*args),
        _ => Err(anyhow::anyhow!("not a train command")),
    }
}

fn trained_json(fitted: &super::train::Fitted, role: &str) -> Json {
    let card = &fitted.model.card;
    let cv: BTreeMap<&str, f64> = card.cv.iter().map(|(k, m)| (k.as_str(), m.mean)).collect();
    json!({
        "role": role,
        "model": card.name,
        "version": fitted.version.version,
        "algorithm": card.algorithm,
        "cv_folds": card.cv_folds,
        "cv_mean": cv,
        "rows": card.data.rows,
        "aliases": fitted.version.aliases,
        "run_id": fitted.run_id,
    })
}

/// Each customer's label on their latest transaction: the ground truth of a prediction on
/// their latest online features.
fn latest_labels(data: &Path) -> anyhow::Result<BTreeMap<String, u8>> {
    let csv =
        std::fs::read_to_string(data).with_context(|| format!("cannot read {}", data.display()))?;
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let column = |name: &str| {
        header
            .iter()
            .position(|c| *c == name)
            .ok_or_else(|| anyhow::anyhow!("{}: no {name} column", data.display()))
    };
    let (customer, ts, label) = (column("customer_id")?, column("ts")?, column("is_fraud")?);
    let mut latest: BTreeMap<String, (String, u8)> = BTreeMap::new();
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        let (Some(id), Some(time), Some(flag)) =
            (cells.get(customer), cells.get(ts), cells.get(label))
        else {
            continue;
        };
        let entry = latest.entry((*id).to_owned()).or_insert_with(|| (String::new(), 0));
        if *time >= entry.0.as_str() {
            *entry = ((*time).to_owned(), u8::from(*flag == "1"));
        }
    }
    Ok(latest.into_iter().map(|(id, (_, flag))| (id, flag)).collect())
}

/// What the demo sends to its server.
struct Plan {
    /// The champion's version.
    champion: u32,
    /// The canary's version.
    canary: u32,
    /// The predictions to ask for, by entity key then by record.
    calls: Vec<Call>,
}

/// One prediction request and the ground truth of its one row.
struct Call {
    /// `entity` (by key, online features) or `record` (a past transaction's features).
    kind: &'static str,
    body: Json,
    truth: u8,
}

/// Each customer by entity key (every tenth with explanations), then the past transactions
/// as records.
fn calls(labels: &BTreeMap<String, u8>, past: &[(Json, u8)]) -> Vec<Call> {
    let by_entity = labels.iter().enumerate().map(|(index, (customer, truth))| Call {
        kind: "entity",
        body: json!({"entities": [customer], "explain": index % EXPLAIN_EVERY == 0}),
        truth: *truth,
    });
    let by_record = past.iter().map(|(record, truth)| Call {
        kind: "record",
        body: json!({"records": [record]}),
        truth: *truth,
    });
    by_entity.chain(by_record).collect()
}

/// Starts the server in-process, sends the traffic, reads what the server counted, stops it.
fn serve_and_send(project: &Project, steps: &mut Steps, plan: &Plan) -> anyhow::Result<Json> {
    let access = Arc::new(vigie_server::Access::Open);
    let (shared, parts) = super::serve::open_server(
        project,
        Some(MODEL.to_owned()),
        access,
        vigie_server::Durability::Disk,
    )?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = runtime.spawn(vigie_server::serve_until(listener, shared, parts, None, async {
        let _ = stopped.await;
    }));
    let client = Client::new(&base);
    let result = talk(&client, steps, plan);
    let _ = stop.send(());
    runtime.block_on(server).context("the server task failed")??;
    let mut served = result?;
    served["url"] = json!(base);
    Ok(served)
}

/// Everything the demo asks the running server.
fn talk(client: &Client, steps: &mut Steps, plan: &Plan) -> anyhow::Result<Json> {
    steps
        .run("starting the server in-process on 127.0.0.1 (vigie serve)", || client.wait_ready())?;
    let routing = steps
        .run("routing 20% of customers to v2 (PUT /v1/models/fraud/routing)", || {
            set_canary(client, plan.canary)
        })?;
    let traffic = steps.run(
        "scoring each customer by entity key, then the new transactions as records \
         (POST /v1/models/fraud/predict)",
        || send_traffic(client, &plan.calls),
    )?;
    let feedback = steps.run("feeding back ground truth (POST /v1/feedback)", || {
        send_feedback(client, &traffic.answered)
    })?;
    let fraudulent = plan
        .calls
        .iter()
        .find(|call| call.kind == "record" && call.truth == 1)
        .map(|call| call.body["records"][0].clone())
        .ok_or_else(|| anyhow::anyhow!("the generated data has no fraudulent transaction"))?;
    let explained = steps.run("explaining a fraudulent transaction (explain: true)", || {
        explain_flagged(client, &fraudulent)
    })?;
    let (variants, live) = steps.run("reading per-variant counters and /metrics", || {
        let (_, variants) = client.get(&format!("/v1/models/{MODEL}/variants"))?;
        let (_, metrics) = client.get("/metrics")?;
        Ok((variants, live_metrics(metrics.as_str().unwrap_or_default())))
    })?;
    Ok(json!({
        "champion": plan.champion,
        "canary": {"version": plan.canary, "weight": CANARY_WEIGHT, "routing": routing},
        "requests": traffic.summary,
        "feedback": feedback,
        "variants": variants["variants"],
        "live": live,
        "explained": explained,
    }))
}

fn set_canary(client: &Client, canary: u32) -> anyhow::Result<Json> {
    let body = json!({
        "mode": "canary", "version": canary, "weight": CANARY_WEIGHT,
        "reason": "vigie demo: try the second version on 20% of customers",
    });
    let (status, reply) = client.send("PUT", &format!("/v1/models/{MODEL}/routing"), &body)?;
    if status != 200 {
        return Err(anyhow::anyhow!("setting the canary routing: HTTP {status}: {reply}"));
    }
    Ok(reply["serving"]["description"].clone())
}

/// One answered prediction.
struct Answered {
    kind: &'static str,
    request_id: String,
    decision: String,
    truth: u8,
}

/// What the traffic step measured.
struct Traffic {
    answered: Vec<Answered>,
    summary: Json,
}

/// Sends every call, one row per request (so each customer sticks to one variant); the
/// latency is the client's, request sent to reply read.
fn send_traffic(client: &Client, calls: &[Call]) -> anyhow::Result<Traffic> {
    let mut answered = Vec::new();
    let mut latencies = Vec::new();
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    for call in calls {
        let sent = Instant::now();
        let (status, reply) =
            client.send("POST", &format!("/v1/models/{MODEL}/predict"), &call.body)?;
        latencies.push(sent.elapsed());
        *statuses.entry(status).or_default() += 1;
        if status == 200 {
            answered.push(answered_of(call, &reply));
        }
    }
    latencies.sort();
    let count = |kind: &str| calls.iter().filter(|c| c.kind == kind).count();
    let flagged =
        |kind: &str| answered.iter().filter(|a| a.kind == kind && a.decision == "1").count();
    let summary = json!({
        "sent": calls.len(),
        "ok": statuses.get(&200).copied().unwrap_or(0),
        "statuses": statuses.iter().map(|(s, n)| (s.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
        "by_entity": count("entity"),
        "by_record": count("record"),
        "explained": calls.iter().filter(|c| c.body["explain"] == json!(true)).count(),
        "flagged": {"entity": flagged("entity"), "record": flagged("record")},
        "fraudulent": {"entity": calls.iter().filter(|c| c.kind == "entity" && c.truth == 1).count(),
                       "record": calls.iter().filter(|c| c.kind == "record" && c.truth == 1).count()},
        "latency_ms": {"p50": quantile_ms(&latencies, 0.5), "p99": quantile_ms(&latencies, 0.99)},
    });
    Ok(Traffic { answered, summary })
}

fn answered_of(call: &Call, reply: &Json) -> Answered {
    let decision = &reply["predictions"][0]["label"];
    Answered {
        kind: call.kind,
        request_id: reply["request_id"].as_str().unwrap_or_default().to_owned(),
        decision: decision.as_str().map_or_else(|| decision.to_string(), str::to_owned),
        truth: call.truth,
    }
}

/// The q-quantile of sorted durations, in milliseconds (nearest rank).
fn quantile_ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1000.0
}

/// The ground truth of every second prediction, from the generated labels.
fn send_feedback(client: &Client, answered: &[Answered]) -> anyhow::Result<Json> {
    let (mut accepted, mut correct, mut sent) = (0, 0, 0);
    for prediction in answered.iter().step_by(FEEDBACK_EVERY) {
        let body = json!({"request_id": prediction.request_id, "label": prediction.truth});
        let (status, reply) = client.send("POST", "/v1/feedback", &body)?;
        sent += 1;
        if status == 200 {
            accepted += 1;
            correct += usize::from(reply["correct"] == json!(true));
        }
    }
    Ok(json!({"sent": sent, "accepted": accepted, "correct": correct}))
}

/// The latest fraudulent transaction of the generated data, with its features as they were at
/// its time (the training table's row: the same point-in-time join training used), sent as a
/// record with explanations: the score, the decision and its top contributions by size.
fn explain_flagged(client: &Client, fraudulent: &Json) -> anyhow::Result<Json> {
    let body = json!({"records": [fraudulent], "explain": true});
    let (status, reply) = client.send("POST", &format!("/v1/models/{MODEL}/predict"), &body)?;
    if status != 200 {
        return Err(anyhow::anyhow!("explaining a fraudulent transaction: HTTP {status}: {reply}"));
    }
    let row = &reply["predictions"][0];
    let mut contributions: Vec<(String, f64)> = row["contributions"]
        .as_object()
        .map(|map| map.iter().filter_map(|(k, v)| Some((k.clone(), v.as_f64()?))).collect())
        .unwrap_or_default();
    contributions.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
    contributions.truncate(5);
    Ok(json!({
        "inputs": fraudulent,
        "truth": 1,
        "request_id": reply["request_id"],
        "version": reply["version"],
        "variant": reply["variant"],
        "score": row["score"],
        "decision": row["label"],
        "top_contributions": contributions.iter().map(|(k, v)| json!({"feature": k, "contribution": v})).collect::<Vec<_>>(),
    }))
}

/// The transactions that arrived after training, newest first, as records with their labels
/// (each with its features as they were at its time, by the join training uses): the last
/// `arrived` rows of the fraud model's table, [`REPLAYED_FRAUDS`] and [`REPLAYED_LEGITIMATE`]
/// at most. No model saw them: their scores are out of sample.
fn new_transactions(project: &Project, arrived: usize) -> anyhow::Result<Vec<(Json, u8)>> {
    let store = super::features::store(project)?;
    let training = store.training_table(MODEL)?;
    let frame = vigie_connectors::files::frame_from_batches(
        Path::new("vigie.toml"),
        &training.table.schema(),
        std::slice::from_ref(&training.table),
    )?;
    let labels = frame.column(&training.label)?;
    let (mut frauds, mut legitimate) = (Vec::new(), Vec::new());
    let first_new = frame.n_rows().saturating_sub(arrived);
    for row in (first_new..frame.n_rows()).rev() {
        let (kept, limit) = if is_positive(&labels.data.value(row)) {
            (&mut frauds, REPLAYED_FRAUDS)
        } else {
            (&mut legitimate, REPLAYED_LEGITIMATE)
        };
        if kept.len() < limit {
            kept.push(row);
        }
    }
    let record = |row: usize| -> Json {
        frame
            .columns()
            .iter()
            .filter(|column| column.name != training.label)
            .map(|column| (column.name.clone(), value_json(column.data.value(row))))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let mut rows: Vec<(usize, u8)> = frauds.into_iter().map(|row| (row, 1)).collect();
    rows.extend(legitimate.into_iter().map(|row| (row, 0)));
    rows.sort_by_key(|&(row, _)| std::cmp::Reverse(row));
    Ok(rows.into_iter().map(|(row, truth)| (record(row), truth)).collect())
}

/// The transactions kept from training.
struct HeldOut {
    /// Their rows of the CSV (no header).
    rows: String,
    /// How many.
    count: usize,
    /// How many are fraudulent.
    frauds: usize,
    /// The first time kept, `YYYY-MM-DDTHH:MM:SS`.
    since: String,
}

/// Cuts the transactions of the last `days` days out of `data` (sorted by time, `ts` its
/// third column), so training does not see them; returns them.
fn hold_out_last_days(data: &Path, days: u64) -> anyhow::Result<HeldOut> {
    let csv =
        std::fs::read_to_string(data).with_context(|| format!("cannot read {}", data.display()))?;
    let time = |line: &str| line.split(',').nth(2).unwrap_or_default().to_owned();
    let last = csv.lines().last().map(time).unwrap_or_default();
    let end = humantime::parse_rfc3339_weak(&last)
        .with_context(|| format!("{}: the last row's time {last:?}", data.display()))?;
    let cutoff = humantime::format_rfc3339_seconds(end - Duration::from_secs(days * 86_400))
        .to_string()
        .trim_end_matches('Z')
        .to_owned();
    let mut kept = String::new();
    let mut held = String::new();
    let (mut count, mut frauds) = (0, 0);
    for (index, line) in csv.lines().enumerate() {
        if index > 0 && time(line) >= cutoff {
            held.push_str(line);
            held.push('\n');
            count += 1;
            frauds += usize::from(line.ends_with(",1"));
        } else {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    std::fs::write(data, kept).with_context(|| format!("cannot write {}", data.display()))?;
    Ok(HeldOut { rows: held, count, frauds, since: cutoff })
}

/// Appends `rows` to the CSV file `data`.
fn append(data: &Path, rows: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    std::fs::OpenOptions::new()
        .append(true)
        .open(data)
        .and_then(|mut file| file.write_all(rows.as_bytes()))
        .with_context(|| format!("cannot append to {}", data.display()))
}

/// Whether a label is the example's positive class (1, "1" or true).
fn is_positive(label: &vigie_core::Value) -> bool {
    match label {
        vigie_core::Value::Text(text) => text == "1",
        other => other.as_number() == Some(1.0),
    }
}

fn value_json(value: vigie_core::Value) -> Json {
    match value {
        vigie_core::Value::Missing => Json::Null,
        vigie_core::Value::Bool(flag) => json!(flag),
        vigie_core::Value::Number(number) => json!(number),
        vigie_core::Value::Text(text) => json!(text),
    }
}

/// The live accuracy and feedback counters of /metrics, one entry per labelled sample.
fn live_metrics(text: &str) -> Json {
    let names = ["vigie_live_accuracy", "vigie_feedback_total", "vigie_feedback_correct_total"];
    let mut found: BTreeMap<&str, Vec<Json>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else { continue };
        let (name, labels) = series.split_once('{').unwrap_or((series, ""));
        let (Some(name), Ok(value)) = (names.iter().find(|n| **n == name), value.parse::<f64>())
        else {
            continue;
        };
        found
            .entry(name)
            .or_default()
            .push(json!({"labels": labels.trim_end_matches('}'), "value": value}));
    }
    json!(found)
}

/// The demo's HTTP client: plain HTTP to its own loopback server, statuses as values.
struct Client {
    agent: ureq::Agent,
    base: String,
}

impl Client {
    fn new(base: &str) -> Self {
        let agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        Client { agent, base: base.to_owned() }
    }

    fn get(&self, path: &str) -> anyhow::Result<(u16, Json)> {
        let response = self.agent.get(format!("{}{path}", self.base)).call();
        read_reply(response.with_context(|| format!("GET {path}"))?)
    }

    fn send(&self, method: &str, path: &str, body: &Json) -> anyhow::Result<(u16, Json)> {
        let url = format!("{}{path}", self.base);
        let request = match method {
            "PUT" => self.agent.put(url),
            _ => self.agent.post(url),
        };
        let response = request.header("content-type", "application/json").send(body.to_string());
        read_reply(response.with_context(|| format!("{method} {path}"))?)
    }

    /// Polls the readiness route until it answers 200, for at most [`READY_TIMEOUT`].
    fn wait_ready(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok((200, _)) = self.get("/v2/health/ready") {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(anyhow::anyhow!(
                    "the in-process server was not ready within {READY_TIMEOUT:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn read_reply(mut response: ureq::http::Response<ureq::Body>) -> anyhow::Result<(u16, Json)> {
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string()?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Json::String(text))))
}

/// The steps run so far, each with a spinner on stderr while it runs and a line when done.
#[derive(Default)]
struct Steps {
    timings: Vec<Json>,
}

impl Steps {
    fn run<T>(
        &mut self,
        name: &str,
        step: impl FnOnce() -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let spinner = Spinner::new(name);
        let started = Instant::now();
        let result = step();
        spinner.finish();
        let seconds = started.elapsed().as_secs_f64();
        let mark = if result.is_ok() { "ok" } else { "FAILED" };
        eprintln!("[{:>2}] {mark:<6} {name} ({seconds:.1}s)", self.timings.len() + 1);
        self.timings.push(json!({"step": name, "seconds": seconds}));
        result.with_context(|| name.to_owned())
    }
}

/// The summary for people, from the same facts `--format json` prints.
fn print_story(facts: &Json) -> std::io::Result<()> {
    let server = &facts["server"];
    let requests = &server["requests"];
    outln!()?;
    outln!(
        "Vigie demo: done in {:.0}s, everything in {}",
        facts["seconds"].as_f64().unwrap_or(0.0),
        text(&facts["project"])
    )?;
    outln!()?;
    outln!(
        "Data: {} generated card transactions, {} fraudulent; the last {} ({} since {}, {} \
         fraudulent) kept from training.",
        facts["data"]["rows"],
        facts["data"]["fraud_rows"],
        format_args!("{NEW_DAYS} days"),
        facts["new_transactions"]["rows"],
        text(&facts["new_transactions"]["since"]),
        facts["new_transactions"]["frauds"],
    )?;
    for model in facts["models"].as_array().into_iter().flatten() {
        outln!(
            "Model {} v{} ({}): {} {}-fold CV on {} rows: {}",
            text(&model["model"]),
            model["version"],
            text(&model["role"]),
            text(&model["algorithm"]),
            model["cv_folds"],
            model["rows"],
            metrics_line(&model["cv_mean"])
        )?;
    }
    outln!("Routing: {}", text(&server["canary"]["routing"]))?;
    outln!()?;
    outln!(
        "Traffic to {}: {} requests, {} answered 200; client latency p50 {:.1} ms, p99 {:.1} ms",
        text(&server["url"]),
        requests["sent"],
        requests["ok"],
        requests["latency_ms"]["p50"].as_f64().unwrap_or(f64::NAN),
        requests["latency_ms"]["p99"].as_f64().unwrap_or(f64::NAN),
    )?;
    outln!(
        "  {} customers by entity key (latest online features, {} with explanations): {} flagged, \
         {} whose latest transaction is fraudulent",
        requests["by_entity"],
        requests["explained"],
        requests["flagged"]["entity"],
        requests["fraudulent"]["entity"],
    )?;
    outln!(
        "  {} transactions of the last {} days, which training did not see, as records (features \
         as of their time): {} flagged, {} fraudulent",
        requests["by_record"],
        NEW_DAYS,
        requests["flagged"]["record"],
        requests["fraudulent"]["record"],
    )?;
    let mut table =
        crate::output::table(&["variant", "version", "requests", "mean score", "p50 ms", "p99 ms"]);
    for variant in server["variants"].as_array().into_iter().flatten() {
        table.add_row(vec![
            text(&variant["variant"]),
            variant["version"].to_string(),
            variant["requests"].to_string(),
            variant["mean_score"].as_f64().map_or("-".to_owned(), crate::output::metric),
            format!("{:.2}", variant["latency_ms"]["p50"].as_f64().unwrap_or(f64::NAN)),
            format!("{:.2}", variant["latency_ms"]["p99"].as_f64().unwrap_or(f64::NAN)),
        ]);
    }
    outln!("{table}")?;
    let feedback = &server["feedback"];
    outln!(
        "Feedback: {} labels sent, {} accepted, {} decisions right; live accuracy from /metrics:",
        feedback["sent"],
        feedback["accepted"],
        feedback["correct"]
    )?;
    for sample in server["live"]["vigie_live_accuracy"].as_array().into_iter().flatten() {
        outln!(
            "  vigie_live_accuracy{{{}}} {:.4}",
            text(&sample["labels"]),
            sample["value"].as_f64().unwrap_or(f64::NAN)
        )?;
    }
    let explained = &server["explained"];
    outln!()?;
    outln!(
        "The latest fraudulent transaction, with its features as of its time: scored {:.4}, \
         decision {} by v{} ({}). Top contributions:",
        explained["score"].as_f64().unwrap_or(f64::NAN),
        text(&explained["decision"]),
        explained["version"],
        text(&explained["variant"])
    )?;
    for contribution in explained["top_contributions"].as_array().into_iter().flatten() {
        outln!(
            "  {:<16} {:+.4}",
            text(&contribution["feature"]),
            contribution["contribution"].as_f64().unwrap_or(f64::NAN)
        )?;
    }
    let audit = &facts["audit"];
    outln!()?;
    outln!(
        "Audit log: {} records in {}, every hash and link checked (head {})",
        audit["records"],
        text(&audit["dir"]),
        text(&audit["head"])
    )?;
    outln!()?;
    outln!("Next, in {}:", text(&facts["project"]))?;
    for line in NEXT {
        outln!("  {line}")?;
    }
    Ok(())
}

/// `path` as an absolute path, for messages (as given if it cannot be resolved).
fn absolute(path: &Path) -> std::path::PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

fn text(value: &Json) -> String {
    value.as_str().map_or_else(|| value.to_string(), str::to_owned)
}

fn metrics_line(cv: &Json) -> String {
    cv.as_object()
        .map(|map| {
            map.iter()
                .map(|(k, v)| {
                    format!("{k} {}", v.as_f64().map_or("-".to_owned(), crate::output::metric))
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}
