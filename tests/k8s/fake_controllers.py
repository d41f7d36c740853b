"""Tiny stand-ins for the controllers a test API server lacks (no kubelet, no deployment
controller, no Strimzi, no CloudNativePG) — as Strimzi's own test harness does: they write the
status those controllers would write, so the operator sees its children become ready.

    fakes = FakeControllers(kube, namespaces=["ns", "kafka-ns"]).start()
    fakes.ready.set()     # from now on pods start; StatefulSets, topics, Clusters are ready
    ...
    assert fakes.errors == []
    fakes.stop()

Deployments get real Pod objects (the deployment controller's part: one per replica, made from
the pod template, owned by the Deployment, replaced when the template changes). The kubelet's
part is played per pod:

* a pod whose template references a Secret or ConfigMap (or a key of one) that does not exist
  does not start — ``CreateContainerConfigError``, as a kubelet reports it — and so its
  Deployment is not available (``blocked`` says what is missing);
* a started pod gets its own loopback address as ``podIP`` and answers its readiness probe there
  (the container's ``readinessProbe`` path and port) with what the service's ``/readyz`` says:
  ``limits_version`` from the real ``mint.kit.limits.LimitsSource`` reading the pod's own copy
  of its ConfigMap volume, which the fake kubelet refreshes every tick (``hold_volumes``
  stops that for a Deployment's pods: a kubelet that has not synced yet).

While ``ready`` is clear nothing starts (the state right after a rollout starts). The CNPG fake
also creates the ``<cluster>-app`` Secret, like CNPG does. ``errors`` collects what went wrong
inside the fakes themselves (a test asserts it is empty).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import itertools
import json
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from mint.kit.limits import LimitsSource
from mint_operator.kube import ApiError, Kube

Obj = dict[str, Any]

#: Where the pods' addresses come from: loopback, one per pod, never reused in a session.
_ADDRESSES = itertools.count(1)
TEMPLATE_HASH = "fake.mint.dev/template-hash"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _pod_ip() -> str:
    n = next(_ADDRESSES)
    return f"127.77.{n // 250 % 250}.{n % 250 + 2}"


def template_hash(dep: Obj) -> str:
    raw = json.dumps(dep["spec"]["template"], sort_keys=True).encode()
    return hashlib.sha256(raw).hexdigest()[:10]


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


#: Kinds whose status is written whole from the ``ready`` flag (Deployments go through pods).
KINDS: tuple[tuple[str, str, Any], ...] = (
    ("apps/v1", "StatefulSet", statefulset_status),
    ("kafka.strimzi.io/v1", "KafkaTopic", topic_status),
    ("postgresql.cnpg.io/v1", "Cluster", cluster_status),
)


def _same(old: Obj | None, new: Obj) -> bool:
    """Whether ``old`` already says what ``new`` says — timestamps aside, empty values (which
    the API server omits) aside, top-level fields the server adds (a pod's ``qosClass``)
    ignored — so a stable state causes no writes."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: strip(v)
                for k, v in value.items()
                if k not in ("lastTransitionTime", "lastProbeTime") and v
            }
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    before = old or {}
    same: bool = strip({k: before.get(k) for k in new}) == strip(new)
    return same


# ---- what a pod references -----------------------------------------------------------------


@dataclass(frozen=True)
class Objects:
    """The Secrets and ConfigMaps of a namespace: name → data keys (and ConfigMaps' data)."""

    secrets: dict[str, set[str]]
    configmaps: dict[str, dict[str, str]]


def missing_references(pod_spec: Obj, have: Objects) -> list[str]:
    """What a kubelet would not find to start the pod: Secrets and ConfigMaps (and keys of
    them) named by env, envFrom and volumes, unless marked ``optional``."""
    missing: list[str] = []

    def need(kind: str, name: str, key: str | None, optional: bool) -> None:
        keys = have.secrets.get(name) if kind == "Secret" else have.configmaps.get(name)
        if optional:
            return
        if keys is None:
            missing.append(f"{kind}/{name}")
        elif key is not None and key not in keys:
            missing.append(f"{kind}/{name} key {key}")

    for container in [*pod_spec.get("initContainers", []), *pod_spec.get("containers", [])]:
        for env in container.get("env") or []:
            source = env.get("valueFrom") or {}
            for ref, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
                if ref in source:
                    r = source[ref]
                    need(kind, r["name"], r.get("key"), bool(r.get("optional")))
        for env_from in container.get("envFrom") or []:
            for ref, kind in (("secretRef", "Secret"), ("configMapRef", "ConfigMap")):
                if ref in env_from:
                    r = env_from[ref]
                    need(kind, r["name"], None, bool(r.get("optional")))
    for volume in pod_spec.get("volumes") or []:
        if "secret" in volume:
            v = volume["secret"]
            need("Secret", v["secretName"], None, bool(v.get("optional")))
        if "configMap" in volume:
            v = volume["configMap"]
            need("ConfigMap", v["name"], None, bool(v.get("optional")))
        for source in (volume.get("projected") or {}).get("sources") or []:
            for ref, kind in (("secret", "Secret"), ("configMap", "ConfigMap")):
                if ref in source:
                    need(kind, source[ref]["name"], None, bool(source[ref].get("optional")))
    return sorted(set(missing))


# ---- a started pod -------------------------------------------------------------------------


@dataclass
class RunningPod:
    """A started pod: its address, its copy of its ConfigMap volumes, and the server that
    answers its readiness probe there as the service would."""

    name: str
    ip: str
    port: int
    path: str
    volumes: dict[str, tuple[str, Path]]  # mount path → (ConfigMap name, directory)
    limits: LimitsSource | None
    server: ThreadingHTTPServer | None = None
    thread: threading.Thread | None = field(default=None, repr=False)

    def readyz(self) -> tuple[int, Obj]:
        """The service's ``/readyz`` as far as a pod's config goes (mint.kit.http)."""
        checks: dict[str, str] = {}
        body: Obj = {"checks": checks}
        if self.limits is not None:
            checks["limits"] = "ok" if self.limits.ready else "down"
            body["limits_version"] = self.limits.version
        ok = all(v == "ok" for v in checks.values())
        body["status"] = "ok" if ok else "unavailable"
        return (200 if ok else 503), body

    def serve(self) -> None:
        pod = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body = pod.readyz() if self.path == pod.path else (404, {})
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((self.ip, self.port), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, name=f"pod-{self.name}", daemon=True
        )
        self.thread.start()

    def sync_volumes(self, configmaps: dict[str, dict[str, str]]) -> None:
        """The kubelet's refresh of ConfigMap volumes: write each key's file, then the
        service's own limits watcher looks at it (as its thread would)."""
        for name, directory in self.volumes.values():
            for key, text in (configmaps.get(name) or {}).items():
                target = directory / key
                if target.exists() and target.read_text() == text:
                    continue
                staged = directory / f".{key}.tmp"
                staged.write_text(text)
                staged.replace(target)  # atomic, like the kubelet's ..data swap
        if self.limits is not None:
            self.limits.refresh()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


# ---- the controllers -----------------------------------------------------------------------


class FakeControllers:
    def __init__(self, kube: Kube, namespaces: list[str], interval: float = 0.3) -> None:
        self.kube = kube
        self.namespaces = namespaces
        self.interval = interval
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors: list[str] = []
        #: "namespace/deployment" → what its pods wait for (absent when nothing is missing)
        self.blocked: dict[str, list[str]] = {}
        #: Deployments ("namespace/name") whose pods' ConfigMap volumes are not refreshed
        self.held_volumes: set[str] = set()
        self.pods: dict[tuple[str, str], RunningPod] = {}
        self._secrets: set[tuple[str, str]] = set()
        self._files = Path(tempfile.mkdtemp(prefix="fake-kubelet-"))
        self._lock = threading.Lock()

    def start(self) -> FakeControllers:
        self._thread = threading.Thread(target=self._run, name="fake-controllers", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        for pod in self.pods.values():
            pod.stop()
        self.pods.clear()
        shutil.rmtree(self._files, ignore_errors=True)

    def __enter__(self) -> FakeControllers:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def hold_volumes(self, namespace: str, deployment: str, held: bool = True) -> None:
        """Stop (or resume) refreshing the ConfigMap volumes of a Deployment's pods."""
        with self._lock:
            if held:
                self.held_volumes.add(f"{namespace}/{deployment}")
            else:
                self.held_volumes.discard(f"{namespace}/{deployment}")

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception as exc:  # keep going; the test asserts the list is empty
                self.errors.append(repr(exc))

    def tick(self) -> None:
        ready = self.ready.is_set()
        for ns in self.namespaces:
            for api_version, kind, render in KINDS:
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
            self._deployments(ns, ready)

    # ---- Deployments, through their pods -------------------------------------------------

    def _objects(self, ns: str) -> Objects:
        secrets = {
            s["metadata"]["name"]: set((s.get("data") or {}) | (s.get("stringData") or {}))
            for s in self.kube.list("v1", "Secret", ns)
        }
        configmaps = {
            c["metadata"]["name"]: dict(c.get("data") or {})
            for c in self.kube.list("v1", "ConfigMap", ns)
        }
        return Objects(secrets, configmaps)

    def _deployments(self, ns: str, ready: bool) -> None:
        deployments = self.kube.list("apps/v1", "Deployment", ns)
        pods = self.kube.list("v1", "Pod", ns)
        have = self._objects(ns) if deployments else Objects({}, {})
        alive: set[tuple[str, str]] = set()
        for dep in deployments:
            if dep["metadata"].get("deletionTimestamp"):
                continue
            owned = [
                p
                for p in pods
                if any(
                    o.get("uid") == dep["metadata"]["uid"]
                    for o in p["metadata"].get("ownerReferences") or []
                )
                and not p["metadata"].get("deletionTimestamp")
            ]
            current = self._replicate(dep, owned)
            ready_count = 0
            for pod in current:
                if self._kubelet(dep, pod, have, ready):
                    ready_count += 1
                alive.add((ns, pod["metadata"]["name"]))
            status = deployment_status(dep, len(current), ready_count)
            if not _same(dep.get("status"), status):
                self._patch_status("apps/v1", "Deployment", ns, dep["metadata"]["name"], status)
        for key in [k for k in self.pods if k[0] == ns and k not in alive]:
            self.pods.pop(key).stop()  # deleted (rollout, scale down, garbage collected)
        names = {f"{ns}/{d['metadata']['name']}" for d in deployments}
        for gone in [k for k in self.blocked if k.startswith(f"{ns}/") and k not in names]:
            del self.blocked[gone]  # its Deployment was deleted

    def _replicate(self, dep: Obj, owned: list[Obj]) -> list[Obj]:
        """The deployment controller: ``replicas`` pods of the current template (a changed
        template replaces them all, a Recreate rollout), nothing else."""
        meta = dep["metadata"]
        ns, name, want = meta["namespace"], meta["name"], int(dep["spec"].get("replicas", 1))
        digest = template_hash(dep)
        keep: list[Obj] = []
        for pod in owned:
            annotations = pod["metadata"].get("annotations") or {}
            if annotations.get(TEMPLATE_HASH) == digest and len(keep) < want:
                keep.append(pod)
            else:
                self.kube.delete("v1", "Pod", ns, pod["metadata"]["name"])
        names = {p["metadata"]["name"] for p in keep}
        for i in range(want):
            pod_name = f"{name}-{digest}-{i}"
            if len(keep) >= want:
                break
            if pod_name in names:
                continue
            template = copy.deepcopy(dep["spec"]["template"])
            labels = dict(template.get("metadata", {}).get("labels") or {})
            annotations = dict(template.get("metadata", {}).get("annotations") or {})
            created = self.kube.create(
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {
                        "name": pod_name,
                        "namespace": ns,
                        "labels": labels,
                        "annotations": {**annotations, TEMPLATE_HASH: digest},
                        "ownerReferences": [
                            {
                                "apiVersion": "apps/v1",
                                "kind": "Deployment",
                                "name": name,
                                "uid": meta["uid"],
                                "controller": True,
                                "blockOwnerDeletion": True,
                            }
                        ],
                    },
                    "spec": template["spec"],
                }
            )
            if created is not None:
                keep.append(created)
        return keep

    def _kubelet(self, dep: Obj, pod: Obj, have: Objects, ready: bool) -> bool:
        """Start the pod if it can start; write its status; True when it is ready."""
        meta = pod["metadata"]
        ns, name = meta["namespace"], meta["name"]
        key = f"{ns}/{dep['metadata']['name']}"
        missing = missing_references(pod["spec"], have)
        if missing:
            self.blocked[key] = missing
        else:
            self.blocked.pop(key, None)
        running = self.pods.get((ns, name))
        if running is None and ready and not missing:
            running = self._start(pod, have.configmaps)
            self.pods[(ns, name)] = running
        if running is not None:
            with self._lock:
                held = key in self.held_volumes
            if not held:
                running.sync_volumes(have.configmaps)
            is_ready = running.readyz()[0] == 200
            status = running_status(pod, running.ip, is_ready)
        else:
            status = pending_status(pod, missing)
            is_ready = False
        if not _same(pod.get("status"), status):
            self._patch_status("v1", "Pod", ns, name, status)
        return is_ready

    def _start(self, pod: Obj, configmaps: dict[str, dict[str, str]]) -> RunningPod:
        """What a container of this pod would be: its ConfigMap volumes as files (written
        before it starts), the limits file read by the service's own code, its readiness
        endpoint on the pod's own address."""
        meta, spec = pod["metadata"], pod["spec"]
        container = spec["containers"][0]
        ports = {p.get("name"): int(p["containerPort"]) for p in container.get("ports") or []}
        probe = (container.get("readinessProbe") or {}).get("httpGet") or {}
        port = probe.get("port", "http")
        port = ports[port] if isinstance(port, str) else int(port)
        root = self._files / meta["namespace"] / meta["name"]
        volumes: dict[str, tuple[str, Path]] = {}
        by_name = {v["name"]: v for v in spec.get("volumes") or []}
        for mount in container.get("volumeMounts") or []:
            volume = by_name.get(mount["name"]) or {}
            if "configMap" in volume:
                directory = root / mount["name"]
                directory.mkdir(parents=True, exist_ok=True)
                volumes[mount["mountPath"]] = (volume["configMap"]["name"], directory)
        running = RunningPod(
            name=meta["name"],
            ip=_pod_ip(),
            port=port,
            path=str(probe.get("path") or "/readyz"),
            volumes=volumes,
            limits=None,
        )
        running.sync_volumes(configmaps)  # mounted before the container starts
        env = {e["name"]: e.get("value") for e in container.get("env") or []}
        limits_file = env.get("MINT_LIMITS_FILE")
        if limits_file:
            mount_path, _, file_name = str(limits_file).rpartition("/")
            directory = volumes[mount_path][1] if mount_path in volumes else root / "unmounted"
            running.limits = LimitsSource(directory / file_name)
        running.serve()
        return running

    # ---- the rest ----------------------------------------------------------------------------

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


def deployment_status(dep: Obj, replicas: int, ready: int) -> Obj:
    """The deployment controller's status from its pods (all of the current template)."""
    want = int(dep["spec"].get("replicas", 1))
    available = "True" if ready >= want else "False"
    return {
        "observedGeneration": dep["metadata"]["generation"],
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": ready,
        "availableReplicas": ready,
        "unavailableReplicas": max(want - ready, 0),
        "conditions": [
            {"type": "Available", "status": available, "reason": "MinimumReplicasAvailable"},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
        ],
    }


def pending_status(pod: Obj, missing: list[str]) -> Obj:
    """A pod that has not started: waiting to be started, or unable to (its config missing)."""
    name = pod["spec"]["containers"][0]["name"]
    waiting: Obj = {"reason": "ContainerCreating"}
    if missing:
        waiting = {"reason": "CreateContainerConfigError", "message": "; ".join(missing)}
    return {
        "phase": "Pending",
        "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
        "containerStatuses": [
            {
                "name": name,
                "ready": False,
                "restartCount": 0,
                "image": pod["spec"]["containers"][0].get("image", ""),
                "imageID": "",
                "state": {"waiting": waiting},
            }
        ],
    }


def running_status(pod: Obj, ip: str, ready: bool) -> Obj:
    name = pod["spec"]["containers"][0]["name"]
    flag = "True" if ready else "False"
    return {
        "phase": "Running",
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "conditions": [
            {"type": "Ready", "status": flag},
            {"type": "ContainersReady", "status": flag},
        ],
        "containerStatuses": [
            {
                "name": name,
                "ready": ready,
                "started": True,
                "restartCount": 0,
                "image": pod["spec"]["containers"][0].get("image", ""),
                "imageID": "",
                "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}},
            }
        ],
    }
