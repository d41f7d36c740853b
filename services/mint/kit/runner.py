"""``mint serve <name>``: run one service — HTTP, gRPC, outbox relay, consumers and jobs — in
this process, from its ``Service`` description alone."""

from __future__ import annotations

import importlib
import threading
import zlib
from collections.abc import Callable
from typing import Any

import structlog
import uvicorn
from sqlalchemy import text

from mint.kit.config import GRPC_PORTS, HTTP_PORTS, SERVICE_NAMES
from mint.kit.db import run_migrations
from mint.kit.service import Job, Service, ServiceContext, build_context
from mint.kit.telemetry import configure_logging, configure_tracing

log = structlog.get_logger("mint.runner")


def load_service(name: str) -> Service:
    if name not in SERVICE_NAMES:
        raise SystemExit(f"unknown service {name!r}; one of: {', '.join(SERVICE_NAMES)}")
    try:
        module = importlib.import_module(f"mint.{name}.service")
    except ModuleNotFoundError as exc:
        if exc.name in (f"mint.{name}", f"mint.{name}.service"):
            raise SystemExit(f"service {name!r} is not implemented yet") from None
        raise
    service: Service = module.SERVICE
    return service


def implemented_services() -> list[str]:
    found = []
    for name in SERVICE_NAMES:
        try:
            importlib.import_module(f"mint.{name}.service")
        except ModuleNotFoundError as exc:
            if exc.name in (f"mint.{name}", f"mint.{name}.service"):
                continue
            raise
        found.append(name)
    return found


def migrate(ctx: ServiceContext) -> None:
    if ctx.db is not None and ctx.service.migrations_dir is not None:
        run_migrations(ctx.settings.database_url, ctx.service.migrations_dir)


def _loop(name: str, stop: threading.Event, body: Callable[[threading.Event], None]) -> None:
    """Run a worker; a crash is logged and the worker restarted after a pause."""
    while not stop.is_set():
        try:
            body(stop)
            return
        except Exception:
            log.exception("worker_crashed", worker=name)
            stop.wait(2.0)


def _job_body(ctx: ServiceContext, job: Job) -> Callable[[threading.Event], None]:
    lock_key = zlib.crc32(f"mint.job.{ctx.service.name}.{job.name}".encode()) & 0x7FFFFFFF

    def body(stop: threading.Event) -> None:
        while not stop.wait(job.interval_seconds):
            if job.singleton and ctx.db is not None:
                # One active replica: hold a session-level advisory lock while running.
                with ctx.db.engine.connect() as conn:
                    got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": lock_key})
                    if not got.scalar():
                        continue
                    try:
                        job.run(ctx)
                    finally:
                        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": lock_key})
                        conn.commit()
            else:
                job.run(ctx)

    return body


class ServiceProcess:
    """Everything one service runs besides its HTTP server; started and stopped together."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []
        self.grpc_server: Any = None

    def start(self) -> None:
        ctx, service = self.ctx, self.ctx.service
        if ctx.limits is not None:
            ctx.limits.start()  # watch the limits file (applied live, never by restart)
        for hook in service.on_startup:
            hook(ctx)
        if service.grpc_servicers:
            from mint.kit.rpc import serve_grpc

            port = ctx.settings.grpc_port or GRPC_PORTS[service.name]
            host = ctx.settings.grpc_host  # MINT_GRPC_HOST: loopback under the dev runner
            self.grpc_server = serve_grpc(ctx, service.grpc_servicers, port, host=host)
        workers: list[tuple[str, Callable[[threading.Event], None]]] = []
        if service.produces_events:
            from mint.kit.events import OutboxRelay

            workers.append(("outbox-relay", OutboxRelay(ctx.database(), ctx.settings).run))
        for spec in service.consumer_specs(ctx):
            from mint.kit.events import ConsumerRunner

            runner = ConsumerRunner(
                spec, db=ctx.database(), settings=ctx.settings, service=service.name
            )
            workers.append((f"consumer-{spec.group}", runner.run))
        for job in service.jobs:
            workers.append((f"job-{job.name}", _job_body(ctx, job)))
        for name, body in workers:
            t = threading.Thread(
                target=_loop, args=(name, self.stop_event, body), name=name, daemon=True
            )
            t.start()
            self.threads.append(t)

    def stop(self) -> None:
        self.stop_event.set()
        if self.ctx.limits is not None:
            self.ctx.limits.stop()
        if self.grpc_server is not None:
            self.grpc_server.stop(grace=2).wait(5)
        for t in self.threads:
            t.join(timeout=10)
        if self.ctx.db is not None:
            self.ctx.db.dispose()


def serve(name: str) -> None:
    service = load_service(name)
    ctx = build_context(service)
    configure_logging(service.name, ctx.settings.log_level)
    configure_tracing(
        service.name,
        ctx.settings.trace_file,
        ctx.settings.otel_exporter_otlp_endpoint,
        ctx.settings.trace_sample_ratio,
    )
    migrate(ctx)
    from mint.kit.http import create_app

    app = create_app(ctx)
    proc = ServiceProcess(ctx)
    proc.start()
    port = ctx.settings.http_port or HTTP_PORTS[service.name]
    log.info("service_starting", http_port=port, grpc_port=ctx.settings.grpc_port or None)
    try:
        uvicorn.run(
            app,
            host=ctx.settings.http_host,
            port=port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=5,
            # The socket peer stays the peer; X-Forwarded-For is read by one function of the
            # kit (security.client_ip) against MINT_TRUSTED_PROXIES, not by uvicorn.
            proxy_headers=False,
        )
    finally:
        proc.stop()
        log.info("service_stopped")
