"""Persistence of users and refresh-token families. Functions take the caller's Session, so the
state change and its outbox row commit together."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from mint.auth.domain import Role, TokenSubject, TokenType, UserStatus, rfc3339, token_hash
from mint.auth.keys import KeyRing
from mint.auth.models import RefreshFamily, RefreshToken, User
from mint.auth.tokens import IssuedToken, issue
from mint.kit import pagination
from mint.kit.events import emit

TOPIC = "auth.events"
SOURCE = "auth"


def get_user(session: Session, user_id: uuid.UUID, *, lock: bool = False) -> User | None:
    return session.get(User, user_id, with_for_update=lock)


def get_user_by_email(session: Session, email: str) -> User | None:
    return session.scalars(select(User).where(User.email == email)).first()


def create_user(
    session: Session,
    *,
    email: str,
    name: str,
    password_hash: str,
    role: Role = Role.USER,
    email_verified: bool = False,
) -> User | None:
    """Insert a user; ``None`` when the email is taken (no exception, the transaction stays
    usable). ``email`` must already be normalised."""
    now = datetime.now(UTC)
    stmt = (
        pg_insert(User)
        .values(
            id=uuid.uuid4(),
            email=email,
            name=name,
            password_hash=password_hash,
            role=role.value,
            email_verified=email_verified,
            status=UserStatus.ACTIVE.value,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=[User.email])
        .returning(User.id)
    )
    new_id = session.execute(stmt).scalar_one_or_none()
    return None if new_id is None else session.get(User, new_id)


def emit_auth_event(
    session: Session, type: str, user_id: uuid.UUID, data: dict[str, Any], actor: str
) -> str:
    """An ``auth.events`` outbox row keyed by the user, in the caller's transaction."""
    return emit(
        session,
        topic=TOPIC,
        type=type,
        subject=str(user_id),
        data=data,
        key=str(user_id),
        actor=actor,
        source=SOURCE,
    )


def user_json(user: User) -> dict[str, Any]:
    """The user object of the HTTP API (services.md §1)."""
    return {
        "id": str(user.id),
        "email": user.email,
        "name": user.name,
        "role": user.role,
        "email_verified": user.email_verified,
        "status": user.status,
        "created_at": rfc3339(user.created_at),
    }


def subject_of(user: User) -> TokenSubject:
    return TokenSubject(user.id, user.role, user.email, user.email_verified)


# ---- refresh-token families -------------------------------------------------------------------


@dataclass(frozen=True)
class TokenPair:
    access: IssuedToken
    refresh: IssuedToken
    family_id: uuid.UUID


def _issue_pair(session: Session, user: User, family_id: uuid.UUID, ring: KeyRing) -> TokenPair:
    subject = subject_of(user)
    access = issue(ring, subject, TokenType.ACCESS, sid=family_id)
    refresh = issue(ring, subject, TokenType.REFRESH, sid=family_id)
    session.add(
        RefreshToken(
            jti=uuid.UUID(refresh.jti),
            family_id=family_id,
            token_hash=token_hash(refresh.token),
            issued_at=refresh.issued_at,
            expires_at=refresh.expires_at,
        )
    )
    return TokenPair(access, refresh, family_id)


def start_session(session: Session, user: User, ring: KeyRing) -> TokenPair:
    """A new family (one login) and its first access + refresh tokens."""
    family = RefreshFamily(id=uuid.uuid4(), user_id=user.id, created_at=datetime.now(UTC))
    session.add(family)
    session.flush()
    return _issue_pair(session, user, family.id, ring)


class RefreshResult(Enum):
    OK = "ok"
    INVALID = "invalid_refresh_token"
    REUSED = "refresh_token_reused"
    FROZEN = "account_frozen"


@dataclass(frozen=True)
class Rotation:
    result: RefreshResult
    user: User | None = None
    pair: TokenPair | None = None
    user_id: uuid.UUID | None = None  # set for REUSED (whose family was revoked)


def _find_token(session: Session, presented: str) -> RefreshToken | None:
    stmt = select(RefreshToken).where(RefreshToken.token_hash == token_hash(presented))
    return session.scalars(stmt.with_for_update()).first()


def rotate(session: Session, presented: str, ring: KeyRing) -> Rotation:
    """Exchange a live refresh token for a new pair in the same family, marking it used.

    A token presented a second time revokes its family (``REUSED``); the caller must commit that
    revocation before answering. The database decides, not the signature, so a token outlives
    the key that signed it (the operator may delete old keys)."""
    now = datetime.now(UTC)
    row = _find_token(session, presented)
    if row is None:
        return Rotation(RefreshResult.INVALID)
    family = session.get(RefreshFamily, row.family_id, with_for_update=True)
    if family is None or family.revoked_at is not None:
        return Rotation(RefreshResult.INVALID)
    if row.used_at is not None:
        family.revoked_at = now
        family.revoked_reason = "refresh_token_reused"
        return Rotation(RefreshResult.REUSED, user_id=family.user_id)
    if row.expires_at <= now:
        return Rotation(RefreshResult.INVALID)
    user = session.get(User, family.user_id)
    if user is None:
        return Rotation(RefreshResult.INVALID)
    if user.status == UserStatus.FROZEN.value:
        return Rotation(RefreshResult.FROZEN, user=user)
    pair = _issue_pair(session, user, family.id, ring)
    row.used_at = now
    row.rotated_to = uuid.UUID(pair.refresh.jti)
    return Rotation(RefreshResult.OK, user=user, pair=pair)


def revoke_family_of(session: Session, presented: str, reason: str) -> uuid.UUID | None:
    """Revoke the family of a presented refresh token (logout); its user id, if it was known."""
    row = _find_token(session, presented)
    if row is None:
        return None
    family = session.get(RefreshFamily, row.family_id, with_for_update=True)
    if family is None:
        return None
    if family.revoked_at is None:
        family.revoked_at = datetime.now(UTC)
        family.revoked_reason = reason
    return family.user_id


def revoke_user_families(
    session: Session, user_id: uuid.UUID, reason: str, *, keep: uuid.UUID | None = None
) -> int:
    """Revoke every live family of a user (freeze, role change, password reset) — all but
    ``keep`` (the caller's own session on a password change); how many were live."""
    stmt = (
        update(RefreshFamily)
        .where(RefreshFamily.user_id == user_id, RefreshFamily.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC), revoked_reason=reason)
    )
    if keep is not None:
        stmt = stmt.where(RefreshFamily.id != keep)
    return int(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


def family_of(session: Session, presented: str) -> RefreshFamily | None:
    """The family of a presented refresh token (without locking), if it exists."""
    stmt = select(RefreshToken.family_id).where(RefreshToken.token_hash == token_hash(presented))
    family_id = session.scalars(stmt).first()
    return None if family_id is None else session.get(RefreshFamily, family_id)


# ---- recipient search --------------------------------------------------------------------------


def search_recipients(
    session: Session, prefix: str, *, exclude: uuid.UUID, limit: int
) -> list[User]:
    """ACTIVE users whose (lower-case) email starts with ``prefix`` — a normalised prefix —
    except ``exclude``, by email, at most ``limit``. Uses the ``text_pattern_ops`` index."""
    stmt = (
        select(User)
        .where(
            User.email.like(_escape_like(prefix) + "%", escape="\\"),
            User.status == UserStatus.ACTIVE.value,
            User.id != exclude,
        )
        .order_by(User.email)
        .limit(limit)
    )
    return list(session.scalars(stmt))


# ---- admin search ----------------------------------------------------------------------------


def _encode_cursor(user: User) -> str:
    return pagination.encode_cursor(user.created_at, user.id)


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """Raises ValueError (``InvalidCursor``) for anything this module did not produce."""
    return pagination.decode_cursor(cursor, uuid.UUID)


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_users(
    session: Session,
    *,
    query: str = "",
    status: str = "",
    role: str = "",
    limit: int = 20,
    cursor: str = "",
) -> tuple[list[User], str | None]:
    """Users of any status, newest first; ``query`` is an email prefix or a name substring.
    Returns the page and the cursor of the next one (``None`` at the end)."""
    stmt = select(User)
    q = query.strip().lower()
    if q:
        pattern = _escape_like(q)
        stmt = stmt.where(
            or_(
                User.email.like(pattern + "%", escape="\\"),
                User.name.ilike("%" + pattern + "%", escape="\\"),
            )
        )
    if status:
        stmt = stmt.where(User.status == status)
    if role:
        stmt = stmt.where(User.role == role)
    if cursor:
        created, last_id = _decode_cursor(cursor)
        stmt = stmt.where(
            or_(User.created_at < created, and_(User.created_at == created, User.id < last_id))
        )
    stmt = stmt.order_by(User.created_at.desc(), User.id.desc()).limit(limit + 1)
    rows = list(session.scalars(stmt))
    page = rows[:limit]
    return page, (_encode_cursor(page[-1]) if len(rows) > limit else None)
