"""API errors (problem+json) mapped to the form field that caused them, with readable text."""

from __future__ import annotations

from mint.web.problems import FormErrors, form_errors, message_of

SEND_FORM = {"recipient_id": "recipient", "amount": "amount", "description": "note"}


def test_validation_errors_land_on_their_fields_by_loc() -> None:
    problem = {
        "code": "validation_error",
        "errors": [
            {"loc": ["body", "amount"], "msg": "Input should be greater than or equal to 1"},
            {"loc": ["body", "description"], "msg": "String should have at most 255 characters"},
            {"loc": ["body", "merchant"], "msg": "not allowed"},
        ],
    }
    errors = form_errors(problem, SEND_FORM)
    assert errors.fields == {
        "amount": "Input should be greater than or equal to 1.",
        "note": "String should have at most 255 characters.",
    }
    assert errors.general == ["Not allowed."]  # a field the form does not have


def test_a_list_index_in_loc_is_skipped() -> None:
    problem = {"errors": [{"loc": ["body", "email", 0], "msg": "bad"}]}
    assert form_errors(problem, {"email"}).fields == {"email": "Bad."}


def test_refusals_land_on_the_field_of_their_code() -> None:
    refused = form_errors({"code": "insufficient_funds", "detail": "x"}, SEND_FORM)
    assert refused.fields == {"amount": "You don't have enough available money for this."}
    unknown = form_errors({"code": "recipient_not_found"}, SEND_FORM)
    assert unknown.fields == {"recipient": "No Mint user has this email."}


def test_a_refusal_whose_field_the_form_lacks_is_the_forms_own() -> None:
    errors = form_errors({"code": "insufficient_funds"}, {"note"})
    assert errors.fields == {}
    assert errors.general == ["You don't have enough available money for this."]


def test_a_form_can_route_a_code_to_its_own_field() -> None:
    errors = form_errors(
        {"code": "weak_password", "detail": "too short"},
        {"new_password"},
        code_fields={"weak_password": "new_password"},
    )
    assert set(errors.fields) == {"new_password"}


def test_limit_exceeded_says_which_limit_and_what_is_left() -> None:
    daily = {"code": "limit_exceeded", "limit": "daily", "limit_value": 10000, "remaining": 2500}
    assert message_of(daily) == (
        "This is over your daily limit ($100.00). You can still use $25.00. "
        "Verify your identity to raise your limits."
    )
    per_payment = {"code": "limit_exceeded", "limit": "per_transaction", "limit_value": 5000}
    assert message_of(per_payment).startswith("This is over the limit per transaction ($50.00).")
    assert form_errors(daily, SEND_FORM).fields.keys() == {"amount"}


def test_kyc_submit_lists_every_missing_requirement() -> None:
    problem = {"code": "tier_too_low", "missing": ["tier_too_low", "selfie_missing"]}
    assert message_of(problem) == "Before submitting, verify your email; upload a selfie."


def test_an_unknown_code_shows_the_apis_detail_as_a_sentence() -> None:
    assert message_of({"code": "something_new", "detail": "the thing is off"}) == (
        "The thing is off."
    )
    assert message_of({}) == "Something went wrong. Try again."


def test_form_errors_keep_the_first_message_of_a_field() -> None:
    errors = FormErrors()
    errors.add("amount", "first")
    errors.add("amount", "second")
    errors.add(None, "general")
    assert errors.fields == {"amount": "first"} and errors.general == ["general"]
    assert errors and not FormErrors()
