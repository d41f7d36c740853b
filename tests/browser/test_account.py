"""The account pages: reset password through the mailed link, settings (name, password), sign
out; an expired access token refreshed without the user noticing; the 404 and 503 pages."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
import uvicorn
from playwright.sync_api import BrowserContext, Page, expect

from mint.dev.platform import Platform, free_port
from mint.kit.http import create_app
from mint.kit.service import build_context
from mint.web.service import SERVICE
from mint.web.session import ACCESS_COOKIE, REFRESH_COOKIE
from mint.web.settings import Settings
from tests.browser.conftest import (
    PASSWORD,
    mailed_link,
    register_by_api,
    shot,
    sign_in,
)


def test_reset_password_through_the_mailed_link(platform: Platform, page: Page) -> None:
    address = register_by_api(platform, "Forgetful")
    page.goto("/sign-in")
    page.get_by_role("link", name="Forgot your password?").click()
    expect(page).to_have_title("Forgot your password · Mint")
    page.get_by_label("Email").fill(address)
    shot(page, "forgot-password")
    page.get_by_role("button", name="Send the link").click()
    expect(page.get_by_role("heading", name="Check your mail")).to_be_visible()
    shot(page, "forgot-password-sent")

    page.goto(mailed_link(platform, address, "/reset-password"))
    expect(page).to_have_title("Choose a new password · Mint")
    page.get_by_label("New password").fill("short")
    page.get_by_role("button", name="Save the new password").click()
    expect(page.locator("#f-new_password-error")).to_contain_text("stronger password")
    shot(page, "reset-password-weak")
    page.get_by_label("New password").fill("Brand-New-Secret-77")
    page.get_by_role("button", name="Save the new password").click()
    page.wait_for_url("**/sign-in**")
    expect(page.get_by_role("status")).to_contain_text("Your password is changed")

    page.get_by_label("Email").fill(address)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("don't match an account")
    shot(page, "sign-in-refused")
    sign_in(page, address, "Brand-New-Secret-77")


def test_settings_name_and_password_then_sign_out(platform: Platform, page: Page) -> None:
    address = register_by_api(platform, "Settler")
    sign_in(page, address)
    page.goto("/settings")
    expect(page).to_have_title("Settings · Mint")
    page.get_by_label("Name", exact=True).fill("Settled Person")
    page.get_by_role("button", name="Save name").click()
    expect(page.get_by_role("status")).to_contain_text("Your name is saved")
    page.goto("/dashboard")
    expect(page.get_by_role("heading", level=1)).to_have_text("Hello, Settled Person")

    page.goto("/settings")
    page.get_by_label("Current password").fill("not-my-password-1")
    page.get_by_label("New password").fill("Another-Secret-99")
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("#f-current_password-error")).to_have_text(
        "Your current password is not right."
    )
    shot(page, "settings-password-refused")
    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_label("New password").fill("Another-Secret-99")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("status")).to_contain_text("Your password is changed")
    shot(page, "settings")

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/sign-in**")
    page.goto("/dashboard")
    page.wait_for_url("**/sign-in?next=%2Fdashboard")
    sign_in(page, address, "Another-Secret-99")


def _expired_copy(platform: Platform, access_token: str) -> str:
    """The same access token, signed by auth's key, but expired a minute ago."""
    keys = sorted((platform.root / "keys").glob("*.pem"))
    key_file: Path = keys[-1]
    claims = jwt.decode(access_token, options={"verify_signature": False})
    now = int(time.time())
    claims.update(iat=now - 1000, exp=now - 60, jti=str(uuid.uuid4()))
    return jwt.encode(
        claims, key_file.read_bytes(), algorithm="RS256", headers={"kid": key_file.stem}
    )


def _cookie(context: BrowserContext, name: str) -> str:
    return next(c["value"] for c in context.cookies() if c["name"] == name)


def test_an_expired_access_token_is_refreshed_without_the_user_noticing(
    platform: Platform, page: Page, app_url: str
) -> None:
    sign_in(page, register_by_api(platform, "Sleepy"))
    context = page.context
    before = _cookie(context, ACCESS_COOKIE)
    refresh_before = _cookie(context, REFRESH_COOKIE)
    expired = _expired_copy(platform, before)
    context.add_cookies([{"name": ACCESS_COOKIE, "value": expired, "url": app_url}])

    page.goto("/transactions")
    expect(page).to_have_title("Activity · Mint")  # not sent to sign in
    fresh = _cookie(context, ACCESS_COOKIE)
    assert fresh not in (before, expired)
    assert jwt.decode(fresh, options={"verify_signature": False})["exp"] > time.time() + 600
    assert _cookie(context, REFRESH_COOKIE) != refresh_before  # rotated, once

    # the browser dropped the access cookie altogether (an hour later): still signed in
    context.clear_cookies(name=ACCESS_COOKIE)
    page.goto("/dashboard")
    expect(page).to_have_title("Your money · Mint")


def test_the_404_page(platform: Platform, page: Page) -> None:
    response = page.goto("/no-such-page")
    assert response is not None and response.status == 404
    expect(page).to_have_title("Page not found · Mint")
    shot(page, "error-404")
    sign_in(page, register_by_api(platform, "Curious"))
    response = page.goto(f"/transactions/{uuid.uuid4()}")  # not mine (or nobody's)
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")


@pytest.fixture
def web_with_mint_down(tmp_path: Path) -> Iterator[str]:
    """A web server whose gateway does not answer (nothing listens on its port)."""
    settings = Settings(environment="test", gateway_url=f"http://127.0.0.1:{free_port()}")
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(build_context(SERVICE, settings)),
            host="127.0.0.1",
            port=port,
            log_config=None,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the web server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def test_the_503_page_when_mint_is_down(web_with_mint_down: str, page: Page) -> None:
    page.goto(f"{web_with_mint_down}/sign-in")
    page.get_by_label("Email").fill("someone@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_title("Mint is temporarily unavailable · Mint")
    body = page.content()
    assert "Traceback" not in body and "ConnectError" not in body
    shot(page, "error-503")


def test_sign_up_errors_are_shown_next_to_their_fields(platform: Platform, page: Page) -> None:
    taken = register_by_api(platform, "Taken")
    page.goto("/sign-up")
    page.get_by_label("Your name").fill("Newcomer")
    page.get_by_label("Email").fill(taken.upper())  # emails are compared lower-cased
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.locator("#f-email-error")).to_have_text(
        "An account with this email already exists. Sign in instead?"
    )
    expect(page.get_by_label("Email")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Email").fill(f"fresh-{uuid.uuid4().hex[:8]}@example.com")
    page.get_by_label("Password").fill("aaaaaaaaaaaa")
    page.get_by_role("button", name="Create account").click()
    expect(page.locator("#f-password-error")).to_contain_text("stronger password")
    expect(page.locator("#f-email-error")).to_have_text("")
    expect(page.get_by_label("Your name")).to_have_value("Newcomer")  # kept for the retry
    shot(page, "sign-up-errors")
