"""Helpers for the security end-to-end tests (tests/e2e/test_security.py): money movements,
problem assertions, the admin's gRPC freeze, mailed tokens, Kafka reads and secret scans."""

from __future__ import annotations

import base64
import email
import email.policy
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import grpc
import httpx
from confluent_kafka import Consumer, TopicPartition

from mint.auth.v1 import auth_pb2, auth_pb2_grpc
from mint.dev.platform import Platform
from mint.kit.config import KitSettings
from mint.kit.rpc import grpc_client
from mint.wallet.v1 import wallet_pb2, wallet_pb2_grpc
from tests.e2e.conftest import User, register, wait_for_wallet

#: What a stack trace or an internal detail in a response body would look like.
TRACE_MARKERS = ("Traceback", 'File "', "site-packages", '.py", line', "sqlalchemy", "psycopg")


def poll(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """``check()`` until it returns something truthy, at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# ---- users and money ------------------------------------------------------------------------


def users(gateway: httpx.Client, *names: str) -> list[User]:
    out = [register(gateway, n) for n in names]
    for user in out:
        wait_for_wallet(gateway, user)
    return out


def move(
    client: httpx.Client,
    user: User,
    kind: str,
    amount: int,
    recipient: User | None = None,
    token: str | None = None,
) -> httpx.Response:
    """POST /api/v1/transactions/{topup,transfer,withdraw} as ``user`` (or with ``token``)."""
    body: dict[str, Any] = {"amount": amount, "currency": "USD"}
    if recipient is not None:
        body["recipient_id"] = recipient.id
    auth = {"Authorization": f"Bearer {token}"} if token else user.headers
    return client.post(
        f"/api/v1/transactions/{kind}",
        json=body,
        headers={**auth, "Idempotency-Key": str(uuid.uuid4())},
    )


def balance(client: httpx.Client, user: User) -> int:
    r = client.get("/api/v1/wallet", headers=user.headers)
    assert r.status_code == 200, r.text
    return int(r.json()["balance"])


def assert_problem(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """``r`` is an ``application/problem+json`` of ``status`` (and ``code``)."""
    assert r.status_code == status, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body: dict[str, Any] = r.json()
    assert body["status"] == status, body
    if code is not None:
        assert body["code"] == code, body
    return body


def assert_failed_transaction(client: httpx.Client, user: User, r: httpx.Response) -> None:
    """A refused movement's problem names its transaction, which is FAILED for its initiator."""
    txn_id = r.json().get("transaction_id")
    assert txn_id, r.text
    got = client.get(f"/api/v1/transactions/{txn_id}", headers=user.headers)
    assert got.status_code == 200, got.text
    assert got.json()["status"] == "FAILED", got.json()


def raw_get(port: int, path: str) -> tuple[int, bytes]:
    """GET ``path`` byte for byte (an HTTP client would normalise or re-encode it)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def assert_not_internal(platform: Platform, path: str) -> None:
    """``path``, sent to the gateway as is, reaches no service's /metrics, /readyz, /healthz."""
    status, body = raw_get(platform.gateway_port, path)
    assert status == 404, (path, status, body[:200])
    assert b"python_gc" not in body and b'"checks"' not in body, path


def ledger_check(platform: Platform) -> subprocess.CompletedProcess[str]:
    """``mint ledger check`` on the platform's wallet and transactions databases: the wallet's
    invariants and the cross-service checks (``mint.ledger_audit``)."""
    wallet, transactions = platform.databases["wallet"], platform.databases["transactions"]
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mint.cli",
            "ledger",
            "check",
            "--database-url",
            wallet,
            "--transactions-database-url",
            transactions,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


# ---- the admin's internal gRPC -------------------------------------------------------------------


class Admin:
    """What the admin service does to freeze a user: auth ``Freeze`` and wallet ``Freeze``."""

    def __init__(self, platform: Platform) -> None:
        settings = KitSettings(
            service_name="admin",
            internal_token=platform.internal_token(),
            auth_grpc=f"127.0.0.1:{platform.grpc_ports['auth']}",
            wallet_grpc=f"127.0.0.1:{platform.grpc_ports['wallet']}",
        )
        self.auth = grpc_client(settings, "auth", auth_pb2_grpc.AuthServiceStub)
        self.wallet = grpc_client(settings, "wallet", wallet_pb2_grpc.WalletServiceStub)
        self.actor = str(uuid.uuid4())

    def freeze(self, user: User) -> None:
        reason = "security e2e: suspected account takeover"
        frozen = self.auth.Freeze(
            auth_pb2.FreezeRequest(user_id=user.id, reason=reason, actor_id=self.actor)
        )
        assert frozen.status == "FROZEN", frozen
        wallet = self.wallet.Freeze(wallet_pb2.FreezeRequest(user_id=user.id, reason=reason))
        assert wallet.status == "FROZEN", wallet

    def unfreeze(self, user: User) -> None:
        active = self.auth.Unfreeze(auth_pb2.UnfreezeRequest(user_id=user.id, actor_id=self.actor))
        assert active.status == "ACTIVE", active
        wallet = self.wallet.Unfreeze(wallet_pb2.FreezeRequest(user_id=user.id, reason="cleared"))
        assert wallet.status == "ACTIVE", wallet


#: Internal methods of every service with a gRPC server (unary, and kyc's streaming download).
INTERNAL_METHODS = [
    "/mint.wallet.v1.WalletService/Transfer", "/mint.wallet.v1.WalletService/Freeze",
    "/mint.auth.v1.AuthService/Freeze", "/mint.auth.v1.AuthService/SetRole",
    "/mint.kyc.v1.KycService/GetProfile", "/mint.kyc.v1.KycService/GetDocument",
    "/mint.transactions.v1.TransactionService/List",
    "/mint.transactions.v1.TransactionService/Reverse",
]  # fmt: skip


def grpc_call(platform: Platform, method: str, token: str | None) -> grpc.StatusCode:
    """The status of ``method`` called with an empty request and ``token`` (None: no header)."""
    service = method.split(".")[1]
    metadata = [("x-mint-service", "admin")]
    metadata += [] if token is None else [("x-mint-internal-token", token)]
    with grpc.insecure_channel(f"127.0.0.1:{platform.grpc_ports[service]}") as channel:
        try:
            if method.endswith("/GetDocument"):
                for _ in channel.unary_stream(method)(b"", metadata=metadata, timeout=5):
                    pass
            else:
                channel.unary_unary(method)(b"", metadata=metadata, timeout=5)
        except grpc.RpcError as err:
            code: grpc.StatusCode = err.code()
            return code
    return grpc.StatusCode.OK


# ---- mail ----------------------------------------------------------------------------------------


def mailed_token(platform: Platform, address: str, path: str, timeout: float = 30) -> str:
    """The token of the newest ``{path}?token=`` link mailed to ``address`` (the dev SMTP sink
    writes one ``.eml`` per message)."""
    link = re.compile(re.escape(path) + r"\?token=([A-Za-z0-9_\-%.~]+)")

    def find() -> str | None:
        for eml in sorted(platform.infra.mail_dir.glob("*.eml"), key=_mtime, reverse=True):
            message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
            if address not in str(message.get("To", "")):
                continue
            body = message.get_body(preferencelist=("plain",))
            match = link.search(body.get_content() if body is not None else "")
            if match:
                return unquote(match.group(1))
        return None

    token: str = poll(find, timeout, f"a {path} mail to {address}")
    return token


def _mtime(path: Path) -> float:
    return path.stat().st_mtime


# ---- Kafka -------------------------------------------------------------------------------------


def read_topics(
    bootstrap: str, topics: Iterable[str], until: Callable[[list[bytes]], bool], timeout: float = 45
) -> list[bytes]:
    """Every message of ``topics`` (key, value and headers as one blob each), from the start to
    the end, re-read until ``until(messages)`` holds (events arrive through the outbox relay)."""

    def once() -> list[bytes] | None:
        messages = _read_all(bootstrap, list(topics))
        return messages if until(messages) else None

    found: list[bytes] = poll(once, timeout, f"the expected events on {list(topics)}", 1.0)
    return found


def _read_all(bootstrap: str, topics: list[str], timeout: float = 20) -> list[bytes]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"e2e-security-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "log_level": 3,
        }
    )
    try:
        ends: dict[tuple[str, int], int] = {}
        assignment = []
        for topic in topics:
            meta = consumer.list_topics(topic, timeout=10).topics[topic]
            for partition in meta.partitions:
                low, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=10
                )
                if high > low:
                    ends[(topic, partition)] = high
                    assignment.append(TopicPartition(topic, partition, low))
        consumer.assign(assignment)
        out: list[bytes] = []
        deadline = time.monotonic() + timeout
        while ends and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            raw = msg.headers() or []
            pairs = list(raw.items()) if isinstance(raw, dict) else list(raw)
            headers = b" ".join(k.encode() + b"=" + _bytes(v) for k, v in pairs)
            out.append(b"\n".join([_bytes(msg.key()), _bytes(msg.value()), headers]))
            where = (str(msg.topic()), int(msg.partition() or 0))
            if where in ends and int(msg.offset() or 0) + 1 >= ends[where]:
                del ends[where]
        assert not ends, f"could not read {topics} to the end in {timeout}s: {ends}"
        return out
    finally:
        consumer.close()


def _bytes(value: str | bytes | None) -> bytes:
    return value.encode() if isinstance(value, str) else value or b""


# ---- malformed requests ------------------------------------------------------------------------


def malformed_requests(auth: dict[str, str]) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, httpx keyword arguments) of requests a client should never send."""
    key = {**auth, "Idempotency-Key": str(uuid.uuid4())}
    as_json = {"content-type": "application/json"}
    multipart = {**auth, "content-type": "multipart/form-data; boundary=x"}
    deep = ("[" * 5000 + "]" * 5000).encode()
    cursor = base64.urlsafe_b64encode(b"\xff\x00garbage|not-a-date").decode()
    none_alg = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').decode().rstrip("=")
    profile = {"country": "\u0000\u0000", "full_name": "x", "date_of_birth": "0000-00-00"}
    txns, auth_api = "/api/v1/transactions", "/api/v1/auth"
    huge = {"recipient_id": "../x", "amount": 10**30}
    long_key = {**auth, "Idempotency-Key": "k" * 300}
    no_boundary = {**multipart, "content-type": "multipart/form-data"}
    return [
        ("POST", f"{auth_api}/login", {"content": b'{"email":', "headers": as_json}),
        ("POST", f"{auth_api}/register", {"content": b"\xff\xfe\x00", "headers": as_json}),
        ("POST", f"{auth_api}/register", {"content": b"a", "headers": {"content-type": "text/x"}}),
        ("POST", f"{auth_api}/refresh", {"json": {"refresh_token": "a.b.c"}}),
        ("POST", f"{auth_api}/verify-email", {"json": {"token": "x" * 20_000}}),
        ("POST", f"{auth_api}/password/reset", {"json": {"token": None, "new_password": []}}),
        ("POST", f"{txns}/transfer", {"content": deep, "headers": {**key, **as_json}}),
        ("POST", f"{txns}/transfer", {"json": huge, "headers": key}),
        ("POST", f"{txns}/topup", {"json": {"amount": "1e3", "currency": "X"}, "headers": key}),
        ("POST", f"{txns}/topup", {"json": {"amount": 1}, "headers": long_key}),
        ("POST", f"{txns}/withdraw", {"json": [1, 2, 3], "headers": key}),
        ("GET", f"{txns}/%ff%fe", {"headers": auth}),
        ("GET", txns, {"params": {"cursor": cursor, "limit": "1"}, "headers": auth}),
        ("GET", txns, {"params": {"limit": "abc", "status": "NOPE"}, "headers": auth}),
        ("GET", "/api/v1/wallet/history", {"params": {"cursor": cursor}, "headers": auth}),
        ("GET", "/api/v1/wallet/history", {"params": {"cursor": "AAAA"}, "headers": auth}),
        ("PUT", "/api/v1/kyc/profile", {"json": profile, "headers": auth}),
        ("POST", "/api/v1/kyc/documents", {"content": b"--x\r\nnonsense", "headers": multipart}),
        ("POST", "/api/v1/kyc/documents", {"content": b"abc", "headers": no_boundary}),
        ("GET", "/api/v1/wallet", {"headers": {"Authorization": f"Bearer {none_alg}.e30."}}),
        ("GET", "/api/v1/wallet", {"headers": {"Authorization": "Bearer " + "A" * 9000}}),
    ]  # fmt: skip


# ---- secret scanning ---------------------------------------------------------------------------


def secret_forms(secrets: dict[str, str]) -> dict[str, bytes]:
    """Each secret, plus a JWT's signature on its own (a log that splits a token leaks it too)."""
    forms = {name: value.encode() for name, value in secrets.items()}
    for name, value in secrets.items():
        if value.count(".") == 2:
            forms[f"{name} (signature)"] = value.rsplit(".", 1)[1].encode()
    return forms


def leaks(haystacks: dict[str, bytes], secrets: dict[str, str]) -> list[str]:
    """``"<secret> in <where>"`` for every secret found in any haystack."""
    forms = secret_forms(secrets)
    return [
        f"{name} in {where}"
        for where, data in haystacks.items()
        for name, needle in forms.items()
        if needle in data
    ]
