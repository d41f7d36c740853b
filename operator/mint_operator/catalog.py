"""What the platform is made of (services.md, events.md, platform.md) — constants only."""

from __future__ import annotations

from typing import Final

GROUP: Final = "mint.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
FIELD_MANAGER: Final = "mint-operator"
FINALIZER: Final = "mint.dev/cleanup"

#: HTTP and gRPC ports (services.md top table; the kit's HTTP_PORTS / GRPC_PORTS).
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
SERVICES: Final[tuple[str, ...]] = tuple(HTTP_PORTS)

#: Who calls whom over gRPC (services.md): callee → callers.
GRPC_CALLERS: Final[dict[str, tuple[str, ...]]] = {
    "kyc": ("transactions", "admin"),
    "fraud": ("transactions", "admin"),
    "wallet": ("transactions", "admin"),
    "social": ("transactions",),
    "auth": ("admin",),
    "transactions": ("admin",),
    "audit": ("admin",),
}

#: Every service but web owns a database (platform.md "Databases").
DATABASE_SERVICES: Final[tuple[str, ...]] = tuple(s for s in SERVICES if s != "web")
#: The service whose runtime role differs from the owner role that runs migrations.
SEPARATE_OWNER_SERVICES: Final[tuple[str, ...]] = ("audit",)
#: Services reading the limits file (platform.md "The limits file").
LIMITS_SERVICES: Final[tuple[str, ...]] = ("kyc", "fraud", "transactions", "admin")
LIMITS_MOUNT_DIR: Final = "/etc/mint/limits"
LIMITS_FILE_NAME: Final = "limits.yaml"
SIGNING_KEYS_DIR: Final = "/etc/mint/keys"
#: Services that send mail and that store objects.
SMTP_SERVICES: Final[tuple[str, ...]] = ("auth", "notifications")
OBJECT_STORAGE_SERVICES: Final[tuple[str, ...]] = ("kyc", "admin")

#: Gateway routes (README "Routes"): path → (service, pathType).
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
SSE_PATH: Final = "/api/v1/notifications/stream"
SSE_SERVICE: Final = "notifications"

#: events.md topics → partitions; each has ``<topic>.dlq`` (1 partition by default).
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

#: The default limits document (services/mint/kit/limits_default.yaml, camelCase like MintLimits).
DEFAULT_LIMITS_SPEC: Final[dict[str, object]] = {
    "currency": "USD",
    "tiers": {
        "UNVERIFIED": {"perTransaction": 5000, "daily": 10000, "monthly": 20000},
        "BASIC": {"perTransaction": 50000, "daily": 200000, "monthly": 1000000},
        "VERIFIED": {"perTransaction": 1000000, "daily": 5000000, "monthly": 20000000},
    },
    "fraud": {
        "reviewThreshold": 50,
        "blockThreshold": 100,
        "velocity": {"windowSeconds": 3600, "maxTransfers": 5},
        "reviewHoldHours": 72,
    },
}
TIERS: Final[tuple[str, ...]] = ("UNVERIFIED", "BASIC", "VERIFIED")
