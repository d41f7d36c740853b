"""Request metrics and server spans are labelled with the matched route's template, router
prefix included — a bounded label, never the raw path (FastAPI keeps the full template only in
its per-request route context once a router is included with a prefix)."""

from __future__ import annotations

import uuid

from prometheus_client import REGISTRY

from mint.infra import EmbeddedInfra
from mint.wallet.service import SERVICE
from tests.harness import run_service


def requests_by_route() -> dict[tuple[str, str], float]:
    found: dict[tuple[str, str], float] = {}
    for metric in REGISTRY.collect():
        if metric.name == "mint_http_requests":
            for sample in metric.samples:
                if sample.name.endswith("_total"):
                    key = (sample.labels["route"], sample.labels["status"])
                    found[key] = found.get(key, 0.0) + sample.value
    return found


def test_requests_are_labelled_with_their_route_template(embedded_infra: EmbeddedInfra) -> None:
    with run_service(SERVICE, embedded_infra, workers=False, grpc=False) as svc:
        before = requests_by_route()
        svc.http.get("/api/v1/wallet")  # 401: no token
        svc.http.get("/api/v1/wallet/history", headers=svc.headers(uuid.uuid4()))  # 404
        svc.http.get(f"/api/v1/no-such-thing/{uuid.uuid4()}")
        after = requests_by_route()
    grew = {key for key, count in after.items() if count > before.get(key, 0.0)}
    assert grew == {
        ("/api/v1/wallet", "401"),
        ("/api/v1/wallet/history", "404"),
        ("unmatched", "404"),
    }
