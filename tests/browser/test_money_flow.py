"""Two people sign up in the browser, verify their email by the mailed link, one tops up and
sends money to the other (found by email search); both see the right balances and the
transaction (issue 13 "Tests")."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import BrowserContext, expect

from mint.dev.platform import Platform
from tests.browser.conftest import (
    shot,
    sign_up,
    text_of,
    top_up,
    verify_email,
    wait_for_wallet,
)


def test_two_people_sign_up_verify_top_up_and_pay(
    platform: Platform, new_context: Callable[..., BrowserContext]
) -> None:
    ann_page, bob_page = new_context().new_page(), new_context().new_page()
    ann_page.goto("/")
    expect(ann_page).to_have_title("Welcome · Mint")
    shot(ann_page, "home")

    ann = sign_up(ann_page, "Ann", screenshot="sign-up")
    bob = sign_up(bob_page, "Bob")
    expect(ann_page).to_have_title("Your money · Mint")
    wait_for_wallet(ann_page)
    assert text_of(ann_page, "available") == "$0.00"
    shot(ann_page, "dashboard-new-unverified")

    verify_email(platform, ann, screenshot="verify-email")
    expect(ann_page.get_by_role("status").first).to_contain_text("Your email is verified")
    verify_email(platform, bob)
    # verified: the reminder is gone, the tier is Basic
    expect(ann_page.get_by_text("Verify your email to raise your limits")).to_have_count(0)
    ann_page.goto("/kyc")
    expect(ann_page.get_by_test_id("tier")).to_have_text("Basic")

    top_up(ann_page, "1,234.56", screenshot="top-up")
    expect(ann_page).to_have_title("Transaction · Mint")
    shot(ann_page, "transaction-top-up")

    # recipient by email search: a prefix finds Bob, choosing him fills the field
    ann_page.goto("/send")
    ann_page.get_by_label("Recipient's email").fill(bob.email[:8])
    suggestion = ann_page.get_by_role("button", name=f"Bob · {bob.email}")
    expect(suggestion).to_be_visible()
    shot(ann_page, "send-recipient-search")
    suggestion.click()
    expect(ann_page.get_by_label("Recipient's email")).to_have_value(bob.email)
    ann_page.get_by_label("Amount (US dollars)").fill("134.56")
    ann_page.get_by_label("Note (optional)").fill("Concert tickets")
    ann_page.get_by_label("Category (optional)").select_option("ENTERTAINMENT")
    shot(ann_page, "send-filled")
    ann_page.get_by_role("button", name="Send").click()
    ann_page.wait_for_url("**/transactions/**")
    expect(ann_page.get_by_role("status").first).to_contain_text(f"Sent $134.56 to {bob.email}")
    assert text_of(ann_page, "status") == "Completed"
    expect(ann_page.get_by_role("heading", level=1)).to_contain_text("\u2212$134.56")
    shot(ann_page, "transaction-sent")

    ann_page.goto("/dashboard")
    assert text_of(ann_page, "available") == "$1,100.00"
    assert text_of(ann_page, "balance") == "$1,100.00"
    assert text_of(ann_page, "held") == "$0.00"
    expect(ann_page.locator(".txns .txn").first).to_contain_text("Concert tickets")
    # local time on the page, the UTC instant on hover
    when = ann_page.locator(".txns time").first
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", when.get_attribute("datetime") or "")
    assert (when.get_attribute("title") or "").endswith(" UTC")
    assert "UTC" not in when.inner_text()  # rewritten in the browser's time zone
    shot(ann_page, "dashboard-after-send")

    bob_page.goto("/dashboard")
    assert text_of(bob_page, "available") == "$134.56"
    received = bob_page.locator(".txns .txn").first
    expect(received).to_contain_text("Received")
    expect(received).to_contain_text("$134.56")
    shot(bob_page, "dashboard-recipient")

    bob_page.goto("/transactions")
    expect(bob_page).to_have_title("Activity · Mint")
    expect(bob_page.locator(".txns .txn")).to_have_count(1)
    expect(bob_page.locator(".txns .txn").first).to_contain_text("Concert tickets")
    shot(bob_page, "activity-recipient")
    ann_page.goto("/transactions")
    expect(ann_page.locator(".txns .txn")).to_have_count(2)  # the top-up and the transfer
    shot(ann_page, "activity")
