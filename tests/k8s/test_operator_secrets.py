"""Generated Secrets and the readiness probe against the real API server: created once, never
overwritten; signing keys rotate on a clock; MintLimits status reads pods' ``/readyz``."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from mint_operator import catalog
from mint_operator.kube import Kube
from mint_operator.limits_sync import http_probe
from mint_operator.reconcile import OperatorConfig, TenantReconciler
from mint_operator.render.common import selector_labels
from mint_operator.render.secrets import RotationPolicy, kid_for, plan_rotation
from mint_operator.rotation import rotate_signing_keys
from mint_operator.spec import Tenant

pytestmark = pytest.mark.slow
Obj = dict[str, Any]
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def admin(kube: Any) -> Kube:
    client = Kube.connect(str(kube.kubeconfig_path))
    client.field_manager = "kubectl"
    return client


def test_signing_key_rotation_plan() -> None:
    policy = RotationPolicy(
        rotation=timedelta(days=30), retire_after=timedelta(days=30, seconds=960)
    )
    now = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
    assert plan_rotation([], now, policy).add == kid_for(now) == "20261126120000"
    fresh = kid_for(now - timedelta(days=1))
    assert not plan_rotation([f"{fresh}.pem"], now, policy).changes
    old = kid_for(now - timedelta(days=31))
    plan = plan_rotation([f"{old}.pem"], now, policy)
    assert plan.add == "20261126120000" and plan.remove == (old,)
    # the previous key stays until every token it signed has expired
    prev = kid_for(now - timedelta(days=30, seconds=100))
    plan = plan_rotation([f"{prev}.pem", f"{fresh}.pem"], now, policy)
    assert plan.add is None and plan.remove == ()


def light_tenant(admin: Kube, namespace: str) -> Obj:
    """A tenant on external dependencies (no Strimzi/CNPG objects), one-day key rotation."""
    return admin.apply(
        {
            "apiVersion": catalog.API_VERSION,
            "kind": "MintTenant",
            "metadata": {"name": "mint", "namespace": namespace},
            "spec": {
                "kafka": {"mode": "external", "external": {"bootstrapServers": "kafka:9092"}},
                "postgres": {"mode": "external", "external": {"secretName": "dsns"}},
                "redis": {"mode": "external", "external": {"url": "redis://redis:6379/0"}},
                "auth": {
                    "signingKeys": {
                        "rotationDays": 1,
                        "accessTokenSeconds": 900,
                        "leewaySeconds": 60,
                    }
                },
            },
        }
    )


def secret_data(admin: Kube, namespace: str, name: str) -> dict[str, str]:
    secret = admin.get("v1", "Secret", namespace, name)
    assert secret is not None, name
    return dict(secret["data"])


def test_secrets_created_once_and_signing_keys_rotate(admin: Kube, namespace: str) -> None:
    clock = {"now": T0}
    cfg = OperatorConfig(operator_namespace="mint-system", now=lambda: clock["now"])
    reconciler = TenantReconciler(admin, cfg)
    body = light_tenant(admin, namespace)
    reconciler.reconcile(namespace, "mint")
    token = secret_data(admin, namespace, "mint-internal-token")
    assert len(base64.b64decode(token["token"])) >= 32
    assert list(secret_data(admin, namespace, "mint-signing-keys")) == ["20260101000000.pem"]

    # a second reconcile (and a later one) never regenerates existing credentials
    clock["now"] = T0 + timedelta(hours=1)
    reconciler.reconcile(namespace, "mint")
    assert secret_data(admin, namespace, "mint-internal-token") == token
    assert list(secret_data(admin, namespace, "mint-signing-keys")) == ["20260101000000.pem"]
    assert rotate_signing_keys(admin, cfg, body).changes is False  # type: ignore[union-attr]

    # rotation period reached: a new key signs, the old one still verifies tokens
    clock["now"] = T0 + timedelta(days=1, seconds=1)
    plan = rotate_signing_keys(admin, cfg, body)
    assert plan is not None and plan.add == "20260102000001" and plan.remove == ()
    assert sorted(secret_data(admin, namespace, "mint-signing-keys")) == [
        "20260101000000.pem",
        "20260102000001.pem",
    ]
    # older than rotation + access-token lifetime + leeway: removed; the newest stays
    clock["now"] = T0 + timedelta(days=1, seconds=961)
    plan = rotate_signing_keys(admin, cfg, body)
    assert plan is not None and plan.add is None and plan.remove == ("20260101000000",)
    assert list(secret_data(admin, namespace, "mint-signing-keys")) == ["20260102000001.pem"]


def test_rotation_never_fights_an_external_secret_and_can_be_turned_off(
    admin: Kube, namespace: str
) -> None:
    clock = {"now": T0}
    cfg = OperatorConfig(operator_namespace="mint-system", now=lambda: clock["now"])
    # the signing keys come from elsewhere (External Secrets, by hand): created before the tenant
    external = {"20250101000000.pem": base64.b64encode(b"external key").decode()}
    admin.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "mint-signing-keys", "namespace": namespace},
            "data": external,
        }
    )
    body = light_tenant(admin, namespace)
    TenantReconciler(admin, cfg).reconcile(namespace, "mint")
    clock["now"] = T0 + timedelta(days=400)  # long past rotation and retirement
    assert rotate_signing_keys(admin, cfg, body) is None
    assert secret_data(admin, namespace, "mint-signing-keys") == external  # untouched

    # the operator's own Secret, with rotation turned off: never rotated either
    admin.delete("v1", "Secret", namespace, "mint-signing-keys")
    body = admin.patch(
        catalog.API_VERSION,
        "MintTenant",
        namespace,
        "mint",
        {"spec": {"auth": {"signingKeys": {"rotation": False}}}},
    )
    clock["now"] = T0
    TenantReconciler(admin, cfg).reconcile(namespace, "mint")
    created = secret_data(admin, namespace, "mint-signing-keys")
    assert list(created) == ["20260101000000.pem"]
    clock["now"] = T0 + timedelta(days=400)
    assert rotate_signing_keys(admin, cfg, body) is None
    assert secret_data(admin, namespace, "mint-signing-keys") == created


class _Readyz(BaseHTTPRequestHandler):
    version = "5"

    def do_GET(self) -> None:
        body = json.dumps({"status": "ok", "checks": {}, "limits_version": self.version}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def readyz_server() -> Iterator[int]:
    server = HTTPServer(("127.0.0.1", 0), _Readyz)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()


def test_http_probe_reads_limits_version_of_ready_pods(
    admin: Kube, namespace: str, readyz_server: int
) -> None:
    """The probe asks each ready pod where its readiness probe asks (the container's named
    port, not the catalogue's), and only pods that serve."""
    t = Tenant.from_object(light_tenant(admin, namespace))
    assert http_probe(admin, t, "kyc") is None  # no pod yet
    container = {
        "name": "kyc",
        "image": "mint",
        "ports": [{"name": "http", "containerPort": readyz_server}],
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}},
    }
    pod = admin.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "kyc-0",
                "namespace": namespace,
                "labels": selector_labels(t, "kyc"),
            },
            "spec": {"containers": [container]},
        }
    )
    assert pod["metadata"]["name"] == "kyc-0"
    assert http_probe(admin, t, "kyc") is None  # not running yet

    def pod_status(ready: bool) -> None:
        status = {
            "phase": "Running",
            "podIP": "127.0.0.1",
            "podIPs": [{"ip": "127.0.0.1"}],
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        }
        admin.patch("v1", "Pod", namespace, "kyc-0", {"status": status}, subresource="status")

    pod_status(ready=False)
    assert http_probe(admin, t, "kyc") is None  # running, not ready: it serves nobody
    pod_status(ready=True)
    assert http_probe(admin, t, "kyc") == "5"
    assert http_probe(admin, t, "fraud") is None  # other services' pods are not mixed in
