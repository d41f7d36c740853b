"""A payment the fraud check holds for review, as its sender sees it in the browser: the page
says it is being reviewed, the dashboard shows the amount held (not spendable, still in the
balance), and the sender cancels it — the hold is released (services.md §3, §12)."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from mint.dev.platform import Platform
from tests.browser.conftest import (
    fill_send,
    register_by_api,
    shot,
    sign_in,
    text_of,
    top_up,
    wait_for_wallet,
)


def test_a_held_payment_is_shown_as_held_and_its_sender_cancels_it(
    platform: Platform, page: Page
) -> None:
    recipient = register_by_api(platform, "Rita")
    sign_in(page, register_by_api(platform, "Sam"))
    wait_for_wallet(page)
    top_up(page, "500")

    # $250 to someone who is not a contact: above the $200 a new recipient gets without review
    fill_send(page, recipient, "250")
    page.get_by_role("button", name="Send").click()
    page.wait_for_url("**/transactions/**")
    expect(page.get_by_role("status").first).to_contain_text("Your payment is being reviewed")
    assert text_of(page, "status") == "Pending"
    expect(page.get_by_text("Held for a security review.")).to_be_visible()
    shot(page, "transaction-under-review")
    payment_url = page.url.split("?")[0]

    page.goto("/dashboard")
    assert text_of(page, "balance") == "$500.00"
    assert text_of(page, "held") == "$250.00"
    assert text_of(page, "available") == "$250.00"

    page.goto(payment_url)
    page.get_by_role("button", name="Cancel this payment").click()
    expect(page.get_by_test_id("status")).to_have_text("Cancelled")
    expect(page.get_by_role("button", name="Cancel this payment")).to_have_count(0)
    shot(page, "transaction-review-cancelled")
    page.goto("/dashboard")
    assert text_of(page, "held") == "$0.00"
    assert text_of(page, "available") == "$500.00"
