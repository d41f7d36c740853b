"""Pure render functions: the desired objects of a MintTenant (no I/O, unit-tested)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from mint_operator.render.kafka import render_kafka_cluster, render_topics
from mint_operator.render.limits import render_limits_configmap
from mint_operator.render.network import (
    render_ingresses,
    render_network_policy,
    render_redis_network_policy,
)
from mint_operator.render.postgres import database_services, operator_made_roles, render_clusters
from mint_operator.render.redis import render_redis
from mint_operator.render.secrets import (
    db_role_secret,
    internal_token_secret,
    signing_keys_secret,
)
from mint_operator.render.workloads import (
    render_deployment,
    render_hpa,
    render_pdb,
    render_service,
    render_service_accounts,
)
from mint_operator.spec import Obj, Tenant

DEFAULT_LIMITS_ROLE = "mint-limits-editor"


def render_tenant(
    t: Tenant,
    limits: Mapping[str, Any] | None = None,
    secret_digests: Mapping[str, str] | None = None,
    limits_role: str = DEFAULT_LIMITS_ROLE,
    kept_limits: Mapping[str, Any] | None = None,
) -> list[Obj]:
    """Every object applied (server-side apply) for a tenant, in apply order: configuration
    first, then data stores, then workloads, then the network around them."""
    digests = secret_digests or {}
    out: list[Obj] = [render_limits_configmap(t, limits, kept_limits)]
    out += render_service_accounts(t, limits_role)
    out += render_kafka_cluster(t)
    out += render_topics(t)
    out += render_clusters(t)
    out += render_redis(t)
    for svc in t.enabled_services:
        out.append(render_deployment(t, svc.name, digests))
        out.append(render_service(t, svc.name))
        for optional in (render_hpa(t, svc.name), render_pdb(t, svc.name)):
            if optional is not None:
                out.append(optional)
    if t.network_policies:
        out += [render_network_policy(t, s.name) for s in t.enabled_services]
        if t.redis_mode == "managed":
            out.append(render_redis_network_policy(t))
    out += render_ingresses(t)
    return out


def render_initial_secrets(t: Tenant, now: datetime) -> list[Obj]:
    """Secrets created only when absent (never overwritten: they hold generated credentials)."""
    out = [internal_token_secret(t)]
    if t.is_enabled("auth"):
        out.append(signing_keys_secret(t, now))
    if t.postgres_mode == "cloudnativepg":
        out += [
            db_role_secret(t, s, role)
            for s in database_services(t)
            for role in operator_made_roles(t, s)
        ]
    return out


__all__ = ["DEFAULT_LIMITS_ROLE", "render_initial_secrets", "render_tenant"]
