"""``mint operator`` as a process (what the operator Deployment runs), out of cluster through a
kubeconfig: it serves its namespaces, answers its liveness probe, reconciles a tenant and stops
cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from mint.dev.platform import free_port
from mint_operator import catalog
from mint_operator.kube import Kube
from tests.k8s.operator_runner import wait_for

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def test_mint_operator_command(kube: Any, namespace: str, tmp_path: Path) -> None:
    admin = Kube.connect(str(kube.kubeconfig_path))
    admin.field_manager = "kubectl"
    peering = {
        "apiVersion": "kopf.dev/v1",
        "kind": "KopfPeering",
        "metadata": {"name": "mint-operator", "namespace": namespace},
    }
    admin.apply(peering)
    port = free_port()
    env = {
        **os.environ,
        "KUBECONFIG": str(kube.kubeconfig_path),
        "MINT_OPERATOR_NAMESPACES": namespace,
        "MINT_OPERATOR_NAMESPACE": namespace,
        "MINT_OPERATOR_LIVENESS": f"http://127.0.0.1:{port}/healthz",
        "MINT_OPERATOR_RESYNC_SECONDS": "5",
    }
    log = (tmp_path / "operator.log").open("w")
    mint = Path(sys.executable).with_name("mint")
    proc = subprocess.Popen(
        [str(mint), "operator"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO
    )
    try:
        wait_for(
            lambda: httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200,
            60,
            what="liveness",
        )
        admin.apply(
            {
                "apiVersion": catalog.API_VERSION,
                "kind": "MintTenant",
                "metadata": {"name": "cli", "namespace": namespace},
                "spec": {
                    "kafka": {"mode": "external", "external": {"bootstrapServers": "kafka:9092"}},
                    "postgres": {"mode": "external", "external": {"secretName": "dsns"}},
                },
            }
        )
        wait_for(
            lambda: (
                len(admin.list("apps/v1", "Deployment", namespace, "mint.dev/tenant=cli")) == 12
            ),
            60,
            what="12 Deployments",
        )
        status = wait_for(
            lambda: (admin.get(catalog.API_VERSION, "MintTenant", namespace, "cli") or {}).get(
                "status"
            ),
            30,
        )
        ready = next(c for c in status["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "False" and status["readyServices"] == "0/12"  # no kubelet here
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        log.close()
    output = (tmp_path / "operator.log").read_text()
    assert code == 0, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
