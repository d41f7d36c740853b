"""EmbeddedInfra: start and stop every real server Mint needs, on loopback, from one data dir."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from types import TracebackType
from typing import Protocol

from mint.infra.endpoints import InfraEndpoints
from mint.infra.kafka import ApacheKafka, make_kafka
from mint.infra.postgres import Postgres
from mint.infra.process import (
    DirectoryLock,
    InfraError,
    PortBook,
    StartCancelled,
    kill_stale,
    record_processes,
)
from mint.infra.redis_server import Redis
from mint.infra.s3 import ACCESS_KEY, REGION, S3, SECRET_KEY
from mint.infra.smtp import Smtp

ALL_COMPONENTS = frozenset({"postgres", "redis", "kafka", "s3", "smtp"})
START_ORDER = ("postgres", "redis", "kafka", "s3", "smtp")
CANCEL_POLL_SECONDS = 0.25

log = logging.getLogger("mint.infra")


class Component(Protocol):
    name: str

    def prepare(self) -> None: ...
    def launch(self) -> None: ...
    def wait_ready(self, timeout: float) -> None: ...
    def stop(self) -> None: ...
    def pids(self) -> dict[str, int]: ...


def _run_all(
    components: Iterable[Component],
    step: Callable[[Component], None],
    cancelled: Callable[[], bool] | None = None,
) -> None:
    """Run `step` for every component concurrently; raise the first failure, naming all.
    When `cancelled()` turns true meanwhile, raise StartCancelled without waiting for the steps
    (the caller stops the components, which ends steps that wait on them)."""
    items = list(components)
    errors: list[tuple[str, BaseException]] = []
    pool = ThreadPoolExecutor(max_workers=max(1, len(items)))
    try:
        futures = [(c.name, pool.submit(step, c)) for c in items]
        pending = {f for _, f in futures}
        while pending:
            if cancelled is not None and cancelled():
                raise StartCancelled("start cancelled: a stop was requested")
            timeout = CANCEL_POLL_SECONDS if cancelled is not None else None
            _, pending = wait(pending, timeout=timeout)
        for name, future in futures:
            exc = future.exception()
            if exc is not None:
                errors.append((name, exc))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    if errors:
        first = errors[0][1]
        if len(errors) == 1 and isinstance(first, InfraError):
            raise first
        detail = "\n\n".join(
            f"{name}: {exc}" if not str(exc).startswith(name) else str(exc) for name, exc in errors
        )
        raise InfraError(detail) from first


class EmbeddedInfra:
    def __init__(
        self,
        data_dir: Path,
        databases: list[str],
        components: set[str] | frozenset[str] = ALL_COMPONENTS,
        cache_dir: Path | None = None,
        *,
        ephemeral: bool = False,
        kafka_kind: str | None = None,
        timeout: float = 180.0,
        cancelled: Callable[[], bool] | None = None,
    ) -> None:
        unknown = set(components) - ALL_COMPONENTS
        if unknown:
            raise ValueError(
                f"unknown components {sorted(unknown)}; known: {sorted(ALL_COMPONENTS)}"
            )
        if databases and "postgres" not in components:
            raise ValueError("databases were requested without the postgres component")
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.databases = list(databases)
        self.components = frozenset(components)
        self.cache_dir = Path(cache_dir or Path.home() / ".cache" / "mint").expanduser()
        self.ephemeral = ephemeral
        self.kafka_kind = kafka_kind or os.environ.get("MINT_KAFKA_KIND")
        self.timeout = timeout
        # polled while servers get ready: a stop requested meanwhile ends start() (StartCancelled)
        self.cancelled = cancelled or (lambda: False)
        self._lock = threading.RLock()
        self._dir_lock = DirectoryLock(self.data_dir / ".infra.lock", "EmbeddedInfra")
        self._running: list[Component] = []
        self._postgres: Postgres | None = None
        self._endpoints: InfraEndpoints | None = None

    @property
    def endpoints(self) -> InfraEndpoints:
        if self._endpoints is None:
            raise RuntimeError("EmbeddedInfra is not started")
        return self._endpoints

    @property
    def pids_file(self) -> Path:
        return self.data_dir / "pids.json"

    def pids(self) -> dict[str, int]:
        """Server process ids by component (the SMTP sink runs in-process and has none)."""
        out: dict[str, int] = {}
        for component in self._running:
            out.update(component.pids())
        return out

    def start(self) -> InfraEndpoints:
        with self._lock:
            if self._endpoints is not None:
                return self._endpoints
            (self.data_dir / "logs").mkdir(parents=True, exist_ok=True)
            self._take_dir_lock()
            try:
                return self._start()
            except BaseException:
                self.stop()
                raise

    def _take_dir_lock(self) -> None:
        dead_holder = self._dir_lock.acquire()
        if dead_holder is not None:
            log.warning(
                "took over the lock of %s left by pid %d, which no longer holds it",
                self.data_dir,
                dead_holder,
            )

    def _start(self) -> InfraEndpoints:
        kill_stale(self.pids_file)
        ports = PortBook(self.data_dir / "ports.json")
        d, eph = self.data_dir, self.ephemeral
        built: dict[str, Component] = {
            "postgres": Postgres(d, ports, ephemeral=eph),
            "redis": Redis(d, ports, ephemeral=eph),
            "kafka": make_kafka(self.kafka_kind, d, ports, self.cache_dir, ephemeral=eph),
            "s3": S3(d, ports, ephemeral=eph),
            "smtp": Smtp(d, ports),
        }
        chosen = [built[name] for name in START_ORDER if name in self.components]
        _run_all(chosen, lambda c: c.prepare())
        # Servers are spawned from this thread (see ManagedProcess.start), readiness in parallel.
        atexit.register(self.stop)
        if self.cancelled():
            raise StartCancelled("start cancelled: a stop was requested")
        for component in chosen:
            self._running.append(component)
            component.launch()
        record_processes(self.pids_file, self.pids())
        _run_all(chosen, lambda c: c.wait_ready(self.timeout), self.cancelled)

        pg = built["postgres"] if "postgres" in self.components else None
        self._postgres = pg if isinstance(pg, Postgres) else None
        database_urls = {name: self.create_database(name) for name in self.databases}
        redis, kafka, s3, smtp = (built[n] for n in ("redis", "kafka", "s3", "smtp"))
        assert isinstance(redis, Redis) and isinstance(kafka, ApacheKafka)
        assert isinstance(s3, S3) and isinstance(smtp, Smtp)
        has = self.components.__contains__
        self._endpoints = InfraEndpoints(
            postgres_admin_url=self._postgres.url("postgres") if self._postgres else "",
            database_urls=database_urls,
            redis_url=redis.url if has("redis") else "",
            kafka_bootstrap=kafka.bootstrap if has("kafka") else "",
            kafka_kind=kafka.kind if has("kafka") else "",
            s3_endpoint=s3.endpoint if has("s3") else "",
            s3_access_key=ACCESS_KEY,
            s3_secret_key=SECRET_KEY,
            s3_region=REGION,
            smtp_url=smtp.url if has("smtp") else "",
            mail_dir=smtp.mail_dir,
            pids=self.pids(),
        )
        return self._endpoints

    def create_database(self, name: str) -> str:
        """Create database `name` if missing; return its SQLAlchemy URL."""
        if self._postgres is None:
            raise RuntimeError("create_database needs a started postgres component")
        self._postgres.create_database(name)
        url = self._postgres.url(name)
        if self._endpoints is not None:
            self._endpoints.database_urls[name] = url
        return url

    def stop(self) -> None:
        """Stop every server (SIGTERM, then SIGKILL of its process group). Idempotent."""
        with self._lock:
            running, self._running = self._running, []
            try:
                if running:
                    _run_all(running, lambda c: c.stop())
                with contextlib.suppress(OSError):
                    self.pids_file.unlink()
            finally:
                self._endpoints = None
                self._postgres = None
                self._dir_lock.release()
                atexit.unregister(self.stop)

    def __enter__(self) -> EmbeddedInfra:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
