#!/usr/bin/env python3
"""Vigie's forecasting against statsforecast and mlforecast (LightGBM).

Run through `bash bench/forecast/run.sh`, which installs the peers and the
data packages in bench/forecast/.venv. Four data sets, each cut at a fixed
point: the last H periods of every series are held out, the rest is the
history every method sees.

- revenue: examples/forecasting/generate_revenue.py, 1,000 daily store ×
  product-line series (700 days for stores open from the start), H = 28,
  season 7, future covariates promo and price;
- bikeshare: ISLP's Bikeshare.csv (Washington DC, 2011, hourly), casual and
  registered riders as two series, the 12 weeks + 48 hours ending on
  2011-11-30 23:00, H = 48, season 24, weather and calendar as future
  covariates (observed weather stands in for a forecast);
- airline: monthly airline passengers 1949–1960 (sktime's wheel), H = 12,
  season 12;
- shampoo: monthly shampoo sales, 36 months (sktime's wheel), H = 6, season
  12: 30 months of history is 2 seasons + H, H = 12 would leave 24.

Methods: Vigie (`vigie train --task forecast` then `vigie forecast`, two
processes, into a temporary project), statsforecast SeasonalNaive, AutoETS,
AutoTheta (80/95% levels), mlforecast with LightGBM (lags, rolling means,
date features, the future covariates, conformal intervals). Scores, all
computed here on the held-out periods:

- MASE: per series, mean |error| over H divided by the in-sample MAE of the
  seasonal naive forecast (lag = season) on the history, then averaged over
  series (series whose scale is 0 are left out and counted);
- sMAPE: per series, mean of 200·|y − ŷ| / (|y| + |ŷ|) (0 when both are 0),
  averaged over series;
- coverage: share of held-out values inside the 80% and 95% intervals, over
  all series and periods;
- MSIS 95%: the M4 competition's mean scaled interval score of the 95%
  intervals: per series, mean over H of the interval's width plus 40 times
  how far the value fell outside it, divided by the same scale as MASE,
  then averaged over series (lower is better: narrow intervals that still
  hold the values; msis80 in the JSON, with 10 times);
- wall s: fit + forecast, after an untimed warm-up run of the same method
  on one series of the same data (first-call costs excluded). Peers: in
  this process on frames already loaded. Vigie: the two processes, CSV
  reading included; a note under the table gives its `train_seconds`,
  the fit and backtest timed inside `vigie train`, the like of the peers'
  in-memory time.

One held-out window per data set says little: bikeshare's is a single
Tuesday and Wednesday. So every method also runs on bikeshare cut at 15 more
points of 2011, 19 days apart (`--cutoffs N`; scores only, means over the
cut-offs in a second table).

Prints the Markdown tables and writes bench/out/forecast.json. Timings live
here, never in tests.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import io
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import lightgbm as lgb
import mlforecast
import numpy as np
import pandas as pd
import statsforecast
from mlforecast import MLForecast
from mlforecast.lag_transforms import RollingMean
from mlforecast.target_transforms import Differences, LocalStandardScaler
from mlforecast.utils import PredictionIntervals
from statsforecast import StatsForecast
from statsforecast.models import AutoETS, AutoTheta, SeasonalNaive

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent.parent
OUT = REPO / "bench" / "out"
WORK = OUT / "forecast"
GENERATOR = REPO / "examples" / "forecasting" / "generate_revenue.py"

SEED = 42
THREADS = 2
LEVELS = [80, 95]
VIGIE = "Vigie"
LGBM = "mlforecast LightGBM"
PEERS = ["SeasonalNaive", "AutoETS", "AutoTheta", LGBM]

# Seconds to wait, before each timed method, for the rest of the machine to
# go quiet (--wait-idle); a method that ran on a busy machine is marked †.
IDLE_WAIT = 0.0
BUSY_LIMIT = 0.15
# Whether the methods being run are timed (not on bikeshare's extra cut-offs).
TIMED = True
# A timed method whose first run took less than REPEAT_BELOW seconds runs
# REPEATS times in all, one after the other, and its time is the median: one
# run of a few tens of milliseconds measures the machine's noise more than
# the method.
REPEATS = 5
REPEAT_BELOW = 1.0
# Seconds one Vigie command may run before it counts as failed (--vigie-timeout).
VIGIE_TIMEOUT = 1800.0
# Arguments added to every `vigie train` (--vigie-train-arg).
EXTRA_TRAIN_ARGS: list[str] = []

# ---------------------------------------------------------------------------
# Data sets
# ---------------------------------------------------------------------------


@dataclass
class Dataset:
    """One benchmark data set, in Vigie's long form (`frame`) and the peers'
    (`unique_id`, `ds`, `y` plus covariates)."""

    key: str
    description: str
    frame: pd.DataFrame           # series columns, time, target, covariates; sorted
    series: list[str]             # series columns ([] for a single series)
    time: str
    target: str
    covariates: list[str]         # future covariates (known over the horizon)
    horizon: int
    season: int
    vigie_frequency: str          # H, D, M
    pandas_frequency: str         # h, D, MS
    time_format: str              # strftime for the CSVs Vigie reads
    mlf: dict = field(default_factory=dict)  # mlforecast settings
    vigie_args: list[str] = field(default_factory=list)  # extra `vigie train` arguments
    history: pd.DataFrame = None  # peers' frame, the history
    test: pd.DataFrame = None     # peers' frame, the held-out periods

    def split(self) -> None:
        frame = self.frame
        peers = pd.DataFrame({
            "unique_id": (frame[self.series].astype(str).agg("/".join, axis=1)
                          if self.series else self.key),
            "ds": frame[self.time],
            "y": frame[self.target].astype(float),
        })
        for c in self.covariates:
            peers[c] = frame[c].astype(float)
        peers = peers.sort_values(["unique_id", "ds"], kind="stable").reset_index(drop=True)
        rank_from_end = peers.groupby("unique_id").cumcount(ascending=False)
        self.test = peers[rank_from_end < self.horizon].reset_index(drop=True)
        self.history = peers[rank_from_end >= self.horizon].reset_index(drop=True)
        shortest = int(self.history.groupby("unique_id").size().min())
        if shortest < 2 * self.season + self.horizon:
            print(f"  warning: {self.key}: a series has {shortest} periods of history, fewer "
                  f"than 2 seasons + H = {2 * self.season + self.horizon}", file=sys.stderr)

    @property
    def cutoffs(self) -> tuple[str, str]:
        last = self.history.groupby("unique_id")["ds"].max()
        return last.min().strftime(self.time_format), last.max().strftime(self.time_format)


def site_file(package: str, *parts: str) -> Path:
    """A file shipped inside an installed package, found without importing it
    (ISLP's own dependencies, torch among them, are not installed)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{package} is not installed: run bench/forecast/run.sh")
    path = Path(list(spec.submodule_search_locations)[0]).joinpath(*parts)
    if not path.exists():
        raise SystemExit(f"{package} has no {'/'.join(parts)}")
    return path


def sktime_csv(wheel: Path, folder: str) -> pd.DataFrame:
    """A data file from sktime's wheel (a zip), read without installing sktime."""
    suffix = f"sktime/datasets/data/{folder}/{folder}.csv"
    with zipfile.ZipFile(wheel) as archive:
        names = [n for n in archive.namelist() if n.endswith(suffix)]
        if not names:
            raise SystemExit(f"{wheel.name} has no {suffix}")
        return pd.read_csv(io.BytesIO(archive.read(names[0])))


def revenue(series: int, days: int, seed: int) -> Dataset:
    path = WORK / "revenue_source.csv"
    # New stores keep ≥ 92 days of history once 28 are held out: mlforecast's
    # conformal intervals need n_windows·H + 1 = 85 points in every series.
    subprocess.run([sys.executable, str(GENERATOR), "--series", str(series), "--seed",
                    str(seed), "--frequency", "D", "--periods", str(days), "--start",
                    "2023-01-02", "--horizon", "28", "--min-length", "120", "--out",
                    str(path)], check=True)
    frame = pd.read_csv(path, parse_dates=["date"])
    n = frame.groupby(["store", "product_line"]).ngroups
    return Dataset(
        key="revenue",
        description=f"revenue: {n:,} daily series, {days} days from 2023-01-02 for "
                    f"stores open from the start, {len(frame):,} rows (generator seed {seed})",
        frame=frame, series=["store", "product_line"], time="date", target="revenue",
        covariates=["promo", "price"], horizon=28, season=7, vigie_frequency="D",
        pandas_frequency="D", time_format="%Y-%m-%d",
        mlf={"lags": list(range(1, 8)) + [14, 21, 28],
             "lag_transforms": lambda: {1: [RollingMean(window_size=7),
                                            RollingMean(window_size=28)],
                                        7: [RollingMean(window_size=4)]},
             "date_features": ["dayofweek", "dayofyear", "month"],
             "target_transforms": lambda: [LocalStandardScaler()], "n_windows": 3,
             "min_child_samples": 20})


BIKESHARE_END = pd.Timestamp("2011-11-30 23:00")


def bikeshare(end: pd.Timestamp = BIKESHARE_END) -> Dataset:
    """The two rider series over the 12 weeks + 48 hours ending at `end`."""
    raw = pd.read_csv(site_file("ISLP", "data", "Bikeshare.csv"))
    raw["time"] = (pd.Timestamp("2011-01-01") + pd.to_timedelta(raw["day"] - 1, unit="D")
                   + pd.to_timedelta(raw["hr"].astype(int), unit="h"))
    weather = {"clear": 1, "cloudy/misty": 2, "light rain/snow": 3, "heavy rain/snow": 4}
    raw["weather"] = raw["weathersit"].map(weather)
    # The file has no row for 115 of 2011's 8,760 hours (no rentals, or outages):
    # a regular hourly grid with 0 riders there and the covariates carried forward.
    grid = pd.date_range(raw["time"].min(), raw["time"].max(), freq="h")
    raw = raw.set_index("time").reindex(grid)
    missing = int(raw["bikers"].isna().sum())
    for c in ["casual", "registered"]:
        raw[c] = raw[c].fillna(0.0)
    covariates = ["temp", "hum", "windspeed", "weather", "workingday", "holiday"]
    raw[covariates] = raw[covariates].ffill()
    horizon, history_hours = 48, 12 * 7 * 24
    raw = raw.loc[end - pd.Timedelta(hours=history_hours + horizon - 1):end]
    raw.index.name = "time"
    frame = (raw.reset_index()
             .melt(id_vars=["time"] + covariates, value_vars=["casual", "registered"],
                   var_name="rider", value_name="count")
             [["rider", "time", "count"] + covariates]
             .sort_values(["rider", "time"]).reset_index(drop=True))
    return Dataset(
        key="bikeshare" if end == BIKESHARE_END else f"bikeshare_{end:%Y%m%d}",
        description=f"bikeshare: ISLP Bikeshare, casual and registered riders, hourly, "
                    f"{raw.index.min():%Y-%m-%d} to {end:%Y-%m-%d %H:%M} ({missing} of the "
                    f"year's hours filled with 0)",
        frame=frame, series=["rider"], time="time", target="count", covariates=covariates,
        horizon=horizon, season=24, vigie_frequency="H", pandas_frequency="h",
        time_format="%Y-%m-%dT%H:%M:%S",
        mlf={"lags": list(range(1, 25)) + [48, 168],
             "lag_transforms": lambda: {1: [RollingMean(window_size=24)],
                                        24: [RollingMean(window_size=7)]},
             "date_features": ["hour", "dayofweek"],
             "target_transforms": lambda: [LocalStandardScaler()], "n_windows": 10,
             "min_child_samples": 20})


def monthly(key: str, wheel: Path) -> Dataset:
    folder, column = {"airline": ("Airline", "Passengers"),
                      "shampoo": ("ShampooSales", "Sales")}[key]
    raw = sktime_csv(wheel, folder)
    time_col = raw.columns[0]
    # "1949-01" → the month's first day; Vigie reads ISO dates.
    frame = pd.DataFrame({"month": pd.to_datetime(raw[time_col].astype(str) + "-01"),
                          "value": raw[column].astype(float)})
    if key == "airline":
        description = (f"airline: monthly passengers, {frame['month'].min():%Y-%m} to "
                       f"{frame['month'].max():%Y-%m}, {len(frame)} months")
        horizon, lags, differences, windows = 12, list(range(1, 13)), [1, 12], 4
    else:
        description = (f"shampoo: monthly sales, {len(frame)} months (H = 6: 30 months of "
                       f"history = 2 seasons of 12 + H)")
        horizon, lags, differences, windows = 6, list(range(1, 7)), [1], 2
    return Dataset(
        key=key, description=description, frame=frame, series=[], time="month",
        target="value", covariates=[], horizon=horizon, season=12, vigie_frequency="M",
        pandas_frequency="MS", time_format="%Y-%m-%d",
        # Vigie's defaults: shampoo's 30 months leave 6 after two seasons, so its
        # backtest takes an origin at each of them (3 windows of 6 would need 42).
        vigie_args=[],
        mlf={"lags": lags, "lag_transforms": lambda: {1: [RollingMean(window_size=3)]},
             "date_features": ["month"],
             "target_transforms": lambda: [Differences(differences)],
             "n_windows": windows, "min_child_samples": 5})


# ---------------------------------------------------------------------------
# Scores
# ---------------------------------------------------------------------------


def scores(data: Dataset, forecast: pd.DataFrame) -> dict:
    """MASE, sMAPE and coverage of `forecast` (unique_id, ds, mean, lo80, hi80,
    lo95, hi95) against the held-out periods."""
    merged = data.test[["unique_id", "ds", "y"]].merge(forecast, on=["unique_id", "ds"],
                                                        how="left")
    if merged["mean"].isna().any():
        bad = merged[merged["mean"].isna()]
        raise ValueError(f"no forecast for {len(bad)} of {len(merged)} held-out periods "
                         f"(first: {bad.iloc[0]['unique_id']} {bad.iloc[0]['ds']})")
    m = data.season
    scale = data.history.groupby("unique_id")["y"].agg(
        lambda y: np.mean(np.abs(y.to_numpy()[m:] - y.to_numpy()[:-m])))
    y, f = merged["y"].to_numpy(), merged["mean"].to_numpy()
    merged["abs_err"] = np.abs(y - f)
    denominator = np.abs(y) + np.abs(f)
    merged["smape"] = np.where(denominator > 0,
                               200.0 * merged["abs_err"] / np.where(denominator > 0,
                                                                    denominator, 1.0), 0.0)
    per_series = merged.groupby("unique_id").agg(mae=("abs_err", "mean"),
                                                 smape=("smape", "mean"))
    per_series["scale"] = scale.reindex(per_series.index)
    usable = per_series["scale"] > 0
    result = {
        "mase": float((per_series.loc[usable, "mae"] / per_series.loc[usable, "scale"]).mean()),
        "smape": float(per_series["smape"].mean()),
        "series_without_scale": int((~usable).sum()),
    }
    for level in LEVELS:
        lo, hi = merged.get(f"lo{level}"), merged.get(f"hi{level}")
        if lo is None or hi is None or lo.isna().all():
            result[f"coverage{level}"] = None
            result[f"msis{level}"] = None
            continue
        lo, hi = lo.to_numpy(), hi.to_numpy()
        result[f"coverage{level}"] = float(((y >= lo) & (y <= hi)).mean())
        # M4's mean scaled interval score: the interval's width plus 2/α times
        # how far each value fell outside it, over the series' scale (as MASE's).
        alpha = 1 - level / 100
        merged["interval_score"] = ((hi - lo) + 2 / alpha * np.maximum(lo - y, 0)
                                    + 2 / alpha * np.maximum(y - hi, 0))
        per_series["interval_score"] = merged.groupby("unique_id")["interval_score"].mean()
        result[f"msis{level}"] = float((per_series.loc[usable, "interval_score"]
                                        / per_series.loc[usable, "scale"]).mean())
    return result


# ---------------------------------------------------------------------------
# Peers
# ---------------------------------------------------------------------------


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
    fraction seen just before `what` runs (None when timings are not
    reported: the cut-off runs)."""
    if not TIMED:
        return None
    busy = cpu_busy()
    deadline = time.monotonic() + IDLE_WAIT
    while busy is not None and busy > BUSY_LIMIT and time.monotonic() < deadline:
        time.sleep(5)
        busy = cpu_busy()
    if busy is not None and busy > BUSY_LIMIT:
        print(f"  warning: machine {busy:.0%} busy before {what}; its timing is skewed",
              file=sys.stderr, flush=True)
    return busy


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children
    (statsforecast's worker processes, Vigie's commands)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def repeated(first: float, again) -> tuple[float, list[float]]:
    """The median of `first` and, when it is below REPEAT_BELOW in a timed
    run, of REPEATS - 1 more timings by `again()`; and every timing."""
    times = [first]
    if TIMED and first < REPEAT_BELOW:
        times += [again() for _ in range(REPEATS - 1)]
    return float(np.median(times)), times


def statsforecast_model(name: str, season: int):
    return {"SeasonalNaive": lambda: SeasonalNaive(season_length=season),
            "AutoETS": lambda: AutoETS(season_length=season),
            "AutoTheta": lambda: AutoTheta(season_length=season)}[name]()


def run_statsforecast(name: str, data: Dataset, history: pd.DataFrame) -> pd.DataFrame:
    n_series = history["unique_id"].nunique()
    sf = StatsForecast(models=[statsforecast_model(name, data.season)],
                       freq=data.pandas_frequency, n_jobs=THREADS if n_series > 1 else 1)
    out = sf.forecast(df=history[["unique_id", "ds", "y"]], h=data.horizon, level=LEVELS)
    out = out.rename(columns={name: "mean", **{f"{name}-lo-{lv}": f"lo{lv}" for lv in LEVELS},
                              **{f"{name}-hi-{lv}": f"hi{lv}" for lv in LEVELS}})
    return out[["unique_id", "ds", "mean"] + [f"{s}{lv}" for lv in LEVELS for s in ("lo", "hi")]]


def run_mlforecast(data: Dataset, history: pd.DataFrame, future: pd.DataFrame,
                   seed: int) -> pd.DataFrame:
    cfg = data.mlf
    model = lgb.LGBMRegressor(n_estimators=100, learning_rate=0.1, num_leaves=31,
                              min_child_samples=cfg["min_child_samples"], n_jobs=THREADS,
                              random_state=seed, verbosity=-1)
    # Fresh transforms for every fit: they keep per-series state.
    fcst = MLForecast(models={"LightGBM": model}, freq=data.pandas_frequency,
                      lags=cfg["lags"], lag_transforms=cfg["lag_transforms"](),
                      date_features=cfg["date_features"],
                      target_transforms=cfg["target_transforms"](), num_threads=THREADS)
    fcst.fit(history, static_features=[],
             prediction_intervals=PredictionIntervals(n_windows=cfg["n_windows"],
                                                      h=data.horizon))
    x_df = future[["unique_id", "ds"] + data.covariates] if data.covariates else None
    out = fcst.predict(h=data.horizon, level=LEVELS, X_df=x_df)
    out = out.rename(columns={"LightGBM": "mean",
                              **{f"LightGBM-lo-{lv}": f"lo{lv}" for lv in LEVELS},
                              **{f"LightGBM-hi-{lv}": f"hi{lv}" for lv in LEVELS}})
    return out[["unique_id", "ds", "mean"] + [f"{s}{lv}" for lv in LEVELS for s in ("lo", "hi")]]


def run_peer(name: str, data: Dataset, seed: int) -> dict:
    """Warm-up on one series, then the timed fit + forecast on all of them."""
    def call(history, future):
        if name == LGBM:
            return run_mlforecast(data, history, future, seed)
        return run_statsforecast(name, data, history)

    row = {"method": name}
    if TIMED:  # the cut-off runs report no time, so need no warm-up
        first = data.history["unique_id"].iloc[0]
        try:
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                call(data.history[data.history["unique_id"] == first],
                     data.test[data.test["unique_id"] == first])
            row["warmup_seconds"] = time.perf_counter() - start
        except Exception as error:  # the timed run reports its own failure
            row["warmup_error"] = f"{type(error).__name__}: {error}"
    row["busy_before"] = settle(f"{data.key} {name}")
    try:
        start, cpu = time.perf_counter(), cpu_seconds()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            forecast = call(data.history, data.test)
        first = time.perf_counter() - start
        row["cpu_seconds"] = cpu_seconds() - cpu
        row.update(scores(data, forecast))

        def again() -> float:
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                call(data.history, data.test)
            return time.perf_counter() - start

        row["seconds"], row["all_seconds"] = repeated(first, again)
    except Exception as error:
        row["error"] = f"{type(error).__name__}: {error}"
        print(f"  {data.key} {name} failed: {row['error']}", file=sys.stderr, flush=True)
    return row


# ---------------------------------------------------------------------------
# Vigie
# ---------------------------------------------------------------------------


def write_vigie_csv(data: Dataset, frame: pd.DataFrame, path: Path) -> None:
    out = frame.copy()
    out[data.time] = out[data.time].dt.strftime(data.time_format)
    out.to_csv(path, index=False, float_format="%.10g")


def run_vigie(binary: Path, data: Dataset, seed: int, keep: bool) -> dict:
    """`vigie train --task forecast` on the history, then `vigie forecast` for
    the held-out periods (with their covariates when the data set has some),
    into a temporary project. Any failure is caught and reported in the row."""
    row = {"method": VIGIE}
    frame = data.frame.sort_values(data.series + [data.time], kind="stable")
    rank_from_end = (frame.groupby(data.series).cumcount(ascending=False) if data.series
                     else pd.Series(np.arange(len(frame))[::-1], index=frame.index))
    history, held_out = frame[rank_from_end >= data.horizon], frame[rank_from_end < data.horizon]
    history_path = WORK / f"{data.key}_history.csv"
    future_path = WORK / f"{data.key}_history_and_future.csv"
    write_vigie_csv(data, history, history_path)
    if data.covariates:
        blank = held_out.copy()
        blank[data.target] = np.nan
        write_vigie_csv(data, pd.concat([history, blank]).sort_values(
            data.series + [data.time], kind="stable"), future_path)
    project = Path(tempfile.mkdtemp(prefix=f"vigie-forecast-{data.key}-"))
    row["project"] = str(project) if keep else None
    name = f"bench_{data.key}"
    forecast_path = project / "forecast.csv"
    train_cmd = [str(binary), "train", "--task", "forecast", "--data", str(history_path),
                 "--time", data.time, "--target", data.target, "--horizon", str(data.horizon),
                 "--frequency", data.vigie_frequency, "--name", name, "--project", str(project),
                 "--format", "json", "--seed", str(seed)]
    if data.series:
        train_cmd += ["--series", ",".join(data.series)]
    if data.covariates:
        train_cmd += ["--future-covariates", ",".join(data.covariates)]
    train_cmd += data.vigie_args + EXTRA_TRAIN_ARGS
    forecast_cmd = [str(binary), "forecast", "--model", name, "--horizon", str(data.horizon),
                    "--out", str(forecast_path), "--format", "csv", "--project", str(project)]
    if data.covariates:
        forecast_cmd += ["--data", str(future_path)]
    row["commands"] = [display_command(train_cmd), display_command(forecast_cmd)]
    try:
        if not binary.exists():
            raise RuntimeError(f"no Vigie binary at {display_path(binary)} (build it with "
                               f"`cargo build -p vigie-cli`, or pass --vigie PATH)")
        if TIMED:  # the cut-off runs report no time, so need no warm-up
            # As for every peer, a warm-up of the same commands on the first series,
            # untimed: the first run of a binary after it was built reads it from disk.
            first = (history[data.series].iloc[0] if data.series else None)
            def first_series(rows: pd.DataFrame) -> pd.DataFrame:
                if first is None:
                    return rows
                return rows[(rows[data.series] == first.to_numpy()).all(axis=1)]
            warm = Path(tempfile.mkdtemp(prefix=f"vigie-forecast-{data.key}-warm-up-"))
            swap = {str(history_path): str(warm / "history.csv"),
                    str(future_path): str(warm / "future.csv"),
                    str(project): str(warm), str(forecast_path): str(warm / "forecast.csv")}
            write_vigie_csv(data, first_series(history), warm / "history.csv")
            if data.covariates:
                write_vigie_csv(data, first_series(pd.concat([history, blank]).sort_values(
                    data.series + [data.time], kind="stable")), warm / "future.csv")
            start = time.perf_counter()
            try:
                for cmd, what in ((train_cmd, "vigie train"), (forecast_cmd, "vigie forecast")):
                    run_command([swap.get(a, a) for a in cmd], f"{what} (warm-up)")
                row["warmup_seconds"] = time.perf_counter() - start
            except Exception as error:  # the timed run reports its own failure
                row["warmup_error"] = f"{type(error).__name__}: {error}"
            finally:
                shutil.rmtree(warm, ignore_errors=True)
        row["busy_before"] = settle(f"{data.key} Vigie")
        start, cpu = time.perf_counter(), cpu_seconds()
        trained = run_command(train_cmd, "vigie train")
        train_seconds = [time.perf_counter() - start]
        mid = time.perf_counter()
        run_command(forecast_cmd, "vigie forecast")
        forecast_seconds = [time.perf_counter() - mid]
        first = time.perf_counter() - start
        row["cpu_seconds"] = cpu_seconds() - cpu
        row["train_output"] = parse_train_json(trained)
        forecast, note = read_vigie_forecast(data, forecast_path)
        if note:
            row["note"] = note
        row.update(scores(data, forecast))

        def again() -> float:
            # The same two commands into a fresh project, as the first run had.
            fresh = Path(tempfile.mkdtemp(prefix=f"vigie-forecast-{data.key}-again-"))
            swap = {str(project): str(fresh), str(forecast_path): str(fresh / "forecast.csv")}
            try:
                start = time.perf_counter()
                run_command([swap.get(a, a) for a in train_cmd], "vigie train (repeat)")
                train_seconds.append(time.perf_counter() - start)
                mid = time.perf_counter()
                run_command([swap.get(a, a) for a in forecast_cmd], "vigie forecast (repeat)")
                forecast_seconds.append(time.perf_counter() - mid)
                return time.perf_counter() - start
            finally:
                shutil.rmtree(fresh, ignore_errors=True)

        row["seconds"], row["all_seconds"] = repeated(first, again)
        row["train_wall_seconds"] = float(np.median(train_seconds))
        row["forecast_wall_seconds"] = float(np.median(forecast_seconds))
    except Exception as error:
        row["error"] = f"{type(error).__name__}: {error}"
        print(f"  {data.key} Vigie failed: {row['error']}", file=sys.stderr, flush=True)
    finally:
        if not keep:
            shutil.rmtree(project, ignore_errors=True)
    return row


def display_path(path: Path) -> str:
    """A path relative to the repository when it is inside it."""
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def display_command(cmd: list[str]) -> str:
    return " ".join(display_path(Path(a)) if "/" in a else a for a in cmd)


def run_command(cmd: list[str], what: str) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=VIGIE_TIMEOUT)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"{what} exited {done.returncode}: " + " | ".join(tail))
    return done.stdout


def parse_train_json(stdout: str) -> dict:
    """`vigie train --format json` prints one object; a line of text before it
    is tolerated."""
    text = stdout.strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        start = text.find("{")
        if start < 0:
            raise ValueError(f"vigie train printed no JSON object: {text[:200]!r}")
        return json.loads(text[start:])


def read_vigie_forecast(data: Dataset, path: Path) -> tuple[pd.DataFrame, str | None]:
    """Vigie's forecast CSV in the peers' shape. Rows are matched to the held-out
    periods by series and time; when every series has exactly H rows but the
    times differ (a date convention, say month end against month start), they
    are matched by position and the returned note says so."""
    raw = pd.read_csv(path, dtype={c: str for c in data.series})
    needed = data.series + [data.time, "forecast", "lo80", "hi80", "lo95", "hi95"]
    missing = [c for c in needed if c not in raw.columns]
    if missing:
        raise ValueError(f"vigie forecast output lacks column(s) {missing}; "
                         f"it has {list(raw.columns)}")
    out = pd.DataFrame({
        "unique_id": (raw[data.series].astype(str).agg("/".join, axis=1) if data.series
                      else data.key),
        # ISO 8601, with or without a time or a zone ("2011-11-29",
        # "2011-11-29T01:00:00Z"): read as UTC, compared as naive times.
        "ds": pd.to_datetime(raw[data.time].astype(str), format="ISO8601",
                             utc=True).dt.tz_localize(None),
        "mean": raw["forecast"].astype(float),
        **{c: raw[c].astype(float) for c in ["lo80", "hi80", "lo95", "hi95"]},
    })
    keys = data.test[["unique_id", "ds"]]
    matched = keys.merge(out, on=["unique_id", "ds"], how="left")["mean"].notna().sum()
    if matched == len(keys):
        return out, None
    counts = out.groupby("unique_id").size()
    expected = keys.groupby("unique_id").size()
    if counts.reindex(expected.index).eq(expected).all():
        out = out.sort_values(["unique_id", "ds"], kind="stable").reset_index(drop=True)
        sample = (f"{out['ds'].iloc[0]:%Y-%m-%dT%H:%M:%S} where the data has "
                  f"{keys.sort_values(['unique_id', 'ds'])['ds'].iloc[0]:%Y-%m-%dT%H:%M:%S}")
        out["ds"] = keys.sort_values(["unique_id", "ds"], kind="stable")["ds"].to_numpy()
        return out, (f"matched by position: {len(keys) - matched} of {len(keys)} forecast "
                     f"times differ from the held-out times (first: {sample})")
    raise ValueError(f"vigie forecast has {len(out)} rows for {counts.size} series; "
                     f"{len(keys) - matched} of {len(keys)} held-out (series, time) pairs "
                     f"have no forecast")


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------


def add_ratios(rows: list[dict]) -> None:
    """MASE ÷ the best peer's MASE and wall time ÷ mlforecast LightGBM's."""
    peers = [r for r in rows if r["method"] in PEERS and r.get("mase") is not None]
    best = min(peers, key=lambda r: r["mase"], default=None)
    lgbm = next((r for r in peers if r["method"] == LGBM and r.get("seconds")), None)
    for r in rows:
        r["best_peer"] = best["method"] if best else None
        r["mase_vs_best_peer"] = (r["mase"] / best["mase"]
                                  if best and r.get("mase") is not None else None)
        r["time_vs_lightgbm"] = (r["seconds"] / lgbm["seconds"]
                                 if lgbm and r.get("seconds") else None)
        # Vigie's own clock of its fit and backtest, inside `vigie train`: what
        # mlforecast's fit + predict on a frame in memory compares with, without
        # process start-up, CSV reading, the registry and the forecast file.
        inside = (r.get("train_output") or {}).get("train_seconds")
        if inside is not None:
            r["train_seconds_vs_lightgbm"] = inside / lgbm["seconds"] if lgbm else None


def fmt(x, digits: int = 3, pct: bool = False) -> str:
    if x is None:
        return "n/a"
    if pct:
        return f"{100 * x:.1f}%"
    return f"{x:,.{digits}f}"


def fmt_ratio(x) -> str:
    if x is None:
        return "n/a"
    return f"{x:.2f}×" if x >= 0.1 else f"{x:.3f}×"


def markdown_table(report: dict) -> str:
    lines = ["| data set | method | MASE | sMAPE % | 80% cov. | 95% cov. | MSIS 95% | wall s "
             "| MASE ÷ best peer | time ÷ LightGBM |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    notes = []
    for key, entry in report["datasets"].items():
        for r in entry["results"]:
            busy = r.get("busy_before")
            mark = " †" if busy is not None and busy > BUSY_LIMIT else ""
            method = r["method"] + mark
            if r.get("error"):
                notes.append(f"{key} / {r['method']}: FAILED: {r['error']}")
                lines.append(f"| {key} | {method} | **failed** | | | | | | | |")
                continue
            if r.get("note"):
                notes.append(f"{key} / {r['method']}: {r['note']}")
            trained = r.get("train_output") or {}
            if trained.get("strategy"):
                notes.append(f"{key} / {r['method']}: strategy {trained['strategy']}"
                             + (f" ({trained['why']})" if trained.get("why") else ""))
            if trained.get("train_seconds") is not None:
                notes.append(f"{key} / {r['method']}: fit and backtest inside `vigie train` "
                             f"{trained['train_seconds']:.3f} s "
                             f"({fmt_ratio(r.get('train_seconds_vs_lightgbm'))} LightGBM's time); "
                             "the rest of the wall time is two processes starting, reading, "
                             "registering and writing")
            lines.append(
                f"| {key} | {method} | {fmt(r['mase'])} | {fmt(r['smape'], 1)} "
                f"| {fmt(r.get('coverage80'), pct=True)} | {fmt(r.get('coverage95'), pct=True)} "
                f"| {fmt(r.get('msis95'), 2)} | {fmt(r['seconds'], 2)} | {fmt_ratio(r.get('mase_vs_best_peer'))} "
                f"| {fmt_ratio(r.get('time_vs_lightgbm'))} |")
    text = "\n".join(lines)
    if notes:
        text += "\n\n" + "\n".join(f"- {n}" for n in notes)
    return text


# ---------------------------------------------------------------------------
# Bikeshare at more cut-offs
# ---------------------------------------------------------------------------

# The fixed cut-off holds out 48 hours; one Tuesday and Wednesday say little
# about how methods compare on hourly data. Bikeshare covers 2011, so it can
# be cut at many points: every 19 days (so the held-out days fall on every
# weekday in turn), the last cut-off's held-out hours ending 2011-12-27.
CUTOFF_SPACING_DAYS = 19
LAST_CUTOFF_END = pd.Timestamp("2011-12-27 23:00")
# The earliest end that leaves 12 weeks + 48 hours after the file's first hour.
BIKESHARE_FIRST_END = pd.Timestamp("2011-01-01 00:00") + pd.Timedelta(hours=12 * 7 * 24 + 48 - 1)


def cutoff_ends(count: int) -> list[pd.Timestamp]:
    step = pd.Timedelta(days=CUTOFF_SPACING_DAYS)
    return [LAST_CUTOFF_END - k * step for k in range(count - 1, -1, -1)]


def run_cutoffs(binary: Path | None, count: int, seed: int, keep: bool) -> dict:
    """Every method on bikeshare cut at `count` more points (Vigie unless
    `binary` is None). Scores only: the methods run one after the other
    without waiting for an idle machine, so the times are not reported."""
    global TIMED
    TIMED = False
    methods = ([VIGIE] if binary else []) + PEERS
    cutoffs = []
    try:
        for end in cutoff_ends(count):
            data = bikeshare(end)
            data.split()
            print(f"bikeshare cut-offs: held-out hours ending {end:%Y-%m-%d %H:%M}...",
                  file=sys.stderr, flush=True)
            rows = ([run_vigie(binary, data, seed, keep)] if binary else [])
            rows += [run_peer(name, data, seed) for name in PEERS]
            add_ratios(rows)
            cutoffs.append({
                "held_out_end": f"{end:%Y-%m-%d %H:%M}",
                "held_out_start": f"{data.test['ds'].min():%Y-%m-%d %H:%M}",
                "results": [{k: r.get(k) for k in ("method", "mase", "smape", "coverage80",
                                                   "coverage95", "msis95", "mase_vs_best_peer",
                                                   "error")}
                            | ({"strategy": (r.get("train_output") or {}).get("strategy")}
                               if r["method"] == VIGIE else {})
                            for r in rows],
            })
    finally:
        TIMED = True
    summary = {}
    for method in methods:
        scored = [next(r for r in c["results"] if r["method"] == method) for c in cutoffs]
        ok = [r for r in scored if r.get("mase") is not None and not r.get("error")]
        best = sum(1 for c in cutoffs
                   if min((r for r in c["results"] if r.get("mase") is not None),
                          key=lambda r: r["mase"])["method"] == method)
        def mean(key):
            values = [r[key] for r in ok if r.get(key) is not None]
            return float(np.mean(values)) if values else None
        summary[method] = {
            "scored": len(ok), "failed": len(scored) - len(ok), "best_at": best,
            "mase": mean("mase"), "smape": mean("smape"),
            "coverage80": mean("coverage80"), "coverage95": mean("coverage95"),
            "msis95": mean("msis95"),
        }
    for method, entry in summary.items():
        # Geometric mean over cut-offs of the method's MASE over each cut-off's best peer.
        ratios = [r["mase_vs_best_peer"] for c in cutoffs for r in c["results"]
                  if r["method"] == method and r.get("mase_vs_best_peer")]
        entry["mase_vs_best_peer_geomean"] = (float(np.exp(np.mean(np.log(ratios))))
                                              if ratios else None)
    return {"spacing_days": CUTOFF_SPACING_DAYS, "cutoffs": cutoffs, "summary": summary}


def cutoffs_table(sweep: dict) -> str:
    n = len(sweep["cutoffs"])
    first, last = sweep["cutoffs"][0]["held_out_start"], sweep["cutoffs"][-1]["held_out_end"]
    lines = [f"Bikeshare at {n} more cut-offs, {sweep['spacing_days']} days apart (held-out "
             f"hours from {first} to {last}); means over cut-offs:\n",
             "| method | MASE | sMAPE % | 80% cov. | 95% cov. | MSIS 95% "
             "| MASE ÷ best peer (geometric mean) | lowest MASE at |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for method, e in sweep["summary"].items():
        failed = f" ({e['failed']} failed)" if e["failed"] else ""
        lines.append(
            f"| {method}{failed} | {fmt(e['mase'])} | {fmt(e['smape'], 1)} "
            f"| {fmt(e['coverage80'], pct=True)} | {fmt(e['coverage95'], pct=True)} "
            f"| {fmt(e['msis95'], 2)} | {fmt_ratio(e['mase_vs_best_peer_geomean'])} "
            f"| {e['best_at']} of {n} |")
    return "\n".join(lines)


def environment(binary: Path, wheel: Path | None, peers_only: bool) -> dict:
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
    vigie_version = None
    if not peers_only and binary.exists():
        try:
            vigie_version = subprocess.run([str(binary), "--version"], capture_output=True,
                                           text=True, timeout=30).stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            pass
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "vigie_commit": git("rev-parse", "--short", "HEAD"),
        "vigie_worktree_dirty": bool(git("status", "--porcelain")),
        "vigie_binary": None if peers_only else display_path(binary),
        "vigie_version": vigie_version,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "statsforecast": statsforecast.__version__,
        "mlforecast": mlforecast.__version__,
        "lightgbm": lgb.__version__,
        "numba": (importlib.util.find_spec("numba") is not None),
        "sktime_wheel": wheel.name if wheel else None,
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def earlier_peers(earlier: dict | None, key: str, args) -> list[dict] | None:
    """The peers' rows of data set `key` in an earlier report, when it ran on the same data."""
    if earlier is None:
        return None
    settings = earlier.get("settings", {})
    same = (settings.get("seed") == args.seed
            and (key != "revenue" or (settings.get("revenue_series"), settings.get("revenue_days"))
                 == (args.series, args.days)))
    rows = [r for r in earlier.get("datasets", {}).get(key, {}).get("results", [])
            if r.get("method") in PEERS]
    if not same or {r["method"] for r in rows} != set(PEERS):
        return None
    return [dict(r, reused_from=str(args.peers_from)) for r in rows]


def find_wheel(given: Path | None) -> Path | None:
    if given:
        return given
    wheels = sorted((BENCH / ".venv" / "wheels").glob("sktime-*.whl"))
    return wheels[-1] if wheels else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vigie", type=Path, default=Path("target/debug/vigie"),
                        help="the vigie binary; a relative path is taken from the "
                             "repository root (default target/debug/vigie)")
    parser.add_argument("--vigie-timeout", type=float, default=1800.0,
                        help="seconds each vigie command may take before it counts as "
                             "failed (default 1800)")
    parser.add_argument("--peers-only", action="store_true", help="do not run Vigie")
    parser.add_argument("--vigie-train-arg", action="append", default=[], metavar="ARG",
                        help="one more argument of every `vigie train` (repeatable), e.g. "
                             "--vigie-train-arg=--param --vigie-train-arg=n_rounds=100")
    parser.add_argument("--datasets", default="revenue,bikeshare,airline,shampoo",
                        help="comma-separated: revenue, bikeshare, airline, shampoo")
    parser.add_argument("--series", type=int, default=1000,
                        help="revenue series (default 1000)")
    parser.add_argument("--days", type=int, default=700,
                        help="revenue days, held-out ones included, of the stores open "
                             "from the start, 2023-01-02 (default 700)")
    parser.add_argument("--seed", type=int, default=SEED,
                        help="seed of the revenue generator, LightGBM and Vigie (default 42)")
    parser.add_argument("--sktime-wheel", type=Path, default=None,
                        help="sktime wheel holding the airline and shampoo files (default: "
                             "the one run.sh downloads into bench/forecast/.venv/wheels)")
    parser.add_argument("--wait-idle", type=float, default=120.0,
                        help="seconds to wait before each method for other work on the "
                             "machine to stop (default 120; 0 to not wait)")
    parser.add_argument("--peers-from", type=Path, default=None,
                        help="take the peers' rows from this earlier report (a copy of "
                             "bench/out/forecast.json) instead of running them; only data "
                             "sets of the same size and seed are taken, the others run")
    parser.add_argument("--cutoffs", type=int, default=15, metavar="N",
                        help="also run every method on bikeshare cut at N more points, "
                             f"{CUTOFF_SPACING_DAYS} days apart (scores only; default 15, "
                             "0 to skip)")
    parser.add_argument("--keep", action="store_true",
                        help="keep Vigie's temporary projects (their paths go to the JSON)")
    args = parser.parse_args()
    global IDLE_WAIT, VIGIE_TIMEOUT, EXTRA_TRAIN_ARGS
    IDLE_WAIT, VIGIE_TIMEOUT = args.wait_idle, args.vigie_timeout
    EXTRA_TRAIN_ARGS = list(args.vigie_train_arg)
    binary = args.vigie if args.vigie.is_absolute() else REPO / args.vigie

    WORK.mkdir(parents=True, exist_ok=True)
    wanted = [d.strip() for d in args.datasets.split(",") if d.strip()]
    unknown = set(wanted) - {"revenue", "bikeshare", "airline", "shampoo"}
    if unknown:
        raise SystemExit(f"unknown data set(s): {sorted(unknown)}")
    most = int((LAST_CUTOFF_END - BIKESHARE_FIRST_END) / pd.Timedelta(days=CUTOFF_SPACING_DAYS)) + 1
    if not 0 <= args.cutoffs <= most:
        raise SystemExit(f"--cutoffs {args.cutoffs}: Bikeshare's year holds 0 to {most}")
    wheel = find_wheel(args.sktime_wheel)
    if {"airline", "shampoo"} & set(wanted) and wheel is None:
        raise SystemExit("no sktime wheel: run bench/forecast/run.sh, or pass --sktime-wheel")
    env = environment(binary, wheel, args.peers_only)
    earlier = json.loads(args.peers_from.read_text()) if args.peers_from else None

    print("# Vigie forecasting vs statsforecast and mlforecast\n")
    print(f"{env['date']} · {env['cpu']} · {env['cores']} cores · {env['platform']}  ")
    vigie = ("Vigie not run (--peers-only)" if args.peers_only else
             f"Vigie {env['vigie_commit'] or '(commit unknown)'}"
             f"{' (uncommitted changes)' if env['vigie_worktree_dirty'] else ''}"
             f" ({env['vigie_binary']})")
    print(f"{vigie} · Python {env['python']} · numpy {env['numpy']} · pandas {env['pandas']}"
          f" · statsforecast {env['statsforecast']} · mlforecast {env['mlforecast']}"
          f" · LightGBM {env['lightgbm']}\n", flush=True)

    report = {"environment": env, "settings": {
        "seed": args.seed, "levels": LEVELS, "threads": THREADS,
        "revenue_series": args.series, "revenue_days": args.days,
        "wait_idle_seconds": args.wait_idle, "bikeshare_cutoffs": args.cutoffs,
        "peers_only": args.peers_only, "vigie_train_args": EXTRA_TRAIN_ARGS,
        "peers_from": str(args.peers_from) if args.peers_from else None,
    }, "datasets": {}}
    for key in wanted:
        print(f"{key}: loading...", file=sys.stderr, flush=True)
        if key == "revenue":
            data = revenue(args.series, args.days, args.seed)
        elif key == "bikeshare":
            data = bikeshare()
        else:
            data = monthly(key, wheel)
        data.split()
        rows = []
        if not args.peers_only:
            print(f"{key}: Vigie...", file=sys.stderr, flush=True)
            rows.append(run_vigie(binary, data, args.seed, args.keep))
        reused = earlier_peers(earlier, key, args)
        if reused is not None:
            print(f"{key}: peers from {args.peers_from}", file=sys.stderr, flush=True)
            rows.extend(reused)
        else:
            for name in PEERS:
                print(f"{key}: {name}...", file=sys.stderr, flush=True)
                rows.append(run_peer(name, data, args.seed))
        add_ratios(rows)
        first_cut, last_cut = data.cutoffs
        report["datasets"][key] = {
            "description": data.description,
            "series": int(data.history["unique_id"].nunique()),
            "history_rows": int(len(data.history)),
            "held_out_rows": int(len(data.test)),
            "horizon": data.horizon, "season": data.season,
            "frequency": data.vigie_frequency,
            "last_history_period": first_cut if first_cut == last_cut
            else f"{first_cut} .. {last_cut}",
            "future_covariates": data.covariates,
            "mlforecast": {k: (repr(v()) if callable(v) else v) for k, v in data.mlf.items()},
            "results": rows,
        }
        print(f"{key}: done", file=sys.stderr, flush=True)

    if args.cutoffs > 0 and "bikeshare" in wanted:
        report["bikeshare_cutoffs"] = run_cutoffs(None if args.peers_only else binary,
                                                  args.cutoffs, args.seed, args.keep)
    print(markdown_table(report))
    if "bikeshare_cutoffs" in report:
        print("\n" + cutoffs_table(report["bikeshare_cutoffs"]))
    print("\nData sets:\n")
    for key, entry in report["datasets"].items():
        print(f"- {entry['description']}; {entry['series']} series, H = {entry['horizon']}, "
              f"season {entry['season']}, history ends {entry['last_history_period']}")
    print("\n† the machine was busy before this method ran: its time says little.")
    if hasattr(os, "getloadavg"):
        env["load_average_at_end"] = list(os.getloadavg())
    (OUT / "forecast.json").write_text(json.dumps(report, indent=2, default=str))
    print("\nEvery figure, with Vigie's own backtest and commands: bench/out/forecast.json")


if __name__ == "__main__":
    main()
