"""A real Kubernetes API server for the tests (spec/quality.md, "Real components": Kubernetes).

``kube`` (session): builds kube-apiserver, kube-controller-manager and etcd from source if the
cached binaries are missing or stale (``tests/k8s/build.py``), starts them with the CRDs installed
(ours from ``crds/`` and Strimzi/CNPG from ``tests/k8s/upstream_crds``), and yields a :class:`Kube`:

    kube.kubeconfig_path  # Path of a kubeconfig (admin token, system:masters)
    kube.url              # https://127.0.0.1:<port>
    kube.token            # bearer token of the admin user
    kube.ca_path          # the apiserver's self-signed certificate (its CA)
    kube.api_client       # kubernetes.client.ApiClient bound to that kubeconfig
    kube.version          # the Kubernetes version built, e.g. "v1.36.3"
    kube.control_plane    # the KubeControlPlane (install_crds(), request(), logs dir)

``namespace`` (function): a fresh namespace per test, deleted afterwards.

A control plane that cannot be built or started fails the tests that need it with the reason
(and the log tail); it never skips.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mint_operator.kube import Kube as MintKube
from tests.k8s import build
from tests.k8s.apiserver import KubeControlPlane
from tests.k8s.fake_controllers import FakeControllers
from tests.k8s.operator_runner import Env, install_operator_rbac, service_account_kubeconfig


@dataclass
class Kube:
    kubeconfig_path: Path
    url: str
    token: str
    ca_path: Path
    api_client: object  # kubernetes.client.ApiClient
    version: str
    control_plane: KubeControlPlane


@pytest.fixture(scope="session")
def kube_bin_dir() -> Path:
    try:
        result = build.ensure_built(log=lambda msg: print(msg, flush=True))
    except build.BuildError as exc:
        pytest.fail(f"cannot build the Kubernetes test control plane: {exc}", pytrace=False)
    state = "built" if result.built else "cached"
    took = f"{result.seconds:.1f}s"
    print(f"\n[k8s] Kubernetes {result.version} binaries {state} in {took} ({result.bin_dir})")
    return result.bin_dir


@pytest.fixture(scope="session")
def kube(kube_bin_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    from kubernetes import config

    work = Path(os.environ.get("MINT_K8S_WORK_DIR") or tmp_path_factory.mktemp("k8s"))
    cp = KubeControlPlane(work, kube_bin_dir)
    started = time.monotonic()
    try:
        cp.start()
    except Exception as exc:
        pytest.fail(f"cannot start the Kubernetes test control plane: {exc}", pytrace=False)
    steps = ", ".join(f"{k} {v:.1f}s" for k, v in cp.timings.items())
    print(f"\n[k8s] control plane ready in {time.monotonic() - started:.1f}s ({steps}) at {cp.url}")
    api_client = config.new_client_from_config(config_file=str(cp.kubeconfig_path))
    try:
        yield Kube(
            kubeconfig_path=cp.kubeconfig_path,
            url=cp.url,
            token=cp.token,
            ca_path=cp.ca_path,
            api_client=api_client,
            version=build.K8S_VERSION,
            control_plane=cp,
        )
    finally:
        api_client.close()
        cp.stop()


@pytest.fixture
def namespace(kube: Kube, request: pytest.FixtureRequest) -> Iterator[str]:
    from kubernetes import client

    base = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"t-{base}-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(kube.api_client)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:
        yield name
    finally:
        try:
            core.delete_namespace(name)
        except client.ApiException as exc:
            if exc.status != 404:
                raise


@pytest.fixture
def env(kube: Kube, namespace: str, tmp_path: Path) -> Iterator[Env]:
    """A tenant namespace and its Kafka namespace, the operator chart's RBAC for both, the fake
    controllers running; ``env.operator()`` makes an operator as that ServiceAccount."""
    admin = MintKube.connect(str(kube.kubeconfig_path))
    admin.field_manager = "kubectl"
    kafka_ns = f"{namespace[:50]}-kafka"
    admin.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": kafka_ns}})
    sa, role = install_operator_rbac(admin, namespace, [namespace, kafka_ns])
    kubeconfig = service_account_kubeconfig(
        admin, kube, namespace, sa, tmp_path / "operator.kubeconfig"
    )
    fakes = FakeControllers(admin, [namespace, kafka_ns]).start()
    try:
        yield Env(admin, namespace, kafka_ns, kubeconfig, role, fakes)
    finally:
        fakes.stop()
        admin.delete("v1", "Namespace", None, kafka_ns)
    assert fakes.errors == [], "the fake controllers failed"
