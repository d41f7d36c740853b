"""What a KYC document may be before it is sent: JPEG, PNG or PDF by its first bytes (not its
name), at most the upload bound (services.md §5). The same rules run in the browser (app.js)
so a wrong file is refused before it is uploaded. Pure."""

from __future__ import annotations

from typing import Final

DOCUMENT_TYPES: Final = ("PASSPORT", "DRIVERS_LICENSE", "SELFIE", "UTILITY_BILL", "OTHER")
MAGIC: Final[dict[bytes, str]] = {
    b"\xff\xd8\xff": "image/jpeg",
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"%PDF-": "application/pdf",
}


def sniff(head: bytes) -> str | None:
    """The content type announced by a file's first bytes, or None if it is not one of ours."""
    for magic, content_type in MAGIC.items():
        if head.startswith(magic):
            return content_type
    return None


def refusal(head: bytes, size: int, max_bytes: int) -> str | None:
    """Why the file cannot be sent (shown next to the file field), or None."""
    if size == 0:
        return "Choose a file to upload."
    if size > max_bytes:
        megabytes, limit = size / 1_048_576, max_bytes // 1_048_576
        return f"The file is too large ({megabytes:.1f} MB); {limit} MB at most."
    if sniff(head) is None:
        return "This file is not a JPEG, PNG or PDF (whatever its name says)."
    return None
