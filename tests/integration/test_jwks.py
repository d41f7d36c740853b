"""mint.kit.security.JwksVerifier against a real JWKS served over HTTP, on a clock the test moves
(no sleeps): keys expire after ``cache_seconds`` and are refetched, a key auth removed stops
verifying, and refetches — for unknown kids, an empty cache or a failing endpoint — happen at
most once per ``min_refetch_seconds``."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from jwt.algorithms import RSAAlgorithm

from mint.kit.config import KitSettings
from mint.kit.errors import Problem
from mint.kit.security import JwksVerifier, verifier_for
from tests.fixtures.tokens import TokenIssuer

CACHE_SECONDS = 300.0
MIN_REFETCH_SECONDS = 5.0
USER = uuid.UUID("00000000-0000-4000-8000-000000000001")


class Clock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class JwksServer:
    """auth's ``/.well-known/jwks.json`` over real HTTP, serving the public keys of the issuers
    in ``serving`` (changed by the test), or 503 while ``failing``; counts every request."""

    def __init__(self) -> None:
        self.serving: list[TokenIssuer] = []
        self.failing = False
        self.requests = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with owner.lock:
                    owner.requests += 1
                    failing, serving = owner.failing, list(owner.serving)
                if failing:
                    self.send_error(503)
                    return
                body = json.dumps({"keys": [jwk_of(i) for i in serving]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return None

        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def jwk_of(issuer: TokenIssuer) -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(issuer.key.public_key()))
    jwk.update(kid=issuer.kid, use="sig", alg="RS256")
    return jwk


def token_with_kid(issuer: TokenIssuer, kid: str) -> str:
    """A token signed by ``issuer``'s key but naming ``kid`` (a kid auth never published)."""
    claims = jwt.decode(issuer.token(USER), options={"verify_signature": False})
    return jwt.encode(claims, issuer.key, algorithm="RS256", headers={"kid": kid})


@pytest.fixture(scope="module")
def key_a() -> Iterator[TokenIssuer]:
    issuer = TokenIssuer(kid="20260101000000").start()
    yield issuer
    issuer.stop()


@pytest.fixture(scope="module")
def key_b() -> Iterator[TokenIssuer]:
    issuer = TokenIssuer(kid="20260201000000").start()
    yield issuer
    issuer.stop()


@pytest.fixture
def jwks(key_a: TokenIssuer) -> Iterator[JwksServer]:
    server = JwksServer()
    server.serving = [key_a]
    yield server
    server.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def verifier(jwks: JwksServer, clock: Clock) -> JwksVerifier:
    return JwksVerifier(jwks.url, MIN_REFETCH_SECONDS, cache_seconds=CACHE_SECONDS, clock=clock)


def refused(verifier: JwksVerifier, token: str) -> tuple[int, str]:
    with pytest.raises(Problem) as info:
        verifier.verify(token)
    return info.value.status, info.value.detail


def test_keys_are_fetched_once_and_trusted_for_their_lifetime(
    verifier: JwksVerifier, jwks: JwksServer, clock: Clock, key_a: TokenIssuer
) -> None:
    for _ in range(20):
        assert verifier.verify(key_a.token(USER))["sub"] == str(USER)
    assert jwks.requests == 1
    clock.advance(CACHE_SECONDS - 1)
    verifier.verify(key_a.token(USER))
    assert jwks.requests == 1, "still within the lifetime: no refetch"
    clock.advance(1)
    verifier.verify(key_a.token(USER))
    assert jwks.requests == 2, "expired: the next verification refetched"
    for _ in range(5):
        verifier.verify(key_a.token(USER))
    assert jwks.requests == 2, "the refetched keys are cached again"


def test_a_key_auth_removed_stops_verifying_once_the_cache_expires(
    verifier: JwksVerifier,
    jwks: JwksServer,
    clock: Clock,
    key_a: TokenIssuer,
    key_b: TokenIssuer,
) -> None:
    jwks.serving = [key_a, key_b]
    verifier.verify(key_a.token(USER))
    jwks.serving = [key_b]  # auth retired key A
    clock.advance(CACHE_SECONDS / 2)
    verifier.verify(key_a.token(USER))  # trusted for the bounded lifetime only
    clock.advance(CACHE_SECONDS / 2)
    assert refused(verifier, key_a.token(USER)) == (401, "unknown signing key")
    assert verifier.verify(key_b.token(USER))["sub"] == str(USER)
    assert jwks.requests == 2


def test_a_token_verified_before_is_refused_once_its_key_is_gone(
    verifier: JwksVerifier,
    jwks: JwksServer,
    clock: Clock,
    key_a: TokenIssuer,
    key_b: TokenIssuer,
) -> None:
    """The verifier remembers a verified token only as long as the keys that verified it."""
    jwks.serving = [key_a, key_b]
    token = key_a.token(USER)
    assert verifier.verify(token)["sub"] == str(USER)
    assert verifier.verify_cached(token) == verifier.verify(token)  # remembered
    jwks.serving = [key_b]  # auth retired key A
    clock.advance(CACHE_SECONDS)
    assert verifier.verify_cached(token) is None  # the keys must be fetched again first
    assert refused(verifier, token) == (401, "unknown signing key")
    with pytest.raises(Problem):
        verifier.verify(token, "refresh")  # and never as another type of token


def test_unknown_kids_refetch_at_most_once_per_interval(
    verifier: JwksVerifier,
    jwks: JwksServer,
    clock: Clock,
    key_a: TokenIssuer,
    key_b: TokenIssuer,
) -> None:
    verifier.verify(key_a.token(USER))
    assert jwks.requests == 1
    clock.advance(MIN_REFETCH_SECONDS)
    for n in range(30):
        assert refused(verifier, token_with_kid(key_a, f"bogus-{n}")) == (
            401,
            "unknown signing key",
        )
        clock.advance(MIN_REFETCH_SECONDS / 10)
    # 30 bogus kids over 3 intervals: one refetch per interval, not one per request.
    assert jwks.requests == 1 + 3
    verifier.verify(key_a.token(USER))  # the known key never waits for a refetch
    # A key auth really added is picked up by the next allowed refetch.
    jwks.serving = [key_a, key_b]
    clock.advance(MIN_REFETCH_SECONDS)
    assert verifier.verify(key_b.token(USER))["sub"] == str(USER)
    assert jwks.requests == 5


@pytest.mark.parametrize(
    ("failing", "status"),
    [(False, 401), (True, 503)],
    ids=["auth-publishes-no-key", "jwks-endpoint-failing"],
)
def test_an_empty_cache_refetches_at_most_once_per_interval(
    verifier: JwksVerifier,
    jwks: JwksServer,
    clock: Clock,
    key_a: TokenIssuer,
    failing: bool,
    status: int,
) -> None:
    jwks.serving, jwks.failing = [], failing
    for _ in range(25):
        assert refused(verifier, key_a.token(USER))[0] == status
    assert jwks.requests == 1
    clock.advance(MIN_REFETCH_SECONDS - 0.5)
    assert refused(verifier, key_a.token(USER))[0] == status
    assert jwks.requests == 1
    clock.advance(0.5)
    assert refused(verifier, key_a.token(USER))[0] == status
    assert jwks.requests == 2
    # auth back with its key: verified at the next allowed attempt.
    jwks.serving, jwks.failing = [key_a], False
    clock.advance(MIN_REFETCH_SECONDS)
    verifier.verify(key_a.token(USER))
    assert jwks.requests == 3


def test_expired_keys_are_not_a_fallback_when_auth_is_unreachable(
    verifier: JwksVerifier, jwks: JwksServer, clock: Clock, key_a: TokenIssuer
) -> None:
    verifier.verify(key_a.token(USER))
    jwks.failing = True
    clock.advance(CACHE_SECONDS)
    for _ in range(20):
        assert refused(verifier, key_a.token(USER)) == (503, "cannot fetch signing keys")
    assert jwks.requests == 2, "one attempt, not one per request"
    jwks.failing = False
    clock.advance(MIN_REFETCH_SECONDS)
    verifier.verify(key_a.token(USER))
    assert jwks.requests == 3


def test_concurrent_verifications_on_an_empty_cache_fetch_once(
    verifier: JwksVerifier, jwks: JwksServer, key_a: TokenIssuer
) -> None:
    tokens = [key_a.token(USER) for _ in range(40)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        claims = list(pool.map(verifier.verify, tokens))
    assert {c["sub"] for c in claims} == {str(USER)}
    assert jwks.requests == 1


def test_services_verify_with_the_configured_cache_lifetime() -> None:
    settings = KitSettings(auth_url="http://auth.invalid:4001", jwks_cache_seconds=42)
    assert verifier_for(settings).cache_seconds == 42
    assert KitSettings().jwks_cache_seconds == 300
