#!/usr/bin/env bash
# The main job, end to end on the embedded defaults (no server to install):
# build vigie, train on a real credit-default table with cross-validation,
# inspect the saved model, score and explain every row, then run a seeded
# random search that saves version 2.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
demo="${VIGIE_DEMO_DIR:-$root/target/demo}"

echo "==> building vigie (first build: about 5 minutes on 2 cores)"
cargo build --manifest-path "$root/Cargo.toml" -p vigie-cli --locked
vigie="${CARGO_TARGET_DIR:-$root/target}/debug/vigie"

rm -rf "$demo" && mkdir -p "$demo/data"
cp "$root/tests/data/Default.csv" "$demo/data/default.csv"
cd "$demo"

echo "==> vigie train: 5-fold CV of gbdt, random forest and logistic regression; the best is refitted and saved"
"$vigie" train --data data/default.csv --label default --name credit

echo "==> vigie models show credit"
"$vigie" models show credit

echo "==> vigie predict --explain: score and exact per-column contributions for all 10,000 rows"
"$vigie" predict --model credit --data data/default.csv --out scores.csv --explain
head -n 4 scores.csv

echo "==> vigie train --search random: 8 seeded candidates, each 5-fold cross-validated, saved as version 2"
"$vigie" train --data data/default.csv --label default --name credit --algorithm gbdt --search random --trials 8 --time-budget 120

echo "==> vigie models list"
"$vigie" models list
echo "Demo project left in $demo"
