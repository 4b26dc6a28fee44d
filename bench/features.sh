#!/usr/bin/env bash
# Benchmarks Vigie's feature store against Feast and Polars on the same seeded data, in one
# run: point-in-time join, online read, stream aggregation from Kafka. See bench/README.md.
#
#   bash bench/features.sh                               # everything
#   bash bench/features.sh --label-rows 10000 --feature-rows 100000 --scale 0   # a smoke run
#   bash bench/features.sh --skip feast                  # extra arguments go to features.py
#
# FEATURES_PROFILE picks the cargo profile (default: release).
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$BENCH")"
VENV="$BENCH/.venv"
PYTHON="${PYTHON:-python3}"
PROFILE="${FEATURES_PROFILE:-release}"

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "creating $VENV" >&2
  "$PYTHON" -m venv "$VENV"
fi
echo "installing the peers into bench/.venv..." >&2
"$VENV/bin/pip" install --quiet feast polars pandas pyarrow numpy

cd "$REPO"
echo "building vigie-bench-features (profile $PROFILE)..." >&2
start=$(date +%s)
cargo build --profile "$PROFILE" -p vigie-bench --bin vigie-bench-features
build_seconds=$(( $(date +%s) - start ))
echo "build of vigie-bench-features took $build_seconds s" >&2

TARGET_DIR="$(cargo metadata --format-version 1 --no-deps \
  | "$VENV/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
# cargo puts the release profile's output in `release`, any other profile's under its name.
PROFILE_DIR="$PROFILE"
[[ "$PROFILE" == "dev" ]] && PROFILE_DIR=debug

# A Kafka broker of our own (tansu, as the tests use); start_services stops it when this
# shell exits. Its log is in its memory unless VIGIE_KAFKA_STORAGE=s3: the tests' broker keeps
# it in a moto S3 server (Python) on the same two cores, which then costs the stream about a
# third of its rate (bench/README.md).
export VIGIE_KAFKA_STORAGE="${VIGIE_KAFKA_STORAGE:-memory}"
# shellcheck source=../scripts/services.sh
source scripts/services.sh
start_services kafka

env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
  "$VENV/bin/python" "$BENCH/features.py" \
  --vigie-bench "$TARGET_DIR/$PROFILE_DIR/vigie-bench-features" \
  --build-profile "$PROFILE" --build-seconds "$build_seconds" \
  --brokers "$VIGIE_TEST_KAFKA_BROKERS" "$@"
