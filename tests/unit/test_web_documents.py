"""KYC documents checked before the web app sends them: type by content, size bound."""

from __future__ import annotations

from mint.web.documents import refusal, sniff
from tests.fixtures.documents import make_elf, make_jpeg_header_only, make_pdf, make_png


def test_types_are_told_by_their_first_bytes() -> None:
    assert sniff(make_png()) == "image/png"
    assert sniff(make_jpeg_header_only()) == "image/jpeg"
    assert sniff(make_pdf()) == "application/pdf"
    assert sniff(make_elf()) is None
    assert sniff(b"") is None


def test_refusals() -> None:
    png = make_png()
    assert refusal(png[:16], len(png), 1000) is None
    assert refusal(b"", 0, 1000) == "Choose a file to upload."
    assert "too large" in (refusal(png[:16], 3_000_000, 2_097_152) or "")
    assert "not a JPEG, PNG or PDF" in (refusal(make_elf()[:16], 80, 1000) or "")
