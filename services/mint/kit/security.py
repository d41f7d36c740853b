"""Who is calling: JWT verification against auth's JWKS, the current-user dependency, the CSRF
check for cookie-authenticated writes, and the client-IP rule (conventions.md)."""

from __future__ import annotations

import hmac
import ipaddress
import threading
import time
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit
from uuid import UUID

import httpx
import jwt
from fastapi import Depends, Request, Security
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from jwt.algorithms import RSAAlgorithm

from mint.kit.catalog import JWT_AUDIENCE, JWT_ISSUER
from mint.kit.config import KitSettings
from mint.kit.errors import Problem, unauthorized

ISSUER = JWT_ISSUER
AUDIENCE = JWT_AUDIENCE
LEEWAY_SECONDS = 30
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


class JwksVerifier:
    """Verifies access tokens against a cached JWKS; an unknown ``kid`` triggers one refetch
    (rate-limited so a flood of bogus kids cannot hammer auth)."""

    def __init__(self, jwks_url: str, min_refetch_seconds: float = 5.0) -> None:
        self.jwks_url = jwks_url
        self._keys: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._last_fetch = 0.0
        self._min_refetch = min_refetch_seconds

    def _fetch(self) -> None:
        resp = httpx.get(self.jwks_url, timeout=3.0)
        resp.raise_for_status()
        keys: dict[str, Any] = {}
        for jwk in resp.json().get("keys", []):
            if jwk.get("kty") == "RSA" and jwk.get("kid"):
                keys[jwk["kid"]] = RSAAlgorithm.from_jwk(jwk)
        self._keys = keys
        self._last_fetch = time.monotonic()

    def key_for(self, kid: str) -> Any:
        key = self._keys.get(kid)
        if key is not None:
            return key
        with self._lock:
            key = self._keys.get(kid)
            if key is None and time.monotonic() - self._last_fetch >= (
                self._min_refetch if self._keys else 0
            ):
                try:
                    self._fetch()
                except (httpx.HTTPError, ValueError) as exc:
                    raise Problem(
                        503, "dependency_unavailable", "cannot fetch signing keys"
                    ) from exc
                key = self._keys.get(kid)
        if key is None:
            raise unauthorized("unknown signing key")
        return key

    def verify(self, token: str, expected_type: str = "access") -> dict[str, Any]:
        """Return the claims of a valid token of ``expected_type`` or raise 401."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise unauthorized("malformed token") from None
        # Only RS256; keys embedded or referenced by the token itself are never trusted.
        if header.get("alg") != "RS256" or not isinstance(header.get("kid"), str):
            raise unauthorized("unsupported token algorithm")
        key = self.key_for(header["kid"])
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
            _verifiers[url] = JwksVerifier(url)
        return _verifiers[url]


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


def auth_schemes(
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
    _cookie: Annotated[str | None, Security(ACCESS_COOKIE)],
) -> None:
    """Declares in OpenAPI how a caller authenticates (either scheme); the checks themselves
    are :func:`authenticate`'s."""


AuthSchemes = Annotated[None, Depends(auth_schemes)]


def authenticate(request: Request, _: AuthSchemes) -> Principal:
    from mint.kit.service import ServiceContext

    ctx: ServiceContext = request.app.state.ctx
    token, from_cookie = bearer_or_cookie(request)
    if token is None:
        raise unauthorized()
    claims = verifier_for(ctx.settings).verify(token, "access")
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


def require_admin(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
    if not principal.is_admin:
        raise Problem(403, "admin_required", "admin role required")
    return principal


CurrentUser = Annotated[Principal, Depends(authenticate)]
AdminUser = Annotated[Principal, Depends(require_admin)]
