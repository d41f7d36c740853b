"""gRPC ``mint.kyc.v1.KycService`` for transactions (GetProfile, CheckLimits) and admin
(GetProfile, ListPendingQueue, GetDocument). Refusals are :class:`Problem` s, which the kit's
interceptor turns into the matching status with the stable code as details."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from mint.kit.errors import Problem
from mint.kit.service import ServiceContext
from mint.kyc import domain, store
from mint.kyc.documents import open_document
from mint.kyc.models import Document, Profile
from mint.kyc.v1 import kyc_pb2 as pb
from mint.kyc.v1 import kyc_pb2_grpc as pb_grpc

DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 20, 100


def _id(value: str, code: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise Problem(400, code, f"not a UUID: {value!r}") from None


def _ts(value: datetime | None) -> str:
    return value.isoformat().replace("+00:00", "Z") if value is not None else ""


def document_message(document: Document) -> pb.Document:
    return pb.Document(
        id=str(document.id),
        type=document.type,
        file_name=document.file_name,
        content_type=document.content_type,
        size=document.size,
        status=document.status,
        uploaded_at=_ts(document.uploaded_at),
    )


def profile_message(session: Session, profile: Profile) -> pb.Profile:
    return pb.Profile(
        profile_id=str(profile.id),
        user_id=str(profile.user_id),
        tier=profile.tier,
        status=profile.status,
        country=profile.country or "",
        full_name=profile.full_name or "",
        date_of_birth=profile.date_of_birth.isoformat() if profile.date_of_birth else "",
        rejection_reason=profile.rejection_reason or "",
        submitted_at=_ts(profile.submitted_at),
        reviewed_at=_ts(profile.reviewed_at),
        reviewer_id=profile.reviewer_id or "",
        documents=[document_message(d) for d in store.documents_of(session, profile.id)],
        created_at=_ts(profile.created_at),
        updated_at=_ts(profile.updated_at),
    )


class KycServicer(pb_grpc.KycServiceServicer):
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.db = ctx.database()

    def GetProfile(self, request: pb.GetProfileRequest, context: Any) -> pb.Profile:
        user_id = _id(request.user_id, "invalid_user_id")
        with self.db.session() as session:
            profile = store.get_profile(session, user_id)
            if profile is None:
                raise Problem(404, "profile_not_found", "no KYC profile for this user")
            return profile_message(session, profile)

    def CheckLimits(self, request: pb.CheckLimitsRequest, context: Any) -> pb.CheckLimitsResponse:
        user_id = _id(request.user_id, "invalid_user_id")
        if request.amount <= 0:
            raise Problem(400, "invalid_amount", "amount must be positive")
        if request.used_today < 0 or request.used_this_month < 0:
            raise Problem(400, "invalid_usage", "usage must not be negative")
        limits = self.ctx.limits.current  # one snapshot for the whole decision
        if request.currency and request.currency != limits.currency:
            raise Problem(422, "unsupported_currency", f"limits are in {limits.currency}")
        with self.db.session() as session:
            profile = store.get_profile(session, user_id)
        tier = profile.tier if profile is not None else domain.UNVERIFIED
        values = limits.for_tier(tier)
        result = domain.check_limits(
            values, request.amount, request.used_today, request.used_this_month
        )
        return pb.CheckLimitsResponse(
            allowed=result.allowed,
            violated=result.violated,
            limits=pb.TierLimits(
                per_transaction=values.per_transaction, daily=values.daily, monthly=values.monthly
            ),
            remaining=result.remaining,
            limit_value=result.limit_value,
            tier=tier,
            currency=limits.currency,
            limits_version=limits.version,
        )

    def ListPendingQueue(
        self, request: pb.ListPendingQueueRequest, context: Any
    ) -> pb.ListPendingQueueResponse:
        size = request.page_size or DEFAULT_PAGE_SIZE
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise Problem(400, "invalid_page_size", f"page_size must be 1-{MAX_PAGE_SIZE}")
        with self.db.session() as session:
            page = store.pending_queue(session, size, request.page_token)
            return pb.ListPendingQueueResponse(
                profiles=[profile_message(session, p) for p in page.profiles],
                next_page_token=page.next_token,
            )

    def GetDocument(
        self, request: pb.GetDocumentRequest, context: Any
    ) -> Iterator[pb.DocumentChunk]:
        content = open_document(self.ctx, _id(request.document_id, "invalid_document_id"))
        first = True
        for data in content.chunks:
            if first:
                yield pb.DocumentChunk(
                    data=data,
                    content_type=content.content_type,
                    file_name=content.file_name,
                    size=content.size,
                    document_id=str(content.document_id),
                    type=content.type,
                    user_id=str(content.user_id),
                )
                first = False
            else:
                yield pb.DocumentChunk(data=data)
