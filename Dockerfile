# One image for every role: the command chooses (api, worker, beat, migrate). Built with uv,
# without dev dependencies, bytecode compiled, run as a non-root user.
#
#   docker build -t pagely .
#   docker run --env-file .env pagely api        # or: worker, beat, migrate
#
# BASE is any Debian-based image with Python 3.11-3.13 as `python3` (default: the official
# one). Both stages use it, so the virtual environment's interpreter exists at run time.
ARG BASE=python:3.12-slim-bookworm

FROM ${BASE} AS build
ARG UV_VERSION=0.13.9
# Extra CA certificates for the build alone (a proxy between the builder and PyPI): put a
# PEM file in deploy/docker/build-ca/. Only this stage sees it; the image does not.
COPY deploy/docker/build-ca/ /tmp/build-ca/
COPY deploy/docker/with-build-ca.sh /usr/local/bin/with-build-ca
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /opt/uv \
    && with-build-ca /opt/uv/bin/pip install --no-cache-dir "uv==${UV_VERSION}"
WORKDIR /app
# Dependencies first (a layer that changes only with the lock file), then the project.
COPY pyproject.toml uv.lock README.md ./
RUN with-build-ca /opt/uv/bin/uv sync --frozen --no-dev --no-install-project --python python3
COPY src/ src/
COPY migrations/ migrations/
COPY alembic.ini ./
RUN with-build-ca /opt/uv/bin/uv sync --frozen --no-dev --no-editable --python python3

FROM ${BASE}
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ENVIRONMENT=production \
    HOST=0.0.0.0 \
    PORT=8000
RUN groupadd --system --gid 10001 pagely \
    && useradd --system --uid 10001 --gid pagely --home-dir /app --shell /usr/sbin/nologin pagely
WORKDIR /app
COPY --from=build --chown=root:root /app/.venv /app/.venv
COPY --from=build --chown=root:root /app/migrations /app/migrations
COPY --from=build --chown=root:root /app/alembic.ini /app/alembic.ini
COPY deploy/docker/entrypoint.sh /usr/local/bin/pagely-entrypoint
USER 10001:10001
EXPOSE 8000
# Liveness only (touches no dependency): an orchestrator's readiness probe is /health/ready.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8000'), timeout=2)"]
ENTRYPOINT ["/usr/local/bin/pagely-entrypoint"]
CMD ["api"]
