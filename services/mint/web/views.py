"""How every page is served: the visitor's session and CSRF token, rendering, and the answers
to what goes wrong (sign in again, 404, 503 when a part of Mint is down, 403 for a forged
form, 500 for a bug) — always a page, never a stack trace or a JSON problem.

Every route of the app uses :class:`PageRoute`, which turns those exceptions into pages and
applies the cookie changes the request made (a refreshed session, a new CSRF token)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import quote

import structlog
from fastapi import Depends, Request
from fastapi.routing import APIRoute
from starlette.responses import HTMLResponse, RedirectResponse, Response

from mint.kit.security import FORWARDED_FOR, FORWARDED_FOR_PROOF, client_ip
from mint.kit.service import ServiceContext, wiring
from mint.web import csrf
from mint.web.client import Answer, ApiUnavailable
from mint.web.problems import FormErrors
from mint.web.session import (
    ACCESS_COOKIE,
    REFRESH_COOKIE,
    REFRESH_COOKIE_SECONDS,
    SignInRequired,
    Tokens,
    claims_of,
    needs_refresh,
)
from mint.web.wiring import Wiring

log = structlog.get_logger("mint.web")

Wired = Annotated[Wiring, Depends(wiring(Wiring))]

#: The access cookie outlives the token a little: an expired token is refreshed, not lost.
ACCESS_COOKIE_SECONDS = 3600


class PageNotFound(Exception):
    """The page (or the object it shows) does not exist: the 404 page."""


class CsrfRefused(Exception):
    """A state-changing request without the visitor's CSRF token: the 403 page."""


@dataclass
class CookieChange:
    name: str
    value: str | None  # None: delete
    max_age: int = 0
    httponly: bool = True


@dataclass
class Visit:
    """One request's view of the visitor: their tokens (if signed in), CSRF token, and the
    cookie changes to send back."""

    request: Request
    wiring: Wiring
    tokens: Tokens | None
    csrf_token: str
    changes: list[CookieChange] = field(default_factory=list)

    @property
    def signed_in(self) -> bool:
        return self.tokens is not None

    @property
    def claims(self) -> dict[str, Any]:
        return claims_of(self.tokens.access) if self.tokens else {}

    def start_session(self, tokens: Tokens) -> None:
        """Signed in (or refreshed): new cookies; a new CSRF token at sign-in too."""
        self.tokens = tokens
        self.changes += [
            CookieChange(ACCESS_COOKIE, tokens.access, ACCESS_COOKIE_SECONDS),
            CookieChange(REFRESH_COOKIE, tokens.refresh, REFRESH_COOKIE_SECONDS),
        ]

    def new_csrf_token(self) -> None:
        self.csrf_token = csrf.new_token()
        self.changes.append(CookieChange(csrf.COOKIE, self.csrf_token, REFRESH_COOKIE_SECONDS))

    def end_session(self) -> None:
        self.tokens = None
        self.changes += [CookieChange(ACCESS_COOKIE, None), CookieChange(REFRESH_COOKIE, None)]

    # ---- calling the APIs as this visitor --------------------------------------------------

    def call(self, method: str, path: str, **kwargs: Any) -> Answer:
        """An API call with the visitor's access token, refreshed first when it is about to
        expire, and once more if the API still answers 401. ``SignInRequired`` when the
        session is over."""
        tokens = self.require_tokens()
        margin = self.wiring.settings.refresh_margin_seconds
        if needs_refresh(tokens.access, margin):
            tokens = self._refresh(tokens)
        kwargs["headers"] = self._forwarded(kwargs.get("headers"))
        answer = self.wiring.api.call(method, path, token=tokens.access, **kwargs)
        if answer.status == 401:
            tokens = self._refresh(tokens)
            answer = self.wiring.api.call(method, path, token=tokens.access, **kwargs)
            if answer.status == 401:
                raise SignInRequired(answer.code)
        return answer

    def call_public(self, method: str, path: str, **kwargs: Any) -> Answer:
        """An API call that needs no session (sign in, reset password, …)."""
        kwargs["headers"] = self._forwarded(kwargs.get("headers"))
        return self.wiring.api.call(method, path, **kwargs)

    def _forwarded(self, headers: Mapping[str, str] | None) -> dict[str, str]:
        """The visitor's address for the gateway (limits per client address — registration,
        sign-in — count the visitor, not this app), proven by the internal token."""
        sent = dict(headers or {})
        settings = self.wiring.settings
        token = settings.internal_token
        # Only to the platform's own gateway (MINT_GATEWAY_URL, set by the dev runner): never
        # the internal token to a public URL.
        if token and settings.gateway_url:
            sent[FORWARDED_FOR] = client_ip(self.request, settings)
            sent[FORWARDED_FOR_PROOF] = token
        return sent

    def require_tokens(self) -> Tokens:
        if self.tokens is None:
            raise SignInRequired("no_session")
        return self.tokens

    def _refresh(self, tokens: Tokens) -> Tokens:
        fresh = self.wiring.refresher.rotate(tokens.refresh)
        self.start_session(fresh)
        return fresh

    def refresh_now(self) -> None:
        """Refresh at once (after something that changes the token's claims, e.g. the email
        verified)."""
        if self.tokens is not None:
            self._refresh(self.tokens)


def _origins(request: Request, wired: Wiring) -> list[str]:
    host = request.headers.get("x-forwarded-host") or request.headers.get("host", "")
    proto = request.headers.get("x-forwarded-proto") or request.url.scheme
    return [wired.settings.public_url, f"{proto}://{host}", str(request.base_url)]


async def visit(request: Request, wired: Wired) -> Visit:
    """The visitor, with a CSRF token (issued on their first page) checked on every
    state-changing request: the ``csrf_token`` form field or the ``X-CSRF-Token`` header
    (htmx) must equal the cookie, and the Origin must be the app's."""
    cookie = request.cookies.get(csrf.COOKIE)
    access, refresh = request.cookies.get(ACCESS_COOKIE), request.cookies.get(REFRESH_COOKIE)
    tokens = Tokens(access or "", refresh) if refresh else None
    state = Visit(request, wired, tokens, cookie or "")
    if request.method not in csrf.SAFE_METHODS:
        submitted = request.headers.get(csrf.HEADER)
        if submitted is None and _is_form(request):
            form = await request.form()
            value = form.get(csrf.FIELD)
            submitted = value if isinstance(value, str) else None
        origin = request.headers.get("origin") or request.headers.get("referer")
        if not csrf.request_is_allowed(
            request.method, cookie, submitted, origin, _origins(request, wired)
        ):
            raise CsrfRefused()
    if not cookie or len(cookie) < 32:
        state.new_csrf_token()
    request.state.visit = state
    return state


def _is_form(request: Request) -> bool:
    kind = request.headers.get("content-type", "")
    return kind.startswith(("application/x-www-form-urlencoded", "multipart/form-data"))


Visitor = Annotated[Visit, Depends(visit)]


def signed_in(state: Visitor) -> Visit:
    """A page for signed-in visitors only (others are sent to sign in); the session is
    refreshed here when its access token is about to expire, whatever the page calls."""
    tokens = state.require_tokens()
    if needs_refresh(tokens.access, state.wiring.settings.refresh_margin_seconds):
        state.refresh_now()
    return state


User = Annotated[Visit, Depends(signed_in)]


# ---- rendering -------------------------------------------------------------------------------


def render(
    state: Visit | None,
    template: str,
    *,
    request: Request,
    status: int = 200,
    title: str,
    **context: Any,
) -> HTMLResponse:
    wired: Wiring = _context(request).wired(Wiring)
    page = wired.templates.get_template(template).render(
        request=request,
        path=request.url.path,
        title=title,
        signed_in=state is not None and state.signed_in,
        me=state.claims if state is not None else {},
        csrf_token=state.csrf_token if state is not None else "",
        csrf_field=csrf.FIELD,
        errors=context.pop("errors", None) or FormErrors(),
        values=context.pop("values", None) or {},
        notice=context.pop("notice", None) or request.query_params.get("notice"),
        **context,
    )
    return HTMLResponse(page, status_code=status, headers={"Cache-Control": "no-store"})


def redirect(url: str, request: Request) -> Response:
    """Post/redirect/get; an htmx request is told to navigate (HX-Redirect)."""
    if request.headers.get("hx-request") == "true":
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def with_notice(path: str, notice: str) -> str:
    """``path`` showing a one-time notice (a ``role="status"`` message) when it is opened."""
    separator = "&" if "?" in path else "?"
    return f"{path}{separator}notice={quote(notice, safe='')}"


def new_key() -> str:
    """An ``Idempotency-Key``: one per rendered money form."""
    return str(uuid.uuid4())


def _context(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


# ---- the route class: exceptions become pages, cookie changes are applied --------------------


class PageRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                response = await handler(request)
            except SignInRequired:
                response = _sign_in_again(request)
            except PageNotFound:
                response = error_page(request, 404)
            except CsrfRefused:
                response = error_page(request, 403)
            except ApiUnavailable as exc:
                log.warning("page_dependency_unavailable", path=request.url.path, what=str(exc))
                response = error_page(request, 503)
            except (asyncio.CancelledError, KeyboardInterrupt):
                raise
            except Exception:
                log.exception("page_failed", path=request.url.path)
                response = error_page(request, 500)
            apply_cookie_changes(request, response)
            return response

        return page


def _sign_in_again(request: Request) -> Response:
    state: Visit | None = getattr(request.state, "visit", None)
    if state is not None and state.tokens is not None:
        state.end_session()
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET" or target.startswith("/sign-in"):
        target = "/dashboard"
    return redirect(f"/sign-in?next={quote(target, safe='')}", request)


ERROR_PAGES: Mapping[int, tuple[str, str]] = {
    403: ("This form has expired", "Reload the page and try again."),
    404: ("Page not found", "There is nothing at this address."),
    500: ("Something went wrong", "We could not show this page. Try again in a moment."),
    503: (
        "Mint is temporarily unavailable",
        "A part of Mint is not answering right now. Your money is safe; try again in a moment.",
    ),
}


def error_page(request: Request, status: int) -> HTMLResponse:
    state: Visit | None = getattr(request.state, "visit", None)
    heading, text = ERROR_PAGES[status]
    return render(
        state,
        "error.html",
        request=request,
        status=status,
        title=heading,
        heading=heading,
        text=text,
        code=status,
    )


def apply_cookie_changes(request: Request, response: Response) -> None:
    state: Visit | None = getattr(request.state, "visit", None)
    if state is None:
        return
    secure = _served_over_https(request)
    for change in state.changes:
        if change.value is None:
            response.delete_cookie(
                change.name, path="/", secure=secure, httponly=True, samesite="lax"
            )
        else:
            response.set_cookie(
                change.name,
                change.value,
                max_age=change.max_age,
                path="/",
                secure=secure,
                httponly=change.httponly,
                samesite="lax",
            )


def _served_over_https(request: Request) -> bool:
    proto = request.headers.get("x-forwarded-proto") or request.url.scheme
    return proto == "https"
