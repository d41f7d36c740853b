"""web settings: the kit's, plus where the public APIs are reached and how sessions refresh."""

from __future__ import annotations

from pydantic import Field

from mint.kit.config import KitSettings

#: The largest KYC document the app forwards (services.md §5: 10 MB).
MAX_DOCUMENT_BYTES = 10 * 1024 * 1024


class Settings(KitSettings):
    service_name: str = "web"
    #: Base URL of the gateway / ingress the app calls the public APIs through with the user's
    #: token (``MINT_GATEWAY_URL``); empty: ``MINT_PUBLIC_URL``.
    gateway_url: str = ""
    #: Deadline of one API call made for a page.
    api_timeout_seconds: float = Field(default=10.0, gt=0)
    #: An access token with less than this left is refreshed before the page calls an API.
    refresh_margin_seconds: float = Field(default=120.0, ge=0)
    #: How long an idempotent money request answered "in progress" is waited out (double
    #: clicks: the first request's answer is replayed to the second).
    in_progress_wait_seconds: float = Field(default=10.0, ge=0)
    max_document_bytes: int = Field(default=MAX_DOCUMENT_BYTES, ge=1)

    @property
    def api_base(self) -> str:
        return (self.gateway_url or self.public_url).rstrip("/")
