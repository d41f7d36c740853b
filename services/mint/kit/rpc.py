"""Internal gRPC: servers with the internal-token check, tracing, health and reflection; clients
with deadlines, caller identity and trace context; status → problem+json mapping.

(Named ``rpc`` rather than ``grpc`` so that ``import grpc`` inside the kit is never ambiguous.)
"""

from __future__ import annotations

import hmac
import re
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from mint.kit.config import ConfigError, KitSettings
from mint.kit.domain import BY_KIND, DomainError, Kind, RateLimited, Unavailable
from mint.kit.errors import Problem, problem_from_error
from mint.kit.service import GrpcServicer, ServiceContext
from mint.kit.telemetry import GRPC_CALLS, GRPC_CLIENT_CALLS, extract_context, inject_context
from mint.kit.telemetry import tracer as get_tracer

log = structlog.get_logger("mint.rpc")

TOKEN_HEADER = "x-mint-internal-token"
SERVICE_HEADER = "x-mint-service"
#: Methods any caller may use without the internal token: health (kubelet and probes).
EXEMPT_PREFIXES: tuple[str, ...] = ("/grpc.health.v1.Health/",)
#: Reflection lists every internal method and message: exempt in ``MINT_ENVIRONMENT=dev`` only
#: (grpcurl on a laptop); elsewhere it needs the internal token like any internal call.
REFLECTION_PREFIX = "/grpc.reflection."

_SNAKE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
_BOUND_PORTS: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
T = TypeVar("T")


# ---- server ---------------------------------------------------------------------------------


#: The gRPC edge of the domain error model (mint.kit.domain): one status per kind.
GRPC_STATUS: dict[Kind, grpc.StatusCode] = {
    Kind.INVALID: grpc.StatusCode.INVALID_ARGUMENT,
    Kind.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Kind.REFUSED: grpc.StatusCode.FAILED_PRECONDITION,
    Kind.CONFLICT: grpc.StatusCode.ALREADY_EXISTS,
    Kind.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    Kind.FORBIDDEN: grpc.StatusCode.PERMISSION_DENIED,
    Kind.RATE_LIMITED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Kind.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
}


class _ServerInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """Internal-token check, a SERVER span continuing the caller's trace, call metrics.
    A :class:`DomainError` raised by a servicer becomes the status of its kind with ``code`` as
    details (NotFound → NOT_FOUND, Refused → FAILED_PRECONDITION, ...)."""

    def __init__(self, settings: KitSettings) -> None:
        self._token = settings.internal_token.encode()
        self._tracer = get_tracer("mint.rpc")
        self._exempt = exempt_prefixes(settings)

    def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = continuation(details)
        method: str = details.method
        if handler is None or method.startswith(self._exempt):
            return handler
        metadata = dict(details.invocation_metadata or ())
        presented = str(metadata.get(TOKEN_HEADER, "")).encode()
        if not self._token or not hmac.compare_digest(presented, self._token):
            log.warning("grpc_unauthenticated", method=method, caller=metadata.get(SERVICE_HEADER))
            GRPC_CALLS.labels(method, "UNAUTHENTICATED").inc()
            return _replace(handler, _refuse)
        return _replace(
            handler, lambda behavior, streaming: self._wrap(method, behavior, streaming)
        )

    def _wrap(self, method: str, behavior: Callable[..., Any], streaming: bool) -> Any:
        def run(request: Any, context: Any) -> Any:
            metadata = dict(context.invocation_metadata() or ())
            carrier = {k: str(metadata[k]) for k in ("traceparent", "tracestate") if k in metadata}
            service, _, name = method.lstrip("/").rpartition("/")
            span = self._tracer.start_span(
                method.lstrip("/"),
                context=extract_context(carrier),
                kind=SpanKind.SERVER,
                attributes={
                    "rpc.system": "grpc",
                    "rpc.service": service,
                    "rpc.method": name,
                    "mint.caller": str(metadata.get(SERVICE_HEADER, "")),
                },
            )
            if not streaming:
                with trace.use_span(span, end_on_exit=False):
                    return self._call(method, span, behavior, request, context)
            return self._stream(method, span, behavior, request, context)

        return run

    def _call(self, method: str, span: Any, behavior: Any, request: Any, context: Any) -> Any:
        try:
            result = behavior(request, context)
        except BaseException as exc:
            self._finish(method, span, context, exc)
            raise
        self._finish(method, span, context, None)
        return result

    def _stream(
        self, method: str, span: Any, behavior: Any, request: Any, context: Any
    ) -> Iterator[Any]:
        try:
            with trace.use_span(span, end_on_exit=False):
                yield from behavior(request, context)
        except BaseException as exc:
            self._finish(method, span, context, exc)
            raise
        self._finish(method, span, context, None)

    @staticmethod
    def _finish(method: str, span: Any, context: Any, exc: BaseException | None) -> None:
        if isinstance(exc, DomainError):
            status = GRPC_STATUS[exc.kind]
            span.set_attribute("mint.error_code", exc.code)
            span.end()
            GRPC_CALLS.labels(method, status.name).inc()
            log.info("grpc_refused", method=method, code=exc.code)
            context.abort(status, exc.code)  # raises
        code = context.code()
        if code is None:
            code = grpc.StatusCode.OK if exc is None else grpc.StatusCode.UNKNOWN
        if exc is not None and context.code() is None:
            log.exception("grpc_unhandled_error", method=method)
            span.record_exception(exc)
        span.set_attribute("rpc.grpc.status_code", code.value[0])
        if code != grpc.StatusCode.OK:
            span.set_status(Status(StatusCode.ERROR, code.name))
        span.end()
        GRPC_CALLS.labels(method, code.name).inc()


def exempt_prefixes(settings: KitSettings) -> tuple[str, ...]:
    """The method prefixes callable without the internal token under ``settings``."""
    dev = settings.environment == "dev"
    return (*EXEMPT_PREFIXES, REFLECTION_PREFIX) if dev else EXEMPT_PREFIXES


def _refuse(behavior: Callable[..., Any], streaming: bool) -> Callable[..., Any]:
    def refuse(request: Any, context: Any) -> Any:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid internal token")

    return refuse


def _replace(handler: Any, wrap: Callable[[Callable[..., Any], bool], Callable[..., Any]]) -> Any:
    """A handler of the same kind as ``handler`` whose behaviour is ``wrap(behaviour)``."""
    kinds = (
        ("unary_unary", grpc.unary_unary_rpc_method_handler, False),
        ("unary_stream", grpc.unary_stream_rpc_method_handler, True),
        ("stream_unary", grpc.stream_unary_rpc_method_handler, False),
        ("stream_stream", grpc.stream_stream_rpc_method_handler, True),
    )
    for attr, factory, streaming in kinds:
        behavior = getattr(handler, attr)
        if behavior is not None:
            return factory(
                wrap(behavior, streaming),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
    return handler


def serve_grpc(
    ctx: ServiceContext,
    servicers: Sequence[GrpcServicer],
    port: int,
    *,
    host: str | None = None,
    max_workers: int = 16,
) -> Any:
    """Start and return a ``grpc.Server`` on ``host:port`` (``host`` defaults to
    ``MINT_GRPC_HOST``; ``port`` 0 = any free port, see :func:`bound_port`) serving
    ``servicers`` plus health (SERVING for each service and ``""``) and reflection. Every call
    needs the internal token except health (and reflection in ``MINT_ENVIRONMENT=dev``).

    Raises :class:`ConfigError` (naming ``MINT_INTERNAL_TOKEN``) when the token is empty: a
    server that could only refuse every call must not look started."""
    settings = ctx.settings
    if not settings.internal_token.strip():
        raise ConfigError(
            "MINT_INTERNAL_TOKEN is empty: the gRPC server does not start without the internal "
            "token every call must carry (set it to the same secret in every service)"
        )
    host = settings.grpc_host if host is None else host
    server = grpc.server(
        ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc"),
        interceptors=[_ServerInterceptor(settings)],
    )
    names = []
    for servicer in servicers:
        servicer.add_to_server(servicer.factory(ctx), server)
        names.append(servicer.full_name)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ["", *names]:
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        [*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server
    )
    bound: int = server.add_insecure_port(f"{host}:{port}")
    if not bound:
        raise RuntimeError(f"gRPC: cannot bind {host}:{port}")
    server.start()
    _BOUND_PORTS[server] = bound
    log.info("grpc_server_started", host=host, port=bound, services=names)
    return server


def bound_port(server: Any) -> int:
    """The port a server from :func:`serve_grpc` listens on (useful with ``port=0``)."""
    return _BOUND_PORTS[server]


# ---- client ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _CallDetails:
    method: str
    timeout: float | None
    metadata: Sequence[tuple[str, str | bytes]] | None
    credentials: Any
    wait_for_ready: bool | None
    compression: Any


class _ClientInterceptor(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[misc]
    grpc.UnaryStreamClientInterceptor,  # type: ignore[misc]
    grpc.StreamUnaryClientInterceptor,  # type: ignore[misc]
    grpc.StreamStreamClientInterceptor,  # type: ignore[misc]
):
    """Deadline, ``x-mint-service`` / ``x-mint-internal-token`` / trace context, CLIENT span."""

    def __init__(self, settings: KitSettings, target_service: str) -> None:
        self._service = settings.service_name
        self._token = settings.internal_token
        self._deadline = settings.grpc_deadline_seconds
        self._target = target_service
        self._tracer = get_tracer("mint.rpc")

    def _intercept(self, continuation: Any, details: Any, request: Any) -> Any:
        method: str = details.method
        service, _, name = method.lstrip("/").rpartition("/")
        span = self._tracer.start_span(
            method.lstrip("/"),
            kind=SpanKind.CLIENT,
            attributes={
                "rpc.system": "grpc",
                "rpc.service": service,
                "rpc.method": name,
                "mint.target": self._target,
            },
        )
        with trace.use_span(span, end_on_exit=False):
            carrier = inject_context({})
        metadata = [
            (k, v)
            for k, v in (details.metadata or ())
            if k not in (SERVICE_HEADER, TOKEN_HEADER, "traceparent", "tracestate")
        ]
        metadata += [(SERVICE_HEADER, self._service), (TOKEN_HEADER, self._token)]
        metadata += list(carrier.items())
        new_details = _CallDetails(
            method=method,
            timeout=details.timeout if details.timeout is not None else self._deadline,
            metadata=metadata,
            credentials=details.credentials,
            wait_for_ready=details.wait_for_ready,
            compression=getattr(details, "compression", None),
        )
        try:
            outcome = continuation(new_details, request)
        except BaseException as exc:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            span.end()
            GRPC_CLIENT_CALLS.labels(self._target, "UNKNOWN").inc()
            raise
        outcome.add_done_callback(lambda call: self._done(span, call))
        return outcome

    def _done(self, span: Any, call: Any) -> None:
        try:
            code = call.code() or grpc.StatusCode.UNKNOWN
        except Exception:
            code = grpc.StatusCode.UNKNOWN
        span.set_attribute("rpc.grpc.status_code", code.value[0])
        if code != grpc.StatusCode.OK:
            span.set_status(Status(StatusCode.ERROR, code.name))
        span.end()
        GRPC_CLIENT_CALLS.labels(self._target, code.name).inc()

    # Every kind of call (unary / streaming request and response) is intercepted the same way.
    intercept_unary_unary = intercept_unary_stream = _intercept
    intercept_stream_unary = intercept_stream_stream = _intercept


_CHANNELS: dict[str, Any] = {}
_INTERCEPTED: dict[tuple[str, str, str, str, float], Any] = {}
_CHANNEL_LOCK = threading.Lock()
_CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.max_pings_without_data", 0),
]


def grpc_client(
    ctx_or_settings: ServiceContext | KitSettings,
    target_service: str,
    stub_cls: Callable[[Any], T],
    *,
    target: str | None = None,
) -> T:
    """A stub for ``target_service`` (address from setting ``<target_service>_grpc`` unless
    ``target`` is given). Every call gets the default deadline (``timeout=`` overrides), the
    caller identity and internal token, and trace context inside a CLIENT span. One channel per
    address per process."""
    settings = (
        ctx_or_settings.settings if isinstance(ctx_or_settings, ServiceContext) else ctx_or_settings
    )
    address = target or getattr(settings, f"{target_service}_grpc", None)
    if not address:
        raise ValueError(
            f"no gRPC address for {target_service!r} (MINT_{target_service.upper()}_GRPC)"
        )
    key = (
        str(address),
        target_service,
        settings.service_name,
        settings.internal_token,
        settings.grpc_deadline_seconds,
    )
    with _CHANNEL_LOCK:
        channel = _INTERCEPTED.get(key)
        if channel is None:
            raw = _CHANNELS.get(str(address))
            if raw is None:
                raw = grpc.insecure_channel(str(address), options=_CHANNEL_OPTIONS)
                _CHANNELS[str(address)] = raw
            channel = grpc.intercept_channel(raw, _ClientInterceptor(settings, target_service))
            _INTERCEPTED[key] = channel
    return stub_cls(channel)


def close_channels() -> None:
    """Close every cached channel (tests, shutdown)."""
    with _CHANNEL_LOCK:
        for channel in _CHANNELS.values():
            channel.close()
        _CHANNELS.clear()
        _INTERCEPTED.clear()


# ---- errors ---------------------------------------------------------------------------------

#: status → (kind, the code when the details carry none)
_FROM_STATUS: dict[str, tuple[Kind, str]] = {
    "NOT_FOUND": (Kind.NOT_FOUND, "not_found"),
    "FAILED_PRECONDITION": (Kind.REFUSED, "failed_precondition"),
    "INVALID_ARGUMENT": (Kind.INVALID, "validation_error"),
    "OUT_OF_RANGE": (Kind.INVALID, "validation_error"),
    "PERMISSION_DENIED": (Kind.FORBIDDEN, "forbidden"),
    "ALREADY_EXISTS": (Kind.CONFLICT, "already_exists"),
    "ABORTED": (Kind.CONFLICT, "conflict"),
    "RESOURCE_EXHAUSTED": (Kind.RATE_LIMITED, "rate_limited"),
    "UNAVAILABLE": (Kind.UNAVAILABLE, "dependency_unavailable"),
    "DEADLINE_EXCEEDED": (Kind.UNAVAILABLE, "dependency_unavailable"),
    "CANCELLED": (Kind.UNAVAILABLE, "dependency_unavailable"),
}


class RpcFailed(Exception):
    """A call that failed for a reason the caller cannot own (UNAUTHENTICATED: a misconfigured
    token, INTERNAL, UNKNOWN, …): answered as a 500, details never shown."""

    def __init__(self, status: str, details: str) -> None:
        super().__init__(f"{status}: {details}")
        self.status = status
        self.details = details


def error_from_rpc(err: grpc.RpcError) -> DomainError | RpcFailed:
    """The callee's :class:`DomainError`, rebuilt from a failed call (conventions.md "gRPC"):
    the status gives the kind, a snake_case details string (``insufficient_funds``) — or the
    part before ``": "`` in ``"code: human text"`` — the code. UNAVAILABLE, DEADLINE_EXCEEDED
    and CANCELLED are :class:`Unavailable`; a status with no kind is :class:`RpcFailed`."""
    try:
        status = err.code()
        details = err.details() or ""
    except Exception:
        status, details = grpc.StatusCode.UNKNOWN, str(err)
    name = getattr(status, "name", "UNKNOWN")
    known = _FROM_STATUS.get(name)
    if known is None:
        log.error("grpc_call_failed", status=name, details=details)
        return RpcFailed(name, details)
    kind, default_code = known
    if kind is Kind.UNAVAILABLE:
        return Unavailable()
    head, sep, rest = details.partition(": ")
    if _SNAKE.fullmatch(details):
        code, detail = details, ""
    elif sep and _SNAKE.fullmatch(head):
        code, detail = head, rest
    else:
        code = default_code
        detail = details or code.replace("_", " ")
    if kind is Kind.RATE_LIMITED:
        return RateLimited(code, detail, retry_after=1)
    return BY_KIND[kind](code, detail)


def problem_from_rpc_error(err: grpc.RpcError) -> Problem:
    """The HTTP answer to a failed call (for API code calling another service directly)."""
    error = error_from_rpc(err)
    if isinstance(error, RpcFailed):
        return Problem(500, "internal_error", "internal server error")
    return problem_from_error(error)
