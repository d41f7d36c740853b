"""auth's pure rules, signing keys and token signing (no database)."""

from __future__ import annotations

import stat
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from mint.auth.caller import LocalVerifier
from mint.auth.domain import (
    ACCESS_TTL,
    REFRESH_TTL,
    Role,
    TokenSubject,
    TokenType,
    UserStatus,
    build_claims,
    check_new_password,
    decode_cursor,
    encode_cursor,
    freeze_reason,
    has_control_chars,
    is_valid_email,
    new_account,
    normalize_email,
    parse_role,
    parse_user_id,
    password_problems,
    token_hash,
    user_filter,
)
from mint.auth.keys import (
    KeyRing,
    NoSigningKeyError,
    ensure_signing_key,
    generate_key,
    kid_for,
    load_keys,
)
from mint.auth.schemas import UserOut
from mint.auth.tokens import issue, sign
from mint.kit.domain import Invalid, Unauthenticated
from mint.kit.errors import Problem

EMAIL = "alice.smith@example.com"


@pytest.mark.parametrize(
    ("password", "weak"),
    [
        ("", True),
        ("Ab1!", True),  # too short
        ("Abcdef12!", True),  # 9 characters
        ("Abcdef123!", False),  # 10, mixed
        ("abcdefghijkl", True),  # all lower
        ("ABCDEFGHIJKL", True),  # all upper
        ("123456789012", True),  # all digits
        ("!@#$%^&*()_+", True),  # all symbols
        ("          ", True),  # all whitespace ("other")
        ("abcdefghij1", False),  # lower + digit
        ("correct horse battery", False),  # lower + space
        ("xxALICE.SMITHxx1", True),  # contains the local part, any case
        ("alice.smit-h-1234", False),  # near miss is fine
        ("ééééééééééé1", False),  # unicode letters count as lower
        ("a" * 128 + "B", False),
    ],
)
def test_password_policy(password: str, weak: bool) -> None:
    assert bool(password_problems(password, EMAIL)) is weak


def test_short_local_parts_are_not_searched() -> None:
    assert password_problems("zebra-crossing-42", "ze@example.com") == []
    assert password_problems("my-bob-password-1", "bob@example.com") != []


def test_control_characters() -> None:
    assert has_control_chars("a\x00b") and has_control_chars("line\nbreak")
    assert not has_control_chars("Zo\u00eb O'Brien \u2603")


def test_password_problems_explain_each_rule() -> None:
    assert len(password_problems("alice", "alice@example.com")) == 3


@pytest.mark.parametrize(
    ("raw", "normal"),
    [("  Alice@Example.COM ", "alice@example.com"), ("bob@x.io", "bob@x.io")],
)
def test_normalize_email(raw: str, normal: str) -> None:
    assert normalize_email(raw) == normal


@pytest.mark.parametrize(
    ("email", "ok"),
    [
        ("alice@example.com", True),
        ("a.b+tag@sub.example.co", True),
        ("user@mint.test", True),
        ("alice@localhost", False),
        ("alice@@example.com", False),
        ("alice example@example.com", False),
        ("@example.com", False),
        ("alice@", False),
        ("alice..x@example.com", False),
        (".alice@example.com", False),
        ("alice@-example.com", False),
        ("a" * 65 + "@example.com", False),
        ("a@" + "b" * 250 + ".com", False),
        ("\u00e9l\u00e8ve@example.com", False),  # ASCII only (the HTML email syntax)
        ('"quoted"@example.com', False),
        ("nul\x00@example.com", False),
        ("o'brien+x@example.com", True),
    ],
)
def test_email_syntax(email: str, ok: bool) -> None:
    assert is_valid_email(email) is ok


SUBJECT = TokenSubject(uuid.uuid4(), "user", "alice@example.com", False)
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kind", "ttl"), [(TokenType.ACCESS, ACCESS_TTL), (TokenType.REFRESH, REFRESH_TTL)]
)
def test_claims(kind: TokenType, ttl: object) -> None:
    claims = build_claims(SUBJECT, kind, now=NOW, jti="j-1")
    assert claims == {
        "sub": str(SUBJECT.user_id),
        "iss": "mint-auth",
        "aud": "mint-services",
        "iat": int(NOW.timestamp()),
        "exp": int(NOW.timestamp()) + (900 if kind is TokenType.ACCESS else 30 * 86400),
        "jti": "j-1",
        "type": kind.value,
        "role": "user",
        "email": "alice@example.com",
        "email_verified": False,
    }


def test_token_hash() -> None:
    assert len(token_hash("abc")) == 64
    assert token_hash("abc") != token_hash("abd")


def test_user_out_renders_instants_in_rfc3339_utc() -> None:
    user = SimpleNamespace(
        id=SUBJECT.user_id,
        email="alice@example.com",
        name="Alice",
        role="user",
        email_verified=False,
        status="ACTIVE",
        created_at=datetime(2026, 1, 2, 4, 4, 5, tzinfo=timezone(timedelta(hours=1))),
        password_hash="never shown",
    )
    body = UserOut.model_validate(user).model_dump(mode="json")
    assert body == {
        "id": str(SUBJECT.user_id),
        "email": "alice@example.com",
        "name": "Alice",
        "role": "user",
        "email_verified": False,
        "status": "ACTIVE",
        "created_at": "2026-01-02T03:04:05.000000Z",
    }


# ---- refusals ----------------------------------------------------------------------------------


def test_weak_passwords_are_refused_with_the_reasons() -> None:
    check_new_password("Abcdef123!", EMAIL)
    with pytest.raises(Invalid) as weak:
        check_new_password("alice", "alice@example.com")
    assert weak.value.code == "weak_password"
    assert len(weak.value.extra["reasons"]) == 3
    assert weak.value.detail == "password " + "; ".join(weak.value.extra["reasons"])
    with pytest.raises(Invalid, match="weak_password"):
        check_new_password("Ab1!" * 33, EMAIL)  # 132 characters


def test_new_account() -> None:
    account = new_account(" Alice@Example.COM ", "  Alice ", "Abcdef123!")
    assert (account.email, account.name) == ("alice@example.com", "Alice")
    for email, name, password, code in (
        ("not-an-email", "A", "Abcdef123!", "invalid_email"),
        ("a@example.com", "  ", "Abcdef123!", "invalid_name"),
        ("a@example.com", "x" * 101, "Abcdef123!", "invalid_name"),
        ("a@example.com", "a\nb", "Abcdef123!", "invalid_name"),
        ("a@example.com", "A", "short", "weak_password"),
    ):
        with pytest.raises(Invalid) as refused:
            new_account(email, name, password)
        assert refused.value.code == code


ADMIN_INPUT_REFUSALS: list[tuple[Callable[[], object], str]] = [
    (lambda: parse_user_id("nope"), "invalid_user_id"),
    (lambda: parse_role("root"), "invalid_role"),
    (lambda: freeze_reason("   "), "invalid_reason"),
    (lambda: freeze_reason("x" * 501), "invalid_reason"),
    (lambda: freeze_reason("a\x00b"), "invalid_reason"),
    (lambda: user_filter("", "GONE", "", 0), "invalid_status"),
    (lambda: user_filter("", "", "root", 0), "invalid_role"),
    (lambda: user_filter("", "", "", 101), "invalid_page_size"),
    (lambda: user_filter("", "", "", -1), "invalid_page_size"),
    (lambda: decode_cursor("garbage"), "invalid_page_token"),
]


@pytest.mark.parametrize(("call", "code"), ADMIN_INPUT_REFUSALS)
def test_admin_input_refusals(call: Callable[[], object], code: str) -> None:
    with pytest.raises(Invalid) as refused:
        call()
    assert refused.value.code == code


def test_admin_inputs() -> None:
    uid = uuid.uuid4()
    assert parse_user_id(str(uid)) == uid
    assert parse_role("admin") is Role.ADMIN
    assert freeze_reason("  fraud ") == "fraud"
    where = user_filter(" Ali\x00CE ", "FROZEN", "admin", 0)
    assert (where.query, where.status, where.role, where.limit) == (
        "alice",
        UserStatus.FROZEN,
        Role.ADMIN,
        20,
    )
    assert decode_cursor(encode_cursor(NOW, uid)) == (NOW, uid)


# ---- keys --------------------------------------------------------------------------------------


def test_generate_key_file_and_kid(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    kid = generate_key(keys, now=NOW)
    assert kid == "20260102030405" == kid_for(NOW)
    path = keys / f"{kid}.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert [p.name for p in keys.iterdir()] == [f"{kid}.pem"]  # no temp file left
    (key,) = load_keys(keys)
    assert key.kid == kid and key.private_key.key_size == 2048


def test_same_second_keys_get_distinct_kids(tmp_path: Path) -> None:
    first = generate_key(tmp_path, now=NOW)
    second = generate_key(tmp_path, now=NOW)
    assert (first, second) == ("20260102030405", "20260102030406")


def test_ensure_signing_key_only_generates_when_empty(tmp_path: Path) -> None:
    kid = ensure_signing_key(tmp_path / "k")
    assert ensure_signing_key(tmp_path / "k") == kid
    assert len(list((tmp_path / "k").glob("*.pem"))) == 1


def test_newest_kid_signs_and_jwks_serves_all(tmp_path: Path) -> None:
    for moment in ("2025-06-01T00:00:00", "2026-01-01T00:00:00", "2025-12-31T23:59:59"):
        generate_key(tmp_path, now=datetime.fromisoformat(moment).replace(tzinfo=UTC))
    ring = KeyRing(tmp_path)
    assert [k.kid for k in ring.all_keys()] == [
        "20250601000000",
        "20251231235959",
        "20260101000000",
    ]
    assert ring.signing_key().kid == "20260101000000"
    jwks = ring.jwks()
    assert {k["kid"] for k in jwks["keys"]} == {k.kid for k in ring.all_keys()}
    for jwk in jwks["keys"]:
        assert set(jwk) == {"kty", "n", "e", "kid", "use", "alg"}
        assert (jwk["kty"], jwk["use"], jwk["alg"], jwk["e"]) == ("RSA", "sig", "RS256", "AQAB")
        assert "d" not in jwk  # never the private part

    token = sign(ring, build_claims(SUBJECT, TokenType.ACCESS, now=datetime.now(UTC), jti="x"))
    assert jwt.get_unverified_header(token)["kid"] == "20260101000000"
    public = RSAAlgorithm.from_jwk(next(k for k in jwks["keys"] if k["kid"] == "20260101000000"))
    claims = jwt.decode(token, public, algorithms=["RS256"], audience="mint-services")  # type: ignore[arg-type]
    assert claims["sub"] == str(SUBJECT.user_id)


def test_ring_reloads_when_directory_changes(tmp_path: Path) -> None:
    ring = KeyRing(tmp_path)
    with pytest.raises(NoSigningKeyError):
        ring.signing_key()
    old = generate_key(tmp_path, now=NOW)
    assert ring.signing_key().kid == old
    new = generate_key(tmp_path, now=datetime(2026, 2, 1, tzinfo=UTC))
    assert ring.signing_key().kid == new
    (tmp_path / f"{old}.pem").unlink()
    assert [k.kid for k in ring.all_keys()] == [new]


def test_bad_and_foreign_files_are_ignored(tmp_path: Path) -> None:
    good = generate_key(tmp_path, now=NOW)
    (tmp_path / "20990101000000.pem").write_text("not a key")
    (tmp_path / "notakid.pem").write_bytes((tmp_path / f"{good}.pem").read_bytes())
    (tmp_path / ".20990101000001.pem.tmp").write_text("partial")
    (tmp_path / "README").write_text("hello")
    assert [k.kid for k in load_keys(tmp_path)] == [good]


def test_local_verifier(tmp_path: Path) -> None:
    generate_key(tmp_path, now=NOW)
    ring = KeyRing(tmp_path)
    verifier = LocalVerifier(ring)
    access = issue(ring, SUBJECT, TokenType.ACCESS)
    refresh = issue(ring, SUBJECT, TokenType.REFRESH)
    assert verifier.verify(access.token)["jti"] == access.jti
    assert (access.expires_at - access.issued_at) == ACCESS_TTL
    with pytest.raises(Problem) as exc:
        verifier.verify(refresh.token)  # refresh used as access
    assert exc.value.status == 401
    expired = sign(ring, build_claims(SUBJECT, TokenType.ACCESS, now=NOW, jti="old"))
    with pytest.raises(Problem):
        verifier.verify(expired)
    hs = jwt.encode({"sub": "x"}, "secret-secret-secret-secret-32by", algorithm="HS256")
    with pytest.raises(Problem):
        verifier.verify(hs)
    foreign = jwt.encode(
        build_claims(SUBJECT, TokenType.ACCESS, now=datetime.now(UTC), jti="f"),
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        algorithm="RS256",
        headers={"kid": "29991231235959"},
    )
    with pytest.raises(Unauthenticated) as unknown:
        verifier.verify(foreign)
    assert unknown.value.code == "unauthorized"
