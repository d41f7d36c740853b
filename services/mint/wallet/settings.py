"""wallet settings: only the kit's (``MINT_*``); the currency is fixed to USD for now."""

from __future__ import annotations

from mint.kit.config import KitSettings


class Settings(KitSettings):
    service_name: str = "wallet"
