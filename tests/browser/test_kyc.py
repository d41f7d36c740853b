"""KYC in the browser: profile with country, tier and its limits, document upload (a real PNG,
with progress; a renamed binary refused with a message, in the page and by the server), submit
for review and its status."""

from __future__ import annotations

import os
import re
import struct
import zlib

from playwright.sync_api import Page, expect

from mint.dev.platform import Platform
from tests.browser.conftest import Person, register_by_api, shot, sign_in, verify_email
from tests.fixtures.documents import make_elf, make_jpeg_header_only

MONEY = re.compile(r"^\$\d{1,3}(,\d{3})*\.\d{2}$")


def noisy_png(width: int = 400, height: int = 400) -> bytes:
    """A real PNG of random pixels (about half a megabyte: the upload takes a visible moment)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + os.urandom(width * 3) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def upload(page: Page, doc_type: str, name: str, content: bytes, mime: str) -> None:
    page.get_by_label("Document type").select_option(doc_type)
    page.get_by_label(re.compile(r"^File")).set_input_files(
        {"name": name, "mimeType": mime, "buffer": content}
    )


def test_kyc_profile_upload_and_submit(platform: Platform, page: Page) -> None:
    address = register_by_api(platform, "Ida")
    sign_in(page, address)
    page.goto("/kyc")
    expect(page).to_have_title("Verify your identity · Mint")
    expect(page.get_by_test_id("tier")).to_have_text("Unverified")
    expect(page.get_by_test_id("kyc-status")).to_have_text("Not submitted")
    for cell in ("limit-per-transaction", "limit-daily", "limit-monthly"):
        assert MONEY.match(page.get_by_test_id(cell).inner_text().strip())

    # submitting now says everything that is missing
    page.get_by_role("button", name="Submit for review").click()
    expect(page.get_by_role("alert")).to_contain_text("verify your email")
    expect(page.get_by_role("alert")).to_contain_text("upload a selfie")
    shot(page, "kyc-submit-refused")

    # registered elsewhere (no mail yet): the dashboard's resend asks for the link
    page.goto("/dashboard")
    page.get_by_role("button", name="Send me a new link").click()
    expect(page.get_by_role("status")).to_contain_text("We sent you a new verification link")
    verify_email(platform, Person("Ida", address, page))
    page.goto("/kyc")
    expect(page.get_by_test_id("tier")).to_have_text("Basic")

    page.get_by_label("Country").select_option("FR")
    page.get_by_label("Full name (as on your ID)").fill("Ida Lovelace")
    page.get_by_label("Date of birth").fill("1990-04-01")
    page.get_by_role("button", name="Save details").click()
    expect(page.get_by_role("status")).to_contain_text("Your details are saved")
    expect(page.get_by_label("Country")).to_have_value("FR")

    # a renamed binary: refused in the page before anything is sent
    upload(page, "PASSPORT", "passport.png", make_elf(), "image/png")
    file_error = page.locator("#f-file-error")
    expect(file_error).to_have_text("This file is not a JPEG, PNG or PDF (whatever its name says).")
    page.get_by_role("button", name="Upload").click()
    expect(file_error).to_contain_text("not a JPEG, PNG or PDF")
    expect(page.locator("ul.docs")).to_have_count(0)
    shot(page, "kyc-renamed-binary-refused")

    # ... and by the server, for a browser that skips the page's check
    token = page.locator("#upload-form input[name=csrf_token]").input_value()
    refused = page.request.post(
        "/kyc/documents",
        multipart={
            "csrf_token": token,
            "type": "PASSPORT",
            "file": {"name": "passport.png", "mimeType": "image/png", "buffer": make_elf()},
        },
    )
    assert refused.status == 422
    assert "This file is not a JPEG, PNG or PDF" in refused.text()

    # a real PNG, with progress shown
    page.evaluate(
        """() => { window.uploadProgress = [];
        document.addEventListener("htmx:xhr:progress", () =>
          window.uploadProgress.push(document.getElementById("upload-progress").value)); }"""
    )
    upload(page, "PASSPORT", "passport.png", noisy_png(), "image/png")
    expect(file_error).to_have_text("")
    page.get_by_role("button", name="Upload").click()
    rows = page.locator("ul.docs li")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Passport")
    expect(rows.first).to_contain_text("passport.png")
    assert max(page.evaluate("window.uploadProgress")) == 100
    shot(page, "kyc-uploaded")

    upload(page, "SELFIE", "me.jpg", make_jpeg_header_only(), "image/jpeg")
    page.get_by_role("button", name="Upload").click()
    expect(rows).to_have_count(2)

    page.get_by_role("button", name="Submit for review").click()
    expect(page.get_by_role("status")).to_contain_text("Submitted for review")
    expect(page.get_by_test_id("kyc-status")).to_have_text("Under review")
    expect(page.get_by_role("button", name="Submit for review")).to_be_disabled()
    expect(page.get_by_test_id("upload-locked")).to_be_visible()  # no upload while reviewed
    shot(page, "kyc-submitted")
