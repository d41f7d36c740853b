"""kopf handlers: thin glue from events to the reconcilers. Each operator instance gets its own
registry (``build_registry``), so tests can run several in one process."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import kopf

from mint_operator import catalog
from mint_operator.kube import Kube, load_api_client
from mint_operator.limits_sync import LimitsSync
from mint_operator.reconcile import OperatorConfig, TenantReconciler
from mint_operator.render.common import MANAGED_BY, TENANT_LABEL, TENANT_NS_LABEL
from mint_operator.rotation import rotate_signing_keys

log = logging.getLogger("mint_operator")

#: Children whose changes (an edit by hand, a deletion, a status update) trigger a reconcile.
CHILDREN: tuple[tuple[str, str] | tuple[str, str, str], ...] = (
    ("apps", "v1", "deployments"),
    ("apps", "v1", "statefulsets"),
    ("v1", "services"),
    ("v1", "configmaps"),
    ("v1", "secrets"),
    ("v1", "serviceaccounts"),
    ("autoscaling", "v2", "horizontalpodautoscalers"),
    ("policy", "v1", "poddisruptionbudgets"),
    ("networking.k8s.io", "v1", "networkpolicies"),
    ("networking.k8s.io", "v1", "ingresses"),
    ("rbac.authorization.k8s.io", "v1", "rolebindings"),
    ("kafka.strimzi.io", "v1", "kafkatopics"),
    ("postgresql.cnpg.io", "v1", "clusters"),
    ("postgresql.cnpg.io", "v1", "databases"),
)


@dataclass
class Timing:
    resync_seconds: float = 60.0
    limits_status_seconds: float = 15.0
    rotation_check_seconds: float = 3600.0


@dataclass
class Runtime:
    """What the handlers share: the API client, the reconcilers, the limits generations seen."""

    kube: Kube
    tenants: TenantReconciler
    limits: LimitsSync
    seen_limits: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def create(cls, kube: Kube, cfg: OperatorConfig) -> Runtime:
        tenants = TenantReconciler(kube, cfg)
        return cls(kube=kube, tenants=tenants, limits=LimitsSync(kube, tenants))


def _runtime(memo: Any) -> Runtime:
    runtime: Runtime = memo["runtime"]
    return runtime


ChildResource = tuple[str, str] | tuple[str, str, str]


def watched_children(watch_secrets: bool = True) -> list[ChildResource]:
    """The child kinds watched; Secrets only where the operator may list them cluster-wide."""
    return [r for r in CHILDREN if watch_secrets or r != ("v1", "secrets")]


def build_registry(
    timing: Timing | None = None, watch_secrets: bool = True
) -> kopf.OperatorRegistry:
    timing = timing or Timing()
    registry = kopf.OperatorRegistry()
    tenants = (catalog.GROUP, catalog.VERSION, "minttenants")
    limits = (catalog.GROUP, catalog.VERSION, "mintlimits")

    @kopf.on.login(registry=registry)
    def login(memo: Any, **_: Any) -> kopf.ConnectionInfo:
        cfg = load_api_client(memo.get("kubeconfig")).configuration
        header = cfg.get_api_key_with_prefix("BearerToken") or cfg.get_api_key_with_prefix(
            "authorization"
        )
        token = header.split(" ", 1)[-1] if header else None
        return kopf.ConnectionInfo(
            server=cfg.host,
            ca_path=cfg.ssl_ca_cert,
            insecure=not cfg.verify_ssl,
            scheme="Bearer" if token else None,
            token=token,
            certificate_path=cfg.cert_file,
            private_key_path=cfg.key_file,
        )

    @kopf.on.startup(registry=registry)
    def startup(memo: Any, **_: Any) -> None:
        if "runtime" not in memo:
            kube = Kube(load_api_client(memo.get("kubeconfig")))
            memo["runtime"] = Runtime.create(kube, memo.get("config") or OperatorConfig())

    @kopf.on.cleanup(registry=registry)
    def cleanup(memo: Any, **_: Any) -> None:
        if "runtime" in memo:
            _runtime(memo).tenants.coalescer.shutdown()

    # ---- MintTenant ---------------------------------------------------------------------
    @kopf.on.resume(*tenants, registry=registry)
    @kopf.on.create(*tenants, registry=registry)
    @kopf.on.update(*tenants, registry=registry)
    def tenant_changed(namespace: str | None, name: str, memo: Any, **_: Any) -> None:
        tenants = _runtime(memo).tenants
        tenants.coalescer.reopen(f"{namespace}/{name}")  # a tenant re-created under the same name
        tenants.request(str(namespace), name)

    @kopf.timer(*tenants, interval=timing.resync_seconds, idle=None, registry=registry)
    def tenant_resync(namespace: str | None, name: str, memo: Any, **_: Any) -> None:
        _runtime(memo).tenants.request(str(namespace), name)

    @kopf.timer(*tenants, interval=timing.rotation_check_seconds, registry=registry)
    def tenant_rotate_keys(body: Any, memo: Any, **_: Any) -> None:
        rt = _runtime(memo)
        rotate_signing_keys(rt.kube, rt.tenants.cfg, dict(body))

    @kopf.on.delete(*tenants, registry=registry)
    def tenant_deleted(body: Any, memo: Any, logger: Any, **_: Any) -> None:
        removed = _runtime(memo).tenants.cleanup(dict(body))
        logger.info("removed outside the namespace: %s", ", ".join(removed) or "nothing")

    # ---- MintLimits ---------------------------------------------------------------------
    @kopf.on.event(*limits, registry=registry)
    def limits_event(
        type: str, body: Any, namespace: str | None, name: str, memo: Any, **_: Any
    ) -> None:
        rt = _runtime(memo)
        key = f"{namespace}/{name}"
        generation = int(body.get("metadata", {}).get("generation") or 0)
        with rt.lock:
            if type != "DELETED" and rt.seen_limits.get(key) == generation:
                return  # a status or metadata change only
            if type == "DELETED":
                rt.seen_limits.pop(key, None)
            else:
                rt.seen_limits[key] = generation
        rt.limits.changed(str(namespace), name)

    @kopf.timer(*limits, interval=timing.limits_status_seconds, registry=registry)
    def limits_status(namespace: str | None, name: str, memo: Any, **_: Any) -> None:
        _runtime(memo).limits.refresh_status(str(namespace), name)

    # ---- children: drift correction and status freshness --------------------------------
    for resource in watched_children(watch_secrets):
        kopf.on.event(
            *resource,
            id=f"child-{resource[-1]}",
            labels={MANAGED_BY: catalog.FIELD_MANAGER, TENANT_LABEL: kopf.PRESENT},
            registry=registry,
        )(_child_event)
    return registry


def _child_event(type: str | None, body: Any, memo: Any, **_: Any) -> None:
    if type is None:  # the initial listing; MintTenant's resume handler covers it
        return
    labels = body.get("metadata", {}).get("labels") or {}
    tenant, namespace = labels.get(TENANT_LABEL), labels.get(TENANT_NS_LABEL)
    if tenant and namespace:
        _runtime(memo).tenants.request(namespace, tenant)
