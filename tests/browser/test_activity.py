"""Activity: the list with its filters and paging, a withdrawal, a transaction's detail, and
cancelling one that can no longer be cancelled (the reason shown with the action)."""

from __future__ import annotations

import re
import uuid

import httpx
from playwright.sync_api import Page, expect

from mint.dev.platform import Platform
from tests.browser.conftest import PASSWORD, new_email, shot, sign_in, text_of
from tests.e2e.conftest import User as ApiUser
from tests.e2e.conftest import wait_for_wallet

PAGE_SIZE = 20


def funded_by_api(platform: Platform, top_ups: int) -> str:
    """A user with ``top_ups`` top-ups of $1.00 .. made through the API."""
    address = new_email("Busy")
    with httpx.Client(base_url=platform.gateway_url, timeout=30) as api:
        r = api.post(
            "/api/v1/auth/register", json={"email": address, "password": PASSWORD, "name": "Busy"}
        )
        assert r.status_code == 201, r.text
        user = ApiUser(r.json()["user"]["id"], address, r.json()["access_token"])
        api.cookies.clear()
        wait_for_wallet(api, user)
        for n in range(1, top_ups + 1):
            r = api.post(
                "/api/v1/transactions/topup",
                json={"amount": n * 100, "description": f"top-up {n}"},
                headers={**user.headers, "Idempotency-Key": str(uuid.uuid4())},
            )
            assert r.status_code == 201, r.text
    return address


def test_activity_filters_paging_withdraw_and_detail(platform: Platform, page: Page) -> None:
    sign_in(page, funded_by_api(platform, PAGE_SIZE + 2))

    page.goto("/withdraw")
    expect(page).to_have_title("Withdraw · Mint")
    page.get_by_label("Amount (US dollars)").fill("5")
    shot(page, "withdraw")
    page.get_by_role("button", name="Withdraw").click()
    page.wait_for_url("**/transactions/**")
    expect(page.get_by_role("heading", level=1)).to_have_text("Withdrawal \u2212$5.00")
    assert text_of(page, "status") == "Completed"
    withdrawal_url = page.url.split("?")[0]

    page.goto("/transactions")
    rows = page.locator(".txns .txn")
    expect(rows).to_have_count(PAGE_SIZE)
    expect(rows.first).to_contain_text("Withdrawal")  # newest first
    page.get_by_role("link", name="Older »").click()
    expect(rows).to_have_count(3)  # 23 in all
    expect(rows.last).to_contain_text("top-up 1")
    expect(page.get_by_role("link", name="Older »")).to_have_count(0)
    page.get_by_role("link", name="« Newest").click()
    expect(rows).to_have_count(PAGE_SIZE)

    page.get_by_label("Type").select_option("WITHDRAWAL")  # htmx: the list is replaced
    expect(rows).to_have_count(1)
    expect(page).to_have_url(re.compile(r"/transactions\?.*type=WITHDRAWAL"))
    shot(page, "activity-filtered")
    page.get_by_label("Status").select_option("FAILED")
    expect(page.get_by_text("No transactions yet.")).to_be_visible()

    opened = page.goto(withdrawal_url)
    assert opened is not None and opened.ok
    expect(page.get_by_role("button", name="Cancel this payment")).to_have_count(0)
    # a completed one cannot be cancelled: the page says so
    token = page.locator("form[action='/sign-out'] input[name=csrf_token]").input_value()
    answer = page.request.post(f"{withdrawal_url}/cancel", form={"csrf_token": token})
    assert answer.status == 409
    assert "This transaction can no longer be cancelled." in answer.text()
