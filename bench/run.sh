#!/usr/bin/env bash
# Benchmarks Vigie's GBDT and random forest against LightGBM, XGBoost and
# scikit-learn on the same data, in one run. See bench/README.md.
#
#   bash bench/run.sh                 # everything
#   bash bench/run.sh --rows 20000    # extra arguments go to compare.py
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$BENCH")"
VENV="$BENCH/.venv"
PYTHON="${PYTHON:-python3}"

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "creating $VENV" >&2
  "$PYTHON" -m venv "$VENV"
fi
echo "installing the peers into bench/.venv..." >&2
"$VENV/bin/pip" install --quiet numpy pandas scikit-learn lightgbm xgboost
# ISLP ships Default.csv; its own dependencies (torch, statsmodels, ...) are not
# needed to read a CSV, so they are not installed.
"$VENV/bin/pip" install --quiet --no-deps islp

cd "$REPO"
# BENCH_PROFILE picks the cargo profile (default: release). `bench-serve` is release with
# DataFusion at opt-level 0, which this binary does not link: the same code, and the build
# folder bench/serve.sh and bench/features.sh use.
PROFILE="${BENCH_PROFILE:-release}"
PROFILE_DIR="$PROFILE"
[[ "$PROFILE" == "dev" ]] && PROFILE_DIR=debug
echo "building vigie-bench (profile $PROFILE)..." >&2
start=$(date +%s)
# Without the default `features` feature: the feature store's benchmark (and DataFusion) is
# bench/features.sh's.
cargo build --profile "$PROFILE" -p vigie-bench --no-default-features
echo "build of vigie-bench ($PROFILE) took $(( $(date +%s) - start )) s" >&2

TARGET_DIR="$(cargo metadata --format-version 1 --no-deps \
  | "$VENV/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"

# The machine sets these for its own BLAS; they slow numpy down, so the peers
# run without them.
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
  "$VENV/bin/python" "$BENCH/compare.py" --vigie-bench "$TARGET_DIR/$PROFILE_DIR/vigie-bench" "$@"
