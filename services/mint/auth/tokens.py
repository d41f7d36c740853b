"""Signing tokens with the newest key, and verifying auth's own access tokens locally."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt

from mint.auth.domain import ALGORITHM, TokenSubject, TokenType, build_claims
from mint.auth.keys import KeyRing
from mint.kit.errors import unauthorized
from mint.kit.security import JwksVerifier


@dataclass(frozen=True)
class IssuedToken:
    token: str
    jti: str
    issued_at: datetime
    expires_at: datetime


def sign(ring: KeyRing, claims: dict[str, Any]) -> str:
    key = ring.signing_key()
    return jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})


def issue(
    ring: KeyRing,
    subject: TokenSubject,
    token_type: TokenType,
    now: datetime | None = None,
    *,
    sid: uuid.UUID | None = None,
) -> IssuedToken:
    """A signed token of ``token_type`` for ``subject`` with a fresh random ``jti`` (and the
    session ``sid`` when given)."""
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    jti = str(uuid.uuid4())
    claims = build_claims(subject, token_type, now=now, jti=jti, sid=sid)
    return IssuedToken(
        token=sign(ring, claims),
        jti=jti,
        issued_at=datetime.fromtimestamp(claims["iat"], UTC),
        expires_at=datetime.fromtimestamp(claims["exp"], UTC),
    )


_verifiers: dict[Path, LocalVerifier] = {}
_verifiers_lock = threading.Lock()


class LocalVerifier(JwksVerifier):
    """The kit's verifier (same algorithm, claim and type checks) reading auth's own key
    directory instead of fetching the JWKS over HTTP."""

    def __init__(self, ring: KeyRing) -> None:
        super().__init__(jwks_url=f"file://{ring.directory}")
        self.ring = ring

    @classmethod
    def for_ring(cls, ring: KeyRing) -> LocalVerifier:
        with _verifiers_lock:
            verifier = _verifiers.get(ring.directory)
            if verifier is None:
                verifier = _verifiers[ring.directory] = cls(ring)
            return verifier

    def key_for(self, kid: str) -> Any:
        key = self.ring.public_key(kid)
        if key is None:
            raise unauthorized("unknown signing key")
        return key
