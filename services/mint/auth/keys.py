"""RSA signing keys: a directory of ``<kid>.pem`` files (platform.md, ``auth.signingKeys``).

``kid`` is the key's UTC creation time ``YYYYMMDDHHMMSS``; the newest kid signs and the JWKS
serves every key in the directory. The directory is re-read whenever it changes (a cheap stat of
its entries on each use), so the operator can add or delete keys without a restart.
"""

from __future__ import annotations

import base64
import os
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mint.auth.domain import ALGORITHM

KID_FORMAT = "%Y%m%d%H%M%S"
KID_RE = re.compile(r"^\d{14}$")
KEY_BITS = 2048
log = structlog.get_logger("mint.auth.keys")


class NoSigningKeyError(RuntimeError):
    """The signing-key directory holds no usable key."""


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self.private_key.public_key()

    def jwk(self) -> dict[str, str]:
        numbers = self.public_key.public_numbers()
        return {
            "kty": "RSA",
            "n": _b64uint(numbers.n),
            "e": _b64uint(numbers.e),
            "kid": self.kid,
            "use": "sig",
            "alg": ALGORITHM,
        }


def _b64uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def kid_for(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(KID_FORMAT)


def generate_key(directory: Path, *, now: datetime | None = None) -> str:
    """Write a new 2048-bit RSA key as ``<kid>.pem`` (mode 0600) and return its kid.

    Two keys made within one second get distinct kids (the later one moves a second on).
    The file is written under a hidden temporary name and renamed, so readers never see half.
    """
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    moment = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    while (directory / f"{kid_for(moment)}.pem").exists():
        moment += timedelta(seconds=1)
    kid = kid_for(moment)
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    tmp = directory / f".{kid}.pem.tmp"
    tmp.unlink(missing_ok=True)  # a leftover of a crash would keep its own mode: create anew
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, directory / f"{kid}.pem")
    log.info("signing_key_generated", kid=kid)
    return kid


def ensure_signing_key(directory: Path) -> str:
    """Return the newest kid in ``directory``, generating a first key when there is none
    (``make dev``; in Kubernetes the operator provides the keys)."""
    kids = sorted(_kid_files(directory))
    if kids:
        return kids[-1]
    return generate_key(directory)


def _kid_files(directory: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return out
    for entry in entries:
        stem, dot, ext = entry.name.partition(".")
        if dot and ext == "pem" and KID_RE.match(stem):
            out[stem] = Path(entry.path)
    return out


def load_keys(directory: Path) -> list[SigningKey]:
    """Every valid ``<kid>.pem`` RSA private key in ``directory``, oldest first. Unreadable or
    unsuitable files are skipped with a warning (a bad file must not take signing down)."""
    keys: list[SigningKey] = []
    for kid, path in sorted(_kid_files(directory).items()):
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            log.warning("signing_key_unreadable", kid=kid, error=type(exc).__name__)
            continue
        if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < KEY_BITS:
            log.warning("signing_key_unsuitable", kid=kid)
            continue
        keys.append(SigningKey(kid, key))
    return keys


def _fingerprint(directory: Path) -> tuple[Any, ...]:
    """Cheap change detector: the stat of the directory and of each key file (following
    symlinks, so a Kubernetes Secret's ``..data`` swap is seen)."""
    parts: list[Any] = []
    try:
        st = directory.stat()
    except FileNotFoundError:
        return ()
    parts.append((st.st_mtime_ns, st.st_ino))
    for kid, path in sorted(_kid_files(directory).items()):
        try:
            fst = path.stat()
        except FileNotFoundError:
            continue
        parts.append((kid, fst.st_mtime_ns, fst.st_size, fst.st_ino))
    return tuple(parts)


class KeyRing:
    """The keys of one directory, reloaded when the directory changes."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._fingerprint: tuple[Any, ...] | None = None
        self._keys: list[SigningKey] = []

    def all_keys(self) -> list[SigningKey]:
        """All keys, oldest first (re-read if the directory changed)."""
        current = _fingerprint(self.directory)
        if current != self._fingerprint:
            with self._lock:
                if current != self._fingerprint:
                    self._keys = load_keys(self.directory)
                    self._fingerprint = current
                    log.info("signing_keys_loaded", kids=[k.kid for k in self._keys])
        return self._keys

    def signing_key(self) -> SigningKey:
        keys = self.all_keys()
        if not keys:
            raise NoSigningKeyError(f"no signing key in {self.directory} (MINT_SIGNING_KEYS_DIR)")
        return keys[-1]

    def public_key(self, kid: str) -> rsa.RSAPublicKey | None:
        for key in self.all_keys():
            if key.kid == kid:
                return key.public_key
        return None

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [k.jwk() for k in reversed(self.all_keys())]}
