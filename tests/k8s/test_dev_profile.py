"""`tilt up` on one kind node: the dev profile (manifests/samples/minttenant-dev.yaml) rendered by
the operator as the Tiltfile deploys it — writable roots and a restart file no volume hides,
summed requests that fit one node, objects the API server accepts — and samples and chart
defaults that enable only the services that exist."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from mint_operator import catalog
from mint_operator.kube import Kube
from mint_operator.render import render_initial_secrets, render_tenant
from mint_operator.spec import Tenant
from tests.k8s.helm import helm
from tests.k8s.test_operator_charts import dry_run_all

REPO = Path(__file__).resolve().parents[2]
DEV_SAMPLE = REPO / "manifests" / "samples" / "minttenant-dev.yaml"
Obj = dict[str, Any]
#: One kind node (platform.md, "Charts, Tilt, kind"): what the dev profile may request in all.
NODE_CPU = Decimal(4)
NODE_MEMORY = Decimal(8 * 1024**3)
_SUFFIX = {
    "m": Decimal("0.001"),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
}


def quantity(value: str | int) -> Decimal:
    number, suffix = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", str(value)).groups()  # type: ignore[union-attr]
    return Decimal(number) * _SUFFIX.get(suffix, Decimal(1))


def implemented() -> set[str]:
    """A service exists when it has a package with a service description."""
    return {s for s in catalog.SERVICES if (REPO / "services/mint" / s / "service.py").is_file()}


def dev_tenant() -> Obj:
    """The dev sample as the Tiltfile applies it: every implemented service enabled."""
    body = yaml.safe_load(DEV_SAMPLE.read_text())
    services = body["spec"].setdefault("services", {})
    for name in catalog.SERVICES:
        services[name] = {**services.get(name, {}), "enabled": name in implemented()}
    body["metadata"]["uid"] = "dev"
    return dict(body)


def requests_of(objs: list[Obj]) -> tuple[Decimal, Decimal]:
    """Summed CPU and memory requests: containers times replicas, PostgreSQL instances and
    Kafka nodes."""
    cpu = memory = Decimal(0)

    def add(resources: Obj | None, times: int) -> None:
        nonlocal cpu, memory
        requests = (resources or {}).get("requests") or {}
        cpu += quantity(requests.get("cpu", 0)) * times
        memory += quantity(requests.get("memory", 0)) * times

    for o in objs:
        spec = o.get("spec") or {}
        if o["kind"] in ("Deployment", "StatefulSet"):
            for container in spec["template"]["spec"]["containers"]:
                add(container.get("resources"), int(spec.get("replicas", 1)))
        elif o["kind"] == "Cluster":
            assert spec.get("resources"), "the dev profile sizes its PostgreSQL"
            add(spec["resources"], int(spec["instances"]))
        elif o["kind"] == "KafkaNodePool":
            assert spec.get("resources"), "the dev profile sizes its Kafka"
            add(spec["resources"], int(spec["replicas"]))
    return cpu, memory


def test_tiltfile_enables_what_exists_and_restarts_through_a_writable_file() -> None:
    tiltfile = (REPO / "Tiltfile").read_text()
    assert "services/mint/%s/service.py" in tiltfile
    assert "manifests/samples/minttenant-dev.yaml" in tiltfile
    assert "manifests/dev/operator-values.yaml" in tiltfile
    [restart] = re.findall(r"^RESTART_FILE = '([^']+)'", tiltfile, re.M)
    assert "restart_file=RESTART_FILE" in tiltfile
    directory = str(Path(restart).parent)
    # the dev image makes /app writable for the service user (DEV=1)
    assert directory == "/app" and "chown -R mint:mint /app" in (REPO / "Dockerfile").read_text()
    objs = render_tenant(Tenant.from_object(dev_tenant()))
    deployments = [o for o in objs if o["kind"] == "Deployment"]
    assert {d["metadata"]["name"] for d in deployments} == {f"mint-{s}" for s in implemented()}
    for dep in deployments:
        [container] = dep["spec"]["template"]["spec"]["containers"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is False
        mounted = {m["mountPath"] for m in container["volumeMounts"]}
        assert not any(directory == m or directory.startswith(m + "/") for m in mounted), mounted
    # the operator chart with the dev values: writable root, nothing mounted over /app
    rendered = yaml.safe_load_all(
        helm(
            "template", "mint-operator", str(REPO / "charts" / "mint-operator"),
            "-f", str(REPO / "manifests" / "dev" / "operator-values.yaml"),
        ).stdout
    )  # fmt: skip
    [operator] = [d for d in rendered if d and d["kind"] == "Deployment"]
    [container] = operator["spec"]["template"]["spec"]["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is False
    assert all(m["mountPath"] != directory for m in container["volumeMounts"])


def test_dev_profile_fits_one_kind_node() -> None:
    objs = render_tenant(Tenant.from_object(dev_tenant()))
    kinds = [o["kind"] for o in objs]
    assert kinds.count("Cluster") == 1 and kinds.count("KafkaNodePool") == 1
    assert kinds.count("Database") == len(
        [s for s in catalog.DATABASE_SERVICES if s in implemented()]
    )
    pool = next(o for o in objs if o["kind"] == "KafkaNodePool")
    assert pool["spec"]["replicas"] == 1
    assert {o["spec"]["replicas"] for o in objs if o["kind"] == "KafkaTopic"} == {1}
    cpu, memory = requests_of(objs)
    assert Decimal(0) < cpu <= NODE_CPU, f"dev profile requests {cpu} CPU"
    assert Decimal(0) < memory <= NODE_MEMORY, f"dev profile requests {memory / 2**30:.2f} GiB"


def enabled(spec: Obj) -> set[str]:
    services = spec.get("services") or {}
    return {s for s in catalog.SERVICES if (services.get(s) or {}).get("enabled", True)}


@pytest.mark.parametrize(
    "source",
    ["minttenant.yaml", "minttenant-external.yaml", "minttenant-dev.yaml", "chart-values"],
)
def test_samples_and_defaults_enable_only_services_that_exist(source: str) -> None:
    if source == "chart-values":
        values = yaml.safe_load((REPO / "charts" / "mint" / "values.yaml").read_text())
        spec = values["tenant"]["spec"]
    else:
        spec = yaml.safe_load((REPO / "manifests" / "samples" / source).read_text())["spec"]
    on = enabled(spec)
    assert on, "a platform with no service"
    assert on <= implemented(), f"enabled but not implemented: {sorted(on - implemented())}"


@pytest.fixture
def admin(kube: Any) -> Kube:
    client = Kube.connect(str(kube.kubeconfig_path))
    client.field_manager = "validation"
    return client


def test_dev_profile_objects_validate(admin: Kube, namespace: str) -> None:
    body = dev_tenant()
    body["metadata"] = {"name": "mint", "namespace": namespace}
    body["spec"]["kafka"]["strimzi"]["namespace"] = namespace
    created = admin.apply(body)
    t = Tenant.from_object(created)
    objs = render_tenant(t) + render_initial_secrets(t, datetime.now(UTC))
    assert "Database" in {o["kind"] for o in objs}
    failures = dry_run_all(admin, objs)
    assert not failures, "\n".join(failures)
