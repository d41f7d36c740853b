"""The KYC flow end to end through the gateway, with the shipped default limits: register →
verify the email through the link in the captured mail (BASIC) → upload a real PNG selfie and a
PDF passport → submit → an admin approval on ``admin.events`` (VERIFIED) → a transfer above the
BASIC limit, refused before, now succeeds."""

from __future__ import annotations

import email
import email.policy
import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import httpx
from confluent_kafka import Producer

from mint.dev.platform import Platform
from mint.kit.config import KitSettings
from mint.kit.events import build_headers
from mint.kit.rpc import grpc_client
from mint.kyc.v1 import kyc_pb2, kyc_pb2_grpc
from tests.e2e.conftest import User, register, wait_for_wallet
from tests.e2e.review_support import Reviewer, settled_as
from tests.e2e.test_limits import (
    LiveLimits,
    assert_limit_exceeded,
    live_limits,
    poll,
    topup,
    transfer,
)
from tests.fixtures.documents import make_pdf, make_png

__all__ = ["live_limits"]  # the fixture: default limits now, the generous file restored after

BASIC_PER_TXN = 50_000
VERIFIED_LIMITS = {"per_transaction": 1_000_000, "daily": 5_000_000, "monthly": 20_000_000}
_LINK = re.compile(r"/verify-email\?token=([A-Za-z0-9_\-%.~]+)")


def publish(
    platform: Platform, topic: str, type: str, data: dict[str, Any], *, key: str, actor: str,
    subject: str, source: str,
) -> None:  # fmt: skip
    """A CloudEvent in binary mode with the headers of events.md, as its producer would."""
    headers = build_headers(
        id=str(uuid.uuid4()), type=type, source=source, subject=subject, actor=actor,
        time=datetime.now(UTC),
    )  # fmt: skip
    producer = Producer({"bootstrap.servers": platform.infra.kafka_bootstrap, "log_level": 3})
    producer.produce(topic, json.dumps(data).encode(), key.encode(), headers=list(headers))
    assert producer.flush(15) == 0, f"{type} not delivered to {topic}"


def verification_token(platform: Platform, address: str, timeout: float = 30) -> str | None:
    """The token of the newest verification link mailed to ``address`` (the dev SMTP sink writes
    one ``.eml`` per message)."""

    def find() -> str | None:
        for path in sorted(platform.infra.mail_dir.glob("*.eml"), reverse=True):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if address not in str(message.get("To", "")):
                continue
            body = message.get_body(preferencelist=("plain",))
            match = _LINK.search(body.get_content() if body is not None else "")
            if match:
                return unquote(match.group(1))
        return None

    token: str | None = poll(find, timeout, f"the verification mail to {address}")
    return token


def verify_email(platform: Platform, gateway: httpx.Client, user: User) -> str:
    """Verify through auth's mail flow; while those endpoints have not landed (404), stand in
    for auth by publishing ``auth.user_verified``. Returns which way was used."""
    r = gateway.post("/api/v1/auth/verify-email/request", headers=user.headers)
    if r.status_code in (404, 405):
        publish(
            platform, "auth.events", "auth.user_verified", {"user_id": user.id},
            key=user.id, actor=user.id, subject=user.id, source="auth",
        )  # fmt: skip
        return "event"
    assert r.status_code == 202, r.text
    token = verification_token(platform, user.email)
    r = gateway.post("/api/v1/auth/verify-email", json={"token": token})
    assert r.status_code == 204, r.text
    return "mail"


def kyc_profile(gateway: httpx.Client, user: User) -> dict[str, Any]:
    r = gateway.get("/api/v1/kyc", headers=user.headers)
    assert r.status_code == 200, r.text
    profile: dict[str, Any] = r.json()
    return profile


def wait_for_tier(gateway: httpx.Client, user: User, tier: str, timeout: float = 30) -> None:
    poll(lambda: kyc_profile(gateway, user)["tier"] == tier, timeout, f"tier {tier}")


def upload(
    gateway: httpx.Client, user: User, kind: str, name: str, content: bytes, media: str
) -> httpx.Response:
    return gateway.post(
        "/api/v1/kyc/documents",
        files={"file": (name, content, media)},
        data={"type": kind},
        headers=user.headers,
    )


def profile_id(platform: Platform, user: User) -> str:
    """What the admin service knows: the profile id, from kyc ``GetProfile`` (internal gRPC)."""
    settings = KitSettings(service_name="admin", internal_token=platform.internal_token())
    stub = grpc_client(
        settings, "kyc", kyc_pb2_grpc.KycServiceStub,
        target=f"127.0.0.1:{platform.grpc_ports['kyc']}",
    )  # fmt: skip
    profile = stub.GetProfile(kyc_pb2.GetProfileRequest(user_id=user.id))
    assert profile.status == "PENDING_REVIEW", profile
    return str(profile.profile_id)


def test_verification_and_approval_raise_the_limits(
    platform: Platform, gateway: httpx.Client, live_limits: LiveLimits
) -> None:
    live_limits.apply_defaults()
    user, friend = register(gateway, "Vera"), register(gateway, "Frank")
    for u in (user, friend):
        wait_for_wallet(gateway, u)
    assert kyc_profile(gateway, user)["tier"] == "UNVERIFIED"

    how = verify_email(platform, gateway, user)
    wait_for_tier(gateway, user, "BASIC")
    print(f"\n[e2e] email verified via {how}")
    for _ in range(2):
        assert topup(gateway, user, 40_000).status_code == 201  # BASIC: up to 50 000 each
    assert_limit_exceeded(
        transfer(gateway, user, friend, 60_000), "per_transaction", BASIC_PER_TXN, BASIC_PER_TXN
    )

    r = upload(gateway, user, "SELFIE", "selfie.png", make_png(64, 48), "image/png")
    assert r.status_code == 201, r.text
    r = upload(
        gateway, user, "PASSPORT", "passport.pdf", make_pdf("Vera Example"), "application/pdf"
    )
    assert r.status_code == 201, r.text
    r = gateway.post("/api/v1/kyc/submit", headers=user.headers)
    assert r.status_code == 202, r.text
    profile = kyc_profile(gateway, user)
    assert profile["status"] == "PENDING_REVIEW"
    assert {d["type"] for d in profile["documents"]} == {"SELFIE", "PASSPORT"}
    assert all("key" not in d and "storage_key" not in d for d in profile["documents"])

    pid = profile_id(platform, user)
    admin = str(uuid.uuid4())
    data = {
        "target_type": "kyc_profile", "target_id": pid, "reason": "documents match",
        "before": {"tier": "BASIC", "status": "PENDING_REVIEW"},
        "after": {"tier": "VERIFIED", "status": "APPROVED"},
        "profile_id": pid, "user_id": user.id,
    }  # fmt: skip
    publish(
        platform, "admin.events", "admin.kyc_approved", data,
        key=user.id, actor=admin, subject=pid, source="admin",
    )  # fmt: skip
    wait_for_tier(gateway, user, "VERIFIED")
    assert kyc_profile(gateway, user)["status"] == "APPROVED"
    limits = gateway.get("/api/v1/kyc/limits", headers=user.headers).json()
    assert {k: limits[k] for k in VERIFIED_LIMITS} == VERIFIED_LIMITS

    # The bigger limits apply to the very next transfer: no longer refused. $600 to someone who
    # is not a contact goes to a fraud review (services.md §4), which a reviewer approves.
    r = transfer(gateway, user, friend, 60_000)
    assert r.status_code == 202, r.text
    assert (r.json()["status"], r.json()["fraud"]["decision"]) == ("PENDING", "REVIEW")
    Reviewer(platform).review_transaction(r.json()["id"], "APPROVE")
    done = settled_as(gateway, user, r.json()["id"], "COMPLETED")
    assert done["amount"] == 60_000
    balance = gateway.get("/api/v1/wallet", headers=friend.headers).json()["balance"]
    assert balance == 60_000
