"""The fraud decision paths of a money movement end to end (services.md §3 and §4), through the
gateway of the running platform and the real Kafka path: a transfer above 20 000 to someone who
is not a contact is REVIEW — answered 202, PENDING, its amount held — and the reviewer's
``ReviewCase`` (fraud gRPC, as the admin service calls it) reaches transactions as
``fraud.case_reviewed``: APPROVE captures the hold (COMPLETED), BLOCK releases it (CANCELLED).
The sender's cancel and the review expiry (the review clock moved back in the database, then
the recovery job's next pass) release it too. A sanctioned recipient is BLOCK (403, nothing
moves); a withdrawal moves money out; an admin reversal restores both balances unless the
recipient has spent the money. Each test ends with the cross-service ledger audit clean.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest

from mint.dev.platform import Platform
from mint.fraud.v1 import fraud_pb2
from mint.ledger_audit import audit
from tests.e2e.conftest import User, register, wait_for_wallet
from tests.e2e.review_support import (
    MONEY,
    REVIEW_ABOVE,
    SETTLE_TIMEOUT,
    Reviewer,
    open_reviews_long_ago,
    refusal,
    settled_as,
    transaction,
    wallet,
)
from tests.e2e.security_support import poll

REVIEWED = REVIEW_ABOVE + 1
FINAL = ("COMPLETED", "FAILED", "CANCELLED", "REVERSED")
NOT_OPEN = (grpc.StatusCode.FAILED_PRECONDITION, "case_not_open")


@pytest.fixture(scope="module")
def reviewer(platform: Platform) -> Reviewer:
    return Reviewer(platform)


@pytest.fixture
def audited(platform: Platform) -> Iterator[None]:
    """After the test: every transaction has exactly the wallet entry (or review hold) it
    implies, across the services."""
    yield
    report = audit(platform.databases["wallet"], platform.databases["transactions"])
    assert report.ok and report.violations == [], report.violations


def user(gateway: httpx.Client, name: str, funds: int = 0) -> User:
    """A registered user with a wallet, topped up with ``funds``."""
    new = register(gateway, name)
    wait_for_wallet(gateway, new)
    if funds:
        r = pay(gateway, new, "topup", funds)
        assert (r.status_code, r.json()["status"]) == (201, "COMPLETED"), r.text
    return new


def pay(
    gateway: httpx.Client,
    sender: User,
    kind: str,
    amount: int,
    recipient: User | None = None,
    key: str | None = None,
) -> httpx.Response:
    """POST /transactions/{topup,transfer,withdraw} as ``sender`` (a new key unless given)."""
    body: dict[str, Any] = {"amount": amount}
    if recipient is not None:
        body["recipient_id"] = recipient.id
    headers = {**sender.headers, "Idempotency-Key": key or str(uuid.uuid4())}
    return gateway.post(f"{MONEY}/{kind}", json=body, headers=headers)


def reviewed_transfer(gateway: httpx.Client, sender: User, recipient: User, amount: int) -> str:
    """A transfer that goes to REVIEW: 202, PENDING, the verdict of ``new_recipient_large``."""
    r = pay(gateway, sender, "transfer", amount, recipient)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "PENDING" and body["amount"] == amount, body
    assert body["fraud"] == {"decision": "REVIEW", "score": 50, "rules": ["new_recipient_large"]}
    return str(body["id"])


def case_closed_as(reviewer: Reviewer, case_id: str, status: str) -> fraud_pb2.Case:
    """Poll the case until it is ``status`` (a close that arrives over Kafka)."""

    def closed() -> fraud_pb2.Case | None:
        case = reviewer.case(case_id)
        return case if case.status == status else None

    found: fraud_pb2.Case = poll(closed, SETTLE_TIMEOUT, f"case {case_id} {status}")
    return found


@pytest.mark.usefixtures("audited")
def test_the_reviewer_approves_a_held_transfer_and_it_completes_once(
    gateway: httpx.Client, reviewer: Reviewer
) -> None:
    alice, bob = user(gateway, "Alice", 50_000), user(gateway, "Bob")
    key = str(uuid.uuid4())
    r = pay(gateway, alice, "transfer", REVIEWED, bob, key=key)
    assert r.status_code == 202, r.text
    answered = r.json()
    txn_id = answered["id"]
    assert answered["status"] == "PENDING" and answered["fraud"]["decision"] == "REVIEW"
    assert wallet(gateway, alice) == (50_000, REVIEWED)
    assert wallet(gateway, bob) == (0, 0)

    # the held amount cannot be spent a second time
    spend = 50_000 - REVIEWED + 1
    r = pay(gateway, alice, "withdraw", spend)
    assert (r.status_code, r.json()["code"]) == (422, "insufficient_funds"), r.text

    case = reviewer.case_of(txn_id)
    assert (case.status, case.decision, case.amount) == ("OPEN", "REVIEW", REVIEWED), case
    assert (case.user_id, case.recipient_id) == (alice.id, bob.id)
    approved = reviewer.review(case.id, "APPROVE")
    assert (approved.status, approved.reviewer_id) == ("APPROVED", reviewer.id), approved

    done = settled_as(gateway, alice, txn_id, *FINAL)
    assert done["status"] == "COMPLETED", done
    assert done["completed_at"] is not None
    assert wallet(gateway, alice) == (50_000 - REVIEWED, 0)
    assert wallet(gateway, bob) == (REVIEWED, 0)

    # a retry of the request replays its answer (202) and moves nothing again
    again = pay(gateway, alice, "transfer", REVIEWED, bob, key=key)
    assert again.headers.get("idempotent-replayed") == "true"
    assert (again.status_code, again.json()) == (202, answered)
    # the case is decided: a second decision, either way, is refused and changes nothing
    assert refusal(reviewer.review, case.id, "APPROVE") == NOT_OPEN
    assert refusal(reviewer.review, case.id, "BLOCK") == NOT_OPEN
    assert reviewer.case(case.id).status == "APPROVED"
    assert transaction(gateway, bob, txn_id)["status"] == "COMPLETED"
    assert wallet(gateway, alice) == (50_000 - REVIEWED, 0)
    assert wallet(gateway, bob) == (REVIEWED, 0)


@pytest.mark.usefixtures("audited")
def test_the_reviewer_blocks_a_held_transfer_and_the_hold_is_released(
    gateway: httpx.Client, reviewer: Reviewer
) -> None:
    alice, bob = user(gateway, "Alice", 30_000), user(gateway, "Bob")
    txn_id = reviewed_transfer(gateway, alice, bob, 25_000)
    assert wallet(gateway, alice) == (30_000, 25_000)

    case = reviewer.case_of(txn_id)
    assert reviewer.review(case.id, "BLOCK").status == "REJECTED"
    done = settled_as(gateway, alice, txn_id, *FINAL)
    assert done["status"] == "CANCELLED", done
    assert wallet(gateway, alice) == (30_000, 0)
    assert wallet(gateway, bob) == (0, 0)
    assert refusal(reviewer.review, case.id, "APPROVE") == NOT_OPEN
    assert reviewer.case(case.id).status == "REJECTED"  # the cancel does not reopen or move it

    # released: all of it can be spent
    r = pay(gateway, alice, "withdraw", 30_000)
    assert r.status_code == 201, r.text
    assert wallet(gateway, alice) == (0, 0)
    assert transaction(gateway, alice, txn_id)["status"] == "CANCELLED"


@pytest.mark.usefixtures("audited")
def test_the_sender_cancels_a_held_transfer_and_its_case_ends_cancelled(
    gateway: httpx.Client, reviewer: Reviewer
) -> None:
    alice, bob = user(gateway, "Alice", 30_000), user(gateway, "Bob")
    txn_id = reviewed_transfer(gateway, alice, bob, REVIEWED)
    case = reviewer.case_of(txn_id)

    r = gateway.post(f"{MONEY}/{txn_id}/cancel", headers=bob.headers)
    assert r.status_code == 403, r.text  # the recipient cannot cancel it
    r = gateway.post(f"{MONEY}/{txn_id}/cancel", headers=alice.headers)
    assert (r.status_code, r.json()["status"]) == (200, "CANCELLED"), r.text
    assert wallet(gateway, alice) == (30_000, 0)

    # transaction.cancelled reaches fraud over Kafka: the case closes, a decision is refused
    closed = case_closed_as(reviewer, case.id, "CANCELLED")
    assert closed.closed_at != ""
    assert refusal(reviewer.review, case.id, "APPROVE") == NOT_OPEN
    r = gateway.post(f"{MONEY}/{txn_id}/cancel", headers=alice.headers)
    assert (r.status_code, r.json()["code"]) == (409, "invalid_state"), r.text
    assert wallet(gateway, alice) == (30_000, 0)
    assert wallet(gateway, bob) == (0, 0)


@pytest.mark.usefixtures("audited")
def test_a_review_nobody_decides_expires_and_releases_the_hold(
    platform: Platform, gateway: httpx.Client, reviewer: Reviewer
) -> None:
    alice, bob = user(gateway, "Alice", 50_000), user(gateway, "Bob")
    expiring = reviewed_transfer(gateway, alice, bob, REVIEWED)
    waiting = reviewed_transfer(gateway, alice, bob, REVIEWED + 1)
    assert wallet(gateway, alice) == (50_000, 2 * REVIEWED + 1)

    open_reviews_long_ago(platform, [expiring])
    expired = settled_as(gateway, alice, expiring, *FINAL)
    assert expired["status"] == "CANCELLED", expired
    # the pass that expired one left the other, opened just now, under review and held
    assert transaction(gateway, alice, waiting)["status"] == "PENDING"
    assert wallet(gateway, alice) == (50_000, REVIEWED + 1)
    assert wallet(gateway, bob) == (0, 0)
    case_closed_as(reviewer, reviewer.case_of(expiring).id, "CANCELLED")
    assert reviewer.case_of(waiting).status == "OPEN"

    r = gateway.post(f"{MONEY}/{waiting}/cancel", headers=alice.headers)
    assert r.status_code == 200, r.text
    assert wallet(gateway, alice) == (50_000, 0)


@pytest.mark.usefixtures("audited")
def test_a_sanctioned_recipient_is_blocked_and_nothing_moves(
    gateway: httpx.Client, reviewer: Reviewer
) -> None:
    alice, mallory = user(gateway, "Alice", 10_000), user(gateway, "Mallory")
    reviewer.fraud.AddSanction(
        fraud_pb2.AddSanctionRequest(user_id=mallory.id, reason="e2e", added_by=reviewer.id)
    )
    try:
        r = pay(gateway, alice, "transfer", 100, mallory)
        assert (r.status_code, r.json()["code"]) == (403, "fraud_blocked"), r.text
        txn_id = r.json()["transaction_id"]
        failed = transaction(gateway, alice, txn_id)
        assert (failed["status"], failed["failure_reason"]) == ("FAILED", "fraud_blocked")
        assert failed["fraud"]["decision"] == "BLOCK"
        assert "sanctioned_recipient" in failed["fraud"]["rules"]
        assert reviewer.case_of(txn_id).status == "BLOCKED"
        assert wallet(gateway, alice) == (10_000, 0)
        assert wallet(gateway, mallory) == (0, 0)
    finally:
        reviewer.fraud.RemoveSanction(fraud_pb2.RemoveSanctionRequest(user_id=mallory.id))
    # once lifted, the same payment goes through
    r = pay(gateway, alice, "transfer", 100, mallory)
    assert r.status_code == 201, r.text
    assert wallet(gateway, mallory) == (100, 0)


@pytest.mark.usefixtures("audited")
def test_a_withdrawal_moves_the_money_out(gateway: httpx.Client) -> None:
    alice = user(gateway, "Alice", 40_000)
    r = pay(gateway, alice, "withdraw", 2_500)
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["type"], body["status"], body["amount"]) == ("WITHDRAWAL", "COMPLETED", 2_500)
    assert body["fraud"]["decision"] == "ALLOW"
    assert wallet(gateway, alice) == (37_500, 0)
    # new_recipient_large applies to transfers only: a large withdrawal is not reviewed
    r = pay(gateway, alice, "withdraw", REVIEWED)
    assert (r.status_code, r.json()["fraud"]["decision"]) == (201, "ALLOW"), r.text
    left = 37_500 - REVIEWED
    r = pay(gateway, alice, "withdraw", left + 1)
    assert (r.status_code, r.json()["code"]) == (422, "insufficient_funds"), r.text
    assert wallet(gateway, alice) == (left, 0)


@pytest.mark.usefixtures("audited")
def test_a_reversal_restores_both_balances_unless_the_recipient_spent_it(
    gateway: httpx.Client, reviewer: Reviewer
) -> None:
    alice, bob = user(gateway, "Alice", 10_000), user(gateway, "Bob")
    r = pay(gateway, alice, "transfer", 4_000, bob)
    assert r.status_code == 201, r.text
    reversed_ = reviewer.reverse(r.json()["id"])
    assert reversed_.status == "REVERSED", reversed_
    assert wallet(gateway, alice) == (10_000, 0)
    assert wallet(gateway, bob) == (0, 0)
    assert transaction(gateway, alice, reversed_.id)["status"] == "REVERSED"
    refused = refusal(reviewer.reverse, reversed_.id)
    assert refused[0] == grpc.StatusCode.FAILED_PRECONDITION, refused

    r = pay(gateway, alice, "transfer", 4_000, bob)
    assert r.status_code == 201, r.text
    spent = r.json()["id"]
    assert pay(gateway, bob, "withdraw", 1).status_code == 201
    assert refusal(reviewer.reverse, spent) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "reversal_insufficient_funds",
    )
    assert transaction(gateway, alice, spent)["status"] == "COMPLETED"
    assert wallet(gateway, alice) == (6_000, 0)
    assert wallet(gateway, bob) == (3_999, 0)
