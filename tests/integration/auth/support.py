"""What auth's integration tests share: the auth service running (``tests.harness``) on a fresh
database of the session's embedded servers (PostgreSQL, Redis, the SMTP sink), HTTP clients with
their own client IP, and readers for the mail the sink captured."""

from __future__ import annotations

import email
import email.policy
import random
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi.testclient import TestClient
from sqlalchemy import select

from mint.auth.keys import generate_key
from mint.auth.service import SERVICE
from mint.infra import EmbeddedInfra
from mint.kit.events import OUTBOX
from mint.kit.http import create_app
from mint.kit.service import ServiceContext
from tests.harness import RunningService, run_service

BASE = "/api/v1/auth"
PASSWORD = "Correct-Horse-42"
PUBLIC_URL = "http://testserver"
#: Peers in this network are trusted proxies (their X-Forwarded-For names the client).
TRUSTED_PROXIES = "10.250.0.0/16"


@contextmanager
def running_auth(
    infra: EmbeddedInfra, keys_dir: Path, **overrides: Any
) -> Iterator[RunningService]:
    """auth on a new, migrated database (or ``database_url=``), signing with a fresh key in
    ``keys_dir``, counting in the shared Redis and mailing to the SMTP sink; no outbox relay
    (the tests read the outbox). Registrations are not limited unless a test says so
    (``register_rate_per_hour=...``): every test client registers users."""
    generate_key(keys_dir)
    settings: dict[str, Any] = {
        "signing_keys_dir": keys_dir,
        "public_url": PUBLIC_URL,
        "smtp_url": infra.endpoints.smtp_url,
        "smtp_timeout_seconds": 5.0,
        "trusted_proxies": TRUSTED_PROXIES,
        "register_rate_per_hour": 100_000,
        **overrides,
    }
    with run_service(SERVICE, infra, workers=False, **settings) as svc:
        yield svc


def random_ip(prefix: str = "198.18") -> str:
    """A client address of its own (198.18.0.0/15 is for benchmarks: never a real peer), so
    IP-based counters in the shared Redis never mix between tests."""
    return f"{prefix}.{random.randint(0, 255)}.{random.randint(1, 254)}"


def proxy_ip() -> str:
    return random_ip("10.250")


@contextmanager
def app_client(ctx: ServiceContext, peer: str | None = None) -> Iterator[TestClient]:
    """The real app in-process, seen from ``peer`` (a fresh random client IP by default)."""
    with TestClient(create_app(ctx), client=(peer or random_ip(), 50000)) as client:
        yield client


def new_email() -> str:
    return f"user-{uuid.uuid4().hex[:10]}@example.com"


def register(client: TestClient, email: str | None = None, **extra: Any) -> dict[str, Any]:
    body = {"email": email or new_email(), "password": PASSWORD, "name": "Test User", **extra}
    resp = client.post(f"{BASE}/register", json=body)
    assert resp.status_code == 201, resp.text
    data: dict[str, Any] = resp.json()
    return data


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def login(
    client: TestClient, email: str, password: str = PASSWORD, headers: dict[str, str] | None = None
) -> Any:
    body = {"email": email, "password": password}
    return client.post(f"{BASE}/login", json=body, headers=headers or {})


def outbox_rows(ctx: ServiceContext, type: str, key: str | None = None) -> list[Any]:
    stmt = select(OUTBOX).where(OUTBOX.c.type == type)
    if key is not None:
        stmt = stmt.where(OUTBOX.c.key == key)
    with ctx.database().session() as s:
        return list(s.execute(stmt).mappings())


def csrf_headers(client: TestClient) -> dict[str, str]:
    return {"Origin": PUBLIC_URL, "X-CSRF-Token": client.cookies.get("csrf_token") or ""}


def refresh(client: TestClient, token: str) -> Any:
    return client.post(f"{BASE}/refresh", json={"refresh_token": token})


# ---- captured mail ---------------------------------------------------------------------------


def mails_to(mail_dir: Path, address: str) -> list[EmailMessage]:
    """Every message the SMTP sink captured for ``address``, oldest first, parsed by ``email``."""
    found: list[EmailMessage] = []
    for path in sorted(mail_dir.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        if address.lower() in str(message.get("To", "")).lower():
            found.append(message)
    return found


def wait_for_mails(mail_dir: Path, address: str, count: int = 1, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = mails_to(mail_dir, address)
        if len(found) >= count or time.monotonic() > deadline:
            assert len(found) >= count, f"expected {count} mail(s) to {address}, got {len(found)}"
            return found
        time.sleep(0.05)


def link_in(message: EmailMessage, path: str) -> str:
    """The ``{PUBLIC_URL}{path}?token=…`` link of a mail's text part."""
    part = message.get_body(preferencelist=("plain",))
    assert part is not None and isinstance(part, EmailMessage)
    text = part.get_content()
    match = re.search(re.escape(PUBLIC_URL + path) + r"\?token=[A-Za-z0-9_\-%]+", text)
    assert match, f"no {path} link in: {text!r}"
    return match.group(0)


def token_of(link: str) -> str:
    (token,) = parse_qs(urlsplit(link).query)["token"]
    return token
