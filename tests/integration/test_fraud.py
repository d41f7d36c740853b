"""The fraud service for real (services.md §4): ScoreTransaction over gRPC on its own PostgreSQL
database, Redis for the velocity window, Kafka for ``transaction.*`` in and ``fraud.*`` out,
and a limits file rewritten while it runs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from sqlalchemy import select

from mint.contracts.transaction import TransactionCancelled, TransactionCompleted, TransactionFailed
from mint.fraud import store as fraud_store
from mint.fraud.domain import Stats
from mint.fraud.models import Case, UserStats
from mint.fraud.v1 import fraud_pb2 as pb
from mint.fraud.velocity import KEY_PREFIX
from mint.kit.limits import default_limits
from tests.fixtures.fraud_service import Fraud, fraud

__all__ = ["fraud"]  # the module-scoped fraud service fixture

GB_ADDRESS, US_ADDRESS = "81.2.69.160", "8.8.8.8"


@pytest.fixture(autouse=True)
def default_limits_and_clock(fraud: Fraud) -> Iterator[None]:
    yield
    fraud.set_clock(None)
    if fraud.wiring.limits.current.fraud != default_limits().fraud:
        fraud.use_limits()


def score(fraud: Fraud, **changes: Any) -> pb.ScoreResponse:
    """ScoreTransaction of an ordinary transfer (to a contact, 100 cents), with ``changes``."""
    values: dict[str, Any] = {
        "transaction_id": str(uuid.uuid4()),
        "type": "TRANSFER",
        "user_id": str(uuid.uuid4()),
        "recipient_id": str(uuid.uuid4()),
        "amount": 100,
        "currency": "USD",
        "ip_address": US_ADDRESS,
        "user_country": "US",
        "recipient_is_contact": True,
    }
    values.update(changes)
    if values["type"] != "TRANSFER":
        values["recipient_id"] = ""
    response: pb.ScoreResponse = fraud.stub().ScoreTransaction(pb.ScoreRequest(**values))
    return response


def refused(call: Any, request: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        call(request)
    error = raised.value
    assert isinstance(error, grpc.RpcError)
    return error


def case_events(fraud: Fraud, type: str, case_id: str) -> list[dict[str, Any]]:
    return [row["data"] for row in fraud.outbox(type) if row["subject"] == case_id]


def completed(user: uuid.UUID, amount: int, type: str = "TRANSFER") -> TransactionCompleted:
    parties = {
        "TRANSFER": {"sender_id": user, "recipient_id": uuid.uuid4()},
        "TOPUP": {"recipient_id": user},
        "WITHDRAWAL": {"sender_id": user},
    }[type]
    now = datetime.now(UTC)
    return TransactionCompleted.model_validate(
        {
            "id": uuid.uuid4(),
            "type": type,
            "status": "COMPLETED",
            "amount": amount,
            "currency": "USD",
            "created_at": now,
            "completed_at": now,
            **parties,
        }
    )


def cancelled(transaction_id: str, sender: str) -> TransactionCancelled:
    return TransactionCancelled(
        id=uuid.UUID(transaction_id),
        type="TRANSFER",
        status="CANCELLED",
        amount=20_001,
        currency="USD",
        sender_id=uuid.UUID(sender),
        recipient_id=uuid.uuid4(),
        created_at=datetime.now(UTC),
    )


def case_status(fraud: Fraud, case_id: str) -> str:
    return str(fraud.stub().GetCase(pb.GetCaseRequest(case_id=case_id)).status)


# ---- decisions --------------------------------------------------------------------------------


def test_allow_review_and_block_with_their_cases_and_events(fraud: Fraud) -> None:
    allowed = score(fraud)
    assert (allowed.decision, allowed.score, list(allowed.rules_fired)) == ("ALLOW", 0, [])
    assert allowed.case_id == ""

    user = str(uuid.uuid4())
    review = score(fraud, user_id=user, amount=20_001, recipient_is_contact=False)
    assert (review.decision, review.score) == ("REVIEW", 50)
    assert list(review.rules_fired) == ["new_recipient_large"]
    assert "score 50 >= review threshold 50" in review.reason
    case = fraud.stub().GetCase(pb.GetCaseRequest(case_id=review.case_id))
    assert (case.status, case.decision, case.user_id, case.amount) == (
        "OPEN",
        "REVIEW",
        user,
        20_001,
    )
    assert case.closed_at == ""
    [opened] = case_events(fraud, "fraud.case_opened", review.case_id)
    assert opened["decision"] == "REVIEW" and opened["rules"] == ["new_recipient_large"]
    assert opened["user_id"] == user and opened["score"] == 50

    sanctioned = str(uuid.uuid4())
    fraud.stub().AddSanction(pb.AddSanctionRequest(user_id=sanctioned, reason="list", added_by="a"))
    block = score(fraud, recipient_id=sanctioned)
    assert (block.decision, list(block.rules_fired)) == ("BLOCK", ["sanctioned_recipient"])
    assert "force-block rule sanctioned_recipient" in block.reason
    blocked_case = fraud.stub().GetCase(pb.GetCaseRequest(case_id=block.case_id))
    assert (blocked_case.status, blocked_case.decision) == ("BLOCKED", "BLOCK")
    assert blocked_case.closed_at != ""
    [opened] = case_events(fraud, "fraud.case_opened", block.case_id)
    assert opened["decision"] == "BLOCK"


def test_a_repeat_answers_the_first_decision_and_counts_nothing_twice(fraud: Fraud) -> None:
    user, transaction = str(uuid.uuid4()), str(uuid.uuid4())
    first = score(
        fraud, transaction_id=transaction, user_id=user, amount=20_001, recipient_is_contact=False
    )
    # the repeat carries different facts: the first decision stands all the same
    again = score(fraud, transaction_id=transaction, user_id=user, amount=100)
    assert first.decision == again.decision == "REVIEW"
    assert (again.case_id, again.score, again.reason) == (first.case_id, first.score, first.reason)
    with fraud.service.session() as session:
        cases = session.scalars(select(Case).where(Case.transaction_id == uuid.UUID(transaction)))
        assert len(list(cases)) == 1
    assert len(case_events(fraud, "fraud.case_opened", first.case_id)) == 1
    assert fraud.wiring.velocity.client.zcard(f"{KEY_PREFIX}{user}") == 1


def test_the_sixth_transfer_in_the_window_is_blocked_and_a_blocked_one_does_not_count(
    fraud: Fraud,
) -> None:
    user = str(uuid.uuid4())
    sanctioned = str(uuid.uuid4())
    fraud.stub().AddSanction(pb.AddSanctionRequest(user_id=sanctioned))
    # a blocked attempt leaves the window: it is not one of the five
    assert score(fraud, user_id=user, recipient_id=sanctioned).decision == "BLOCK"
    first = str(uuid.uuid4())
    decisions = [score(fraud, user_id=user, transaction_id=first).decision]
    score(fraud, user_id=user, transaction_id=first)  # a repeat is not another attempt
    decisions += [score(fraud, user_id=user).decision for _ in range(4)]
    assert decisions == ["ALLOW"] * 5
    sixth = score(fraud, user_id=user)
    assert (sixth.decision, list(sixth.rules_fired)) == ("BLOCK", ["velocity_breach"])
    assert score(fraud, user_id=user).decision == "BLOCK"  # still five in the window
    assert fraud.wiring.velocity.client.zcard(f"{KEY_PREFIX}{user}") == 5
    # top-ups and withdrawals are not transfers: no velocity
    assert score(fraud, user_id=user, type="TOPUP").decision == "ALLOW"
    assert score(fraud, user_id=user, type="WITHDRAWAL").decision == "ALLOW"


def test_the_limits_file_changes_thresholds_and_velocity_live(fraud: Fraud) -> None:
    abroad = {"ip_address": GB_ADDRESS, "user_country": "US"}
    geo = score(fraud, **abroad)
    assert (geo.decision, list(geo.rules_fired)) == ("ALLOW", ["geo_anomaly"])
    fraud.use_limits(review_threshold=40)
    assert score(fraud, **abroad).decision == "REVIEW"
    fraud.use_limits(review_threshold=10, block_threshold=40)
    assert score(fraud, **abroad).decision == "BLOCK"
    fraud.use_limits(velocity={"max_transfers": 1})
    user = str(uuid.uuid4())
    assert [score(fraud, user_id=user).decision for _ in range(2)] == ["ALLOW", "BLOCK"]


def test_geo_and_night_with_the_injected_clock(fraud: Fraud) -> None:
    fraud.set_clock(datetime(2026, 3, 10, 3, 30, tzinfo=UTC))
    night = score(fraud, type="TOPUP", amount=50_001, ip_address=GB_ADDRESS, user_country="US")
    assert (night.decision, night.score) == ("REVIEW", 70)
    assert list(night.rules_fired) == ["geo_anomaly", "night_large"]
    # a private address, or a user with no KYC country: no geo rule
    assert score(fraud, ip_address="10.0.0.7", user_country="US").rules_fired == []
    assert score(fraud, ip_address=GB_ADDRESS, user_country="").rules_fired == []
    fraud.set_clock(datetime(2026, 3, 10, 5, 0, tzinfo=UTC))
    assert score(fraud, type="TOPUP", amount=50_001).rules_fired == []


def test_invalid_requests_are_refused_with_stable_codes(fraud: Fraud) -> None:
    stub = fraud.stub()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"transaction_id": "nope"}, "invalid_transaction_id"),
        ({"amount": 0}, "invalid_amount"),
        ({"type": "GIFT"}, "invalid_type"),
        ({"recipient_id": ""}, "invalid_recipient_id"),
    ]
    for changes, code in cases:
        request = pb.ScoreRequest(
            transaction_id=str(uuid.uuid4()),
            type="TRANSFER",
            user_id=str(uuid.uuid4()),
            recipient_id=str(uuid.uuid4()),
            amount=5,
        )
        for field, value in changes.items():
            setattr(request, field, value)
        error = refused(stub.ScoreTransaction, request)
        assert (error.code(), error.details()) == (grpc.StatusCode.INVALID_ARGUMENT, code)
    error = refused(fraud.stub(token="wrong").ScoreTransaction, pb.ScoreRequest())
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


# ---- statistics from transaction.completed ----------------------------------------------------


def test_statistics_come_from_completed_transactions_once_per_event(fraud: Fraud) -> None:
    user = uuid.uuid4()
    for _ in range(4):
        fraud.wait_processed(fraud.publish(completed(user, 100)))
    assert score(fraud, user_id=str(user), amount=101).rules_fired == []  # 4 < 5 completed
    fifth = fraud.publish(completed(user, 100))
    fraud.publish(completed(user, 100), event_id=fifth)  # the same event delivered again
    # a later event of the same user (same key, same partition) is handled after both copies
    fraud.wait_processed(fraud.publish(completed(user, 5_000, type="TOPUP")))
    with fraud.service.session() as session:
        stats = {
            row.type: (row.count, row.mean, row.m2)
            for row in session.scalars(select(UserStats).where(UserStats.user_id == user))
        }
    assert stats == {"TRANSFER": (5, 100.0, 0.0), "TOPUP": (1, 5_000.0, 0.0)}
    at_mean = score(fraud, user_id=str(user), amount=100)
    assert at_mean.rules_fired == []
    above = score(fraud, user_id=str(user), amount=101)
    assert (above.decision, list(above.rules_fired)) == ("REVIEW", ["large_amount_deviation"])
    # a top-up's statistics are its recipient's, and of top-ups only
    assert score(fraud, user_id=str(user), type="TOPUP", amount=5_000).rules_fired == []
    assert score(fraud, user_id=str(user), type="WITHDRAWAL", amount=10**6).rules_fired == []


def test_the_statistics_statement_is_welfords_update(fraud: Fraud) -> None:
    """``store.add_to_stats`` (one SQL statement) folds amounts exactly as the domain's
    ``Stats.add`` does."""
    user, amounts = uuid.uuid4(), [100, 250, 37, 9_999, 1, 500, 500, 12_345]
    expected = Stats()
    for amount in amounts:
        expected = expected.add(amount)
        with fraud.service.session() as session:
            got = fraud_store.add_to_stats(session, user, "TRANSFER", amount)
        assert (got.count, got.mean, got.m2) == (
            expected.count,
            pytest.approx(expected.mean),
            pytest.approx(expected.m2),
        )
    assert got.stddev == pytest.approx(expected.stddev)


# ---- cases ------------------------------------------------------------------------------------


def review_case(fraud: Fraud) -> pb.ScoreResponse:
    return score(fraud, amount=20_001, recipient_is_contact=False)


def test_review_approves_or_rejects_an_open_case_once(fraud: Fraud) -> None:
    stub, reviewer = fraud.stub(), str(uuid.uuid4())
    approved = stub.ReviewCase(
        pb.ReviewCaseRequest(
            case_id=review_case(fraud).case_id,
            outcome="APPROVE",
            reviewer_id=reviewer,
            notes=" ok ",
        )
    )
    assert (approved.status, approved.reviewer_id, approved.notes) == ("APPROVED", reviewer, "ok")
    assert approved.closed_at != ""
    [reviewed] = case_events(fraud, "fraud.case_reviewed", approved.id)
    assert reviewed["outcome"] == "APPROVE" and reviewed["reviewer_id"] == reviewer
    assert reviewed["transaction_id"] == approved.transaction_id

    again = pb.ReviewCaseRequest(case_id=approved.id, outcome="BLOCK", reviewer_id=reviewer)
    error = refused(stub.ReviewCase, again)
    assert (error.code(), error.details()) == (grpc.StatusCode.FAILED_PRECONDITION, "case_not_open")
    assert case_status(fraud, approved.id) == "APPROVED"
    assert len(case_events(fraud, "fraud.case_reviewed", approved.id)) == 1

    rejected = stub.ReviewCase(
        pb.ReviewCaseRequest(
            case_id=review_case(fraud).case_id, outcome="BLOCK", reviewer_id=reviewer
        )
    )
    assert rejected.status == "REJECTED"
    [reviewed] = case_events(fraud, "fraud.case_reviewed", rejected.id)
    assert reviewed["outcome"] == "BLOCK"

    sanctioned = str(uuid.uuid4())
    stub.AddSanction(pb.AddSanctionRequest(user_id=sanctioned))
    blocked = score(fraud, recipient_id=sanctioned)
    error = refused(
        stub.ReviewCase,
        pb.ReviewCaseRequest(case_id=blocked.case_id, outcome="APPROVE", reviewer_id=reviewer),
    )
    assert (error.code(), error.details()) == (grpc.StatusCode.FAILED_PRECONDITION, "case_not_open")

    open_id = review_case(fraud).case_id
    for request, status, code in [
        (pb.ReviewCaseRequest(case_id=str(uuid.uuid4()), outcome="APPROVE", reviewer_id=reviewer),
         grpc.StatusCode.NOT_FOUND, "case_not_found"),
        (pb.ReviewCaseRequest(case_id="x", outcome="APPROVE", reviewer_id=reviewer),
         grpc.StatusCode.INVALID_ARGUMENT, "invalid_case_id"),
        (pb.ReviewCaseRequest(case_id=open_id, outcome="MAYBE", reviewer_id=reviewer),
         grpc.StatusCode.INVALID_ARGUMENT, "invalid_outcome"),
    ]:  # fmt: skip
        error = refused(stub.ReviewCase, request)
        assert (error.code(), error.details()) == (status, code)


def test_list_cases_filters_by_status_and_pages_newest_first(fraud: Fraud) -> None:
    stub = fraud.stub()
    mine = [review_case(fraud).case_id for _ in range(3)]
    seen: list[pb.Case] = []
    token = ""
    while True:
        page = stub.ListCases(pb.ListCasesRequest(status="OPEN", page_size=2, page_token=token))
        assert len(page.cases) <= 2
        seen.extend(page.cases)
        if not page.next_page_token:
            break
        token = page.next_page_token
    ids = [c.id for c in seen]
    assert len(ids) == len(set(ids))
    assert {c.status for c in seen} == {"OPEN"}
    assert [i for i in ids if i in mine] == mine[::-1]  # newest first
    created = [c.created_at for c in seen]
    assert created == sorted(created, reverse=True)
    everything = stub.ListCases(pb.ListCasesRequest(page_size=100)).cases
    assert {c.status for c in everything} > {"OPEN"}  # other statuses are listed too
    for request, code in [
        (pb.ListCasesRequest(status="PENDING"), "invalid_status"),
        (pb.ListCasesRequest(page_token="garbage"), "invalid_page_token"),
        (pb.ListCasesRequest(page_size=101), "invalid_page_size"),
    ]:
        error = refused(stub.ListCases, request)
        assert (error.code(), error.details()) == (grpc.StatusCode.INVALID_ARGUMENT, code)


def test_a_cancelled_transaction_cancels_its_open_case_only_once(fraud: Fraud) -> None:
    stub = fraud.stub()
    user = str(uuid.uuid4())
    open_case = score(fraud, user_id=user, amount=20_001, recipient_is_contact=False)
    transaction = stub.GetCase(pb.GetCaseRequest(case_id=open_case.case_id)).transaction_id
    event = cancelled(transaction, user)
    first = fraud.publish(event)
    fraud.wait_processed(first)
    case = stub.GetCase(pb.GetCaseRequest(case_id=open_case.case_id))
    assert (case.status, case.closed_at != "") == ("CANCELLED", True)
    fraud.publish(event, event_id=first)  # the same event again

    # a cancellation arriving after the case was decided leaves the decision alone
    other_user = str(uuid.uuid4())
    decided = score(fraud, user_id=other_user, amount=20_001, recipient_is_contact=False)
    stub.ReviewCase(
        pb.ReviewCaseRequest(
            case_id=decided.case_id, outcome="APPROVE", reviewer_id=str(uuid.uuid4())
        )
    )
    decided_transaction = stub.GetCase(pb.GetCaseRequest(case_id=decided.case_id)).transaction_id
    late = fraud.publish(cancelled(decided_transaction, other_user))
    fraud.wait_processed(late)
    # and a cancelled transaction that never had a case is simply nothing to do
    fraud.wait_processed(fraud.publish(cancelled(str(uuid.uuid4()), user)))
    assert case_status(fraud, decided.case_id) == "APPROVED"
    assert case_status(fraud, open_case.case_id) == "CANCELLED"
    assert stub.GetCase(pb.GetCaseRequest(case_id=open_case.case_id)).closed_at == case.closed_at
    # closing as CANCELLED emits nothing
    assert case_events(fraud, "fraud.case_reviewed", open_case.case_id) == []


def test_a_reviewed_transaction_that_failed_closes_its_open_case(fraud: Fraud) -> None:
    """Its hold refused (not enough money): the reviewer is left nothing to decide."""
    stub = fraud.stub()
    user = str(uuid.uuid4())
    open_case = score(fraud, user_id=user, amount=20_001, recipient_is_contact=False)
    transaction = stub.GetCase(pb.GetCaseRequest(case_id=open_case.case_id)).transaction_id
    failed = TransactionFailed.model_validate(
        {
            **cancelled(transaction, user).model_dump(),
            "status": "FAILED",
            "failure_reason": "insufficient_funds",
        }
    )
    fraud.wait_processed(fraud.publish(failed))
    assert case_status(fraud, open_case.case_id) == "CANCELLED"
    with pytest.raises(grpc.RpcError) as refused:
        stub.ReviewCase(
            pb.ReviewCaseRequest(
                case_id=open_case.case_id, outcome="APPROVE", reviewer_id=str(uuid.uuid4())
            )
        )
    assert refused.value.details() == "case_not_open"


# ---- sanctions --------------------------------------------------------------------------------


def test_sanctions_are_added_listed_and_removed(fraud: Fraud) -> None:
    stub, user = fraud.stub(), str(uuid.uuid4())
    added = stub.AddSanction(pb.AddSanctionRequest(user_id=user, reason="OFAC", added_by="admin-1"))
    assert (added.user_id, added.reason, added.added_by) == (user, "OFAC", "admin-1")
    again = stub.AddSanction(pb.AddSanctionRequest(user_id=user, reason="updated"))
    assert again.reason == "updated" and again.created_at == added.created_at
    listed = [
        s for s in stub.ListSanctions(pb.ListSanctionsRequest()).sanctions if s.user_id == user
    ]
    assert [s.reason for s in listed] == ["updated"]
    assert score(fraud, recipient_id=user).decision == "BLOCK"
    assert stub.RemoveSanction(pb.RemoveSanctionRequest(user_id=user)).removed is True
    assert stub.RemoveSanction(pb.RemoveSanctionRequest(user_id=user)).removed is False
    assert user not in {s.user_id for s in stub.ListSanctions(pb.ListSanctionsRequest()).sanctions}
    assert score(fraud, recipient_id=user).decision == "ALLOW"
    error = refused(stub.AddSanction, pb.AddSanctionRequest(user_id="someone"))
    assert (error.code(), error.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "invalid_user_id")


# ---- HTTP: health, readiness, metrics, OpenAPI ------------------------------------------------


def test_http_serves_health_readiness_metrics_and_openapi_only(fraud: Fraud) -> None:
    http = fraud.service.http
    assert http.get("/healthz").json() == {"status": "ok"}
    ready = http.get("/readyz")
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["checks"] == {"database": "ok", "redis": "ok", "limits": "ok"}
    assert body["limits_version"] == fraud.wiring.limits.version
    score(fraud)
    metrics = http.get("/metrics").text
    assert 'mint_fraud_decisions_total{decision="ALLOW"}' in metrics
    assert "mint_grpc_calls_total" in metrics
    document = http.get("/openapi.json")
    assert document.status_code == 200
    assert document.json()["info"]["title"] == "mint-fraud"
    assert document.json()["paths"] == {}
    assert http.get("/api/v1/fraud/cases").status_code == 404
