"""The mail helper's pure parts (URL parsing, message building), auth's mail contents, and the
rules of mail tokens, recipient search and session ids (no servers)."""

from __future__ import annotations

import email
import email.policy
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mint.auth import mailing
from mint.auth.domain import (
    MAIL_TOKEN_TTL,
    MailTokenPurpose,
    TokenSubject,
    TokenType,
    build_claims,
    new_mail_token,
    search_prefix,
)
from mint.auth.settings import Settings
from mint.kit.config import ConfigError
from mint.kit.mail import SmtpConfig, build_message, parse_smtp_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://127.0.0.1:2525", SmtpConfig("127.0.0.1", 2525)),
        ("smtp://mail.example.com", SmtpConfig("mail.example.com", 25)),
        (
            "smtp://u%40x:p%3Ass@mail.example.com:587?starttls=true",
            SmtpConfig("mail.example.com", 587, "starttls", "u@x", "p:ss"),
        ),
        ("smtp+starttls://mail.example.com", SmtpConfig("mail.example.com", 587, "starttls")),
        ("smtps://u:p@mail.example.com", SmtpConfig("mail.example.com", 465, "tls", "u", "p")),
        ("smtp://u:p@localhost:25", SmtpConfig("localhost", 25, "plain", "u", "p")),
    ],
)
def test_parse_smtp_url(url: str, expected: SmtpConfig) -> None:
    assert parse_smtp_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://mail.example.com",
        "smtp://",
        "smtp://mail.example.com:notaport",
        "smtp://user:secret@mail.example.com",  # a password in clear over the network
    ],
)
def test_bad_smtp_urls(url: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse_smtp_url(url)
    assert "secret" not in str(refused.value)


def test_password_is_not_in_the_config_repr() -> None:
    assert "hunter2" not in repr(parse_smtp_url("smtps://me:hunter2@mail.example.com"))


def test_settings_name_a_bad_smtp_url() -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.load(smtp_url="smtp://me:hunter2@mail.example.com")
    assert "MINT_SMTP_URL" in str(refused.value) and "hunter2" not in str(refused.value)


def test_build_message() -> None:
    message = build_message(
        sender="Mint <no-reply@mint.test>",
        to="Zoë <zoe@example.com>",
        subject="Grüße",
        text="Hello\nhttp://x.test/verify-email?token=" + "a" * 80 + "\n",
        html="<p>Hello</p>",
    )
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert parsed["Subject"] == "Grüße" and parsed["To"] == "Zoë <zoe@example.com>"
    assert parsed["Message-ID"].endswith("@mint.test>") and parsed["Date"]
    plain = parsed.get_body(preferencelist=("plain",))
    assert plain is not None and plain["Content-Transfer-Encoding"] == "7bit"
    assert "token=" + "a" * 80 in message.as_string()  # the link is intact in the raw mail


@pytest.mark.parametrize("field", ["to", "subject", "sender"])
def test_header_injection_is_refused(field: str) -> None:
    values = {"sender": "a@b.test", "to": "c@d.test", "subject": "s"}
    values[field] += "\r\nBcc: victim@example.com"
    with pytest.raises(ValueError):
        build_message(sender=values["sender"], to=values["to"], subject=values["subject"], text="x")


def test_links_use_the_public_url() -> None:
    settings = Settings(public_url="https://mint.example.com/", signing_keys_dir=Path("/x"))
    assert (
        mailing.link(settings, "/verify-email", "a-b_c")
        == "https://mint.example.com/verify-email?token=a-b_c"
    )


def test_mail_tokens_are_random_url_safe_and_long() -> None:
    tokens = {new_mail_token() for _ in range(100)}
    assert len(tokens) == 100
    for token in tokens:
        assert len(token) == 43
        assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert MAIL_TOKEN_TTL[MailTokenPurpose.VERIFY_EMAIL].total_seconds() == 24 * 3600
    assert MAIL_TOKEN_TTL[MailTokenPurpose.PASSWORD_RESET].total_seconds() == 30 * 60


@pytest.mark.parametrize(
    ("raw", "prefix"),
    [("  ALIce ", "alice"), ("ali", "ali"), ("al", None), ("   a  ", None), ("a\x00bc", None)],
)
def test_search_prefix(raw: str, prefix: str | None) -> None:
    assert search_prefix(raw) == prefix


def test_claims_carry_the_session_id() -> None:
    subject = TokenSubject(uuid.uuid4(), "user", "a@b.test", False)
    sid = uuid.uuid4()
    now = datetime.now(UTC)
    claims = build_claims(subject, TokenType.ACCESS, now=now, jti="j", sid=sid)
    assert claims["sid"] == str(sid)
    assert "sid" not in build_claims(subject, TokenType.ACCESS, now=now, jti="j")
