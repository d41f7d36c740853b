"""Signing tokens with the newest key (verifying them is :mod:`mint.auth.caller`'s job)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt

from mint.auth.domain import ALGORITHM, TokenSubject, TokenType, build_claims
from mint.auth.keys import KeyRing
from mint.kit.time import utcnow


@dataclass(frozen=True)
class IssuedToken:
    token: str
    jti: str
    issued_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class TokenPair:
    """The access and refresh tokens of one session (refresh family)."""

    access: IssuedToken
    refresh: IssuedToken
    family_id: uuid.UUID


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
    now = (now or utcnow()).replace(microsecond=0)
    jti = str(uuid.uuid4())
    claims = build_claims(subject, token_type, now=now, jti=jti, sid=sid)
    return IssuedToken(
        token=sign(ring, claims),
        jti=jti,
        issued_at=datetime.fromtimestamp(claims["iat"], UTC),
        expires_at=datetime.fromtimestamp(claims["exp"], UTC),
    )
