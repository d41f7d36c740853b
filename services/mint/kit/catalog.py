"""What the platform is made of — the one copy of the facts the services, the dev gateway and
the operator all need (services.md top table, events.md topics). Constants only, no imports
beyond the standard library, so the operator can use it without the service stack."""

from __future__ import annotations

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

#: Who calls whom over gRPC (services.md): callee → callers. NetworkPolicies admit only these.
GRPC_CALLERS: Final[dict[str, tuple[str, ...]]] = {
    "kyc": ("transactions", "admin"),
    "fraud": ("transactions", "admin"),
    "wallet": ("transactions", "admin"),
    "social": ("transactions",),
    "auth": ("admin",),
    "transactions": ("admin",),
    "audit": ("admin",),
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
DLQ_PARTITIONS: Final = 1
