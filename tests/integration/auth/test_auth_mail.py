"""Email verification and password reset through the real SMTP sink: the link is read out of
the captured ``.eml`` file. Tokens are single use, expire, are stored hashed and never appear in
events or logs; a failing mail server is never silent."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import structlog
from fastapi.testclient import TestClient
from sqlalchemy import select, text, update

from mint.auth.domain import token_hash
from mint.auth.models import MailToken
from mint.infra import EmbeddedInfra
from mint.kit.service import ServiceContext
from tests.integration.auth.support import (
    BASE,
    PUBLIC_URL,
    app_client,
    bearer,
    link_in,
    login,
    mails_to,
    new_email,
    outbox_rows,
    refresh,
    register,
    running_auth,
    token_of,
    wait_for_mails,
)

NEW_PASSWORD = "Brand-New-Secret-77"


@pytest.fixture(scope="module")
def mail_dir(embedded_infra: EmbeddedInfra) -> Path:
    return embedded_infra.endpoints.mail_dir


def everything_stored(ctx: ServiceContext) -> str:
    """Every row of auth's database as text (to prove a token is stored nowhere in clear)."""
    with ctx.database().session() as s:
        tables = ["users", "mail_tokens", "refresh_families", "refresh_tokens", "outbox"]
        return "\n".join(str(list(s.execute(text(f"SELECT * FROM {t}")))) for t in tables)


def mail_token_row(ctx: ServiceContext, token: str) -> MailToken:
    with ctx.database().session() as s:
        return s.scalars(select(MailToken).where(MailToken.token_hash == token_hash(token))).one()


# ---- verification ------------------------------------------------------------------------------


def test_verification_flow(client: TestClient, ctx: ServiceContext, mail_dir: Path) -> None:
    pair = register(client)
    user, auth = pair["user"], bearer(pair["access_token"])
    client.cookies.clear()
    assert client.post(f"{BASE}/verify-email/request", headers=auth).status_code == 202

    (mail,) = wait_for_mails(mail_dir, user["email"])
    assert mail["Subject"] == "Confirm your email address"
    assert "no-reply@mint.local" in mail["From"] and mail["Message-ID"] and mail["Date"]
    url = link_in(mail, "/verify-email")
    token = token_of(url)
    assert len(token) >= 43 and set(token) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    )
    row = mail_token_row(ctx, token)
    assert row.expires_at - row.created_at == timedelta(hours=24)
    assert token not in everything_stored(ctx)  # only its SHA-256

    assert client.post(f"{BASE}/verify-email", json={"token": token}).status_code == 204
    assert client.get(f"{BASE}/me", headers=auth).json()["email_verified"] is True
    (event,) = outbox_rows(ctx, "auth.user_verified", key=user["id"])
    assert event["data"] == {"user_id": user["id"]} and event["topic"] == "auth.events"
    assert token not in everything_stored(ctx)

    again = client.post(f"{BASE}/verify-email", json={"token": token})
    assert again.status_code == 422 and again.json()["code"] == "invalid_token"
    done = client.post(f"{BASE}/verify-email/request", headers=auth)
    assert done.status_code == 409 and done.json()["code"] == "email_already_verified"
    # New tokens carry the verified flag.
    assert login(client, user["email"]).json()["user"]["email_verified"] is True


def test_expired_or_foreign_verification_tokens_are_refused(
    client: TestClient, ctx: ServiceContext, mail_dir: Path
) -> None:
    pair = register(client)
    client.cookies.clear()
    client.post(f"{BASE}/verify-email/request", headers=bearer(pair["access_token"]))
    token = token_of(link_in(wait_for_mails(mail_dir, pair["user"]["email"])[0], "/verify-email"))
    with ctx.database().session() as s:
        s.execute(
            update(MailToken)
            .where(MailToken.token_hash == token_hash(token))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    for bad in (token, "x" * 43, token[:-1]):
        resp = client.post(f"{BASE}/verify-email", json={"token": bad})
        assert resp.status_code == 422 and resp.json()["code"] == "invalid_token"
    # A verification token is not a reset token.
    client.post(f"{BASE}/verify-email/request", headers=bearer(pair["access_token"]))
    fresh = token_of(
        link_in(wait_for_mails(mail_dir, pair["user"]["email"], 2)[-1], "/verify-email")
    )
    wrong = client.post(
        f"{BASE}/password/reset", json={"token": fresh, "new_password": NEW_PASSWORD}
    )
    assert wrong.status_code == 422 and wrong.json()["code"] == "invalid_token"
    assert client.post(f"{BASE}/verify-email", json={"token": fresh}).status_code == 204


def test_verification_mails_are_capped(client: TestClient) -> None:
    pair = register(client)
    client.cookies.clear()
    auth = bearer(pair["access_token"])
    for _ in range(5):
        assert client.post(f"{BASE}/verify-email/request", headers=auth).status_code == 202
    capped = client.post(f"{BASE}/verify-email/request", headers=auth)
    assert capped.status_code == 429 and int(capped.headers["Retry-After"]) > 0


# ---- password reset ----------------------------------------------------------------------------


def test_password_reset_flow(client: TestClient, ctx: ServiceContext, mail_dir: Path) -> None:
    email = new_email()
    first = register(client, email)
    other_session = login(client, email).json()
    with structlog.testing.capture_logs() as logs:
        resp = client.post(f"{BASE}/password/forgot", json={"email": f" {email.upper()} "})
    assert resp.status_code == 202 and resp.content == b""

    (mail,) = wait_for_mails(mail_dir, email)
    assert mail["Subject"] == "Reset your Mint password"
    url = link_in(mail, "/reset-password")
    assert url.startswith(f"{PUBLIC_URL}/reset-password?token=")
    token = token_of(url)
    row = mail_token_row(ctx, token)
    assert row.expires_at - row.created_at == timedelta(minutes=30)
    assert token not in everything_stored(ctx) and token not in str(logs)

    weak = client.post(f"{BASE}/password/reset", json={"token": token, "new_password": "short"})
    assert weak.status_code == 422 and weak.json()["code"] == "weak_password"
    reset = client.post(
        f"{BASE}/password/reset",
        json={"token": token, "new_password": NEW_PASSWORD},
        headers={"User-Agent": "reset-test/1.0"},
    )
    assert reset.status_code == 204  # the link survived the weak attempt

    assert login(client, email).status_code == 401
    assert login(client, email, NEW_PASSWORD).status_code == 200
    for session in (first, other_session):  # every earlier session is revoked
        assert refresh(client, session["refresh_token"]).json()["code"] == "invalid_refresh_token"
    reused = client.post(
        f"{BASE}/password/reset", json={"token": token, "new_password": "X-" + NEW_PASSWORD}
    )
    assert reused.status_code == 422 and reused.json()["code"] == "invalid_token"

    (audit,) = outbox_rows(ctx, "auth.password_reset", key=first["user"]["id"])
    assert audit["topic"] == "audit.events"
    assert audit["data"]["user_id"] == first["user"]["id"]
    assert audit["data"]["user_agent"] == "reset-test/1.0" and audit["data"]["ip"]
    assert token not in everything_stored(ctx)


def test_a_reset_retires_every_other_reset_link(
    client: TestClient, ctx: ServiceContext, mail_dir: Path
) -> None:
    email = new_email()
    register(client, email)
    for _ in range(2):
        assert client.post(f"{BASE}/password/forgot", json={"email": email}).status_code == 202
    tokens = [token_of(link_in(m, "/reset-password")) for m in wait_for_mails(mail_dir, email, 2)]
    assert tokens[0] != tokens[1]
    ok = client.post(
        f"{BASE}/password/reset", json={"token": tokens[1], "new_password": NEW_PASSWORD}
    )
    assert ok.status_code == 204
    old = client.post(
        f"{BASE}/password/reset", json={"token": tokens[0], "new_password": NEW_PASSWORD}
    )
    assert old.status_code == 422


def test_expired_reset_link(client: TestClient, ctx: ServiceContext, mail_dir: Path) -> None:
    email = new_email()
    register(client, email)
    client.post(f"{BASE}/password/forgot", json={"email": email})
    token = token_of(link_in(wait_for_mails(mail_dir, email)[0], "/reset-password"))
    with ctx.database().session() as s:
        s.execute(
            update(MailToken)
            .where(MailToken.token_hash == token_hash(token))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    resp = client.post(
        f"{BASE}/password/reset", json={"token": token, "new_password": NEW_PASSWORD}
    )
    assert resp.status_code == 422
    assert login(client, email).status_code == 200  # the password did not change


def test_forgot_does_not_reveal_accounts(client: TestClient, mail_dir: Path) -> None:
    known, unknown = new_email(), new_email()
    register(client, known)
    answers = [client.post(f"{BASE}/password/forgot", json={"email": e}) for e in (known, unknown)]
    assert [a.status_code for a in answers] == [202, 202]
    assert answers[0].content == answers[1].content == b""
    strip = {"date", "x-request-id"}
    assert {k: v for k, v in answers[0].headers.items() if k not in strip} == {
        k: v for k, v in answers[1].headers.items() if k not in strip
    }
    wait_for_mails(mail_dir, known)
    assert mails_to(mail_dir, unknown) == []
    bad = client.post(f"{BASE}/password/forgot", json={"email": "x" * 300})
    assert bad.status_code == 422


# ---- a mail server that fails ------------------------------------------------------------------


def test_mail_failures_are_never_silent(
    embedded_infra: EmbeddedInfra, tmp_path_factory: pytest.TempPathFactory, ctx: ServiceContext
) -> None:
    with running_auth(
        embedded_infra,
        tmp_path_factory.mktemp("keys"),
        database_url=ctx.settings.database_url,
        smtp_url="smtp://127.0.0.1:1",
    ) as down:
        with app_client(down.ctx) as client:
            email = new_email()
            pair = register(client, email)
            client.cookies.clear()
            resp = client.post(f"{BASE}/verify-email/request", headers=bearer(pair["access_token"]))
            assert resp.status_code == 503 and resp.json()["code"] == "dependency_unavailable"
            with structlog.testing.capture_logs() as logs:
                forgot = client.post(f"{BASE}/password/forgot", json={"email": email})
            assert forgot.status_code == 202  # no enumeration, but the failure is logged
            failed = [e for e in logs if e["event"] == "password_reset_mail_failed"]
            assert failed and failed[0]["user_id"] == pair["user"]["id"]
            with down.session() as s:  # the tokens were committed before sending
                purposes = s.scalars(
                    select(MailToken.purpose).where(
                        MailToken.user_id == uuid.UUID(pair["user"]["id"])
                    )
                ).all()
            assert sorted(purposes) == ["password_reset", "verify_email"]
        assert mails_to(embedded_infra.endpoints.mail_dir, email) == []
