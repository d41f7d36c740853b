"""The page templates and their filters, rendered without a server: instants as local time with
the UTC instant on hover, the KYC status with its rejection reason, where you are in the menu."""

from __future__ import annotations

from typing import Any

from mint.web.problems import FormErrors
from mint.web.rendering import environment, label, money, when
from mint.web.wiring import TEMPLATES

TEMPLATES_ENV = environment(TEMPLATES)


def page(template: str, **context: Any) -> str:
    base = {
        "path": "/",
        "title": "T",
        "signed_in": True,
        "me": {},
        "csrf_token": "t" * 43,
        "csrf_field": "csrf_token",
        "errors": FormErrors(),
        "values": {},
        "notice": None,
    }
    return TEMPLATES_ENV.get_template(template).render(**{**base, **context})


def test_an_instant_is_a_time_element_with_the_utc_instant_on_hover() -> None:
    html = str(when("2026-11-30T16:42:45.123456Z"))
    assert 'datetime="2026-11-30T16:42:45Z"' in html
    assert 'title="2026-11-30 16:42:45 UTC"' in html
    assert "data-local" in html  # app.js shows it in the browser's time zone
    assert str(when(None)) == ""


def test_money_and_labels() -> None:
    assert money(123456) == "$1,234.56"
    assert money(None) == ""
    assert label("DRIVERS_LICENSE") == "Driver's license"
    assert label("SOMETHING_NEW") == "Something new"


def kyc_profile(**fields: Any) -> dict[str, Any]:
    return {
        "tier": "BASIC",
        "status": "NONE",
        "country": None,
        "full_name": None,
        "date_of_birth": None,
        "rejection_reason": None,
        "submitted_at": None,
        "documents": [],
        **fields,
    }


def kyc_page(profile: dict[str, Any]) -> str:
    return page(
        "kyc.html",
        path="/kyc",
        profile=profile,
        limits={"tier": "BASIC", "currency": "USD", "per_transaction": 50000, "daily": 200000,
                "monthly": 1000000},
        countries=[("FR", "France")],
        document_types=["PASSPORT", "SELFIE"],
        max_bytes=10 * 1024 * 1024,
        upload_errors=FormErrors(),
        upload_values={},
        upload_notice=None,
        submit_errors=FormErrors(),
    )  # fmt: skip


def test_a_rejected_verification_shows_its_reason() -> None:
    html = kyc_page(kyc_profile(status="REJECTED", rejection_reason="the photo is blurred"))
    assert "Your verification was rejected: the photo is blurred." in html
    assert ">Rejected<" in html
    assert "$500.00" in html and "$2,000.00" in html and "$10,000.00" in html


def test_a_pending_review_disables_submitting_again() -> None:
    html = kyc_page(kyc_profile(status="PENDING_REVIEW"))
    assert ">Under review<" in html
    assert "rejected" not in html
    assert '<button type="submit" disabled>Submit for review</button>' in html
    assert 'id="upload-form"' not in html


def test_the_menu_marks_the_section_you_are_in() -> None:
    html = page("home.html", path="/settings/password")
    assert '<a href="/settings" aria-current="page">' in html
    assert html.count('aria-current="page"') == 1


def test_a_field_error_is_tied_to_its_field() -> None:
    errors = FormErrors(fields={"amount": "Not enough money."})
    html = page("top_up.html", path="/top-up", errors=errors, wallet=None, idempotency_key="k")
    assert 'aria-invalid="true"' in html
    assert 'aria-describedby="f-amount-hint f-amount-error"' in html
    assert '<p class="error" id="f-amount-error" role="alert">Not enough money.</p>' in html
