"""``mint operator``: kopf with our settings — watch timeouts, annotations-only persistence, our
finalizer, peering (one active replica; the others pause and take over), namespaces from env.

Environment:
  MINT_OPERATOR_NAMESPACES   comma-separated namespaces to serve; empty = cluster-wide
  MINT_OPERATOR_NAMESPACE    where the operator runs (NetworkPolicies admit it for readiness reads)
  MINT_OPERATOR_PRIORITY     peering priority (default: random, so replicas never tie)
  MINT_OPERATOR_PEERING      peering object name (default mint-operator); MINT_OPERATOR_STANDALONE=1
                             disables peering
  MINT_OPERATOR_LIMITS_ROLE  ClusterRole bound to each tenant's admin ServiceAccount
  MINT_OPERATOR_RESYNC_SECONDS / _LIMITS_STATUS_SECONDS / _ROTATION_CHECK_SECONDS   timers
  MINT_OPERATOR_LIVENESS     liveness endpoint (default http://0.0.0.0:8080/healthz; empty = off)
  MINT_OPERATOR_WATCH_SECRETS  0: do not watch Secrets (cluster-wide mode without cluster-wide
                             Secret access; the resync timer notices their changes)
  KUBECONFIG                 out of cluster; in a pod the ServiceAccount is used
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import kopf

from mint_operator import catalog
from mint_operator.handlers import Timing, build_registry, watched_children
from mint_operator.reconcile import OperatorConfig
from mint_operator.render import DEFAULT_LIMITS_ROLE


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    return float(raw) if raw else default


@dataclass
class Options:
    namespaces: list[str] = field(default_factory=list)
    operator_namespace: str = "mint-system"
    priority: int | None = None
    peering_name: str = "mint-operator"
    standalone: bool = False
    peering_lifetime: int = 30
    limits_role: str = DEFAULT_LIMITS_ROLE
    timing: Timing = field(default_factory=Timing)
    liveness: str | None = "http://0.0.0.0:8080/healthz"
    kubeconfig: str | None = None
    watch_secrets: bool = True

    @classmethod
    def from_env(cls) -> Options:
        env = os.environ
        priority = env.get("MINT_OPERATOR_PRIORITY", "").strip()
        return cls(
            namespaces=[
                n.strip() for n in env.get("MINT_OPERATOR_NAMESPACES", "").split(",") if n.strip()
            ],
            operator_namespace=env.get("MINT_OPERATOR_NAMESPACE", "mint-system"),
            priority=int(priority) if priority else None,
            peering_name=env.get("MINT_OPERATOR_PEERING", "mint-operator"),
            standalone=env.get("MINT_OPERATOR_STANDALONE", "").lower() in ("1", "true", "yes"),
            limits_role=env.get("MINT_OPERATOR_LIMITS_ROLE", DEFAULT_LIMITS_ROLE),
            timing=Timing(
                resync_seconds=_env_float("MINT_OPERATOR_RESYNC_SECONDS", 60.0),
                limits_status_seconds=_env_float("MINT_OPERATOR_LIMITS_STATUS_SECONDS", 15.0),
                rotation_check_seconds=_env_float("MINT_OPERATOR_ROTATION_CHECK_SECONDS", 3600.0),
            ),
            liveness=env.get("MINT_OPERATOR_LIVENESS", "http://0.0.0.0:8080/healthz") or None,
            kubeconfig=env.get("KUBECONFIG") or None,
            watch_secrets=env.get("MINT_OPERATOR_WATCH_SECRETS", "1").lower()
            not in ("0", "false", "no"),
        )

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces


def make_settings(opts: Options) -> kopf.OperatorSettings:
    s = kopf.OperatorSettings()
    # Watches: the server closes each stream after 5 min (client gives it 30 s more) and a
    # stream silent for 90 s is reconnected — no hanging watch after a network blip.
    s.watching.server_timeout = 300
    s.watching.client_timeout = 330
    s.watching.connect_timeout = 30
    s.watching.inactivity_timeout = 90
    s.networking.request_timeout = 60
    s.networking.connect_timeout = 15
    # Our finalizer; progress and diff-base in annotations (status is ours, fully structured).
    s.persistence.finalizer = catalog.FINALIZER
    s.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=catalog.GROUP)
    s.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=catalog.GROUP, key="last-handled-configuration"
    )
    s.posting.reporting_component = catalog.FIELD_MANAGER
    s.posting.level = logging.WARNING
    s.execution.max_workers = 8
    # Peering: distinct priorities (random unless given); the highest acts, the others pause.
    s.peering.name = opts.peering_name
    s.peering.priority = (
        opts.priority if opts.priority is not None else random.SystemRandom().randint(1, 2**30)
    )
    s.peering.lifetime = opts.peering_lifetime
    s.peering.clusterwide = opts.clusterwide
    s.peering.standalone = opts.standalone
    s.peering.mandatory = not opts.standalone
    # Children are watched through a server-side label selector: only what we made.
    for resource in watched_children(opts.watch_secrets):
        s.watching.label_selectors[resource] = (
            f"app.kubernetes.io/managed-by={catalog.FIELD_MANAGER}"
        )
    return s


def operator(
    opts: Options,
    *,
    config: OperatorConfig | None = None,
    stop_flag: Any = None,
    ready_flag: Any = None,
    identity: str | None = None,
    memo: kopf.Memo | None = None,
) -> Coroutine[None, None, None]:
    """The operator as a coroutine (tests run it in a thread with its own loop; ``memo`` gets
    ``memo["runtime"]`` once started)."""
    cfg = config or OperatorConfig(
        operator_namespace=opts.operator_namespace, limits_role=opts.limits_role
    )
    memo = memo if memo is not None else kopf.Memo()
    memo.setdefault("kubeconfig", opts.kubeconfig)
    memo.setdefault("config", cfg)
    return kopf.operator(
        registry=build_registry(opts.timing, opts.watch_secrets),
        settings=make_settings(opts),
        clusterwide=opts.clusterwide,
        namespaces=opts.namespaces,
        memo=memo,
        stop_flag=stop_flag,
        ready_flag=ready_flag,
        liveness_endpoint=opts.liveness,
        identity=identity,  # type: ignore[arg-type]
    )


def run() -> None:
    """Entry point of ``mint operator``."""
    logging.basicConfig(
        level=os.environ.get("MINT_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    opts = Options.from_env()
    cfg = OperatorConfig(operator_namespace=opts.operator_namespace, limits_role=opts.limits_role)
    kopf.run(
        registry=build_registry(opts.timing, opts.watch_secrets),
        settings=make_settings(opts),
        clusterwide=opts.clusterwide,
        namespaces=opts.namespaces,
        memo=kopf.Memo(kubeconfig=opts.kubeconfig, config=cfg),
        liveness_endpoint=opts.liveness,
    )
