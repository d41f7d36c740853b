"""fraud settings: the kit's (database, Redis for the velocity window, the limits file)."""

from __future__ import annotations

from mint.kit.config import KitSettings


class Settings(KitSettings):
    service_name: str = "fraud"
