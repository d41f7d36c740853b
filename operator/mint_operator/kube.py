"""A thin, typed client over the Kubernetes REST API for the handful of kinds the operator
manages: server-side apply under one field manager, get, list, create-if-absent, delete, patch.
Authentication and TLS come from the ``kubernetes`` package (kubeconfig or in-cluster)."""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import quote

from kubernetes import client, config

from mint_operator import catalog

Obj = dict[str, Any]

#: (apiVersion, kind) → (plural, namespaced)
RESOURCES: dict[tuple[str, str], tuple[str, bool]] = {
    ("v1", "ConfigMap"): ("configmaps", True),
    ("v1", "Secret"): ("secrets", True),
    ("v1", "Service"): ("services", True),
    ("v1", "ServiceAccount"): ("serviceaccounts", True),
    ("v1", "Pod"): ("pods", True),
    ("v1", "Event"): ("events", True),
    ("v1", "Namespace"): ("namespaces", False),
    ("apps/v1", "Deployment"): ("deployments", True),
    ("apps/v1", "StatefulSet"): ("statefulsets", True),
    ("autoscaling/v2", "HorizontalPodAutoscaler"): ("horizontalpodautoscalers", True),
    ("policy/v1", "PodDisruptionBudget"): ("poddisruptionbudgets", True),
    ("networking.k8s.io/v1", "NetworkPolicy"): ("networkpolicies", True),
    ("networking.k8s.io/v1", "Ingress"): ("ingresses", True),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): ("rolebindings", True),
    ("rbac.authorization.k8s.io/v1", "Role"): ("roles", True),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): ("clusterroles", False),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): ("clusterrolebindings", False),
    ("kopf.dev/v1", "KopfPeering"): ("kopfpeerings", True),
    ("kopf.dev/v1", "ClusterKopfPeering"): ("clusterkopfpeerings", False),
    ("coordination.k8s.io/v1", "Lease"): ("leases", True),
    ("kafka.strimzi.io/v1", "KafkaTopic"): ("kafkatopics", True),
    ("kafka.strimzi.io/v1", "Kafka"): ("kafkas", True),
    ("kafka.strimzi.io/v1", "KafkaNodePool"): ("kafkanodepools", True),
    ("postgresql.cnpg.io/v1", "Cluster"): ("clusters", True),
    ("postgresql.cnpg.io/v1", "Database"): ("databases", True),
    (catalog.API_VERSION, "MintTenant"): ("minttenants", True),
    (catalog.API_VERSION, "MintLimits"): ("mintlimits", True),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"): ("customresourcedefinitions", False),
}


class ApiError(Exception):
    def __init__(self, status: int, reason: str, body: Obj | None = None) -> None:
        self.status = status
        self.reason = reason
        self.body = body or {}
        super().__init__(f"{status} {reason}: {self.body.get('message', '')}".strip())

    @property
    def message(self) -> str:
        return str(self.body.get("message") or self.reason)


def base_path(api_version: str) -> str:
    return f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"


def resource_path(
    api_version: str,
    kind: str,
    namespace: str | None = None,
    name: str | None = None,
    subresource: str | None = None,
) -> str:
    plural, namespaced = RESOURCES[(api_version, kind)]
    path = base_path(api_version)
    if namespaced and namespace:
        path += f"/namespaces/{quote(namespace)}"
    path += f"/{plural}"
    if name:
        path += f"/{quote(name)}"
    if subresource:
        path += f"/{subresource}"
    return path


def load_api_client(kubeconfig: str | None = None) -> Any:
    """In-cluster when running in a pod, else the kubeconfig (``KUBECONFIG`` or the argument)."""
    cfg = client.Configuration()
    path = kubeconfig or os.environ.get("KUBECONFIG")
    if path is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
    else:
        config.load_kube_config(config_file=path, client_configuration=cfg)  # type: ignore[no-untyped-call]
    return client.ApiClient(cfg)


class Kube:
    """Synchronous; safe to share between threads (urllib3 pool underneath)."""

    def __init__(self, api_client: Any, field_manager: str = catalog.FIELD_MANAGER) -> None:
        self.api = api_client
        self.field_manager = field_manager

    @classmethod
    def connect(cls, kubeconfig: str | None = None) -> Kube:
        return cls(load_api_client(kubeconfig))

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
        timeout: float = 30.0,
    ) -> Obj:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        serialized = self.api.param_serialize(
            method=method,
            resource_path=path,
            query_params=query or [],
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        resp = self.api.call_api(*serialized, _request_timeout=timeout)
        raw = resp.read()
        data: Obj = {}
        if raw:
            try:
                data = json.loads(raw)
            except ValueError:
                data = {"message": raw.decode(errors="replace")[:500]}
        if resp.status >= 400:
            raise ApiError(resp.status, str(resp.reason), data)
        return data

    def served(self, api_version: str, plural: str) -> bool:
        """Whether the API server serves ``plural`` in ``api_version`` (its CRD is installed)."""
        try:
            found = self.request("GET", base_path(api_version))
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        return any(r.get("name") == plural for r in found.get("resources") or [])

    # ---- verbs ----------------------------------------------------------------------------
    def apply(self, obj: Obj, *, dry_run: bool = False, subresource: str | None = None) -> Obj:
        """Server-side apply (force: this operator owns every field it sets)."""
        meta = obj["metadata"]
        path = resource_path(
            obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"], subresource
        )
        query = [("fieldManager", self.field_manager), ("force", "true")]
        if dry_run:
            query += [("dryRun", "All"), ("fieldValidation", "Strict")]
        return self.request("PATCH", path, obj, query, "application/apply-patch+yaml")

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> Obj | None:
        try:
            return self.request("GET", resource_path(api_version, kind, namespace, name))
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def list(
        self, api_version: str, kind: str, namespace: str | None = None, label_selector: str = ""
    ) -> list[Obj]:
        query = [("labelSelector", label_selector)] if label_selector else []
        items = self.request("GET", resource_path(api_version, kind, namespace), query=query)
        out: list[Obj] = []
        for item in items.get("items") or []:
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind)
            out.append(item)
        return out

    def create(self, obj: Obj) -> Obj | None:
        """Create; ``None`` when it already exists (created-if-absent semantics)."""
        path = resource_path(obj["apiVersion"], obj["kind"], obj["metadata"].get("namespace"))
        try:
            return self.request("POST", path, obj, [("fieldManager", self.field_manager)])
        except ApiError as exc:
            if exc.status == 409:
                return None
            raise

    def delete(self, api_version: str, kind: str, namespace: str | None, name: str) -> bool:
        try:
            body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
            self.request("DELETE", resource_path(api_version, kind, namespace, name), body)
            return True
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise

    def patch(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        name: str,
        patch: Obj,
        *,
        subresource: str | None = None,
    ) -> Obj:
        """JSON merge patch (status updates, annotations)."""
        path = resource_path(api_version, kind, namespace, name, subresource)
        return self.request(
            "PATCH",
            path,
            patch,
            [("fieldManager", self.field_manager)],
            "application/merge-patch+json",
        )

    def replace(self, obj: Obj) -> Obj:
        meta = obj["metadata"]
        path = resource_path(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])
        return self.request("PUT", path, obj, [("fieldManager", self.field_manager)])
