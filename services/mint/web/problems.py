"""API errors as people read them, next to the field or action that caused them.

An API answers problem+json (conventions.md): ``code``, ``detail`` and, for validation
failures, ``errors: [{loc, msg}]``. :func:`form_errors` maps each to a field of the form that
sent the request — by ``loc`` (its last name) or, for a refusal, by its ``code`` — with a
readable message; whatever names no field of the form is the form's own error. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from mint.web.money import format_money

#: The field a refusal belongs to, whichever form sent it.
CODE_FIELDS: Final[dict[str, str]] = {
    "insufficient_funds": "amount",
    "limit_exceeded": "amount",
    "unsupported_currency": "amount",
    "reversal_insufficient_funds": "amount",
    "self_transfer": "recipient",
    "recipient_not_found": "recipient",
    "recipient_unavailable": "recipient",
    "email_taken": "email",
    "weak_password": "password",
    "invalid_token": "token",
    "file_too_large": "file",
    "unsupported_media_type": "file",
    "review_in_progress": "file",
}

_LIMIT_NAMES: Final = {
    "per_transaction": "the limit per transaction",
    "daily": "your daily limit",
    "monthly": "your monthly limit",
}

#: Messages of the stable codes (services.md); others show the API's ``detail``.
MESSAGES: Final[dict[str, str]] = {
    "insufficient_funds": "You don't have enough available money for this.",
    "self_transfer": "You can't send money to yourself.",
    "recipient_not_found": "No Mint user has this email.",
    "recipient_unavailable": "This person can't receive money right now.",
    "unsupported_currency": "Only US dollars are supported.",
    "account_frozen": "Your account is frozen; contact support.",
    "fraud_blocked": "This payment was blocked by our security checks.",
    "email_taken": "An account with this email already exists. Sign in instead?",
    "invalid_credentials": "That email and password don't match an account.",
    "invalid_current_password": "Your current password is not right.",
    "weak_password": "Choose a stronger password: at least 10 characters, mixing letters, "
    "digits or symbols, and not containing your email.",
    "too_many_attempts": "Too many attempts. Wait a few minutes and try again.",
    "too_many_requests": "Too many requests at once. Try again in a moment.",
    "invalid_token": "This link is invalid, expired or already used. Ask for a new one.",
    "refresh_token_reused": "Your session ended. Please sign in again.",
    "file_too_large": "The file is too large (10 MB at most).",
    "unsupported_media_type": "This file is not a JPEG, PNG or PDF.",
    "review_in_progress": "Your documents are under review; you can't change them now.",
    "already_pending": "Your verification is already under review.",
    "already_verified": "You are already verified.",
    "tier_too_low": "Verify your email first.",
    "invalid_state": "This transaction can no longer be cancelled.",
    "idempotency_key_reused": "This form was already used. Reload the page and try again.",
    "idempotency_request_in_progress": "This payment is still being processed.",
    "dependency_unavailable": "A part of Mint is not answering. Try again in a moment.",
    "transaction_not_found": "This transaction doesn't exist.",
}

_SUBMIT_MISSING: Final = {
    "tier_too_low": "verify your email",
    "id_document_missing": "upload an ID document (passport or driver's license)",
    "selfie_missing": "upload a selfie",
}


@dataclass
class FormErrors:
    """Messages by form field, and the form's own (``general``)."""

    fields: dict[str, str] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.fields or self.general)

    def add(self, name: str | None, message: str) -> None:
        if name is None:
            self.general.append(message)
        elif name not in self.fields:  # the first message of a field is the one shown
            self.fields[name] = message


def message_of(problem: Mapping[str, Any]) -> str:
    """The readable message of one problem (its code's, else its detail)."""
    code = str(problem.get("code") or "")
    if code == "limit_exceeded":
        return _limit_message(problem)
    if isinstance(problem.get("missing"), list) and problem["missing"]:
        return _missing_message(problem)
    if code in MESSAGES:
        return MESSAGES[code]
    detail = str(problem.get("detail") or "").strip()
    return _sentence(detail) if detail else "Something went wrong. Try again."


def form_errors(
    problem: Mapping[str, Any],
    form_fields: Mapping[str, str] | frozenset[str] | set[str],
    *,
    code_fields: Mapping[str, str] | None = None,
) -> FormErrors:
    """``form_fields``: the form's field names, or a mapping API field name → form field name
    (``{"recipient_id": "recipient"}``). ``code_fields`` overrides :data:`CODE_FIELDS` for
    this form (``{"weak_password": "new_password"}``)."""
    names = (
        dict(form_fields)
        if isinstance(form_fields, Mapping)
        else {name: name for name in form_fields}
    )
    targets = set(names.values())
    errors = FormErrors()
    items = problem.get("errors")
    if isinstance(items, list) and items:
        for item in items:
            if not isinstance(item, Mapping):
                continue
            api_name = _field_of(item.get("loc"))
            target = names.get(api_name) if api_name is not None else None
            errors.add(target, _sentence(str(item.get("msg") or "is not valid")))
        return errors
    code = str(problem.get("code") or "")
    target = {**CODE_FIELDS, **(code_fields or {})}.get(code)
    errors.add(target if target in targets else None, message_of(problem))
    return errors


def _field_of(loc: Any) -> str | None:
    """``["body", "amount"]`` → ``amount``; ``["query", "email"]`` → ``email``; the last
    name of the location (list indexes skipped)."""
    if not isinstance(loc, list | tuple):
        return None
    for part in reversed(loc):
        if isinstance(part, str) and part not in ("body", "query", "path", "header"):
            return part
    return None


def _limit_message(problem: Mapping[str, Any]) -> str:
    which = _LIMIT_NAMES.get(str(problem.get("limit")), "your limit")
    value, remaining = problem.get("limit_value"), problem.get("remaining")
    text = "This is over " + which
    if isinstance(value, int):
        text += f" ({format_money(value)})"
    text += "."
    if isinstance(remaining, int) and problem.get("limit") != "per_transaction":
        text += f" You can still use {format_money(max(remaining, 0))}."
    return text + " Verify your identity to raise your limits."


def _missing_message(problem: Mapping[str, Any]) -> str:
    missing = [str(m) for m in problem.get("missing") or []]
    steps = [_SUBMIT_MISSING.get(m, m.replace("_", " ")) for m in missing]
    return "Before submitting, " + "; ".join(steps) + "." if steps else message_of({})


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."
