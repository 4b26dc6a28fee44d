#!/usr/bin/env bash
# Benchmarks Vigie's forecasting against statsforecast and mlforecast (LightGBM)
# on four data sets, in one run. See bench/forecast/README.md.
#
#   bash bench/forecast/run.sh --vigie target/release/vigie   # the timings that mean something
#   bash bench/forecast/run.sh                    # everything (Vigie: target/debug/vigie)
#   bash bench/forecast/run.sh --peers-only       # extra arguments go to compare.py
#
# It does not build Vigie: run `cargo build --release -p vigie-cli` first (or
# `cargo build -p vigie-cli` for the debug build).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
VENV="$HERE/.venv"
WHEELS="$VENV/wheels"
PYTHON="${PYTHON:-python3}"

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "creating bench/forecast/.venv" >&2
  "$PYTHON" -m venv "$VENV"
fi
echo "installing the peers into bench/forecast/.venv..." >&2
"$VENV/bin/pip" install --quiet statsforecast mlforecast lightgbm pandas numpy
# ISLP ships Bikeshare.csv; its own dependencies (torch, statsmodels, ...) are
# not needed to read a CSV, so they are not installed.
"$VENV/bin/pip" install --quiet --no-deps islp
# sktime's wheel ships the airline and shampoo series as CSV files; it is
# downloaded, never installed (compare.py reads the files from the zip).
if ! compgen -G "$WHEELS/sktime-*.whl" > /dev/null; then
  echo "downloading sktime's wheel for its data files..." >&2
  "$VENV/bin/pip" download --quiet --no-deps --dest "$WHEELS" sktime
fi

cd "$REPO"
# The machine sets these for its own BLAS; they slow numpy down, so the peers
# run without them.
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
  "$VENV/bin/python" "$HERE/compare.py" "$@"
