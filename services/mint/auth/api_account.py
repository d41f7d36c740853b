"""auth's account routes: email verification, forgotten password, password change and the
recipient search (services.md §1).

Mail tokens are committed before the mail is sent (no mail from inside a transaction), and a
failed send is never silent: ``/verify-email/request`` answers 503 so the user can retry;
``/password/forgot`` always answers 202 (no account enumeration) and logs the failure.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, BackgroundTasks, Query, Request, Response

from mint.auth import mailing, store
from mint.auth.api import weak_password
from mint.auth.domain import (
    EMAIL_MAX,
    SEARCH_MAX_RESULTS,
    MailTokenPurpose,
    UserStatus,
    password_problems,
    search_prefix,
)
from mint.auth.mailtokens import (
    consume_mail_token,
    issue_mail_token,
    peek_mail_token,
    retire_mail_tokens,
)
from mint.auth.passwords import hash_password, verify_password
from mint.auth.ratelimit import (
    LOGIN_PER_EMAIL,
    LOGIN_PER_IP,
    MAIL_PER_ACCOUNT,
    SEARCH_PER_USER,
    Counter,
    RateLimitedError,
    hashed,
    too_many,
)
from mint.auth.schemas import ChangePasswordBody, ForgotBody, RecipientsOut, ResetBody, TokenBody
from mint.auth.web import (
    REFRESH_COOKIE,
    AuthUser,
    auth_settings,
    limiter,
    problems,
    security_event,
)
from mint.kit.errors import Problem, unauthorized
from mint.kit.mail import MailError
from mint.kit.security import client_ip
from mint.kit.service import Ctx, ServiceContext

log = structlog.get_logger("mint.auth.account")
account_router = APIRouter(tags=["auth"])

VERIFY = MailTokenPurpose.VERIFY_EMAIL
RESET = MailTokenPurpose.PASSWORD_RESET
_INVALID_TOKEN = (422, "invalid_token: unknown, expired or already used")
_MAIL_DOWN = (503, "dependency_unavailable: the mail server (or Redis) is down; retry")
_REDIS_DOWN = (503, "dependency_unavailable: rate limiting (Redis) is down: fail closed")


def invalid_token() -> Problem:
    return Problem(422, "invalid_token", "the link is invalid, expired or already used")


# ---- email verification ------------------------------------------------------------------------


@account_router.post(
    "/verify-email/request",
    status_code=202,
    response_class=Response,
    responses=problems(
        (401, "unauthorized"),
        (403, "csrf_failed"),
        (409, "email_already_verified"),
        (429, "too_many_requests: 5 mails per account per hour"),
        _MAIL_DOWN,
    ),
)
def request_verification(principal: AuthUser, ctx: Ctx) -> Response:
    """Mail ``{MINT_PUBLIC_URL}/verify-email?token=…`` (valid 24 h) to the caller."""
    with ctx.database().session() as session:
        user = store.get_user(session, principal.user_id)
        if user is None:
            raise unauthorized("unknown user")
        if user.email_verified:
            raise Problem(409, "email_already_verified", "this email address is already verified")
    try:
        limiter(ctx).acquire([Counter(MAIL_PER_ACCOUNT, f"verify:{principal.user_id}")])
    except RateLimitedError as limited:
        raise too_many("too_many_requests", limited.retry_after, "too many mails") from None
    with ctx.database().session() as session:
        token = issue_mail_token(session, user.id, VERIFY)
    # Committed; now send. A failure is answered (503), so the user knows to retry.
    try:
        mailing.send_verification(auth_settings(ctx), user.email, user.name, token)
    except MailError:
        log.warning("verification_mail_failed", user_id=str(user.id))
        raise Problem(503, "dependency_unavailable", "the mail could not be sent; retry") from None
    return Response(status_code=202)


@account_router.post(
    "/verify-email",
    status_code=204,
    response_class=Response,
    responses=problems(_INVALID_TOKEN, (422, "validation_error")),
)
def verify_email(body: TokenBody, ctx: Ctx) -> Response:
    """The token is the credential (the link may be opened in any browser): no JWT needed."""
    with ctx.database().session() as session:
        user_id = consume_mail_token(session, body.token, VERIFY)
        user = None if user_id is None else store.get_user(session, user_id, lock=True)
        if user is None:
            raise invalid_token()
        if not user.email_verified:
            user.email_verified = True
            store.emit_auth_event(
                session, "auth.user_verified", user.id, {"user_id": str(user.id)}, str(user.id)
            )
        retire_mail_tokens(session, user.id, VERIFY)
    return Response(status_code=204)


# ---- forgotten password ------------------------------------------------------------------------


def _send_reset(ctx: ServiceContext, email: str) -> None:
    """After the 202 has gone out: cap, look up, commit a token, send. Every outcome is the
    same for the client; failures are logged (never the token or link)."""
    user_id = ""
    try:
        limiter(ctx).acquire([Counter(MAIL_PER_ACCOUNT, f"reset:{hashed(email)}")])
        with ctx.database().session() as session:
            user = store.get_user_by_email(session, email)
            if user is None or user.status != UserStatus.ACTIVE.value:
                return
            user_id = str(user.id)
            token = issue_mail_token(session, user.id, RESET)
        mailing.send_password_reset(auth_settings(ctx), user.email, user.name, token)
    except RateLimitedError:
        log.info("password_reset_mail_capped")
    except MailError:
        log.warning("password_reset_mail_failed", user_id=user_id)
    except Exception as exc:  # a background task has nobody to answer to: log, never crash
        log.error("password_reset_request_failed", error=type(exc).__name__)


@account_router.post("/password/forgot", status_code=202, response_class=Response)
def forgot_password(body: ForgotBody, ctx: Ctx, background: BackgroundTasks) -> Response:
    """Always 202, at once and whatever the email: the lookup and the mail
    (``{MINT_PUBLIC_URL}/reset-password?token=…``, valid 30 min) happen after the answer, so
    neither the status nor the timing tells whether an account exists."""
    background.add_task(_send_reset, ctx, body.email)
    return Response(status_code=202)


@account_router.post(
    "/password/reset",
    status_code=204,
    response_class=Response,
    responses=problems(_INVALID_TOKEN, (422, "weak_password"), (422, "validation_error")),
)
def reset_password(body: ResetBody, ctx: Ctx, request: Request) -> Response:
    """Single use; revokes every session of the user; audit event ``auth.password_reset``."""
    db = ctx.database()
    with db.session() as session:
        user_id = peek_mail_token(session, body.token, RESET)
        user = None if user_id is None else store.get_user(session, user_id)
    if user is None:
        raise invalid_token()
    reasons = password_problems(body.new_password, user.email)
    if reasons:
        raise weak_password(reasons)  # the link stays usable for a better password
    new_hash = hash_password(body.new_password)  # slow: outside the transaction
    with db.session() as session:
        if consume_mail_token(session, body.token, RESET) != user.id:
            raise invalid_token()  # used meanwhile (a concurrent reset won)
        current = store.get_user(session, user.id, lock=True)
        assert current is not None
        current.password_hash = new_hash
        store.revoke_user_families(session, user.id, "password_reset")
        retire_mail_tokens(session, user.id, RESET)
        security_event(session, request, ctx, "auth.password_reset", user.id)
    return Response(status_code=204)


# ---- password change ---------------------------------------------------------------------------


def _caller_session(
    request: Request, sid: uuid.UUID | None, ctx: ServiceContext
) -> uuid.UUID | None:
    """The caller's refresh family: the access token's ``sid``, else the refresh cookie's."""
    if sid is not None:
        return sid
    cookie = request.cookies.get(REFRESH_COOKIE)
    if not cookie:
        return None
    with ctx.database().session() as session:
        family = store.family_of(session, cookie)
        return None if family is None else family.id


@account_router.post(
    "/password/change",
    status_code=204,
    response_class=Response,
    responses=problems(
        (401, "unauthorized"),
        (403, "csrf_failed"),
        (422, "invalid_current_password: current_password is wrong (counts as a failed login)"),
        (422, "weak_password"),
        (422, "validation_error"),
        (429, "too_many_attempts: the login failure limits apply"),
        _REDIS_DOWN,
    ),
)
def change_password(
    body: ChangePasswordBody, principal: AuthUser, ctx: Ctx, request: Request
) -> Response:
    """Keeps the caller's session and revokes the user's other sessions. A token without a
    ``sid`` and no refresh cookie cannot name its session: then every session is revoked."""
    db = ctx.database()
    with db.session() as session:
        user = store.get_user(session, principal.user_id)
    if user is None:
        raise unauthorized("unknown user")
    reasons = password_problems(body.new_password, user.email)
    if reasons:
        raise weak_password(reasons)
    # Guessing the current password with a stolen access token is a login brute force.
    window = limiter(ctx)
    try:
        attempt = window.acquire(
            [
                Counter(LOGIN_PER_EMAIL, hashed(user.email)),
                Counter(LOGIN_PER_IP, client_ip(request, ctx.settings)),
            ]
        )
    except RateLimitedError as limited:
        raise too_many("too_many_attempts", limited.retry_after, "too many failures") from None
    if not verify_password(user.password_hash, body.current_password):
        raise Problem(422, "invalid_current_password", "the current password is wrong")
    window.release(attempt)
    keep = _caller_session(request, principal.sid, ctx)
    new_hash = hash_password(body.new_password)
    with db.session() as session:
        current = store.get_user(session, user.id, lock=True)
        if current is None:
            raise unauthorized("unknown user")
        current.password_hash = new_hash
        store.revoke_user_families(session, user.id, "password_changed", keep=keep)
        retire_mail_tokens(session, user.id, RESET)
    return Response(status_code=204)


# ---- recipient search --------------------------------------------------------------------------


@account_router.get(
    "/users/search",
    response_model=RecipientsOut,
    responses=problems(
        (401, "unauthorized"),
        (422, "validation_error: email must be a prefix of at least 3 characters"),
        (429, "too_many_requests: 60 searches per minute"),
        _REDIS_DOWN,
    ),
)
def search_users(
    principal: AuthUser, ctx: Ctx, email: Annotated[str, Query(max_length=EMAIL_MAX)]
) -> dict[str, Any]:
    """ACTIVE users by case-insensitive email prefix (≥ 3 characters), the caller excluded, at
    most 10, by email. Not paginated."""
    prefix = search_prefix(email)
    if prefix is None:
        raise Problem(
            422,
            "validation_error",
            "request validation failed",
            errors=[{"loc": ["query", "email"], "msg": "must be at least 3 characters"}],
        )
    try:
        limiter(ctx).acquire([Counter(SEARCH_PER_USER, str(principal.user_id))])
    except RateLimitedError as limited:
        raise too_many("too_many_requests", limited.retry_after, "too many searches") from None
    with ctx.database().session() as session:
        users = store.search_recipients(
            session, prefix, exclude=principal.user_id, limit=SEARCH_MAX_RESULTS
        )
        return {"items": [{"id": str(u.id), "email": u.email, "name": u.name} for u in users]}
