"""The operator's pure render functions: what a MintTenant / MintLimits becomes (no cluster)."""

from __future__ import annotations

import copy
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from mint.kit.limits import parse_limits
from mint_operator import catalog
from mint_operator.render import render_initial_secrets, render_tenant
from mint_operator.render.common import CONFIG_HASH, DATA_KINDS, TENANT_UID
from mint_operator.render.env import service_env
from mint_operator.render.kafka import render_kafka_cluster, topic_partitions
from mint_operator.render.limits import (
    kept_limits_document,
    limits_document,
    limits_status,
    render_limits_configmap,
)
from mint_operator.render.status import Observed, tenant_status
from mint_operator.spec import Tenant

ROOT = Path(__file__).resolve().parents[2]
Obj = dict[str, Any]


def tenant(spec: Obj | None = None) -> Tenant:
    meta = {"name": "mint", "namespace": "apps", "uid": "uid-1", "generation": 3}
    return Tenant.from_object({"metadata": meta, "spec": spec or {}}, "mint-system")


def limits(generation: int, **spec: Any) -> Obj:
    return {"metadata": {"name": "mint", "generation": generation}, "spec": spec}


def by_kind(objs: list[Obj], kind: str) -> dict[str, Obj]:
    return {o["metadata"]["name"]: o for o in objs if o["kind"] == kind}


def env_of(dep: Obj) -> dict[str, Obj]:
    return {e["name"]: e for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}


def test_default_tenant_renders_every_object() -> None:
    objs = render_tenant(tenant())
    counts = Counter(o["kind"] for o in objs)
    assert counts == {
        "Deployment": 12,
        "Service": 13,  # twelve services + redis
        "NetworkPolicy": 13,  # one per service + redis
        "KafkaTopic": 20,  # ten topics + their DLQs
        "Cluster": 11,  # every service but web
        "Ingress": 2,  # routes + SSE
        "ServiceAccount": 2,
        "RoleBinding": 1,
        "ConfigMap": 1,
        "StatefulSet": 1,
    }
    keys = [(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]) for o in objs]
    assert len(keys) == len(set(keys))
    for o in objs:
        assert o["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "mint-operator"
        assert o["metadata"]["labels"]["mint.dev/tenant"] == "mint"
        if o["kind"] in DATA_KINDS:  # deletionPolicy Retain (default): data outlives the tenant
            assert "ownerReferences" not in o["metadata"]
            assert o["metadata"]["annotations"][TENANT_UID] == "uid-1"
        else:
            assert o["metadata"]["ownerReferences"][0]["uid"] == "uid-1"  # all in the tenant's ns


def test_deployment_key_fields() -> None:
    deps = by_kind(render_tenant(tenant()), "Deployment")
    assert set(deps) == {f"mint-{s}" for s in catalog.SERVICES}
    for svc in catalog.SERVICES:
        dep = deps[f"mint-{svc}"]
        pod = dep["spec"]["template"]["spec"]
        c = pod["containers"][0]
        assert c["args"] == ["serve", svc]
        assert c["image"] == "ghcr.io/mint-platform/mint:latest"
        assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert ports["http"] == catalog.HTTP_PORTS[svc]
        assert ports.get("grpc") == catalog.GRPC_PORTS.get(svc)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert dep["spec"]["replicas"] == 1
        assert CONFIG_HASH in dep["spec"]["template"]["metadata"]["annotations"]
        env = env_of(dep)
        assert env["MINT_HTTP_PORT"]["value"] == str(catalog.HTTP_PORTS[svc])
        assert (
            env["MINT_INTERNAL_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "mint-internal-token"
        )
        assert (
            env["MINT_KAFKA_BOOTSTRAP_SERVERS"]["value"]
            == "mint-kafka-kafka-bootstrap.apps.svc:9092"
        )
        assert env["MINT_REDIS_URL"]["value"] == "redis://mint-redis:6379/0"
        assert env["MINT_WALLET_GRPC"]["value"] == "mint-wallet:50051"
        mounts = {m["mountPath"] for m in c["volumeMounts"]}
        assert (catalog.LIMITS_MOUNT_DIR in mounts) == (svc in catalog.LIMITS_SERVICES)
        assert ("MINT_LIMITS_FILE" in env) == (svc in catalog.LIMITS_SERVICES)
        if svc == "web":
            assert "MINT_DATABASE_URL" not in env
        elif svc == "audit":
            assert env["MINT_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
                "name": "mint-audit-db-runtime",
                "key": "uri",
            }
            assert env["MINT_MIGRATIONS_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
                "name": "mint-audit-db-app",
                "key": "uri",
            }
        else:
            ref = env["MINT_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
            assert ref == {"name": f"mint-{svc}-db-app", "key": "uri"}
    fraud = deps["mint-fraud"]["spec"]["template"]["spec"]["containers"][0]
    assert fraud["ports"][0]["containerPort"] == 4011
    assert env_of(deps["mint-admin"])["MINT_LIMITS_OBJECT"]["value"] == "apps/mint"
    assert deps["mint-admin"]["spec"]["template"]["spec"]["serviceAccountName"] == "mint-admin"
    auth = deps["mint-auth"]["spec"]["template"]["spec"]
    assert env_of(deps["mint-auth"])["MINT_SIGNING_KEYS_DIR"]["value"] == "/etc/mint/keys"
    assert {
        "name": "signing-keys",
        "secret": {"secretName": "mint-signing-keys", "defaultMode": 0o440},
    } in auth["volumes"]


def test_cnpg_clusters_and_audit_owner_role() -> None:
    clusters = by_kind(render_tenant(tenant()), "Cluster")
    assert set(clusters) == {f"mint-{s}-db" for s in catalog.DATABASE_SERVICES}
    wallet = clusters["mint-wallet-db"]["spec"]
    assert wallet["bootstrap"]["initdb"] == {"database": "wallet", "owner": "wallet"}
    audit = clusters["mint-audit-db"]["spec"]
    assert audit["bootstrap"]["initdb"] == {"database": "audit", "owner": "audit_owner"}
    role = audit["managed"]["roles"][0]
    assert role["name"] == "audit" and role["passwordSecret"] == {"name": "mint-audit-db-runtime"}
    secrets = {
        s["metadata"]["name"]: s for s in render_initial_secrets(tenant(), datetime.now(UTC))
    }
    assert set(secrets) == {"mint-internal-token", "mint-signing-keys", "mint-audit-db-runtime"}
    assert secrets["mint-audit-db-runtime"]["type"] == "kubernetes.io/basic-auth"
    [kid] = secrets["mint-signing-keys"]["data"]
    assert len(kid) == len("YYYYMMDDHHMMSS.pem")


def test_network_policy_peers_per_grpc_port() -> None:
    policies = by_kind(render_tenant(tenant()), "NetworkPolicy")
    for svc in catalog.SERVICES:
        rules = policies[f"mint-{svc}"]["spec"]["ingress"]
        assert policies[f"mint-{svc}"]["spec"]["policyTypes"] == ["Ingress"]
        http = [r for r in rules if r["ports"][0]["port"] == catalog.HTTP_PORTS[svc]]
        namespaces = {
            p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            for p in http[0]["from"]
            if "namespaceSelector" in p
        }
        assert namespaces == {"ingress-nginx", "mint-system", "monitoring"}
        grpc = [r for r in rules if r["ports"][0]["port"] == catalog.GRPC_PORTS.get(svc)]
        if svc not in catalog.GRPC_PORTS:
            assert len(rules) == 1
            continue
        [rule] = grpc
        [peer] = rule["from"]
        assert "namespaceSelector" not in peer  # same namespace only
        [expr] = peer["podSelector"]["matchExpressions"]
        assert expr["key"] == "app.kubernetes.io/component"
        assert set(expr["values"]) == set(catalog.GRPC_CALLERS[svc])
    assert set(catalog.GRPC_CALLERS["wallet"]) == {"transactions", "admin"}
    assert set(catalog.GRPC_CALLERS["auth"]) == {"admin"}
    assert set(catalog.GRPC_CALLERS["social"]) == {"transactions"}


def test_config_hash_follows_config_and_secrets_but_not_limits() -> None:
    t = tenant()
    base = by_kind(render_tenant(t, limits(1)), "Deployment")
    other_limits = limits(2, fraud={"reviewThreshold": 10, "blockThreshold": 20})
    assert by_kind(render_tenant(t, other_limits), "Deployment") == base
    cm1 = render_limits_configmap(t, limits(1))
    cm2 = render_limits_configmap(t, other_limits)
    assert cm1["data"] != cm2["data"]

    def hashes(deps: dict[str, Obj]) -> dict[str, str]:
        return {
            n: d["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH]
            for n, d in deps.items()
        }

    # a secret's data changed → only the services reading it roll
    rolled = hashes(by_kind(render_tenant(t, None, {"mint-wallet-db-app": "new"}), "Deployment"))
    changed = {n for n, h in rolled.items() if h != hashes(base)[n]}
    assert changed == {"mint-wallet"}
    # the internal token is read by everyone
    rolled = hashes(by_kind(render_tenant(t, None, {"mint-internal-token": "x"}), "Deployment"))
    assert all(h != hashes(base)[n] for n, h in rolled.items())
    # configuration (env of one service) rolls that service
    spec = {"services": {"kyc": {"env": [{"name": "MINT_LOG_LEVEL", "value": "DEBUG"}]}}}
    rolled = hashes(by_kind(render_tenant(tenant(spec)), "Deployment"))
    assert {n for n, h in rolled.items() if h != hashes(base)[n]} == {"mint-kyc"}


def test_limits_configmap_format() -> None:
    t = tenant()
    cm = render_limits_configmap(
        t, limits(7, tiers={"BASIC": {"perTransaction": 1, "daily": 2, "monthly": 3}})
    )
    assert cm["metadata"]["name"] == "mint-limits"
    doc = yaml.safe_load(cm["data"]["limits.yaml"])
    assert doc["version"] == "7"
    assert doc["tiers"]["BASIC"] == {"per_transaction": 1, "daily": 2, "monthly": 3}
    assert doc["tiers"]["VERIFIED"]["per_transaction"] == 1000000
    assert doc["fraud"] == {
        "review_threshold": 50,
        "block_threshold": 100,
        "velocity": {"window_seconds": 3600, "max_transfers": 5},
        "review_hold_hours": 72,
    }
    # the services' own parser accepts what the operator writes
    parsed = parse_limits(cm["data"]["limits.yaml"])
    assert parsed.version == "7" and parsed.for_tier("BASIC").daily == 2
    # no MintLimits yet: exactly the defaults that ship with the code
    shipped = yaml.safe_load((ROOT / "services/mint/kit/limits_default.yaml").read_text())
    assert limits_document(None) == shipped
    assert yaml.safe_load(render_limits_configmap(t, None)["data"]["limits.yaml"]) == shipped


def test_topics_partitions_and_dlqs() -> None:
    t = tenant({"kafka": {"strimzi": {"clusterName": "kc", "namespace": "kafka"}}})
    topics = by_kind(render_tenant(t), "KafkaTopic")
    assert len(topics) == 20
    prefix = "apps.mint."  # <namespace>.<tenant>.: tenants share one Kafka
    parts = {
        o["spec"]["topicName"].removeprefix(prefix): o["spec"]["partitions"]
        for o in topics.values()
    }
    assert all(o["spec"]["topicName"].startswith(prefix) for o in topics.values())
    assert "apps-mint-wallet-events" in topics  # another namespace: scoped by namespace too
    assert parts["transaction.events"] == 6 and parts["wallet.events"] == 6
    assert parts["social.events"] == 6 and parts["auth.events"] == 3
    assert all(parts[f"{topic}.dlq"] == 1 for topic in catalog.TOPICS)
    for o in topics.values():
        assert o["apiVersion"] == "kafka.strimzi.io/v1"
        assert o["metadata"]["namespace"] == "kafka"
        assert o["metadata"]["labels"]["strimzi.io/cluster"] == "kc"
        assert "ownerReferences" not in o["metadata"]  # elsewhere: the finalizer cleans up
    env = env_of(by_kind(render_tenant(t), "Deployment")["mint-wallet"])
    assert env["MINT_KAFKA_BOOTSTRAP_SERVERS"]["value"] == "kc-kafka-bootstrap.kafka.svc:9092"
    custom = tenant({"kafka": {"topics": {"partitions": {"auth.events": 12}, "dlqPartitions": 2}}})
    assert topic_partitions(custom)["auth.events"] == 12
    assert topic_partitions(custom)["auth.events.dlq"] == 2


def test_optional_kafka_cluster_is_kraft_node_pool() -> None:
    t = tenant({"kafka": {"strimzi": {"create": {"enabled": True, "replicas": 3}}}})
    pool, kafka = render_kafka_cluster(t)
    assert pool["kind"] == "KafkaNodePool" and sorted(pool["spec"]["roles"]) == [
        "broker",
        "controller",
    ]
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == "mint-kafka"
    assert kafka["kind"] == "Kafka" and kafka["spec"]["kafka"]["listeners"][0]["port"] == 9092
    assert not render_kafka_cluster(tenant())


def test_autoscaling_and_disruption_budgets() -> None:
    spec = {
        "services": {
            "wallet": {"replicas": 3},
            "transactions": {"autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 5}},
        }
    }
    objs = render_tenant(tenant(spec))
    deps, hpas, pdbs = (
        by_kind(objs, "Deployment"),
        by_kind(objs, "HorizontalPodAutoscaler"),
        by_kind(objs, "PodDisruptionBudget"),
    )
    assert set(hpas) == {"mint-transactions"}
    assert "replicas" not in deps["mint-transactions"]["spec"]  # the HPA owns it
    assert hpas["mint-transactions"]["spec"]["maxReplicas"] == 5
    assert set(pdbs) == {"mint-wallet", "mint-transactions"}
    assert deps["mint-wallet"]["spec"]["replicas"] == 3


def test_disabled_service_and_external_dependencies() -> None:
    spec = {
        "services": {"social": {"enabled": False}},
        "kafka": {"mode": "external", "external": {"bootstrapServers": "k:9092"}},
        "postgres": {"mode": "external", "external": {"secretName": "dsns"}},
        "redis": {"mode": "external", "external": {"url": "redis://r:6379/0"}},
    }
    objs = render_tenant(tenant(spec))
    kinds = Counter(o["kind"] for o in objs)
    assert kinds["Deployment"] == 11 and "KafkaTopic" not in kinds and "Cluster" not in kinds
    assert "StatefulSet" not in kinds
    assert not by_kind(
        render_tenant(tenant({"networkPolicies": {"enabled": False}})), "NetworkPolicy"
    )
    env = env_of(by_kind(objs, "Deployment")["mint-audit"])
    assert env["MINT_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "dsns", "key": "audit"}
    assert env["MINT_MIGRATIONS_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["key"] == "audit-owner"
    assert env["MINT_REDIS_URL"]["value"] == "redis://r:6379/0"
    wallet_policy = by_kind(objs, "NetworkPolicy")["mint-wallet"]
    [expr] = wallet_policy["spec"]["ingress"][1]["from"][0]["podSelector"]["matchExpressions"]
    assert set(expr["values"]) == {"transactions", "admin"}
    ingress = by_kind(objs, "Ingress")["mint"]
    paths = {p["path"] for p in ingress["spec"]["rules"][0]["http"]["paths"]}
    assert "/api/v1/social" not in paths and "/api/v1/wallet" in paths


def test_ingress_routes_and_sse() -> None:
    t = tenant({"ingress": {"host": "mint.example.com", "tlsSecretName": "tls"}})
    ingresses = by_kind(render_tenant(t), "Ingress")
    main, sse = ingresses["mint"], ingresses["mint-sse"]
    assert main["spec"]["ingressClassName"] == "nginx"
    routes = {
        p["path"]: p["backend"]["service"]["name"]
        for p in main["spec"]["rules"][0]["http"]["paths"]
    }
    assert routes == {path: f"mint-{svc}" for path, svc, _ in catalog.ROUTES}
    assert main["spec"]["tls"] == [{"secretName": "tls", "hosts": ["mint.example.com"]}]
    [path] = sse["spec"]["rules"][0]["http"]["paths"]
    assert path["path"] == "/api/v1/notifications/stream"
    notes = sse["metadata"]["annotations"]
    assert notes["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    assert int(notes["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    env = env_of(by_kind(render_tenant(t), "Deployment")["mint-auth"])
    assert env["MINT_PUBLIC_URL"]["value"] == "https://mint.example.com"


def test_status_progressing_then_ready() -> None:
    t = tenant({"kafka": {"mode": "external", "external": {"bootstrapServers": "k"}}})
    now = datetime(2026, 1, 1, tzinfo=UTC)
    deps = {
        s: {"metadata": {"generation": 1}, "spec": {"replicas": 1}, "status": {}}
        for s in catalog.SERVICES
    }
    seen = Observed(deployments=copy.deepcopy(deps), dependencies={"redis": {"redis": None}})
    status = tenant_status(t, seen, None, now)
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds["Ready"]["status"] == "False" and conds["Progressing"]["status"] == "True"
    assert status["observedGeneration"] == 3 and status["readyServices"] == "0/12"
    for d in deps.values():
        d["status"] = {
            "observedGeneration": 1,
            "availableReplicas": 1,
            "updatedReplicas": 1,
            "replicas": 1,
        }
    sts = {"spec": {"replicas": 1}, "status": {"readyReplicas": 1}}
    later = now + timedelta(minutes=1)
    status = tenant_status(
        t, Observed(deployments=deps, dependencies={"redis": {"redis": sts}}), status, later
    )
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds["Ready"]["status"] == "True" and conds["Ready"]["reason"] == "AllComponentsReady"
    assert conds["Progressing"]["status"] == "False"
    assert conds["Degraded"]["lastTransitionTime"] == "2026-01-01T00:00:00Z"  # unchanged status
    assert conds["Ready"]["lastTransitionTime"] == "2026-01-01T00:01:00Z"
    failed = Observed(deployments=deps, dependencies={}, errors=["Deployment/x: forbidden"])
    conds = {c["type"]: c for c in tenant_status(t, failed, status, later)["conditions"]}
    assert conds["Degraded"]["status"] == "True" and conds["Ready"]["reason"] == "ReconcileFailed"


def test_limits_status_counts_services_reporting_the_version() -> None:
    status = limits_status(
        limits(4),
        {"kyc": "4", "fraud": "4", "transactions": "3", "admin": None},
        ["apps/mint-limits"],
    )
    assert status["version"] == "4" and status["applied"] == "2/4"
    assert status["services"]["admin"] == "" and status["conditions"][0]["status"] == "False"
    done = limits_status(
        limits(4), dict.fromkeys(catalog.LIMITS_SERVICES, "4"), ["apps/mint-limits"]
    )
    assert done["applied"] == "4/4" and done["conditions"][0]["status"] == "True"


def test_env_names_are_settings_the_services_read() -> None:
    """Every MINT_* variable the operator sets is a field of that service's settings (or read by
    the kit directly); services not built yet may only get the kit's own settings plus the few
    platform.md names they will read."""
    from mint.kit.config import KitSettings
    from mint.kit.runner import implemented_services, load_service

    kit_reads = {"MINT_LIMITS_FILE"}  # mint.kit.limits reads it from the environment
    pending = {  # named by platform.md / services.md for services still to come
        "admin": {"MINT_LIMITS_OBJECT", "MINT_S3_ENDPOINT", "MINT_S3_REGION", "MINT_KYC_BUCKET"}
        | {"MINT_S3_ACCESS_KEY", "MINT_S3_SECRET_KEY"},
        "audit": {"MINT_MIGRATIONS_DATABASE_URL"},
        "notifications": {"MINT_SMTP_URL"},
    }
    spec = {
        "smtp": {"secretName": "smtp"},
        "objectStorage": {"endpoint": "e", "region": "r", "bucket": "b", "credentialsSecret": "c"},
        "observability": {"otlpEndpoint": "http://otel:4317"},
    }
    built = set(implemented_services())
    for svc in catalog.SERVICES:
        cls = load_service(svc).settings_cls if svc in built else KitSettings
        known = {
            str(f.validation_alias or f"MINT_{n.upper()}") for n, f in cls.model_fields.items()
        }
        known |= kit_reads | (set() if svc in built else pending.get(svc, set()))
        unknown = [e["name"] for e in service_env(tenant(spec), svc) if e["name"] not in known]
        assert not unknown, f"{svc} ({cls.__name__}) does not read {unknown}"


def test_deletion_policy_delete_owns_the_data_too() -> None:
    objs = render_tenant(tenant({"deletionPolicy": "Delete"}))
    for o in objs:
        assert o["metadata"]["ownerReferences"][0]["uid"] == "uid-1", o["metadata"]["name"]
    topics = by_kind(
        render_tenant(
            tenant({"deletionPolicy": "Delete", "kafka": {"strimzi": {"namespace": "k"}}})
        ),
        "KafkaTopic",
    )
    assert all("ownerReferences" not in o["metadata"] for o in topics.values())  # the finalizer's


def test_kafka_names_are_tenant_scoped() -> None:
    env = env_of(by_kind(render_tenant(tenant()), "Deployment")["mint-wallet"])
    assert env["MINT_KAFKA_PREFIX"]["value"] == "apps.mint."
    shared = {"kafka": {"strimzi": {"namespace": "kafka", "create": {"enabled": True}}}}
    pool, kafka = render_kafka_cluster(tenant(shared))
    assert kafka["metadata"]["name"] == "apps-mint-kafka"  # default name: scoped
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == "apps-mint-kafka"
    same_name_elsewhere = Tenant.from_object(
        {"metadata": {"name": "mint", "namespace": "shop", "uid": "u2"}, "spec": shared}
    )
    ours = {
        o["metadata"]["name"] for o in render_tenant(tenant(shared)) if o["kind"] == "KafkaTopic"
    }
    theirs = {
        o["metadata"]["name"]
        for o in render_tenant(same_name_elsewhere)
        if o["kind"] == "KafkaTopic"
    }
    assert ours and theirs and not ours & theirs


def test_topic_replicas_follow_the_created_kafka() -> None:
    def replicas(spec: Obj) -> set[int]:
        topics = by_kind(render_tenant(tenant(spec)), "KafkaTopic").values()
        return {o["spec"]["replicas"] for o in topics}

    assert replicas({"kafka": {"strimzi": {"create": {"enabled": True, "replicas": 1}}}}) == {1}
    assert replicas({"kafka": {"strimzi": {"create": {"enabled": True, "replicas": 5}}}}) == {3}
    assert replicas({}) == {3}
    assert replicas({"kafka": {"topics": {"replicas": 2}}}) == {2}


def test_shared_postgres_layout_one_cluster_a_database_per_service() -> None:
    t = tenant({"postgres": {"cloudnativepg": {"layout": "Shared"}}})
    objs = render_tenant(t)
    [cluster] = by_kind(objs, "Cluster").values()
    assert cluster["metadata"]["name"] == "mint-db"
    databases = by_kind(objs, "Database")
    assert {d["spec"]["name"] for d in databases.values()} == set(catalog.DATABASE_SERVICES)
    assert all(d["spec"]["cluster"] == {"name": "mint-db"} for d in databases.values())
    assert all(d["spec"]["databaseReclaimPolicy"] == "retain" for d in databases.values())
    roles = {r["name"]: r["passwordSecret"]["name"] for r in cluster["spec"]["managed"]["roles"]}
    assert roles["audit_owner"] == "mint-db-audit-owner" and roles["audit"] == "mint-db-audit"
    secrets = {s["metadata"]["name"] for s in render_initial_secrets(t, datetime.now(UTC))}
    assert set(roles.values()) <= secrets  # the operator generates every role's password
    env = env_of(by_kind(objs, "Deployment")["mint-audit"])
    assert env["MINT_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "mint-db-audit"
    owner = env["MINT_MIGRATIONS_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"]
    assert owner == "mint-db-audit-owner"


def test_limits_of_a_deleted_mintlimits_are_kept() -> None:
    t = tenant()
    written = render_limits_configmap(t, limits(7, fraud={"reviewThreshold": 40}))
    kept = kept_limits_document(written)
    assert kept is not None and kept["version"] == "7" and kept["fraud"]["review_threshold"] == 40
    again = render_limits_configmap(t, None, kept)
    assert again["data"] == written["data"]
    assert kept_limits_document(render_limits_configmap(t, None)) is None  # defaults: nothing kept
