"""Who is calling: JWT verification against auth's JWKS, the current-user dependency, the CSRF
check for cookie-authenticated writes, and the client-IP rule (conventions.md)."""

from __future__ import annotations

import hmac
import ipaddress
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit
from uuid import UUID

import httpx
import jwt
import structlog
from fastapi import Depends, Request, Security
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from jwt.algorithms import RSAAlgorithm
from starlette.concurrency import run_in_threadpool

from mint.kit.catalog import JWT_AUDIENCE, JWT_ISSUER
from mint.kit.config import KitSettings
from mint.kit.errors import Problem, unauthorized

log = structlog.get_logger("mint.security")

ISSUER = JWT_ISSUER
AUDIENCE = JWT_AUDIENCE
LEEWAY_SECONDS = 30
#: How many verified tokens a process remembers (the oldest are forgotten first).
VERIFIED_TOKENS_KEPT = 10_000
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Principal:
    user_id: UUID
    role: str
    email: str
    email_verified: bool
    token: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class _KeySet:
    """The keys of one successful JWKS fetch and when (on the verifier's clock) it happened."""

    keys: dict[str, Any]
    fetched_at: float


class JwksVerifier:
    """Verifies access tokens against auth's JWKS, cached for a bounded lifetime.

    * The keys of a fetch are trusted for ``cache_seconds`` (``MINT_JWKS_CACHE_SECONDS``); the
      first verification after that refetches, so a key auth removed stops verifying.
    * A fetch is attempted at most once per ``min_refetch_seconds``, whatever the reason (an
      unknown ``kid``, an empty or expired cache, a failed fetch before): a flood of bogus kids
      or an unreachable auth never turns into a flood of fetches.
    * No usable key for the token's ``kid``: 401 ``unauthorized`` when the last fetch succeeded
      (auth does not know that key); 503 ``dependency_unavailable`` when the last attempt
      failed (nobody can tell whether the token is good: the client should retry, not sign in
      again). Until the next attempt is due, that failure is the answer without a fetch.
      Expired keys are never used as a fallback while auth is unreachable: the lifetime
      bounds the trust in a key.

    ``clock`` (monotonic seconds) is injectable so tests can move time without sleeping.
    """

    def __init__(
        self,
        jwks_url: str,
        min_refetch_seconds: float = 5.0,
        *,
        cache_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.jwks_url = jwks_url
        self._min_refetch = min_refetch_seconds
        #: How long fetched keys are trusted. Never shorter than the refetch interval, which
        #: would leave gaps with no usable key.
        self.cache_seconds = max(cache_seconds, min_refetch_seconds)
        self._clock = clock
        self._cache: _KeySet | None = None  # replaced whole, so readers need no lock
        self._last_attempt: float | None = None
        self._last_failed = False
        self._lock = threading.Lock()
        #: token → (the key set it was verified with, its exp, its type, its claims)
        self._verified: OrderedDict[str, tuple[_KeySet, float, str, dict[str, Any]]] = OrderedDict()

    def _fetch(self) -> _KeySet:
        resp = httpx.get(self.jwks_url, timeout=3.0)
        resp.raise_for_status()
        body = resp.json()
        if not isinstance(body, dict) or not isinstance(body.get("keys", []), list):
            raise ValueError("not a JWKS document")
        keys: dict[str, Any] = {}
        for jwk in body.get("keys", []):
            if isinstance(jwk, dict) and jwk.get("kty") == "RSA" and jwk.get("kid"):
                keys[jwk["kid"]] = RSAAlgorithm.from_jwk(jwk)
        return _KeySet(keys, self._clock())

    def _fresh(self, now: float) -> _KeySet | None:
        cache = self._cache
        return cache if cache is not None and now - cache.fetched_at < self.cache_seconds else None

    def cached_key(self, kid: str) -> Any | None:
        """The key for ``kid`` if it is known and fresh: no fetch, no lock."""
        fresh = self._fresh(self._clock())
        return fresh.keys.get(kid) if fresh is not None else None

    def key_for(self, kid: str) -> Any:
        if (key := self.cached_key(kid)) is not None:
            return key
        with self._lock:  # one fetch at a time; the threads queued behind it see its result
            now = self._clock()
            fresh = self._fresh(now)
            if fresh is not None and kid in fresh.keys:
                return fresh.keys[kid]
            if self._last_attempt is None or now - self._last_attempt >= self._min_refetch:
                self._last_attempt = now
                try:
                    self._cache = fresh = self._fetch()
                    self._last_failed = False
                except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
                    self._last_failed = True
                    # One line per attempt, so at most one per interval even while auth is down.
                    log.warning("jwks_fetch_failed", url=self.jwks_url, error=type(exc).__name__)
            unreachable = self._last_failed
        if fresh is not None and kid in fresh.keys:
            return fresh.keys[kid]
        if unreachable or fresh is None:
            # Auth could not be asked (now or at the last attempt, within the refetch
            # interval): whether the token is good is unknown — retry, don't sign in again.
            raise Problem(503, "dependency_unavailable", "cannot fetch signing keys")
        raise unauthorized("unknown signing key")

    def verify(self, token: str, expected_type: str = "access") -> dict[str, Any]:
        """Return the claims of a valid token of ``expected_type`` or raise 401 (fetching the
        keys when needed: blocking I/O)."""
        if (known := self._already_verified(token, expected_type)) is not None:
            return known
        kid = self._kid(token)
        key = self.key_for(kid)
        claims = self._decode(token, key, expected_type)
        self._remember(token, expected_type, claims, kid, key)
        return claims

    def verify_cached(self, token: str, expected_type: str = "access") -> dict[str, Any] | None:
        """As :meth:`verify` with the keys at hand; ``None`` when they must be fetched first
        (then call :meth:`verify` where blocking is fine). Never blocks: for the event loop."""
        if (known := self._already_verified(token, expected_type)) is not None:
            return known
        kid = self._kid(token)
        key = self.cached_key(kid)
        if key is None:
            return None
        claims = self._decode(token, key, expected_type)
        self._remember(token, expected_type, claims, kid, key)
        return claims

    # A token is verified once per key set: its claims are kept until it expires (no leeway) or
    # the keys are fetched again — whichever comes first, so a key auth removed stops
    # verifying its tokens exactly as without this memory. A client sends the same access
    # token for its lifetime; the RS256 check is the dearest part of an authenticated request.

    def _already_verified(self, token: str, expected_type: str) -> dict[str, Any] | None:
        entry = self._verified.get(token)
        if entry is None:
            return None
        keyset, until, kind, claims = entry
        fresh = self._fresh(self._clock())
        if keyset is not fresh or kind != expected_type or time.time() >= until:
            return None
        return dict(claims)

    def _remember(
        self, token: str, expected_type: str, claims: dict[str, Any], kid: str, key: Any
    ) -> None:
        keyset = self._cache
        if keyset is None or keyset.keys.get(kid) is not key:
            return  # the keys changed meanwhile: verify it again next time
        with self._lock:
            self._verified[token] = (keyset, float(claims["exp"]), expected_type, dict(claims))
            while len(self._verified) > VERIFIED_TOKENS_KEPT:
                self._verified.popitem(last=False)

    @staticmethod
    def _kid(token: str) -> str:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise unauthorized("malformed token") from None
        # Only RS256; keys embedded or referenced by the token itself are never trusted.
        kid = header.get("kid")
        if header.get("alg") != "RS256" or not isinstance(kid, str):
            raise unauthorized("unsupported token algorithm")
        return kid

    @staticmethod
    def _decode(token: str, key: Any, expected_type: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=["RS256"],
                audience=AUDIENCE,
                issuer=ISSUER,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "sub", "iss", "aud", "type", "jti"]},
            )
        except jwt.ExpiredSignatureError:
            raise unauthorized("token expired") from None
        except jwt.PyJWTError:
            raise unauthorized("invalid token") from None
        if claims.get("type") != expected_type:
            raise unauthorized("wrong token type")
        return claims


_verifiers: dict[str, JwksVerifier] = {}
_verifiers_lock = threading.Lock()


def verifier_for(settings: KitSettings) -> JwksVerifier:
    url = settings.auth_url.rstrip("/") + "/.well-known/jwks.json"
    with _verifiers_lock:
        if url not in _verifiers:
            _verifiers[url] = JwksVerifier(url, cache_seconds=settings.jwks_cache_seconds)
        return _verifiers[url]


#: A first-party app calling the public APIs through the gateway on a visitor's behalf (web)
#: names the visitor's address here, proven by the platform's internal token in
#: ``FORWARDED_FOR_PROOF``; the gateway then forwards that address as the client's, so limits
#: per client address apply to the visitor, not to the app. Anyone else's claim is ignored.
FORWARDED_FOR = "X-Mint-Forwarded-For"
FORWARDED_FOR_PROOF = "X-Mint-Internal-Token"


def client_ip(request: Request, settings: KitSettings) -> str:
    """The socket peer, or the last untrusted ``X-Forwarded-For`` hop when the peer is a
    trusted proxy (``MINT_TRUSTED_PROXIES``)."""
    peer = request.client.host if request.client else "0.0.0.0"
    nets = settings.trusted_proxy_networks
    if not nets or not _in(peer, nets):
        return peer
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not _in(hop, nets):
            return hop
    return hops[0] if hops else peer


def _in(addr: str, nets: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    return any(ip in net for net in nets)


def check_csrf(request: Request, settings: KitSettings) -> None:
    """Cookie-authenticated state changes need a same-origin Origin/Referer and the
    double-submit ``X-CSRF-Token`` header equal to the ``csrf_token`` cookie."""
    if request.method in SAFE_METHODS:
        return
    origin = request.headers.get("origin") or request.headers.get("referer")
    allowed = {_origin_of(settings.public_url), _origin_of(str(request.base_url))}
    if not origin or _origin_of(origin) not in allowed:
        raise Problem(403, "csrf_failed", "cross-site request refused")
    header = request.headers.get("x-csrf-token", "")
    cookie = request.cookies.get("csrf_token", "")
    if not header or not cookie or not hmac.compare_digest(header, cookie):
        raise Problem(403, "csrf_failed", "missing or invalid CSRF token")


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def bearer_or_cookie(request: Request) -> tuple[str | None, bool]:
    """The token and whether it came from the cookie. A present header wins over the cookie."""
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise unauthorized("malformed Authorization header")
        return value.strip(), False
    cookie = request.cookies.get("access_token")
    return (cookie, True) if cookie else (None, False)


BEARER = HTTPBearer(auto_error=False, description="an access token issued by auth")
ACCESS_COOKIE = APIKeyCookie(
    name="access_token",
    auto_error=False,
    description="the session cookie auth sets; state-changing requests also need X-CSRF-Token",
)


async def auth_schemes(
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
    _cookie: Annotated[str | None, Security(ACCESS_COOKIE)],
) -> None:
    """Declares in OpenAPI how a caller authenticates (either scheme); the checks themselves
    are :func:`authenticate`'s."""


AuthSchemes = Annotated[None, Depends(auth_schemes)]


async def authenticate(request: Request, _: AuthSchemes) -> Principal:
    """The caller, from a valid access token. ``async``: with the signing keys at hand (nearly
    always) the check is a signature verification on the event loop, with no hand-off to a
    thread; only a key fetch (blocking I/O) goes to the threadpool."""
    from mint.kit.service import ServiceContext

    ctx: ServiceContext = request.app.state.ctx
    token, from_cookie = bearer_or_cookie(request)
    if token is None:
        raise unauthorized()
    verifier = verifier_for(ctx.settings)
    claims = verifier.verify_cached(token, "access")
    if claims is None:
        claims = await run_in_threadpool(verifier.verify, token, "access")
    if from_cookie:
        check_csrf(request, ctx.settings)
    try:
        user_id = UUID(str(claims["sub"]))
    except ValueError:
        raise unauthorized("invalid subject") from None
    principal = Principal(
        user_id=user_id,
        role=str(claims.get("role", "user")),
        email=str(claims.get("email", "")),
        email_verified=bool(claims.get("email_verified", False)),
        token=token,
    )
    request.state.principal = principal
    return principal


async def require_admin(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
    if not principal.is_admin:
        raise Problem(403, "admin_required", "admin role required")
    return principal


CurrentUser = Annotated[Principal, Depends(authenticate)]
AdminUser = Annotated[Principal, Depends(require_admin)]
