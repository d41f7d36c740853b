"""MintLimits: push a change to every tenant using it (their limits ConfigMap), and report in its
status which services apply the written version (the ``limits_version`` of their ``/readyz``)."""

from __future__ import annotations

import logging

import httpx

from mint_operator import catalog
from mint_operator.kube import ApiError, Kube
from mint_operator.reconcile import TenantReconciler
from mint_operator.render.common import selector_labels
from mint_operator.render.limits import limits_status
from mint_operator.render.status import merge_conditions, readiness_url
from mint_operator.spec import Obj, Tenant

log = logging.getLogger("mint_operator.limits")


def http_probe(kube: Kube, t: Tenant, service: str) -> str | None:
    """The limits version the ready pods of ``service`` report at their readiness endpoint
    (``limits_version`` of ``/readyz``, asked where each pod's readiness probe asks): what the
    running processes apply, not what was written. ``None`` when no ready pod answers,
    ``"mixed"`` while they disagree (a rollout or a file swap in progress)."""
    selector = ",".join(f"{k}={v}" for k, v in selector_labels(t, service).items())
    versions: set[str] = set()
    for pod in kube.list("v1", "Pod", t.namespace, selector):
        url = readiness_url(pod, service, catalog.HTTP_PORTS[service])
        if url is None:
            continue
        try:
            version = httpx.get(url, timeout=2.0).json().get("limits_version")
        except (httpx.HTTPError, ValueError, AttributeError):
            continue
        if version is not None:
            versions.add(str(version))
    if not versions:
        return None
    return versions.pop() if len(versions) == 1 else "mixed"


class LimitsSync:
    def __init__(self, kube: Kube, tenants: TenantReconciler) -> None:
        self.kube = kube
        self.tenants = tenants

    def users(self, namespace: str, name: str) -> list[Tenant]:
        """The tenants of this namespace whose limitsRef resolves to ``name``."""
        out = []
        for body in self.kube.list(catalog.API_VERSION, "MintTenant", namespace):
            t = Tenant.from_object(body, self.tenants.cfg.operator_namespace)
            if t.limits_name == name and not body["metadata"].get("deletionTimestamp"):
                out.append(t)
        return out

    def changed(self, namespace: str, name: str) -> None:
        """A MintLimits was created, changed or deleted: rewrite the users' ConfigMaps."""
        for t in self.users(namespace, name):
            self.tenants.request(t.namespace, t.name)
        self.refresh_status(namespace, name)

    def refresh_status(self, namespace: str, name: str) -> Obj | None:
        limits = self.kube.get(catalog.API_VERSION, "MintLimits", namespace, name)
        if limits is None:
            return None
        users = self.users(namespace, name)
        probe = self.tenants.cfg.probe or http_probe
        per_service: dict[str, set[str | None]] = {}
        for t in users:
            for svc in catalog.LIMITS_SERVICES:
                if t.is_enabled(svc):
                    per_service.setdefault(svc, set()).add(_safe_probe(probe, self.kube, t, svc))
        reported: dict[str, str | None] = {}
        for svc, seen in per_service.items():
            reported[svc] = seen.pop() if len(seen) == 1 else "mixed"
        status = limits_status(
            limits, reported, [f"{t.namespace}/{t.limits_configmap}" for t in users]
        )
        old: Obj = limits.get("status") or {}
        status["conditions"] = merge_conditions(
            list(old.get("conditions") or []), status["conditions"], self.tenants.cfg.now()
        )
        if {k: v for k, v in old.items() if k != "kopf"} != status:
            patch: Obj = {"status": {**status}}
            gone = {k: None for k in (old.get("services") or {}) if k not in status["services"]}
            patch["status"]["services"] = {**gone, **status["services"]}
            try:
                self.kube.patch(
                    catalog.API_VERSION, "MintLimits", namespace, name, patch, subresource="status"
                )
            except ApiError as exc:
                if exc.status != 404:
                    raise
        return status


def _safe_probe(probe: object, kube: Kube, t: Tenant, service: str) -> str | None:
    try:
        result = probe(kube, t, service)  # type: ignore[operator]
    except Exception as exc:
        log.debug("probe of %s/%s failed: %s", t.key, service, exc)
        return None
    return None if result is None else str(result)
