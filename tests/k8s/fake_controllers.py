"""Tiny stand-ins for the controllers a test API server lacks (no kubelet, no deployment
controller, no Strimzi, no CloudNativePG) — as Strimzi's own test harness does: they write the
status those controllers would write, so the operator sees its children become ready.

    fakes = FakeControllers(kube, namespaces=["ns", "kafka-ns"]).start()
    fakes.ready.set()     # from now on every Deployment, StatefulSet, KafkaTopic, Cluster is ready
    fakes.stop()

While ``ready`` is clear they report objects as observed but not yet available (the state right
after a rollout starts). The CNPG fake also creates the ``<cluster>-app`` Secret, like CNPG does.
"""

from __future__ import annotations

import base64
import threading
from datetime import UTC, datetime
from typing import Any

from mint_operator.kube import ApiError, Kube

Obj = dict[str, Any]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def deployment_status(dep: Obj, ready: bool) -> Obj:
    want = int(dep["spec"].get("replicas", 1))
    have = want if ready else 0
    available = "True" if ready else "False"
    return {
        "observedGeneration": dep["metadata"]["generation"],
        "replicas": want,
        "updatedReplicas": want,
        "readyReplicas": have,
        "availableReplicas": have,
        "unavailableReplicas": want - have,
        "conditions": [
            {"type": "Available", "status": available, "reason": "MinimumReplicasAvailable"},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
        ],
    }


def statefulset_status(sts: Obj, ready: bool) -> Obj:
    want = int(sts["spec"].get("replicas", 1))
    have = want if ready else 0
    return {
        "observedGeneration": sts["metadata"]["generation"],
        "replicas": want,
        "readyReplicas": have,
        "currentReplicas": want,
        "updatedReplicas": want,
        "availableReplicas": have,
    }


def _condition(ready: bool, reason: str, message: str) -> Obj:
    return {
        "type": "Ready",
        "status": "True" if ready else "False",
        "reason": reason if ready else "Creating",
        "message": message if ready else "waiting",
        "lastTransitionTime": _now(),
    }


def topic_status(topic: Obj, ready: bool) -> Obj:
    return {
        "observedGeneration": topic["metadata"]["generation"],
        "topicName": topic["spec"].get("topicName", topic["metadata"]["name"]),
        "conditions": [_condition(ready, "TopicReady", "topic exists")],
    }


def cluster_status(cluster: Obj, ready: bool) -> Obj:
    instances = int(cluster["spec"].get("instances", 1))
    return {
        "instances": instances,
        "readyInstances": instances if ready else 0,
        "phase": "Cluster in healthy state" if ready else "Setting up primary",
        "conditions": [_condition(ready, "ClusterIsReady", "Cluster is Ready")],
    }


KINDS: tuple[tuple[str, str, Any], ...] = (
    ("apps/v1", "Deployment", deployment_status),
    ("apps/v1", "StatefulSet", statefulset_status),
    ("kafka.strimzi.io/v1", "KafkaTopic", topic_status),
    ("kafka.strimzi.io/v1", "Kafka", None),
    ("postgresql.cnpg.io/v1", "Cluster", cluster_status),
)


def _same(old: Obj | None, new: Obj) -> bool:
    """Equal apart from timestamps (so a stable state causes no writes)."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k != "lastTransitionTime"}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip(old or {}) == strip(new)


class FakeControllers:
    def __init__(self, kube: Kube, namespaces: list[str], interval: float = 0.3) -> None:
        self.kube = kube
        self.namespaces = namespaces
        self.interval = interval
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors: list[str] = []
        self._secrets: set[tuple[str, str]] = set()

    def start(self) -> FakeControllers:
        self._thread = threading.Thread(target=self._run, name="fake-controllers", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> FakeControllers:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception as exc:  # keep going; the test asserts on outcomes
                self.errors.append(repr(exc))

    def tick(self) -> None:
        ready = self.ready.is_set()
        for ns in self.namespaces:
            for api_version, kind, render in KINDS:
                if render is None:
                    continue
                try:
                    items = self.kube.list(api_version, kind, ns)
                except ApiError as exc:
                    if exc.status == 404:
                        continue
                    raise
                for item in items:
                    if item["metadata"].get("deletionTimestamp"):
                        continue
                    status = render(item, ready)
                    if not _same(item.get("status"), status):
                        self._patch_status(api_version, kind, ns, item["metadata"]["name"], status)
                    if kind == "Cluster" and ready:
                        self._cnpg_app_secret(item)

    def _patch_status(self, api_version: str, kind: str, ns: str, name: str, status: Obj) -> None:
        try:
            self.kube.patch(api_version, kind, ns, name, {"status": status}, subresource="status")
        except ApiError as exc:
            if exc.status not in (404, 409):
                raise

    def _cnpg_app_secret(self, cluster: Obj) -> None:
        """What CloudNativePG creates for the application owner: ``<cluster>-app``."""
        meta = cluster["metadata"]
        if (meta["namespace"], meta["name"]) in self._secrets:
            return
        initdb = cluster["spec"].get("bootstrap", {}).get("initdb", {})
        user, db = initdb.get("owner", "app"), initdb.get("database", "app")
        host = f"{meta['name']}-rw.{meta['namespace']}.svc"
        uri = f"postgresql://{user}:secret@{host}:5432/{db}"
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"{meta['name']}-app", "namespace": meta["namespace"]},
            "type": "kubernetes.io/basic-auth",
            "data": {"username": _b64(user), "password": _b64("secret"), "uri": _b64(uri)},
        }
        self.kube.create(secret)
        self._secrets.add((meta["namespace"], meta["name"]))
