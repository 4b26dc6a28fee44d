#!/usr/bin/env python3
"""Serving benchmark: `vigie serve` against `mlflow models serve` (issue 6).

Run through `bash bench/serve.sh`, which installs MLflow and LightGBM in
bench/.venv, builds `vigie` and installs the load generator `oha`. One run:

1. a seeded table, 100,000 rows x 30 numeric features and a 0/1 target,
   written to one CSV that both trainers read;
2. Vigie trains a GBDT of 200 trees (`vigie train --algorithm gbdt`, early
   stopping off) in a project made by `vigie init` in a temporary folder, which
   registers it and makes it the champion; LightGBM trains 200 trees with the
   same number of leaves on the same CSV, saved with
   `mlflow.lightgbm.save_model`;
3. each server is started alone on 127.0.0.1 (so the two never share the two
   cores), checked to answer a real probability, warmed up, then driven by
   `oha` with keep-alive and the same one-row body: throughput at saturation,
   and p50/p99 latency at fixed rates (coordinated omission corrected); its
   resident memory is read from /proc after the load;
4. a table `metric | Vigie | MLflow | ratio` on stdout, every figure in
   bench/out/serve.json.

Vigie answers with its audit log on (its default: every prediction is made
durable before the reply). Without an OAuth2 issuer it serves loopback
without authentication; when serve.sh started one (VIGIE_TEST_OIDC_* set),
one more Vigie run checks bearer tokens, on the same route and, by entity
key, on the example project's fraud model trained from its feature store
(each request reads the customer's online features: the issue's whole
path). Timings live here, never in tests.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = BENCH / "out"

SEED = 42
MODEL_NAME = "bench_gbdt"
# The model of the example project (`vigie init`) trained from its feature store, and the
# customer whose online features each by-entity request reads.
STORE_MODEL = "fraud"
STORE_KEY = "C0042"
LEARNING_RATE = 0.1
# Other work on the machine above this share of all cores marks a run with †.
BUSY_LIMIT = 0.15
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# The label of the runs whose audit records are acknowledged once written.
PROCESS = "vigie /v1 process-durable"

def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Data and models
# ---------------------------------------------------------------------------


def make_table(n_rows: int, n_features: int, seed: int,
               positive_rate: float = 0.2) -> pd.DataFrame:
    """Seeded numeric features f00..fNN (normal, uniform, log-normal and
    count columns) and a 0/1 `target` drawn from a logit with a threshold, a
    product and a sine, with about `positive_rate` positives; the last third
    of the columns are noise."""
    rng = np.random.default_rng(seed)
    columns = {}
    for i in range(n_features):
        kind = i % 4
        if kind == 0:
            values = rng.normal(size=n_rows)
        elif kind == 1:
            values = rng.uniform(-2.0, 2.0, n_rows)
        elif kind == 2:
            values = rng.lognormal(0.0, 0.75, n_rows)
        else:
            values = rng.poisson(3.0, n_rows).astype(float)
        columns[f"f{i:02d}"] = values
    frame = pd.DataFrame(columns)
    x = frame.to_numpy()
    informative = max(2 * n_features // 3, 6)
    weights = rng.normal(0.0, 0.6, informative)
    logit = (x[:, :informative] - x[:, :informative].mean(axis=0)) @ weights
    logit += 1.2 * (x[:, 0] > 0.5) - 0.8 * x[:, 1] * x[:, 4] + np.sin(2.0 * x[:, 5])
    logit += 0.5 * np.log1p(np.abs(x[:, 2] - x[:, 3]))
    # The intercept that gives `positive_rate` on average, by bisection.
    low, high = -20.0, 20.0
    for _ in range(60):
        middle = (low + high) / 2
        if np.mean(1.0 / (1.0 + np.exp(-(logit + middle)))) < positive_rate:
            low = middle
        else:
            high = middle
    probability = 1.0 / (1.0 + np.exp(-(logit + low)))
    frame["target"] = (rng.uniform(size=n_rows) < probability).astype(int)
    return frame


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Runs `cmd`, failing loudly with its output."""
    res = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    return res


def train_vigie(vigie: str, project: Path, csv: Path, trees: int, leaves: int) -> dict:
    """A project from `vigie init`, then `vigie train` of a GBDT with exactly
    `trees` rounds: early stopping off, so no fold picks fewer, and one 80/20
    hold-out instead of 5 folds (the model's size, not its tuning, matters
    here). The first version of a model becomes its champion, which
    `vigie serve` serves."""
    run([vigie, "init", str(project), "--rows", "20000", "--format", "json"])
    params = {
        "n_rounds": trees,
        "early_stopping_rounds": "null",  # JSON null: off
        "max_leaves": leaves,
        "learning_rate": LEARNING_RATE,
        "subsample": 1,
        "colsample": 1,
    }
    cmd = [vigie, "--project", str(project), "train", "--data", str(csv), "--label", "target",
           "--algorithm", "gbdt", "--cv", "1", "--name", MODEL_NAME, "--format", "json"]
    for key, value in params.items():
        cmd += ["--param", f"{key}={value}"]
    start = time.perf_counter()
    trained = json.loads(run(cmd).stdout)
    seconds = time.perf_counter() - start
    shown = json.loads(run([vigie, "--project", str(project), "models", "show",
                            f"{MODEL_NAME}@champion", "--format", "json"]).stdout)
    # No early stopping: the model keeps every one of its n_rounds trees.
    kept = shown["params"]
    if kept.get("n_rounds") != trees or kept.get("early_stopping_rounds") is not None:
        raise SystemExit(f"vigie's champion is not a {trees}-tree GBDT: {kept}")
    return {"train_seconds": seconds, "params": params, "train": trained, "model": shown}


def train_from_store(vigie: str, project: Path) -> dict:
    """The example project's own fraud model, trained from its feature store
    (`vigie ingest`, `vigie materialize`, `vigie train fraud`): served by
    entity key, each request reads the customer's features from the online
    store (the embedded one) before scoring. Returns the keys to ask for."""
    run([vigie, "--project", str(project), "ingest"])
    run([vigie, "--project", str(project), "materialize"])
    start = time.perf_counter()
    run([vigie, "--project", str(project), "train", "fraud", "--format", "json"])
    seconds = time.perf_counter() - start
    got = json.loads(run([vigie, "--project", str(project), "features", "get",
                          "customer_activity", "--key", f"customer_id={STORE_KEY}",
                          "--format", "json"]).stdout)
    return {"train_seconds": seconds, "key": STORE_KEY, "features": len(got["features"])}


def train_lightgbm(frame: pd.DataFrame, model_dir: Path, trees: int, leaves: int) -> dict:
    """A LightGBM booster of `trees` trees and `leaves` leaves on the same
    rows, saved as an MLflow model (with its signature, as a deployment
    would have; requirements given, so MLflow does not load the model in a
    subprocess to infer them)."""
    x = frame.drop(columns="target")
    y = frame["target"]
    params = {"objective": "binary", "num_leaves": leaves, "learning_rate": LEARNING_RATE,
              "num_threads": os.cpu_count() or 2, "seed": SEED, "verbose": -1}
    start = time.perf_counter()
    booster = lgb.train(params, lgb.Dataset(x, y), num_boost_round=trees)
    seconds = time.perf_counter() - start
    if booster.num_trees() != trees:
        raise SystemExit(f"LightGBM built {booster.num_trees()} trees, not {trees}")
    shutil.rmtree(model_dir, ignore_errors=True)
    sample = x.head(5)
    mlflow.lightgbm.save_model(
        booster, str(model_dir), signature=infer_signature(sample, booster.predict(sample)),
        pip_requirements=[f"lightgbm=={lgb.__version__}", f"mlflow=={mlflow.__version__}"])
    leaves = [tree["num_leaves"] for tree in booster.dump_model()["tree_info"]]
    return {"train_seconds": seconds, "params": params, "trees": booster.num_trees(),
            "mean_leaves": float(np.mean(leaves))}


# ---------------------------------------------------------------------------
# Processes: servers, CPU and memory
# ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# The self-signed certificate of the TLS run, which our own requests trust (oha: --insecure).
TLS_TRUST: ssl.SSLContext | None = None


def self_signed(workdir: Path) -> tuple[Path, Path]:
    """A P-256 certificate for 127.0.0.1 and its key, made by openssl."""
    cert, key = workdir / "tls-cert.pem", workdir / "tls-key.pem"
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"])
    return cert, key


def http(method: str, url: str, body: bytes | None = None,
         headers: dict[str, str] | None = None, timeout: float = 10.0) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    context = TLS_TRUST if url.startswith("https:") else None
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@dataclass
class Server:
    """A server started by us in its own process group."""

    name: str
    process: subprocess.Popen
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@contextmanager
def started(name: str, cmd: list[str], ready_url: str, log_path: Path,
            env: dict[str, str] | None = None, timeout: float = 180.0) -> Iterator[Server]:
    """Starts `cmd` in a new session, waits until `ready_url` answers 200,
    and stops the whole group (TERM, then KILL after 15 s) on the way out."""
    log_file = open(log_path, "wb")
    process = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True,
                               env={**os.environ, **(env or {})})
    server = Server(name, process, log_path)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise SystemExit(f"{name} exited with {process.returncode} while starting:\n"
                                 f"{server.tail()}")
            try:
                status, _ = http("GET", ready_url, timeout=2.0)
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{name} not ready at {ready_url} after {timeout:.0f} s:\n"
                                 f"{server.tail()}")
            time.sleep(0.2)
        yield server
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=15)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log_file.close()


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (through /proc/PID/task/TID/children)."""
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                todo.extend(int(child) for child in (task / "children").read_text().split())
            except OSError:
                pass
    return tree


def status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def memory(pid: int) -> dict:
    """Resident memory of `pid`'s process tree, in MiB: the sum of each
    process's VmRSS (counts pages shared between forked workers once per
    process), of VmHWM (each process's peak), and of Pss (shared pages
    split between their users: the tree's real share of RAM)."""
    kib = {"rss": 0, "hwm": 0, "pss": 0}
    each = []
    for p in process_tree(pid):
        try:
            command = Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            rss, hwm, pss = status_kib(p, "VmRSS"), status_kib(p, "VmHWM"), pss_kib(p)
        except OSError:
            continue
        kib["rss"] += rss
        kib["hwm"] += hwm
        kib["pss"] += pss
        each.append({"pid": p, "command": command.strip()[:200], "rss_mib": rss / 1024,
                     "pss_mib": pss / 1024})
    return {"processes": len(each), **{f"{k}_mib": v / 1024 for k, v in kib.items()},
            "each": each}


def tree_cpu_ticks(pid: int) -> int:
    """User + system clock ticks spent by the live processes of `pid`'s tree."""
    total = 0
    for p in process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total


def machine_ticks() -> tuple[int, int]:
    """(all, idle) clock ticks of every core since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(values), values[3] + values[4]


def cpu_busy(interval: float = 2.0) -> float:
    """Share of all cores busy over `interval` seconds."""
    total0, idle0 = machine_ticks()
    time.sleep(interval)
    total1, idle1 = machine_ticks()
    return 1.0 - (idle1 - idle0) / max(total1 - total0, 1)


def settle(what: str, wait: float) -> float:
    """Waits up to `wait` seconds for the machine to be idle before a server
    starts; returns how busy it was."""
    deadline = time.monotonic() + wait
    busy = cpu_busy()
    while busy > BUSY_LIMIT and time.monotonic() < deadline:
        log(f"  machine {busy:.0%} busy before {what}; waiting for it to calm down")
        time.sleep(10)
        busy = cpu_busy()
    if busy > BUSY_LIMIT:
        log(f"  warning: machine {busy:.0%} busy before {what}; its figures are skewed")
    return busy


# ---------------------------------------------------------------------------
# Load
# ---------------------------------------------------------------------------


@dataclass
class Load:
    """What every oha run of this benchmark shares."""

    oha: str
    duration: float
    concurrency: int
    results: list[dict] = field(default_factory=list)

    def drive(self, server: Server, label: str, url: str, body_file: Path,
              headers: dict[str, str], rate: float | None = None,
              duration: float | None = None, keep: bool = True) -> dict:
        """One oha run against `url`: keep-alive (oha's default), POST of
        `body_file`, `concurrency` connections, `duration` seconds; with a
        `rate`, requests are sent at that fixed rate and latency counts from
        when each was due (--latency-correction), so a server that falls
        behind shows its queueing. In-flight requests at the deadline are
        awaited (-w), not counted as errors."""
        seconds = duration or self.duration
        cmd = [self.oha, "--no-tui", "--output-format", "json", "-z", f"{seconds}s",
               "-c", str(self.concurrency), "-w", "-m", "POST", "-D", str(body_file),
               "-T", "application/json"]
        if url.startswith("https:"):
            # The certificate is self-signed; TLS is still negotiated and paid for.
            cmd.append("--insecure")
        for key, value in headers.items():
            cmd += ["-H", f"{key}: {value}"]
        if rate:
            cmd += ["-q", str(rate), "--latency-correction"]
        cmd.append(url)
        wall0 = time.monotonic()
        total0, idle0 = machine_ticks()
        server0 = tree_cpu_ticks(server.pid)
        children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        report = json.loads(run(cmd).stdout)
        children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        server1 = tree_cpu_ticks(server.pid)
        total1, idle1 = machine_ticks()
        wall = time.monotonic() - wall0
        all_ticks = max(total1 - total0, 1)
        busy_ticks = all_ticks - (idle1 - idle0)
        oha_ticks = ((children1.ru_utime + children1.ru_stime)
                     - (children0.ru_utime + children0.ru_stime)) * CLOCK_TICKS
        server_ticks = server1 - server0
        others = max(busy_ticks - server_ticks - oha_ticks, 0) / all_ticks
        summary = report["summary"]
        percentiles = report["latencyPercentiles"]
        statuses = {str(k): int(v) for k, v in (report.get("statusCodeDistribution") or {}).items()}
        errors = {str(k): int(v) for k, v in (report.get("errorDistribution") or {}).items()}
        result = {
            "label": label, "server": server.name, "url": url, "rate": rate,
            "duration_s": seconds, "concurrency": self.concurrency,
            "requests": sum(statuses.values()),
            "rps": summary["requestsPerSec"],
            "p50_ms": (percentiles.get("p50") or 0.0) * 1000,
            "p99_ms": (percentiles.get("p99") or 0.0) * 1000,
            "p999_ms": (percentiles.get("p99.9") or 0.0) * 1000,
            "statuses": statuses, "errors": errors,
            "non_200": sum(v for k, v in statuses.items() if k != "200") + sum(errors.values()),
            # Shares of all cores during the run.
            "server_cpu": server_ticks / all_ticks,
            "server_cpu_s": server_ticks / CLOCK_TICKS, "wall_s": wall,
            "oha_cpu": oha_ticks / all_ticks,
            "others_cpu": others,
        }
        line = (f"  {label:<42} {result['rps']:>9,.0f} req/s  p50 {result['p50_ms']:7.3f} ms"
                f"  p99 {result['p99_ms']:8.3f} ms  cpu server {result['server_cpu']:.0%}"
                f" oha {result['oha_cpu']:.0%} others {others:.0%}")
        log(line)
        if result["non_200"]:
            log(f"  !! {label}: {result['non_200']} replies were not 200: statuses {statuses},"
                f" errors {errors}")
        if keep:
            self.results.append(result)
        return result

    def scenarios(self, server: Server, label: str, url: str, body_file: Path,
                  headers: dict[str, str], rates: list[float], warmup: float) -> None:
        """Warm-up (not kept), saturation, then each fixed rate."""
        self.drive(server, f"{label} warm-up", url, body_file, headers,
                   duration=warmup, keep=False)
        self.drive(server, f"{label} saturation", url, body_file, headers)
        for rate in rates:
            self.drive(server, f"{label} @{rate:g}/s", url, body_file, headers, rate=rate)


def server_metrics(base: str, headers: dict[str, str]) -> dict:
    """Means from Vigie's /metrics (summed over label sets): time spent
    scoring inside the handler, time of one audit group commit (append +
    fdatasync) and records per commit; they tell where a request's time goes."""
    try:
        status, raw = http("GET", f"{base}/metrics", headers=headers)
    except OSError:
        return {}
    if status != 200:
        return {}
    sums: dict[str, float] = {}
    for line in raw.decode(errors="replace").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name_labels, _, value = line.rpartition(" ")
        name = name_labels.split("{", 1)[0]
        try:
            sums[name] = sums.get(name, 0.0) + float(value)
        except ValueError:
            pass

    def mean(metric: str) -> float | None:
        count = sums.get(f"{metric}_count")
        return sums.get(f"{metric}_sum", 0.0) / count if count else None

    return {
        "prediction_mean_ms": (mean("vigie_prediction_duration_seconds") or 0.0) * 1000,
        "audit_commit_mean_ms": (mean("vigie_audit_commit_duration_seconds") or 0.0) * 1000,
        "audit_records_per_commit": mean("vigie_audit_batch_records"),
        "audit_commits": sums.get("vigie_audit_commit_duration_seconds_count"),
    }


def first_probability(reply: object) -> float | None:
    """The first number in a reply, looked for depth-first (MLflow answers
    `{"predictions": [p]}`; Vigie's routes nest it in objects)."""
    if isinstance(reply, bool):
        return None
    if isinstance(reply, (int, float)):
        return float(reply)
    if isinstance(reply, list):
        for item in reply:
            found = first_probability(item)
            if found is not None:
                return found
    if isinstance(reply, dict):
        for key in ("probability", "score", "predictions", "outputs", "data"):
            if key in reply:
                found = first_probability(reply[key])
                if found is not None:
                    return found
    return None


def check_reply(name: str, url: str, body: bytes, headers: dict[str, str]) -> dict:
    """One request before any timing: status 200 and a probability in [0, 1]."""
    status, raw = http("POST", url, body, {"content-type": "application/json", **headers})
    try:
        reply = json.loads(raw)
    except ValueError:
        reply = raw.decode(errors="replace")
    probability = first_probability(reply) if status == 200 else None
    if status != 200 or probability is None or not 0.0 <= probability <= 1.0:
        raise SystemExit(f"{name} {url}: expected 200 and a probability, got {status}: {reply}")
    log(f"  {name} {url} -> 200, probability {probability:.4f}")
    return {"url": url, "status": status, "probability": probability, "reply": reply}


# ---------------------------------------------------------------------------
# Auth (optional): a bearer token from the issuer serve.sh started
# ---------------------------------------------------------------------------


@dataclass
class Issuer:
    url: str
    client_id: str
    secret: str
    audience: str

    @staticmethod
    def from_env() -> Issuer | None:
        names = ("VIGIE_TEST_OIDC_ISSUER", "VIGIE_TEST_OIDC_CLIENT_ID",
                 "VIGIE_TEST_OIDC_CLIENT_SECRET", "VIGIE_TEST_OIDC_AUDIENCE")
        values = [os.environ.get(name) for name in names]
        if not all(values):
            return None
        return Issuer(*values)  # type: ignore[arg-type]

    def token(self, scope: str) -> str:
        """A client-credentials grant for `scope`."""
        form = urllib.parse.urlencode({"grant_type": "client_credentials", "scope": scope,
                                       "client_id": self.client_id,
                                       "client_secret": self.secret}).encode()
        status, raw = http("POST", f"{self.url}/token", form,
                           {"content-type": "application/x-www-form-urlencoded"})
        if status != 200:
            raise SystemExit(f"token request to {self.url}: {status} {raw!r}")
        return json.loads(raw)["access_token"]


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------


def find(results: list[dict], label: str) -> dict | None:
    return next((r for r in results if r["label"] == label), None)


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.3f}"
    return f"{text}{unit}"


def ratio(better: float | None, worse: float | None) -> str:
    if not better or not worse:
        return "n/a"
    return f"{better / worse:,.1f}×"


def cpu_per_request_us(run: dict | None) -> float | None:
    """The server's CPU time (all its processes, user + system) per answered
    request: what other work on the machine changes least."""
    if not run or not run["requests"]:
        return None
    return run["server_cpu_s"] * 1e6 / run["requests"]


def fell_behind(run: dict | None) -> bool:
    """A fixed-rate run whose server did not keep up with the rate."""
    return bool(run and run["rate"] and run["rps"] < 0.95 * run["rate"])


def behind_mark(run: dict | None) -> str:
    return " ‡" if fell_behind(run) else ""


def busy_mark(*runs: dict | None) -> str:
    return " †" if any(r and r["others_cpu"] > BUSY_LIMIT for r in runs) else ""


def report(results: list[dict], memory_after: dict, rates: list[float], auth: bool) -> list[str]:
    """The Markdown table: metric | Vigie | MLflow | ratio, where the ratio is
    always how many times better Vigie is (MLflow / Vigie for latency and
    memory, Vigie / MLflow for throughput)."""
    lines = ["| metric | Vigie | MLflow | ratio (× in Vigie's favour) |", "|---|---:|---:|---:|"]
    mlflow_sat = find(results, "mlflow /invocations saturation")
    routes = [("vigie /invocations", "Vigie `/invocations`"),
              ("vigie /v1 predict", "Vigie `/v1/models/NAME/predict`")]
    if auth:
        routes.append(("vigie /v1 predict + OAuth2", "Vigie `/v1` predict, OAuth2 on"))
        routes.append(("vigie /v1 by entity + OAuth2",
                       "Vigie `/v1` predict by entity key (online features), OAuth2 on"))
        routes.append(("vigie /v1 by entity + OAuth2 + TLS",
                       "Vigie `/v1` by entity key, OAuth2 and HTTPS on"))
        routes.append((f"{PROCESS} by entity + OAuth2",
                       "Vigie `/v1` by entity key, OAuth2 on, `--audit-durability process`"))
    for key, title in routes:
        sat = find(results, f"{key} saturation")
        if sat is None:
            continue
        mark = busy_mark(sat, mlflow_sat)
        lines.append(f"| throughput at saturation, req/s: {title}{mark} | {fmt(sat['rps'])} | "
                     f"{fmt(mlflow_sat and mlflow_sat['rps'])} | "
                     f"{ratio(sat['rps'], mlflow_sat and mlflow_sat['rps'])} |")
    for key, title in routes:
        sat = find(results, f"{key} saturation")
        if sat is None:
            continue
        v, m = cpu_per_request_us(sat), cpu_per_request_us(mlflow_sat)
        lines.append(f"| server CPU per request at saturation, µs: {title} | {fmt(v)} | {fmt(m)} "
                     f"| {ratio(m, v)} |")
    for wide in (r for r in results if r["label"].startswith("vigie /v1 predict saturation -c")):
        lines.append(f"| throughput at saturation, req/s: Vigie `/v1`, oha -c "
                     f"{wide['concurrency']} (no MLflow run){busy_mark(wide)} | {fmt(wide['rps'])} "
                     f"| | |")
    for rate in rates:
        mlflow_run = find(results, f"mlflow /invocations @{rate:g}/s")
        for key, title in routes:
            vigie_run = find(results, f"{key} @{rate:g}/s")
            if vigie_run is None:
                continue
            mark = busy_mark(vigie_run, mlflow_run)
            for pct in ("p50", "p99"):
                v = vigie_run[f"{pct}_ms"]
                m = mlflow_run and mlflow_run[f"{pct}_ms"]
                lines.append(f"| {pct} ms at {rate:g} req/s: {title}{mark} | "
                             f"{fmt(v)}{behind_mark(vigie_run)} | "
                             f"{fmt(m)}{behind_mark(mlflow_run)} | {ratio(m, v)} |")
            lines.append(f"| achieved req/s at {rate:g} req/s: {title} | {fmt(vigie_run['rps'])} | "
                         f"{fmt(mlflow_run and mlflow_run['rps'])} | |")
    vigie_mem = memory_after.get("vigie", {})
    mlflow_mem = memory_after.get("mlflow", {})
    for key, title in (("rss_mib", "VmRSS after load, MiB (sum over processes)"),
                       ("hwm_mib", "VmHWM (peak RSS), MiB (sum over processes)"),
                       ("pss_mib", "Pss after load, MiB (shared pages split)")):
        v, m = vigie_mem.get(key), mlflow_mem.get(key)
        lines.append(f"| {title} | {fmt(v)} | {fmt(m)} | {ratio(m, v)} |")
    lines.append(f"| processes | {vigie_mem.get('processes', 'n/a')} | "
                 f"{mlflow_mem.get('processes', 'n/a')} | |")
    non_200 = sum(r["non_200"] for r in results)
    lines.append("")
    lines.append(f"Non-200 replies or errors over all timed runs: {non_200}.")
    if any(fell_behind(r) for r in results):
        lines.append("‡ the server did not keep up with that rate: requests queued, and since "
                     "latency counts from when each request was due, it is mostly waiting time.")
    if any(r["others_cpu"] > BUSY_LIMIT for r in results):
        lines.append(f"† other work took more than {BUSY_LIMIT:.0%} of the machine during that run "
                     "(see others_cpu in serve.json).")
    return lines


def targets(results: list[dict], memory_after: dict, auth: bool) -> list[str]:
    """Issue 6's targets, each met or missed."""
    lines = ["| target (issue 6) | measured | |", "|---|---:|---|"]
    mlflow_sat = find(results, "mlflow /invocations saturation")
    best = max((r for r in results if r["label"].startswith("vigie")
                and r["label"].endswith("saturation")), key=lambda r: r["rps"], default=None)
    if best and mlflow_sat:
        x = best["rps"] / mlflow_sat["rps"]
        lines.append(f"| throughput ≥ 30× MLflow's | {x:,.1f}× ({best['label']}) | "
                     f"{'met' if x >= 30 else '**missed**'} |")
    key = "vigie /v1 by entity + OAuth2 @2000/s" if auth else "vigie /v1 predict @2000/s"
    at_2000 = find(results, key)
    if at_2000:
        p99 = at_2000["p99_ms"]
        scope = ("OAuth2, feature lookup and audit on" if auth
                 else "audit on, auth off, no feature lookup")
        verdict = "met" if p99 < 1.0 else "**missed**"
        lines.append(f"| p99 < 1 ms at 2000 req/s with auth, feature lookup and audit | "
                     f"{fmt(p99)} ms ({scope}; each reply after its record's fdatasync) | "
                     f"{verdict} for what was measured |")
    process = find(results, f"{PROCESS} by entity + OAuth2 @2000/s")
    if process:
        p99 = process["p99_ms"]
        lines.append(f"| the same, audit durable once written (`--audit-durability process`: "
                     f"survives kill -9; fdatasync every 10 ms) | {fmt(p99)} ms | "
                     f"{'met' if p99 < 1.0 else '**missed**'} for what was measured |")
    vigie_mem = memory_after.get("vigie", {}).get("pss_mib")
    mlflow_mem = memory_after.get("mlflow", {}).get("pss_mib")
    if vigie_mem and mlflow_mem:
        share = vigie_mem / mlflow_mem
        lines.append(f"| memory ≤ 1/10 of MLflow's (Pss after load) | {share:.3f} "
                     f"({mlflow_mem / vigie_mem:.1f}× less) | "
                     f"{'met' if share <= 0.1 else '**missed**'} |")
    return lines


def versions(vigie: str, oha: str) -> dict:
    def first_line(cmd: list[str]) -> str:
        try:
            res = subprocess.run(cmd, capture_output=True, text=True)
            return res.stdout.strip().splitlines()[0]
        except (OSError, IndexError):
            return "unknown"

    commit = first_line(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = bool(subprocess.run(["git", "-C", str(REPO), "status", "--porcelain"],
                                capture_output=True, text=True).stdout.strip())
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {
        "vigie": first_line([vigie, "--version"]), "oha": first_line([oha, "--version"]),
        "mlflow": mlflow.__version__, "lightgbm": lgb.__version__,
        "numpy": np.__version__, "pandas": pd.__version__,
        "python": platform.python_version(), "commit": commit, "dirty_tree": dirty,
        "cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(),
    }


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vigie", required=True, help="the vigie binary")
    parser.add_argument("--oha", required=True, help="the oha binary")
    parser.add_argument("--build-seconds", type=float, help="vigie's build time, for the JSON")
    parser.add_argument("--build-profile", default="", help="vigie's cargo profile, for the JSON")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=30)
    parser.add_argument("--trees", type=int, default=200)
    parser.add_argument("--leaves", type=int, default=31)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per timed run")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up per route")
    parser.add_argument("--concurrency", type=int, default=16, help="oha connections")
    parser.add_argument("--rates", default="500,2000", help="fixed request rates, per second")
    parser.add_argument("--wide-concurrency", type=int, default=64,
                        help="one more Vigie saturation run with this many connections, not "
                             "compared (0: none)")
    parser.add_argument("--mlflow-workers", type=int, default=os.cpu_count() or 2,
                        help="uvicorn workers of mlflow models serve (default: one per core)")
    parser.add_argument("--wait-idle", type=float, default=120.0,
                        help="seconds to wait for an idle machine before each server")
    parser.add_argument("--state-dir", type=Path,
                        help="where the temporary Vigie project (registry, audit log) lives "
                             "[default: the system's temporary folder]; a tmpfs here shows "
                             "what the disk's fdatasync costs, but makes nothing durable")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary Vigie project (its audit log) and print where")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",") if r]

    out = OUT / "serve"
    out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="vigie-bench-serve-", dir=args.state_dir))
    project = workdir / "project"
    issuer = Issuer.from_env()
    # The audit log's fdatasync is only as fast as this file system.
    state_fs = subprocess.run(["stat", "-f", "-c", "%T", str(workdir)], capture_output=True,
                              text=True).stdout.strip() or "unknown"
    record: dict = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": versions(args.vigie, args.oha),
        "build": {"profile": args.build_profile, "seconds": args.build_seconds},
        "vigie_state_fs": state_fs,
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()
                     if k not in ("vigie", "oha")},
    }
    try:
        log(f"data: {args.rows:,} rows x {args.features} features (seed {SEED})")
        frame = make_table(args.rows, args.features, SEED)
        csv = out / "data.csv"
        frame.to_csv(csv, index=False)
        record["data"] = {"rows": args.rows, "features": args.features,
                          "positive_rate": float(frame["target"].mean())}

        log(f"training Vigie's GBDT ({args.trees} trees, {args.leaves} leaves)...")
        record["vigie_model"] = train_vigie(args.vigie, project, csv, args.trees, args.leaves)
        log(f"  {record['vigie_model']['train_seconds']:.1f} s (CLI, CSV reading and registry"
            " included)")
        log("training the example project's fraud model from its feature store...")
        record["vigie_store_model"] = train_from_store(args.vigie, project)
        log(f"  {record['vigie_store_model']['train_seconds']:.1f} s; requests by entity read"
            f" {record['vigie_store_model']['features']} online features")
        log(f"training LightGBM ({args.trees} trees, {args.leaves} leaves) for MLflow...")
        model_dir = out / "mlflow-model"
        record["lightgbm_model"] = train_lightgbm(frame, model_dir, args.trees, args.leaves)

        # One row, the same for every server and route.
        features = [c for c in frame.columns if c != "target"]
        row = [float(v) for v in frame.loc[0, features]]
        bodies = {
            "invocations": {"dataframe_split": {"columns": features, "data": [row]}},
            "v1": {"records": [dict(zip(features, row, strict=True))]},
            "entity": {"entities": [STORE_KEY]},
        }
        body_files = {}
        for key, body in bodies.items():
            body_files[key] = out / f"body-{key}.json"
            body_files[key].write_text(json.dumps(body))
        del frame

        load = Load(args.oha, args.duration, args.concurrency)
        memory_after: dict = {}
        checks: dict = {}
        busy: dict = {}

        # ---- Vigie, audit log on, no auth (loopback)
        busy["vigie"] = settle("vigie serve", args.wait_idle)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log(f"vigie serve --model {MODEL_NAME} on {base} (audit log on, no auth: loopback)")
        # The one model alone, as MLflow serves one (and as `/invocations` needs: the
        # project also registers the feature store's model, served by the runs below).
        with started("vigie", [args.vigie, "--project", str(project), "serve", "--model",
                               MODEL_NAME, "--addr", f"127.0.0.1:{port}"],
                     f"{base}/v2/health/ready",
                     workdir / "vigie.log") as server:
            memory_idle = memory(server.pid)
            targets_v = [("vigie /invocations", f"{base}/invocations", "invocations"),
                         ("vigie /v1 predict", f"{base}/v1/models/{MODEL_NAME}/predict", "v1")]
            for label, url, key in targets_v:
                checks[label] = check_reply("vigie", url, body_files[key].read_bytes(), {})
            for label, url, key in targets_v:
                load.scenarios(server, label, url, body_files[key], {}, rates, args.warmup)
            if args.wide_concurrency:
                # Not compared: how far more connections take Vigie, whose group commit
                # makes every request in flight share one fdatasync.
                wide = Load(args.oha, args.duration, args.wide_concurrency, load.results)
                wide.drive(server, f"vigie /v1 predict saturation -c {args.wide_concurrency}",
                           targets_v[1][1], body_files["v1"], {})
            memory_after["vigie"] = memory(server.pid)
            memory_after["vigie_idle"] = memory_idle
            record["vigie_metrics"] = server_metrics(base, {})
            log(f"  vigie /metrics: {record['vigie_metrics']}")
        audit = project / ".vigie" / "audit"
        audit_bytes = sum(p.stat().st_size for p in audit.glob("*")) if audit.exists() else 0
        audited = sum(r["requests"] for r in load.results if r["server"] == "vigie")
        record["vigie_audit"] = {"bytes": audit_bytes, "timed_requests": audited}
        log(f"  audit log: {audit_bytes / 2**20:.0f} MiB after {audited:,} timed requests "
            "(plus warm-ups)")

        # ---- Vigie with OAuth2 bearer tokens
        if issuer:
            busy["vigie_oauth2"] = settle("vigie serve (OAuth2)", args.wait_idle)
            token = issuer.token("vigie:predict")
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            log(f"vigie serve on {base} (audit log on, OAuth2 bearer tokens from {issuer.url})")
            with started("vigie", [args.vigie, "--project", str(project), "serve", "--addr",
                                   f"127.0.0.1:{port}", "--oauth-issuer", issuer.url,
                                   "--oauth-audience", issuer.audience],
                         f"{base}/v2/health/ready", workdir / "vigie-oauth2.log") as server:
                url = f"{base}/v1/models/{MODEL_NAME}/predict"
                status, _ = http("POST", url, body_files["v1"].read_bytes(),
                                 {"content-type": "application/json"})
                if status != 401:
                    raise SystemExit(f"vigie with OAuth2 answered {status} without a token")
                bearer = {"authorization": f"Bearer {token}"}
                checks["vigie /v1 predict + OAuth2"] = check_reply(
                    "vigie (OAuth2)", url, body_files["v1"].read_bytes(), bearer)
                load.scenarios(server, "vigie /v1 predict + OAuth2", url, body_files["v1"],
                               bearer, rates, args.warmup)
                # The whole path of the latency target: the token checked, the
                # customer's features read from the online store, the model, the audit.
                url = f"{base}/v1/models/{STORE_MODEL}/predict"
                checks["vigie /v1 by entity + OAuth2"] = check_reply(
                    "vigie (OAuth2, by entity)", url, body_files["entity"].read_bytes(), bearer)
                load.scenarios(server, "vigie /v1 by entity + OAuth2", url,
                               body_files["entity"], bearer, rates, args.warmup)
                memory_after["vigie_oauth2"] = memory(server.pid)
                record["vigie_oauth2_metrics"] = server_metrics(base, bearer)

            # ---- The same, answering once each audit record is written to the system
            # (it survives kill -9) with the log fdatasync'ed every 10 ms: the reply no
            # longer waits for the disk's flush.
            busy["vigie_process"] = settle("vigie serve (audit durable once written)",
                                           args.wait_idle)
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            log(f"vigie serve on {base} (OAuth2, --audit-durability process)")
            with started("vigie", [args.vigie, "--project", str(project), "serve", "--addr",
                                   f"127.0.0.1:{port}", "--oauth-issuer", issuer.url,
                                   "--oauth-audience", issuer.audience,
                                   "--audit-durability", "process", "--audit-flush-ms", "10"],
                         f"{base}/v2/health/ready", workdir / "vigie-process.log") as server:
                bearer = {"authorization": f"Bearer {token}"}
                url = f"{base}/v1/models/{STORE_MODEL}/predict"
                checks[f"{PROCESS} by entity + OAuth2"] = check_reply(
                    "vigie (OAuth2, by entity, audit durable once written)", url,
                    body_files["entity"].read_bytes(), bearer)
                load.scenarios(server, f"{PROCESS} by entity + OAuth2", url,
                               body_files["entity"], bearer, rates, args.warmup)
                memory_after["vigie_process"] = memory(server.pid)
                record["vigie_process_metrics"] = server_metrics(base, bearer)

            # ---- The same with HTTPS: what a deployment beyond loopback runs.
            global TLS_TRUST
            cert, key = self_signed(workdir)
            TLS_TRUST = ssl.create_default_context(cafile=str(cert))
            busy["vigie_tls"] = settle("vigie serve (TLS + OAuth2)", args.wait_idle)
            port = free_port()
            base = f"https://127.0.0.1:{port}"
            log(f"vigie serve on {base} (TLS, audit log on, OAuth2 bearer tokens)")
            with started("vigie", [args.vigie, "--project", str(project), "serve", "--addr",
                                   f"127.0.0.1:{port}", "--oauth-issuer", issuer.url,
                                   "--oauth-audience", issuer.audience, "--tls-cert", str(cert),
                                   "--tls-key", str(key)],
                         f"{base}/v2/health/ready", workdir / "vigie-tls.log") as server:
                bearer = {"authorization": f"Bearer {token}"}
                url = f"{base}/v1/models/{STORE_MODEL}/predict"
                checks["vigie /v1 by entity + OAuth2 + TLS"] = check_reply(
                    "vigie (TLS, OAuth2, by entity)", url, body_files["entity"].read_bytes(),
                    bearer)
                load.scenarios(server, "vigie /v1 by entity + OAuth2 + TLS", url,
                               body_files["entity"], bearer, rates, args.warmup)
                memory_after["vigie_tls"] = memory(server.pid)
                record["vigie_tls_metrics"] = server_metrics(base, bearer)
        else:
            log("no OAuth2 issuer (VIGIE_TEST_OIDC_* unset): Vigie ran without auth only")

        # ---- MLflow
        busy["mlflow"] = settle("mlflow models serve", args.wait_idle)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        # mlflow runs `uvicorn` from PATH: the venv's bin folder comes first.
        venv_bin = str(Path(sys.executable).parent)
        mlflow_bin = str(Path(venv_bin) / "mlflow")
        log(f"mlflow models serve on {base} ({args.mlflow_workers} workers)")
        with started("mlflow", [mlflow_bin, "models", "serve", "-m", str(model_dir),
                                "--env-manager", "local", "-p", str(port), "-h", "127.0.0.1",
                                "-w", str(args.mlflow_workers)], f"{base}/ping",
                     workdir / "mlflow.log",
                     env={"PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}"}) as server:
            memory_idle = memory(server.pid)
            url = f"{base}/invocations"
            checks["mlflow /invocations"] = check_reply(
                "mlflow", url, body_files["invocations"].read_bytes(), {})
            load.scenarios(server, "mlflow /invocations", url, body_files["invocations"], {},
                           rates, args.warmup)
            memory_after["mlflow"] = memory(server.pid)
            memory_after["mlflow_idle"] = memory_idle

        record.update({"runs": load.results, "memory_after_load": memory_after,
                       "checks": checks, "machine_busy_before": busy})
        table = report(load.results, memory_after, rates, issuer is not None)
        goals = targets(load.results, memory_after, issuer is not None)
        record["table"] = table
        record["targets"] = goals
        (OUT / "serve.json").write_text(json.dumps(record, indent=2, default=str))
        v = record["versions"]
        print(f"\n## Serving: Vigie against mlflow models serve\n\n"
              f"{record['date']}, commit {v['commit']}"
              f"{' (dirty tree)' if v['dirty_tree'] else ''}; {v['cpu']}, {v['cores']} cores;"
              f" {v['vigie']}, MLflow {v['mlflow']}, LightGBM {v['lightgbm']}, {v['oha']};"
              f" {args.rows:,} rows x {args.features} features, {args.trees} trees,"
              f" {args.leaves} leaves; oha -c {args.concurrency}, {args.duration:g} s per run,"
              f" MLflow with {args.mlflow_workers} workers; Vigie's audit log on {state_fs}.\n")
        print("\n".join(table))
        print()
        print("\n".join(goals))
        print(f"\nEvery figure: {OUT / 'serve.json'}")
    finally:
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
