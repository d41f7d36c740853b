"""The MintTenant / MintLimits API as a platform engineer meets it: every field described
(``kubectl explain``), names, quantities and env lists validated by the real API server, no
category shadowing the short name, and the upstream CRDs the tests install kept verbatim."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mint_operator.kube import ApiError, Kube
from mint_operator.render import render_tenant
from mint_operator.spec import Tenant
from tests.k8s.apiserver import UPSTREAM_CRD_DIR, UPSTREAM_CRDS

REPO = Path(__file__).resolve().parents[2]
Obj = dict[str, Any]


def schema(name: str) -> Obj:
    crd = yaml.safe_load((REPO / "crds" / name).read_text())
    return dict(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])


def fields(node: Obj, path: str = "") -> Iterator[tuple[str, Obj]]:
    """Every field of a schema: properties, map values and list items, depth first."""
    for key, child in (node.get("properties") or {}).items():
        here = f"{path}.{key}" if path else key
        yield here, child
        yield from fields(child, here)
    for suffix, child in (("[*]", node.get("additionalProperties")), ("[]", node.get("items"))):
        if isinstance(child, dict) and "properties" in child:
            yield path + suffix, child
            yield from fields(child, path + suffix)


@pytest.mark.parametrize("name", ["minttenant.yaml", "mintlimits.yaml"])
def test_every_field_is_described(name: str) -> None:
    found = dict(fields(schema(name)))
    # the API server forbids describing metadata (it is the standard ObjectMeta)
    undescribed = sorted(
        p for p, f in found.items() if p != "metadata" and not f.get("description")
    )
    assert len(found) > (100 if name == "minttenant.yaml" else 30)
    assert undescribed == [], f"fields without a description: {undescribed}"


def test_short_name_is_not_shadowed_by_a_category() -> None:
    names = {}
    for name in ("minttenant.yaml", "mintlimits.yaml"):
        crd = yaml.safe_load((REPO / "crds" / name).read_text())
        names[name] = crd["spec"]["names"]
    short = {s for n in names.values() for s in n.get("shortNames", [])}
    categories = {c for n in names.values() for c in n.get("categories", [])}
    assert "mint" in names["minttenant.yaml"]["shortNames"]
    assert not short & categories, "kubectl delete mint NAME must mean MintTenant"


def test_upstream_crds_are_the_recorded_copies() -> None:
    """tests/k8s/upstream_crds/SOURCES.md names each file's upstream tag and hash."""
    sources = (UPSTREAM_CRD_DIR / "SOURCES.md").read_text()
    recorded = dict(
        (path, digest) for digest, path in re.findall(r"^([0-9a-f]{64})  (\S+)$", sources, re.M)
    )
    assert set(recorded) == set(UPSTREAM_CRDS)
    for rel in UPSTREAM_CRDS:
        digest = hashlib.sha256((UPSTREAM_CRD_DIR / rel).read_bytes()).hexdigest()
        assert digest == recorded[rel], f"{rel} differs from the copy SOURCES.md records"
        assert rel.split("/")[1] in sources  # and its row names the upstream path and tag


# ---- the API server refuses what the operator could not render -------------------------------
@pytest.fixture
def admin(kube: Any) -> Kube:
    client = Kube.connect(str(kube.kubeconfig_path))
    client.field_manager = "validation"
    return client


def tenant(namespace: str, name: str = "shop", **spec: Any) -> Obj:
    return {
        "apiVersion": "mint.dev/v1alpha1",
        "kind": "MintTenant",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def refused(admin: Kube, body: Obj) -> str:
    with pytest.raises(ApiError) as info:
        admin.apply(body, dry_run=True)
    assert info.value.status == 422, info.value
    return info.value.message


def test_invalid_quantities_names_and_env_are_refused(admin: Kube, namespace: str) -> None:
    lots = {"wallet": {"resources": {"requests": {"cpu": "lots"}}}}
    assert "services.wallet.resources.requests.cpu" in refused(
        admin, tenant(namespace, services=lots)
    )
    big = {"cloudnativepg": {"storageSize": "big"}}
    assert "storageSize" in refused(admin, tenant(namespace, postgres=big))
    kafka = {"strimzi": {"create": {"enabled": True, "storageSize": "10 gigs"}}}
    assert "storageSize" in refused(admin, tenant(namespace, kafka=kafka))
    twice = [{"name": "MINT_LOG_LEVEL", "value": "DEBUG"}, {"name": "MINT_LOG_LEVEL", "value": "X"}]
    assert "env names must be unique" in refused(
        admin, tenant(namespace, services={"kyc": {"env": twice}})
    )
    assert "DNS-1035" in refused(admin, tenant(namespace, name="a" * 34))
    assert "DNS-1035" in refused(admin, tenant(namespace, name="9lives"))
    assert "deletionPolicy" in refused(admin, tenant(namespace, deletionPolicy="Forget"))
    # the longest name allowed is accepted, and every name derived from it fits its limit:
    # CloudNativePG's 50 characters for a Cluster, 63 for a Service (a DNS label)
    ok = tenant(
        namespace,
        name="a" * 33,
        services={"wallet": {"resources": {"requests": {"cpu": "100m", "memory": 268435456}}}},
    )
    created = admin.apply(ok, dry_run=True)
    assert created["spec"]["deletionPolicy"] == "Retain"
    assert created["spec"]["postgres"]["cloudnativepg"]["layout"] == "PerService"
    objs = render_tenant(Tenant.from_object(created))
    assert max(len(o["metadata"]["name"]) for o in objs if o["kind"] == "Cluster") == 50
    assert max(len(o["metadata"]["name"]) for o in objs if o["kind"] == "Service") <= 63
