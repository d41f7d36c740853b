"""One capability table (mint.kit.catalog.CAPABILITIES) — the services, the dev runner, the
operator and the CRD all agree with it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from mint.dev.platform import Platform
from mint.kit.catalog import (
    CAPABILITIES,
    GRPC_CALLERS,
    GRPC_PORTS,
    HTTP_PORTS,
    SERVICE_NAMES,
    services_with,
)
from mint.kit.runner import implemented_services, load_service
from mint_operator import catalog as operator_catalog
from tests.fixtures.endpoints import offline_endpoints

ROOT = Path(__file__).resolve().parents[2]
CRDS = [ROOT / "crds" / "minttenant.yaml", ROOT / "charts/mint-operator/crds/minttenant.yaml"]
IMPLEMENTED = implemented_services()

#: The setting through which a service reads what a capability gives it.
SETTING_OF = {
    "smtp": "smtp_url",
    "object_storage": "s3_endpoint",
    "signing_keys": "signing_keys_dir",
}


def test_every_service_has_one_entry() -> None:
    assert tuple(CAPABILITIES) == SERVICE_NAMES == tuple(HTTP_PORTS)
    for callee, callers in GRPC_CALLERS.items():
        assert callee in GRPC_PORTS, f"{callee} has callers but no gRPC port"
        assert set(callers) <= set(SERVICE_NAMES)


@pytest.mark.parametrize("name", IMPLEMENTED)
def test_the_service_matches_its_capabilities(name: str) -> None:
    service, caps = load_service(name), CAPABILITIES[name]
    assert service.capabilities is caps
    assert service.has_database == caps.database
    assert bool(service.grpc_servicers) == (name in GRPC_PORTS)
    fields = service.settings_cls.model_fields
    for capability, setting in SETTING_OF.items():
        assert (setting in fields) == getattr(caps, capability), (name, capability)


def test_the_operator_reads_the_same_table() -> None:
    assert services_with("database") == operator_catalog.DATABASE_SERVICES
    assert services_with("limits") == operator_catalog.LIMITS_SERVICES
    assert services_with("smtp") == operator_catalog.SMTP_SERVICES
    assert services_with("object_storage") == operator_catalog.OBJECT_STORAGE_SERVICES
    assert services_with("signing_keys") == operator_catalog.SIGNING_KEY_SERVICES
    assert operator_catalog.GRPC_CALLERS == GRPC_CALLERS


def test_the_dev_runner_gives_each_service_what_its_capabilities_say(tmp_path: Path) -> None:
    infra = offline_endpoints(tmp_path)
    databases = {s: f"postgresql://db/{s}" for s in services_with("database")}
    plat = Platform(root=tmp_path, infra=infra, services=list(SERVICE_NAMES), databases=databases)
    plat._plan_ports()
    (tmp_path / "internal_token").write_text("t")
    for name, caps in CAPABILITIES.items():
        env = plat.env_for(name)
        assert ("MINT_DATABASE_URL" in env) == caps.database, name
        assert ("MINT_LIMITS_FILE" in env) == caps.limits, name
        assert ("MINT_SMTP_URL" in env) == caps.smtp, name
        assert ("MINT_S3_ENDPOINT" in env) == caps.object_storage, name
        assert ("MINT_SIGNING_KEYS_DIR" in env) == caps.signing_keys, name


@pytest.mark.parametrize("path", CRDS, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_crd_service_names_are_the_catalogue(path: Path) -> None:
    text = path.read_text()
    (rule,) = re.findall(r"self\.all\(k, k in \[([^\]]*)\]\)", text)
    assert tuple(re.findall(r"'([a-z]+)'", rule)) == SERVICE_NAMES
    doc = yaml.safe_load(text)
    spec = doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    services = spec["properties"]["services"]
    assert services["maxProperties"] == len(SERVICE_NAMES)
    assert services["description"] == f"per service ({', '.join(SERVICE_NAMES)})"
