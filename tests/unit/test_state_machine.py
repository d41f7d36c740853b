"""The transaction state machine, input rules, outcomes and the transaction object
(services.md §3) — table-driven and property-based."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from mint.contracts.transaction import TransactionCompleted, TransactionFailed
from mint.kit.domain import DomainError, Refused
from mint.kit.errors import problem_from_error
from mint.kit.schemas import Body
from mint.transactions import domain
from mint.transactions.answers import render
from mint.transactions.domain import FINAL, IllegalTransition, Status, TxnType
from mint.transactions.outcomes import Settled
from mint.transactions.schemas import TopupBody, TransactionOut, TransferBody, WithdrawBody

ALLOWED = {
    (Status.PENDING, Status.PROCESSING),
    (Status.PENDING, Status.FAILED),
    (Status.PENDING, Status.CANCELLED),
    (Status.PROCESSING, Status.COMPLETED),
    (Status.PROCESSING, Status.FAILED),
    (Status.COMPLETED, Status.REVERSED),
}
ALL_EDGES = [(a, b) for a in Status for b in Status]
statuses = st.sampled_from(list(Status))


def test_final_states() -> None:
    assert {Status.FAILED, Status.CANCELLED, Status.REVERSED} == FINAL


@pytest.mark.parametrize(("current", "target"), sorted(ALLOWED))
def test_every_allowed_edge_works(current: Status, target: Status) -> None:
    assert domain.transition(current, target) is target
    assert domain.transition(current.value, target.value) is target


@pytest.mark.parametrize(("current", "target"), [e for e in ALL_EDGES if e not in ALLOWED])
def test_every_forbidden_edge_raises(current: Status, target: Status) -> None:
    with pytest.raises(IllegalTransition) as info:
        domain.transition(current, target)
    assert (info.value.current, info.value.target) == (current, target)
    assert not domain.can_transition(current, target)


def test_unknown_statuses_are_illegal() -> None:
    for current, target in [("NOPE", "PENDING"), ("PENDING", "DONE"), ("", "")]:
        with pytest.raises(IllegalTransition):
            domain.transition(current, target)


@given(st.lists(statuses, max_size=20))
def test_no_path_leaves_a_final_state(path: list[Status]) -> None:
    """Walk any sequence of requested transitions from PENDING, applying the legal ones:
    once a final state is reached nothing moves it any more."""
    state = Status.PENDING
    reached_final = False
    for target in path:
        try:
            new = domain.transition(state, target)
        except IllegalTransition:
            continue
        assert not reached_final, f"left final state {state} for {new}"
        assert (state, new) in ALLOWED
        state = new
        reached_final = domain.is_final(state)


@given(statuses, statuses)
def test_transition_agrees_with_the_table(current: Status, target: Status) -> None:
    assert domain.can_transition(current, target) == ((current, target) in ALLOWED)


# ---- validation -------------------------------------------------------------------------------

RECIPIENT = str(uuid.uuid4())


@pytest.mark.parametrize("amount", [1, 100, 10**12 - 1])
def test_amount_in_range(amount: int) -> None:
    assert TopupBody.model_validate({"amount": amount}).amount == amount


@pytest.mark.parametrize("amount", [0, -1, 10**12, 1.5, 100.0, "100", True, None])
def test_amount_out_of_range_or_not_an_integer(amount: Any) -> None:
    with pytest.raises(ValidationError):
        TopupBody.model_validate({"amount": amount})


@given(st.integers())
def test_amount_property(amount: int) -> None:
    ok = 1 <= amount <= 10**12 - 1
    try:
        WithdrawBody.model_validate({"amount": amount})
    except ValidationError:
        assert not ok
    else:
        assert ok


def test_unknown_fields_refused() -> None:
    cases: list[tuple[type[Body], dict[str, Any]]] = [
        (TopupBody, {"amount": 1, "merchant": "x"}),
        (WithdrawBody, {"amount": 1, "description": "x"}),
        (TransferBody, {"amount": 1, "recipient_id": RECIPIENT, "extra": 1}),
    ]
    for model, body in cases:
        with pytest.raises(ValidationError):
            model.model_validate(body)


@pytest.mark.parametrize("category", ["FOOD", "TRANSPORT", "ENTERTAINMENT", "UTILITIES", "OTHER"])
def test_categories(category: str) -> None:
    body = TransferBody.model_validate(
        {"recipient_id": RECIPIENT, "amount": 5, "category": category}
    )
    assert body.category == category


@pytest.mark.parametrize("category", ["food", "GROCERIES", "", 1])
def test_bad_category(category: Any) -> None:
    with pytest.raises(ValidationError):
        TransferBody.model_validate({"recipient_id": RECIPIENT, "amount": 5, "category": category})


def test_lengths() -> None:
    base = {"recipient_id": RECIPIENT, "amount": 5}
    TransferBody.model_validate({**base, "description": "d" * 255, "merchant": "m" * 100})
    with pytest.raises(ValidationError):
        TransferBody.model_validate({**base, "description": "d" * 256})
    with pytest.raises(ValidationError):
        TransferBody.model_validate({**base, "merchant": "m" * 101})


@pytest.mark.parametrize("text", ["\x00", "a\x00b", "line\nbreak", "\x1b[0m", "\x7f"])
@pytest.mark.parametrize("field", ["description", "merchant"])
def test_free_text_refuses_control_characters(field: str, text: str) -> None:
    # NUL reached PostgreSQL (a 500) before this rule; found by tests/e2e/test_fuzz.py.
    base = {"recipient_id": RECIPIENT, "amount": 5}
    with pytest.raises(ValidationError, match="control characters"):
        TransferBody.model_validate({**base, field: text})
    TransferBody.model_validate({**base, field: "Café \u202e 💸 ' OR 1=1"})


def test_recipient_must_be_a_uuid() -> None:
    with pytest.raises(ValidationError):
        TransferBody.model_validate({"recipient_id": "bob", "amount": 5})


@pytest.mark.parametrize("currency", [None, "USD"])
def test_usd_only(currency: str | None) -> None:
    assert domain.check_currency(currency) == "USD"


@pytest.mark.parametrize("currency", ["EUR", "usd", ""])
def test_other_currencies_refused(currency: str) -> None:
    with pytest.raises(Refused) as info:
        domain.check_currency(currency)
    assert info.value.code == "unsupported_currency"
    problem = problem_from_error(info.value)
    assert (problem.status, problem.detail) == (422, "only USD is supported")


# ---- outcomes and the transaction object ------------------------------------------------------


def _txn(**over: Any) -> SimpleNamespace:
    fields: dict[str, Any] = {
        "id": uuid.uuid4(),
        "type": TxnType.TRANSFER.value,
        "status": Status.COMPLETED.value,
        "amount": 2500,
        "currency": "USD",
        "sender_id": uuid.uuid4(),
        "recipient_id": uuid.uuid4(),
        "description": "dinner",
        "merchant": None,
        "category": "FOOD",
        "reference": None,
        "fraud": {"decision": "ALLOW", "score": 3, "rules": ["velocity"], "extra": 1},
        "failure_reason": None,
        "created_at": datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2))),
        "completed_at": datetime(2025, 1, 2, 1, 4, 6, tzinfo=UTC),
    }
    return SimpleNamespace(**{**fields, **over})


def _json(txn: Any) -> dict[str, Any]:
    return TransactionOut.model_validate(txn).model_dump(mode="json")


def test_transaction_object_shape() -> None:
    txn = _txn()
    obj = _json(txn)
    assert list(obj) == [
        "id", "type", "status", "amount", "currency", "sender_id", "recipient_id",
        "description", "merchant", "category", "reference", "fraud", "failure_reason",
        "created_at", "completed_at",
    ]  # fmt: skip
    assert obj["id"] == str(txn.id) and obj["sender_id"] == str(txn.sender_id)
    assert obj["fraud"] == {"decision": "ALLOW", "score": 3, "rules": ["velocity"]}
    assert obj["created_at"] == "2025-01-02T01:04:05.000000Z"
    assert obj["completed_at"] == "2025-01-02T01:04:06.000000Z"
    topup = _json(_txn(sender_id=None, fraud=None, completed_at=None))
    assert topup["sender_id"] is None and topup["fraud"] is None
    assert topup["completed_at"] is None


def test_events_carry_the_transaction_object_of_the_api() -> None:
    fraud = {"decision": "ALLOW", "score": 3, "rules": ["velocity"]}  # as the checks store it
    txn = _txn(fraud=fraud)
    event = TransactionCompleted.model_validate(txn, from_attributes=True)
    assert event.to_data() == _json(txn) and list(event.to_data()) == list(_json(txn))
    assert event.key() == str(txn.sender_id)  # the initiator
    topup = _txn(
        type="TOPUP", sender_id=None, status="FAILED", failure_reason="limit_exceeded", fraud=None
    )
    failed = TransactionFailed.model_validate(topup, from_attributes=True)
    assert failed.to_data() == _json(topup) and failed.key() == str(topup.recipient_id)


@pytest.mark.parametrize(
    ("reason", "status"),
    [
        ("insufficient_funds", 422),
        ("account_frozen", 403),
        ("recipient_unavailable", 422),
        ("self_transfer", 422),
        ("recipient_not_found", 404),
        ("fraud_blocked", 403),
        ("limit_exceeded", 422),
        ("recovery_timeout", 503),
    ],
)
def test_failed_outcome(reason: str, status: int) -> None:
    txn = _txn(status="FAILED", failure_reason=reason, completed_at=None)
    code, body = render(Settled(txn))
    assert code == status == body["status"]
    assert body["code"] == reason and body["transaction_id"] == str(txn.id)
    assert {"type", "title", "detail"} <= set(body)


def test_completed_outcome_is_the_object() -> None:
    txn = _txn()
    assert render(Settled(txn)) == (201, _json(txn))
    with pytest.raises(ValueError):
        render(Settled(_txn(status="PROCESSING")))


def test_cancelled_outcome() -> None:
    txn = _txn(status="CANCELLED", completed_at=None)
    code, body = render(Settled(txn))
    assert (code, body["code"], body["transaction_id"]) == (
        409, "transaction_cancelled", str(txn.id)
    )  # fmt: skip


def test_every_failure_reason_is_a_refusal_kind() -> None:
    for reason, kind in domain.FAILURE_KINDS.items():
        error = domain.refusal("FAILED", reason, uuid.uuid4())
        assert isinstance(error, kind) and isinstance(error, DomainError)
        assert error.code == reason


@pytest.mark.parametrize(
    ("wallet", "public"),
    [
        ("insufficient_funds", "insufficient_funds"),
        ("sender_frozen", "account_frozen"),
        ("recipient_frozen", "recipient_unavailable"),  # never reveal why
        ("self_transfer", "self_transfer"),
        ("insufficient_funds: not enough money", "insufficient_funds"),
        ("something_new", "wallet_refused"),
    ],
)
def test_wallet_reasons(wallet: str, public: str) -> None:
    assert domain.failure_reason_for_wallet(wallet) == public


def test_a_frozen_users_own_top_up_is_account_frozen() -> None:
    assert domain.failure_reason_for_wallet("recipient_frozen", "TOPUP") == "account_frozen"
    assert domain.failure_reason_for_wallet("recipient_frozen", "TRANSFER") == (
        "recipient_unavailable"
    )


def test_accounts() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    assert domain.accounts_for("TOPUP", None, a) == ("external:funding", f"user:{a}")
    assert domain.accounts_for("WITHDRAWAL", a, None) == (f"user:{a}", "external:payout")
    assert domain.accounts_for("TRANSFER", a, b) == (f"user:{a}", f"user:{b}")


def test_a_review_is_answered_202_with_the_pending_object() -> None:
    review = {"decision": "REVIEW", "score": 50, "rules": ["new_recipient_large"]}
    txn = _txn(status="PENDING", fraud=review, completed_at=None)
    assert render(Settled(txn)) == (202, _json(txn))
    # a PENDING transaction the checks have not decided is no answer at all
    assert domain.refusal("PENDING", None, txn.id) is None


@pytest.mark.parametrize(
    ("txn_type", "decision", "holds"),
    [
        ("TRANSFER", "REVIEW", True),
        ("WITHDRAWAL", "REVIEW", True),
        ("TOPUP", "REVIEW", False),  # the money comes from outside: nothing to hold
        ("TRANSFER", "ALLOW", False),
        ("TRANSFER", "BLOCK", False),
        ("TRANSFER", None, False),
    ],
)
def test_a_review_holds_the_payers_funds(txn_type: str, decision: str | None, holds: bool) -> None:
    fraud = None if decision is None else {"decision": decision, "score": 0, "rules": []}
    assert domain.holds_funds(txn_type, fraud) is holds
