"""mint.kit.rpc with a real gRPC server and client: internal token (required to start), deadlines,
trace context, health, reflection (behind the token outside dev), the bind host and the status →
problem mapping."""

from __future__ import annotations

import importlib
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY

from mint.kit.config import ConfigError, KitSettings
from mint.kit.domain import NotFound, RateLimited, Refused
from mint.kit.rpc import (
    RpcFailed,
    bound_port,
    error_from_rpc,
    grpc_client,
    problem_from_rpc_error,
    serve_grpc,
)
from mint.kit.runner import ServiceProcess
from mint.kit.service import GrpcServicer, Service, ServiceContext
from mint.kit.telemetry import configure_tracing, tracer

TOKEN = "test-internal-token"
WALLET_SERVICE = "mint.wallet.v1.WalletService"


def _stubs() -> tuple[ModuleType, ModuleType]:
    """The generated wallet stubs (gitignored): generate them if this checkout has none."""
    try:
        return (
            importlib.import_module("mint.wallet.v1.wallet_pb2"),
            importlib.import_module("mint.wallet.v1.wallet_pb2_grpc"),
        )
    except ImportError:
        subprocess.run([sys.executable, "-m", "mint.protogen"], check=True)
        importlib.invalidate_caches()
        return (
            importlib.import_module("mint.wallet.v1.wallet_pb2"),
            importlib.import_module("mint.wallet.v1.wallet_pb2_grpc"),
        )


pb2, pb2_grpc = _stubs()


class FakeWallet(pb2_grpc.WalletServiceServicer):  # type: ignore[misc,name-defined]
    """GetWallet only; the user id picks the behaviour."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def GetWallet(self, request: Any, context: Any) -> Any:
        span = trace.get_current_span().get_span_context()
        with self.lock:
            self.seen.append(
                {
                    "metadata": dict(context.invocation_metadata()),
                    "trace_id": span.trace_id,
                    # seconds left of the caller's deadline as the server got the call (None:
                    # no deadline), read from the grpc-timeout it carried
                    "time_remaining": context.time_remaining(),
                    "user_id": request.user_id,
                }
            )
        if request.user_id == "missing":
            context.abort(grpc.StatusCode.NOT_FOUND, "wallet_not_found")
        if request.user_id == "broke":
            raise Refused("insufficient_funds", "not enough money", available=3)
        if request.user_id == "crash":
            raise RuntimeError("bug")
        if request.user_id == "silent":
            # Never answers on its own: only the caller's deadline ends the call (bounded, so
            # a client without one fails the test instead of hanging it).
            ended = threading.Event()
            context.add_callback(ended.set)
            ended.wait(timeout=30)
        return pb2.Wallet(id="w-1", user_id=request.user_id, currency="USD", balance=100)


def settings_for(port: int, **extra: Any) -> KitSettings:
    values: dict[str, Any] = {
        "service_name": "rpctest",
        "environment": "test",
        "internal_token": TOKEN,
        "wallet_grpc": f"127.0.0.1:{port}",
    }
    values.update(extra)
    return KitSettings(**values)


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = configure_tracing("rpctest", recorded=True)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


@pytest.fixture(scope="module")
def wallet(spans: InMemorySpanExporter) -> Iterator[tuple[FakeWallet, int]]:
    fake = FakeWallet()
    ctx = ServiceContext(
        service=Service(name="wallet", prefix=None),
        settings=KitSettings(service_name="wallet", environment="test", internal_token=TOKEN),
        db=None,
    )
    servicer = GrpcServicer(
        pb2_grpc.add_WalletServiceServicer_to_server, lambda _: fake, WALLET_SERVICE
    )
    server = serve_grpc(ctx, [servicer], 0, host="127.0.0.1")
    yield fake, bound_port(server)
    server.stop(grace=None)


def raw_stub(port: int) -> Any:
    return pb2_grpc.WalletServiceStub(grpc.insecure_channel(f"127.0.0.1:{port}"))


def test_call_without_or_with_a_wrong_token_is_unauthenticated(
    wallet: tuple[FakeWallet, int],
) -> None:
    fake, port = wallet
    before = len(fake.seen)
    stub = raw_stub(port)
    for metadata in ([], [("x-mint-internal-token", "wrong")], [("x-mint-service", "auth")]):
        with pytest.raises(grpc.RpcError) as info:
            stub.GetWallet(pb2.GetWalletRequest(user_id="u1"), metadata=metadata, timeout=5)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert len(fake.seen) == before, "the servicer never ran"
    assert problem_from_rpc_error(info.value).status == 500  # a deployment bug, not the user's
    ok = stub.GetWallet(
        pb2.GetWalletRequest(user_id="u1"), metadata=[("x-mint-internal-token", TOKEN)], timeout=5
    )
    assert ok.id == "w-1"


def test_kit_client_sends_identity_token_and_gets_an_answer(wallet: tuple[FakeWallet, int]) -> None:
    fake, port = wallet
    stub = grpc_client(settings_for(port), "wallet", pb2_grpc.WalletServiceStub)
    result = stub.GetWallet(pb2.GetWalletRequest(user_id="u2"))
    assert (result.user_id, result.balance, result.currency) == ("u2", 100, "USD")
    metadata = fake.seen[-1]["metadata"]
    assert metadata["x-mint-service"] == "rpctest"
    assert metadata["x-mint-internal-token"] == TOKEN
    assert "traceparent" in metadata
    ok = REGISTRY.get_sample_value(
        "mint_grpc_calls_total", {"method": f"/{WALLET_SERVICE}/GetWallet", "code": "OK"}
    )
    assert ok is not None and ok >= 1
    future = stub.GetWallet.future(pb2.GetWalletRequest(user_id="u3"))
    assert future.result(timeout=5).user_id == "u3"


def list_services(channel: Any, metadata: list[tuple[str, str]] | None = None) -> set[str]:
    """The service names reflection lists on ``channel`` (raises the call's RpcError)."""
    reflect = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    (response,) = list(reflect.ServerReflectionInfo(iter([request]), metadata=metadata, timeout=5))
    return {s.name for s in response.list_services_response.service}


def test_health_needs_no_token_and_reflection_needs_it_outside_dev(
    wallet: tuple[FakeWallet, int],
) -> None:
    _, port = wallet  # environment "test": not dev
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    health = health_pb2_grpc.HealthStub(channel)
    for name in ("", WALLET_SERVICE):
        answer = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
    for metadata in (None, [("x-mint-internal-token", "wrong")]):
        with pytest.raises(grpc.RpcError) as info:
            list_services(channel, metadata)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    names = list_services(channel, [("x-mint-internal-token", TOKEN)])
    assert {WALLET_SERVICE, "grpc.health.v1.Health"} <= names


def wallet_servicer(fake: FakeWallet, built: list[str] | None = None) -> GrpcServicer:
    def factory(_: ServiceContext) -> FakeWallet:
        if built is not None:
            built.append("wallet")
        return fake

    return GrpcServicer(pb2_grpc.add_WalletServiceServicer_to_server, factory, WALLET_SERVICE)


def test_reflection_needs_no_token_in_dev_but_services_still_do() -> None:
    fake = FakeWallet()
    settings = KitSettings(service_name="wallet", environment="dev", internal_token=TOKEN)
    ctx = ServiceContext(service=Service(name="wallet", prefix=None), settings=settings, db=None)
    server = serve_grpc(ctx, [wallet_servicer(fake)], 0, host="127.0.0.1")
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{bound_port(server)}")
        assert WALLET_SERVICE in list_services(channel)
        with pytest.raises(grpc.RpcError) as info:
            raw_stub(bound_port(server)).GetWallet(pb2.GetWalletRequest(user_id="u"), timeout=5)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert fake.seen == []
    finally:
        server.stop(grace=None)


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def can_bind(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


@pytest.mark.parametrize("token", ["", "   "])
def test_serve_grpc_refuses_to_start_without_an_internal_token(token: str) -> None:
    built: list[str] = []
    settings = KitSettings(service_name="wallet", environment="test", internal_token=token)
    ctx = ServiceContext(service=Service(name="wallet", prefix=None), settings=settings, db=None)
    port = free_tcp_port()
    with pytest.raises(ConfigError) as info:
        serve_grpc(ctx, [wallet_servicer(FakeWallet(), built)], port, host="127.0.0.1")
    assert "MINT_INTERNAL_TOKEN" in str(info.value)
    assert built == [], "no servicer was built"
    assert can_bind("127.0.0.1", port), "nothing listens on the port"


@pytest.mark.parametrize(("grpc_host", "wildcard"), [("127.0.0.1", False), ("[::]", True)])
def test_the_runner_binds_grpc_on_mint_grpc_host(grpc_host: str, wildcard: bool) -> None:
    """``MINT_GRPC_HOST`` read by the runner: bound to 127.0.0.1 only, another loopback address
    (127.0.0.2) keeps the port free; on every interface it does not."""
    port = free_tcp_port()
    settings = KitSettings(
        service_name="rpctest",
        environment="test",
        internal_token=TOKEN,
        grpc_port=port,
        grpc_host=grpc_host,
    )
    service = Service(name="rpctest", prefix=None, grpc_servicers=[wallet_servicer(FakeWallet())])
    process = ServiceProcess(ServiceContext(service=service, settings=settings, db=None))
    process.start()
    try:
        assert bound_port(process.grpc_server) == port
        stub = grpc_client(settings_for(port), "wallet", pb2_grpc.WalletServiceStub)
        assert stub.GetWallet(pb2.GetWalletRequest(user_id="bound")).id == "w-1"
        assert can_bind("127.0.0.2", port) is not wildcard
    finally:
        process.stop()


def test_deadline_is_applied_and_maps_to_503(wallet: tuple[FakeWallet, int]) -> None:
    """The deadline is asserted by what the server saw (the call's remaining time), never by
    the wall clock of the client."""
    fake, port = wallet
    stub = grpc_client(
        settings_for(port, grpc_deadline_seconds=0.2), "wallet", pb2_grpc.WalletServiceStub
    )

    def seen_by_server(user_id: str) -> float | None:
        remaining: float | None = [s for s in fake.seen if s["user_id"] == user_id][-1][
            "time_remaining"
        ]
        return remaining

    with pytest.raises(grpc.RpcError) as info:
        stub.GetWallet(pb2.GetWalletRequest(user_id="silent"))
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    problem = problem_from_rpc_error(info.value)
    assert (problem.status, problem.code) == (503, "dependency_unavailable")
    # the call carried the configured deadline (0.2 s; the kit's default would be 2 s). The
    # server's reading of it is approximate (the header's encoding, the clocks): compare
    # with margins that only tell one deadline from another.
    remaining = seen_by_server("silent")
    assert remaining is not None and remaining < 0.5, remaining
    # An explicit timeout= wins over the default: the server got far more than 0.2 s.
    assert stub.GetWallet(pb2.GetWalletRequest(user_id="patient"), timeout=30).id == "w-1"
    remaining = seen_by_server("patient")
    assert remaining is not None and remaining > 5, remaining


def test_trace_context_propagates_to_the_server(
    wallet: tuple[FakeWallet, int], spans: InMemorySpanExporter
) -> None:
    fake, port = wallet
    stub = grpc_client(settings_for(port), "wallet", pb2_grpc.WalletServiceStub)
    with tracer("test").start_as_current_span("http GET /api/v1/things") as root:
        stub.GetWallet(pb2.GetWalletRequest(user_id="traced"))
    trace_id = root.get_span_context().trace_id
    assert fake.seen[-1]["trace_id"] == trace_id
    mine = [s for s in spans.get_finished_spans() if s.context.trace_id == trace_id]
    client = next(s for s in mine if s.kind == trace.SpanKind.CLIENT)
    server = next(s for s in mine if s.kind == trace.SpanKind.SERVER)
    assert client.parent is not None and client.parent.span_id == root.get_span_context().span_id
    assert server.parent is not None and server.parent.span_id == client.context.span_id
    assert server.attributes is not None and server.attributes["mint.caller"] == "rpctest"


@pytest.mark.parametrize(
    ("user_id", "grpc_code", "status", "code"),
    [
        ("missing", grpc.StatusCode.NOT_FOUND, 404, "wallet_not_found"),
        ("broke", grpc.StatusCode.FAILED_PRECONDITION, 422, "insufficient_funds"),
        ("crash", grpc.StatusCode.UNKNOWN, 500, "internal_error"),
    ],
)
def test_server_errors_map_to_problems(
    wallet: tuple[FakeWallet, int], user_id: str, grpc_code: Any, status: int, code: str
) -> None:
    _, port = wallet
    stub = grpc_client(settings_for(port), "wallet", pb2_grpc.WalletServiceStub)
    with pytest.raises(grpc.RpcError) as info:
        stub.GetWallet(pb2.GetWalletRequest(user_id=user_id))
    assert info.value.code() == grpc_code
    problem = problem_from_rpc_error(info.value)
    assert (problem.status, problem.code) == (status, code)


def test_unreachable_server_is_503() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    stub = grpc_client(settings_for(port), "wallet", pb2_grpc.WalletServiceStub)
    with pytest.raises(grpc.RpcError) as info:
        stub.GetWallet(pb2.GetWalletRequest(user_id="x"))
    assert info.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    assert problem_from_rpc_error(info.value).status == 503


class _Err(grpc.RpcError):  # type: ignore[misc]
    def __init__(self, code: Any, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> Any:
        return self._code

    def details(self) -> str:
        return self._details


@pytest.mark.parametrize(
    ("code", "details", "status", "problem_code"),
    [
        (grpc.StatusCode.NOT_FOUND, "", 404, "not_found"),
        (grpc.StatusCode.FAILED_PRECONDITION, "sender_frozen", 422, "sender_frozen"),
        (grpc.StatusCode.FAILED_PRECONDITION, "limit_exceeded: daily limit", 422, "limit_exceeded"),
        (grpc.StatusCode.PERMISSION_DENIED, "Not Allowed!", 403, "forbidden"),
        (grpc.StatusCode.ALREADY_EXISTS, "", 409, "already_exists"),
        (
            grpc.StatusCode.ABORTED,
            "idempotency_request_in_progress",
            409,
            "idempotency_request_in_progress",
        ),
        (grpc.StatusCode.INVALID_ARGUMENT, "amount must be positive", 422, "validation_error"),
        (grpc.StatusCode.UNAVAILABLE, "fraud_down", 503, "dependency_unavailable"),
        (grpc.StatusCode.DEADLINE_EXCEEDED, "", 503, "dependency_unavailable"),
        (grpc.StatusCode.INTERNAL, "stack trace here", 500, "internal_error"),
    ],
)
def test_status_mapping(code: Any, details: str, status: int, problem_code: str) -> None:
    problem = problem_from_rpc_error(_Err(code, details))
    assert (problem.status, problem.code) == (status, problem_code)
    if status == 500:
        assert "stack trace" not in problem.detail


@pytest.mark.parametrize(
    ("code", "details", "expected", "error_code"),
    [
        (grpc.StatusCode.NOT_FOUND, "wallet_not_found", NotFound, "wallet_not_found"),
        (grpc.StatusCode.FAILED_PRECONDITION, "sender_frozen", Refused, "sender_frozen"),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "", RateLimited, "rate_limited"),
        (grpc.StatusCode.UNAUTHENTICATED, "bad token", RpcFailed, None),
    ],
)
def test_a_failed_call_is_the_callees_domain_error(
    code: Any, details: str, expected: type[Exception], error_code: str | None
) -> None:
    error = error_from_rpc(_Err(code, details))
    assert type(error) is expected
    if error_code is not None:
        assert getattr(error, "code", None) == error_code
