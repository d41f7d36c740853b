"""Reconciling one MintTenant: create missing Secrets, render, server-side apply, prune what is
no longer wanted, read back, and write the status. Idempotent; safe to call any time (events of
the tenant, of its children, the resync timer)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mint_operator import catalog
from mint_operator.kube import ApiError, Kube
from mint_operator.render import DEFAULT_LIMITS_ROLE, render_initial_secrets, render_tenant
from mint_operator.render.common import secret_digest, tenant_selector
from mint_operator.render.env import referenced_secrets, service_env
from mint_operator.render.kafka import topic_resource_name
from mint_operator.render.limits import limits_document
from mint_operator.render.status import Observed, tenant_status
from mint_operator.spec import Obj, Tenant

log = logging.getLogger("mint_operator")

#: Kinds pruned when a tenant no longer wants them (data-bearing kinds — CNPG Clusters, Kafka
#: topics, Secrets, the limits ConfigMap — are never pruned; they go with the tenant).
PRUNABLE: tuple[tuple[str, str], ...] = (
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("v1", "Service"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("policy/v1", "PodDisruptionBudget"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("networking.k8s.io/v1", "Ingress"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("v1", "ServiceAccount"),
)

Probe = Callable[[Kube, Tenant, str], "str | None"]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class OperatorConfig:
    operator_namespace: str = "mint-system"
    limits_role: str = DEFAULT_LIMITS_ROLE
    probe: Probe | None = None  # service's reported limits_version (default: HTTP /readyz)
    now: Callable[[], datetime] = utcnow


@dataclass
class _KeyState:
    running: bool = False
    dirty: bool = False
    closed: bool = False  # the tenant is being deleted: no more reconciles


class Coalescer:
    """Runs reconciles on worker threads, at most one per key at a time; requests arriving
    meanwhile collapse into one more run (a burst of child events costs two reconciles, not
    twenty). ``submit`` never blocks, so a kopf handler never holds up the object's other
    events (a deletion must not wait behind a reconcile)."""

    def __init__(self, workers: int = 4) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, _KeyState] = {}
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="reconcile")

    def submit(self, key: str, fn: Callable[[], None]) -> bool:
        """Schedule ``fn``; False when it was folded into a run already in progress."""
        with self._lock:
            st = self._states.setdefault(key, _KeyState())
            if st.closed:
                return False
            if st.running:
                st.dirty = True
                return False
            st.running = True
        self._pool.submit(self._loop, key, st, fn)
        return True

    def _loop(self, key: str, st: _KeyState, fn: Callable[[], None]) -> None:
        while True:
            try:
                fn()
            except Exception:
                log.exception("reconcile of %s failed; the resync timer retries", key)
            with self._lock:
                if not st.dirty:
                    st.running = False
                    return
                st.dirty = False

    def close(self, key: str, timeout: float = 120.0) -> None:
        """Refuse further runs for ``key`` and wait for the one in progress to finish."""
        deadline = time.monotonic() + timeout
        with self._lock:
            st = self._states.setdefault(key, _KeyState())
            st.closed, st.dirty = True, False
        while time.monotonic() < deadline:
            with self._lock:
                if not st.running:
                    return
            time.sleep(0.05)

    def reopen(self, key: str) -> None:
        with self._lock:
            self._states.setdefault(key, _KeyState()).closed = False

    def idle(self) -> bool:
        with self._lock:
            return not any(st.running for st in self._states.values())

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class TenantReconciler:
    def __init__(self, kube: Kube, cfg: OperatorConfig) -> None:
        self.kube = kube
        self.cfg = cfg
        self.coalescer = Coalescer()

    # ---- entry points -------------------------------------------------------------------
    def request(self, namespace: str, name: str) -> None:
        def once() -> None:
            self.reconcile(namespace, name)

        self.coalescer.submit(f"{namespace}/{name}", once)

    def reconcile(self, namespace: str, name: str) -> Obj | None:
        body = self.kube.get(catalog.API_VERSION, "MintTenant", namespace, name)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return None
        t = Tenant.from_object(body, self.cfg.operator_namespace)
        seen = Observed()
        self._ensure_secrets(t, seen)
        limits = self.kube.get(catalog.API_VERSION, "MintLimits", t.namespace, t.limits_name)
        desired = render_tenant(t, limits, self._secret_digests(t), self.cfg.limits_role)
        applied: dict[tuple[str, str], Obj] = {}
        for obj in desired:
            try:
                applied[(obj["kind"], obj["metadata"]["name"])] = self.kube.apply(obj)
            except ApiError as exc:
                seen.errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {exc.message}")
                log.warning("apply failed for %s: %s", t.key, exc)
        if not seen.errors:
            self._prune(t, desired)
        self._observe(t, applied, seen)
        seen.limits_version = str(limits_document(limits)["version"])
        status = tenant_status(t, seen, body.get("status"), self.cfg.now())
        self._write_status(t, body.get("status") or {}, status)
        return status

    # ---- steps --------------------------------------------------------------------------
    def _ensure_secrets(self, t: Tenant, seen: Observed) -> None:
        for secret in render_initial_secrets(t, self.cfg.now()):
            meta = secret["metadata"]
            try:
                absent = self.kube.get("v1", "Secret", meta["namespace"], meta["name"]) is None
                if absent and self.kube.create(secret) is not None:
                    log.info("created secret %s/%s", meta["namespace"], meta["name"])
            except ApiError as exc:
                seen.errors.append(f"Secret/{meta['name']}: {exc.message}")

    def _secret_digests(self, t: Tenant) -> dict[str, str]:
        names = {n for s in t.enabled_services for n in referenced_secrets(service_env(t, s.name))}
        out = {}
        for name in sorted(names):
            secret = self.kube.get("v1", "Secret", t.namespace, name)
            out[name] = secret_digest(None if secret is None else dict(secret.get("data") or {}))
        return out

    def _prune(self, t: Tenant, desired: list[Obj]) -> None:
        wanted = {(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]) for o in desired}
        selector = tenant_selector(t)
        for api_version, kind in PRUNABLE:
            try:
                existing = self.kube.list(api_version, kind, t.namespace, selector)
            except ApiError as exc:
                log.warning("cannot list %s for pruning: %s", kind, exc)
                continue
            for item in existing:
                meta = item["metadata"]
                if (kind, meta["namespace"], meta["name"]) not in wanted:
                    log.info("pruning %s %s/%s", kind, meta["namespace"], meta["name"])
                    self.kube.delete(api_version, kind, meta["namespace"], meta["name"])

    def _observe(self, t: Tenant, applied: dict[tuple[str, str], Obj], seen: Observed) -> None:
        for svc in t.enabled_services:
            seen.deployments[svc.name] = applied.get(("Deployment", t.child(svc.name)))
        if t.kafka_mode == "strimzi":
            from mint_operator.render.kafka import topic_partitions

            seen.dependencies["topics"] = {
                topic: applied.get(("KafkaTopic", topic_resource_name(t, topic)))
                for topic in topic_partitions(t)
            }
        if t.postgres_mode == "cloudnativepg":
            seen.dependencies["databases"] = {
                s: applied.get(("Cluster", t.db_cluster(s)))
                for s in catalog.DATABASE_SERVICES
                if t.is_enabled(s)
            }
        if t.redis_mode == "managed":
            seen.dependencies["redis"] = {"redis": applied.get(("StatefulSet", t.child("redis")))}

    def _write_status(self, t: Tenant, old: Obj, new: Obj) -> None:
        if _same_status(old, new):
            return
        # Replace maps wholesale (a merge patch would keep services that were disabled).
        patch: dict[str, Any] = {"status": {**{k: None for k in old if k not in new}, **new}}
        for key in ("services", "dependencies"):
            if isinstance(old.get(key), dict):
                gone = {k: None for k in old[key] if k not in new.get(key, {})}
                patch["status"][key] = {**gone, **new.get(key, {})}
        try:
            self.kube.patch(
                catalog.API_VERSION, "MintTenant", t.namespace, t.name, patch, subresource="status"
            )
        except ApiError as exc:
            if exc.status != 404:
                raise

    # ---- deletion -----------------------------------------------------------------------
    def cleanup(self, body: Obj) -> list[str]:
        """The finalizer's work: what lives outside the tenant's namespace (KafkaTopics, and a
        Kafka it created there) carries no ownerReference, so delete it here."""
        t = Tenant.from_object(body, self.cfg.operator_namespace)
        # no reconcile may re-create what is deleted below
        self.coalescer.close(t.key)
        removed = []
        selector = tenant_selector(t)
        for kind in ("KafkaTopic", "KafkaNodePool", "Kafka"):
            try:
                items = self.kube.list("kafka.strimzi.io/v1", kind, t.kafka_namespace, selector)
            except ApiError as exc:
                if exc.status == 404:  # Strimzi not installed: nothing of ours can exist
                    continue
                raise
            for item in items:
                name = item["metadata"]["name"]
                self.kube.delete("kafka.strimzi.io/v1", kind, t.kafka_namespace, name)
                removed.append(f"{kind}/{name}")
        return removed


def _same_status(old: Obj, new: Obj) -> bool:
    return {k: v for k, v in old.items() if k != "kopf"} == new
