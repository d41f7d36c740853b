"""The Jinja2 environment of the pages and the filters they use: money as ``$1,234.56``,
instants as ``<time>`` elements (the browser shows them in local time, the UTC instant on
hover), and readable names of the platform's enums."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape

from mint.kit.time import parse_rfc3339
from mint.web.money import format_money, format_plain

LABELS = {
    "TOPUP": "Top-up",
    "TRANSFER": "Transfer",
    "WITHDRAWAL": "Withdrawal",
    "PENDING": "Pending",
    "PROCESSING": "Processing",
    "COMPLETED": "Completed",
    "FAILED": "Failed",
    "CANCELLED": "Cancelled",
    "REVERSED": "Reversed",
    "UNVERIFIED": "Unverified",
    "BASIC": "Basic",
    "VERIFIED": "Verified",
    "NONE": "Not submitted",
    "PENDING_REVIEW": "Under review",
    "APPROVED": "Approved",
    "REJECTED": "Rejected",
    "PASSPORT": "Passport",
    "DRIVERS_LICENSE": "Driver's license",
    "SELFIE": "Selfie",
    "UTILITY_BILL": "Utility bill",
    "OTHER": "Other",
    "FOOD": "Food",
    "TRANSPORT": "Transport",
    "ENTERTAINMENT": "Entertainment",
    "UTILITIES": "Utilities",
}


def label(value: Any) -> str:
    text = str(value or "")
    return LABELS.get(text, text.replace("_", " ").capitalize())


def money(cents: Any, currency: str = "USD") -> str:
    return format_money(int(cents), currency) if isinstance(cents, int) else ""


def when(value: Any) -> Markup:
    """``<time datetime="…Z" title="2026-11-30 16:42:45 UTC">2026-11-30 16:42 UTC</time>``;
    app.js rewrites the text in the browser's time zone, the title keeps the UTC instant."""
    if not value:
        return Markup("")
    moment = value if isinstance(value, datetime) else parse_rfc3339(str(value))
    iso = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    utc = moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    shown = moment.strftime("%b %-d, %Y %H:%M UTC")
    return Markup('<time datetime="{}" title="{}" data-local>{}</time>').format(iso, utc, shown)


def environment(templates: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates),
        autoescape=jinja2.select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(money=money, when=when, label=label, amount_field=format_plain)
    env.globals["escape"] = escape
    return env
