#!/usr/bin/env python3
"""Vigie's feature store against Feast and Polars, on the same seeded data.

Run through `bash bench/features.sh`, which installs Feast and Polars in
bench/.venv, builds `vigie-bench-features` and starts a Kafka broker. Three
benchmarks, each printing Vigie, the peer and the ratio:

1. point-in-time join: label rows joined with every feature of a view as of
   each row's time, against Feast's `get_historical_features` (file offline
   store) and Polars' `join_asof` (the practical limit); then the same at 10x
   both sizes, Vigie alone;
2. online read of one entity's 20 features: Vigie's `OnlineStore::get` in
   process against Feast's `get_online_features` on its SQLite online store,
   same keys;
3. stream aggregation: events per second from a Kafka topic (and from an HTTP
   source's event log) into the online store, three windowed aggregations.

Results go to stdout as Markdown and to bench/out/features.json. Timings
live here, never in tests.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import warnings
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = BENCH / "out"
WORK = OUT / "features"

SEED = 42
N_FEATURES = 20
TTL_DAYS = 7
SPAN_DAYS = 30
START = dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc)
NAMES = [f"f{i:02d}" for i in range(N_FEATURES)]

# Seconds to wait, before each timed part, for the rest of the machine to go
# quiet (--wait-idle); bench/compare.py does the same.
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


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------


def make_join_data(label_rows: int, feature_rows: int, seed: int, folder: Path) -> dict:
    """Seeded feature rows (customer_id, ts, f00..f19) over 30 days, one
    customer per 20 rows, and label rows (customer_id, event_timestamp,
    label, row) at random times of the same days, as Parquet."""
    folder.mkdir(parents=True, exist_ok=True)
    features_path = folder / "features.parquet"
    labels_path = folder / "labels.parquet"
    customers = max(feature_rows // 20, 1)
    rng = np.random.default_rng(seed)
    span_us = SPAN_DAYS * 86_400 * 1_000_000
    start_us = int(START.timestamp() * 1_000_000)
    key = rng.integers(0, customers, feature_rows, dtype=np.int64)
    ts = start_us + rng.integers(0, span_us, feature_rows, dtype=np.int64)
    # One row per (customer, time): ties would make "the latest row" depend on tie-breaking.
    _, unique = np.unique(key * span_us + (ts - start_us), return_index=True)
    unique.sort()
    key, ts = key[unique], ts[unique]
    values = rng.normal(size=(len(key), N_FEATURES))
    table = pa.table(
        {"customer_id": key, "ts": pa.array(ts, pa.timestamp("us", tz="UTC"))}
        | {name: values[:, i] for i, name in enumerate(NAMES)}
    )
    pq.write_table(table, features_path)
    label_key = rng.integers(0, customers, label_rows, dtype=np.int64)
    label_ts = start_us + rng.integers(0, span_us, label_rows, dtype=np.int64)
    labels = pa.table({
        "customer_id": label_key,
        "event_timestamp": pa.array(label_ts, pa.timestamp("us", tz="UTC")),
        "label": rng.integers(0, 2, label_rows, dtype=np.int64),
        "row": np.arange(label_rows, dtype=np.int64),
    })
    pq.write_table(labels, labels_path)
    return {
        "features": features_path,
        "labels": labels_path,
        "feature_rows": len(key),
        "label_rows": label_rows,
        "customers": customers,
    }


# ---------------------------------------------------------------------------
# Vigie (the Rust binary)
# ---------------------------------------------------------------------------


def vigie(binary: Path, *args: str) -> dict:
    command = [str(binary), *args]
    log("  $ " + " ".join(command))
    done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(done.stdout)


# ---------------------------------------------------------------------------
# Polars
# ---------------------------------------------------------------------------


def polars_join(features: Path, labels: pl.DataFrame, repeats: int) -> tuple[dict, pl.DataFrame]:
    """Reads the feature file, sorts both sides by time and joins as of each
    label's time per customer, within the time-to-live: timed whole, and the
    join alone on frames already read and sorted."""
    whole, alone = [], []
    out = None
    for _ in range(repeats):
        gc.collect()
        started = time.perf_counter()
        feats = pl.read_parquet(features).sort("ts")
        left = labels.sort("event_timestamp")
        out = left.join_asof(feats, left_on="event_timestamp", right_on="ts", by="customer_id",
                             strategy="backward", tolerance=f"{TTL_DAYS}d")
        whole.append(time.perf_counter() - started)
        started = time.perf_counter()
        again = left.join_asof(feats, left_on="event_timestamp", right_on="ts", by="customer_id",
                               strategy="backward", tolerance=f"{TTL_DAYS}d")
        alone.append(time.perf_counter() - started)
        del again
    return {
        "what": "pl.read_parquet(features).sort(ts); labels.sort; join_asof(by=customer_id, "
                f"backward, tolerance={TTL_DAYS}d)",
        "join_seconds": whole,
        "join_median_s": statistics.median(whole),
        "join_only_median_s": statistics.median(alone),
        "threads": pl.thread_pool_size(),
    }, out.sort("row")


# ---------------------------------------------------------------------------
# Feast
# ---------------------------------------------------------------------------


def feast_repo(folder: Path, features: Path):
    """A local Feast repository over the feature file: file offline store,
    SQLite online store, one entity and one feature view of 20 features."""
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64

    if folder.exists():
        shutil.rmtree(folder)
    (folder / "data").mkdir(parents=True)
    (folder / "feature_store.yaml").write_text(
        "project: fsbench\n"
        "registry: data/registry.db\n"
        "provider: local\n"
        "online_store:\n"
        "  type: sqlite\n"
        "  path: data/online.db\n"
        "offline_store:\n"
        "  type: file\n"
        "entity_key_serialization_version: 3\n"
    )
    customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
    source = FileSource(name="stats", path=str(features), timestamp_field="ts")
    view = FeatureView(
        name="customer_stats",
        entities=[customer],
        ttl=dt.timedelta(days=TTL_DAYS),
        schema=[Field(name=name, dtype=Float64) for name in NAMES],
        source=source,
        online=True,
    )
    store = FeatureStore(repo_path=str(folder))
    store.apply([customer, view])
    return store


def feast_join(store, labels: pd.DataFrame, repeats: int) -> tuple[dict, pd.DataFrame]:
    refs = [f"customer_stats:{name}" for name in NAMES]
    seconds = []
    out = None
    for _ in range(repeats):
        gc.collect()
        started = time.perf_counter()
        out = store.get_historical_features(entity_df=labels, features=refs).to_df()
        seconds.append(time.perf_counter() - started)
    return {
        "what": "FeatureStore.get_historical_features(entity_df, 20 features).to_df(), "
                "file offline store",
        "join_seconds": seconds,
        "join_median_s": statistics.median(seconds),
    }, out.sort_values("row").reset_index(drop=True)


def feast_online(store, keys: list[int], warmup: int) -> dict:
    refs = [f"customer_stats:{name}" for name in NAMES]
    started = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):
        store.materialize(START - dt.timedelta(days=1), START + dt.timedelta(days=SPAN_DAYS + 1))
    materialize_s = time.perf_counter() - started
    for key in keys[:warmup]:
        store.get_online_features(features=refs, entity_rows=[{"customer_id": key}]).to_dict()
    samples = np.empty(len(keys))
    missing = 0
    gc.disable()
    try:
        for i, key in enumerate(keys):
            started = time.perf_counter_ns()
            row = store.get_online_features(
                features=refs, entity_rows=[{"customer_id": key}]).to_dict()
            samples[i] = time.perf_counter_ns() - started
            missing += row["f00"][0] is None
    finally:
        gc.enable()
    us = np.sort(samples) / 1e3
    return {
        "what": "FeatureStore.get_online_features(20 features, one entity row).to_dict(), "
                "SQLite online store",
        "materialize_s": materialize_s,
        "latency_us": {
            "median": float(np.median(us)),
            "p90": float(np.quantile(us, 0.9)),
            "p99": float(np.quantile(us, 0.99)),
            "mean": float(us.mean()),
            "calls": len(us),
        },
        "missing": int(missing),
    }


# ---------------------------------------------------------------------------
# Agreement
# ---------------------------------------------------------------------------


def disagreements(expected: np.ndarray, got: np.ndarray) -> int:
    """Cells where one side has a value and the other none, or they differ."""
    exp_nan, got_nan = np.isnan(expected), np.isnan(got)
    both = ~exp_nan & ~got_nan
    return int((exp_nan != got_nan).sum() + (both & (expected != got)).sum())


def compare_frames(reference, other) -> dict:
    """Cells of `other` that differ from `reference` (Polars' result), matched by the label
    table's `row`; rows of `reference` that `other` lacks are counted apart."""
    ref_rows = reference["row"].to_numpy()
    other_rows = np.asarray(other["row"])
    at = np.searchsorted(ref_rows, other_rows)
    ref = columns_of(reference, NAMES)
    got = columns_of(other, NAMES)
    per_feature = {name: disagreements(ref[name][at], got[name]) for name in NAMES}
    lacking = np.setdiff1d(ref_rows, other_rows)
    return {
        "cells_differing": sum(per_feature.values()),
        "cells": len(other_rows) * len(NAMES),
        "rows_missing": int(len(lacking)),
        # Whether the missing rows are exactly those with no feature value in the reference.
        "rows_missing_have_no_value": bool(np.isnan(ref[NAMES[0]][np.searchsorted(
            ref_rows, lacking)]).all()) if len(lacking) else None,
    }


def columns_of(frame, names) -> dict[str, np.ndarray]:
    if isinstance(frame, pl.DataFrame):
        return {n: frame[n].cast(pl.Float64).fill_null(np.nan).to_numpy() for n in names}
    return {n: frame[n].astype("float64").to_numpy() for n in names}


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------


def fmt(value, digits=2) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, (int, np.integer)):
        return f"{value:,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def verdict(met: bool | None) -> str:
    return "n/a" if met is None else ("met" if met else "**missed**")


def version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def main() -> None:
    global IDLE_WAIT
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vigie-bench", type=Path, required=True,
                        help="the vigie-bench-features binary (a release build)")
    parser.add_argument("--build-profile", default="release")
    parser.add_argument("--build-seconds", type=float)
    parser.add_argument("--label-rows", type=int, default=100_000)
    parser.add_argument("--feature-rows", type=int, default=1_000_000)
    parser.add_argument("--scale", type=int, default=10,
                        help="the second join's size, as a multiple of both (Vigie alone; 0: skip)")
    parser.add_argument("--repeats", type=int, default=3, help="timed joins, the median counts")
    parser.add_argument("--feast-repeats", type=int, default=3)
    parser.add_argument("--online-keys", type=int, default=100_000,
                        help="Vigie's timed online reads (random customers)")
    parser.add_argument("--feast-online-keys", type=int, default=5_000,
                        help="Feast's timed online reads: the first ones of Vigie's keys")
    parser.add_argument("--stream-events", type=int, default=1_000_000)
    parser.add_argument("--http-events", type=int, default=1_000_000,
                        help="events through an HTTP source's log (0: skip)")
    parser.add_argument("--brokers", default=os.environ.get("VIGIE_TEST_KAFKA_BROKERS"))
    parser.add_argument("--skip", default="", help="comma-separated: join,join10,feast,online,stream")
    parser.add_argument("--wait-idle", type=float, default=600,
                        help="seconds to wait for a quiet machine before each timed part")
    args = parser.parse_args()
    # Polars warns that it cannot check sortedness within `by` groups (both sides are sorted
    # by time here); Feast warns about its own deprecations.
    warnings.filterwarnings("ignore")
    IDLE_WAIT = args.wait_idle
    skip = set(filter(None, args.skip.split(",")))
    WORK.mkdir(parents=True, exist_ok=True)
    binary = args.vigie_bench
    results: dict = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "processor": platform.processor()},
        "versions": {"python": platform.python_version(), "feast": version("feast"),
                     "polars": version("polars"), "pandas": version("pandas"),
                     "pyarrow": version("pyarrow"), "dask": version("dask")},
        "build": {"profile": args.build_profile, "seconds": args.build_seconds},
        "settings": vars(args) | {"vigie_bench": str(args.vigie_bench)},
        # Where the Kafka broker (tansu) keeps its log: `memory`, or `s3` (a moto server on
        # the same cores), as scripts/services.sh started it.
        "kafka_storage": os.environ.get("VIGIE_KAFKA_STORAGE", "s3"),
    }
    results["settings"]["vigie_bench"] = str(binary)

    # 1. Point-in-time join.
    if "join" not in skip:
        log(f"join: {args.label_rows:,} label rows x {args.feature_rows:,} feature rows")
        data = make_join_data(args.label_rows, args.feature_rows, SEED, WORK / "join")
        join: dict = {"data": {k: (str(v) if isinstance(v, Path) else v) for k, v in data.items()}}
        busy = settle("Vigie's join")
        join["vigie"] = vigie(binary, "join", "--project", str(WORK / "join" / "vigie"),
                              "--features", str(data["features"]),
                              "--entities", str(data["labels"]),
                              "--repeats", str(args.repeats),
                              "--out", str(WORK / "join" / "vigie-joined.parquet"))
        join["vigie"]["busy_before"] = busy
        vigie_out = pl.read_parquet(WORK / "join" / "vigie-joined.parquet").sort("row")
        labels_pl = pl.read_parquet(data["labels"])
        busy = settle("Polars' join")
        join["polars"], polars_out = polars_join(data["features"], labels_pl, args.repeats)
        join["polars"]["busy_before"] = busy
        join["agreement"] = {"vigie_vs_polars": compare_frames(polars_out, vigie_out)}
        del vigie_out
        if "feast" not in skip:
            store = feast_repo(WORK / "feast", data["features"])
            labels_pd = pd.read_parquet(data["labels"])
            busy = settle("Feast's join")
            join["feast"], feast_out = feast_join(store, labels_pd, args.feast_repeats)
            join["feast"]["busy_before"] = busy
            join["agreement"]["feast_vs_polars"] = compare_frames(polars_out, feast_out)
            del feast_out
        del polars_out
        results["join"] = join

        # 2. Online reads, on the same view and customers.
        if "online" not in skip:
            rng = np.random.default_rng(SEED + 1)
            keys = [int(k) for k in rng.integers(0, data["customers"], args.online_keys)]
            keys_path = WORK / "online-keys.txt"
            keys_path.write_text("".join(f"{k}\n" for k in keys))
            online: dict = {}
            busy = settle("Vigie's online reads")
            online["vigie"] = vigie(binary, "online", "--project",
                                    str(WORK / "join" / "vigie"), "--keys", str(keys_path))
            online["vigie"]["busy_before"] = busy
            if "feast" not in skip:
                busy = settle("Feast's online reads")
                online["feast"] = feast_online(store, keys[:args.feast_online_keys], warmup=100)
                online["feast"]["busy_before"] = busy
            results["online"] = online

    if "join10" not in skip and args.scale > 0:
        labels, features = args.label_rows * args.scale, args.feature_rows * args.scale
        log(f"join x{args.scale}: {labels:,} label rows x {features:,} feature rows (Vigie alone)")
        # About 4 GB on disk at 10x (the file, the ingested part, the view): removed after.
        try:
            data = make_join_data(labels, features, SEED, WORK / "join10")
            busy = settle("Vigie's large join")
            large = vigie(binary, "join", "--project", str(WORK / "join10" / "vigie"),
                          "--features", str(data["features"]), "--entities", str(data["labels"]),
                          "--repeats", str(args.repeats))
            large["busy_before"] = busy
            results["join_large"] = {"scale": args.scale, "vigie": large}
        finally:
            shutil.rmtree(WORK / "join10", ignore_errors=True)

    # 3. Stream aggregation.
    if "stream" not in skip:
        stream: dict = {}
        if args.brokers:
            busy = settle("the Kafka stream")
            stream["kafka"] = vigie(binary, "stream", "--source", "kafka", "--brokers", args.brokers,
                                    "--project", str(WORK / "stream-kafka"),
                                    "--events", str(args.stream_events))
            stream["kafka"]["busy_before"] = busy
        else:
            log("stream: no Kafka broker (--brokers or VIGIE_TEST_KAFKA_BROKERS); skipped")
        if args.http_events > 0:
            busy = settle("the HTTP-source stream")
            stream["http"] = vigie(binary, "stream", "--source", "http",
                                   "--project", str(WORK / "stream-http"),
                                   "--events", str(args.http_events))
            stream["http"]["busy_before"] = busy
        results["stream"] = stream

    OUT.mkdir(exist_ok=True)
    (OUT / "features.json").write_text(json.dumps(results, indent=2, default=str))
    print(report(results))
    log(f"wrote {OUT / 'features.json'}")


def report(results: dict) -> str:
    lines = [f"# Feature store benchmarks ({results['date']})", ""]
    v = results["versions"]
    lines.append(f"Build profile `{results['build']['profile']}`; Python {v['python']}, "
                 f"Feast {v['feast']}, Polars {v['polars']}, pandas {v['pandas']}, "
                 f"pyarrow {v['pyarrow']}, dask {v['dask']}; Kafka: tansu, its log in "
                 f"{results.get('kafka_storage', 's3')}.")
    lines.append("")
    join = results.get("join")
    if join:
        d = join["data"]
        vj, pj, fj = join["vigie"], join["polars"], join.get("feast")
        lines += [f"## Point-in-time join: {d['label_rows']:,} label rows x "
                  f"{d['feature_rows']:,} feature rows, {N_FEATURES} features, "
                  f"{d['customers']:,} customers, ttl {TTL_DAYS} d", "",
                  "| system | join s (median) | what is timed |", "|---|---:|---|",
                  f"| Vigie | {fmt(vj['join_median_s'], 3)} | {vj['what']} |",
                  f"| Polars | {fmt(pj['join_median_s'], 3)} | {pj['what']} |"]
        if fj:
            lines.append(f"| Feast | {fmt(fj['join_median_s'], 3)} | {fj['what']} |")
        lines += ["", "| ratio | value | target | |", "|---|---:|---|---|"]
        if fj:
            speedup = fj["join_median_s"] / vj["join_median_s"]
            lines.append(f"| Feast s / Vigie s | {speedup:.1f}x | >= 20x | {verdict(speedup >= 20)} |")
        slowdown = vj["join_median_s"] / pj["join_median_s"]
        lines.append(f"| Vigie s / Polars s | {slowdown:.2f}x | <= 1.5x | "
                     f"{verdict(slowdown <= 1.5)} |")
        lines.append(f"| Vigie s / Polars join alone (frames in memory, sorted) | "
                     f"{vj['join_median_s'] / pj['join_only_median_s']:.2f}x | | |")
        lines += ["", "Vigie's join in parts: " + ", ".join(
            f"{k} {fmt(s, 3)} s" for k, s in vj["parts_s"].items()) + "; setup (untimed): " +
            ", ".join(f"{k} {fmt(s, 2)} s" for k, s in vj["setup_s"].items()) + ".", ""]
        agreement = join["agreement"]
        lines.append("Agreement with Polars (cells differing / cells compared; label rows "
                     "missing from the result): " + "; ".join(
                         f"{k}: {a['cells_differing']:,} / {a['cells']:,}; {a['rows_missing']:,}"
                         + (" (exactly the rows with no feature value)"
                            if a["rows_missing_have_no_value"] else "")
                         for k, a in agreement.items()) + ".")
        lines.append("")
    large = results.get("join_large")
    if large:
        lv = large["vigie"]
        lines += [f"## Point-in-time join x{large['scale']}: {lv['label_rows']:,} label rows x "
                  f"{lv['feature_rows']:,} feature rows (Vigie alone)", "",
                  f"Vigie {fmt(lv['join_median_s'], 3)} s (median of "
                  f"{len(lv['join_seconds'])}); parts: " + ", ".join(
                      f"{k} {fmt(s, 3)} s" for k, s in lv["parts_s"].items()) +
                  f"; peak RSS {fmt(lv['peak_rss_mib'], 0)} MiB.", ""]
    online = results.get("online")
    if online:
        vo, fo = online["vigie"], online.get("feast")
        lat = vo["latency_us"]
        lines += [f"## Online read of one entity's {N_FEATURES} features", "",
                  "| system | p50 us | p99 us | mean us | calls | materialize s |",
                  "|---|---:|---:|---:|---:|---:|",
                  f"| Vigie | {fmt(lat['median'])} | {fmt(lat['p99'])} | {fmt(lat['mean'])} | "
                  f"{lat['calls']:,} | {fmt(vo['materialize_s'])} |"]
        if fo:
            fl = fo["latency_us"]
            lines.append(f"| Feast | {fmt(fl['median'])} | {fmt(fl['p99'])} | {fmt(fl['mean'])} | "
                         f"{fl['calls']:,} | {fmt(fo['materialize_s'])} |")
        lines += ["", "| ratio | value | target | |", "|---|---:|---|---|",
                  f"| Vigie p99 | {fmt(lat['p99'])} us | < 100 us | {verdict(lat['p99'] < 100)} |"]
        if fo:
            fl = fo["latency_us"]
            p50 = fl["median"] / lat["median"]
            p99 = fl["p99"] / lat["p99"]
            lines.append(f"| Feast p50 / Vigie p50 | {p50:.0f}x | >= 20x | {verdict(p50 >= 20)} |")
            lines.append(f"| Feast p99 / Vigie p99 | {p99:.0f}x | >= 20x | {verdict(p99 >= 20)} |")
        lines.append("")
    stream = results.get("stream")
    if stream:
        lines += ["## Stream aggregation: three windowed aggregations into the online store", "",
                  "| source | events | seconds | events/s | micro-batch events/s (min / median / max) "
                  "| source alone events/s | target | |", "|---|---:|---:|---:|---|---:|---|---|"]
        for name, s in stream.items():
            mb = s["micro_batch_events_per_s"]
            ceiling = (s.get("source_ceiling") or {}).get("events_per_s")
            target = "200,000/s" if name == "kafka" else ""
            met = verdict(s["events_per_s"] >= 200_000) if name == "kafka" else ""
            lines.append(f"| {name} | {s['events']:,} | {fmt(s['seconds'])} | "
                         f"{fmt(s['events_per_s'])} | {fmt(mb['min'])} / {fmt(mb['median'])} / "
                         f"{fmt(mb['max'])} | {fmt(ceiling)} | {target} | {met} |")
        cpu = {name: s.get("cpu_per_second") or {} for name, s in stream.items()}
        lines += ["", "CPU per second of the timed part (the processor's thread / the whole "
                  "process, of 2 cores): " + ", ".join(
                      f"{name} {fmt(c.get('processor_thread'))} / {fmt(c.get('process'))}"
                      for name, c in cpu.items()) + "."]
        calls = {name: s.get("catch_up_calls") for name, s in stream.items()}
        lines += ["", "catch_up calls to read every event (tansu may report a partition's end "
                  "short of what it acknowledged): " +
                  ", ".join(f"{name} {n}" for name, n in calls.items()) + "."]
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
