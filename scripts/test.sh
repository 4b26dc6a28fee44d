#!/usr/bin/env bash
# The project's one test command (README: "Run the tests"). It checks
# formatting and lints, then builds and runs every test of the workspace.
# Later issues add the real servers (PostgreSQL, MongoDB, Kafka, S3, MLflow,
# Prometheus, an OAuth2 issuer) that their tests need; this script starts them.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "==> cargo test"
cargo test --workspace --locked
