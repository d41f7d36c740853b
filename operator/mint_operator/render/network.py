"""NetworkPolicies (ingress rules only; egress is not restricted) and the Ingresses."""

from __future__ import annotations

from mint_operator import catalog
from mint_operator.render.common import meta, obj, selector_labels
from mint_operator.spec import Obj, Tenant, dig


def _namespace_peer(name: str) -> Obj:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}


def _pods_peer(t: Tenant, components: list[str]) -> Obj:
    return {
        "podSelector": {
            "matchLabels": {"app.kubernetes.io/name": "mint", "app.kubernetes.io/instance": t.name},
            "matchExpressions": [
                {
                    "key": "app.kubernetes.io/component",
                    "operator": "In",
                    "values": sorted(components),
                }
            ],
        }
    }


def http_peers(t: Tenant, service: str) -> list[Obj]:
    """Who may reach a service's HTTP port: the ingress controller, the operator (readiness
    reads) and monitoring. auth's also admits the tenant's own services: every service fetches
    the JWKS from ``MINT_AUTH_URL`` to verify access tokens."""
    np = t.spec.get("networkPolicies") or {}
    peers = [
        _namespace_peer(str(np.get("ingressControllerNamespace") or "ingress-nginx")),
        _namespace_peer(str(np.get("operatorNamespace") or t.operator_namespace)),
        _namespace_peer(str(np.get("monitoringNamespace") or "monitoring")),
    ]
    if service == "auth":
        others = [s.name for s in t.enabled_services if s.name != "auth"]
        if others:
            peers.append(_pods_peer(t, others))
    return peers


def grpc_callers(t: Tenant, service: str) -> list[str]:
    return [c for c in catalog.GRPC_CALLERS.get(service, ()) if t.is_enabled(c)]


def render_network_policy(t: Tenant, service: str) -> Obj:
    cfg = t.services[service]
    rules: list[Obj] = [
        {"from": http_peers(t, service), "ports": [{"protocol": "TCP", "port": cfg.http_port}]}
    ]
    callers = grpc_callers(t, service)
    if cfg.grpc_port and callers:
        rules.append(
            {
                "from": [_pods_peer(t, callers)],
                "ports": [{"protocol": "TCP", "port": cfg.grpc_port}],
            }
        )
    spec = {
        "podSelector": {"matchLabels": selector_labels(t, service)},
        "policyTypes": ["Ingress"],
        "ingress": rules,
    }
    return obj(
        "networking.k8s.io/v1", "NetworkPolicy", meta(t, t.child(service), service), spec=spec
    )


def render_redis_network_policy(t: Tenant) -> Obj:
    """Managed Redis admits the tenant's services only."""
    spec = {
        "podSelector": {"matchLabels": selector_labels(t, "redis")},
        "policyTypes": ["Ingress"],
        "ingress": [
            {
                "from": [_pods_peer(t, [s.name for s in t.enabled_services])],
                "ports": [{"protocol": "TCP", "port": 6379}],
            }
        ],
    }
    return obj(
        "networking.k8s.io/v1", "NetworkPolicy", meta(t, t.child("redis"), "redis"), spec=spec
    )


def _ingress(t: Tenant, name: str, paths: list[Obj], annotations: dict[str, str]) -> Obj:
    ing = t.spec.get("ingress") or {}
    rule: Obj = {"http": {"paths": paths}}
    if t.host:
        rule["host"] = t.host
    spec: Obj = {"ingressClassName": str(ing.get("className") or "nginx"), "rules": [rule]}
    if ing.get("tlsSecretName"):
        tls: Obj = {"secretName": ing["tlsSecretName"]}
        if t.host:
            tls["hosts"] = [t.host]
        spec["tls"] = [tls]
    merged = {**(ing.get("annotations") or {}), **annotations}
    return obj(
        "networking.k8s.io/v1",
        "Ingress",
        meta(t, name, "ingress", annotations=merged or None),
        spec=spec,
    )


def _path(t: Tenant, path: str, service: str, path_type: str) -> Obj:
    return {
        "path": path,
        "pathType": path_type,
        "backend": {"service": {"name": t.child(service), "port": {"name": "http"}}},
    }


def render_ingresses(t: Tenant) -> list[Obj]:
    """The gateway's routes, and the SSE stream in its own Ingress (no buffering, long timeouts)."""
    if not t.ingress_enabled:
        return []
    paths = [_path(t, p, s, kind) for p, s, kind in catalog.ROUTES if t.is_enabled(s)]
    out = []
    if paths:
        out.append(
            _ingress(t, t.name, paths, {"nginx.ingress.kubernetes.io/proxy-body-size": "16m"})
        )
    if t.is_enabled(catalog.SSE_SERVICE):
        timeout = str(dig(t.spec, "ingress.sseTimeoutSeconds", 3600))
        sse = {
            "nginx.ingress.kubernetes.io/proxy-buffering": "off",
            "nginx.ingress.kubernetes.io/proxy-request-buffering": "off",
            "nginx.ingress.kubernetes.io/proxy-read-timeout": timeout,
            "nginx.ingress.kubernetes.io/proxy-send-timeout": timeout,
            "nginx.ingress.kubernetes.io/proxy-http-version": "1.1",
        }
        path = _path(t, catalog.SSE_PATH, catalog.SSE_SERVICE, "Exact")
        out.append(_ingress(t, t.child("sse"), [path], sse))
    return out
