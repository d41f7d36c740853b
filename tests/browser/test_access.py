"""People expect: the whole send-money path by keyboard alone, and every page usable at phone
width (375 px: nothing wider than the screen)."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import BrowserContext, Page, expect

from mint.dev.platform import Platform
from tests.browser.conftest import register_by_api, shot, sign_in, text_of, top_up

PHONE = {"width": 375, "height": 740}
UNLABELLED_CONTROLS = """() => [...document.querySelectorAll(
    "input:not([type=hidden]), select, textarea, button")]
  .filter((el) => el.tagName === "BUTTON" ? !el.textContent.trim() && !el.ariaLabel
                                          : !(el.labels && el.labels.length) && !el.ariaLabel)
  .map((el) => el.outerHTML.slice(0, 80))"""


def focused_id(page: Page) -> str:
    return str(page.evaluate("document.activeElement ? document.activeElement.id : ''"))


def tab_to(page: Page, element_id: str, limit: int = 40) -> None:
    """Press Tab until ``element_id`` has the focus (as a keyboard user does)."""
    for _ in range(limit):
        if focused_id(page) == element_id:
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"#{element_id} is not reachable with Tab (focus on {focused_id(page)!r})")


def test_send_money_with_the_keyboard_only(platform: Platform, page: Page) -> None:
    recipient = register_by_api(platform, "Kay")
    sign_in(page, register_by_api(platform, "Keys"))
    page.get_by_test_id("available").wait_for(timeout=30_000)
    top_up(page, "50")

    page.goto("/dashboard")
    tab_to(page, "")  # from the top of the page ...
    link = page.get_by_role("link", name="Send", exact=True)
    for _ in range(40):  # ... to the Send link of the navigation, then Enter
        if (
            page.evaluate("document.activeElement && document.activeElement.textContent.trim()")
            == "Send"
        ):
            break
        page.keyboard.press("Tab")
    expect(link).to_be_focused()
    page.keyboard.press("Enter")
    page.wait_for_url("**/send")

    tab_to(page, "f-recipient")
    page.keyboard.type(recipient[:6])
    suggestion = page.get_by_role("button", name=f"Kay · {recipient}")
    expect(suggestion).to_be_visible()
    page.keyboard.press("Tab")  # the suggestion follows the field
    expect(suggestion).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_label("Recipient's email")).to_have_value(recipient)
    expect(page.get_by_label("Recipient's email")).to_be_focused()
    tab_to(page, "f-amount")
    page.keyboard.type("12.50")
    tab_to(page, "f-category")
    page.keyboard.press("ArrowDown")  # the first category
    shot(page, "send-keyboard")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Send", exact=True)).to_be_focused()
    page.keyboard.press("Enter")
    page.wait_for_url("**/transactions/**")
    assert text_of(page, "status") == "Completed"
    page.goto("/dashboard")
    assert text_of(page, "available") == "$37.50"


def test_every_page_fits_a_phone(
    platform: Platform, new_context: Callable[..., BrowserContext]
) -> None:
    page = new_context(viewport=PHONE, is_mobile=True, has_touch=True).new_page()
    page.goto("/sign-in")
    shot(page, "phone-sign-in")
    sign_in(page, register_by_api(platform, "Tiny-Screen-Person-With-A-Long-Name"))
    page.get_by_test_id("available").wait_for(timeout=30_000)
    top_up(page, "123456.78")
    pages = {
        "dashboard": "/dashboard",
        "send": "/send",
        "top-up": "/top-up",
        "withdraw": "/withdraw",
        "activity": "/transactions",
        "kyc": "/kyc",
        "settings": "/settings",
        "404": "/nothing-here",
    }
    too_wide, unlabelled = {}, {}
    for name, path in pages.items():
        page.goto(path)
        shot(page, f"phone-{name}")
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > PHONE["width"]:
            too_wide[name] = width
        # every control has a label (what a screen reader announces)
        missing = page.evaluate(UNLABELLED_CONTROLS)
        if missing:
            unlabelled[name] = missing
    page.goto("/transactions")
    page.locator(".txns .txn a").first.click()
    page.wait_for_url("**/transactions/**")
    shot(page, "phone-transaction")
    width = page.evaluate("document.documentElement.scrollWidth")
    if width > PHONE["width"]:
        too_wide["transaction"] = width
    assert too_wide == {}, f"pages wider than {PHONE['width']} px: {too_wide}"
    assert unlabelled == {}, f"controls without a label: {unlabelled}"
