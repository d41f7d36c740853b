"""The caller of auth's own endpoints: its access token verified against auth's key directory
(no JWKS fetch from itself), otherwise exactly the kit's rules (RS256, iss, aud, exp,
type=access, CSRF for a cookie)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from mint.auth.keys import KeyRing
from mint.auth.wiring import Wired
from mint.kit.domain import Unauthenticated
from mint.kit.errors import unauthorized
from mint.kit.security import AuthSchemes, JwksVerifier, Principal, bearer_or_cookie, check_csrf


class LocalVerifier(JwksVerifier):
    """The kit's verifier (same algorithm, claim and type checks) reading auth's own keys
    instead of fetching the JWKS over HTTP."""

    def __init__(self, ring: KeyRing) -> None:
        super().__init__(jwks_url=f"file://{ring.directory}")
        self.ring = ring

    def key_for(self, kid: str) -> Any:
        key = self.ring.public_key(kid)
        if key is None:
            raise Unauthenticated("unauthorized", "unknown signing key")
        return key


@dataclass(frozen=True)
class Caller(Principal):
    """The kit's principal plus the session (refresh family) its access token belongs to."""

    sid: uuid.UUID | None = None


def current_caller(request: Request, _: AuthSchemes, w: Wired) -> Caller:
    token, from_cookie = bearer_or_cookie(request)
    if token is None:
        raise unauthorized()
    claims = LocalVerifier(w.keys).verify(token, "access")
    if from_cookie:
        check_csrf(request, w.settings)
    try:
        user_id = uuid.UUID(str(claims["sub"]))
        sid = uuid.UUID(str(claims["sid"])) if claims.get("sid") else None
    except ValueError:
        raise unauthorized("invalid subject") from None
    return Caller(
        user_id=user_id,
        role=str(claims.get("role", "user")),
        email=str(claims.get("email", "")),
        email_verified=bool(claims.get("email_verified", False)),
        token=token,
        sid=sid,
    )


AuthUser = Annotated[Caller, Depends(current_caller)]
