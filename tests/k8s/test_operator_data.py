"""What a platform engineer must be able to trust, on the real API server with its garbage
collector: data is never deleted implicitly (deletionPolicy Retain, adoption on re-creation;
Delete removes it), tenants sharing one Kafka namespace never touch each other's objects, the
operator explains itself in Events and conditions (a missing CloudNativePG, an ownership
conflict), and a deleted MintLimits leaves the last applied limits in place."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mint_operator import catalog
from mint_operator.kube import Kube
from mint_operator.render.common import TENANT_UID, tenant_selector
from mint_operator.spec import Tenant
from tests.k8s.apiserver import UPSTREAM_CRD_DIR
from tests.k8s.fake_controllers import FakeControllers
from tests.k8s.operator_runner import (
    Env,
    OperatorRunner,
    install_operator_rbac,
    service_account_kubeconfig,
    wait_for,
)
from tests.k8s.test_operator import (
    limits_body,
    limits_file,
    tenant_body,
    tenant_status,
    wait_ready,
)

pytestmark = pytest.mark.slow
Obj = dict[str, Any]
MT = catalog.API_VERSION
STRIMZI = "kafka.strimzi.io/v1"
CNPG = "postgresql.cnpg.io/v1"


def uids(objs: list[Obj]) -> dict[str, str]:
    return {o["metadata"]["name"]: o["metadata"]["uid"] for o in objs}


def events(admin: Kube, namespace: str, name: str, reason: str | None = None) -> list[Obj]:
    """Events the operator posted on MintTenant ``name`` (any incarnation of it)."""
    found = admin.list("v1", "Event", namespace)
    return [
        e
        for e in found
        if e["involvedObject"].get("kind") == "MintTenant"
        and e["involvedObject"].get("name") == name
        and e.get("source", {}).get("component") == "mint-operator"
        and (reason is None or e["reason"] == reason)
    ]


def delete_tenant(env: Env, name: str = "mint") -> None:
    env.admin.delete(MT, "MintTenant", env.namespace, name)
    wait_for(
        lambda: env.admin.get(MT, "MintTenant", env.namespace, name) is None, 60, what="deleted"
    )


def test_retained_data_survives_deletion_and_is_adopted(env: Env) -> None:
    env.fakes.ready.set()
    with env.operator():
        env.admin.apply(tenant_body(env))
        wait_ready(env)
        first = env.admin.get(MT, "MintTenant", env.namespace, "mint")
        assert first is not None
        clusters = uids(env.children(CNPG, "Cluster"))
        topics = uids(env.children(STRIMZI, "KafkaTopic", env.kafka_namespace))
        assert len(clusters) == 11 and len(topics) == 20
        status = tenant_status(env)
        assert status["deletionPolicy"] == "Retain" and len(status["retained"]) == 31
        assert f"Cluster/{env.namespace}/mint-wallet-db" in status["retained"]
        assert all("ownerReferences" not in c["metadata"] for c in env.children(CNPG, "Cluster"))

        delete_tenant(env)
        # the garbage collector removed what the tenant owned; the data stayed
        wait_for(
            lambda: not env.children("apps/v1", "Deployment"), 120, what="deployments collected"
        )
        assert uids(env.children(CNPG, "Cluster")) == clusters
        assert uids(env.children(STRIMZI, "KafkaTopic", env.kafka_namespace)) == topics
        [retained] = events(env.admin, env.namespace, "mint", "DataRetained")
        assert retained["involvedObject"]["uid"] == first["metadata"]["uid"]
        assert "31 object(s)" in retained["message"]

        env.admin.apply(tenant_body(env))  # the same name again: adopts, recreates nothing
        wait_ready(env)
        second = env.admin.get(MT, "MintTenant", env.namespace, "mint")
        assert second is not None and second["metadata"]["uid"] != first["metadata"]["uid"]
        assert uids(env.children(CNPG, "Cluster")) == clusters
        assert uids(env.children(STRIMZI, "KafkaTopic", env.kafka_namespace)) == topics
        for cluster in env.children(CNPG, "Cluster"):
            assert cluster["metadata"]["annotations"][TENANT_UID] == second["metadata"]["uid"]
        adopted = wait_for(
            lambda: events(env.admin, env.namespace, "mint", "Adopted"), 30, what="Adopted event"
        )
        assert adopted[0]["involvedObject"]["uid"] == second["metadata"]["uid"]
        assert "adopted 31 retained object(s)" in adopted[0]["message"]


# ---- tenants sharing one Kafka namespace -------------------------------------------------------
@dataclass
class Shared:
    admin: Kube
    first: str  # two tenant namespaces and the Kafka namespace they share
    second: str
    kafka: str
    op: OperatorRunner
    fakes: FakeControllers


@pytest.fixture
def shared(kube: Any, namespace: str, tmp_path: Path) -> Iterator[Shared]:
    admin = Kube.connect(str(kube.kubeconfig_path))
    admin.field_manager = "kubectl"
    second, kafka = f"{namespace[:50]}-two", f"{namespace[:50]}-kafka"
    for ns in (second, kafka):
        admin.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    watched = [namespace, second, kafka]
    sa, role = install_operator_rbac(admin, namespace, watched)
    kubeconfig = service_account_kubeconfig(admin, kube, namespace, sa, tmp_path / "op.kubeconfig")
    fakes = FakeControllers(admin, watched).start()
    fakes.ready.set()
    op = OperatorRunner(kubeconfig, watched, operator_namespace=namespace, limits_role=role)
    op.start()
    try:
        yield Shared(admin, namespace, second, kafka, op, fakes)
    finally:
        op.stop()
        fakes.stop()
        for ns in (second, kafka):
            admin.delete("v1", "Namespace", None, ns)
    assert fakes.errors == [], "the fake controllers failed"


def shared_tenant(s: Shared, namespace: str, name: str, **spec: Any) -> Obj:
    return {
        "apiVersion": MT,
        "kind": "MintTenant",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "image": {"repository": "mint", "tag": "test"},
            "kafka": {"strimzi": {"clusterName": "kc", "namespace": s.kafka}},
            "postgres": {"mode": "external", "external": {"secretName": "dsns"}},
            "redis": {"mode": "external", "external": {"url": "redis://r:6379/0"}},
            "services": {n: {"enabled": n in ("web", "wallet")} for n in catalog.SERVICES},
            **spec,
        },
    }


def topics_of(s: Shared, namespace: str, name: str) -> dict[str, str]:
    t = Tenant.from_object({"metadata": {"name": name, "namespace": namespace}})
    return uids(s.admin.list(STRIMZI, "KafkaTopic", s.kafka, tenant_selector(t)))


def conditions(s: Shared, namespace: str, name: str) -> dict[str, Obj]:
    body = s.admin.get(MT, "MintTenant", namespace, name) or {}
    return {c["type"]: c for c in (body.get("status") or {}).get("conditions") or []}


def test_tenants_sharing_a_kafka_never_touch_each_others_objects(shared: Shared) -> None:
    s = shared
    create = {"strimzi": {"clusterName": "kc", "namespace": s.kafka, "create": {"enabled": True}}}
    # "mint" creates the Kafka kc; "other" (same namespace) and "mint" in a second namespace use
    # it too — the second "mint" also asks to create kc, which belongs to the first
    s.admin.apply(shared_tenant(s, s.first, "mint", kafka=create))
    wait_for(lambda: s.admin.get(STRIMZI, "Kafka", s.kafka, "kc"), 60, what="the first's Kafka")
    s.admin.apply(shared_tenant(s, s.first, "other"))
    s.admin.apply(shared_tenant(s, s.second, "mint", kafka=create, deletionPolicy="Delete"))
    tenants = [(s.first, "mint"), (s.first, "other"), (s.second, "mint")]
    for ns, name in tenants:
        wait_for(lambda ns=ns, name=name: len(topics_of(s, ns, name)) == 20, 90, what=name)
    topics = {key: topics_of(s, *key) for key in tenants}
    assert len({n for names in topics.values() for n in names}) == 60  # no object shared
    for ns, name in tenants:
        names = {
            o["spec"]["topicName"]
            for o in s.admin.list(STRIMZI, "KafkaTopic", s.kafka)
            if o["metadata"]["name"] in topics[(ns, name)]
        }
        assert names == {f"{ns}.{name}.{topic}" for topic in catalog.TOPICS} | {
            f"{ns}.{name}.{topic}.dlq" for topic in catalog.TOPICS
        }
        dep = s.admin.get("apps/v1", "Deployment", ns, f"{name}-wallet")
        assert dep is not None
        env = {
            e["name"]: e.get("value")
            for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]
        }
        assert env["MINT_KAFKA_PREFIX"] == f"{ns}.{name}."  # consumer groups are prefixed too

    # the Kafka kc stays the first tenant's; the second is told, with a condition and Events
    kafka = s.admin.get(STRIMZI, "Kafka", s.kafka, "kc")
    assert kafka is not None and kafka["metadata"]["labels"]["mint.dev/tenant-namespace"] == s.first
    conds = wait_for(
        lambda: (
            (c := conditions(s, s.second, "mint"))
            and c["Ready"]["reason"] == "ReconcileFailed"
            and c
        ),
        60,
        what="the conflict reported",
    )
    assert f"Kafka/{s.kafka}/kc: belongs to MintTenant {s.first}/mint" in conds["Ready"]["message"]
    assert conds["Degraded"]["status"] == "True"
    conflict = events(s.admin, s.second, "mint", "OwnershipConflict")
    assert conflict and conflict[0]["type"] == "Warning"
    assert events(s.admin, s.second, "mint", "ReconcileFailed")
    assert not events(s.admin, s.first, "mint", "OwnershipConflict")

    # deleting the second "mint" (deletionPolicy Delete) removes its topics only
    s.admin.delete(MT, "MintTenant", s.second, "mint")
    wait_for(lambda: not topics_of(s, s.second, "mint"), 60, what="its topics deleted")
    assert topics_of(s, s.first, "mint") == topics[(s.first, "mint")]
    assert topics_of(s, s.first, "other") == topics[(s.first, "other")]
    assert s.admin.get(STRIMZI, "Kafka", s.kafka, "kc") is not None


# ---- the operator explains itself --------------------------------------------------------------
@pytest.fixture
def without_cnpg(kube: Any) -> Iterator[None]:
    """The CloudNativePG CRDs removed for one test, installed again afterwards."""
    admin = Kube.connect(str(kube.kubeconfig_path))
    names = ["clusters.postgresql.cnpg.io", "databases.postgresql.cnpg.io"]
    for name in names:
        admin.delete("apiextensions.k8s.io/v1", "CustomResourceDefinition", None, name)
    wait_for(lambda: not admin.served(CNPG, "clusters"), 60, what="CNPG no longer served")
    try:
        yield
    finally:
        files = [
            UPSTREAM_CRD_DIR / "cnpg" / f"postgresql.cnpg.io_{n.split('.')[0]}.yaml" for n in names
        ]
        kube.control_plane.install_crds(files)
        wait_for(lambda: admin.served(CNPG, "clusters"), 60, what="CNPG served again")


def test_missing_cloudnativepg_is_a_clear_condition_and_event(env: Env, without_cnpg: None) -> None:
    env.fakes.ready.set()
    with env.operator():
        env.admin.apply(tenant_body(env))
        conds = wait_for(
            lambda: (
                (c := env.conditions()) and c["Ready"]["reason"] == "CloudNativePGMissing" and c
            ),
            60,
            what="the CloudNativePGMissing condition",
        )
        assert "install CloudNativePG >= 1.25" in conds["Ready"]["message"]
        assert "404" not in conds["Ready"]["message"]
        assert conds["Degraded"]["status"] == "True"
        [event] = wait_for(
            lambda: events(env.admin, env.namespace, "mint", "CloudNativePGMissing"), 30
        )
        assert event["type"] == "Warning" and "install CloudNativePG" in event["message"]
        # everything else is applied meanwhile
        wait_for(lambda: len(env.children("apps/v1", "Deployment")) == 12, 60, what="deployments")


def test_deleted_limits_stay_applied_and_the_status_says_so(env: Env) -> None:
    env.fakes.ready.set()
    with env.operator():
        env.admin.apply(tenant_body(env))
        wait_ready(env)
        env.admin.apply(limits_body(env, fraud={"reviewThreshold": 40, "blockThreshold": 90}))
        wait_for(lambda: limits_file(env)["version"] == "1", 30, what="limits version 1")
        wait_for(
            lambda: events(env.admin, env.namespace, "mint", "LimitsApplied"), 30, what="event"
        )
        wait_for(
            lambda: tenant_status(env).get("limits", {}).get("source") == "MintLimits",
            30,
            what="the tenant says its limits come from the MintLimits",
        )

        written = limits_file(env)  # what the services apply when the MintLimits goes
        env.admin.delete(MT, "MintLimits", env.namespace, "mint")
        status = wait_for(
            lambda: (
                (st := tenant_status(env)).get("limits", {}).get("source") == "LastApplied" and st
            ),
            60,
            what="the tenant says the last limits stay",
        )
        assert "was deleted" in status["limits"]["message"]
        assert status["limitsVersion"] == written["version"] != "0"
        kept = limits_file(env)
        assert kept == written and kept["fraud"]["review_threshold"] == 40  # never the defaults
        assert events(env.admin, env.namespace, "mint", "LimitsKept")
        cm = env.admin.get("v1", "ConfigMap", env.namespace, "mint-limits")
        assert cm is not None and cm["metadata"]["annotations"]["mint.dev/limits-version"] != "0"
