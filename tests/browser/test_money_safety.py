"""Money forms that must never surprise: a double-clicked (or resubmitted) send pays once, and
a refused send (insufficient funds, over the tier limit) says why next to the amount."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from mint.dev.platform import Platform
from tests.browser.conftest import fill_send, register_by_api, shot, sign_in, text_of, top_up
from tests.e2e.test_limits import LiveLimits
from tests.e2e.test_limits import live_limits as live_limits  # the fixture, reused

TXN_URL = re.compile(r"/transactions/([0-9a-f-]{36})")


@pytest.fixture
def payer(platform: Platform, page: Page) -> Iterator[Page]:
    """A signed-in user whose wallet exists."""
    sign_in(page, register_by_api(platform, "Payer"))
    page.get_by_test_id("available").wait_for(timeout=30_000)
    yield page


def transfers(page: Page) -> int:
    page.goto("/transactions?type=TRANSFER")
    return page.locator(".txns .txn").count()


def test_a_double_clicked_or_resubmitted_send_pays_once(platform: Platform, payer: Page) -> None:
    recipient = register_by_api(platform, "Payee")
    top_up(payer, "100")

    fill_send(payer, recipient, "10.00")
    form = "form[action='/send']"
    payer.locator(form).get_by_role("button", name="Send").dblclick()
    payer.wait_for_url(TXN_URL)
    first = TXN_URL.search(payer.url)
    assert first is not None
    assert text_of(payer, "status") == "Completed"
    payer.goto("/dashboard")
    assert text_of(payer, "available") == "$90.00"
    assert transfers(payer) == 1

    # The same rendered form sent twice at once (what a double click does without the page's
    # script): one Idempotency-Key, so one payment; both answers land on that transaction.
    fill_send(payer, recipient, "7.50")
    landed = payer.evaluate(
        """async (selector) => {
            const body = new URLSearchParams(new FormData(document.querySelector(selector)));
            const send = () => fetch("/send", {method: "POST", body: new URLSearchParams(body)});
            const answers = await Promise.all([send(), send()]);
            return answers.map((a) => [a.status, a.url]);
        }""",
        form,
    )
    assert [status for status, _ in landed] == [200, 200], landed
    ids = {TXN_URL.search(url).group(1) for _, url in landed if TXN_URL.search(url)}
    assert len(ids) == 1, landed
    payer.goto("/dashboard")
    assert text_of(payer, "available") == "$82.50"
    assert transfers(payer) == 2
    shot(payer, "activity-after-double-click")


def test_a_refused_send_shows_the_reason_next_to_the_amount(
    platform: Platform, payer: Page, live_limits: LiveLimits
) -> None:
    live_limits.apply_defaults()  # UNVERIFIED: $50.00 per payment, $100.00 a day
    recipient = register_by_api(platform, "Payee")
    top_up(payer, "40")

    fill_send(payer, recipient, "45")
    payer.get_by_role("button", name="Send").click()
    amount_error = payer.locator("#f-amount-error")
    expect(amount_error).to_have_text("You don't have enough available money for this.")
    expect(payer.get_by_label("Amount (US dollars)")).to_have_attribute("aria-invalid", "true")
    expect(payer.get_by_label("Amount (US dollars)")).to_have_value("45")
    expect(payer.locator("#f-recipient-error")).to_have_text("")
    shot(payer, "send-refused-insufficient-funds")

    payer.get_by_label("Amount (US dollars)").fill("60")
    payer.get_by_role("button", name="Send").click()
    expect(amount_error).to_contain_text("over the limit per transaction ($50.00)")
    shot(payer, "send-refused-over-limit")

    # the refused form was rendered anew (a new key): corrected, it pays
    payer.get_by_label("Amount (US dollars)").fill("30")
    payer.get_by_role("button", name="Send").click()
    payer.wait_for_url(TXN_URL)
    assert text_of(payer, "status") == "Completed"
    payer.goto("/dashboard")
    assert text_of(payer, "available") == "$10.00"


def test_an_unknown_recipient_is_refused_next_to_the_recipient(payer: Page) -> None:
    fill_send(payer, "nobody-here@example.com", "5")
    payer.get_by_role("button", name="Send").click()
    expect(payer.locator("#f-recipient-error")).to_have_text("No Mint user has this email.")
    fill_send(payer, "", "abc")
    payer.get_by_role("button", name="Send").click()
    expect(payer.locator("#f-amount-error")).to_contain_text("Enter an amount in dollars and cents")
    expect(payer.locator("#f-recipient-error")).to_contain_text("Enter the email")
    shot(payer, "send-invalid-fields")
