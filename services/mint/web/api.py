"""The account pages: sign up, sign in, sign out, verify email (the mailed link lands here)
and resend, forgot and reset password (the mailed link), settings (name, password)."""

from __future__ import annotations

import contextlib
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import Response

from mint.web.client import ApiUnavailable
from mint.web.problems import FormErrors, form_errors
from mint.web.session import Tokens
from mint.web.views import PageRoute, User, Visit, Visitor, redirect, render, with_notice

router = APIRouter(route_class=PageRoute, include_in_schema=False)

AUTH = "/api/v1/auth"
Text = Annotated[str, Form()]


def _next_page(target: str | None) -> str:
    """Where to go after signing in: a path of this app only (no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/dashboard"


@router.get("/")
def home(state: Visitor, request: Request) -> Response:
    if state.signed_in:
        return redirect("/dashboard", request)
    return render(state, "home.html", request=request, title="Welcome")


# ---- sign up / in / out -------------------------------------------------------------------------


@router.get("/sign-up")
def sign_up_page(state: Visitor, request: Request) -> Response:
    return render(state, "sign_up.html", request=request, title="Create your account")


@router.post("/sign-up")
def sign_up(
    state: Visitor, request: Request, name: Text = "", email: Text = "", password: Text = ""
) -> Response:
    values = {"name": name, "email": email}
    errors = FormErrors()
    for field, value, message in (
        ("name", name, "Enter your name."),
        ("email", email, "Enter your email address."),
        ("password", password, "Choose a password."),
    ):
        if not value.strip():
            errors.add(field, message)
    if not errors:
        answer = state.call_public(
            "POST", f"{AUTH}/register", json={"name": name, "email": email, "password": password}
        )
        if answer.ok:
            _signed_in(state, answer.json())
            return redirect(with_notice("/dashboard", _welcome(state)), request)
        errors = form_errors(answer.problem, {"name", "email", "password"})
    return render(
        state,
        "sign_up.html",
        request=request,
        status=422,
        title="Create your account",
        errors=errors,
        values=values,
    )


@router.get("/sign-in")
def sign_in_page(
    state: Visitor, request: Request, next: Annotated[str | None, Query()] = None
) -> Response:
    return render(
        state, "sign_in.html", request=request, title="Sign in", next_page=_next_page(next)
    )


@router.post("/sign-in")
def sign_in(
    state: Visitor,
    request: Request,
    email: Text = "",
    password: Text = "",
    next_page: Text = "/dashboard",
) -> Response:
    errors = FormErrors()
    if not email.strip():
        errors.add("email", "Enter your email address.")
    if not password:
        errors.add("password", "Enter your password.")
    if not errors:
        answer = state.call_public(
            "POST", f"{AUTH}/login", json={"email": email, "password": password}
        )
        if answer.ok:
            _signed_in(state, answer.json())
            return redirect(_next_page(next_page), request)
        errors = form_errors(answer.problem, {"email", "password"})
    return render(
        state,
        "sign_in.html",
        request=request,
        status=422 if errors.fields else 401,
        title="Sign in",
        errors=errors,
        values={"email": email},
        next_page=_next_page(next_page),
    )


@router.post("/sign-out")
def sign_out(state: Visitor, request: Request) -> Response:
    if state.tokens is not None:
        # Ends the session at auth (its refresh family); the cookies go whatever it answers.
        with contextlib.suppress(ApiUnavailable):
            state.call_public(
                "POST", f"{AUTH}/logout", json={"refresh_token": state.tokens.refresh}
            )
    state.end_session()
    state.new_csrf_token()
    return redirect(with_notice("/sign-in", "You are signed out."), request)


def _welcome(state: Visit) -> str:
    """Registering mails nothing by itself (services.md §1): the app asks for the
    verification mail at once."""
    try:
        mailed = state.call("POST", f"{AUTH}/verify-email/request").ok
    except ApiUnavailable:
        mailed = False
    if mailed:
        return "Welcome! We mailed you a link to verify your email."
    return "Welcome! We could not mail your verification link; use “Send me a new link”."


def _signed_in(state: Visit, body: dict[str, object]) -> None:
    state.start_session(Tokens.from_auth(dict(body)))
    state.new_csrf_token()  # a token fixed before sign-in is never the session's


# ---- verify email ----------------------------------------------------------------------------


@router.get("/verify-email")
def verify_email_page(
    state: Visitor, request: Request, token: Annotated[str, Query()] = ""
) -> Response:
    return render(
        state, "verify_email.html", request=request, title="Verify your email", token=token
    )


@router.post("/verify-email")
def verify_email(state: Visitor, request: Request, token: Text = "") -> Response:
    errors = FormErrors()
    if not token:
        errors.add(None, "This link is incomplete. Open the link from the mail again.")
    else:
        answer = state.call_public("POST", f"{AUTH}/verify-email", json={"token": token})
        if answer.ok:
            if state.signed_in:
                state.refresh_now()  # the new access token says email_verified
                return redirect(with_notice("/dashboard", "Your email is verified."), request)
            return redirect(with_notice("/sign-in", "Your email is verified. Sign in."), request)
        errors = form_errors(answer.problem, set())
    return render(
        state,
        "verify_email.html",
        request=request,
        status=422,
        title="Verify your email",
        token=token,
        errors=errors,
    )


@router.post("/verify-email/resend")
def resend_verification(state: User, request: Request) -> Response:
    answer = state.call("POST", f"{AUTH}/verify-email/request")
    if answer.ok:
        notice = "We sent you a new verification link."
    else:
        notice = form_errors(answer.problem, set()).general[0]
    return redirect(with_notice("/dashboard", notice), request)


# ---- forgot / reset password -------------------------------------------------------------------


@router.get("/forgot-password")
def forgot_page(state: Visitor, request: Request) -> Response:
    return render(state, "forgot_password.html", request=request, title="Forgot your password")


@router.post("/forgot-password")
def forgot(state: Visitor, request: Request, email: Text = "") -> Response:
    errors = FormErrors()
    if not email.strip():
        errors.add("email", "Enter your email address.")
    else:
        answer = state.call_public("POST", f"{AUTH}/password/forgot", json={"email": email})
        if answer.ok:
            return render(
                state,
                "forgot_password.html",
                request=request,
                title="Check your mail",
                sent_to=email,
            )
        errors = form_errors(answer.problem, {"email"})
    return render(
        state,
        "forgot_password.html",
        request=request,
        status=422,
        title="Forgot your password",
        errors=errors,
        values={"email": email},
    )


@router.get("/reset-password")
def reset_page(state: Visitor, request: Request, token: Annotated[str, Query()] = "") -> Response:
    return render(
        state, "reset_password.html", request=request, title="Choose a new password", token=token
    )


@router.post("/reset-password")
def reset(state: Visitor, request: Request, token: Text = "", new_password: Text = "") -> Response:
    errors = FormErrors()
    if not new_password:
        errors.add("new_password", "Choose a new password.")
    if not token:
        errors.add(None, "This link is incomplete. Open the link from the mail again.")
    if not errors:
        answer = state.call_public(
            "POST", f"{AUTH}/password/reset", json={"token": token, "new_password": new_password}
        )
        if answer.ok:
            state.end_session()  # a reset ends every session
            return redirect(with_notice("/sign-in", "Your password is changed. Sign in."), request)
        errors = form_errors(
            answer.problem, {"new_password"}, code_fields={"weak_password": "new_password"}
        )
    return render(
        state,
        "reset_password.html",
        request=request,
        status=422,
        title="Choose a new password",
        token=token,
        errors=errors,
    )


# ---- settings ----------------------------------------------------------------------------------


def _settings_page(
    state: Visit, request: Request, status: int = 200, **context: object
) -> Response:
    me = state.call("GET", f"{AUTH}/me").json()
    return render(
        state, "settings.html", request=request, status=status, title="Settings", user=me, **context
    )


@router.get("/settings")
def settings_page(state: User, request: Request) -> Response:
    return _settings_page(state, request)


@router.post("/settings/name")
def change_name(state: User, request: Request, name: Text = "") -> Response:
    errors = FormErrors()
    if not name.strip():
        errors.add("name", "Enter your name.")
    else:
        answer = state.call("PATCH", f"{AUTH}/me", json={"name": name})
        if answer.ok:
            return redirect(with_notice("/settings", "Your name is saved."), request)
        errors = form_errors(answer.problem, {"name"})
    return _settings_page(state, request, 422, name_errors=errors, name_values={"name": name})


@router.post("/settings/password")
def change_password(
    state: User, request: Request, current_password: Text = "", new_password: Text = ""
) -> Response:
    errors = FormErrors()
    if not current_password:
        errors.add("current_password", "Enter your current password.")
    if not new_password:
        errors.add("new_password", "Choose a new password.")
    if not errors:
        answer = state.call(
            "POST",
            f"{AUTH}/password/change",
            json={"current_password": current_password, "new_password": new_password},
        )
        if answer.ok:
            return redirect(with_notice("/settings", "Your password is changed."), request)
        errors = form_errors(
            answer.problem,
            {"current_password", "new_password"},
            code_fields={
                "weak_password": "new_password",
                "invalid_current_password": "current_password",
            },
        )
    return _settings_page(state, request, 422, password_errors=errors)
