"""A real Kubernetes control plane for the tests: etcd + kube-apiserver + kube-controller-manager.

No kubelet, no scheduler, and only the ``garbagecollector`` and ``namespace`` controllers — the
envtest idea, with our own binaries (``tests/k8s/build.py``). Everything listens on free loopback
ports and keeps its data, certificates and logs under ``work_dir``; every process runs in its own
process group and dies with the test process (``PR_SET_PDEATHSIG``), so nothing is left behind.

    cp = KubeControlPlane(work_dir, bin_dir)
    cp.start()  # etcd, apiserver (/readyz), controller-manager (/healthz), CRDs Established
    cp.kubeconfig_path, cp.url, cp.token, cp.ca_path
    cp.stop()
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import datetime as dt
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

REPO = Path(__file__).resolve().parents[2]
#: Strimzi 1.x (kafka.strimzi.io/v1 only) and CloudNativePG (Cluster, Database) CRDs, copied into
#: the repository with their source and version (upstream_crds/SOURCES.md).
UPSTREAM_CRD_DIR = Path(__file__).resolve().parent / "upstream_crds"
UPSTREAM_CRDS = (
    "strimzi/040-Crd-kafka.yaml",
    "strimzi/043-Crd-kafkatopic.yaml",
    "strimzi/045-Crd-kafkanodepool.yaml",
    "cnpg/postgresql.cnpg.io_clusters.yaml",
    "cnpg/postgresql.cnpg.io_databases.yaml",
)
ADMIN_USER = "admin"
LOG_TAIL_LINES = 40


class ControlPlaneError(RuntimeError):
    """The control plane could not be started (the message carries the log tail)."""


class _PortTaken(ControlPlaneError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def default_crd_files() -> list[Path]:
    """Our CRDs (``crds/*.yaml``, if any) and the upstream Strimzi/CNPG ones."""
    ours = sorted((REPO / "crds").glob("*.yaml")) + sorted((REPO / "crds").glob("*.yml"))
    return ours + [UPSTREAM_CRD_DIR / rel for rel in UPSTREAM_CRDS]


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


# ---- certificates and keys --------------------------------------------------------------------


def _pem_key(key: Any) -> bytes:
    return bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def self_signed_serving_cert(cert_path: Path, key_path: Path) -> None:
    """A self-signed serving certificate for 127.0.0.1/localhost (it is its own CA)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mint-test-kube-apiserver")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=False,
                content_commitment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.DNSName("kubernetes"),
                    x509.DNSName("kubernetes.default.svc"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("10.0.0.1")),
                ]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    key_path.write_bytes(_pem_key(key))
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def service_account_keys(private_path: Path, public_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_path.write_bytes(_pem_key(key))
    private_path.chmod(0o600)
    public_path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


# ---- the control plane ------------------------------------------------------------------------


class KubeControlPlane:
    """etcd + kube-apiserver + kube-controller-manager (garbagecollector, namespace) in work_dir."""

    def __init__(
        self,
        work_dir: Path | str,
        bin_dir: Path | str,
        *,
        crd_files: Iterable[Path] | None = None,
        start_timeout: float = 120.0,
    ) -> None:
        self.work_dir = Path(work_dir)
        self.bin_dir = Path(bin_dir)
        self.crd_files = list(crd_files) if crd_files is not None else default_crd_files()
        self.start_timeout = start_timeout
        self.token = secrets.token_urlsafe(32)
        self.etcd_port = 0
        self.etcd_peer_port = 0
        self.port = 0
        self.kcm_port = 0
        self.url = ""
        self.kubeconfig_path = self.work_dir / "kubeconfig"
        self.ca_path = self.work_dir / "pki" / "apiserver.crt"
        self.logs = self.work_dir / "logs"
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._ssl: ssl.SSLContext | None = None
        self.timings: dict[str, float] = {}

    # -- lifecycle --

    def start(self) -> KubeControlPlane:
        for name in ("etcd", "kube-apiserver", "kube-controller-manager"):
            if not (self.bin_dir / name).is_file():
                raise ControlPlaneError(
                    f"{self.bin_dir / name} is missing; run `python -m tests.k8s.build`"
                )
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        for attempt in range(3):
            try:
                self._start_all()
                return self
            except _PortTaken:
                # a free port was taken by someone else between probing and binding: new ports
                self.stop()
                shutil.rmtree(self.work_dir / "etcd", ignore_errors=True)
                if attempt == 2:
                    raise
            except BaseException:
                self.stop()
                raise
        return self

    def _start_all(self) -> None:
        t0 = time.monotonic()
        self._prepare_pki()
        self._start_etcd()
        self.timings["etcd"] = time.monotonic() - t0
        t0 = time.monotonic()
        self._start_apiserver()
        self.timings["kube-apiserver"] = time.monotonic() - t0
        self._write_kubeconfig()
        t0 = time.monotonic()
        self._start_controller_manager()
        self.timings["kube-controller-manager"] = time.monotonic() - t0
        t0 = time.monotonic()
        self.install_crds(self.crd_files)
        self.timings["crds"] = time.monotonic() - t0

    def stop(self) -> None:
        for name in ("kube-controller-manager", "kube-apiserver", "etcd"):
            proc = self._procs.pop(name, None)
            if proc is not None:
                _stop_process(proc)

    def __enter__(self) -> KubeControlPlane:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- pieces --

    def _prepare_pki(self) -> None:
        pki = self.work_dir / "pki"
        pki.mkdir(exist_ok=True)
        self_signed_serving_cert(pki / "apiserver.crt", pki / "apiserver.key")
        service_account_keys(pki / "sa.key", pki / "sa.pub")
        # token,user,uid,"group1,group2"
        (pki / "tokens.csv").write_text(f'{self.token},{ADMIN_USER},admin-uid,"system:masters"\n')
        (pki / "tokens.csv").chmod(0o600)
        self._ssl = ssl.create_default_context(cafile=str(pki / "apiserver.crt"))

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            [str(self.bin_dir / name), *args],
            cwd=self.work_dir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: stop() signals the whole group
            preexec_fn=_die_with_parent,
        )
        log.close()
        self._procs[name] = proc
        return proc

    def _fail(self, name: str, why: str) -> ControlPlaneError:
        return ControlPlaneError(
            f"{name} {why}; last lines of {self.logs / (name + '.log')}:\n"
            f"{log_tail(self.logs / (name + '.log'))}"
        )

    def _wait(self, name: str, check: Any, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout or self.start_timeout)
        proc = self._procs[name]
        last = ""
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                if "address already in use" in log_tail(self.logs / f"{name}.log", 10):
                    raise _PortTaken(self._fail(name, "could not bind its port"))
                raise self._fail(name, f"exited with code {proc.returncode} while starting")
            try:
                if check():
                    return
            except Exception as exc:  # not up yet
                last = f"{type(exc).__name__}: {exc}"
            time.sleep(0.25)
        waited = timeout or self.start_timeout
        raise self._fail(name, f"not ready after {waited:.0f}s (last check: {last or 'not ready'})")

    def _start_etcd(self) -> None:
        self.etcd_port, self.etcd_peer_port = free_port(), free_port()
        client = f"http://127.0.0.1:{self.etcd_port}"
        peer = f"http://127.0.0.1:{self.etcd_peer_port}"
        self._spawn(
            "etcd",
            [
                "--name=mint-test",
                f"--data-dir={self.work_dir / 'etcd'}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=mint-test={peer}",
                "--initial-cluster-state=new",
                "--unsafe-no-fsync=true",
                "--quota-backend-bytes=2147483648",
                "--log-level=warn",
            ],
        )

        def healthy() -> bool:
            with urllib.request.urlopen(f"{client}/health", timeout=2) as r:
                return bool(json.loads(r.read()).get("health") == "true")

        self._wait("etcd", healthy, timeout=60)

    def _start_apiserver(self) -> None:
        pki = self.work_dir / "pki"
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self._spawn(
            "kube-apiserver",
            [
                f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.port}",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--token-auth-file={pki / 'tokens.csv'}",
                "--authorization-mode=RBAC",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                "--service-cluster-ip-range=10.0.0.0/24",
                # no ServiceAccount controller runs here, so pods would wait for a default SA
                "--disable-admission-plugins=ServiceAccount",
                "--allow-privileged=true",
                "--enable-priority-and-fairness=false",
                "--profiling=false",
                "--v=1",
            ],
        )
        self._wait("kube-apiserver", lambda: self._get("/readyz") == "ok")

    def _start_controller_manager(self) -> None:
        self.kcm_port = free_port()
        kcm_certs = self.work_dir / "kcm-certs"
        kcm_certs.mkdir(exist_ok=True)
        self._spawn(
            "kube-controller-manager",
            [
                f"--kubeconfig={self.kubeconfig_path}",
                # only these two: no serviceaccount-token, no deployment/replicaset controllers
                "--controllers=garbagecollector,namespace",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.kcm_port}",
                f"--cert-dir={kcm_certs}",
                "--concurrent-gc-syncs=5",
                "--profiling=false",
                "--v=1",
            ],
        )
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # its own throwaway self-signed cert

        def healthy() -> bool:
            url = f"https://127.0.0.1:{self.kcm_port}/healthz"
            with urllib.request.urlopen(url, timeout=2, context=ctx) as r:
                return bool(r.read().decode() == "ok")

        self._wait("kube-controller-manager", healthy)

    def _write_kubeconfig(self) -> None:
        ca = base64.b64encode(self.ca_path.read_bytes()).decode()
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "mint-test",
                    "cluster": {"server": self.url, "certificate-authority-data": ca},
                }
            ],
            "users": [{"name": ADMIN_USER, "user": {"token": self.token}}],
            "contexts": [
                {"name": "mint-test", "context": {"cluster": "mint-test", "user": ADMIN_USER}}
            ],
            "current-context": "mint-test",
        }
        self.kubeconfig_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.kubeconfig_path.chmod(0o600)

    # -- REST helpers (stdlib, so the harness itself does not depend on a client library) --

    def request(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> Any:
        data = (
            None
            if body is None
            else (body if isinstance(body, bytes) else json.dumps(body).encode())
        )
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", content_type)
        with urllib.request.urlopen(req, timeout=30, context=self._ssl) as r:
            raw = r.read()
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode(errors="replace")

    def _get(self, path: str) -> Any:
        return self.request("GET", path)

    def install_crds(self, files: Iterable[Path], timeout: float = 60.0) -> list[str]:
        """Server-side apply every CustomResourceDefinition in ``files``; wait until Established."""
        names: list[str] = []
        for path in files:
            if not path.is_file():
                raise ControlPlaneError(f"CRD file not found: {path}")
            for doc in yaml.safe_load_all(path.read_text()):
                if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
                    continue
                name = doc["metadata"]["name"]
                try:
                    self.request(
                        "PATCH",
                        f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
                        "?fieldManager=mint-tests&force=true",
                        doc,
                        content_type="application/apply-patch+yaml",
                    )
                except urllib.error.HTTPError as exc:
                    detail = exc.read()[:2000].decode(errors="replace")
                    raise ControlPlaneError(
                        f"installing CRD {name} from {path} failed: {exc.code} {detail}"
                    ) from exc
                names.append(name)
        deadline = time.monotonic() + timeout
        pending = list(names)
        while pending:
            crd = self._get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{pending[0]}")
            conds = {c["type"]: c for c in (crd.get("status") or {}).get("conditions") or []}
            if conds.get("Established", {}).get("status") == "True":
                pending.pop(0)
                continue
            if time.monotonic() > deadline:
                raise ControlPlaneError(
                    f"CRD {pending[0]} not Established after {timeout:.0f}s: {conds}"
                )
            time.sleep(0.2)
        return names

    def version(self) -> dict[str, Any]:
        return dict(self._get("/version"))


def _stop_process(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    # the group may still hold children even after the leader exited
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
