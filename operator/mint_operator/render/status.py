"""MintTenant status from what the children report: per-service readiness, dependencies, and the
Ready / Progressing / Degraded conditions (with observedGeneration and reasons)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mint_operator.spec import Obj, Tenant


def _conditions(body: Mapping[str, Any] | None) -> dict[str, Obj]:
    items = ((body or {}).get("status") or {}).get("conditions") or []
    return {str(c.get("type")): c for c in items if isinstance(c, dict)}


def deployment_state(dep: Mapping[str, Any] | None) -> tuple[bool, bool, str]:
    """(ready, failed, message) of a Deployment."""
    if dep is None:
        return False, False, "not created"
    spec, status = dep.get("spec") or {}, dep.get("status") or {}
    desired = int(spec.get("replicas", 1))
    conds = _conditions(dep)
    progressing = conds.get("Progressing", {})
    if (
        progressing.get("status") == "False"
        and progressing.get("reason") == "ProgressDeadlineExceeded"
    ):
        return False, True, str(progressing.get("message") or "progress deadline exceeded")
    failure = conds.get("ReplicaFailure", {})
    if failure.get("status") == "True":
        return False, True, str(failure.get("message") or "replica failure")
    generation = int((dep.get("metadata") or {}).get("generation", 0))
    if int(status.get("observedGeneration", 0)) < generation:
        return False, False, "rollout not observed yet"
    available = int(status.get("availableReplicas", 0))
    updated = int(status.get("updatedReplicas", 0))
    if desired == 0:
        return True, False, "scaled to zero"
    if available >= desired and updated >= desired:
        return True, False, f"{available}/{desired} available"
    return False, False, f"{available}/{desired} available"


def resource_ready(body: Mapping[str, Any] | None) -> tuple[bool, bool, str]:
    """(ready, failed, message) of a Strimzi / CNPG resource through its ``Ready`` condition."""
    if body is None:
        return False, False, "not created"
    ready = _conditions(body).get("Ready")
    if ready is None:
        return False, False, "no status yet"
    if ready.get("status") == "True":
        return True, False, "ready"
    failed = str(ready.get("reason") or "") not in ("", "Creating", "Pending", "Progressing")
    return (
        False,
        failed and body.get("kind") == "KafkaTopic",
        str(ready.get("message") or ready.get("reason") or ""),
    )


def pod_ready(pod: Mapping[str, Any]) -> bool:
    """Running and Ready: the pods that serve (what a Service would route to)."""
    status = pod.get("status") or {}
    if status.get("phase") != "Running" or not status.get("podIP"):
        return False
    return _conditions(pod).get("Ready", {}).get("status") == "True"


def readiness_url(pod: Mapping[str, Any], container: str, default_port: int) -> str | None:
    """Where ``container`` of a ready pod answers its readiness probe (the probe's path and
    port as the pod declares them: a named port resolved through the container's ports), or
    ``None`` for a pod that does not serve."""
    if not pod_ready(pod):
        return None
    containers = list((pod.get("spec") or {}).get("containers") or [])
    spec = next((c for c in containers if c.get("name") == container), None)
    spec = spec or (containers[0] if containers else {})
    probe = (spec.get("readinessProbe") or {}).get("httpGet") or {}
    port = probe.get("port", default_port)
    if isinstance(port, str) and not port.isdigit():
        named = {p.get("name"): p.get("containerPort") for p in spec.get("ports") or []}
        port = named.get(port)
        if port is None:
            return None
    path = str(probe.get("path") or "/readyz")
    return f"http://{pod['status']['podIP']}:{int(port)}{path}"


def statefulset_ready(body: Mapping[str, Any] | None) -> tuple[bool, bool, str]:
    if body is None:
        return False, False, "not created"
    want = int((body.get("spec") or {}).get("replicas", 1))
    have = int((body.get("status") or {}).get("readyReplicas", 0))
    return have >= want, False, f"{have}/{want} ready"


@dataclass
class Observed:
    """What the reconciler read back after applying."""

    deployments: dict[str, Obj | None] = field(default_factory=dict)
    dependencies: dict[str, dict[str, Obj | None]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    #: (reason, message) of each dependency whose CRDs the API server does not serve
    missing: list[tuple[str, str]] = field(default_factory=list)
    #: "Kind/namespace/name" of what holds data and outlives the tenant (deletionPolicy Retain)
    retained: list[str] = field(default_factory=list)
    limits_version: str | None = None
    limits_source: str | None = None  # MintLimits, Defaults or LastApplied
    limits_message: str | None = None


def condition(kind: str, ok: bool, reason: str, message: str, generation: int) -> Obj:
    return {
        "type": kind,
        "status": "True" if ok else "False",
        "reason": reason,
        "message": message[:1000],
        "observedGeneration": generation,
    }


def merge_conditions(old: list[Obj], new: list[Obj], now: datetime) -> list[Obj]:
    """Keep ``lastTransitionTime`` of conditions whose status did not change."""
    previous = {c.get("type"): c for c in old}
    out = []
    for c in new:
        before = previous.get(c["type"])
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        if before and before.get("status") == c["status"] and before.get("lastTransitionTime"):
            stamp = str(before["lastTransitionTime"])
        out.append({**c, "lastTransitionTime": stamp})
    return out


def tenant_status(t: Tenant, seen: Observed, old: Mapping[str, Any] | None, now: datetime) -> Obj:
    services: dict[str, Obj] = {}
    waiting: list[str] = []
    failed: list[str] = []
    for svc in t.enabled_services:
        dep = seen.deployments.get(svc.name)
        ready, bad, message = deployment_state(dep)
        status = (dep or {}).get("status") or {}
        services[svc.name] = {
            "ready": ready,
            "replicas": int(status.get("replicas", 0)),
            "availableReplicas": int(status.get("availableReplicas", 0)),
            "message": message,
        }
        (failed if bad else waiting if not ready else []).append(svc.name)
    deps: dict[str, Obj] = {}
    for group, items in seen.dependencies.items():
        not_ready = []
        for name, body in items.items():
            check = statefulset_ready if group == "redis" else resource_ready
            ready, bad, _ = check(body)
            if bad:
                failed.append(f"{group}/{name}")
            elif not ready:
                not_ready.append(name)
        deps[group] = {
            "ready": len(items) - len(not_ready),
            "total": len(items),
            "notReady": sorted(not_ready),
        }
        waiting += [f"{group}/{n}" for n in not_ready]
    g = t.generation
    if seen.missing:
        reason = seen.missing[0][0]
        msg = "; ".join(message for _, message in seen.missing)
        conds = [
            condition("Ready", False, reason, msg, g),
            condition(
                "Progressing", False, reason, "waiting for the dependency to be installed", g
            ),
            condition("Degraded", True, reason, msg, g),
        ]
    elif seen.errors:
        conds = [
            condition("Ready", False, "ReconcileFailed", "; ".join(seen.errors), g),
            condition("Progressing", False, "ReconcileFailed", "apply failed; retrying", g),
            condition("Degraded", True, "ReconcileFailed", "; ".join(seen.errors), g),
        ]
    elif failed:
        msg = "failing: " + ", ".join(failed)
        conds = [
            condition("Ready", False, "ComponentsFailing", msg, g),
            condition("Progressing", bool(waiting), "RollingOut" if waiting else "Stalled", msg, g),
            condition("Degraded", True, "ComponentsFailing", msg, g),
        ]
    elif waiting:
        msg = "waiting for: " + ", ".join(waiting)
        reason = "WaitingForDependencies" if any("/" in w for w in waiting) else "RollingOut"
        conds = [
            condition("Ready", False, reason, msg, g),
            condition("Progressing", True, reason, msg, g),
            condition("Degraded", False, "AsExpected", "", g),
        ]
    else:
        conds = [
            condition(
                "Ready", True, "AllComponentsReady", "every service and dependency is ready", g
            ),
            condition("Progressing", False, "Complete", "", g),
            condition("Degraded", False, "AsExpected", "", g),
        ]
    old_conds = list(((old or {}).get("conditions")) or [])
    ready_count = sum(1 for s in services.values() if s["ready"])
    out: Obj = {
        "observedGeneration": g,
        "url": t.public_url,
        "readyServices": f"{ready_count}/{len(services)}",
        "services": services,
        "dependencies": deps,
        "conditions": merge_conditions(old_conds, conds, now),
    }
    if seen.limits_version is not None:
        out["limitsVersion"] = seen.limits_version
    if seen.limits_source is not None:
        out["limits"] = {"source": seen.limits_source, "message": seen.limits_message or ""}
    out["deletionPolicy"] = t.deletion_policy
    out["retained"] = sorted(seen.retained)
    return out
