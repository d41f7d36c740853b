"""A typed view of a MintTenant: its spec with every default applied (the CRD defaults the same
fields server-side; applying them here too keeps the render functions total on partial specs)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mint_operator import catalog

Obj = dict[str, Any]

DEFAULT_RESOURCES: Obj = {
    "requests": {"cpu": "50m", "memory": "192Mi"},
    "limits": {"memory": "512Mi"},
}


def dig(obj: Mapping[str, Any] | None, path: str, default: Any = None) -> Any:
    """``dig(spec, "kafka.strimzi.clusterName", "x")`` — a missing or null step gives default."""
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, Mapping) or cur.get(part) is None:
            return default
        cur = cur[part]
    return cur


@dataclass(frozen=True)
class Autoscaling:
    min_replicas: int
    max_replicas: int
    target_cpu: int


@dataclass(frozen=True)
class ServiceConfig:
    name: str
    enabled: bool
    replicas: int
    resources: Obj
    env: list[Obj]
    autoscaling: Autoscaling | None

    @property
    def http_port(self) -> int:
        return catalog.HTTP_PORTS[self.name]

    @property
    def grpc_port(self) -> int | None:
        return catalog.GRPC_PORTS.get(self.name)

    @property
    def min_available_replicas(self) -> int:
        return self.autoscaling.min_replicas if self.autoscaling else self.replicas


@dataclass(frozen=True)
class Tenant:
    """One MintTenant, identity plus defaulted spec. ``operator_namespace`` is where we run."""

    name: str
    namespace: str
    uid: str
    generation: int
    spec: Obj
    operator_namespace: str = "mint-system"
    services: dict[str, ServiceConfig] = field(default_factory=dict)

    @classmethod
    def from_object(
        cls, body: Mapping[str, Any], operator_namespace: str = "mint-system"
    ) -> Tenant:
        meta = body.get("metadata") or {}
        spec: Obj = dict(body.get("spec") or {})
        tenant = cls(
            name=str(meta["name"]),
            namespace=str(meta.get("namespace") or "default"),
            uid=str(meta.get("uid") or ""),
            generation=int(meta.get("generation") or 1),
            spec=spec,
            operator_namespace=operator_namespace,
        )
        tenant.services.update({s: tenant._service(s) for s in catalog.SERVICES})
        return tenant

    def _service(self, name: str) -> ServiceConfig:
        defaults = self.spec.get("serviceDefaults") or {}
        own: Mapping[str, Any] = dig(self.spec, f"services.{name}", {}) or {}
        scaling = own.get("autoscaling") or {}
        autoscaling = None
        if scaling.get("enabled"):
            autoscaling = Autoscaling(
                min_replicas=int(scaling.get("minReplicas", 2)),
                max_replicas=int(scaling.get("maxReplicas", 6)),
                target_cpu=int(scaling.get("targetCPUUtilizationPercentage", 70)),
            )
        return ServiceConfig(
            name=name,
            enabled=bool(own.get("enabled", True)),
            replicas=int(own.get("replicas", defaults.get("replicas", 1))),
            resources=dict(own.get("resources") or defaults.get("resources") or DEFAULT_RESOURCES),
            env=[dict(e) for e in own.get("env") or []],
            autoscaling=autoscaling,
        )

    # ---- identity -----------------------------------------------------------------------
    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def enabled_services(self) -> list[ServiceConfig]:
        return [s for s in self.services.values() if s.enabled]

    def is_enabled(self, service: str) -> bool:
        return self.services[service].enabled

    # ---- names of children --------------------------------------------------------------
    def child(self, suffix: str) -> str:
        return f"{self.name}-{suffix}"

    @property
    def limits_configmap(self) -> str:
        return self.child("limits")

    @property
    def limits_name(self) -> str:
        return str(dig(self.spec, "limitsRef.name", self.name))

    @property
    def internal_token_secret(self) -> str:
        return str(dig(self.spec, "internalToken.secretName", self.child("internal-token")))

    @property
    def signing_keys_secret(self) -> str:
        return str(dig(self.spec, "auth.signingKeys.secretName", self.child("signing-keys")))

    @property
    def workload_service_account(self) -> str:
        return self.child("workload")

    @property
    def admin_service_account(self) -> str:
        return self.child("admin")

    def db_cluster(self, service: str) -> str:
        """The CNPG Cluster holding ``service``'s database (one for all in the shared layout)."""
        return self.child("db") if self.postgres_shared else self.child(f"{service}-db")

    # ---- data and sharing ---------------------------------------------------------------
    @property
    def deletion_policy(self) -> str:
        """``Retain`` (default): what holds data outlives the tenant; ``Delete``: it goes too."""
        return str(dig(self.spec, "deletionPolicy", "Retain"))

    @property
    def retains_data(self) -> bool:
        return self.deletion_policy != "Delete"

    @property
    def kafka_prefix(self) -> str:
        """Prefix of every topic and consumer group (``MINT_KAFKA_PREFIX``), so tenants of any
        names in any namespaces can share one Kafka."""
        return f"{self.namespace}.{self.name}."

    @property
    def kafka_object_prefix(self) -> str:
        """Prefix of the Strimzi objects' names: the tenant's name in its own namespace, else
        namespace and name (two tenants of one name in two namespaces never collide)."""
        if self.kafka_namespace == self.namespace:
            return self.name
        return f"{self.namespace}-{self.name}"

    # ---- sections -----------------------------------------------------------------------
    @property
    def image(self) -> str:
        repo = dig(self.spec, "image.repository", "ghcr.io/mint-platform/mint")
        return f"{repo}:{dig(self.spec, 'image.tag', 'latest')}"

    @property
    def pull_policy(self) -> str:
        return str(dig(self.spec, "image.pullPolicy", "IfNotPresent"))

    @property
    def kafka_mode(self) -> str:
        return str(dig(self.spec, "kafka.mode", "strimzi"))

    @property
    def kafka_cluster(self) -> str:
        default = f"{self.kafka_object_prefix}-kafka"
        return str(dig(self.spec, "kafka.strimzi.clusterName", default))

    @property
    def kafka_namespace(self) -> str:
        return str(dig(self.spec, "kafka.strimzi.namespace", self.namespace))

    @property
    def kafka_bootstrap(self) -> str:
        if self.kafka_mode == "external":
            return str(dig(self.spec, "kafka.external.bootstrapServers", ""))
        port = dig(self.spec, "kafka.strimzi.listenerPort", 9092)
        return f"{self.kafka_cluster}-kafka-bootstrap.{self.kafka_namespace}.svc:{port}"

    @property
    def kafka_creates_cluster(self) -> bool:
        return self.kafka_mode == "strimzi" and bool(dig(self.spec, "kafka.strimzi.create.enabled"))

    @property
    def topic_replicas(self) -> int:
        """Explicit ``kafka.topics.replicas``, else as many as the Kafka the operator creates has
        brokers (at most 3), else 3."""
        explicit = dig(self.spec, "kafka.topics.replicas")
        if explicit is not None:
            return int(explicit)
        if self.kafka_creates_cluster:
            return min(3, int(dig(self.spec, "kafka.strimzi.create.replicas", 1)))
        return 3

    @property
    def postgres_mode(self) -> str:
        return str(dig(self.spec, "postgres.mode", "cloudnativepg"))

    @property
    def postgres_shared(self) -> bool:
        """One CNPG Cluster with a database per service (the dev profile) instead of one Cluster
        per service."""
        return str(dig(self.spec, "postgres.cloudnativepg.layout", "PerService")) == "Shared"

    @property
    def signing_key_rotation(self) -> bool:
        """False when the signing-key Secret is managed elsewhere (External Secrets, …)."""
        return bool(dig(self.spec, "auth.signingKeys.rotation", True))

    @property
    def redis_mode(self) -> str:
        return str(dig(self.spec, "redis.mode", "managed"))

    @property
    def network_policies(self) -> bool:
        return bool(dig(self.spec, "networkPolicies.enabled", True))

    @property
    def ingress_enabled(self) -> bool:
        return bool(dig(self.spec, "ingress.enabled", True))

    @property
    def host(self) -> str | None:
        host = dig(self.spec, "ingress.host")
        return str(host) if host else None

    @property
    def public_url(self) -> str:
        url = dig(self.spec, "publicUrl")
        if url:
            return str(url).rstrip("/")
        if self.host:
            scheme = "https" if dig(self.spec, "ingress.tlsSecretName") else "http"
            return f"{scheme}://{self.host}"
        return "http://localhost"
