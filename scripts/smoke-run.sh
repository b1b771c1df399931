#!/usr/bin/env bash
# Start `make run` with no service variables, wait for readiness, call real endpoints, press
# Ctrl-C (SIGINT to the process group), and fail if anything it started is still alive.
# Twice: the second start reuses the data directory and must be ready within 60 s.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${SMOKE_PORT:-8765}"
BASE="http://127.0.0.1:${PORT}"
HOME_DIR="$PWD/.pagely"
LOG="$(mktemp)"

fail() { echo "smoke: $*" >&2; tail -n 40 "$LOG" >&2; exit 1; }

one_run() {
  local budget=$1 started now
  started=$(date +%s)
  env -u DATABASE_URL -u REDIS_URL -u CELERY_BROKER_URL -u SMTP_HOST \
    setsid make run PORT="$PORT" >"$LOG" 2>&1 &
  local pid=$!
  until curl -sf "$BASE/health/ready" >/dev/null; do
    kill -0 "$pid" 2>/dev/null || fail "make run exited before it was ready"
    now=$(date +%s)
    (( now - started < budget )) || { kill -INT -- -"$pid" || true; fail "not ready within ${budget}s"; }
    sleep 0.5
  done
  echo "smoke: ready after $(( $(date +%s) - started ))s"
  curl -sf "$BASE/docs" | grep -q "swagger" || fail "/docs does not serve Swagger UI"
  curl -s "$BASE/api/v1/does-not-exist" | grep -q '"type":"not_found"' || fail "404 envelope missing"
  curl -sf "$BASE/dev/mail.json" >/dev/null || fail "/dev/mail.json missing"

  kill -INT -- -"$pid"
  wait "$pid" || true
  for _ in $(seq 1 30); do
    pgrep -f "pagely.cli|pagely run|$HOME_DIR" >/dev/null || break
    sleep 0.5
  done
  if pgrep -af "pagely.cli|pagely run|$HOME_DIR"; then fail "processes left behind after Ctrl-C"; fi
  echo "smoke: stopped cleanly"
}

one_run 300
one_run 60
