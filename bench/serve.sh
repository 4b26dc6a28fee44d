#!/usr/bin/env bash
# Serving benchmark: `vigie serve` against `mlflow models serve`, same data, same model size, same
# load generator, in one run. See bench/README.md ("Serving").
#
#   bash bench/serve.sh                    # everything
#   bash bench/serve.sh --duration 5       # extra arguments go to serve.py (--help lists them)
#   VIGIE_BENCH_AUTH=0 bash bench/serve.sh # no OAuth2 run (no issuer started)
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$BENCH")"
VENV="$BENCH/.venv"
TOOLS="$BENCH/.tools"
PYTHON="${PYTHON:-python3}"
# The cargo profile of the workspace's Cargo.toml: release, with DataFusion at opt-level 0.
PROFILE=bench-serve
# The load generator, pinned so two runs of this script drive the servers the same way.
OHA_VERSION=1.16.0

# VIGIE_MLFLOW_VERSION (the MLflow the project checks against) and the OAuth2 issuer service.
# shellcheck source=scripts/services.sh
source "$REPO/scripts/services.sh"

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "creating $VENV" >&2
  "$PYTHON" -m venv "$VENV"
fi
echo "installing mlflow $VIGIE_MLFLOW_VERSION, lightgbm, numpy and pandas into bench/.venv..." >&2
"$VENV/bin/pip" install --quiet --disable-pip-version-check \
  numpy pandas lightgbm "mlflow==$VIGIE_MLFLOW_VERSION"

cd "$REPO"
echo "building vigie (cargo profile $PROFILE)..." >&2
start=$(date +%s)
cargo build --profile "$PROFILE" -p vigie-cli
build_seconds=$(($(date +%s) - start))
echo "build of vigie ($PROFILE) took $build_seconds s" >&2

# After the vigie build, never beside it: two cargo builds on two cores slow both.
if [[ ! -x "$TOOLS/bin/oha" ]] || [[ "$("$TOOLS/bin/oha" --version)" != *"$OHA_VERSION"* ]]; then
  echo "installing oha $OHA_VERSION into bench/.tools (one-time install, a few minutes)..." >&2
  # With its default features: oha 1.16 does not compile without a TLS backend.
  cargo install oha --version "$OHA_VERSION" --locked --root "$TOOLS"
fi

TARGET_DIR="$(cargo metadata --format-version 1 --no-deps |
  "$VENV/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"

# A real OAuth2 issuer for the run with bearer tokens (stopped when this script exits).
if [[ "${VIGIE_BENCH_AUTH:-1}" != 0 ]]; then
  if command -v node >/dev/null && command -v npm >/dev/null; then
    start_services oidc || echo "the OAuth2 issuer did not start: Vigie runs without auth only" >&2
  else
    echo "node and npm are needed for the OAuth2 issuer: Vigie runs without auth only" >&2
  fi
fi

# The machine sets these for its own BLAS; they slow numpy down.
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
  "$VENV/bin/python" "$BENCH/serve.py" --vigie "$TARGET_DIR/$PROFILE/vigie" \
  --oha "$TOOLS/bin/oha" --build-seconds "$build_seconds" --build-profile "$PROFILE" "$@"
