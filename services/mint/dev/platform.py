"""The dev runner: every service as its own supervised process, plus the gateway.

Used by ``mint dev`` (spec ports, data in ``.mint/``) and by the end-to-end tests (free ports,
a scratch directory), so the tests run the platform exactly as developers do.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import structlog
import uvicorn

from mint.infra import InfraEndpoints
from mint.infra.process import StartCancelled, kill_stale, record_processes, wrapped_command
from mint.kit.catalog import CAPABILITIES, SERVICE_NAMES
from mint.kit.config import GRPC_PORTS, HTTP_PORTS

log = structlog.get_logger("mint.dev")

#: The settings the runner gives every service itself; the same variables in the environment of
#: ``make dev`` are ignored (any other ``MINT_*`` there reaches the services). They say where
#: things are — listeners, the embedded servers, the other services, files under ``.mint/`` —
#: or who the service is, and the platform only works with the runner's values.
RUNNER_OWNED_SETTINGS = frozenset(
    {
        "MINT_SERVICE_NAME",
        "MINT_ENVIRONMENT",
        "MINT_HTTP_HOST",
        "MINT_HTTP_PORT",
        "MINT_GRPC_HOST",
        "MINT_GRPC_PORT",
        *(f"MINT_{service.upper()}_GRPC" for service in SERVICE_NAMES),
        "MINT_PUBLIC_URL",
        "MINT_GATEWAY_URL",
        "MINT_AUTH_URL",
        "MINT_DATABASE_URL",
        "MINT_KAFKA_BOOTSTRAP_SERVERS",
        "MINT_REDIS_URL",
        "MINT_SMTP_URL",
        "MINT_S3_ENDPOINT",
        "MINT_S3_ACCESS_KEY",
        "MINT_S3_SECRET_KEY",
        "MINT_S3_REGION",
        "MINT_INTERNAL_TOKEN",
        "MINT_SIGNING_KEYS_DIR",
        "MINT_LIMITS_FILE",
    }
)

#: What the runner gives every service unless the environment of ``make dev`` says otherwise.
DEV_DEFAULTS = {
    "MINT_TRUSTED_PROXIES": "127.0.0.1/32,::1/128",  # the gateway forwards the client's address
    "MINT_WEBHOOK_ALLOW_INSECURE_LOOPBACK": "true",
}


def write_private_file(path: Path, data: bytes) -> None:
    """Write a secret: readable by its owner only from the moment it exists (created 0600, never
    chmod-ed afterwards) and atomically (a fresh temporary file renamed over ``path``)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)  # a leftover would keep its own mode: create it anew
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with open(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _never() -> bool:
    return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Child:
    name: str
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = 0.0

    def spawn(self, *, die_with_this_thread: bool) -> None:
        """Start the service; with ``die_with_this_thread`` the kernel kills it when the calling
        thread ends — when the runner dies, even by SIGKILL (see ``wrapped_command``)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "mint.cli", "serve", self.name]
        out = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            wrapped_command(cmd, die_with_this_thread=die_with_this_thread),
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        self.started_at = time.monotonic()


@dataclass
class Platform:
    """Starts ``services`` against ``infra``; ``stop()`` ends every child (no orphans)."""

    root: Path  # the .mint directory (keys, logs, runtime.json)
    infra: InfraEndpoints
    services: list[str]
    databases: dict[str, str]  # service → database URL
    spec_ports: bool = True
    gateway_port: int = 8080
    extra_env: dict[str, str] = field(default_factory=dict)
    #: polled while services get ready: when it turns true, start() ends with StartCancelled
    should_stop: Callable[[], bool] = _never
    children: dict[str, Child] = field(default_factory=dict)
    http_ports: dict[str, int] = field(default_factory=dict)
    grpc_ports: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    # set by stop() under _spawn_lock: from then on the supervisor restarts nothing
    _stopping: bool = False
    _spawn_lock: threading.Lock = field(default_factory=threading.Lock)
    _gateway: uvicorn.Server | None = None
    _threads: list[threading.Thread] = field(default_factory=list)

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def _plan_ports(self) -> None:
        for name in self.services:
            self.http_ports[name] = HTTP_PORTS[name] if self.spec_ports else free_port()
            if name in GRPC_PORTS:
                self.grpc_ports[name] = GRPC_PORTS[name] if self.spec_ports else free_port()
        if not self.spec_ports and self.gateway_port == 8080:
            self.gateway_port = free_port()

    @property
    def pids_file(self) -> Path:
        """The services' pids, for the next runner to clean up after one that died unguarded."""
        return self.root / "service-pids.json"

    def internal_token(self) -> str:
        path = self.root / "internal_token"
        if not path.exists():
            write_private_file(path, secrets.token_urlsafe(32).encode())
        return path.read_text().strip()

    def env_for(self, name: str) -> dict[str, str]:
        """The environment of ``name``'s process: what every service reads, plus what its
        capabilities (``mint.kit.catalog.CAPABILITIES``) say it needs — as the operator
        gives its Deployment. ``MINT_*`` settings of the caller's environment are kept, except
        the ones the runner owns (``RUNNER_OWNED_SETTINGS``)."""
        caps = CAPABILITIES[name]
        env = {k: v for k, v in os.environ.items() if not k.startswith("MINT_")}
        env.update(DEV_DEFAULTS)
        env.update(
            (k, v)
            for k, v in os.environ.items()
            if k.startswith("MINT_") and k not in RUNNER_OWNED_SETTINGS
        )
        env.update(
            {
                "MINT_SERVICE_NAME": name,
                "MINT_ENVIRONMENT": "dev",
                "MINT_HTTP_HOST": "127.0.0.1",
                "MINT_HTTP_PORT": str(self.http_ports[name]),
                "MINT_GRPC_HOST": "127.0.0.1",  # internal calls stay on this machine
                "MINT_GRPC_PORT": str(self.grpc_ports.get(name, 0)),
                "MINT_KAFKA_BOOTSTRAP_SERVERS": self.infra.kafka_bootstrap,
                "MINT_REDIS_URL": self.infra.redis_url,
                "MINT_INTERNAL_TOKEN": self.internal_token(),
                "MINT_PUBLIC_URL": f"http://localhost:{self.gateway_port}",
                "MINT_GATEWAY_URL": self.gateway_url,  # web calls the public APIs through it
                "MINT_AUTH_URL": f"http://127.0.0.1:{self.http_ports.get('auth', 4001)}",
                "PYTHONUNBUFFERED": "1",
            }
        )
        if caps.signing_keys:
            env["MINT_SIGNING_KEYS_DIR"] = str(self.root / "keys")
        if caps.limits:
            env["MINT_LIMITS_FILE"] = str(self.root / "limits.yaml")
        if caps.smtp:
            env["MINT_SMTP_URL"] = self.infra.smtp_url
        if caps.object_storage:
            env["MINT_S3_ENDPOINT"] = self.infra.s3_endpoint
            env["MINT_S3_ACCESS_KEY"] = self.infra.s3_access_key
            env["MINT_S3_SECRET_KEY"] = self.infra.s3_secret_key
            env["MINT_S3_REGION"] = self.infra.s3_region
        for svc, port in self.grpc_ports.items():
            env[f"MINT_{svc.upper()}_GRPC"] = f"127.0.0.1:{port}"
        if caps.database:
            env["MINT_DATABASE_URL"] = self.databases[name]
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 120.0) -> None:
        self._plan_ports()
        (self.root / "logs").mkdir(parents=True, exist_ok=True)
        kill_stale(self.pids_file)
        # Children die with the main thread (the process); a helper thread may end before them.
        main_thread = threading.current_thread() is threading.main_thread()
        for name in self.services:
            child = Child(name, self.env_for(name), self.root / "logs" / f"{name}.log")
            child.spawn(die_with_this_thread=main_thread)
            self.children[name] = child
        self._record_pids()
        sup = threading.Thread(target=self._supervise, name="supervisor", daemon=True)
        sup.start()
        self._threads.append(sup)
        self._start_gateway()
        self.wait_ready(timeout)
        self.write_runtime()

    def _start_gateway(self) -> None:
        from mint.dev.gateway import create_gateway

        upstreams = {n: f"http://127.0.0.1:{p}" for n, p in self.http_ports.items()}
        config = uvicorn.Config(
            create_gateway(upstreams, internal_token=self.internal_token()),
            host="0.0.0.0" if self.spec_ports else "127.0.0.1",
            port=self.gateway_port,
            log_config=None,
            access_log=False,
            proxy_headers=False,  # the edge: the socket peer is the client
        )
        self._gateway = uvicorn.Server(config)
        t = threading.Thread(target=self._gateway.run, name="gateway", daemon=True)
        t.start()
        self._threads.append(t)

    def _supervise(self) -> None:
        """Restart a crashed service with backoff; its log says why it died. A restarted service
        dies with this thread, so the thread ends only once stop() has stopped every child."""
        while not self._stop.wait(0.5):
            for child in self.children.values():
                try:
                    self._restart_if_crashed(child)
                except Exception:  # keep supervising: the services it restarted die with it
                    log.exception("supervisor_error", service=child.name)
                if self._stop.is_set():
                    return

    def _restart_if_crashed(self, child: Child) -> None:
        if self._stopping or child.proc is None or child.proc.poll() is None:
            return
        code = child.proc.returncode
        delay = min(30.0, 0.5 * 2 ** min(child.restarts, 6))
        if time.monotonic() - child.started_at > 60:
            child.restarts = 0
        log.warning(
            "service_crashed",
            service=child.name,
            exit_code=code,
            restart_in=delay,
            log=str(child.log_path),
        )
        print(
            f"[mint dev] {child.name} exited ({code}); restarting in {delay:.1f}s "
            f"— see {child.log_path}",
            flush=True,
        )
        if self._stop.wait(delay):
            return
        with self._spawn_lock:
            if self._stopping:
                return
            child.restarts += 1
            child.spawn(die_with_this_thread=True)
        self._record_pids()

    def _record_pids(self) -> None:
        record_processes(
            self.pids_file, {n: c.proc.pid for n, c in self.children.items() if c.proc}
        )

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = set(self.services)
        while pending and time.monotonic() < deadline:
            if self.should_stop():
                raise StartCancelled("start cancelled: a stop was requested")
            for name in sorted(pending):
                try:
                    r = httpx.get(f"http://127.0.0.1:{self.http_ports[name]}/readyz", timeout=1)
                    if r.status_code == 200:
                        pending.discard(name)
                except httpx.HTTPError:
                    pass
            if pending:
                time.sleep(0.3)
        if pending:
            tails = {n: _tail(self.children[n].log_path) for n in sorted(pending)}
            self.stop()
            detail = "\n".join(f"--- {n} ---\n{t}" for n, t in tails.items())
            raise RuntimeError(
                f"services not ready after {timeout:.0f}s: {sorted(pending)}\n{detail}"
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not self.should_stop():
            try:
                httpx.get(self.gateway_url + "/__gateway_probe", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError(f"gateway did not start on {self.gateway_url}")

    def runtime(self) -> dict[str, Any]:
        return {
            "runner_pid": os.getpid(),
            "gateway_url": self.gateway_url,
            "services": {
                n: {
                    "http": f"http://127.0.0.1:{self.http_ports[n]}",
                    "grpc": f"127.0.0.1:{self.grpc_ports[n]}" if n in self.grpc_ports else None,
                    "pid": c.proc.pid if c.proc else None,
                    "log": str(c.log_path),
                }
                for n, c in self.children.items()
            },
            "databases": self.databases,
            "infra": self.infra.to_dict(),
            "mail_dir": str(self.infra.mail_dir),
            "internal_token_file": str(self.root / "internal_token"),
        }

    def write_runtime(self) -> Path:
        """``runtime.json``: it carries database URLs and the S3 key, so it is private."""
        path = self.root / "runtime.json"
        write_private_file(path, json.dumps(self.runtime(), indent=2, default=str).encode())
        return path

    def stop(self) -> None:
        """Stop every child (SIGTERM to its process group, SIGKILL after 10 s). Idempotent."""
        with self._spawn_lock:
            self._stopping = True
        if self._gateway is not None:
            self._gateway.should_exit = True
        for child in self.children.values():
            if child.proc and child.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(child.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for child in self.children.values():
            if child.proc is None:
                continue
            try:
                child.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(child.proc.pid, signal.SIGKILL)
                child.proc.wait(5)
        # Only now may the supervisor end: the services it restarted die with its thread.
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)
        (self.root / "runtime.json").unlink(missing_ok=True)
        self.pids_file.unlink(missing_ok=True)


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
