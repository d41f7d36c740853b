"""gRPC ``mint.kyc.v1.KycService`` for transactions (GetProfile, CheckLimits) and admin
(GetProfile, ListPendingQueue, GetDocument).

Each RPC opens a unit of work and calls one use case; a refusal is a domain error the kit's
interceptor answers with the status of its kind and the stable code as details
(``invalid_user_id`` → INVALID_ARGUMENT, ``profile_not_found`` → NOT_FOUND, …).
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc

from mint.kit.time import rfc3339, rfc3339_or_none
from mint.kyc import actions, domain
from mint.kyc.models import Document, Profile
from mint.kyc.v1 import kyc_pb2 as pb
from mint.kyc.v1 import kyc_pb2_grpc as pb_grpc
from mint.kyc.wiring import Wiring


def document_message(document: Document) -> pb.Document:
    return pb.Document(
        id=str(document.id),
        type=document.type,
        file_name=document.file_name,
        content_type=document.content_type,
        size=document.size,
        status=document.status,
        uploaded_at=rfc3339(document.uploaded_at),
    )


def profile_message(profile: Profile) -> pb.Profile:
    """The profile with its documents (loaded on access, inside the caller's session)."""
    return pb.Profile(
        profile_id=str(profile.id),
        user_id=str(profile.user_id),
        tier=profile.tier,
        status=profile.status,
        country=profile.country or "",
        full_name=profile.full_name or "",
        date_of_birth=profile.date_of_birth.isoformat() if profile.date_of_birth else "",
        rejection_reason=profile.rejection_reason or "",
        submitted_at=rfc3339_or_none(profile.submitted_at) or "",
        reviewed_at=rfc3339_or_none(profile.reviewed_at) or "",
        reviewer_id=profile.reviewer_id or "",
        documents=[document_message(d) for d in profile.documents],
        created_at=rfc3339(profile.created_at),
        updated_at=rfc3339(profile.updated_at),
    )


def limits_message(decision: actions.LimitsDecision) -> pb.CheckLimitsResponse:
    limits = decision.limits
    return pb.CheckLimitsResponse(
        allowed=decision.check.allowed,
        violated=decision.check.violated,
        limits=pb.TierLimits(
            per_transaction=limits.per_transaction, daily=limits.daily, monthly=limits.monthly
        ),
        remaining=decision.check.remaining,
        limit_value=decision.check.limit_value,
        tier=decision.tier,
        currency=decision.currency,
        limits_version=decision.limits_version,
        country=decision.country,
    )


class KycServicer(pb_grpc.KycServiceServicer):
    def __init__(self, wired: Wiring) -> None:
        self.wired = wired
        self.db = wired.db

    def GetProfile(
        self, request: pb.GetProfileRequest, context: grpc.ServicerContext
    ) -> pb.Profile:
        user_id = domain.parse_id(request.user_id, "invalid_user_id")
        with self.db.session() as session:
            return profile_message(actions.get_profile(session, user_id))

    def CheckLimits(
        self, request: pb.CheckLimitsRequest, context: grpc.ServicerContext
    ) -> pb.CheckLimitsResponse:
        user_id = domain.parse_id(request.user_id, "invalid_user_id")
        with self.db.session() as session:
            decision = actions.check_limits(
                session,
                self.wired.limits,
                user_id,
                amount=request.amount,
                used_today=request.used_today,
                used_this_month=request.used_this_month,
                currency=request.currency,
            )
        return limits_message(decision)

    def ListPendingQueue(
        self, request: pb.ListPendingQueueRequest, context: grpc.ServicerContext
    ) -> pb.ListPendingQueueResponse:
        with self.db.session() as session:
            page = actions.pending_queue(session, request.page_size, request.page_token)
            return pb.ListPendingQueueResponse(
                profiles=[profile_message(p) for p in page.profiles],
                next_page_token=page.next_token,
            )

    def GetDocument(
        self, request: pb.GetDocumentRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.DocumentChunk]:
        document_id = domain.parse_id(request.document_id, "invalid_document_id")
        content = actions.open_document(self.db, self.wired.storage, document_id)
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
