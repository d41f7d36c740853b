"""Managed Redis: a single-node StatefulSet and its Service (or nothing for an external URL)."""

from __future__ import annotations

from mint_operator.render.common import meta, obj, selector_labels
from mint_operator.spec import Obj, Tenant, dig


def render_redis(t: Tenant) -> list[Obj]:
    if t.redis_mode != "managed":
        return []
    name = t.child("redis")
    image = str(dig(t.spec, "redis.managed.image", "redis:7.4-alpine"))
    size = dig(t.spec, "redis.managed.storageSize")
    args = (
        ["--save", "60", "1", "--appendonly", "no"]
        if size
        else ["--save", "", "--appendonly", "no"]
    )
    container: Obj = {
        "name": "redis",
        "image": image,
        "args": args,
        "ports": [{"name": "redis", "containerPort": 6379, "protocol": "TCP"}],
        "readinessProbe": {"exec": {"command": ["redis-cli", "ping"]}, "periodSeconds": 5},
        "livenessProbe": {"tcpSocket": {"port": "redis"}, "periodSeconds": 10},
        "resources": {"requests": {"cpu": "20m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    }
    spec: Obj = {
        "serviceName": name,
        "replicas": 1,
        "selector": {"matchLabels": selector_labels(t, "redis")},
        "template": {
            "metadata": {"labels": meta(t, name, "redis")["labels"]},
            "spec": {
                "automountServiceAccountToken": False,
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": 999,
                    "fsGroup": 999,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [container],
            },
        },
    }
    if size:
        spec["volumeClaimTemplates"] = [
            {
                "metadata": {"name": "data"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": str(size)}},
                },
            }
        ]
    else:
        spec["template"]["spec"]["volumes"] = [{"name": "data", "emptyDir": {}}]
    service = obj(
        "v1",
        "Service",
        meta(t, name, "redis"),
        spec={
            "selector": selector_labels(t, "redis"),
            "ports": [{"name": "redis", "port": 6379, "targetPort": "redis", "protocol": "TCP"}],
        },
    )
    return [obj("apps/v1", "StatefulSet", meta(t, name, "redis"), spec=spec), service]
