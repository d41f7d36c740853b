"""The operator against a real API server (kube-apiserver + etcd + the garbage collector), running
as the operator chart's ServiceAccount, with fake controllers standing in for kubelet, Strimzi
and CloudNativePG."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import yaml

from mint_operator import catalog
from mint_operator.kube import ApiError
from tests.k8s.operator_runner import Env, OperatorRunner, wait_for

pytestmark = pytest.mark.slow
Obj = dict[str, Any]
MT = catalog.API_VERSION


def tenant_body(env: Env, **spec: Any) -> Obj:
    return {
        "apiVersion": MT,
        "kind": "MintTenant",
        "metadata": {"name": "mint", "namespace": env.namespace},
        "spec": {
            "image": {"repository": "mint", "tag": "test"},
            "kafka": {
                "strimzi": {"clusterName": "kc", "namespace": env.kafka_namespace},
                "topics": {"replicas": 1},
            },
            "services": {"wallet": {"replicas": 2}},
            **spec,
        },
    }


def limits_body(env: Env, **spec: Any) -> Obj:
    return {
        "apiVersion": MT,
        "kind": "MintLimits",
        "metadata": {"name": "mint", "namespace": env.namespace},
        "spec": spec,
    }


EXPECTED = {
    ("apps/v1", "Deployment"): 12,
    ("v1", "Service"): 13,
    ("networking.k8s.io/v1", "NetworkPolicy"): 13,
    ("networking.k8s.io/v1", "Ingress"): 2,
    ("policy/v1", "PodDisruptionBudget"): 1,
    ("postgresql.cnpg.io/v1", "Cluster"): 11,
    ("apps/v1", "StatefulSet"): 1,
    ("v1", "ConfigMap"): 1,
    ("v1", "ServiceAccount"): 2,
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): 1,
    ("v1", "Secret"): 3,
}


def counts(env: Env) -> dict[tuple[str, str], int]:
    out = {key: len(env.children(*key)) for key in EXPECTED}
    out[("kafka.strimzi.io/v1", "KafkaTopic")] = len(
        env.children("kafka.strimzi.io/v1", "KafkaTopic", env.kafka_namespace)
    )
    return out


def tenant_status(env: Env) -> Obj:
    return dict((env.admin.get(MT, "MintTenant", env.namespace, "mint") or {}).get("status") or {})


def wait_ready(env: Env, timeout: float = 90) -> None:
    try:
        wait_for(
            lambda: env.conditions().get("Ready", {}).get("status") == "True",
            timeout,
            what="Ready=True",
        )
    except AssertionError as exc:  # say what the pods that did not start were missing
        raise AssertionError(f"{exc}; pods waiting for {env.fakes.blocked}") from None


def test_tenant_creates_every_object_and_becomes_ready(env: Env) -> None:
    with env.operator():
        env.admin.apply(tenant_body(env))
        want = {**EXPECTED, ("kafka.strimzi.io/v1", "KafkaTopic"): 20}
        wait_for(lambda: counts(env) == want, 90, what=f"children {want}")
        # fakes report "not yet available": the tenant is progressing
        conds = wait_for(
            lambda: (c := env.conditions()) and c["Progressing"]["status"] == "True" and c, 30
        )
        assert conds["Ready"]["status"] == "False"
        assert conds["Ready"]["reason"] in ("RollingOut", "WaitingForDependencies")
        body = env.admin.get(MT, "MintTenant", env.namespace, "mint")
        assert body is not None
        assert body["status"]["observedGeneration"] == body["metadata"]["generation"]
        assert catalog.FINALIZER in body["metadata"]["finalizers"]

        env.fakes.ready.set()
        wait_ready(env)
        conds = env.conditions()
        assert conds["Progressing"]["status"] == "False" and conds["Degraded"]["status"] == "False"
        status = env.admin.get(MT, "MintTenant", env.namespace, "mint")["status"]  # type: ignore[index]
        assert status["readyServices"] == "12/12" and status["url"] == "http://localhost"
        assert status["dependencies"]["topics"] == {"ready": 20, "total": 20, "notReady": []}
        assert status["dependencies"]["databases"]["ready"] == 11
        assert env.fakes.blocked == {}, "every Secret and ConfigMap the pods read exists"
        pods = env.children("v1", "Pod")
        assert len(pods) == 13  # one per replica (wallet runs 2), each started and ready
        assert all(p["status"]["phase"] == "Running" and p["status"]["podIP"] for p in pods)

    uid = body["metadata"]["uid"]
    deps = {d["metadata"]["name"]: d for d in env.children("apps/v1", "Deployment")}
    for dep in deps.values():
        assert dep["metadata"]["ownerReferences"][0]["uid"] == uid
        managers = {(m["manager"], m["operation"]) for m in dep["metadata"]["managedFields"]}
        assert ("mint-operator", "Apply") in managers
    fraud = deps["mint-fraud"]["spec"]["template"]["spec"]["containers"][0]
    assert (
        fraud["readinessProbe"]["httpGet"]["path"] == "/readyz"
        and fraud["ports"][0]["containerPort"] == 4011
    )
    topics = env.children("kafka.strimzi.io/v1", "KafkaTopic", env.kafka_namespace)
    assert {t["metadata"]["labels"]["strimzi.io/cluster"] for t in topics} == {"kc"}
    assert all("ownerReferences" not in t["metadata"] for t in topics)
    keys = env.admin.get("v1", "Secret", env.namespace, "mint-signing-keys")
    assert keys is not None and len(keys["data"]) == 1
    [name] = keys["data"]
    assert name.endswith(".pem") and len(name) == len("YYYYMMDDHHMMSS.pem")
    assert b"PRIVATE KEY" in base64.b64decode(keys["data"][name])


def test_a_deployment_whose_secret_is_missing_is_not_ready(env: Env) -> None:
    """The database DSNs come from a Secret the tenant names and nobody has created yet: a
    kubelet cannot start those pods, so those services are not ready — until it exists."""
    env.fakes.ready.set()
    with env.operator():
        env.admin.apply(
            {
                "apiVersion": MT,
                "kind": "MintTenant",
                "metadata": {"name": "mint", "namespace": env.namespace},
                "spec": {
                    "kafka": {"mode": "external", "external": {"bootstrapServers": "k:9092"}},
                    "postgres": {"mode": "external", "external": {"secretName": "dsns"}},
                    "redis": {"mode": "external", "external": {"url": "redis://redis:6379/0"}},
                },
            }
        )
        with_db = {f"{env.namespace}/mint-{s}" for s in catalog.DATABASE_SERVICES}
        wait_for(
            lambda: (
                set(env.fakes.blocked) == with_db
                and all(v == ["Secret/dsns"] for v in env.fakes.blocked.values())
            ),
            60,
            what="the pods of every service with a database waiting for Secret/dsns",
        )
        # the others start; those stay unavailable, and the tenant says so
        others = len(catalog.SERVICES) - len(catalog.DATABASE_SERVICES)
        status = wait_for(
            lambda: (s := tenant_status(env)).get("readyServices") == f"{others}/12" and s,
            60,
            what=f"{others}/12 services ready",
        )
        assert all(not status["services"][s]["ready"] for s in catalog.DATABASE_SERVICES)
        assert env.conditions()["Ready"]["status"] == "False"

        urls = {s: _b64(f"postgresql://{s}@db/{s}") for s in catalog.DATABASE_SERVICES}
        urls["audit-owner"] = _b64("postgresql://owner@db/audit")
        env.admin.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "dsns", "namespace": env.namespace},
                "data": urls,
            }
        )
        wait_ready(env)
        assert env.fakes.blocked == {}


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_invalid_limits_are_rejected_by_the_api_server(env: Env) -> None:
    bad = [
        (
            {"tiers": {"BASIC": {"perTransaction": 300, "daily": 200, "monthly": 1000}}},
            "perTransaction must not exceed daily",
        ),
        (
            {"tiers": {"VERIFIED": {"perTransaction": 1, "daily": 5, "monthly": 4}}},
            "daily must not exceed monthly",
        ),
        (
            {"fraud": {"reviewThreshold": 100, "blockThreshold": 100}},
            "reviewThreshold must be lower",
        ),
        (
            {"tiers": {"BASIC": {"perTransaction": -1, "daily": 2, "monthly": 3}}},
            "should be greater than or equal to 0",
        ),
        ({"currency": "EUR"}, "Unsupported value"),
    ]
    for spec, message in bad:
        with pytest.raises(ApiError) as info:
            env.admin.apply(limits_body(env, **spec))
        assert info.value.status == 422, info.value
        assert message in info.value.message, info.value.message
    created = env.admin.apply(limits_body(env))  # every field defaulted by the schema
    assert created["spec"]["tiers"]["BASIC"] == {
        "perTransaction": 50000,
        "daily": 200000,
        "monthly": 1000000,
    }
    assert created["spec"]["fraud"]["reviewThreshold"] == 50


def template_snapshot(env: Env) -> dict[str, tuple[int, Obj]]:
    return {
        d["metadata"]["name"]: (d["metadata"]["generation"], d["spec"]["template"])
        for d in env.children("apps/v1", "Deployment")
    }


def reconciled_twice(op: OperatorRunner) -> None:
    """Wait until the operator has run two more whole reconciles (its resync timer brings
    them): what it renders now, it has applied."""
    seen = op.reconciles
    wait_for(lambda: op.reconciles >= seen + 2, 60, what="two more reconciles")


def stable_templates(env: Env, op: OperatorRunner) -> dict[str, tuple[int, Obj]]:
    """Pod templates that two reconciles in a row leave as they are (CNPG secrets appearing
    roll services once)."""

    def check() -> dict[str, tuple[int, Obj]] | None:
        before = template_snapshot(env)
        reconciled_twice(op)
        after = template_snapshot(env)
        return after if before == after and len(after) == 12 else None

    return wait_for(check, 120, interval=0, what="stable pod templates")


def pod_uids(env: Env) -> dict[str, str]:
    return {p["metadata"]["name"]: p["metadata"]["uid"] for p in env.children("v1", "Pod")}


def limits_status(env: Env) -> Obj:
    return dict((env.admin.get(MT, "MintLimits", env.namespace, "mint") or {}).get("status") or {})


def limits_file(env: Env) -> Obj:
    cm = env.admin.get("v1", "ConfigMap", env.namespace, "mint-limits")
    assert cm is not None
    return yaml.safe_load(cm["data"]["limits.yaml"])


def test_limits_change_updates_configmap_without_rolling_pods(env: Env) -> None:
    env.fakes.ready.set()
    with env.operator() as op:
        env.admin.apply(tenant_body(env))
        wait_ready(env)
        assert limits_file(env)["version"] == "0"  # no MintLimits yet: the defaults
        env.admin.apply(limits_body(env))
        wait_for(lambda: limits_file(env)["version"] == "1", 30, what="limits version 1")
        before = stable_templates(env, op)
        pods = pod_uids(env)

        env.admin.apply(limits_body(env, fraud={"reviewThreshold": 40, "blockThreshold": 90}))
        doc = wait_for(
            lambda: (d := limits_file(env))["version"] == "2" and d, 30, what="limits version 2"
        )
        assert doc["fraud"]["review_threshold"] == 40 and doc["fraud"]["block_threshold"] == 90
        # "applied" is what the running pods report: each limits service's /readyz
        status = wait_for(
            lambda: (s := limits_status(env)).get("version") == "2" and s["applied"] == "4/4" and s,
            30,
            what="MintLimits status: version 2 applied 4/4",
        )
        assert status["services"] == dict.fromkeys(catalog.LIMITS_SERVICES, "2")
        assert status["observedGeneration"] == 2
        wait_for(
            lambda: tenant_status(env).get("limitsVersion") == "2", 30, what="tenant limitsVersion"
        )

        # kyc's pods have not got the new file yet (their kubelet has not synced the volume):
        # the ConfigMap says 3, kyc's /readyz still says 2 — and so does the status
        env.fakes.hold_volumes(env.namespace, "mint-kyc")
        env.admin.apply(limits_body(env, fraud={"reviewThreshold": 30, "blockThreshold": 90}))
        wait_for(lambda: limits_file(env)["version"] == "3", 30, what="limits version 3")
        status = wait_for(
            lambda: (s := limits_status(env)).get("version") == "3" and s["applied"] == "3/4" and s,
            30,
            what="MintLimits status applied 3/4",
        )
        assert status["services"]["kyc"] == "2", status
        assert status["conditions"][0]["status"] == "False", status
        env.fakes.hold_volumes(env.namespace, "mint-kyc", held=False)
        status = wait_for(
            lambda: (s := limits_status(env))["applied"] == "4/4" and s, 30, what="applied 4/4"
        )
        assert status["version"] == "3" and status["services"]["kyc"] == "3", status

        reconciled_twice(op)  # two resyncs later, still no pod-template change anywhere
        assert template_snapshot(env) == before
        assert pod_uids(env) == pods  # and no pod was replaced: the file changed in place


def test_drift_is_corrected(env: Env) -> None:
    env.fakes.ready.set()
    with env.operator():
        env.admin.apply(tenant_body(env))
        wait_ready(env)
        # scaled by hand (another field manager): put back
        env.admin.patch(
            "apps/v1", "Deployment", env.namespace, "mint-wallet", {"spec": {"replicas": 7}}
        )
        wait_for(
            lambda: (
                env.admin.get("apps/v1", "Deployment", env.namespace, "mint-wallet")["spec"][
                    "replicas"
                ]
                == 2
            ),  # type: ignore[index]
            30,
            what="replicas reverted to 2",
        )
        # deleted by hand: recreated
        env.admin.delete("v1", "Service", env.namespace, "mint-kyc")
        env.admin.delete("networking.k8s.io/v1", "NetworkPolicy", env.namespace, "mint-wallet")
        wait_for(
            lambda: env.admin.get("v1", "Service", env.namespace, "mint-kyc"),
            30,
            what="Service recreated",
        )
        policy = wait_for(
            lambda: env.admin.get(
                "networking.k8s.io/v1", "NetworkPolicy", env.namespace, "mint-wallet"
            ),
            30,
        )
        callers = policy["spec"]["ingress"][1]["from"][0]["podSelector"]["matchExpressions"][0][
            "values"
        ]
        assert sorted(callers) == ["admin", "transactions"]
        # the limits ConfigMap edited by hand: rewritten
        env.admin.patch(
            "v1", "ConfigMap", env.namespace, "mint-limits", {"data": {"limits.yaml": "version: x"}}
        )
        wait_for(lambda: limits_file(env)["version"] == "0", 30, what="limits ConfigMap restored")


def test_deleting_a_tenant_under_delete_policy_removes_children_and_topics(env: Env) -> None:
    env.fakes.ready.set()
    with env.operator():
        env.admin.apply(tenant_body(env, deletionPolicy="Delete"))
        wait_ready(env)
        assert len(env.children("kafka.strimzi.io/v1", "KafkaTopic", env.kafka_namespace)) == 20
        assert tenant_status(env)["retained"] == []
        env.admin.delete(MT, "MintTenant", env.namespace, "mint")
        wait_for(
            lambda: env.admin.get(MT, "MintTenant", env.namespace, "mint") is None,
            60,
            what="tenant gone",
        )
        # the finalizer removed what lives in the Kafka namespace, and said so
        assert env.children("kafka.strimzi.io/v1", "KafkaTopic", env.kafka_namespace) == []
        posted = env.admin.list("v1", "Event", env.namespace)
        assert any(e["reason"] == "DataDeleted" for e in posted)
    # the garbage collector removes what the tenant owned, its CloudNativePG Clusters included
    wait_for(
        lambda: all(not env.children(*key) for key in EXPECTED), 120, what="children collected"
    )


def peering(env: Env) -> Obj:
    return env.admin.request(
        "GET", f"/apis/kopf.dev/v1/namespaces/{env.namespace}/kopfpeerings/mint-operator"
    )


def test_two_operators_only_one_acts(env: Env) -> None:
    env.fakes.ready.set()
    high = env.operator(priority=200).start()
    low = env.operator(priority=100)
    try:
        wait_for(
            lambda: high.identity in (peering(env).get("status") or {}),
            30,
            what="the high-priority operator announced in the peering object",
        )
        low.start()
        env.admin.apply(tenant_body(env))
        wait_ready(env)
        env.admin.delete("v1", "Service", env.namespace, "mint-kyc")
        wait_for(
            lambda: env.admin.get("v1", "Service", env.namespace, "mint-kyc"),
            30,
            what="recreated by high",
        )
        assert high.reconciles > 0 and low.reconciles == 0
        assert {high.identity, low.identity} <= set((peering(env).get("status") or {}).keys())

        high.stop()  # a clean exit withdraws it from peering: the other resumes
        env.admin.delete("v1", "Service", env.namespace, "mint-auth")
        wait_for(
            lambda: env.admin.get("v1", "Service", env.namespace, "mint-auth"),
            60,
            what="recreated by low",
        )
        assert low.reconciles > 0
    finally:
        low.stop()
        high.stop()
