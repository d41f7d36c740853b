"""auth's settings: the kit's plus where the signing keys live."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from mint.kit.config import KitSettings


class AuthSettings(KitSettings):
    #: Directory of ``<kid>.pem`` RSA keys (``MINT_SIGNING_KEYS_DIR``); dev: ``.mint/keys``.
    signing_keys_dir: Path = Path(".mint/keys")
    #: Registrations allowed per client IP per hour (``MINT_REGISTER_RATE_PER_HOUR``).
    register_rate_per_hour: int = Field(default=20, ge=1)
