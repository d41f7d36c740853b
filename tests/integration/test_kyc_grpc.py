"""kyc's gRPC ``KycService`` over a real loopback server (``mint.kit.rpc.serve_grpc`` started by
the service runner): CheckLimits, GetProfile, ListPendingQueue, GetDocument; and ``/readyz``."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import grpc
import pytest

from mint.kit.limits import default_limits
from mint.kyc.v1 import kyc_pb2 as pb
from tests.fixtures.documents import make_png
from tests.fixtures.kyc_service import Kyc, kyc

__all__ = ["kyc"]  # the module-scoped fixture (service, client, issuer, helpers)

LIMITS = default_limits().tiers


# ---- gRPC ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "used_today", "used_month", "allowed", "violated", "remaining"),
    [
        (50_000, 0, 0, True, "none", 50_000),
        (50_001, 0, 0, False, "per_transaction", 50_000),
        (30_000, 180_000, 180_000, False, "daily", 20_000),
        (30_000, 0, 990_000, False, "monthly", 10_000),
        (1, 200_000, 200_000, False, "daily", 0),
    ],
)
def test_check_limits_over_grpc(
    kyc: Kyc,
    amount: int,
    used_today: int,
    used_month: int,
    allowed: bool,
    violated: str,
    remaining: int,
) -> None:
    user = kyc.registered(verified=True)
    result = kyc.stub().CheckLimits(
        pb.CheckLimitsRequest(
            user_id=str(user),
            amount=amount,
            currency="USD",
            used_today=used_today,
            used_this_month=used_month,
        )
    )
    assert (result.allowed, result.violated, result.remaining) == (allowed, violated, remaining)
    assert result.tier == "BASIC" and result.limits.daily == LIMITS.BASIC.daily
    expected_value = 0 if allowed else getattr(LIMITS.BASIC, violated)
    assert result.limit_value == expected_value


def test_check_limits_refusals_and_unknown_users(kyc: Kyc) -> None:
    stub = kyc.stub()
    stranger = stub.CheckLimits(pb.CheckLimitsRequest(user_id=str(uuid.uuid4()), amount=6000))
    assert (stranger.tier, stranger.violated) == ("UNVERIFIED", "per_transaction")
    for request, code, details in [
        (
            pb.CheckLimitsRequest(user_id=str(uuid.uuid4()), amount=1, currency="EUR"),
            grpc.StatusCode.FAILED_PRECONDITION,
            "unsupported_currency",
        ),
        (
            pb.CheckLimitsRequest(user_id="nope", amount=1),
            grpc.StatusCode.INVALID_ARGUMENT,
            "invalid_user_id",
        ),
        (
            pb.CheckLimitsRequest(user_id=str(uuid.uuid4()), amount=0),
            grpc.StatusCode.INVALID_ARGUMENT,
            "invalid_amount",
        ),
    ]:
        with pytest.raises(grpc.RpcError) as exc:
            stub.CheckLimits(request)
        assert (exc.value.code(), exc.value.details()) == (code, details)
    with pytest.raises(grpc.RpcError) as exc:
        kyc.stub(token="wrong").CheckLimits(pb.CheckLimitsRequest(user_id=str(uuid.uuid4())))
    assert exc.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_get_profile_and_pending_queue(kyc: Kyc) -> None:
    stub = kyc.stub()
    users = [kyc.submitted() for _ in range(3)]
    profile = stub.GetProfile(pb.GetProfileRequest(user_id=str(users[0])))
    assert (profile.tier, profile.status) == ("BASIC", "PENDING_REVIEW")
    assert {d.type for d in profile.documents} == {"PASSPORT", "SELFIE"}
    with pytest.raises(grpc.RpcError) as exc:
        stub.GetProfile(pb.GetProfileRequest(user_id=str(uuid.uuid4())))
    assert (exc.value.code(), exc.value.details()) == (
        grpc.StatusCode.NOT_FOUND,
        "profile_not_found",
    )
    seen: list[str] = []
    token = ""
    while True:
        page = stub.ListPendingQueue(pb.ListPendingQueueRequest(page_size=2, page_token=token))
        assert len(page.profiles) <= 2
        seen += [p.user_id for p in page.profiles]
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == len(set(seen))
    mine = [u for u in seen if u in {str(x) for x in users}]
    assert mine == [str(u) for u in users]  # oldest submission first


def test_malformed_requests_are_invalid_argument(kyc: Kyc) -> None:
    stub = kyc.stub()
    calls: list[tuple[Callable[[], object], str]] = [
        (lambda: stub.GetProfile(pb.GetProfileRequest(user_id="nope")), "invalid_user_id"),
        (
            lambda: stub.ListPendingQueue(pb.ListPendingQueueRequest(page_size=101)),
            "invalid_page_size",
        ),
        (
            lambda: stub.ListPendingQueue(pb.ListPendingQueueRequest(page_token="garbage")),
            "invalid_page_token",
        ),
        (
            lambda: list(stub.GetDocument(pb.GetDocumentRequest(document_id="nope"))),
            "invalid_document_id",
        ),
    ]
    for call, details in calls:
        with pytest.raises(grpc.RpcError) as exc:
            call()
        assert (exc.value.code(), exc.value.details()) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            details,
        )


def test_get_document_streams_the_bytes(kyc: Kyc) -> None:
    user = kyc.registered()
    content = make_png(width=300, height=300)
    content += bytes(range(256)) * 1024  # ~330 KB: several chunks
    uploaded = kyc.upload(user, "PASSPORT", content, "scan.png").json()
    chunks = list(kyc.stub().GetDocument(pb.GetDocumentRequest(document_id=uploaded["id"])))
    assert len(chunks) > 1
    assert b"".join(c.data for c in chunks) == content
    first = chunks[0]
    assert (first.content_type, first.file_name, first.size) == (
        "image/png",
        "scan.png",
        len(content),
    )
    assert first.user_id == str(user) and first.type == "PASSPORT"
    with pytest.raises(grpc.RpcError) as exc:
        list(kyc.stub().GetDocument(pb.GetDocumentRequest(document_id=str(uuid.uuid4()))))
    assert (exc.value.code(), exc.value.details()) == (
        grpc.StatusCode.NOT_FOUND,
        "document_not_found",
    )


def test_readyz_reports_storage_and_limits(kyc: Kyc) -> None:
    body = kyc.client.get("/readyz").json()
    assert body["status"] == "ok"
    assert body["checks"] == {"database": "ok", "limits": "ok", "storage": "ok"}
    assert body["limits_version"] == kyc.limits.version
