"""The HTTP side of a service: one FastAPI app built from its ``Service`` description."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mint.kit.bodies import BodyLimitMiddleware, BodyLimits
from mint.kit.errors import install_error_handlers
from mint.kit.openapi import install_problem_docs
from mint.kit.service import ServiceContext
from mint.kit.telemetry import HTTP_LATENCY, HTTP_REQUESTS, extract_context

UNPROBED = frozenset({"/healthz", "/readyz", "/metrics"})

# Where FastAPI keeps an included route's full template (see route_template); imported once,
# not on every request. Older FastAPI has none: its routes carry the full path.
_route_context: Callable[[Scope], Any] | None
try:
    from fastapi.routing import _get_scope_effective_route_context as _route_context
except ImportError:  # pragma: no cover
    _route_context = None


class TrailingSlashMiddleware:
    """``/api/v1/wallet/`` answers exactly like ``/api/v1/wallet`` — never a redirect."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if len(path) > 1 and path.endswith("/"):
                scope = dict(scope, path=path.rstrip("/") or "/")
                if scope.get("raw_path"):
                    scope["raw_path"] = scope["path"].encode()
        await self.app(scope, receive, send)


class TelemetryMiddleware:
    """A SERVER span per request (continuing an incoming ``traceparent``) plus request metrics."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.tracer = trace.get_tracer(f"mint.{service}.http")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNPROBED:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        method: str = scope["method"]
        status_holder = {"status": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
            await send(message)

        start = time.perf_counter()
        with self.tracer.start_as_current_span(
            f"{method} {scope['path']}", context=extract_context(headers), kind=SpanKind.SERVER
        ) as span:
            try:
                await self.app(scope, receive, send_wrapper)
            finally:
                template = route_template(scope)
                status = status_holder["status"]
                span.update_name(f"{method} {template}")
                span.set_attribute("http.request.method", method)
                span.set_attribute("http.route", template)
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
                HTTP_REQUESTS.labels(template, method, str(status)).inc()
                HTTP_LATENCY.labels(template, method).observe(time.perf_counter() - start)


def route_template(scope: Scope) -> str:
    """The matched route's path template, router prefix included (``/api/v1/wallet/{id}``), or
    ``unmatched``: a bounded label for metrics and span names, never the raw path.

    FastAPI ≥ 0.13x no longer copies an included router's routes with the prefix prepended (the
    route keeps its own path, e.g. ``""``); the full template is only in its per-request route
    context, which FastAPI's own telemetry reads — so does this, falling back to the route's
    path on versions without it."""
    context = _route_context(scope) if _route_context is not None else None
    if context is not None:
        template = getattr(context.starlette_route, "path_format", None) or context.path_format
        if template:
            return str(template)
    route = scope.get("route")
    return str(getattr(route, "path_format", None) or getattr(route, "path", None) or "unmatched")


def create_app(ctx: ServiceContext) -> FastAPI:
    service = ctx.service
    base = service.prefix or ""
    app = FastAPI(
        title=f"mint-{service.name}",
        version="1.0.0",
        openapi_url=f"{base}/openapi.json",
        docs_url=f"{base}/docs",
        redoc_url=None,
        redirect_slashes=False,
        # The kit traces and measures every request itself (TelemetryMiddleware: the same
        # spans and metrics in every service and the gateway); FastAPI's own instrumentation
        # would add a second server span and spans per dependency and serialization.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.ctx = ctx
    # Innermost (added first): a body it refuses is answered by it alone, and the
    # application's reaction to the refusal never reaches the error middleware as a bug.
    app.add_middleware(BodyLimitMiddleware, limits=BodyLimits.from_settings(ctx.settings))
    install_error_handlers(app)
    for router in service.routers:
        app.include_router(router, prefix=base)
    for router in service.root_routers:
        app.include_router(router)
    install_problem_docs(app)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        body = readiness(ctx)
        return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(TelemetryMiddleware, service=service.name)
    app.add_middleware(TrailingSlashMiddleware)
    return app


def readiness(ctx: ServiceContext) -> dict[str, Any]:
    checks: dict[str, str] = {}
    if ctx.db is not None:
        checks["database"] = "ok" if ctx.db.ping() else "down"
    checks_to_run = list(ctx.service.readiness_checks)
    if ctx.limits is not None:
        from mint.kit.limits import LIMITS_READINESS

        checks_to_run.append(LIMITS_READINESS)
    for name, check in checks_to_run:
        try:
            checks[name] = "ok" if check(ctx) else "down"
        except Exception:
            checks[name] = "down"
    body: dict[str, Any] = {
        "status": "ok" if all(v == "ok" for v in checks.values()) else "unavailable",
        "checks": checks,
    }
    if ctx.limits is not None:
        body["limits_version"] = ctx.limits.version
    return body
