#!/usr/bin/env bash
# The project's one test command (README: "Run the tests"). It checks
# formatting and lints, then builds and runs every test of the workspace.
# With CI=true or VIGIE_SERVICES=1 it first starts the real servers the tests
# talk to (scripts/services.sh: MLflow, PostgreSQL, S3, MongoDB, Prometheus, the Python
# clients, an OAuth2 issuer and Kafka) and stops them at exit.
# Without them, those tests skip loudly; in CI they fail instead.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
if [ "${CI:-}" = "true" ] || [ "${VIGIE_SERVICES:-}" = "1" ]; then
    echo "==> services"
    # shellcheck source=scripts/services.sh
    source scripts/services.sh
    trap stop_services EXIT
    start_services mlflow postgres s3 mongodb prometheus pyclients oidc kafka
    echo "==> deployment files"
    bash scripts/check-deploy.sh
fi
echo "==> cargo test"
cargo test --workspace --locked
