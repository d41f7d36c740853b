"""Per service: Deployment, Service, HorizontalPodAutoscaler, PodDisruptionBudget; and the
ServiceAccounts (admin's may patch its MintLimits through a RoleBinding)."""

from __future__ import annotations

from collections.abc import Mapping

from mint_operator import catalog
from mint_operator.render.common import CONFIG_HASH, digest, labels, meta, obj, selector_labels
from mint_operator.render.env import referenced_secrets, service_env
from mint_operator.spec import Obj, ServiceConfig, Tenant, dig

RUN_AS = 10001


def config_hash(t: Tenant, service: str, secret_digests: Mapping[str, str]) -> str:
    """What rolls the pods: the rendered env and the data of every Secret it reads. Limits are
    deliberately absent (the ConfigMap mount updates live), as are the signing keys (auth
    re-reads its key directory)."""
    env = service_env(t, service)
    secrets = {name: secret_digests.get(name, "absent") for name in referenced_secrets(env)}
    return digest(env, secrets)


def _http_probe(path: str, **extra: int) -> Obj:
    return {"httpGet": {"path": path, "port": "http"}, **extra}


def _volumes(t: Tenant, service: str) -> tuple[list[Obj], list[Obj]]:
    volumes: list[Obj] = [{"name": "tmp", "emptyDir": {}}]
    mounts: list[Obj] = [{"name": "tmp", "mountPath": "/tmp"}]
    if service in catalog.LIMITS_SERVICES:
        # a directory mount (no subPath), so the kubelet's symlink swap reaches the running pod
        volumes.append({"name": "limits", "configMap": {"name": t.limits_configmap}})
        mounts.append({"name": "limits", "mountPath": catalog.LIMITS_MOUNT_DIR, "readOnly": True})
    if service in catalog.SIGNING_KEY_SERVICES:
        volumes.append(
            {
                "name": "signing-keys",
                "secret": {"secretName": t.signing_keys_secret, "defaultMode": 0o440},
            }
        )
        mounts.append(
            {"name": "signing-keys", "mountPath": catalog.SIGNING_KEYS_DIR, "readOnly": True}
        )
    return volumes, mounts


def _container(t: Tenant, cfg: ServiceConfig) -> Obj:
    ports: list[Obj] = [{"name": "http", "containerPort": cfg.http_port, "protocol": "TCP"}]
    if cfg.grpc_port:
        ports.append({"name": "grpc", "containerPort": cfg.grpc_port, "protocol": "TCP"})
    _, mounts = _volumes(t, cfg.name)
    return {
        "name": cfg.name,
        "image": t.image,
        "imagePullPolicy": t.pull_policy,
        "args": ["serve", cfg.name],
        "ports": ports,
        "env": service_env(t, cfg.name),
        "resources": cfg.resources,
        "startupProbe": _http_probe("/healthz", periodSeconds=5, failureThreshold=60),
        "livenessProbe": _http_probe(
            "/healthz", periodSeconds=10, timeoutSeconds=3, failureThreshold=3
        ),
        "readinessProbe": _http_probe(
            "/readyz", periodSeconds=5, timeoutSeconds=3, failureThreshold=3
        ),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": bool(dig(t.spec, "podSecurity.readOnlyRootFilesystem", True)),
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": mounts,
    }


def render_deployment(t: Tenant, service: str, secret_digests: Mapping[str, str]) -> Obj:
    cfg = t.services[service]
    volumes, _ = _volumes(t, service)
    sa = t.admin_service_account if service == "admin" else t.workload_service_account
    pod: Obj = {
        "serviceAccountName": sa,
        "automountServiceAccountToken": service == "admin",
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "fsGroup": RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "terminationGracePeriodSeconds": 30,
        "containers": [_container(t, cfg)],
        "volumes": volumes,
    }
    pull_secrets = dig(t.spec, "image.pullSecrets", [])
    if pull_secrets:
        pod["imagePullSecrets"] = [{"name": n} for n in pull_secrets]
    spec: Obj = {
        "revisionHistoryLimit": 5,
        "selector": {"matchLabels": selector_labels(t, service)},
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
        },
        "template": {
            "metadata": {
                "labels": labels(t, service),
                "annotations": {CONFIG_HASH: config_hash(t, service, secret_digests)},
            },
            "spec": pod,
        },
    }
    if cfg.autoscaling is None:  # with an HPA, replicas belong to the autoscaler
        spec["replicas"] = cfg.replicas
    return obj("apps/v1", "Deployment", meta(t, t.child(service), service), spec=spec)


def render_service(t: Tenant, service: str) -> Obj:
    cfg = t.services[service]
    ports: list[Obj] = [
        {
            "name": "http",
            "port": cfg.http_port,
            "targetPort": "http",
            "protocol": "TCP",
            "appProtocol": "http",
        }
    ]
    if cfg.grpc_port:
        ports.append(
            {
                "name": "grpc",
                "port": cfg.grpc_port,
                "targetPort": "grpc",
                "protocol": "TCP",
                "appProtocol": "grpc",
            }
        )
    spec = {"type": "ClusterIP", "selector": selector_labels(t, service), "ports": ports}
    return obj("v1", "Service", meta(t, t.child(service), service), spec=spec)


def render_hpa(t: Tenant, service: str) -> Obj | None:
    scaling = t.services[service].autoscaling
    if scaling is None:
        return None
    spec = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": t.child(service)},
        "minReplicas": scaling.min_replicas,
        "maxReplicas": scaling.max_replicas,
        "metrics": [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": scaling.target_cpu},
                },
            }
        ],
    }
    return obj(
        "autoscaling/v2", "HorizontalPodAutoscaler", meta(t, t.child(service), service), spec=spec
    )


def render_pdb(t: Tenant, service: str) -> Obj | None:
    if t.services[service].min_available_replicas <= 1:
        return None
    spec = {"maxUnavailable": 1, "selector": {"matchLabels": selector_labels(t, service)}}
    return obj("policy/v1", "PodDisruptionBudget", meta(t, t.child(service), service), spec=spec)


def render_service_accounts(t: Tenant, limits_role: str) -> list[Obj]:
    """The workloads' ServiceAccount (no API access) and admin's, bound to ``limits_role`` (the
    operator chart's ClusterRole allowing get/patch of MintLimits) in this namespace only."""
    out = [
        obj(
            "v1",
            "ServiceAccount",
            meta(t, t.workload_service_account, "workload"),
            automountServiceAccountToken=False,
        ),
    ]
    if t.is_enabled("admin"):
        out.append(obj("v1", "ServiceAccount", meta(t, t.admin_service_account, "admin")))
        out.append(
            obj(
                "rbac.authorization.k8s.io/v1",
                "RoleBinding",
                meta(t, t.child("admin-limits"), "admin"),
                roleRef={
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": limits_role,
                },
                subjects=[
                    {
                        "kind": "ServiceAccount",
                        "name": t.admin_service_account,
                        "namespace": t.namespace,
                    }
                ],
            )
        )
    return out
