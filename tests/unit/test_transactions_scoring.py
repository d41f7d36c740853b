"""What transactions asks fraud and how it reads the answer (services.md §3 "Flow", §4)."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest

from mint.transactions.checks import (
    CheckFailed,
    CheckInput,
    Checks,
    FraudVerdict,
    LimitDecision,
    score_fraud,
)
from mint.transactions.scoring import score_request, verdict_from_reply

ALICE, BOB = uuid.uuid4(), uuid.uuid4()


def _input(txn_type: str, sender: uuid.UUID | None, recipient: uuid.UUID | None) -> CheckInput:
    initiator = sender or recipient
    assert initiator is not None
    return CheckInput(
        transaction_id=uuid.uuid4(),
        user_id=initiator,
        type=txn_type,
        amount=20_001,
        currency="USD",
        sender_id=sender,
        recipient_id=recipient,
        client_ip="203.0.113.9",
    )


def test_the_request_names_the_initiator_and_only_a_transfers_recipient() -> None:
    transfer = score_request(
        _input("TRANSFER", ALICE, BOB), user_country="DE", recipient_is_contact=True
    )
    assert (transfer.user_id, transfer.recipient_id) == (str(ALICE), str(BOB))
    assert (transfer.ip_address, transfer.user_country, transfer.recipient_is_contact) == (
        "203.0.113.9", "DE", True
    )  # fmt: skip
    topup = score_request(_input("TOPUP", None, ALICE), user_country="", recipient_is_contact=False)
    assert (topup.user_id, topup.recipient_id, topup.type) == (str(ALICE), "", "TOPUP")


def test_the_answer_is_a_decision_or_no_answer() -> None:
    reply = SimpleNamespace(decision="REVIEW", score=50, rules_fired=["new_recipient_large"])
    assert verdict_from_reply(reply) == FraudVerdict("REVIEW", 50, ["new_recipient_large"])
    for bogus in ("", "MAYBE", "allow"):
        with pytest.raises(CheckFailed) as failed:
            verdict_from_reply(SimpleNamespace(decision=bogus, score=0, rules_fired=[]))
        assert failed.value.failure_reason == "dependency_unavailable"


class _Scorer:
    def __init__(self) -> None:
        self.seen: list[tuple[str, bool]] = []

    def score(
        self, txn: CheckInput, *, user_country: str, recipient_is_contact: bool
    ) -> FraudVerdict:
        self.seen.append((user_country, recipient_is_contact))
        return FraudVerdict("ALLOW")


class _Contacts:
    def is_contact(self, user_id: uuid.UUID, recipient_id: uuid.UUID) -> bool:
        return (user_id, recipient_id) == (ALICE, BOB)


def test_scoring_gets_the_kyc_country_and_the_contact_answer() -> None:
    scorer = _Scorer()
    checks = Checks(fraud=scorer, contacts=_Contacts())
    limits = LimitDecision(allowed=True, country="FR")
    score_fraud(checks, _input("TRANSFER", ALICE, BOB), limits)
    score_fraud(checks, _input("TRANSFER", BOB, ALICE), limits)
    score_fraud(checks, _input("WITHDRAWAL", ALICE, None), limits)
    assert scorer.seen == [("FR", True), ("FR", False), ("FR", False)]
    # without social nobody is a contact
    plain = _Scorer()
    score_fraud(Checks(fraud=plain), _input("TRANSFER", ALICE, BOB), limits)
    assert plain.seen == [("FR", False)]
