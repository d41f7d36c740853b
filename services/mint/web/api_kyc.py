"""The identity page: profile (country, full name, date of birth), tier and its limits,
documents (upload with type and size checked before sending, with progress), submit for
review, status and the rejection reason (services.md §5)."""

from __future__ import annotations

from typing import Annotated

import pycountry
from fastapi import APIRouter, File, Form, Request, UploadFile
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from mint.web.documents import DOCUMENT_TYPES, refusal, sniff
from mint.web.problems import FormErrors, form_errors
from mint.web.views import PageRoute, User, Visit, redirect, render, with_notice

router = APIRouter(route_class=PageRoute, include_in_schema=False)

KYC = "/api/v1/kyc"
Text = Annotated[str, Form()]
COUNTRIES: list[tuple[str, str]] = sorted(
    ((c.alpha_2, c.name) for c in pycountry.countries), key=lambda pair: pair[1]
)


def _kyc_page(
    state: Visit,
    request: Request,
    *,
    status: int = 200,
    profile_errors: FormErrors | None = None,
    profile_values: dict[str, str] | None = None,
    upload_errors: FormErrors | None = None,
    submit_errors: FormErrors | None = None,
    upload_values: dict[str, str] | None = None,
    upload_notice: str | None = None,
) -> Response:
    profile = state.call("GET", KYC).json()
    limits = state.call("GET", f"{KYC}/limits").json()
    values = profile_values or {
        "country": profile.get("country") or "",
        "full_name": profile.get("full_name") or "",
        "date_of_birth": profile.get("date_of_birth") or "",
    }
    return render(
        state,
        "kyc.html",
        request=request,
        status=status,
        title="Verify your identity",
        profile=profile,
        limits=limits,
        countries=COUNTRIES,
        document_types=DOCUMENT_TYPES,
        max_bytes=state.wiring.settings.max_document_bytes,
        errors=profile_errors,
        values=values,
        upload_errors=upload_errors or FormErrors(),
        upload_values=upload_values or {},
        upload_notice=upload_notice,
        submit_errors=submit_errors or FormErrors(),
    )


@router.get("/kyc")
def kyc_page(state: User, request: Request) -> Response:
    return _kyc_page(state, request)


@router.post("/kyc/profile")
def save_profile(
    state: User,
    request: Request,
    country: Text = "",
    full_name: Text = "",
    date_of_birth: Text = "",
) -> Response:
    values = {"country": country, "full_name": full_name, "date_of_birth": date_of_birth}
    errors = FormErrors()
    for name, value, message in (
        ("country", country, "Choose your country."),
        ("full_name", full_name, "Enter your full name as on your ID."),
        ("date_of_birth", date_of_birth, "Enter your date of birth."),
    ):
        if not value.strip():
            errors.add(name, message)
    if not errors:
        answer = state.call("PUT", f"{KYC}/profile", json=values)
        if answer.ok:
            return redirect(with_notice("/kyc", "Your details are saved."), request)
        errors = form_errors(answer.problem, set(values))
    return _kyc_page(state, request, status=422, profile_errors=errors, profile_values=values)


@router.post("/kyc/documents")
async def upload(
    state: User,
    request: Request,
    type: Text = "",
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Checked here too (a browser without JavaScript, or one that lies): the type by the
    first bytes, the size against the bound; only then sent to kyc."""
    errors = FormErrors()
    if type not in DOCUMENT_TYPES:
        errors.add("type", "Choose what kind of document this is.")
    limit = state.wiring.settings.max_document_bytes
    content = b""
    if file is None or not file.filename:
        errors.add("file", "Choose a file to upload.")
    else:
        content = await file.read(limit + 1)
        problem = refusal(content[:16], len(content), limit)
        if problem:
            errors.add("file", problem)
    if not errors and file is not None:
        return await run_in_threadpool(
            _send_document, state, request, type, file.filename or "document", content
        )
    return await run_in_threadpool(
        lambda: _kyc_page(
            state, request, status=422, upload_errors=errors, upload_values={"type": type}
        )
    )


def _send_document(
    state: Visit, request: Request, doc_type: str, file_name: str, content: bytes
) -> Response:
    answer = state.call(
        "POST",
        f"{KYC}/documents",
        files={"file": (file_name, content, sniff(content[:16]) or "application/octet-stream")},
        data={"type": doc_type},
    )
    if answer.ok:
        if request.headers.get("hx-request") == "true":
            # the documents panel is swapped in place (the page keeps its state and progress)
            return _kyc_page(state, request, upload_notice=f"Uploaded {file_name}.")
        return redirect(with_notice("/kyc", "Document uploaded.") + "#documents", request)
    errors = form_errors(answer.problem, {"file", "type"})
    return _kyc_page(
        state, request, status=answer.status, upload_errors=errors, upload_values={"type": doc_type}
    )


@router.post("/kyc/submit")
def submit(state: User, request: Request) -> Response:
    answer = state.call("POST", f"{KYC}/submit")
    if answer.ok:
        return redirect(with_notice("/kyc", "Submitted for review."), request)
    return _kyc_page(
        state, request, status=answer.status, submit_errors=form_errors(answer.problem, set())
    )
