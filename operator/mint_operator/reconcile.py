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
from mint_operator.recorder import EventRecorder, Involved
from mint_operator.render import DEFAULT_LIMITS_ROLE, render_initial_secrets, render_tenant
from mint_operator.render.common import (
    DATA_KINDS,
    TENANT_UID,
    owner_of,
    secret_digest,
    tenant_selector,
)
from mint_operator.render.env import referenced_secrets, service_env
from mint_operator.render.kafka import topic_resource_name
from mint_operator.render.limits import LIMITS_VERSION, kept_limits_document, limits_document
from mint_operator.render.postgres import database_services
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

STRIMZI = "kafka.strimzi.io/v1"
CNPG = "postgresql.cnpg.io/v1"
#: The oldest releases serving what the operator writes (kafka.strimzi.io/v1; CNPG Database).
STRIMZI_MINIMUM = "0.49"
CNPG_MINIMUM = "1.25"


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
        self.events = EventRecorder(kube, cfg.now)

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
        target = Involved.of(body)
        seen = Observed()
        unserved = self._missing_dependencies(t, target, seen)
        self._ensure_secrets(t, seen)
        limits = self.kube.get(catalog.API_VERSION, "MintLimits", t.namespace, t.limits_name)
        if limits is not None and limits["metadata"].get("deletionTimestamp"):
            # Being deleted is deleted: the API server bumps its generation (our version) when
            # it marks it, and those limits were never what the MintLimits said.
            limits = None
        configmap = self.kube.get("v1", "ConfigMap", t.namespace, t.limits_configmap)
        kept = None if limits is not None else kept_limits_document(configmap)
        desired = [
            o
            for o in render_tenant(
                t, limits, self._secret_digests(t), self.cfg.limits_role, kept_limits=kept
            )
            if o["apiVersion"] not in unserved
        ]
        existing = self._existing(desired)
        applied: dict[tuple[str, str], Obj] = {}
        adopted: list[str] = []
        for obj in desired:
            meta = obj["metadata"]
            label = f"{obj['kind']}/{meta['namespace']}/{meta['name']}"
            current = existing.get((obj["kind"], meta["namespace"], meta["name"]))
            conflict = _conflict(t, current)
            if conflict is not None:
                seen.errors.append(f"{label}: {conflict}")
                self.events.warning(target, "OwnershipConflict", f"{label}: {conflict}")
                continue
            if current is not None and obj["kind"] in DATA_KINDS and _adopting(t, current):
                adopted.append(label)
            try:
                applied[(obj["kind"], meta["name"])] = self.kube.apply(obj)
            except ApiError as exc:
                seen.errors.append(f"{obj['kind']}/{meta['name']}: {exc.message}")
                log.warning("apply failed for %s: %s", t.key, exc)
        if adopted:
            self.events.normal(
                target,
                "Adopted",
                f"adopted {len(adopted)} retained object(s) of an earlier tenant {t.key}: "
                + ", ".join(sorted(adopted)),
            )
        if not seen.errors:
            self._prune(t, desired)
        self._observe(t, applied, seen)
        self._limits(t, target, limits, configmap, kept, seen)
        if t.retains_data:
            seen.retained = [
                f"{o['kind']}/{o['metadata']['namespace']}/{o['metadata']['name']}"
                for o in desired
                if o["kind"] in DATA_KINDS
            ]
        if seen.errors:
            self.events.warning(target, "ReconcileFailed", "; ".join(seen.errors))
        status = tenant_status(t, seen, body.get("status"), self.cfg.now())
        self._write_status(t, body.get("status") or {}, status)
        return status

    def _missing_dependencies(self, t: Tenant, target: Involved, seen: Observed) -> set[str]:
        """API versions whose CRDs are not installed (their objects are skipped), with a
        condition and an Event that say what to install instead of "404 page not found"."""
        wanted: list[tuple[str, str, str, str]] = []
        if t.kafka_mode == "strimzi":
            wanted.append(
                (
                    STRIMZI,
                    "kafkatopics",
                    "StrimziMissing",
                    f"Strimzi is not installed (the API server does not serve {STRIMZI} "
                    f"KafkaTopic): install Strimzi >= {STRIMZI_MINIMUM}, or set kafka.mode: "
                    "external",
                )
            )
        if t.postgres_mode == "cloudnativepg":
            plural = "databases" if t.postgres_shared else "clusters"
            wanted.append(
                (
                    CNPG,
                    plural,
                    "CloudNativePGMissing",
                    f"CloudNativePG is not installed (the API server does not serve {CNPG} "
                    f"{plural}): install CloudNativePG >= {CNPG_MINIMUM}, or set postgres.mode: "
                    "external",
                )
            )
        unserved: set[str] = set()
        for api_version, plural, reason, message in wanted:
            try:
                served = self.kube.served(api_version, plural)
            except ApiError as exc:
                seen.errors.append(f"discovery of {api_version}: {exc.message}")
                continue
            if not served:
                unserved.add(api_version)
                seen.missing.append((reason, message))
                self.events.warning(target, reason, message)
        return unserved

    def _existing(self, desired: list[Obj]) -> dict[tuple[str, str, str], Obj]:
        """What already exists under the desired names: one list per kind and namespace."""
        out: dict[tuple[str, str, str], Obj] = {}
        for api_version, kind, namespace in sorted(
            {(o["apiVersion"], o["kind"], o["metadata"]["namespace"]) for o in desired}
        ):
            for item in self.kube.list(api_version, kind, namespace):
                out[(kind, namespace, item["metadata"]["name"])] = item
        return out

    def _limits(
        self,
        t: Tenant,
        target: Involved,
        limits: Obj | None,
        configmap: Obj | None,
        kept: Obj | None,
        seen: Observed,
    ) -> None:
        """Which limits the tenant runs with, said in its status and, when they change, in an
        Event; a deleted MintLimits leaves the last applied limits in place (never defaults)."""
        before = ((configmap or {}).get("metadata") or {}).get("annotations") or {}
        if limits is not None:
            doc = limits_document(limits)
            seen.limits_source = "MintLimits"
            seen.limits_message = f"from MintLimits {t.limits_name} (version {doc['version']})"
        elif kept is not None:
            doc = kept
            seen.limits_source = "LastApplied"
            seen.limits_message = (
                f"MintLimits {t.limits_name} was deleted; the last applied limits (version "
                f"{doc['version']}) stay until it is created again"
            )
        else:
            doc = limits_document(None)
            seen.limits_source = "Defaults"
            seen.limits_message = f"no MintLimits {t.limits_name}: the shipped defaults apply"
        seen.limits_version = str(doc["version"])
        if before.get(LIMITS_VERSION) != seen.limits_version or (
            limits is None and kept is not None and configmap is not None
        ):
            reason = "LimitsKept" if seen.limits_source == "LastApplied" else "LimitsApplied"
            self.events.normal(target, reason, seen.limits_message)

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
            clusters = sorted({t.db_cluster(s) for s in database_services(t)})
            seen.dependencies["databases"] = {c: applied.get(("Cluster", c)) for c in clusters}
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
        """The finalizer's work, by ``deletionPolicy``. Retain: what holds data loses any
        ownerReference to the tenant (the garbage collector leaves it) and stays, to be adopted
        by a tenant of the same name. Delete: what lives outside the tenant's namespace
        (KafkaTopics, a Kafka it created there) carries no ownerReference, so delete it here."""
        t = Tenant.from_object(body, self.cfg.operator_namespace)
        target = Involved.of(body)
        # no reconcile may re-create what is deleted below
        self.coalescer.close(t.key)
        data = self._data_objects(t)
        if t.retains_data:
            for item in data:
                self._disown(t, item)
            kept = [
                f"{i['kind']}/{i['metadata']['namespace']}/{i['metadata']['name']}" for i in data
            ]
            self.events.normal(
                target,
                "DataRetained",
                f"deletionPolicy Retain: {len(kept)} object(s) holding data stay (re-create "
                f"MintTenant {t.key} to adopt them): {', '.join(sorted(kept))}",
            )
            return []
        removed = []
        for item in data:
            meta = item["metadata"]
            if meta["namespace"] == t.namespace:
                continue  # owned by the tenant: the garbage collector removes it
            self.kube.delete(item["apiVersion"], item["kind"], meta["namespace"], meta["name"])
            removed.append(f"{item['kind']}/{meta['name']}")
        self.events.normal(
            target,
            "DataDeleted",
            f"deletionPolicy Delete: the tenant's databases and topics are deleted with it "
            f"({len(data)} object(s))",
        )
        return removed

    def _data_objects(self, t: Tenant) -> list[Obj]:
        """Everything holding data that is labelled for this tenant (never another's)."""
        selector = tenant_selector(t)
        places = [
            (STRIMZI, "KafkaTopic", t.kafka_namespace),
            (STRIMZI, "KafkaNodePool", t.kafka_namespace),
            (STRIMZI, "Kafka", t.kafka_namespace),
            (CNPG, "Database", t.namespace),
            (CNPG, "Cluster", t.namespace),
        ]
        out: list[Obj] = []
        for api_version, kind, namespace in places:
            try:
                out += self.kube.list(api_version, kind, namespace, selector)
            except ApiError as exc:
                if exc.status == 404:  # not installed: nothing of ours can exist
                    continue
                raise
        return out

    def _disown(self, t: Tenant, item: Obj) -> None:
        refs = item["metadata"].get("ownerReferences") or []
        keep = [r for r in refs if r.get("uid") != t.uid]
        if len(keep) == len(refs):
            return
        meta = item["metadata"]
        patch = {"metadata": {"ownerReferences": keep or None}}
        self.kube.patch(item["apiVersion"], item["kind"], meta["namespace"], meta["name"], patch)


def _conflict(t: Tenant, current: Obj | None) -> str | None:
    """Why ``current`` must not be applied over (another tenant's, or not the operator's)."""
    if current is None:
        return None
    owner = owner_of(current)
    if owner == (t.namespace, t.name):
        return None
    if owner is None:
        return "exists and is not managed by mint-operator; not overwritten"
    return f"belongs to MintTenant {owner[0]}/{owner[1]}; not overwritten"


def _adopting(t: Tenant, current: Obj) -> bool:
    """An object of ours last applied by another incarnation of this tenant (re-created)."""
    annotations = current["metadata"].get("annotations") or {}
    previous = annotations.get(TENANT_UID)
    return bool(previous) and previous != t.uid


def _same_status(old: Obj, new: Obj) -> bool:
    return {k: v for k, v in old.items() if k != "kopf"} == new
