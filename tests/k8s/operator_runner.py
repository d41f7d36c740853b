"""Run the real operator (``mint_operator.main.operator``, kopf underneath) in a thread with its own
event loop, against the test API server, as the ServiceAccount of the operator chart — so the
chart's RBAC is exercised for real — and helpers the operator tests share."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kopf
import yaml

from mint_operator import catalog
from mint_operator.handlers import Timing
from mint_operator.kube import Kube
from mint_operator.main import Options, operator
from mint_operator.reconcile import OperatorConfig, Probe
from mint_operator.render.common import tenant_selector
from mint_operator.spec import Tenant
from tests.k8s.fake_controllers import FakeControllers
from tests.k8s.helm import helm

REPO = Path(__file__).resolve().parents[2]
Obj = dict[str, Any]


def wait_for(
    check: Callable[[], Any], timeout: float = 60.0, interval: float = 0.3, what: str = ""
) -> Any:
    """Poll until ``check()`` is truthy; return its value or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except Exception as exc:  # not there yet (404, connection refused, …)
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout:.0f}s waiting for {what or check}: last={last!r}"
    )


def install_operator_rbac(admin: Kube, operator_ns: str, watch: list[str]) -> tuple[str, str]:
    """Apply the operator chart's ServiceAccount, RBAC and peering (not its Deployment — there is
    no kubelet) with a unique release name; return (ServiceAccount name, limits-editor role)."""
    release = f"op-{uuid.uuid4().hex[:6]}"
    role = f"{release}-limits-editor"
    out = helm(
        "template", release, str(REPO / "charts" / "mint-operator"),
        "--namespace", operator_ns,
        "--set", f"watchNamespaces={{{','.join(watch)}}}",
        "--set", f"limitsEditorRole.name={role}",
    ).stdout  # fmt: skip
    sa = ""
    for doc in yaml.safe_load_all(out):
        if not doc or doc["kind"] == "Deployment":
            continue
        if doc["kind"] == "ServiceAccount":
            sa = doc["metadata"]["name"]
        admin.apply(doc)  # includes the KopfPeering object of every watched namespace
    return sa, role


def service_account_kubeconfig(admin: Kube, kube: Any, namespace: str, sa: str, path: Path) -> Path:
    """A kubeconfig authenticating as ``namespace/sa`` through a TokenRequest."""
    req = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"expirationSeconds": 7200},
    }
    token = admin.request("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{sa}/token", req)
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "test",
                "cluster": {"server": kube.url, "certificate-authority": str(kube.ca_path)},
            }
        ],
        "users": [{"name": sa, "user": {"token": token["status"]["token"]}}],
        "contexts": [
            {"name": "test", "context": {"cluster": "test", "user": sa, "namespace": namespace}}
        ],
        "current-context": "test",
    }
    path.write_text(yaml.safe_dump(config))
    return path


class OperatorRunner:
    """One operator instance: ``start()`` returns once kopf is ready; ``reconciles`` counts how
    often this instance reconciled a tenant (two instances: only the active one counts)."""

    def __init__(
        self,
        kubeconfig: Path,
        namespaces: list[str],
        *,
        operator_namespace: str,
        limits_role: str,
        priority: int = 100,
        probe: Probe | None = None,
        timing: Timing | None = None,
    ) -> None:
        self.opts = Options(
            namespaces=namespaces,
            operator_namespace=operator_namespace,
            priority=priority,
            peering_lifetime=10,
            limits_role=limits_role,
            timing=timing
            or Timing(resync_seconds=3, limits_status_seconds=1, rotation_check_seconds=5),
            liveness=None,
            kubeconfig=str(kubeconfig),
        )
        self.config = OperatorConfig(
            operator_namespace=operator_namespace, limits_role=limits_role, probe=probe
        )
        self.memo = kopf.Memo()
        self.stop_flag = threading.Event()
        self.ready_flag = threading.Event()
        self.reconciles = 0
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self.identity = f"test-{priority}-{uuid.uuid4().hex[:6]}"

    def start(self, timeout: float = 60.0) -> OperatorRunner:
        self._thread = threading.Thread(target=self._main, name=self.identity, daemon=True)
        self._thread.start()
        if not self.ready_flag.wait(timeout):
            raise AssertionError(
                f"operator {self.identity} not ready after {timeout}s: {self.error!r}"
            )
        wait_for(lambda: "runtime" in self.memo, 30, what="operator startup")
        tenants = self.memo["runtime"].tenants
        original = tenants.reconcile

        def counting(namespace: str, name: str) -> Any:
            self.reconciles += 1
            return original(namespace, name)

        tenants.reconcile = counting
        return self

    def _main(self) -> None:
        try:
            asyncio.run(
                operator(
                    self.opts,
                    config=self.config,
                    stop_flag=self.stop_flag,
                    ready_flag=self.ready_flag,
                    identity=self.identity,
                    memo=self.memo,
                )
            )
        except BaseException as exc:
            self.error = exc

    def stop(self, timeout: float = 30.0) -> None:
        self.stop_flag.set()
        if self._thread is not None:
            self._thread.join(timeout)
            assert not self._thread.is_alive(), f"operator {self.identity} did not stop"

    def __enter__(self) -> OperatorRunner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class Env:
    admin: Kube  # system:masters, field manager "kubectl"
    namespace: str
    kafka_namespace: str
    kubeconfig: Path  # the operator's ServiceAccount
    limits_role: str
    fakes: FakeControllers

    def operator(self, priority: int = 100) -> OperatorRunner:
        return OperatorRunner(
            self.kubeconfig,
            [self.namespace, self.kafka_namespace],
            operator_namespace=self.namespace,
            limits_role=self.limits_role,
            priority=priority,
        )  # the operator's own probe: each ready pod's readiness endpoint

    def tenant(self) -> Tenant:
        body = self.admin.get(catalog.API_VERSION, "MintTenant", self.namespace, "mint")
        assert body is not None
        return Tenant.from_object(body)

    def children(self, api_version: str, kind: str, namespace: str | None = None) -> list[Obj]:
        t = Tenant.from_object({"metadata": {"name": "mint", "namespace": self.namespace}})
        return self.admin.list(api_version, kind, namespace or self.namespace, tenant_selector(t))

    def conditions(self) -> dict[str, Obj]:
        body = self.admin.get(catalog.API_VERSION, "MintTenant", self.namespace, "mint") or {}
        return {c["type"]: c for c in (body.get("status") or {}).get("conditions") or []}
