"""Secrets the operator creates when absent: the internal gRPC token, the auth signing keys
(``<kid>.pem``, kid = UTC creation time ``YYYYMMDDHHMMSS``) with their rotation plan, and audit's
runtime database role. Pure apart from randomness and key generation."""

from __future__ import annotations

import base64
import re
import secrets as random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mint_operator.render.common import meta, obj
from mint_operator.render.postgres import role_secret, role_uri
from mint_operator.spec import Obj, Tenant, dig

KID_FORMAT = "%Y%m%d%H%M%S"
KEY_FILE = re.compile(r"^(\d{14})\.pem$")


def b64(value: str | bytes) -> str:
    raw = value.encode() if isinstance(value, str) else value
    return base64.b64encode(raw).decode("ascii")


def kid_for(now: datetime) -> str:
    return now.astimezone(UTC).strftime(KID_FORMAT)


def kid_time(kid: str) -> datetime:
    return datetime.strptime(kid, KID_FORMAT).replace(tzinfo=UTC)


def new_private_key_pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass(frozen=True)
class RotationPolicy:
    rotation: timedelta
    retire_after: timedelta  # rotation + access-token lifetime + leeway

    @classmethod
    def of(cls, t: Tenant) -> RotationPolicy:
        days = int(dig(t.spec, "auth.signingKeys.rotationDays", 30))
        access = int(dig(t.spec, "auth.signingKeys.accessTokenSeconds", 900))
        leeway = int(dig(t.spec, "auth.signingKeys.leewaySeconds", 60))
        rotation = timedelta(days=days)
        return cls(rotation=rotation, retire_after=rotation + timedelta(seconds=access + leeway))


@dataclass(frozen=True)
class RotationPlan:
    add: str | None  # the kid to create
    remove: tuple[str, ...]  # kids (file ``<kid>.pem``) to delete

    @property
    def changes(self) -> bool:
        return self.add is not None or bool(self.remove)


def plan_rotation(files: list[str], now: datetime, policy: RotationPolicy) -> RotationPlan:
    """Add a key when none exists or the newest is older than the rotation period; remove keys
    older than ``retire_after`` — never the newest one (it signs)."""
    kids = sorted(m.group(1) for f in files if (m := KEY_FILE.match(f)))
    add = None
    if not kids or now - kid_time(kids[-1]) >= policy.rotation:
        add = kid_for(now)
    newest = add or kids[-1]
    remove = tuple(k for k in kids if k != newest and now - kid_time(k) > policy.retire_after)
    return RotationPlan(add=add, remove=remove)


def signing_keys_secret(t: Tenant, now: datetime) -> Obj:
    kid = kid_for(now)
    return obj(
        "v1",
        "Secret",
        meta(t, t.signing_keys_secret, "auth"),
        type="Opaque",
        data={f"{kid}.pem": b64(new_private_key_pem())},
    )


def internal_token_secret(t: Tenant) -> Obj:
    return obj(
        "v1",
        "Secret",
        meta(t, t.internal_token_secret, "internal-token"),
        type="Opaque",
        data={"token": b64(random.token_urlsafe(32))},
    )


def db_role_secret(t: Tenant, service: str, role: str) -> Obj:
    """A database login role's credentials: audit's runtime role beside its owner, or, in the
    shared layout, every service's roles."""
    password = random.token_hex(24)
    return obj(
        "v1",
        "Secret",
        meta(t, role_secret(t, service, role), f"{service}-db"),
        type="kubernetes.io/basic-auth",
        data={
            "username": b64(role),
            "password": b64(password),
            "uri": b64(role_uri(t, service, role, password)),
        },
    )
