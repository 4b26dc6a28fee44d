#!/usr/bin/env python3
"""Vigie's GBDT and random forest against LightGBM, XGBoost and scikit-learn.

Run through `bash bench/run.sh`, which installs the peers in bench/.venv and
builds the `vigie-bench` binary in release mode. For each data set (a seeded
synthetic table and ISLP's `Default.csv`), every model is trained on the same
80% split and measured on the same 20%:

- training time (fit only for peers; pipeline fit + encoding + fit for Vigie;
  reading the CSV is never timed);
- ROC-AUC and PR-AUC (average precision), all computed here with
  scikit-learn from each model's test probabilities;
- one-row prediction latency, median and p99 over single-row calls;
- batch throughput over the whole test split;
- one-row TreeSHAP latency (LightGBM `pred_contrib`, XGBoost `pred_contribs`).

Results go to stdout as Markdown and to bench/out/results.json. Timings live
here, never in tests.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import sklearn
import xgboost as xgb
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import train_test_split

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = BENCH / "out"

SEED = 42
ROUNDS = 100
LEAVES = 31
LEARNING_RATE = 0.1
TREES = 100
THREADS = 2

# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------


def make_synthetic(n_rows: int, seed: int, positive_rate: float = 0.02) -> pd.DataFrame:
    """A seeded 30-column table: 12 informative numeric columns with nonlinear
    effects and interactions, 2 informative string columns, 16 noise columns
    (some correlated with informative ones), a few missing values, and a 0/1
    `target` with about `positive_rate` positives."""
    rng = np.random.default_rng(seed)
    n = n_rows
    a = rng.normal(size=n)
    b = rng.normal(size=n)
    c = rng.uniform(-3, 3, n)
    d = rng.lognormal(0.0, 1.0, n)
    e = rng.normal(size=n)
    f = rng.exponential(1.0, n)
    g = rng.normal(size=n)
    h = rng.uniform(0, 1, n)
    i = rng.poisson(3.0, n).astype(float)
    j = rng.normal(size=n)
    k = rng.gamma(2.0, 2.0, n)
    m = rng.normal(size=n)
    regions = np.array([f"region_{r:02d}" for r in range(12)])
    region_p = rng.dirichlet(np.full(12, 2.0))
    region = rng.choice(12, size=n, p=region_p)
    region_effect = rng.normal(0.0, 0.6, 12)
    channels = np.array(["web", "store", "phone", "partner", "mail"])
    channel = rng.choice(5, size=n, p=[0.45, 0.25, 0.15, 0.1, 0.05])
    channel_effect = np.array([0.0, -0.3, 0.4, 0.8, -0.5])

    logit = (
        1.2 * np.sin(1.5 * a)
        + 0.8 * b * e
        + 1.0 * (c > 1.0)
        - 0.5 * (c < -2.0)
        + 0.6 * np.log1p(d)
        + 0.5 * (f > 2.0)
        - 0.35 * g**2
        + 0.9 * (h - 0.5) * (b > 0)
        + 0.15 * np.minimum(i, 8)
        + 0.4 * np.tanh(2 * j)
        - 0.05 * k
        + 0.3 * m * (channel == 3)
        + region_effect[region]
        + channel_effect[channel]
    )
    # Intercept chosen by bisection so that the mean probability is the target rate.
    low, high = -20.0, 5.0
    for _ in range(80):
        mid = (low + high) / 2
        if np.mean(1 / (1 + np.exp(-(logit + mid)))) > positive_rate:
            high = mid
        else:
            low = mid
    p = 1 / (1 + np.exp(-(logit + (low + high) / 2)))
    y = (rng.uniform(size=n) < p).astype(int)

    informative = [a, b, c, d, e, f, g, h, i, j, k, m]
    noise = [
        rng.normal(size=n),
        rng.uniform(size=n),
        rng.lognormal(0, 1.5, n),
        rng.poisson(1.0, n).astype(float),
        a + rng.normal(0, 2.0, n),  # correlated with informative columns
        d * rng.lognormal(0, 1.0, n),
        rng.normal(size=n),
        rng.standard_t(3, n),
        rng.integers(0, 100, n).astype(float),
        rng.normal(5, 3, n),
        c + rng.normal(0, 3.0, n),
        rng.exponential(2.0, n),
        rng.normal(size=n),
        rng.uniform(-1, 1, n),
        rng.beta(2, 5, n),
        rng.normal(size=n),
    ]
    columns = {}
    for idx, values in enumerate(informative + noise):
        columns[f"f{idx:02d}"] = values
    frame = pd.DataFrame(columns)
    # Missing at random in a few informative and noise columns.
    for name, rate in [("f03", 0.05), ("f05", 0.03), ("f09", 0.02), ("f15", 0.05)]:
        frame.loc[rng.uniform(size=n) < rate, name] = np.nan
    frame["region"] = regions[region]
    frame["channel"] = channels[channel]
    frame["target"] = y
    return frame


def write_split(frame: pd.DataFrame, label: str, name: str, seed: int) -> tuple[Path, Path]:
    train, test = train_test_split(
        frame, test_size=0.2, random_state=seed, stratify=frame[label]
    )
    train_path, test_path = OUT / f"{name}_train.csv", OUT / f"{name}_test.csv"
    train.to_csv(train_path, index=False, float_format="%.7g")
    test.to_csv(test_path, index=False, float_format="%.7g")
    return train_path, test_path


def islp_default_csv() -> Path:
    """ISLP's Default.csv, found without importing the package (its own
    dependencies, torch among them, are not installed)."""
    spec = importlib.util.find_spec("ISLP")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("ISLP is not installed: run bench/run.sh, which installs it")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "Default.csv"
    if not path.exists():
        raise SystemExit(f"ISLP has no data/Default.csv at {path}")
    return path


def load_for_peers(train_path: Path, test_path: Path, label: str, positive: str):
    """Reads the same CSVs Vigie reads. Returns pandas frames with string
    columns as categories (categories fixed from the training split), numpy
    arrays with ordinal codes (missing → NaN) for scikit-learn, the
    categorical mask, and 0/1 labels."""
    train = pd.read_csv(train_path)
    test = pd.read_csv(test_path)
    y_train = (train.pop(label).astype(str) == positive).to_numpy(dtype=int)
    y_test = (test.pop(label).astype(str) == positive).to_numpy(dtype=int)
    categorical = [
        c for c in train.columns
        if pd.api.types.is_string_dtype(train[c]) or train[c].dtype == object
    ]
    for c in categorical:
        categories = sorted(train[c].dropna().unique())
        train[c] = pd.Categorical(train[c], categories=categories)
        test[c] = pd.Categorical(test[c], categories=categories)

    def codes(frame: pd.DataFrame) -> np.ndarray:
        out = np.empty(frame.shape, dtype=np.float64)
        for idx, c in enumerate(frame.columns):
            if c in categorical:
                values = frame[c].cat.codes.to_numpy().astype(np.float64)
                values[values < 0] = np.nan
                out[:, idx] = values
            else:
                out[:, idx] = frame[c].to_numpy(dtype=np.float64)
        return out

    mask = np.array([c in categorical for c in train.columns])
    return train, test, codes(train), codes(test), mask, y_train, y_test


# ---------------------------------------------------------------------------
# Timing helpers
# ---------------------------------------------------------------------------

# Seconds to wait, before each model, for the rest of the machine to go quiet
# (set by --wait-idle). Two cores are easily taken by a build, and the
# OpenMP-based peers slow down far more than Vigie when they are.
IDLE_WAIT = 0.0
BUSY_LIMIT = 0.15


def cpu_busy(interval: float = 1.0) -> float | None:
    """Fraction of all cores busy over `interval` seconds (Linux), else None."""
    def read():
        with open("/proc/stat") as stat:
            values = [int(v) for v in stat.readline().split()[1:]]
        return sum(values), values[3] + values[4]

    try:
        total0, idle0 = read()
        time.sleep(interval)
        total1, idle1 = read()
    except (OSError, IndexError, ValueError):
        return None
    return 1.0 - (idle1 - idle0) / max(total1 - total0, 1)


def settle(what: str) -> float | None:
    """Waits up to IDLE_WAIT seconds for an idle machine; returns the busy
    fraction seen just before `what` runs."""
    busy = cpu_busy()
    deadline = time.monotonic() + IDLE_WAIT
    while busy is not None and busy > BUSY_LIMIT and time.monotonic() < deadline:
        time.sleep(5)
        busy = cpu_busy()
    if busy is not None and busy > BUSY_LIMIT:
        print(f"  warning: machine {busy:.0%} busy before {what}; its timings are skewed",
              file=sys.stderr, flush=True)
    return busy


def summarize_us(samples_ns: np.ndarray) -> dict:
    us = np.sort(samples_ns) / 1e3
    return {
        "median": float(np.median(us)),
        "p99": float(np.quantile(us, 0.99)),
        "mean": float(us.mean()),
        "min": float(us[0]),
        "calls": int(len(us)),
    }


def time_calls(fn, inputs: list, warmup: int = 100) -> dict:
    """Per-call latency of `fn(x)` for each x, after a warm-up, with the
    garbage collector paused so its pauses do not land on a peer."""
    for x in inputs[:warmup]:
        fn(x)
    samples = np.empty(len(inputs))
    gc.disable()
    try:
        for idx, x in enumerate(inputs):
            start = time.perf_counter_ns()
            fn(x)
            samples[idx] = time.perf_counter_ns() - start
    finally:
        gc.enable()
    return summarize_us(samples)


def best_of(measurements: dict) -> tuple[str, dict]:
    """The fastest (by median) of several ways to make the same call."""
    name = min(measurements, key=lambda k: measurements[k]["median"])
    return name, measurements[name]


def time_batch(fn, repeats: int = 3) -> tuple[float, np.ndarray]:
    seconds = []
    result = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        seconds.append(time.perf_counter() - start)
    return float(np.median(seconds)), result


# ---------------------------------------------------------------------------
# Peers
# ---------------------------------------------------------------------------


def run_peer(name, model, fit_x, test_x, y_train, y_test, row_inputs, shap=None):
    """Fits `model`, scores the test split, times single rows.

    `row_inputs` maps a way of calling (e.g. "predict_proba(DataFrame)") to
    (callable, list of single-row inputs); the fastest counts in the table and
    every one is kept in the JSON. `shap` is the same for one-row contributions.
    """
    gc.collect()
    busy = settle(name)
    start = time.perf_counter()
    model.fit(fit_x, y_train)
    train_seconds = time.perf_counter() - start
    batch_seconds, proba = time_batch(lambda: model.predict_proba(test_x)[:, 1])
    latency_all = {how: time_calls(fn, rows) for how, (fn, rows) in row_inputs.items()}
    latency_how, latency = best_of(latency_all)
    result = {
        "model": name,
        "train_seconds": train_seconds,
        "roc_auc": float(roc_auc_score(y_test, proba)),
        "pr_auc": float(average_precision_score(y_test, proba)),
        "latency_us": latency,
        "latency_path": latency_how,
        "latency_all_paths": latency_all,
        "batch_rows_per_s": len(y_test) / batch_seconds,
        "batch_seconds": batch_seconds,
        "machine_busy_before": busy,
    }
    if shap:
        shap_all = {how: time_calls(fn(model), rows) for how, (fn, rows) in shap.items()}
        shap_how, shap_best = best_of(shap_all)
        result.update(shap_us=shap_best, shap_path=shap_how, shap_all_paths=shap_all)
    result["machine_busy_after"] = cpu_busy()
    print(f"  {name}: trained in {train_seconds:.2f} s, ROC-AUC {result['roc_auc']:.4f}",
          file=sys.stderr, flush=True)
    return result


def run_peers(data, latency_rows: int, seed: int) -> list[dict]:
    train_df, test_df, train_np, test_np, cat_mask, y_train, y_test = data
    n = min(latency_rows, len(test_df))
    df_rows = [test_df.iloc[[i]] for i in range(n)]
    np_rows = [test_np[i : i + 1] for i in range(n)]
    results = []

    lgbm = lgb.LGBMClassifier(
        n_estimators=ROUNDS, num_leaves=LEAVES, learning_rate=LEARNING_RATE,
        n_jobs=THREADS, random_state=seed, verbose=-1,
    )
    results.append(run_peer(
        "LightGBM", lgbm, train_df, test_df, y_train, y_test,
        {
            "predict_proba(DataFrame)": (lambda x: lgbm.predict_proba(x), df_rows),
            "booster_.predict(ndarray)": (lambda x: lgbm.booster_.predict(x), np_rows),
            "booster_.predict(ndarray, num_threads=1)":
                (lambda x: lgbm.booster_.predict(x, num_threads=1), np_rows),
        },
        shap={
            "predict(DataFrame, pred_contrib=True)":
                (lambda m: (lambda x: m.predict(x, pred_contrib=True)), df_rows),
            "booster_.predict(ndarray, pred_contrib=True)":
                (lambda m: (lambda x: m.booster_.predict(x, pred_contrib=True)), np_rows),
            "booster_.predict(ndarray, pred_contrib=True, num_threads=1)": (
                lambda m: (lambda x: m.booster_.predict(x, pred_contrib=True, num_threads=1)),
                np_rows,
            ),
        },
    ))

    xgbm = xgb.XGBClassifier(
        n_estimators=ROUNDS, max_leaves=LEAVES, max_depth=0, grow_policy="lossguide",
        learning_rate=LEARNING_RATE, tree_method="hist", n_jobs=THREADS,
        enable_categorical=True, random_state=seed,
    )
    results.append(run_peer(
        "XGBoost", xgbm, train_df, test_df, y_train, y_test,
        {
            "predict_proba(DataFrame)": (lambda x: xgbm.predict_proba(x), df_rows),
            "booster.inplace_predict(ndarray)":
                (lambda x: xgbm.get_booster().inplace_predict(x), np_rows),
        },
        shap={
            "booster.predict(DMatrix(DataFrame), pred_contribs=True)": (
                lambda m: (lambda x: m.get_booster().predict(
                    xgb.DMatrix(x, enable_categorical=True), pred_contribs=True)),
                df_rows,
            ),
        },
    ))

    hgb = HistGradientBoostingClassifier(
        max_iter=ROUNDS, max_leaf_nodes=LEAVES, learning_rate=LEARNING_RATE,
        early_stopping=False, categorical_features=cat_mask if cat_mask.any() else None,
        random_state=seed,
    )
    results.append(run_peer(
        "sklearn HistGradientBoosting", hgb, train_np, test_np, y_train, y_test,
        {"predict_proba(ndarray)": (lambda x: hgb.predict_proba(x), np_rows)},
    ))

    rf = RandomForestClassifier(n_estimators=TREES, n_jobs=THREADS, random_state=seed)
    results.append(run_peer(
        "sklearn RandomForest", rf, train_np, test_np, y_train, y_test,
        {"predict_proba(ndarray)": (lambda x: rf.predict_proba(x), np_rows)},
    ))
    return results


# ---------------------------------------------------------------------------
# Vigie
# ---------------------------------------------------------------------------


def run_vigie(binary: Path, name: str, train_path, test_path, label, y_test, args):
    predictions_path = OUT / f"{name}_vigie_predictions.csv"
    command = [
        str(binary), "--train", str(train_path), "--test", str(test_path),
        "--label", label, "--rounds", str(ROUNDS), "--leaves", str(LEAVES),
        "--learning-rate", str(LEARNING_RATE), "--trees", str(TREES),
        "--latency-rows", str(args.latency_rows), "--seed", str(args.seed),
        "--predictions", str(predictions_path),
    ]
    gc.collect()
    busy = settle("vigie-bench")
    completed = subprocess.run(command, check=True, capture_output=True, text=True)
    busy_after = cpu_busy()
    report = json.loads(completed.stdout)
    probabilities = pd.read_csv(predictions_path)
    results = []
    for key, display in [("gbdt", "Vigie GBDT"), ("random_forest", "Vigie RandomForest")]:
        r = report[key]
        proba = probabilities[key].to_numpy()
        roc = float(roc_auc_score(y_test, proba))
        pr = float(average_precision_score(y_test, proba))
        results.append({
            "model": display,
            "train_seconds": r["train_seconds"],
            "roc_auc": roc,
            "pr_auc": pr,
            "vigie_metrics": {"roc_auc": r["roc_auc"], "pr_auc": r["pr_auc"]},
            "latency_us": r["latency_us"],
            "latency_path": "Model::predict_row(&[Value], &mut RowScratch)",
            "batch_rows_per_s": r["batch_rows_per_s"],
            "batch_seconds": r["batch_seconds"],
            "shap_us": r["shap_us"],
            "shap_path": "transform_row_into + contributions_into + fold_contributions",
            "details": r,
            "machine_busy_before": busy,
            "machine_busy_after": busy_after,
        })
        print(f"  {display}: trained in {r['train_seconds']:.2f} s, ROC-AUC {roc:.4f}",
              file=sys.stderr, flush=True)
    return results, {k: v for k, v in report.items() if k not in ("gbdt", "random_forest")}


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------


def fmt(x, digits=1):
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "n/a"
    return f"{x:,.{digits}f}"


def markdown_table(results: list[dict]) -> str:
    header = ("| model | train s | ROC-AUC | PR-AUC | 1-row p50 µs | 1-row p99 µs "
              "| batch rows/s | SHAP 1-row µs |")
    lines = [header, "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        shap = r.get("shap_us")
        busy = max(r.get("machine_busy_before") or 0, r.get("machine_busy_after") or 0)
        mark = " †" if busy > BUSY_LIMIT else ""
        lines.append(
            f"| {r['model']}{mark} | {fmt(r['train_seconds'], 2)} | {r['roc_auc']:.4f} "
            f"| {r['pr_auc']:.4f} | {fmt(r['latency_us']['median'])} "
            f"| {fmt(r['latency_us']['p99'])} | {fmt(r['batch_rows_per_s'], 0)} "
            f"| {fmt(shap['median']) if shap else 'n/a'} |"
        )
    if any(max(r.get("machine_busy_before") or 0, r.get("machine_busy_after") or 0)
           > BUSY_LIMIT for r in results):
        lines.append(f"\n† the machine was more than {BUSY_LIMIT:.0%} busy with other work "
                     "just before or after this model ran: its timings are skewed.")
    return "\n".join(lines)


def ratios(results: list[dict]) -> dict:
    by = {r["model"]: r for r in results}
    gbdt, rf = by["Vigie GBDT"], by["Vigie RandomForest"]
    lgbm, skrf = by["LightGBM"], by["sklearn RandomForest"]
    gbdt_peers = [by[m] for m in ("LightGBM", "XGBoost", "sklearn HistGradientBoosting")]
    shap_peers = [r for r in gbdt_peers if r.get("shap_us")]
    all_peers = gbdt_peers + [skrf]

    def best(peers, key, pick):
        return pick(peers, key=key)

    fastest_train = best(gbdt_peers, lambda r: r["train_seconds"], min)
    best_auc = best(gbdt_peers, lambda r: r["roc_auc"], max)
    fastest_row = best(all_peers, lambda r: r["latency_us"]["median"], min)
    fastest_batch = best(all_peers, lambda r: r["batch_rows_per_s"], max)
    fastest_shap = best(shap_peers, lambda r: r["shap_us"]["median"], min)
    return {
        "gbdt_train_speedup_vs_lightgbm": lgbm["train_seconds"] / gbdt["train_seconds"],
        "gbdt_roc_auc_diff_vs_lightgbm": gbdt["roc_auc"] - lgbm["roc_auc"],
        "gbdt_pr_auc_diff_vs_lightgbm": gbdt["pr_auc"] - lgbm["pr_auc"],
        "rf_train_speedup_vs_sklearn": skrf["train_seconds"] / rf["train_seconds"],
        "rf_roc_auc_diff_vs_sklearn": rf["roc_auc"] - skrf["roc_auc"],
        "rf_pr_auc_diff_vs_sklearn": rf["pr_auc"] - skrf["pr_auc"],
        "row_latency_speedup_vs_lightgbm":
            lgbm["latency_us"]["median"] / gbdt["latency_us"]["median"],
        "row_latency_p99_speedup_vs_lightgbm":
            lgbm["latency_us"]["p99"] / gbdt["latency_us"]["p99"],
        "shap_speedup_vs_lightgbm": lgbm["shap_us"]["median"] / gbdt["shap_us"]["median"],
        "best_peer": {
            "gbdt_train": [fastest_train["model"],
                           fastest_train["train_seconds"] / gbdt["train_seconds"]],
            "gbdt_roc_auc": [best_auc["model"], gbdt["roc_auc"] - best_auc["roc_auc"]],
            "row_latency": [fastest_row["model"],
                            fastest_row["latency_us"]["median"] / gbdt["latency_us"]["median"]],
            "batch_throughput": [fastest_batch["model"],
                                 gbdt["batch_rows_per_s"] / fastest_batch["batch_rows_per_s"]],
            "shap": [fastest_shap["model"],
                     fastest_shap["shap_us"]["median"] / gbdt["shap_us"]["median"]],
        },
    }


def ratios_markdown(q: dict) -> str:
    def check(ok: bool) -> str:
        return "met" if ok else "**missed**"

    b = q["best_peer"]
    rows = [
        ("GBDT train speedup vs LightGBM (LightGBM s / Vigie s)",
         f"{q['gbdt_train_speedup_vs_lightgbm']:.2f}×",
         "> 1×, aim 1.5×", check(q["gbdt_train_speedup_vs_lightgbm"] >= 1.5)),
        ("GBDT ROC-AUC − LightGBM", f"{q['gbdt_roc_auc_diff_vs_lightgbm']:+.4f}",
         "≥ −0.002", check(q["gbdt_roc_auc_diff_vs_lightgbm"] >= -0.002)),
        ("GBDT PR-AUC − LightGBM", f"{q['gbdt_pr_auc_diff_vs_lightgbm']:+.4f}", "", ""),
        ("RF train speedup vs sklearn RF", f"{q['rf_train_speedup_vs_sklearn']:.2f}×",
         "≥ 3×", check(q["rf_train_speedup_vs_sklearn"] >= 3)),
        ("RF ROC-AUC − sklearn RF", f"{q['rf_roc_auc_diff_vs_sklearn']:+.4f}",
         "≥ −0.002", check(q["rf_roc_auc_diff_vs_sklearn"] >= -0.002)),
        ("RF PR-AUC − sklearn RF", f"{q['rf_pr_auc_diff_vs_sklearn']:+.4f}", "", ""),
        ("1-row latency speedup vs LightGBM (p50)",
         f"{q['row_latency_speedup_vs_lightgbm']:.1f}×", "≥ 10×",
         check(q["row_latency_speedup_vs_lightgbm"] >= 10)),
        ("1-row latency speedup vs LightGBM (p99)",
         f"{q['row_latency_p99_speedup_vs_lightgbm']:.1f}×", "", ""),
        ("TreeSHAP 1-row speedup vs LightGBM pred_contrib",
         f"{q['shap_speedup_vs_lightgbm']:.1f}×", "≥ 10×",
         check(q["shap_speedup_vs_lightgbm"] >= 10)),
        (f"GBDT train speedup vs best peer ({b['gbdt_train'][0]})",
         f"{b['gbdt_train'][1]:.2f}×", "", ""),
        (f"GBDT ROC-AUC − best peer ({b['gbdt_roc_auc'][0]})",
         f"{b['gbdt_roc_auc'][1]:+.4f}", "", ""),
        (f"1-row latency speedup vs best peer ({b['row_latency'][0]})",
         f"{b['row_latency'][1]:.1f}×", "", ""),
        (f"GBDT batch throughput vs best peer ({b['batch_throughput'][0]})",
         f"{b['batch_throughput'][1]:.2f}×", "", ""),
        (f"TreeSHAP speedup vs best peer ({b['shap'][0]})", f"{b['shap'][1]:.1f}×", "", ""),
    ]
    lines = ["| ratio | value | target | |", "|---|---:|---|---|"]
    lines += [f"| {a} | {v} | {t} | {c} |" for a, v, t, c in rows]
    return "\n".join(lines)


def environment() -> dict:
    def git(*args):
        try:
            return subprocess.run(["git", "-C", str(REPO), *args], check=True,
                                  capture_output=True, text=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None

    cpu = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    dirty = git("status", "--porcelain")
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "vigie_commit": git("rev-parse", "--short", "HEAD"),
        "vigie_worktree_dirty": bool(dirty),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "scikit-learn": sklearn.__version__,
        "lightgbm": lgb.__version__,
        "xgboost": xgb.__version__,
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vigie-bench", type=Path, required=True,
                        help="the release-built vigie-bench binary")
    parser.add_argument("--rows", type=int, default=200_000,
                        help="rows of the synthetic table (default 200000)")
    parser.add_argument("--latency-rows", type=int, default=2000,
                        help="test rows scored one at a time (default 2000)")
    parser.add_argument("--datasets", default="synthetic,default",
                        help="comma-separated: synthetic, default")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--wait-idle", type=float, default=600.0,
                        help="seconds to wait before each model for other work on the "
                             "machine to stop (default 600; 0 to not wait)")
    args = parser.parse_args()
    global IDLE_WAIT
    IDLE_WAIT = args.wait_idle

    OUT.mkdir(parents=True, exist_ok=True)
    env = environment()
    print("# Vigie vs LightGBM, XGBoost, scikit-learn\n")
    print(f"{env['date']} · {env['cpu']} · {env['cores']} cores · {env['platform']}  ")
    print(f"Vigie {env['vigie_commit']}{' (uncommitted changes)' if env['vigie_worktree_dirty'] else ''}"
          f" · Python {env['python']} · numpy {env['numpy']} · pandas {env['pandas']}"
          f" · scikit-learn {env['scikit-learn']} · LightGBM {env['lightgbm']}"
          f" · XGBoost {env['xgboost']}\n")
    print(f"GBDTs: {ROUNDS} rounds, {LEAVES} leaves, learning rate {LEARNING_RATE}; "
          f"forests: {TREES} trees; {THREADS} threads everywhere; one-row figures over "
          f"{args.latency_rows} test rows.\n", flush=True)

    datasets = []
    wanted = set(args.datasets.split(","))
    if "synthetic" in wanted:
        print(f"generating the synthetic table ({args.rows:,} rows)...", file=sys.stderr,
              flush=True)
        frame = make_synthetic(args.rows, args.seed)
        train_path, test_path = write_split(frame, "target", "synthetic", args.seed)
        datasets.append(("synthetic", f"synthetic {args.rows:,}×30, "
                         f"{frame['target'].mean():.2%} positives",
                         train_path, test_path, "target", "1"))
    if "default" in wanted:
        source = islp_default_csv()
        shutil.copyfile(source, OUT / "Default.csv")
        frame = pd.read_csv(OUT / "Default.csv")
        train_path, test_path = write_split(frame, "default", "default", args.seed)
        datasets.append(("default", f"ISLP Default {len(frame):,}×3, "
                         f"{(frame['default'] == 'Yes').mean():.2%} positives",
                         train_path, test_path, "default", "Yes"))

    report = {"environment": env, "settings": {
        "rounds": ROUNDS, "leaves": LEAVES, "learning_rate": LEARNING_RATE,
        "trees": TREES, "threads": THREADS, "seed": args.seed,
        "latency_rows": args.latency_rows, "wait_idle_seconds": args.wait_idle,
    }, "datasets": {}}
    for key, description, train_path, test_path, label, positive in datasets:
        print(f"{description}: running peers...", file=sys.stderr, flush=True)
        data = load_for_peers(train_path, test_path, label, positive)
        peers = run_peers(data, args.latency_rows, args.seed)
        print(f"{description}: running vigie-bench...", file=sys.stderr, flush=True)
        vigie, vigie_info = run_vigie(args.vigie_bench, key, train_path, test_path, label,
                                      data[-1], args)
        results = vigie + peers
        q = ratios(results)
        report["datasets"][key] = {
            "description": description,
            "train_rows": int(len(data[-2])),
            "test_rows": int(len(data[-1])),
            "results": results,
            "ratios": q,
            "vigie_bench": vigie_info,
        }
        print(f"## {description} (train {len(data[-2]):,} / test {len(data[-1]):,} rows)\n")
        print(markdown_table(results))
        print("\nRatios:\n")
        print(ratios_markdown(q))
        print(flush=True)

    if hasattr(os, "getloadavg"):
        env["load_average_at_end"] = list(os.getloadavg())
    (OUT / "results.json").write_text(json.dumps(report, indent=2))
    print("Full results (every call path, p99s, Vigie's own metrics): bench/out/results.json")


if __name__ == "__main__":
    main()
