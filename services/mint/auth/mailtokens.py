"""Single-use tokens sent by mail: issued random, stored as SHA-256, consumed atomically."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mint.auth.domain import MAIL_TOKEN_TTL, MailTokenPurpose, new_mail_token, token_hash
from mint.auth.models import MailToken
from mint.kit.time import utcnow


def issue_mail_token(
    session: Session, user_id: uuid.UUID, purpose: MailTokenPurpose, now: datetime | None = None
) -> str:
    """Store a new token's hash (valid for the purpose's lifetime) and return the token itself
    — the only copy, which goes into the mail and nowhere else."""
    now = now or utcnow()
    token = new_mail_token()
    session.add(
        MailToken(
            id=uuid.uuid4(),
            user_id=user_id,
            purpose=purpose.value,
            token_hash=token_hash(token),
            created_at=now,
            expires_at=now + MAIL_TOKEN_TTL[purpose],
        )
    )
    session.flush()
    return token


def consume_mail_token(session: Session, token: str, purpose: MailTokenPurpose) -> uuid.UUID | None:
    """Mark a live token of ``purpose`` used and return its user, in one conditional UPDATE (two
    concurrent uses: exactly one wins). ``None`` for unknown, expired, used or other-purpose
    tokens."""
    now = utcnow()
    stmt = (
        update(MailToken)
        .where(
            MailToken.token_hash == token_hash(token),
            MailToken.purpose == purpose.value,
            MailToken.used_at.is_(None),
            MailToken.expires_at > now,
        )
        .values(used_at=now)
        .returning(MailToken.user_id)
    )
    user_id: uuid.UUID | None = session.execute(stmt).scalar_one_or_none()
    return user_id


def retire_mail_tokens(session: Session, user_id: uuid.UUID, purpose: MailTokenPurpose) -> int:
    """Mark every unused token of ``purpose`` of a user used (after a reset or a password
    change, older reset links must not work); how many were outstanding."""
    stmt = (
        update(MailToken)
        .where(
            MailToken.user_id == user_id,
            MailToken.purpose == purpose.value,
            MailToken.used_at.is_(None),
        )
        .values(used_at=utcnow())
    )
    return int(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


def peek_mail_token(session: Session, token: str, purpose: MailTokenPurpose) -> uuid.UUID | None:
    """The user of a live token of ``purpose`` without using it up (to check the new password
    against the account before the reset consumes the link)."""
    stmt = select(MailToken.user_id).where(
        MailToken.token_hash == token_hash(token),
        MailToken.purpose == purpose.value,
        MailToken.used_at.is_(None),
        MailToken.expires_at > utcnow(),
    )
    user_id: uuid.UUID | None = session.scalars(stmt).first()
    return user_id
