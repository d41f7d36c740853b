"""The test control plane itself: a real kube-apiserver (RBAC, CRDs), etcd, garbage collector."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from kubernetes import client

from tests.k8s.apiserver import ControlPlaneError, KubeControlPlane
from tests.k8s.conftest import Kube


def _cm(
    name: str, data: dict[str, str] | None = None, owner: client.V1ConfigMap | None = None
) -> client.V1ConfigMap:
    meta = client.V1ObjectMeta(name=name)
    if owner is not None:
        meta.owner_references = [
            client.V1OwnerReference(
                api_version="v1", kind="ConfigMap", name=owner.metadata.name, uid=owner.metadata.uid
            )
        ]
    return client.V1ConfigMap(metadata=meta, data=data or {})


def test_server_version_is_the_stamped_build(kube: Kube) -> None:
    info = client.VersionApi(kube.api_client).get_code()
    assert info.git_version == kube.version
    major, minor = kube.version.removeprefix("v").split(".")[:2]
    assert (info.major, info.minor) == (major, minor)
    assert kube.control_plane.version()["gitVersion"] == kube.version


def test_admin_token_is_a_system_master_and_rbac_is_on(kube: Kube) -> None:
    # SelfSubjectReview (authentication.k8s.io/v1) says who the token is
    me = client.AuthenticationV1Api(kube.api_client).create_self_subject_review(
        client.V1SelfSubjectReview()
    )
    assert me.status.user_info.username == "admin"
    assert "system:masters" in me.status.user_info.groups
    # RBAC: an unprivileged service account may not list secrets
    sar = client.AuthorizationV1Api(kube.api_client).create_subject_access_review(
        client.V1SubjectAccessReview(
            spec=client.V1SubjectAccessReviewSpec(
                user="system:serviceaccount:default:nobody",
                resource_attributes=client.V1ResourceAttributes(
                    verb="list", resource="secrets", namespace="default"
                ),
            )
        )
    )
    assert sar.status.allowed is False


def test_namespace_and_configmap(kube: Kube, namespace: str) -> None:
    core = client.CoreV1Api(kube.api_client)
    assert core.read_namespace(namespace).status.phase == "Active"
    core.create_namespaced_config_map(namespace, _cm("settings", {"a": "1"}))
    assert core.read_namespaced_config_map("settings", namespace).data == {"a": "1"}


def test_garbage_collector_removes_owned_children(kube: Kube, namespace: str) -> None:
    core = client.CoreV1Api(kube.api_client)
    owner = core.create_namespaced_config_map(namespace, _cm("owner"))
    core.create_namespaced_config_map(namespace, _cm("child", {"x": "y"}, owner=owner))
    assert (
        core.read_namespaced_config_map("child", namespace).metadata.owner_references[0].uid
        == owner.metadata.uid
    )
    core.delete_namespaced_config_map("owner", namespace)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            core.read_namespaced_config_map("child", namespace)
        except client.ApiException as exc:
            assert exc.status == 404
            return
        time.sleep(0.5)
    pytest.fail("the garbage collector did not delete the owned ConfigMap within 60s")


def test_namespace_controller_finishes_deletion(kube: Kube) -> None:
    core = client.CoreV1Api(kube.api_client)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="t-ns-deletion")))
    core.create_namespaced_config_map("t-ns-deletion", _cm("leftover"))
    core.delete_namespace("t-ns-deletion")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            core.read_namespace("t-ns-deletion")
        except client.ApiException as exc:
            assert exc.status == 404
            return
        time.sleep(0.5)
    pytest.fail("the namespace controller did not finish deleting the namespace within 60s")


def test_crds_are_established(kube: Kube) -> None:
    ext = client.ApiextensionsV1Api(kube.api_client)
    names = {crd.metadata.name for crd in ext.list_custom_resource_definition().items}
    assert {
        "kafkas.kafka.strimzi.io",
        "kafkatopics.kafka.strimzi.io",
        "kafkanodepools.kafka.strimzi.io",
        "clusters.postgresql.cnpg.io",
    } <= names
    topic = ext.read_custom_resource_definition("kafkatopics.kafka.strimzi.io")
    assert [v.name for v in topic.spec.versions if v.served] == ["v1"]


def test_strimzi_kafka_topic(kube: Kube, namespace: str) -> None:
    api = client.CustomObjectsApi(kube.api_client)
    body = {
        "apiVersion": "kafka.strimzi.io/v1",
        "kind": "KafkaTopic",
        "metadata": {"name": "mint.transfers", "labels": {"strimzi.io/cluster": "mint"}},
        "spec": {"partitions": 3, "replicas": 1, "config": {"retention.ms": 604800000}},
    }
    api.create_namespaced_custom_object("kafka.strimzi.io", "v1", namespace, "kafkatopics", body)
    got = api.get_namespaced_custom_object(
        "kafka.strimzi.io", "v1", namespace, "kafkatopics", "mint.transfers"
    )
    assert got["spec"]["partitions"] == 3
    assert got["metadata"]["labels"]["strimzi.io/cluster"] == "mint"


def test_cnpg_cluster(kube: Kube, namespace: str) -> None:
    api = client.CustomObjectsApi(kube.api_client)
    body = {
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Cluster",
        "metadata": {"name": "wallet-db"},
        "spec": {
            "instances": 1,
            "storage": {"size": "1Gi"},
            "bootstrap": {"initdb": {"database": "wallet", "owner": "wallet"}},
        },
    }
    api.create_namespaced_custom_object("postgresql.cnpg.io", "v1", namespace, "clusters", body)
    got = api.get_namespaced_custom_object(
        "postgresql.cnpg.io", "v1", namespace, "clusters", "wallet-db"
    )
    assert got["spec"]["instances"] == 1
    assert got["spec"]["storage"]["size"] == "1Gi"


def test_schema_refuses_invalid_objects(kube: Kube, namespace: str) -> None:
    api = client.CustomObjectsApi(kube.api_client)
    bad_topic = {
        "apiVersion": "kafka.strimzi.io/v1",
        "kind": "KafkaTopic",
        "metadata": {"name": "bad"},
        "spec": {"partitions": "many"},
    }
    with pytest.raises(client.ApiException) as err:
        api.create_namespaced_custom_object(
            "kafka.strimzi.io", "v1", namespace, "kafkatopics", bad_topic
        )
    assert err.value.status == 422
    assert "spec.partitions" in err.value.body

    bad_cluster = {
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Cluster",
        "metadata": {"name": "bad"},
        "spec": {"instances": 0, "storage": {"size": "1Gi"}},  # minimum: 1
    }
    with pytest.raises(client.ApiException) as err:
        api.create_namespaced_custom_object(
            "postgresql.cnpg.io", "v1", namespace, "clusters", bad_cluster
        )
    assert err.value.status == 422
    assert "spec.instances" in err.value.body

    # a built-in type is validated too
    core = client.CoreV1Api(kube.api_client)
    with pytest.raises(client.ApiException) as err:
        core.create_namespaced_config_map(namespace, _cm("Not_A_Valid_Name"))
    assert err.value.status == 422


def test_a_second_control_plane_starts_and_leaves_no_process_behind(
    kube: Kube, tmp_path: Path
) -> None:
    cp = KubeControlPlane(tmp_path / "cp", kube.control_plane.bin_dir, crd_files=[])
    with cp:
        pids = [p.pid for p in cp._procs.values()]
        assert len(pids) == 3 and cp.url != kube.url
        assert cp.version()["gitVersion"] == kube.version
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_missing_binaries_fail_loudly(tmp_path: Path) -> None:
    with pytest.raises(ControlPlaneError, match=r"is missing; run `python -m tests\.k8s\.build`"):
        KubeControlPlane(tmp_path, tmp_path / "nowhere").start()
