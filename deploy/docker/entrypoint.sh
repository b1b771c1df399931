#!/bin/sh
# The image's roles. Anything else is run as given (`docker run pagely pagely --help`).
set -eu
role="${1:-api}"
case "$role" in
    api)
        shift || true
        exec pagely serve --host "${HOST:-0.0.0.0}" --port "${PORT:-8000}" --workers "${WEB_CONCURRENCY:-2}" "$@" ;;
    worker)
        shift
        exec pagely worker --concurrency "${WORKER_CONCURRENCY:-2}" "$@" ;;
    beat)
        shift
        exec pagely beat "$@" ;;
    migrate)
        shift
        exec pagely migrate "$@" ;;
    *)
        exec "$@" ;;
esac
