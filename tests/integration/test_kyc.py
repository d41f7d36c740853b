"""kyc against real PostgreSQL, Kafka, S3 and gRPC (services.md §5): profiles from auth events,
details, document uploads (real PNG / PDF, renamed executable, oversize, replacement), submit
rules, review decisions from admin events (with redelivery), CheckLimits and GetDocument."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from minio.error import S3Error
from sqlalchemy import select

from mint.kit.limits import default_limits
from mint.kyc.models import Document
from mint.kyc.v1 import kyc_pb2 as pb
from tests.fixtures.documents import make_elf, make_jpeg_header_only, make_pdf, make_png
from tests.fixtures.kyc_service import Kyc, kyc, wait_until

__all__ = ["kyc"]  # the module-scoped fixture (service, client, issuer, helpers)

MB = 1024 * 1024
LIMITS = default_limits().tiers


def storage_keys(kyc: Kyc, user: uuid.UUID) -> list[str]:
    profile = kyc.profile(user)
    assert profile is not None
    with kyc.ctx.database().session() as session:
        docs = session.scalars(select(Document).where(Document.profile_id == profile.id))
        return [d.storage_key for d in docs]


def object_bytes(kyc: Kyc, key: str) -> bytes:
    response = kyc.s3.get_object(kyc.settings.kyc_bucket, key)
    try:
        return response.read()
    finally:
        response.close()
        response.release_conn()


def decide(kyc: Kyc, user: uuid.UUID, approve: bool, event_id: str | None = None) -> str:
    profile = kyc.profile(user)
    assert profile is not None
    data = {
        "target_type": "kyc_profile",
        "target_id": str(profile.id),
        "reason": "looks fine",
        "before": {"status": "PENDING_REVIEW"},
        "after": {},
        "profile_id": str(profile.id),
        "user_id": str(user),
    }
    if not approve:
        data["reason"] = "document is blurred"
    kind = "admin.kyc_approved" if approve else "admin.kyc_rejected"
    return kyc.publish(
        "admin.events",
        kind,
        data,
        key=user,
        event_id=event_id,
        actor=str(uuid.uuid4()),
        source="admin",
    )


# ---- profiles -----------------------------------------------------------------------------


def test_profile_from_registration_then_basic_on_verification(kyc: Kyc) -> None:
    user = kyc.registered()
    body = kyc.get(user).json()
    assert body["tier"] == "UNVERIFIED" and body["status"] == "NONE"
    assert body["documents"] == [] and body["country"] is None
    created = kyc.events(user, "kyc.profile_created")
    assert [e.data for e in created] == [{"user_id": str(user)}]
    profile_id = str(kyc.profile(user).id)  # type: ignore[union-attr]
    assert created[0].subject == profile_id  # kyc events are about the profile
    verified_id = kyc.publish("auth.events", "auth.user_verified", {"user_id": str(user)}, key=user)
    wait_until(lambda: kyc.get(user).json()["tier"] == "BASIC", what="BASIC")
    kyc.publish(
        "auth.events", "auth.user_verified", {"user_id": str(user)}, key=user, event_id=verified_id
    )  # redelivered
    again = kyc.publish("auth.events", "auth.user_verified", {"user_id": str(user)}, key=user)
    kyc.wait_processed(again)  # same key, same partition: the redelivery was handled before
    assert kyc.profile(user).tier == "BASIC"  # type: ignore[union-attr]
    upgrades = kyc.events(user, "kyc.tier_upgraded")
    assert [e.data for e in upgrades] == [
        {"user_id": str(user), "previous_tier": "UNVERIFIED", "new_tier": "BASIC"}
    ]
    assert [(e.subject, e.actor) for e in upgrades] == [(profile_id, "system")]
    wait_until(lambda: all(e.published_at for e in kyc.events(user)), what="relay publishes")


def test_profile_details_are_validated(kyc: Kyc) -> None:
    user = kyc.registered()
    ok = kyc.put_profile(
        user, country="de", full_name="  Ada   Lovelace ", date_of_birth="1990-12-10"
    )
    assert ok.status_code == 200, ok.text
    assert (ok.json()["country"], ok.json()["full_name"]) == ("DE", "Ada Lovelace")
    assert kyc.get(user).json()["date_of_birth"] == "1990-12-10"
    for bad in (
        {"country": "XX", "full_name": "A", "date_of_birth": "1990-01-01"},
        {"country": "DEU", "full_name": "A", "date_of_birth": "1990-01-01"},
        {"country": "DE", "full_name": "   ", "date_of_birth": "1990-01-01"},
        {"country": "DE", "full_name": "A", "date_of_birth": "2999-01-01"},
        {"country": "DE", "full_name": "A", "date_of_birth": "2020-01-01"},
        {"country": "DE", "full_name": "A", "date_of_birth": "1990-01-01", "tier": "VERIFIED"},
        {"country": "DE", "full_name": "A"},
    ):
        response = kyc.put_profile(user, **bad)
        assert response.status_code == 422, bad
        assert response.json()["code"] == "validation_error"
    assert kyc.client.get("/api/v1/kyc").status_code == 401


def test_limits_follow_the_tier_and_the_limits_file(kyc: Kyc) -> None:
    user = kyc.registered()
    assert kyc.get(user, "/limits").json() == {
        "tier": "UNVERIFIED",
        "currency": "USD",
        **LIMITS.UNVERIFIED.model_dump(),
    }
    kyc.registered(user, verified=True)
    assert kyc.get(user, "/limits").json()["daily"] == LIMITS.BASIC.daily
    kyc.set_limits("kyc-1", BASIC={"daily": 300000})
    try:
        wait_until(lambda: kyc.get(user, "/limits").json()["daily"] == 300000, what="new limits")
        assert kyc.client.get("/readyz").json()["limits_version"] == "kyc-1"
    finally:
        kyc.set_limits(default_limits().version)
        wait_until(lambda: kyc.limits.version == default_limits().version, what="reset")


# ---- documents ----------------------------------------------------------------------------


def test_real_png_and_pdf_are_stored_and_keys_never_shown(kyc: Kyc) -> None:
    user = kyc.registered()
    png, pdf = make_png(), make_pdf()
    selfie = kyc.upload(user, "SELFIE", png, "me.png")
    passport = kyc.upload(user, "PASSPORT", pdf, "../../etc/passport.pdf", "application/pdf")
    assert selfie.status_code == 201 and passport.status_code == 201, passport.text
    assert selfie.json()["content_type"] == "image/png" and selfie.json()["size"] == len(png)
    assert passport.json()["file_name"] == "passport.pdf"
    assert passport.json()["status"] == "UPLOADED"
    jpeg = kyc.upload(user, "OTHER", make_jpeg_header_only(), "x.bin", "text/plain")
    assert jpeg.json()["content_type"] == "image/jpeg"  # by content, not by name or header
    profile = kyc.get(user)
    assert {d["type"] for d in profile.json()["documents"]} == {"SELFIE", "PASSPORT", "OTHER"}
    keys = storage_keys(kyc, user)
    for key in keys:
        assert key not in profile.text and key not in selfie.text + passport.text
    assert sorted(object_bytes(kyc, k) for k in keys) == sorted([png, pdf, make_jpeg_header_only()])


@pytest.mark.parametrize(
    ("content", "name"),
    [
        (make_elf(), "selfie.png"),
        (b"MZ\x90\x00" + b"\x00" * 60, "setup.pdf"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "a.png"),
        (b"\x89PN", "short.png"),
        (b"", "e.png"),
    ],
)
def test_content_that_is_not_jpeg_png_or_pdf_is_415(kyc: Kyc, content: bytes, name: str) -> None:
    user = kyc.registered()
    response = kyc.upload(user, "SELFIE", content, name, "image/png")
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"
    assert kyc.get(user).json()["documents"] == []


def test_oversize_is_413_even_without_content_length(kyc: Kyc) -> None:
    user = kyc.registered()
    limit = kyc.settings.kyc_max_upload_bytes
    exact = make_png() + b"\x00" * (limit - len(make_png()))
    assert kyc.upload(user, "OTHER", exact, "big.png").status_code == 201  # exactly 10 MB fits
    over = kyc.upload(user, "SELFIE", exact + b"\x00", "big.png")
    assert over.status_code == 413 and over.json()["code"] == "file_too_large"
    boundary = "mintboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="type"\r\n\r\nSELFIE\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()

    def chunked() -> Iterator[bytes]:  # no Content-Length: the stream itself is counted
        yield head + make_png()
        for _ in range(11):
            yield b"\x00" * MB
        yield f"\r\n--{boundary}--\r\n".encode()

    streamed = kyc.client.post(
        "/api/v1/kyc/documents",
        content=chunked(),
        headers={
            **kyc.issuer.headers(user),
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
    )
    assert streamed.status_code == 413
    assert {d["type"] for d in kyc.get(user).json()["documents"]} == {"OTHER"}


def test_malformed_uploads_are_refused(kyc: Kyc) -> None:
    user = kyc.registered()
    headers = kyc.issuer.headers(user)
    assert kyc.upload(user, "PAYSLIP", make_png()).status_code == 422
    only_type = b'--b\r\nContent-Disposition: form-data; name="type"\r\n\r\nSELFIE\r\n--b--\r\n'
    no_file = kyc.client.post(
        "/api/v1/kyc/documents",
        content=only_type,
        headers={**headers, "Content-Type": "multipart/form-data; boundary=b"},
    )
    assert no_file.status_code == 422 and no_file.json()["errors"][0]["loc"] == ["body", "file"]
    no_type = kyc.client.post(
        "/api/v1/kyc/documents", files={"file": ("a.png", make_png(), "image/png")}, headers=headers
    )
    assert no_type.status_code == 422 and no_type.json()["errors"][0]["loc"] == ["body", "type"]
    form = kyc.client.post("/api/v1/kyc/documents", data={"type": "SELFIE"}, headers=headers)
    assert form.status_code == 415  # urlencoded, not multipart
    as_json = kyc.client.post("/api/v1/kyc/documents", json={"type": "SELFIE"}, headers=headers)
    assert as_json.status_code == 415
    extra = kyc.client.post(
        "/api/v1/kyc/documents",
        files={"file": ("a.png", make_png(), "image/png")},
        data={"type": "SELFIE", "storage_key": "x"},
        headers=headers,
    )
    assert extra.status_code == 422


def test_replacing_a_document_is_atomic_and_removes_the_old_object(kyc: Kyc) -> None:
    user = kyc.registered()
    first = kyc.upload(user, "PASSPORT", make_pdf("first"), "v1.pdf").json()
    [old_key] = storage_keys(kyc, user)
    second = kyc.upload(user, "PASSPORT", make_pdf("second"), "v2.pdf").json()
    assert second["id"] != first["id"]
    docs = kyc.get(user).json()["documents"]
    assert [(d["id"], d["file_name"]) for d in docs] == [(second["id"], "v2.pdf")]
    [new_key] = storage_keys(kyc, user)
    assert object_bytes(kyc, new_key) == make_pdf("second")
    with pytest.raises(S3Error):
        kyc.s3.stat_object(kyc.settings.kyc_bucket, old_key)


def test_idempotency_key_makes_an_upload_happen_once(kyc: Kyc) -> None:
    user = kyc.registered()
    headers = {**kyc.issuer.headers(user), "Idempotency-Key": "upload-1"}

    def send(content: bytes) -> httpx.Response:
        files = {"file": ("id.pdf", content, "application/pdf")}
        response: httpx.Response = kyc.client.post(
            "/api/v1/kyc/documents", files=files, data={"type": "PASSPORT"}, headers=headers
        )
        return response

    first, replay = send(make_pdf("one")), send(make_pdf("one"))
    assert first.status_code == replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    assert len(storage_keys(kyc, user)) == 1
    reused = send(make_pdf("two"))
    assert reused.status_code == 422 and reused.json()["code"] == "idempotency_key_reused"


# ---- submission and review ----------------------------------------------------------------


def test_submit_rules(kyc: Kyc) -> None:
    user = kyc.registered()
    refused = kyc.submit(user)
    assert refused.status_code == 422 and refused.json()["code"] == "tier_too_low"
    assert refused.json()["missing"] == ["tier_too_low", "id_document_missing", "selfie_missing"]
    kyc.registered(user, verified=True)
    assert kyc.submit(user).json()["code"] == "id_document_missing"
    kyc.upload(user, "UTILITY_BILL", make_pdf())
    assert kyc.submit(user).json()["code"] == "id_document_missing"
    kyc.upload(user, "DRIVERS_LICENSE", make_png())
    assert kyc.submit(user).json()["code"] == "selfie_missing"
    kyc.upload(user, "SELFIE", make_png())
    accepted = kyc.submit(user)
    assert accepted.status_code == 202 and accepted.json()["status"] == "PENDING_REVIEW"
    assert {d["status"] for d in accepted.json()["documents"]} == {"SUBMITTED"}
    profile = kyc.profile(user)
    assert [e.data for e in kyc.events(user, "kyc.submitted")] == [
        {"user_id": str(user), "profile_id": str(profile.id)}  # type: ignore[union-attr]
    ]
    again = kyc.submit(user)
    assert again.status_code == 422 and again.json()["code"] == "already_pending"
    busy = kyc.upload(user, "SELFIE", make_png())
    assert busy.status_code == 409 and busy.json()["code"] == "review_in_progress"
    details = kyc.put_profile(user, country="FR", full_name="B", date_of_birth="1980-01-01")
    assert details.status_code == 409


def test_approval_event_verifies_once_and_raises_the_limits(kyc: Kyc) -> None:
    user = kyc.submitted()
    event_id = decide(kyc, user, approve=True)
    wait_until(lambda: kyc.get(user).json()["tier"] == "VERIFIED", what="VERIFIED")
    decide(kyc, user, approve=True, event_id=event_id)  # redelivered: deduplicated
    decide(kyc, user, approve=True)  # a second decision: the conditional update ignores it
    late = decide(kyc, user, approve=False)  # a late rejection cannot undo the approval
    kyc.wait_processed(late)  # same key, same partition: the earlier ones were handled first
    body = kyc.get(user).json()
    assert (body["tier"], body["status"], body["rejection_reason"]) == (
        "VERIFIED",
        "APPROVED",
        None,
    )
    assert {d["status"] for d in body["documents"]} == {"APPROVED"}
    assert [e.data["new_tier"] for e in kyc.events(user, "kyc.tier_upgraded")] == [
        "BASIC",
        "VERIFIED",
    ]
    assert kyc.events(user, "kyc.verification_failed") == []
    assert kyc.get(user, "/limits").json()["per_transaction"] == LIMITS.VERIFIED.per_transaction
    check = kyc.stub().CheckLimits(pb.CheckLimitsRequest(user_id=str(user), amount=900_000))
    assert check.allowed and check.tier == "VERIFIED"
    assert kyc.submit(user).json()["code"] == "already_verified"
    locked = kyc.put_profile(user, country="FR", full_name="B", date_of_birth="1980-01-01")
    assert locked.status_code == 409 and locked.json()["code"] == "profile_locked"


def test_rejection_event_keeps_the_tier_and_allows_a_new_submission(kyc: Kyc) -> None:
    user = kyc.submitted()
    decide(kyc, user, approve=False)
    wait_until(lambda: kyc.get(user).json()["status"] == "REJECTED", what="REJECTED")
    body = kyc.get(user).json()
    assert (body["tier"], body["rejection_reason"]) == ("BASIC", "document is blurred")
    [failed] = kyc.events(user, "kyc.verification_failed")
    assert failed.data == {"user_id": str(user), "reason": "document is blurred"}
    assert failed.subject == str(kyc.profile(user).id)  # type: ignore[union-attr]
    assert kyc.upload(user, "SELFIE", make_png(rgb=(1, 2, 3))).status_code == 201
    again = kyc.submit(user)
    assert again.status_code == 202 and again.json()["rejection_reason"] is None
