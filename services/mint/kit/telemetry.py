"""Tracing (OpenTelemetry), JSON logs with trace ids (structlog), Prometheus metrics."""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import MutableMapping, Sequence
from pathlib import Path
from typing import Any

import structlog
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased, TraceIdRatioBased
from prometheus_client import Counter, Gauge, Histogram

_configured = False

# Metrics shared by every service (labels keep them per route / method / topic).
HTTP_REQUESTS = Counter("mint_http_requests_total", "HTTP requests", ["route", "method", "status"])
HTTP_LATENCY = Histogram("mint_http_request_seconds", "HTTP request latency", ["route", "method"])
GRPC_CALLS = Counter("mint_grpc_calls_total", "gRPC calls handled", ["method", "code"])
GRPC_CLIENT_CALLS = Counter("mint_grpc_client_calls_total", "gRPC calls made", ["target", "code"])
CONSUMER_PROCESSED = Counter(
    "mint_consumer_processed_total", "events processed", ["group", "topic"]
)
CONSUMER_FAILED = Counter(
    "mint_consumer_failed_total", "event processing failures", ["group", "topic"]
)
CONSUMER_DLQ = Counter(
    "mint_consumer_dead_lettered_total", "events sent to a DLQ", ["group", "topic"]
)
CONSUMER_LAG = Gauge(
    "mint_consumer_lag", "consumer lag (messages)", ["group", "topic", "partition"]
)
OUTBOX_BACKLOG = Gauge("mint_outbox_backlog", "outbox rows not yet published")
OUTBOX_PUBLISHED = Counter("mint_outbox_published_total", "outbox rows published", ["topic"])
OUTBOX_PUBLISH_FAILURES = Counter(
    "mint_outbox_publish_failures_total",
    "outbox rows refused or not delivered while the cluster was reachable",
    ["topic"],
)
OUTBOX_PARKED = Gauge(
    "mint_outbox_parked", "outbox rows set aside after failing to publish (`mint outbox requeue`)"
)
OUTBOX_ROWS_PARKED = Counter(
    "mint_outbox_rows_parked_total", "outbox rows set aside after failing to publish", ["topic"]
)
OUTBOX_STUCK = Gauge(
    "mint_outbox_stuck", "outbox rows (not parked) unpublished past MINT_OUTBOX_STUCK_SECONDS"
)
LIMITS_VERSION = Gauge("mint_limits_version_info", "applied limits version", ["version"])


class JsonLinesSpanExporter(SpanExporter):
    """Appends each finished span as one JSON line (``MINT_TRACE_FILE``, used by tests)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = []
        for span in spans:
            ctx = span.get_span_context()
            parent = span.parent
            lines.append(
                json.dumps(
                    {
                        "name": span.name,
                        "trace_id": format(ctx.trace_id, "032x") if ctx else None,
                        "span_id": format(ctx.span_id, "016x") if ctx else None,
                        "parent_id": format(parent.span_id, "016x") if parent else None,
                        "kind": span.kind.name,
                        "service": span.resource.attributes.get("service.name"),
                        "start": span.start_time,
                        "end": span.end_time,
                        "status": span.status.status_code.name,
                        "attributes": {k: _jsonable(v) for k, v in (span.attributes or {}).items()},
                    }
                )
            )
        with self._lock, self._path.open("a", encoding="utf-8") as fh:
            fh.write("".join(line + "\n" for line in lines))
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def _jsonable(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return list(value) if isinstance(value, tuple | list) else str(value)


def _add_trace_ids(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    ctx = trace.get_current_span().get_span_context()
    if ctx and ctx.is_valid:
        event_dict["trace_id"] = format(ctx.trace_id, "032x")
        event_dict["span_id"] = format(ctx.span_id, "016x")
    return event_dict


def configure_logging(service: str, level: str = "INFO") -> None:
    """JSON lines on stdout with ``service``, ``level``, ``event``, ``trace_id``, ``span_id``."""
    logging.basicConfig(stream=sys.stdout, level=level.upper(), format="%(message)s", force=True)
    for noisy in ("uvicorn.access", "kafka", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _add_trace_ids,
            structlog.processors.format_exc_info,
            structlog.processors.EventRenamer("event"),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)


def configure_tracing(
    service: str,
    trace_file: Path | None = None,
    otlp_endpoint: str | None = None,
    sample_ratio: float = 1.0,
    *,
    recorded: bool = False,
) -> TracerProvider:
    """Install the global tracer provider once per process. ``recorded``: spans are sampled
    even with no exporter here (the caller adds its own span processor — tests)."""
    global _configured
    current = trace.get_tracer_provider()
    if _configured and isinstance(current, TracerProvider):
        return current
    # With nowhere to export, spans are not recorded at all (ALWAYS_OFF): they still carry
    # trace ids for the logs and the traceparent sent on, without the cost of their attributes.
    exporting = recorded or trace_file is not None or bool(otlp_endpoint)
    provider = TracerProvider(
        resource=Resource.create({"service.name": f"mint-{service}"}),
        sampler=ParentBased(TraceIdRatioBased(sample_ratio)) if exporting else ALWAYS_OFF,
    )
    if trace_file is not None:
        provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(trace_file)))
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
    trace.set_tracer_provider(provider)
    _configured = True
    return provider


def tracer(name: str = "mint") -> trace.Tracer:
    return trace.get_tracer(name)


def inject_context(carrier: dict[str, str]) -> dict[str, str]:
    """Write ``traceparent`` / ``tracestate`` of the current span into ``carrier``."""
    propagate.inject(carrier)
    return carrier


def extract_context(carrier: dict[str, str]) -> Any:
    return propagate.extract(carrier)
