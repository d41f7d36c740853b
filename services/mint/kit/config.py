"""Typed settings from ``MINT_*`` environment variables.

Every service subclasses :class:`KitSettings`; a bad or missing value stops the service at start
with a message naming the variable (``MINT_<FIELD>``).
"""

from __future__ import annotations

import ipaddress
from functools import cached_property
from pathlib import Path
from typing import Any, Self

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mint.kit.catalog import GRPC_PORTS, HTTP_PORTS, SERVICE_NAMES

__all__ = [
    "GRPC_PORTS",
    "HTTP_PORTS",
    "SERVICE_NAMES",
    "ConfigError",
    "KitSettings",
    "psycopg_url",
]

# Ports and names live in the one catalogue; re-exported for existing imports.


def psycopg_url(url: str) -> str:
    """CloudNativePG's ``<cluster>-app`` Secret carries ``postgresql://`` URIs; SQLAlchemy is
    told to speak psycopg 3."""
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme) :]
    return url


class ConfigError(SystemExit):
    """Raised (exits) when settings are invalid; the message names each bad variable."""


class KitSettings(BaseSettings):
    """Settings shared by every service. Field ``foo_bar`` is read from ``MINT_FOO_BAR``."""

    model_config = SettingsConfigDict(env_prefix="MINT_", extra="ignore", frozen=True)

    service_name: str = "mint"
    environment: str = Field(default="production", pattern="^(dev|test|production)$")
    http_host: str = "0.0.0.0"
    http_port: int = Field(default=0, ge=0, le=65535)
    grpc_port: int = Field(default=0, ge=0, le=65535)
    #: the gRPC listener's address: every interface by default; the dev runner binds loopback
    grpc_host: str = "[::]"
    database_url: str = ""
    #: pooled connections per process: the HTTP worker threads (40) and gRPC workers (16) block
    #: on the database, and a connection opened and closed per request costs more than it holds
    db_pool_size: int = Field(default=20, ge=1, le=100)
    kafka_bootstrap_servers: str = "kafka:9092"
    redis_url: str = "redis://redis:6379/0"
    internal_token: str = Field(default="", min_length=0)
    public_url: str = "http://localhost:8080"
    auth_url: str = "http://auth:4001"  # where the JWKS is fetched from
    #: how long fetched JWKS keys are trusted before the next verification refetches them
    jwks_cache_seconds: float = Field(default=300.0, gt=0)
    trusted_proxies: str = ""  # comma-separated IPs / CIDRs
    log_level: str = "INFO"
    trace_file: Path | None = None
    limits_file: Path | None = None  # the limits capability (platform.md "The limits file")
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None, validation_alias="OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    trace_sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)
    grpc_deadline_seconds: float = Field(default=2.0, gt=0)
    # request bodies, refused with 413 while they stream in (mint.kit.bodies)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1)
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, ge=1)  # a multipart upload's file
    # gRPC targets of the services that have a gRPC port (host:port)
    auth_grpc: str = "auth:50055"
    wallet_grpc: str = "wallet:50051"
    fraud_grpc: str = "fraud:50052"
    kyc_grpc: str = "kyc:50053"
    transactions_grpc: str = "transactions:50054"
    audit_grpc: str = "audit:50056"
    social_grpc: str = "social:50057"
    # events
    outbox_poll_seconds: float = Field(default=0.2, gt=0)
    #: How long the relay, woken by a commit, waits for concurrent commits before publishing.
    outbox_linger_seconds: float = Field(default=0.01, ge=0, le=1)
    #: Failed publishes (the cluster reachable) after which an outbox row is parked.
    outbox_max_attempts: int = Field(default=10, ge=1)
    #: Unpublished (not parked) rows older than this are reported stuck (metric + ERROR log).
    outbox_stuck_seconds: float = Field(default=300.0, gt=0)
    consumer_max_attempts: int = Field(default=5, ge=1)
    #: Messages a consumer takes from one poll and handles in one database transaction (one
    #: ``processed_events`` insert, one commit); a batch that fails is handled one by one.
    consumer_batch_size: int = Field(default=100, ge=1, le=10000)
    #: Kafka consumer groups are ``<prefix>.<service>.<group>`` (tests isolate theirs with it).
    consumer_group_prefix: str = "mint"
    #: Before every topic and consumer group name on the wire (``kit.events.topics.kafka_name``):
    #: tenants sharing one Kafka (platform.md); empty in ``make dev``.
    kafka_prefix: str = Field(default="", pattern=r"^[A-Za-z0-9._-]*$", max_length=160)
    consumer_backoff_seconds: float = Field(default=0.5, ge=0)
    kafka_session_timeout_ms: int = Field(default=10000, ge=1000)

    @field_validator("database_url")
    @classmethod
    def _psycopg_driver(cls, value: str) -> str:
        return psycopg_url(value)

    @property
    def is_dev(self) -> bool:
        return self.environment != "production"

    @cached_property
    def trusted_proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        nets = []
        for part in self.trusted_proxies.split(","):
            if part.strip():
                nets.append(ipaddress.ip_network(part.strip(), strict=False))
        return tuple(nets)

    @classmethod
    def load(cls, **overrides: Any) -> Self:
        """Read the environment; on error exit with every bad ``MINT_*`` variable named."""
        try:
            return cls(**overrides)
        except ValidationError as exc:
            lines = []
            for err in exc.errors():
                field = str(err["loc"][0]) if err["loc"] else "?"
                var = field if field.isupper() else f"MINT_{field.upper()}"
                lines.append(f"  {var}: {err['msg']}")
            raise ConfigError("invalid configuration:\n" + "\n".join(lines)) from None

    def require(self, *fields: str) -> None:
        """Fail fast when a setting a service needs is empty."""
        missing = [f"MINT_{f.upper()}" for f in fields if not getattr(self, f)]
        if missing:
            raise ConfigError(f"missing required setting(s): {', '.join(missing)}")
