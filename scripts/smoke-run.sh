#!/usr/bin/env bash
# Start `make run` with no service variables, wait for readiness, call real endpoints, press
# Ctrl-C (SIGINT to its process group, as a terminal does), and fail if any process it started
# is still alive. Twice: first on the default port, then with PORT=8123 reusing the data
# directory, which must be ready within 60 s.
set -euo pipefail
set -m  # job control: the background job gets its own process group and a real SIGINT
cd "$(dirname "$0")/.."

DATA_DIR="$PWD/.pagely/postgres/data"
LOG="$(mktemp)"

fail() { echo "smoke: $*" >&2; tail -n 40 "$LOG" >&2; exit 1; }

descendants() {  # every process below $1, recursively
  local child
  for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do
    echo "$child"
    descendants "$child"
  done
}

one_run() {
  local budget=$1 port=$2 base started pid pids
  shift 2
  base="http://127.0.0.1:${port}"
  started=$(date +%s)
  env -u DATABASE_URL -u REDIS_URL -u CELERY_BROKER_URL -u SMTP_HOST make run "$@" >"$LOG" 2>&1 &
  pid=$!
  until curl -sf "$base/health/ready" >/dev/null; do
    kill -0 "$pid" 2>/dev/null || fail "make run exited before it was ready"
    (( $(date +%s) - started < budget )) || { kill -INT -- -"$pid" || true; fail "not ready within ${budget}s"; }
    sleep 0.5
  done
  echo "smoke: ready on port $port after $(( $(date +%s) - started ))s"
  curl -sf "$base/docs" | grep -q "swagger" || fail "/docs does not serve Swagger UI"
  curl -s "$base/api/v1/does-not-exist" | grep -q '"type":"not_found"' || fail "404 envelope missing"
  curl -sf "$base/dev/mail.json" >/dev/null || fail "/dev/mail.json missing"
  curl -sf "$base/metrics" | grep -q '^pagely_http_requests_total{method="GET",route="/docs",status="200"}' \
    || fail "/metrics does not count the requests"

  # An email through the outbox, the worker and the mail sink shows up within seconds.
  env -u DATABASE_URL -u REDIS_URL -u CELERY_BROKER_URL -u SMTP_HOST ENVIRONMENT=development \
    .venv/bin/pagely send-test-email "smoke-$port@example.com" >/dev/null || fail "send-test-email failed"
  for _ in $(seq 1 40); do
    curl -sf "$base/dev/mail.json" | grep -q "smoke-$port@example.com" && break
    sleep 0.5
  done
  curl -sf "$base/dev/mail.json" | grep -q "smoke-$port@example.com" || fail "test email not on the mail page"
  echo "smoke: the outbox delivered a test email to the mail page"

  # Everything it started: its process tree, and the PostgreSQL that pg_ctl daemonised.
  pids="$(descendants "$pid") $(head -n 1 "$DATA_DIR/postmaster.pid" 2>/dev/null || true)"
  kill -INT -- -"$pid"
  wait "$pid" || true
  for _ in $(seq 1 40); do
    alive=""
    for p in $pids; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
    [ -z "$alive" ] && break
    sleep 0.5
  done
  if [ -n "$alive" ]; then ps -o pid,cmd -p ${alive// /,} >&2 || true; fail "left behind after Ctrl-C:$alive"; fi
  echo "smoke: Ctrl-C stopped all $(wc -w <<<"$pids") processes"
}

one_run 300 8000
one_run 60 8123 PORT=8123
