"""What the platform is made of — the one copy of the facts the services, the dev gateway and
the operator all need (services.md top table, events.md topics). Constants only, no imports
beyond the standard library, so the operator can use it without the service stack."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

#: HTTP and gRPC ports of every service (services.md).
HTTP_PORTS: Final[dict[str, int]] = {
    "web": 3000,
    "auth": 4001,
    "wallet": 4002,
    "transactions": 4003,
    "kyc": 4004,
    "analytics": 4005,
    "notifications": 4006,
    "social": 4007,
    "webhook": 4008,
    "admin": 4009,
    "audit": 4010,
    "fraud": 4011,
}
GRPC_PORTS: Final[dict[str, int]] = {
    "wallet": 50051,
    "fraud": 50052,
    "kyc": 50053,
    "transactions": 50054,
    "auth": 50055,
    "audit": 50056,
    "social": 50057,
}
SERVICE_NAMES: Final[tuple[str, ...]] = tuple(HTTP_PORTS)


@dataclass(frozen=True)
class Capabilities:
    """What a service needs from the platform around it. The services (``Service``), the dev
    runner (its environment) and the operator (Deployments, Secrets, NetworkPolicies) all read
    this one table; ``tests/unit/test_capabilities.py`` checks they agree."""

    database: bool = True  # its own PostgreSQL database (platform.md "Databases")
    limits: bool = False  # reads the live limits file (platform.md "The limits file")
    smtp: bool = False  # sends mail (MINT_SMTP_URL)
    object_storage: bool = False  # stores objects in S3 (MINT_S3_*)
    signing_keys: bool = False  # holds the JWT signing keys (MINT_SIGNING_KEYS_DIR)
    grpc_callers: tuple[str, ...] = ()  # who may call its gRPC port (NetworkPolicies)


CAPABILITIES: Final[dict[str, Capabilities]] = {
    "web": Capabilities(database=False),
    "auth": Capabilities(smtp=True, signing_keys=True, grpc_callers=("admin",)),
    "wallet": Capabilities(grpc_callers=("transactions", "admin")),
    "transactions": Capabilities(limits=True, grpc_callers=("admin",)),
    "kyc": Capabilities(limits=True, object_storage=True, grpc_callers=("transactions", "admin")),
    "analytics": Capabilities(),
    "notifications": Capabilities(smtp=True),
    "social": Capabilities(grpc_callers=("transactions",)),
    "webhook": Capabilities(),
    "admin": Capabilities(limits=True, object_storage=True),
    "audit": Capabilities(grpc_callers=("admin",)),
    "fraud": Capabilities(limits=True, grpc_callers=("transactions", "admin")),
}


def services_with(capability: str) -> tuple[str, ...]:
    """The services (catalogue order) whose :class:`Capabilities` has ``capability`` set."""
    return tuple(name for name, caps in CAPABILITIES.items() if getattr(caps, capability))


#: Who calls whom over gRPC (services.md): callee → callers. NetworkPolicies admit only these.
GRPC_CALLERS: Final[dict[str, tuple[str, ...]]] = {
    name: caps.grpc_callers for name, caps in CAPABILITIES.items() if caps.grpc_callers
}

#: The public routes: (path, service, Kubernetes pathType). The dev gateway and the Ingress
#: route exactly these; the longest matching prefix wins.
ROUTES: Final[tuple[tuple[str, str, str], ...]] = (
    ("/", "web", "Prefix"),
    ("/app-admin", "web", "Prefix"),
    ("/api/v1/auth", "auth", "Prefix"),
    ("/.well-known/jwks.json", "auth", "Exact"),
    ("/api/v1/wallet", "wallet", "Prefix"),
    ("/api/v1/transactions", "transactions", "Prefix"),
    ("/api/v1/kyc", "kyc", "Prefix"),
    ("/api/v1/analytics", "analytics", "Prefix"),
    ("/api/v1/notifications", "notifications", "Prefix"),
    ("/api/v1/social", "social", "Prefix"),
    ("/api/v1/webhooks", "webhook", "Prefix"),
    ("/api/v1/admin", "admin", "Prefix"),
)
#: Server-Sent Events: its own Ingress (no buffering, long timeouts).
SSE_PATH: Final = "/api/v1/notifications/stream"
SSE_SERVICE: Final = "notifications"

#: events.md topics → partitions; each has ``<topic>.dlq`` with 1 partition.
TOPICS: Final[dict[str, int]] = {
    "auth.events": 3,
    "wallet.events": 6,
    "transaction.events": 6,
    "fraud.events": 3,
    "kyc.events": 3,
    "social.events": 6,
    "analytics.events": 3,
    "admin.events": 3,
    "webhook.events": 3,
    "audit.events": 3,
}
DLQ_SUFFIX: Final = ".dlq"

#: Access tokens: auth signs them with these claims, every service verifies them.
JWT_ISSUER: Final = "mint-auth"
JWT_AUDIENCE: Final = "mint-services"
DLQ_PARTITIONS: Final = 1
