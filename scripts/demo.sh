#!/usr/bin/env bash
# The main job, end to end on the embedded defaults (no server to install):
# build vigie; `vigie demo` writes the example fraud project, ingests, computes
# its feature views, trains the fraud model with cross-validation and a canary
# version, serves both in-process, sends traffic and ground truth through the
# HTTP API and prints what happened; then, in the same project: read one
# customer's online features; train on a real credit-default table with
# cross-validation, score and explain every row, run a seeded random search;
# train the example's forecast model on its seeded revenue series and forecast
# the next 28 days with intervals.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
demo="${VIGIE_DEMO_DIR:-$root/target/demo}"

echo "==> building vigie (first build: about 10 minutes on 2 cores)"
cargo build --manifest-path "$root/Cargo.toml" -p vigie-cli --locked
vigie="${CARGO_TARGET_DIR:-$root/target}/debug/vigie"

rm -rf "$demo" && mkdir -p "$demo"
cd "$demo"

echo "==> vigie demo: example project, ingest, materialize, train with CV and a canary, serve, traffic, feedback, audit"
"$vigie" demo --project "$demo"
echo "==> vigie features get: one customer's features from the online store"
"$vigie" features get customer_activity --key customer_id=C0007
echo "==> vigie models show fraud: the champion the demo trained, and its canary routing"
"$vigie" models show fraud

cp "$root/tests/data/Default.csv" "$demo/data/default.csv"

echo "==> vigie train: 5-fold CV of gbdt, random forest and logistic regression; the best is refitted and saved"
"$vigie" train --data data/default.csv --label default --name credit

echo "==> vigie models show credit"
"$vigie" models show credit

echo "==> vigie predict --explain: score and exact per-column contributions for all 10,000 rows"
"$vigie" predict --model credit --data data/default.csv --out scores.csv --explain
head -n 4 scores.csv

echo "==> vigie train --search random: 8 seeded candidates, each 5-fold cross-validated, saved as version 2"
"$vigie" train --data data/default.csv --label default --name credit --algorithm gbdt --search random --trials 8 --time-budget 120

echo "==> vigie train revenue: the example's forecast model (vigie.toml), 27 seeded store × product-line series, backtested strategies, 80/95% intervals"
"$vigie" train revenue
"$vigie" forecast --model revenue --horizon 28 --out forecast.csv
head -n 4 forecast.csv

echo "==> vigie models list"
"$vigie" models list
echo "Demo project left in $demo"
