"""auth's HTTP API under ``/api/v1/auth`` (services.md §1) — sessions (register, login, refresh,
logout), the account (me, email verification, forgotten and changed password, recipient
search) — and the JWKS at the root. Each route parses, calls one use case of
:mod:`mint.auth.actions` and answers; refusals are the use cases' domain errors."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Body, Query, Request, Response

from mint.auth import actions
from mint.auth.caller import AuthUser, current_caller
from mint.auth.cookies import (
    clear_session_cookies,
    presented_refresh,
    refresh_cookie,
    set_session_cookies,
)
from mint.auth.domain import EMAIL_MAX, ClientInfo, search_prefix
from mint.auth.schemas import (
    AuthOut,
    ChangePasswordBody,
    ForgotBody,
    LoginBody,
    RecipientOut,
    RecipientsOut,
    RefreshBody,
    RegisterBody,
    ResetBody,
    TokenBody,
    UpdateMeBody,
    UserOut,
)
from mint.auth.wiring import Wired
from mint.kit.domain import Invalid
from mint.kit.security import bearer_or_cookie, client_ip
from mint.kit.service import DbSession

router = APIRouter(tags=["auth"])
jwks_router = APIRouter(tags=["auth"])


def problems(*entries: tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` documenting problem+json answers: ``(status, "code: meaning")``."""
    out: dict[int | str, dict[str, Any]] = {}
    for status, text in entries:
        entry = out.setdefault(
            status, {"description": "", "content": {"application/problem+json": {}}}
        )
        entry["description"] = (entry["description"] + "; " if entry["description"] else "") + (
            text
        )
        if status == 429:
            entry["headers"] = {
                "Retry-After": {
                    "description": "seconds until the window frees",
                    "schema": {"type": "integer"},
                }
            }
    return out


_REDIS_DOWN = (503, "dependency_unavailable: rate limiting (Redis) is down: fail closed")
_MAIL_DOWN = (503, "dependency_unavailable: the mail server (or Redis) is down; retry")
_INVALID_TOKEN = (422, "invalid_token: unknown, expired or already used")


def client_of(request: Request, w: Wired) -> ClientInfo:
    """What security events record about the sender of ``request``."""
    return ClientInfo(client_ip(request, w.settings), request.headers.get("user-agent", ""))


def signed_in(response: Response, started: actions.SignedIn, w: Wired) -> AuthOut:
    """The session's cookies on ``response``, its tokens in the body."""
    set_session_cookies(response, started.tokens, w.settings)
    return AuthOut.model_validate(started)


# ---- sessions -----------------------------------------------------------------------------------


@router.post(
    "/register",
    status_code=201,
    response_model=AuthOut,
    responses=problems(
        (409, "email_taken"),
        (422, "validation_error"),
        (422, "weak_password: under 10 characters, one character class, or the email's name"),
        (429, "too_many_requests: MINT_REGISTER_RATE_PER_HOUR registrations per client IP"),
        _REDIS_DOWN,
    ),
)
def register(body: RegisterBody, w: Wired, request: Request, response: Response) -> AuthOut:
    started = actions.register(
        w.db,
        w.keys,
        w.limiter,
        email=body.email,
        password=body.password,
        name=body.name,
        ip=client_ip(request, w.settings),
        per_hour=w.settings.register_rate_per_hour,
    )
    return signed_in(response, started, w)


@router.post(
    "/login",
    response_model=AuthOut,
    responses=problems(
        (401, "invalid_credentials (same for an unknown email and a wrong password)"),
        (403, "account_frozen"),
        (422, "validation_error"),
        (429, "too_many_attempts: 5 failures per email or 50 per client IP in 15 min"),
        _REDIS_DOWN,
    ),
)
def login(body: LoginBody, w: Wired, request: Request, response: Response) -> AuthOut:
    started = actions.login(
        w.db,
        w.keys,
        w.limiter,
        email=body.email,
        password=body.password,
        client=client_of(request, w),
    )
    return signed_in(response, started, w)


@router.post(
    "/refresh",
    response_model=AuthOut,
    responses=problems(
        (401, "invalid_refresh_token"),
        (401, "refresh_token_reused: the whole session (family) is revoked"),
        (403, "account_frozen"),
        (403, "csrf_failed: cookie-presented token without X-CSRF-Token"),
    ),
)
def refresh(
    w: Wired,
    request: Request,
    response: Response,
    body: Annotated[RefreshBody | None, Body()] = None,
) -> AuthOut:
    token = presented_refresh(request, body, w.settings)
    started = actions.refresh(w.db, w.keys, token, client_of(request, w))
    return signed_in(response, started, w)


@router.post(
    "/logout",
    status_code=204,
    response_class=Response,
    responses=problems(
        (
            401,
            "unauthorized: no refresh token presented and the access token is invalid or "
            "expired (nothing was revoked)",
        ),
        (403, "csrf_failed: cookie-presented token without X-CSRF-Token"),
    ),
)
def logout(
    w: Wired, request: Request, body: Annotated[RefreshBody | None, Body()] = None
) -> Response:
    """Ends one session (refresh family): the refresh token's, presented in the body or the
    cookie; else, with only an access token (Bearer, or cookie + X-CSRF-Token), the session
    (``sid``) that token belongs to. No token at all: 204, nothing to end."""
    token = presented_refresh(request, body, w.settings)
    caller = None
    if token is None and bearer_or_cookie(request)[0] is not None:
        # Verified like any authenticated route: an access token that does not verify names
        # no session, and a 204 would tell the client its session ended when it did not.
        caller = current_caller(request, None, w)
    with w.db.session() as session:
        actions.logout(
            session,
            token,
            caller=None if caller is None else caller.user_id,
            sid=None if caller is None else caller.sid,
        )
    response = Response(status_code=204)
    clear_session_cookies(response, w.settings)
    return response


# ---- the account --------------------------------------------------------------------------------


@router.get("/me", response_model=UserOut, responses=problems((401, "unauthorized")))
def me(caller: AuthUser, session: DbSession) -> UserOut:
    return UserOut.model_validate(actions.profile(session, caller.user_id))


@router.patch(
    "/me",
    response_model=UserOut,
    responses=problems((401, "unauthorized"), (403, "csrf_failed"), (422, "validation_error")),
)
def update_me(body: UpdateMeBody, caller: AuthUser, w: Wired) -> UserOut:
    with w.db.session() as session:
        user = actions.update_profile(session, caller.user_id, body.name)
        return UserOut.model_validate(user)


@router.post(
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
def request_verification(caller: AuthUser, w: Wired) -> Response:
    """Mail ``{MINT_PUBLIC_URL}/verify-email?token=…`` (valid 24 h) to the caller."""
    actions.request_verification(w.db, w.limiter, w.mail, caller.user_id)
    return Response(status_code=202)


@router.post(
    "/verify-email",
    status_code=204,
    response_class=Response,
    responses=problems(_INVALID_TOKEN, (422, "validation_error")),
)
def verify_email(body: TokenBody, w: Wired) -> Response:
    """The token is the credential (the link may be opened in any browser): no JWT needed."""
    with w.db.session() as session:
        actions.verify_email(session, body.token)
    return Response(status_code=204)


@router.post("/password/forgot", status_code=202, response_class=Response)
def forgot_password(body: ForgotBody, w: Wired, background: BackgroundTasks) -> Response:
    """Always 202, at once and whatever the email: the lookup and the mail
    (``{MINT_PUBLIC_URL}/reset-password?token=…``, valid 30 min) happen after the answer, so
    neither the status nor the timing tells whether an account exists."""
    background.add_task(actions.request_password_reset, w.db, w.limiter, w.mail, body.email)
    return Response(status_code=202)


@router.post(
    "/password/reset",
    status_code=204,
    response_class=Response,
    responses=problems(_INVALID_TOKEN, (422, "weak_password"), (422, "validation_error")),
)
def reset_password(body: ResetBody, w: Wired, request: Request) -> Response:
    """Single use; revokes every session of the user; audit event ``auth.password_reset``."""
    actions.reset_password(w.db, body.token, body.new_password, client_of(request, w))
    return Response(status_code=204)


@router.post(
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
    body: ChangePasswordBody, caller: AuthUser, w: Wired, request: Request
) -> Response:
    """Keeps the caller's session and revokes the user's other sessions. A token without a
    ``sid`` and no refresh cookie cannot name its session: then every session is revoked."""
    actions.change_password(
        w.db,
        w.limiter,
        user_id=caller.user_id,
        current_password=body.current_password,
        new_password=body.new_password,
        sid=caller.sid,
        refresh_token=refresh_cookie(request),
        ip=client_ip(request, w.settings),
    )
    return Response(status_code=204)


@router.get(
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
    caller: AuthUser,
    w: Wired,
    session: DbSession,
    email: Annotated[str, Query(max_length=EMAIL_MAX)],
) -> RecipientsOut:
    """ACTIVE users by case-insensitive email prefix (≥ 3 characters), the caller excluded, at
    most 10, by email. Not paginated."""
    prefix = search_prefix(email)
    if prefix is None:  # answered like the kit's own request validation
        raise Invalid(
            "validation_error",
            "request validation failed",
            errors=[{"loc": ["query", "email"], "msg": "must be at least 3 characters"}],
        )
    users = actions.search_recipients(session, w.limiter, caller.user_id, prefix)
    return RecipientsOut(items=[RecipientOut.model_validate(user) for user in users])


@jwks_router.get("/.well-known/jwks.json")
def jwks(w: Wired, response: Response) -> dict[str, Any]:
    response.headers["Cache-Control"] = "public, max-age=60"
    return w.keys.jwks()
