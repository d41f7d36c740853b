"""Shared pieces of every rendered object: names, labels, ownerReferences, the config hash."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from mint_operator import catalog
from mint_operator.spec import Obj, Tenant

MANAGED_BY = "app.kubernetes.io/managed-by"
TENANT_LABEL = "mint.dev/tenant"
TENANT_NS_LABEL = "mint.dev/tenant-namespace"
CONFIG_HASH = "mint.dev/config-hash"
#: On what holds data: the uid of the tenant that last applied it. A different uid on an
#: object of ours means a tenant of the same name was re-created and adopts it.
TENANT_UID = "mint.dev/tenant-uid"
#: Kinds that hold data: under ``deletionPolicy: Retain`` they carry no ownerReference.
DATA_KINDS: frozenset[str] = frozenset(
    {"Cluster", "Database", "Kafka", "KafkaNodePool", "KafkaTopic"}
)


def selector_labels(t: Tenant, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "mint",
        "app.kubernetes.io/instance": t.name,
        "app.kubernetes.io/component": component,
    }


def labels(t: Tenant, component: str) -> dict[str, str]:
    return {
        **selector_labels(t, component),
        "app.kubernetes.io/part-of": "mint",
        MANAGED_BY: catalog.FIELD_MANAGER,
        TENANT_LABEL: t.name,
        TENANT_NS_LABEL: t.namespace,
    }


def tenant_selector(t: Tenant) -> str:
    """Label selector of everything the operator made for this tenant."""
    return (
        f"{TENANT_LABEL}={t.name},{TENANT_NS_LABEL}={t.namespace},"
        f"{MANAGED_BY}={catalog.FIELD_MANAGER}"
    )


def owner_reference(t: Tenant) -> Obj:
    return {
        "apiVersion": catalog.API_VERSION,
        "kind": "MintTenant",
        "name": t.name,
        "uid": t.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def meta(
    t: Tenant,
    name: str,
    component: str,
    *,
    namespace: str | None = None,
    annotations: dict[str, str] | None = None,
    holds_data: bool = False,
) -> Obj:
    """Metadata of a child: owned by the tenant when it lives in the tenant's namespace (the
    garbage collector removes it) unless it holds data and the tenant retains data; elsewhere
    only labelled (the finalizer removes it under ``deletionPolicy: Delete``)."""
    ns = namespace or t.namespace
    out: Obj = {"name": name, "namespace": ns, "labels": labels(t, component)}
    if ns == t.namespace and t.uid and not (holds_data and t.retains_data):
        out["ownerReferences"] = [owner_reference(t)]
    notes = dict(annotations or {})
    if holds_data and t.uid:
        notes[TENANT_UID] = t.uid
    if notes:
        out["annotations"] = notes
    return out


def owner_of(obj: Obj) -> tuple[str, str] | None:
    """(namespace, name) of the tenant an object is labelled for; None when not ours."""
    object_labels = (obj.get("metadata") or {}).get("labels") or {}
    if object_labels.get(MANAGED_BY) != catalog.FIELD_MANAGER:
        return None
    tenant, namespace = object_labels.get(TENANT_LABEL), object_labels.get(TENANT_NS_LABEL)
    if not tenant or not namespace:
        return None
    return str(namespace), str(tenant)


def obj(api_version: str, kind: str, metadata: Obj, **rest: Any) -> Obj:
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, **rest}


def digest(*parts: Any) -> str:
    """A stable short hash of JSON-able parts (sorted keys)."""
    raw = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def secret_digest(data: dict[str, str] | None) -> str:
    """What the hash annotation sees of a Secret: a digest of its data, or ``absent``."""
    return "absent" if data is None else digest(data)
