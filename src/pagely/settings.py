"""All configuration in one validated object, read from the environment and `.env`."""

from __future__ import annotations

import ipaddress
import re
import secrets
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Environment = Literal["development", "test", "staging", "production"]

# Values copied from .env.example or tutorials; never acceptable as a real secret.
PLACEHOLDER_SECRETS = frozenset({"", "change-me", "changeme", "secret", "dev-secret", "replace-me"})
MIN_SECRET_LENGTH = 32


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


CsvList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    # An empty variable (`DB_POOL_SIZE=` as in .env.example) means the default.
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_ignore_empty=True)

    # Production unless said otherwise: `make run` and the tests set development/test.
    environment: Environment = "production"
    app_name: str = "Pagely"
    api_prefix: str = "/api/v1"

    # Services. Empty means "not configured": `pagely run` then starts embedded ones.
    database_url: str | None = None
    redis_url: str | None = None
    celery_broker_url: str | None = None
    # Requests one API process works on at once. One more is answered at once with 503
    # `overloaded` and Retry-After (health probes exempt), so admitted requests keep their
    # latency; the pools below are sized from it unless set.
    # 32: measured better than 64 on both overload scenarios (docs/performance.md), with a
    # PostgreSQL pool of 16 that leaves PostgreSQL less to contend over.
    max_in_flight: int = Field(default=32, ge=1)
    # PostgreSQL connections per process: max_in_flight / 2, no overflow, by default (a
    # request holds one briefly; more would only queue inside PostgreSQL). A wait for one
    # longer than SERVICE_TIMEOUT_SECONDS is a 503 `overloaded`, never a 500.
    db_pool_size: int | None = Field(default=None, ge=1)
    db_max_overflow: int = Field(default=0, ge=0)
    # Redis connections per process (a blocking pool, waits bounded as above): 2 x
    # max_in_flight by default.
    redis_max_connections: int | None = Field(default=None, ge=1)
    db_statement_timeout_ms: int = Field(default=15_000, ge=0)
    # A pooled connection unused this long is pinged before it is handed out (0: always).
    db_ping_after_idle_seconds: float = Field(default=10.0, ge=0)
    service_timeout_seconds: float = Field(default=2.0, gt=0)
    # Catalog: how long a cached book or list may live (writes update it at once anyway),
    # the longest search query, and how long an Idempotency-Key is remembered.
    cache_ttl_seconds: int = Field(default=120, ge=1)
    search_max_query_length: int = Field(default=200, ge=10, le=1000)
    idempotency_key_hours: int = Field(default=24, ge=1)
    idempotency_prune_interval_seconds: float = Field(default=3600.0, gt=0)
    # Answer cache hits for GET /books/{id} and the listing's first page before FastAPI's
    # routing (same response, a fraction of the cost; see catalog/books/fastpath.py). Off only to
    # compare the two paths.
    catalog_fast_path: bool = True
    startup_timeout_seconds: float = Field(default=20.0, ge=0)

    # Mail
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    smtp_timeout_seconds: float = Field(default=30.0, gt=0)
    mail_from: str = "Pagely <no-reply@pagely.local>"
    dev_mail_dir: str | None = None

    # Background jobs. Retries back off exponentially (with jitter) from the base to the cap;
    # a row still pending this long after it was due is re-dispatched by the sweep.
    celery_queue: str = "pagely"
    celery_visibility_timeout_seconds: int = Field(default=3600, ge=60)
    outbox_max_attempts: int = Field(default=8, ge=1, le=50)
    outbox_retry_base_seconds: float = Field(default=10.0, gt=0)
    outbox_retry_max_seconds: float = Field(default=900.0, gt=0)
    outbox_redispatch_after_seconds: float = Field(default=120.0, gt=0)
    outbox_sweep_interval_seconds: float = Field(default=30.0, gt=0)
    outbox_publish_timeout_seconds: float = Field(default=2.0, gt=0)

    # Security
    jwt_secret: SecretStr | None = None
    access_token_minutes: int = Field(default=15, ge=1, le=24 * 60)
    refresh_token_days: int = Field(default=30, ge=1, le=365)
    # A session slides by refresh_token_days on every refresh, never past this from sign-in.
    session_max_days: int = Field(default=90, ge=1, le=3650)
    # A rotated refresh token presented again this soon gets the same successor pair (a
    # client's concurrent refreshes); later, it is reuse and ends the session.
    refresh_reuse_grace_seconds: int = Field(default=30, ge=0, le=3600)
    verify_token_hours: int = Field(default=48, ge=1)
    reset_token_minutes: int = Field(default=60, ge=5)
    # Rate limits, in the `limits` notation ("10/15minutes"), shared by every API process.
    rate_limit_signin_account: str = "10/15minutes"
    rate_limit_signin_ip: str = "100/15minutes"
    # Failed sign-ins from a device that has signed in to the account before (its device_id):
    # counted apart from the account's, so strangers locking the account out leave it alone.
    rate_limit_signin_device: str = "10/15minutes"
    rate_limit_register_ip: str = "20/hour"
    rate_limit_email_account: str = "5/hour"
    rate_limit_email_ip: str = "30/hour"
    rate_limit_refresh_session: str = "60/hour"
    # Proxies whose X-Forwarded-For is believed (IPs or CIDRs); empty: the peer address.
    trusted_proxies: CsvList = Field(default_factory=list)
    # Who may read /metrics (the caller's address as rate limits see it: TRUSTED_PROXIES
    # apply), comma-separated IPs or CIDRs.
    metrics_allow_from: CsvList = Field(default_factory=lambda: ["127.0.0.1/32", "::1/128"])
    # Unhandled errors of the API and the worker to Sentry (scrubbed; core/errorreporting.py).
    sentry_dsn: SecretStr | None = None
    # A worker's own metrics server (its pool's task metrics) on this port; 0: none.
    worker_metrics_port: int = Field(default=0, ge=0, le=65535)
    worker_metrics_host: str = "127.0.0.1"
    public_base_url: str = "http://127.0.0.1:8000"
    app_scheme: str = "pagely"
    # App links: /.well-known/apple-app-site-association and /.well-known/assetlinks.json let
    # the installed app open the verification and reset links (each 404 while unset).
    # IOS_APP_IDS: TEAMID.bundle.id, comma-separated; ANDROID_CERT_FINGERPRINTS: the SHA-256
    # fingerprints (AA:BB:..., 32 pairs) of the app's signing certificates, comma-separated.
    ios_app_ids: CsvList = Field(default_factory=list)
    android_app_package: str | None = None
    android_cert_fingerprints: CsvList = Field(default_factory=list)

    @field_validator("metrics_allow_from")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"not an IP address or network: {entry!r}") from None
        return value

    @field_validator("ios_app_ids", "android_cert_fingerprints", mode="before")
    @classmethod
    def _split_app_link_lists(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("ios_app_ids")
    @classmethod
    def _check_ios_app_ids(cls, value: list[str]) -> list[str]:
        bad = [
            v
            for v in value
            if not re.fullmatch(r"[A-Z0-9]{10}\.[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*", v)
        ]
        if bad:
            raise ValueError(
                f"expected TEAMID.bundle.id (a 10-character team id): {', '.join(bad)}"
            )
        return value

    @field_validator("android_app_package")
    @classmethod
    def _check_android_package(cls, value: str | None) -> str | None:
        if value and not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+", value):
            raise ValueError(f"expected an application id such as dev.pagely.app: {value}")
        return value or None

    @field_validator("android_cert_fingerprints")
    @classmethod
    def _check_fingerprints(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if not re.fullmatch(r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){31}", v)]
        if bad:
            raise ValueError(
                f"expected SHA-256 fingerprints, AA:BB:... (32 pairs): {', '.join(bad)}"
            )
        return [v.upper() for v in value]

    # HTTP
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # An idle keep-alive connection is closed after this long. Longer than the longest
    # Retry-After a refusal sends (16 s), so a client that waits as told comes back on its
    # open connection instead of paying for a new one; and longer than the idle timeout of
    # the load balancer in front, so the balancer, never the server, closes first.
    keep_alive_seconds: int = Field(default=30, ge=1)
    # Net new container objects before the collector's youngest generation runs (CPython's
    # default is 700). A request allocates and frees thousands: at 700 the collector ran about
    # 200 times a second under load, 6-8 % of the process's CPU and more with 1,000 connections
    # open (docs/performance.md). Garbage in cycles waits at most this many objects longer.
    gc_threshold: int = Field(default=50_000, ge=700)
    cors_origins: CsvList = Field(default_factory=list)
    allowed_hosts: CsvList = Field(default_factory=lambda: ["*"])
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # Request headers beyond these (all names and values together, or how many) get 431.
    max_header_bytes: int = Field(default=16_384, ge=1024)
    max_header_count: int = Field(default=100, ge=10)

    # Logging
    log_level: str = "INFO"
    log_json: bool = True

    # Demo data for `make run`
    demo_admin_email: str = "admin@pagely.dev"
    demo_admin_password: SecretStr = SecretStr("pagely-admin-demo")

    @model_validator(mode="before")
    @classmethod
    def _split_lists(cls, data: object) -> object:
        if isinstance(data, dict):
            for key in ("cors_origins", "allowed_hosts", "trusted_proxies", "metrics_allow_from",
                        "CORS_ORIGINS", "ALLOWED_HOSTS", "TRUSTED_PROXIES",
                        "METRICS_ALLOW_FROM"):  # fmt: skip
                if key in data:
                    data[key] = _split_csv(data[key])
        return data

    @model_validator(mode="after")
    def _retry_delays_fit_the_broker(self) -> Settings:
        # Redis re-delivers an unacknowledged message after the visibility timeout, so a
        # retry waiting longer than that would run twice.
        if self.outbox_retry_max_seconds >= self.celery_visibility_timeout_seconds:
            raise ValueError(
                "OUTBOX_RETRY_MAX_SECONDS must be shorter than CELERY_VISIBILITY_TIMEOUT_SECONDS"
            )
        return self

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        if self.is_dev_or_test:
            return self
        secret = self.jwt_secret.get_secret_value() if self.jwt_secret else ""
        if secret.strip().lower() in PLACEHOLDER_SECRETS or len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"JWT_SECRET is missing, a placeholder or shorter than {MIN_SECRET_LENGTH} "
                "characters; "
                f'generate one with: python -c "import secrets; print(secrets.token_urlsafe(48))"'
            )
        if "*" in self.cors_origins:
            raise ValueError("CORS_ORIGINS may not be '*' outside development: list the origins")
        return self

    @property
    def is_dev_or_test(self) -> bool:
        return self.environment in ("development", "test")

    @property
    def broker_url(self) -> str | None:
        return self.celery_broker_url or self.redis_url

    def db_pool(self) -> int:
        return self.db_pool_size or max(1, self.max_in_flight // 2)

    def redis_pool(self) -> int:
        return self.redis_max_connections or 2 * self.max_in_flight

    def require(self, name: Literal["database_url", "redis_url", "smtp_host"]) -> str:
        value = getattr(self, name)
        if not value:
            raise ConfigError(
                f"{name.upper()} is not set: point it at your server, or use `make run` "
                f"to start embedded development services"
            )
        return str(value)

    def jwt_key(self) -> str:
        if self.jwt_secret is not None and self.jwt_secret.get_secret_value():
            return self.jwt_secret.get_secret_value()
        # Development and test only (the validator refuses a missing secret elsewhere). The CLI
        # exports the checkout's development key as JWT_SECRET; an app built without it gets a
        # random key of its own process, so no signing key ever lives in the source.
        return _process_key()


@lru_cache(maxsize=1)
def _process_key() -> str:
    return secrets.token_urlsafe(48)


class ConfigError(RuntimeError):
    """A configuration problem, explained in one line."""


def load_settings(**overrides: object) -> Settings:
    """Build settings, turning pydantic's multi-line report into one line per problem."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: "
            + err["msg"].removeprefix("Value error, ")
            for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
