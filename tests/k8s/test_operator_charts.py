"""Charts and rendered manifests validate against the real schemas: ``helm lint`` / ``helm
template`` with a helm built from source, then a server-side dry-run apply (strict field
validation) of every object against the test API server — the built-in Kubernetes schemas, our
CRDs and the Strimzi / CloudNativePG CRDs."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from mint_operator.kube import ApiError, Kube
from mint_operator.render import render_initial_secrets, render_tenant
from mint_operator.render.limits import render_limits_configmap
from mint_operator.spec import Tenant
from tests.k8s.helm import helm

REPO = Path(__file__).resolve().parents[2]
OPERATOR_CHART = REPO / "charts" / "mint-operator"
PLATFORM_CHART = REPO / "charts" / "mint"
Obj = dict[str, Any]


def docs(text: str) -> list[Obj]:
    return [d for d in yaml.safe_load_all(text) if d]


@pytest.fixture
def admin(kube: Any) -> Kube:
    client = Kube.connect(str(kube.kubeconfig_path))
    client.field_manager = "validation"
    return client


def dry_run_all(admin: Kube, objs: list[Obj]) -> list[str]:
    """Server-side apply each object with dryRun=All and fieldValidation=Strict; the failures."""
    failures = []
    for obj in objs:
        try:
            admin.apply(obj, dry_run=True)
        except ApiError as exc:
            failures.append(f"{obj['kind']}/{obj['metadata']['name']}: {exc.status} {exc.message}")
    return failures


# ---- helm lint / template (no cluster) ------------------------------------------------------
@pytest.mark.parametrize("chart", [OPERATOR_CHART, PLATFORM_CHART], ids=["mint-operator", "mint"])
def test_helm_lint(chart: Path) -> None:
    out = helm("lint", "--strict", str(chart))
    assert "0 chart(s) failed" in out.stdout


def test_operator_chart_template() -> None:
    cluster = docs(
        helm("template", "op", str(OPERATOR_CHART), "-n", "mint-system", "--include-crds").stdout
    )
    kinds = Counter(d["kind"] for d in cluster)
    assert kinds == {
        "CustomResourceDefinition": 4,
        "ServiceAccount": 1,
        "ClusterRole": 6,  # cluster needs, tenants, limits editor, secrets, mint-edit, mint-view
        "ClusterRoleBinding": 2,
        "RoleBinding": 1,  # Secrets: only in secretNamespaces ([mint])
        "ClusterKopfPeering": 1,
        "Deployment": 1,
    }
    dep = next(d for d in cluster if d["kind"] == "Deployment")
    pod = dep["spec"]["template"]["spec"]
    assert pod["containers"][0]["args"] == ["operator"] and pod["securityContext"]["runAsNonRoot"]
    assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["MINT_OPERATOR_WATCH_SECRETS"] == "0"  # no cluster-wide Secret watch
    roles = {d["metadata"]["name"]: d for d in cluster if d["kind"] == "ClusterRole"}
    editor = roles["mint-limits-editor"]
    assert editor["rules"] == [
        {
            "apiGroups": ["mint.dev"],
            "resources": ["mintlimits"],
            "verbs": ["get", "list", "watch", "patch", "update"],
        }
    ]
    # least privilege: the cluster-wide binding grants no Secret; Secrets are namespaced
    for name in ("op-mint-operator", "op-mint-operator-cluster"):
        assert all("secrets" not in rule["resources"] for rule in roles[name]["rules"]), name
    [secrets] = [d for d in cluster if d["kind"] == "RoleBinding"]
    assert secrets["metadata"]["namespace"] == "mint"
    assert secrets["roleRef"]["name"] == "op-mint-operator-secrets"
    assert roles["op-mint-operator-secrets"]["rules"][0]["resources"] == ["secrets"]
    # namespace admins and editors manage tenants and limits; viewers read them
    edit_labels = roles["mint-edit"]["metadata"]["labels"]
    assert edit_labels["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert edit_labels["rbac.authorization.k8s.io/aggregate-to-admin"] == "true"
    assert "delete" in roles["mint-edit"]["rules"][0]["verbs"]
    view = roles["mint-view"]
    assert view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert view["rules"][0]["verbs"] == ["get", "list", "watch"]

    namespaced = docs(
        helm(
            "template", "op", str(OPERATOR_CHART), "-n", "ops", "--set", "watchNamespaces={a,b}"
        ).stdout
    )
    kinds = Counter(d["kind"] for d in namespaced)
    assert (
        kinds["RoleBinding"] == 4 and kinds["KopfPeering"] == 2 and kinds["ClusterRoleBinding"] == 1
    )
    assert "ClusterKopfPeering" not in kinds
    secret_bindings = {
        d["metadata"]["namespace"]
        for d in namespaced
        if d["kind"] == "RoleBinding" and d["roleRef"]["name"].endswith("-secrets")
    }
    assert secret_bindings == {"a", "b"}
    everywhere = docs(
        helm(
            "template", "op", str(OPERATOR_CHART), "-n", "ops", "--set", "clusterWideSecrets=true"
        ).stdout
    )
    assert "RoleBinding" not in Counter(d["kind"] for d in everywhere)
    dep = next(d for d in everywhere if d["kind"] == "Deployment")
    env = {
        e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["MINT_OPERATOR_WATCH_SECRETS"] == "1"


def test_platform_chart_template() -> None:
    plain = docs(helm("template", "shop", str(PLATFORM_CHART), "-n", "apps").stdout)
    assert [d["kind"] for d in plain] == ["MintTenant"]
    assert plain[0]["metadata"]["name"] == "shop" and plain[0]["spec"]["image"]["tag"] == "0.1.0"
    # `helm uninstall` never deletes the tenant (and so never its data)
    assert plain[0]["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert plain[0]["spec"]["deletionPolicy"] == "Retain"
    managed = docs(
        helm(
            "template", "shop", str(PLATFORM_CHART), "-n", "apps", "--set", "limits.manage=true"
        ).stdout
    )
    assert sorted(d["kind"] for d in managed) == ["MintLimits", "MintTenant"]
    limits = next(d for d in managed if d["kind"] == "MintLimits")
    assert limits["metadata"]["name"] == "shop"


# ---- CRD files (no cluster) ------------------------------------------------------------------
@pytest.mark.parametrize("name", ["minttenant.yaml", "mintlimits.yaml"])
def test_crds_are_structural_with_cel_rules(name: str) -> None:
    crd = yaml.safe_load((REPO / "crds" / name).read_text())
    [version] = crd["spec"]["versions"]
    assert crd["spec"]["group"] == "mint.dev" and version["name"] == "v1alpha1"
    assert version["subresources"] == {"status": {}}
    assert version["additionalPrinterColumns"]
    text = (REPO / "crds" / name).read_text()
    assert "x-kubernetes-validations" in text
    if name == "mintlimits.yaml":
        tiers = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["tiers"]
        rules = [r["rule"] for r in tiers["properties"]["BASIC"]["x-kubernetes-validations"]]
        assert rules == ["self.perTransaction <= self.daily", "self.daily <= self.monthly"]


@pytest.mark.parametrize("chart", [OPERATOR_CHART, PLATFORM_CHART], ids=["mint-operator", "mint"])
def test_charts_declare_kube_version_and_values_schema(chart: Path) -> None:
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    assert meta["kubeVersion"] == ">=1.29.0-0"
    assert (chart / "values.schema.json").is_file()
    # a typo in values is refused instead of silently ignored
    bad = helm("template", "x", str(chart), "--set", "replicaCuont=2", check=False)
    assert bad.returncode != 0 and "replicaCuont" in bad.stderr, bad.stderr


def test_platform_chart_refuses_a_tenant_name_too_long() -> None:
    bad = helm(
        "template", "x", str(PLATFORM_CHART), "--set", f"tenant.name={'a' * 34}", check=False
    )
    assert bad.returncode != 0 and "tenant/name" in bad.stderr, bad.stderr


def test_chart_crds_are_copies_of_crds_dir() -> None:
    chart = REPO / "charts" / "mint-operator" / "crds"
    for source in sorted((REPO / "crds").glob("*.yaml")):
        assert (chart / source.name).read_text() == source.read_text(), (
            f"charts copy of {source.name} is stale"
        )


# ---- validation against the API server ------------------------------------------------------
def test_chart_output_validates(admin: Kube, namespace: str) -> None:
    failures: list[str] = []
    for args in (
        ["--include-crds", "--set", f"secretNamespaces={{{namespace}}}"],
        ["--set", f"watchNamespaces={{{namespace}}}"],
    ):
        rendered = docs(helm("template", "op", str(OPERATOR_CHART), "-n", namespace, *args).stdout)
        failures += dry_run_all(admin, rendered)
    platform = helm(
        "template", "shop", str(PLATFORM_CHART), "-n", namespace, "--set", "limits.manage=true"
    )
    failures += dry_run_all(admin, docs(platform.stdout))
    assert not failures, "\n".join(failures)


FULL_SPEC: Obj = {
    "image": {
        "repository": "registry.example.com/mint",
        "tag": "1.2.3",
        "pullSecrets": ["regcred"],
    },
    "publicUrl": "https://wallet.example.com",
    "services": {
        "wallet": {"replicas": 3, "resources": {"requests": {"cpu": "100m", "memory": 256000000}}},
        "transactions": {"autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 8}},
        "webhook": {"enabled": False},
        "kyc": {"env": [{"name": "MINT_LOG_LEVEL", "value": "DEBUG"}]},
    },
    "ingress": {
        "host": "wallet.example.com",
        "tlsSecretName": "wallet-tls",
        "annotations": {"a": "b"},
    },
    "kafka": {
        "strimzi": {"create": {"enabled": True, "replicas": 3, "version": "4.1.0"}},
        "topics": {"replicas": 3, "partitions": {"auth.events": 12}},
    },
    "postgres": {
        "cloudnativepg": {
            "instances": 2,
            "storageClass": "fast",
            "backup": {
                "destinationPath": "s3://backups/mint",
                "endpointURL": "https://s3",
                "credentialsSecret": "b",
            },
        }
    },
    "redis": {"managed": {"storageSize": "1Gi"}},
    "smtp": {"secretName": "smtp"},
    "objectStorage": {"endpoint": "https://s3", "bucket": "kyc", "credentialsSecret": "s3"},
    "observability": {"otlpEndpoint": "http://otel:4317", "sampleRatio": 0.2},
}


@pytest.mark.parametrize(
    "spec",
    [
        {},
        FULL_SPEC,
        {
            "kafka": {"mode": "external", "external": {"secretName": "kafka"}},
            "postgres": {"mode": "external", "external": {"secretName": "dsns"}},
            "redis": {"mode": "external", "external": {"url": "redis://r:6379/0"}},
            "networkPolicies": {"enabled": False},
            "ingress": {"enabled": False},
        },
    ],
    ids=["defaults", "every-feature", "external"],
)
def test_rendered_objects_validate(admin: Kube, namespace: str, spec: Obj) -> None:
    spec = {**spec, "kafka": {**spec.get("kafka", {})}}
    if spec["kafka"].get("mode") != "external":
        spec["kafka"]["strimzi"] = {**spec["kafka"].get("strimzi", {}), "namespace": namespace}
    body = {
        "apiVersion": "mint.dev/v1alpha1",
        "kind": "MintTenant",
        "metadata": {"name": "mint", "namespace": namespace},
        "spec": spec,
    }
    created = admin.apply(body)  # the MintTenant itself, defaulted by the CRD schema
    t = Tenant.from_object(created)
    objs = render_tenant(t) + render_initial_secrets(t, datetime.now(UTC))
    objs.append(render_limits_configmap(t, {"metadata": {"generation": 4}, "spec": {}}))
    failures = dry_run_all(admin, objs)
    assert not failures, "\n".join(failures)
    assert len(objs) > 30


def test_samples_validate(admin: Kube, namespace: str) -> None:
    objs = []
    for path in sorted((REPO / "manifests" / "samples").glob("*.yaml")):
        for doc in docs(path.read_text()):
            doc["metadata"]["namespace"] = namespace
            objs.append(doc)
    assert {o["kind"] for o in objs} == {"MintTenant", "MintLimits"}
    failures = dry_run_all(admin, objs)
    assert not failures, "\n".join(failures)
