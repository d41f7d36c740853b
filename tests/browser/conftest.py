"""Browser tests: the web app in Debian's Chromium, driven by Playwright, against the platform
started like ``make dev`` (the session's ``platform`` fixture, shared with tests/e2e).

Chromium is Debian's (``make test`` installs the ``chromium`` package when missing); Playwright's
own browser builds are never downloaded. A missing browser fails the tests with the reason.
Every page visited is screenshotted into ``tests/artifacts/`` (not committed)."""

from __future__ import annotations

import email
import email.policy
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from mint.dev.platform import Platform

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
PASSWORD = "Correct-Horse-42"
T = TypeVar("T")


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail(
            "Debian's chromium is not installed (make test installs it: apt-get install chromium)"
        )
    browser = playwright_driver.chromium.launch(
        executable_path=executable, args=["--headless", "--no-sandbox", "--disable-gpu"]
    )
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture
def app_url(platform: Platform) -> str:
    """The app as its mails link to it (``MINT_PUBLIC_URL``: the gateway on localhost)."""
    return f"http://localhost:{platform.gateway_port}"


@pytest.fixture
def new_context(browser: Browser, app_url: str) -> Iterator[Callable[..., BrowserContext]]:
    """Fresh browser profiles (one per person), closed after the test."""
    opened: list[BrowserContext] = []

    def make(**options: Any) -> BrowserContext:
        context = browser.new_context(base_url=app_url, **options)
        context.set_default_timeout(20_000)
        opened.append(context)
        return context

    yield make
    for context in opened:
        context.close()


@pytest.fixture
def page(new_context: Callable[..., BrowserContext]) -> Page:
    return new_context().new_page()


def shot(page: Page, name: str) -> Path:
    """A full-page screenshot ``tests/artifacts/<name>.png`` of what the page shows now."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def poll(check: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


def mailed_link(platform: Platform, address: str, path: str, timeout: float = 30) -> str:
    """The newest ``…{path}?token=…`` link mailed to ``address``, as written in the mail (the
    dev SMTP sink keeps one ``.eml`` per message)."""
    pattern = re.compile(r"https?://[^\s\"'<>]+" + re.escape(path) + r"\?token=[A-Za-z0-9_\-%.~]+")

    def find() -> str | None:
        mails = sorted(platform.infra.mail_dir.glob("*.eml"), key=lambda p: p.stat().st_mtime)
        for eml in reversed(mails):
            message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
            if address not in str(message.get("To", "")):
                continue
            body = message.get_body(preferencelist=("plain",))
            found = pattern.search(body.get_content() if body is not None else "")
            if found:
                return found.group(0)
        return None

    return poll(find, timeout, f"a {path} mail to {address}")


def new_email(name: str) -> str:
    return f"{name.lower()}-{uuid.uuid4().hex[:8]}@example.com"


@dataclass
class Person:
    name: str
    email: str
    page: Page

    def goto(self, path: str) -> None:
        response = self.page.goto(path)
        assert response is not None and response.ok, (path, response and response.status)


def sign_up(page: Page, name: str, screenshot: str | None = None) -> Person:
    """Sign up through the form; lands on the dashboard."""
    person = Person(name, new_email(name), page)
    page.goto("/sign-up")
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Email").fill(person.email)
    page.get_by_label("Password").fill(PASSWORD)
    if screenshot:
        shot(page, screenshot)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url("**/dashboard**")
    return person


def register_by_api(platform: Platform, name: str) -> str:
    """A user created through the API (for tests about something else than signing up)."""
    address = new_email(name)
    r = httpx.post(
        f"{platform.gateway_url}/api/v1/auth/register",
        json={"email": address, "password": PASSWORD, "name": name},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    return address


def sign_in(page: Page, address: str, password: str = PASSWORD) -> None:
    page.goto("/sign-in")
    page.get_by_label("Email").fill(address)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/dashboard**")


def verify_email(platform: Platform, person: Person, screenshot: str | None = None) -> None:
    """Open the link of the verification mail and confirm."""
    link = mailed_link(platform, person.email, "/verify-email")
    person.page.goto(link)
    if screenshot:
        shot(person.page, screenshot)
    person.page.get_by_role("button", name="Verify my email").click()
    person.page.wait_for_url("**/dashboard**")


def wait_for_wallet(page: Page) -> None:
    """Wallets are created from ``auth.user_registered`` over Kafka: the dashboard polls."""
    page.goto("/dashboard")
    page.get_by_test_id("available").wait_for(timeout=30_000)


def text_of(page: Page, test_id: str) -> str:
    return page.get_by_test_id(test_id).first.inner_text().strip()


def top_up(page: Page, amount: str, screenshot: str | None = None) -> None:
    page.goto("/top-up")
    page.get_by_label("Amount (US dollars)").fill(amount)
    if screenshot:
        shot(page, screenshot)
    page.get_by_role("button", name="Add money").click()
    page.wait_for_url("**/transactions/**")
    assert text_of(page, "status") == "Completed"


def fill_send(page: Page, recipient: str, amount: str, note: str = "") -> None:
    page.goto("/send")
    page.get_by_label("Recipient's email").fill(recipient)
    page.get_by_label("Amount (US dollars)").fill(amount)
    if note:
        page.get_by_label("Note (optional)").fill(note)
