#!/usr/bin/env bash
# The fraud example on real servers, from nothing: starts PostgreSQL, MongoDB
# and Kafka on 127.0.0.1 (scripts/services.sh installs them once), loads the
# seeded transactions into them, and runs the whole path: ingest from
# PostgreSQL and MongoDB, the stream processor on Kafka, feature views, a model
# trained from the three, served and asked by customer id. Stops the servers
# at exit. Run from anywhere: bash examples/fraud-on-servers/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
cargo build -q -p vigie-cli
vigie="$root/target/debug/vigie"
# shellcheck source=../../scripts/services.sh
source scripts/services.sh
start_services postgres mongodb kafka
export VIGIE_EXAMPLE_POSTGRES_URL="$VIGIE_TEST_POSTGRES_URL"
export VIGIE_EXAMPLE_MONGODB_URL="$VIGIE_TEST_MONGODB_URL"
export VIGIE_EXAMPLE_KAFKA_BROKERS="$VIGIE_TEST_KAFKA_BROKERS"

project=$(mktemp -d "${TMPDIR:-/tmp}/vigie-fraud-on-servers.XXXXXX")
cp "$here/vigie.toml" "$project/"
cd "$project"
echo "==> project in $project"
"$vigie" example load --rows 20000
"$vigie" ingest                       # PostgreSQL labels, MongoDB profiles
"$vigie" stream --once                # the Kafka topic, up to its end
"$vigie" materialize
"$vigie" train fraud
"$vigie" serve --addr 127.0.0.1:0 >serve.out 2>serve.err &
server=$!
trap 'kill $server 2>/dev/null || true; stop_services' EXIT
until grep -q "listening on" serve.out 2>/dev/null; do sleep 0.2; done
base=$(sed -n 's/^listening on //p' serve.out)
echo "==> POST $base/v1/models/fraud/predict by customer id"
curl -s -X POST "$base/v1/models/fraud/predict" -H 'content-type: application/json' \
    -d '{"entities": ["C0001", "C0002", "C0003"], "explain": true}'
echo
