"""auth's use cases — the only place identities, sessions and credentials change.

HTTP (:mod:`mint.auth.api`), gRPC (:mod:`mint.auth.grpc`) and ``mint admin create``
(:mod:`mint.cli_admin`) all call these functions. Each takes the caller's unit of work (a
``Session``) — or the ``Database`` when it must commit in steps: slow password hashing and mail
stay outside transactions, a refresh-token reuse is revoked before it is refused — plus plain
values and the collaborators it needs (signing keys, the Redis rate limiter, the mailer). Events
go to the outbox in the same transaction as the change (``mint.contracts.auth`` on
``auth.events``; security events of ``mint.contracts.audit`` on ``audit.events``). Refusals are
the kit's domain errors with auth's stable codes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import structlog
from sqlalchemy.orm import Session

from mint.auth import domain, store
from mint.auth.domain import (
    ACCESS_TTL,
    SEARCH_MAX_RESULTS,
    USER_AGENT_MAX,
    ClientInfo,
    MailTokenPurpose,
    NewAccount,
    Role,
    TokenSubject,
    TokenType,
    UserFilter,
    UserStatus,
    check_new_password,
)
from mint.auth.keys import KeyRing
from mint.auth.mailing import AccountMail
from mint.auth.mailtokens import (
    consume_mail_token,
    issue_mail_token,
    peek_mail_token,
    retire_mail_tokens,
)
from mint.auth.models import RefreshFamily, User
from mint.auth.passwords import dummy_verify, hash_password, needs_rehash, verify_password
from mint.auth.ratelimit import (
    LOGIN_PER_EMAIL,
    LOGIN_PER_IP,
    MAIL_PER_ACCOUNT,
    SEARCH_PER_USER,
    Counter,
    Reservation,
    SlidingWindow,
    hashed,
    register_per_ip,
)
from mint.auth.tokens import TokenPair, issue
from mint.contracts.audit import (
    LoginFailed,
    LoginSucceeded,
    PasswordReset,
    RefreshReused,
    SecurityEvent,
)
from mint.contracts.auth import (
    RoleChanged,
    UserFrozen,
    UserRegistered,
    UserUnfrozen,
    UserVerified,
)
from mint.kit.db import Database
from mint.kit.domain import (
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    NotFound,
    RateLimited,
    Unauthenticated,
    Unavailable,
)
from mint.kit.events import emit
from mint.kit.mail import MailError
from mint.kit.time import utcnow

log = structlog.get_logger("mint.auth.actions")

VERIFY = MailTokenPurpose.VERIFY_EMAIL
RESET = MailTokenPurpose.PASSWORD_RESET
#: ``ce_actor`` of changes nobody signed in made (``mint admin create``, an unnamed admin).
SYSTEM = "system"


@dataclass(frozen=True)
class SignedIn:
    """A user and the tokens of a session just started or refreshed (the ``AuthOut`` body)."""

    user: User
    tokens: TokenPair

    @property
    def access_token(self) -> str:
        return self.tokens.access.token

    @property
    def refresh_token(self) -> str:
        return self.tokens.refresh.token

    @property
    def expires_in(self) -> int:
        return int(ACCESS_TTL.total_seconds())


def _unknown_user() -> Unauthenticated:
    """A valid token whose user is gone."""
    return Unauthenticated("unauthorized", "unknown user")


def _account_frozen() -> Forbidden:
    return Forbidden("account_frozen", "this account is frozen")


def _invalid_link() -> Invalid:
    return Invalid("invalid_token", "the link is invalid, expired or already used")


# ---- registration and sessions ------------------------------------------------------------------


def register(
    db: Database,
    keys: KeyRing,
    limiter: SlidingWindow,
    *,
    email: str,
    password: str,
    name: str,
    ip: str,
    per_hour: int,
) -> SignedIn:
    """A new user (``auth.user_registered``) signed in. ``email`` and ``name`` are already
    normalised (the request schema's job); at most ``per_hour`` attempts per client IP."""
    # Every attempt that passes validation counts against the client IP (a 409 too: it would
    # otherwise be a free account-existence oracle).
    limiter.acquire(
        [Counter(register_per_ip(per_hour), ip)],
        "too_many_requests",
        "too many registrations from this address",
    )
    check_new_password(password, email)
    password_hash = hash_password(password)  # outside the transaction: it is slow
    with db.session() as session:
        user = _create_user(session, email=email, name=name, password_hash=password_hash)
        if user is None:
            raise Conflict("email_taken", "an account with this email already exists")
        return SignedIn(user, _start_session(session, user, keys))


def login(
    db: Database,
    keys: KeyRing,
    limiter: SlidingWindow,
    *,
    email: str,
    password: str,
    client: ClientInfo,
) -> SignedIn:
    """Check the password and start a session (``auth.login_succeeded`` / ``_failed``)."""
    # Brute-force protection comes first: while an email or an IP is limited even the right
    # password gets 429 (nothing is verified). The attempt is reserved atomically in both
    # counters and taken back only when the password was right. Redis down → 503 (see
    # mint.auth.ratelimit: the protection fails closed).
    attempt = _login_attempt(limiter, email, client.ip, "too many failed logins; try again later")
    with db.session() as session:
        user = store.get_user_by_email(session, email)
    if user is None:
        dummy_verify(password)
    if user is None or not verify_password(user.password_hash, password):
        with db.session() as session:
            _security_event(session, LoginFailed, user.id if user else None, client)
        raise Unauthenticated("invalid_credentials", "invalid email or password")
    limiter.release(attempt)  # the right password: not a failure (earlier failures stay)
    if user.status == UserStatus.FROZEN:
        raise _account_frozen()
    new_hash = hash_password(password) if needs_rehash(user.password_hash) else None
    with db.session() as session:
        current = store.get_user(session, user.id)
        if current is None or current.status != UserStatus.ACTIVE:
            raise _account_frozen()
        if new_hash is not None:
            current.password_hash = new_hash
        tokens = _start_session(session, current, keys)
        _security_event(session, LoginSucceeded, current.id, client)
        return SignedIn(current, tokens)


def refresh(db: Database, keys: KeyRing, presented: str | None, client: ClientInfo) -> SignedIn:
    """Rotate a refresh token: a new pair in the same session. A token presented twice revokes
    its whole session (``auth.refresh_reused``); that revocation is committed before the
    refusal."""
    if presented is None:
        raise Unauthenticated("invalid_refresh_token", "no refresh token presented")
    with db.session() as session:
        outcome = _rotate(session, presented, keys, client)
    if isinstance(outcome, DomainError):
        raise outcome
    return outcome


def _rotate(
    session: Session, presented: str, keys: KeyRing, client: ClientInfo
) -> SignedIn | DomainError:
    """The new pair, or the refusal to raise once the session has committed. The database
    decides, not the signature, so a token outlives the key that signed it (the operator may
    delete old keys)."""
    now = utcnow()
    invalid = Unauthenticated("invalid_refresh_token", "refresh token is invalid or expired")
    row = store.refresh_token(session, presented, lock=True)
    family = None if row is None else store.get_family(session, row.family_id, lock=True)
    if row is None or family is None or family.revoked_at is not None:
        return invalid
    if row.used_at is not None:
        _revoke(family, "refresh_token_reused")
        _security_event(session, RefreshReused, family.user_id, client)
        return Unauthenticated(
            "refresh_token_reused", "refresh token already used; session revoked"
        )
    if row.expires_at <= now:
        return invalid
    user = store.get_user(session, family.user_id)
    if user is None:
        return invalid
    if user.status == UserStatus.FROZEN:
        return _account_frozen()  # the token stays unused: the session resumes once unfrozen
    tokens = _issue_pair(session, user, family.id, keys)
    row.used_at = now
    row.rotated_to = uuid.UUID(tokens.refresh.jti)
    return SignedIn(user, tokens)


def logout(
    session: Session,
    presented: str | None,
    *,
    caller: uuid.UUID | None = None,
    sid: uuid.UUID | None = None,
) -> None:
    """End one session: the family of a presented refresh token, else — when the client
    presented only its access token — that token's session ``sid``, if it is ``caller``'s.
    Nothing to end (unknown, already revoked, a token without ``sid``) is fine."""
    if presented is not None:
        family = _family_of(session, presented, lock=True)
    elif sid is not None:
        family = store.get_family(session, sid, lock=True)
        # ``sid`` comes from a verified token, so it is the caller's; the check only keeps
        # this use case from ending someone else's session whoever calls it.
        if family is not None and family.user_id != caller:
            family = None
    else:
        family = None
    if family is not None:
        _revoke(family, "logout")


# ---- the user's own account ---------------------------------------------------------------------


def profile(session: Session, user_id: uuid.UUID) -> User:
    """The signed-in user (``unauthorized`` when the token's user no longer exists)."""
    user = store.get_user(session, user_id)
    if user is None:
        raise _unknown_user()
    return user


def update_profile(session: Session, user_id: uuid.UUID, name: str) -> User:
    """Change the display name (already trimmed and checked by the request schema)."""
    user = store.get_user(session, user_id, lock=True)
    if user is None:
        raise _unknown_user()
    if user.name != name:
        user.name = name
        session.flush()
    return user


def request_verification(
    db: Database, limiter: SlidingWindow, mail: AccountMail, user_id: uuid.UUID
) -> None:
    """Mail a verification link (valid 24 h). The token is committed before the mail is sent;
    a failed send is answered (``dependency_unavailable``), so the user knows to retry."""
    with db.session() as session:
        user = profile(session, user_id)
        if user.email_verified:
            raise Conflict("email_already_verified", "this email address is already verified")
    limiter.acquire(
        [Counter(MAIL_PER_ACCOUNT, f"verify:{user_id}")], "too_many_requests", "too many mails"
    )
    with db.session() as session:
        token = issue_mail_token(session, user.id, VERIFY)
    try:
        mail.send_verification(user.email, user.name, token)
    except MailError:
        log.warning("verification_mail_failed", user_id=str(user.id))
        raise Unavailable(detail="the mail could not be sent; retry") from None


def verify_email(session: Session, token: str) -> None:
    """Use a verification link (``auth.user_verified``). The token is the credential: the link
    may be opened in any browser."""
    user_id = consume_mail_token(session, token, VERIFY)
    user = None if user_id is None else store.get_user(session, user_id, lock=True)
    if user is None:
        raise _invalid_link()
    _mark_verified(session, user, actor=str(user.id))
    retire_mail_tokens(session, user.id, VERIFY)


def request_password_reset(
    db: Database, limiter: SlidingWindow, mail: AccountMail, email: str
) -> None:
    """Mail a reset link (valid 30 min) to an ACTIVE account. Runs after the answer went out,
    so it never raises: every outcome is the same for the client (no account enumeration);
    failures are logged (never the token or link)."""
    user_id = ""
    try:
        limiter.acquire(
            [Counter(MAIL_PER_ACCOUNT, f"reset:{hashed(email)}")],
            "too_many_requests",
            "too many mails",
        )
        with db.session() as session:
            user = store.get_user_by_email(session, email)
            if user is None or user.status != UserStatus.ACTIVE:
                return
            user_id = str(user.id)
            token = issue_mail_token(session, user.id, RESET)
        mail.send_password_reset(user.email, user.name, token)
    except RateLimited:
        log.info("password_reset_mail_capped")
    except MailError:
        log.warning("password_reset_mail_failed", user_id=user_id)
    except Exception as exc:  # nobody to answer to: log, never crash
        log.error("password_reset_request_failed", error=type(exc).__name__)


def reset_password(db: Database, token: str, new_password: str, client: ClientInfo) -> None:
    """Use a reset link once: new password, every session revoked, other reset links retired,
    security event ``auth.password_reset``. A weak password leaves the link usable."""
    with db.session() as session:
        user_id = peek_mail_token(session, token, RESET)
        user = None if user_id is None else store.get_user(session, user_id)
    if user is None:
        raise _invalid_link()
    check_new_password(new_password, user.email)
    new_hash = hash_password(new_password)  # slow: outside the transaction
    with db.session() as session:
        if consume_mail_token(session, token, RESET) != user.id:
            raise _invalid_link()  # used meanwhile (a concurrent reset won)
        current = store.get_user(session, user.id, lock=True)
        assert current is not None
        current.password_hash = new_hash
        store.revoke_user_families(session, user.id, "password_reset")
        retire_mail_tokens(session, user.id, RESET)
        _security_event(session, PasswordReset, user.id, client)


def change_password(
    db: Database,
    limiter: SlidingWindow,
    *,
    user_id: uuid.UUID,
    current_password: str,
    new_password: str,
    sid: uuid.UUID | None,
    refresh_token: str | None,
    ip: str,
) -> None:
    """Keep the caller's session — the access token's ``sid``, else the session of the
    presented ``refresh_token`` — and revoke the user's others; neither known: all of them."""
    with db.session() as session:
        user = profile(session, user_id)
    check_new_password(new_password, user.email)
    # Guessing the current password with a stolen access token is a login brute force.
    attempt = _login_attempt(limiter, user.email, ip, "too many failures")
    if not verify_password(user.password_hash, current_password):
        raise Invalid("invalid_current_password", "the current password is wrong")
    limiter.release(attempt)
    new_hash = hash_password(new_password)
    with db.session() as session:
        keep = sid
        if keep is None and (family := _family_of(session, refresh_token)) is not None:
            keep = family.id
        current = store.get_user(session, user.id, lock=True)
        if current is None:
            raise _unknown_user()
        current.password_hash = new_hash
        store.revoke_user_families(session, user.id, "password_changed", keep=keep)
        retire_mail_tokens(session, user.id, RESET)


def search_recipients(
    session: Session, limiter: SlidingWindow, user_id: uuid.UUID, prefix: str
) -> list[User]:
    """ACTIVE users by email prefix (normalised, see ``domain.search_prefix``), the caller
    excluded, at most 10; 60 searches per user per minute."""
    limiter.acquire(
        [Counter(SEARCH_PER_USER, str(user_id))], "too_many_requests", "too many searches"
    )
    return store.search_recipients(session, prefix, exclude=user_id, limit=SEARCH_MAX_RESULTS)


# ---- administration (gRPC, CLI) -----------------------------------------------------------------


def get_user(session: Session, user_id: uuid.UUID, *, lock: bool = False) -> User:
    user = store.get_user(session, user_id, lock=lock)
    if user is None:
        raise NotFound("user_not_found", f"no user {user_id}")
    return user


def search_users(
    session: Session, where: UserFilter, page_token: str = ""
) -> tuple[list[User], str | None]:
    """A page of users, newest first, and the token of the next page (``None`` at the end)."""
    after = domain.decode_cursor(page_token) if page_token else None
    users, last = store.search_users(session, where, after)
    return users, (domain.encode_cursor(*last) if last is not None else None)


def set_role(session: Session, user_id: uuid.UUID, role: Role, actor: str) -> User:
    """A changed role ends every session (their tokens carry the old role) and emits
    ``auth.role_changed``; the same role again is a no-op."""
    user = get_user(session, user_id, lock=True)
    if user.role != role:
        user.role = role.value
        store.revoke_user_families(session, user.id, "role_changed")
        emit(session, RoleChanged(user_id=user.id, role=role.value), actor=actor)
        session.flush()
    return user


def freeze(session: Session, user_id: uuid.UUID, reason: str, actor: str) -> User:
    """Freeze an account: every session ends, login and refresh answer ``account_frozen``
    (``auth.user_frozen`` with the reason); freezing a frozen account is a no-op."""
    reason = domain.freeze_reason(reason)
    user = get_user(session, user_id, lock=True)
    if user.status != UserStatus.FROZEN:
        user.status = UserStatus.FROZEN.value
        store.revoke_user_families(session, user.id, "frozen")
        emit(session, UserFrozen(user_id=user.id, reason=reason), actor=actor)
        session.flush()
    return user


def unfreeze(session: Session, user_id: uuid.UUID, actor: str) -> User:
    """Let the user sign in again (``auth.user_unfrozen``); old sessions stay ended."""
    user = get_user(session, user_id, lock=True)
    if user.status != UserStatus.ACTIVE:
        user.status = UserStatus.ACTIVE.value
        store.revoke_user_families(session, user.id, "unfrozen")
        emit(session, UserUnfrozen(user_id=user.id), actor=actor)
        session.flush()
    return user


def create_admin(db: Database, account: NewAccount) -> tuple[User, bool]:
    """A verified admin, or an existing user promoted (and verified) — their password kept.
    Returns the user and whether it is new."""
    password_hash = hash_password(account.password)  # slow: outside the transaction
    with db.session() as session:
        user = _create_user(
            session,
            email=account.email,
            name=account.name,
            password_hash=password_hash,
            role=Role.ADMIN,
            email_verified=True,
            actor=SYSTEM,
        )
        if user is not None:
            return user, True
        existing = store.get_user_by_email(session, account.email, lock=True)
        assert existing is not None, "the insert conflicted on this email"
        _mark_verified(session, existing, actor=SYSTEM)
        return set_role(session, existing.id, Role.ADMIN, actor=SYSTEM), False


# ---- shared steps -------------------------------------------------------------------------------


def _create_user(
    session: Session,
    *,
    email: str,
    name: str,
    password_hash: str,
    role: Role = Role.USER,
    email_verified: bool = False,
    actor: str | None = None,
) -> User | None:
    """Insert the user and emit ``auth.user_registered`` (by ``actor``, else the user
    themself); ``None`` when the email is taken."""
    user = store.insert_user(
        session,
        email=email,
        name=name,
        password_hash=password_hash,
        role=role,
        email_verified=email_verified,
    )
    if user is not None:
        registered = UserRegistered(user_id=user.id, email=user.email, name=user.name)
        emit(session, registered, actor=actor or str(user.id))
    return user


def _mark_verified(session: Session, user: User, actor: str) -> None:
    if not user.email_verified:
        user.email_verified = True
        emit(session, UserVerified(user_id=user.id), actor=actor)


def _start_session(session: Session, user: User, keys: KeyRing) -> TokenPair:
    """A new refresh family (one login) and its first access + refresh tokens."""
    family = store.insert_family(session, user.id)
    return _issue_pair(session, user, family.id, keys)


def _issue_pair(session: Session, user: User, family_id: uuid.UUID, keys: KeyRing) -> TokenPair:
    subject = TokenSubject(user.id, user.role, user.email, user.email_verified)
    access = issue(keys, subject, TokenType.ACCESS, sid=family_id)
    refresh_token = issue(keys, subject, TokenType.REFRESH, sid=family_id)
    store.insert_refresh_token(session, family_id, refresh_token)
    return TokenPair(access, refresh_token, family_id)


def _family_of(
    session: Session, presented: str | None, *, lock: bool = False
) -> RefreshFamily | None:
    """The session (refresh family) of a presented refresh token, if it exists."""
    row = None if presented is None else store.refresh_token(session, presented, lock=lock)
    return None if row is None else store.get_family(session, row.family_id, lock=lock)


def _revoke(family: RefreshFamily, reason: str) -> None:
    if family.revoked_at is None:
        family.revoked_at = utcnow()
        family.revoked_reason = reason


def _login_attempt(limiter: SlidingWindow, email: str, ip: str, detail: str) -> Reservation:
    """One password guess, counted per email and per client IP (5 and 50 per 15 min)."""
    counters = [Counter(LOGIN_PER_EMAIL, hashed(email)), Counter(LOGIN_PER_IP, ip)]
    return limiter.acquire(counters, "too_many_attempts", detail)


def _security_event(
    session: Session, event: type[SecurityEvent], user_id: uuid.UUID | None, client: ClientInfo
) -> None:
    """An audit security event: the user (if known), IP and user agent — never a secret."""
    data = event(user_id=user_id, ip=client.ip, user_agent=client.user_agent[:USER_AGENT_MAX])
    emit(session, data, actor=str(user_id) if user_id else "anonymous")
