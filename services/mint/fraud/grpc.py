"""gRPC ``mint.fraud.v1.FraudService`` for transactions (ScoreTransaction) and admin (cases and
sanctions).

Each RPC opens a unit of work and calls one use case; a refusal is a domain error the kit's
interceptor answers with the status of its kind and the stable code as details
(``invalid_amount`` → INVALID_ARGUMENT, ``case_not_found`` → NOT_FOUND, ``case_not_open`` →
FAILED_PRECONDITION).
"""

from __future__ import annotations

import grpc

from mint.fraud import actions, domain
from mint.fraud.models import Case, Sanction
from mint.fraud.v1 import fraud_pb2 as pb
from mint.fraud.v1 import fraud_pb2_grpc as pb_grpc
from mint.fraud.wiring import Wiring
from mint.kit.time import rfc3339, rfc3339_or_none


def case_message(case: Case) -> pb.Case:
    return pb.Case(
        id=str(case.id),
        transaction_id=str(case.transaction_id),
        user_id=str(case.user_id),
        status=case.status,
        decision=case.decision,
        score=case.score,
        rules=case.rules,
        type=case.type,
        amount=case.amount,
        currency=case.currency,
        recipient_id=str(case.recipient_id) if case.recipient_id else "",
        reviewer_id=case.reviewer_id or "",
        notes=case.notes or "",
        created_at=rfc3339(case.created_at),
        closed_at=rfc3339_or_none(case.closed_at) or "",
    )


def sanction_message(sanction: Sanction) -> pb.Sanction:
    return pb.Sanction(
        user_id=str(sanction.user_id),
        reason=sanction.reason or "",
        added_by=sanction.added_by or "",
        created_at=rfc3339(sanction.created_at),
    )


class FraudServicer(pb_grpc.FraudServiceServicer):
    def __init__(self, wired: Wiring) -> None:
        self.wired = wired
        self.db = wired.db

    def ScoreTransaction(
        self, request: pb.ScoreRequest, context: grpc.ServicerContext
    ) -> pb.ScoreResponse:
        scored = domain.score_input(
            transaction_id=request.transaction_id,
            type=request.type,
            user_id=request.user_id,
            recipient_id=request.recipient_id,
            amount=request.amount,
            currency=request.currency,
            ip_address=request.ip_address,
            user_country=request.user_country,
            recipient_is_contact=request.recipient_is_contact,
        )
        with self.db.session() as session:
            verdict = actions.score_transaction(
                session,
                scored,
                velocity=self.wired.velocity,
                settings=self.wired.limits.current.fraud,
                now=self.wired.clock(),
            )
        return pb.ScoreResponse(
            decision=verdict.decision,
            score=verdict.score,
            rules_fired=verdict.rules,
            reason=verdict.reason,
            case_id=str(verdict.case_id) if verdict.case_id else "",
        )

    def ListCases(
        self, request: pb.ListCasesRequest, context: grpc.ServicerContext
    ) -> pb.ListCasesResponse:
        with self.db.session() as session:
            page = actions.list_cases(
                session, request.status, request.page_size, request.page_token
            )
            return pb.ListCasesResponse(
                cases=[case_message(c) for c in page.cases], next_page_token=page.next_token
            )

    def GetCase(self, request: pb.GetCaseRequest, context: grpc.ServicerContext) -> pb.Case:
        case_id = domain.parse_id(request.case_id, "invalid_case_id")
        with self.db.session() as session:
            return case_message(actions.get_case(session, case_id))

    def ReviewCase(self, request: pb.ReviewCaseRequest, context: grpc.ServicerContext) -> pb.Case:
        case_id = domain.parse_id(request.case_id, "invalid_case_id")
        reviewer_id = domain.parse_id(request.reviewer_id, "invalid_reviewer_id")
        notes = domain.text_field(request.notes, domain.MAX_NOTES_LENGTH, "invalid_notes")
        with self.db.session() as session:
            case = actions.review_case(
                session,
                case_id,
                outcome=request.outcome,
                reviewer_id=reviewer_id,
                notes=notes,
                now=self.wired.clock(),
            )
            return case_message(case)

    def ListSanctions(
        self, request: pb.ListSanctionsRequest, context: grpc.ServicerContext
    ) -> pb.ListSanctionsResponse:
        with self.db.session() as session:
            sanctions = actions.list_sanctions(session)
            return pb.ListSanctionsResponse(sanctions=[sanction_message(s) for s in sanctions])

    def AddSanction(
        self, request: pb.AddSanctionRequest, context: grpc.ServicerContext
    ) -> pb.Sanction:
        user_id = domain.parse_id(request.user_id, "invalid_user_id")
        reason = domain.text_field(request.reason, domain.MAX_REASON_LENGTH, "invalid_reason")
        added_by = domain.text_field(request.added_by, domain.MAX_ACTOR_LENGTH, "invalid_added_by")
        with self.db.session() as session:
            sanction = actions.add_sanction(session, user_id, reason=reason, added_by=added_by)
            return sanction_message(sanction)

    def RemoveSanction(
        self, request: pb.RemoveSanctionRequest, context: grpc.ServicerContext
    ) -> pb.RemoveSanctionResponse:
        user_id = domain.parse_id(request.user_id, "invalid_user_id")
        with self.db.session() as session:
            return pb.RemoveSanctionResponse(removed=actions.remove_sanction(session, user_id))
