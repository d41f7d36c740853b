"""Rules for free text that every service applies the same way."""

from __future__ import annotations

import unicodedata


def has_control_chars(value: str) -> bool:
    """Control characters (NUL — which PostgreSQL text cannot hold —, newlines, escapes) and
    lone surrogates have no place in names, descriptions or reasons."""
    return any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value)


def no_control_chars(value: str) -> str:
    """A pydantic ``AfterValidator``: refuse text with control characters (→ 422)."""
    if has_control_chars(value):
        raise ValueError("must not contain control characters")
    return value
