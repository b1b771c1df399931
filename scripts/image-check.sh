#!/usr/bin/env bash
# Build the image and prove it runs: migrate a fresh database from a container, start the
# API from the image and wait for /health/ready, then check what the image must and must not
# hold (non-root, no dev dependencies, no build certificate). CI runs it (.ci/run); it needs
# Docker (Debian's docker.io: `make image-deps`) and the machine's PostgreSQL and Redis
# (TEST_DATABASE_URL, TEST_REDIS_URL).
#
# No image registry is reachable here, so unless BASE names one, the base image is built
# locally: a minimal Debian bookworm with its Python (debootstrap, imported into Docker).
# Builds use the classic builder (no buildx here) and the host network, so every connection
# stays on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."

server_url="${TEST_DATABASE_URL:-postgresql+asyncpg://postgres@127.0.0.1:5432/postgres}"
redis_url="${TEST_REDIS_URL:-redis://127.0.0.1:6379/0}"
redis_url="${redis_url%/*}/14"  # a database of its own
tag="pagely:check"
base="${BASE:-}"

if ! docker info >/dev/null 2>&1; then
    echo "starting dockerd"
    nohup dockerd >/tmp/pagely-dockerd.log 2>&1 &
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
fi

if [ -z "$base" ]; then
    base="pagely-base:bookworm"
    if ! docker image inspect "$base" >/dev/null 2>&1; then
        echo "== building the base image $base (debootstrap, minbase + python3)"
        rootfs="$(mktemp -d)"
        debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
            bookworm "$rootfs" http://deb.debian.org/debian >/tmp/pagely-debootstrap.log
        tar -C "$rootfs" -c . | docker import - "$base" >/dev/null
        rm -rf "$rootfs"
    fi
fi

# The machine reaches PyPI through its own CA bundle: lend it to the build stage only.
ca="deploy/docker/build-ca/ci.pem"
if [ -n "${SSL_CERT_FILE:-}" ] && [ -f "$SSL_CERT_FILE" ]; then cp "$SSL_CERT_FILE" "$ca"; fi
trap 'rm -f "$ca"' EXIT

echo "== docker build (BASE=$base)"
started=$(date +%s)
DOCKER_BUILDKIT=0 docker build --network host --build-arg "BASE=$base" -t "$tag" . >/tmp/pagely-image-build.log 2>&1 \
    || { tail -40 /tmp/pagely-image-build.log; exit 1; }
echo "built $tag in $(( $(date +%s) - started )) s, $(docker image inspect "$tag" --format '{{.Size}}' | awk '{printf "%d MB", $1/1e6}')"

db="pagely_image_check"
admin_url="${server_url/+asyncpg/}"
psql "$admin_url" -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
db_url="${server_url%/*}/$db"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
env_args=(
    -e "DATABASE_URL=$db_url" -e "REDIS_URL=$redis_url" -e "CELERY_BROKER_URL=$redis_url"
    -e "JWT_SECRET=$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')"
    -e "PORT=$port" -e "HOST=127.0.0.1" -e "PUBLIC_BASE_URL=http://127.0.0.1:$port"
    -e "ALLOWED_HOSTS=127.0.0.1" -e "WEB_CONCURRENCY=2"
)
name="pagely-check-$$"
cleanup() {
    docker rm -f "$name" >/dev/null 2>&1 || true
    psql "$admin_url" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
    rm -f "$ca"
}
trap cleanup EXIT

echo "== migrate, from the image"
docker run --rm --network host "${env_args[@]}" "$tag" migrate

echo "== the API, from the image"
docker run -d --name "$name" --network host "${env_args[@]}" "$tag" api >/dev/null
for _ in $(seq 60); do
    if curl -fsS "http://127.0.0.1:$port/health/ready" >/tmp/pagely-ready.json 2>/dev/null; then break; fi
    sleep 0.5
done
curl -fsS "http://127.0.0.1:$port/health/ready" || { docker logs "$name" | tail -30; exit 1; }
echo
curl -fsS "http://127.0.0.1:$port/api/v1/books" >/dev/null
curl -fsS "http://127.0.0.1:$port/metrics" | grep -q '^pagely_http_requests_total{method="GET",route="/books",status="200"}'
status=$(docker inspect "$name" --format '{{.State.Health.Status}}')
for _ in $(seq 40); do
    [ "$status" = healthy ] && break
    sleep 0.5; status=$(docker inspect "$name" --format '{{.State.Health.Status}}')
done
echo "container health: $status"
[ "$status" = healthy ]

echo "== what the image holds"
[ "$(docker run --rm "$tag" id -u)" = 10001 ]
docker run --rm "$tag" python3 -c 'import pagely, uvicorn, celery' 
if docker run --rm "$tag" python3 -c 'import pytest' 2>/dev/null; then echo "dev dependencies in the image"; exit 1; fi
if docker run --rm --entrypoint sh "$tag" -c 'ls /tmp/build-ca /opt/uv' 2>/dev/null; then echo "build-only files in the image"; exit 1; fi
compiled=$(docker run --rm --entrypoint sh "$tag" -c 'find /app/.venv -name "*.pyc" | wc -l')
[ "$compiled" -gt 1000 ] || { echo "bytecode not compiled ($compiled .pyc files)"; exit 1; }
echo "image check passed: non-root, $compiled compiled modules, no dev dependencies, ready in a container"
