"""What the platform is made of (services.md, events.md, platform.md) — constants only."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import yaml

from mint.kit.catalog import (
    CAPABILITIES,
    DLQ_SUFFIX,
    GRPC_CALLERS,
    GRPC_PORTS,
    HTTP_PORTS,
    ROUTES,
    SERVICE_NAMES,
    SSE_PATH,
    SSE_SERVICE,
    TOPICS,
    services_with,
)

__all__ = [
    "CAPABILITIES",
    "DLQ_SUFFIX",
    "GRPC_CALLERS",
    "GRPC_PORTS",
    "HTTP_PORTS",
    "ROUTES",
    "SSE_PATH",
    "SSE_SERVICE",
    "TOPICS",
]


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _camelize(value: Any) -> Any:
    if isinstance(value, dict):
        return {_camel(str(k)) if "_" in str(k) else k: _camelize(v) for k, v in value.items()}
    return value


def _default_limits_spec() -> dict[str, object]:
    import mint.kit

    path = Path(mint.kit.__file__).parent / "limits_default.yaml"
    document = yaml.safe_load(path.read_text())
    document.pop("version", None)
    spec: dict[str, object] = _camelize(document)
    return spec


GROUP: Final = "mint.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
FIELD_MANAGER: Final = "mint-operator"
FINALIZER: Final = "mint.dev/cleanup"

# Ports, callers, routes and topics come from the platform's one catalogue.
SERVICES: Final[tuple[str, ...]] = SERVICE_NAMES

# What each service needs comes from the kit's capability table (the services read it too).
DATABASE_SERVICES: Final[tuple[str, ...]] = services_with("database")
#: The service whose runtime role differs from the owner role that runs migrations.
SEPARATE_OWNER_SERVICES: Final[tuple[str, ...]] = ("audit",)
LIMITS_SERVICES: Final[tuple[str, ...]] = services_with("limits")
LIMITS_MOUNT_DIR: Final = "/etc/mint/limits"
LIMITS_FILE_NAME: Final = "limits.yaml"
SIGNING_KEYS_DIR: Final = "/etc/mint/keys"
SMTP_SERVICES: Final[tuple[str, ...]] = services_with("smtp")
OBJECT_STORAGE_SERVICES: Final[tuple[str, ...]] = services_with("object_storage")
SIGNING_KEY_SERVICES: Final[tuple[str, ...]] = services_with("signing_keys")

#: The default limits document (the kit's shipped limits_default.yaml, camelCase like MintLimits).
DEFAULT_LIMITS_SPEC: Final[dict[str, object]] = _default_limits_spec()
TIERS: Final[tuple[str, ...]] = ("UNVERIFIED", "BASIC", "VERIFIED")
