"""auth's queries, row locks and inserts (no rules, no events): users, refresh-token families and
refresh tokens (stored as SHA-256). The use cases in :mod:`mint.auth.actions` decide; this
module fetches and writes what they decided. Mail tokens: :mod:`mint.auth.mailtokens`."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import and_, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from mint.auth.domain import Role, UserFilter, UserStatus, token_hash
from mint.auth.models import RefreshFamily, RefreshToken, User
from mint.auth.tokens import IssuedToken
from mint.kit.time import utcnow

# ---- users ------------------------------------------------------------------------------------


def get_user(session: Session, user_id: uuid.UUID, *, lock: bool = False) -> User | None:
    return session.get(User, user_id, with_for_update=lock)


def get_user_by_email(session: Session, email: str, *, lock: bool = False) -> User | None:
    stmt = select(User).where(User.email == email)
    return session.scalars(stmt.with_for_update() if lock else stmt).first()


def insert_user(
    session: Session,
    *,
    email: str,
    name: str,
    password_hash: str,
    role: Role = Role.USER,
    email_verified: bool = False,
) -> User | None:
    """Insert an ACTIVE user; ``None`` when the email is taken (no exception, the transaction
    stays usable). ``email`` must already be normalised."""
    now = utcnow()
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


# ---- refresh-token families -------------------------------------------------------------------


def insert_family(session: Session, user_id: uuid.UUID) -> RefreshFamily:
    """A new refresh family: one login session."""
    family = RefreshFamily(id=uuid.uuid4(), user_id=user_id, created_at=utcnow())
    session.add(family)
    session.flush()
    return family


def insert_refresh_token(session: Session, family_id: uuid.UUID, token: IssuedToken) -> None:
    """Record an issued refresh token by its hash (the token itself is never stored)."""
    session.add(
        RefreshToken(
            jti=uuid.UUID(token.jti),
            family_id=family_id,
            token_hash=token_hash(token.token),
            issued_at=token.issued_at,
            expires_at=token.expires_at,
        )
    )


def refresh_token(session: Session, presented: str, *, lock: bool = False) -> RefreshToken | None:
    """The stored refresh token a client presented, if any."""
    stmt = select(RefreshToken).where(RefreshToken.token_hash == token_hash(presented))
    return session.scalars(stmt.with_for_update() if lock else stmt).first()


def get_family(
    session: Session, family_id: uuid.UUID, *, lock: bool = False
) -> RefreshFamily | None:
    return session.get(RefreshFamily, family_id, with_for_update=lock)


def revoke_user_families(
    session: Session, user_id: uuid.UUID, reason: str, *, keep: uuid.UUID | None = None
) -> int:
    """Revoke every live family of a user — all but ``keep``; how many were live."""
    stmt = (
        update(RefreshFamily)
        .where(RefreshFamily.user_id == user_id, RefreshFamily.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
    )
    if keep is not None:
        stmt = stmt.where(RefreshFamily.id != keep)
    return int(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


# ---- searches ---------------------------------------------------------------------------------


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


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


def search_users(
    session: Session, where: UserFilter, after: tuple[datetime, uuid.UUID] | None = None
) -> tuple[list[User], tuple[datetime, uuid.UUID] | None]:
    """Users of any status, newest first, after the (created_at, id) position ``after``; the
    position of the page's last user when there is a next page."""
    stmt = select(User)
    if where.query:
        pattern = _escape_like(where.query)
        stmt = stmt.where(
            or_(
                User.email.like(pattern + "%", escape="\\"),
                User.name.ilike("%" + pattern + "%", escape="\\"),
            )
        )
    if where.status is not None:
        stmt = stmt.where(User.status == where.status.value)
    if where.role is not None:
        stmt = stmt.where(User.role == where.role.value)
    if after is not None:
        created, last_id = after
        stmt = stmt.where(
            or_(User.created_at < created, and_(User.created_at == created, User.id < last_id))
        )
    stmt = stmt.order_by(User.created_at.desc(), User.id.desc()).limit(where.limit + 1)
    rows = list(session.scalars(stmt))
    page = rows[: where.limit]
    more = len(rows) > where.limit
    return page, ((page[-1].created_at, page[-1].id) if more else None)
