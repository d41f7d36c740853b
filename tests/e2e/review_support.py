"""Helpers for the fraud-review end-to-end tests (tests/e2e/test_fraud_review.py and the money
state machine): the reviewer's and the admin's internal gRPC (fraud cases, transaction
reversal), the review clock moved back in the transactions database, and waits on a
transaction's status through the gateway."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import timedelta
from typing import Any, Final

import grpc
import httpx
import yaml
from sqlalchemy import text

from mint.dev.platform import Platform
from mint.fraud.v1 import fraud_pb2, fraud_pb2_grpc
from mint.kit.config import KitSettings
from mint.kit.db import Database
from mint.kit.rpc import grpc_client
from mint.kit.time import utcnow
from mint.transactions.v1 import transactions_pb2, transactions_pb2_grpc
from tests.e2e.conftest import HIGH_LIMITS, User
from tests.e2e.security_support import poll

MONEY: Final = "/api/v1/transactions"
#: services.md §4: a transfer above this to a non-contact fires ``new_recipient_large`` (50 =
#: the review threshold): REVIEW.
REVIEW_ABOVE: Final = 20_000
#: The limits file's review window: an open review older than this expires (recovery job).
REVIEW_HOLD_HOURS: Final[float] = yaml.safe_load(HIGH_LIMITS)["fraud"]["review_hold_hours"]
#: The recovery job runs every 10 s: an expiry or a Kafka-driven settlement shows within this.
SETTLE_TIMEOUT: Final = 60.0


class Reviewer:
    """What the admin service does for a fraud reviewer and a support agent: fraud cases
    (``ListCases``, ``ReviewCase``) and ``TransactionService.Reverse`` — over the platform's
    gRPC ports with the internal token, as the admin service calls them."""

    def __init__(self, platform: Platform) -> None:
        settings = KitSettings(
            service_name="admin",
            internal_token=platform.internal_token(),
            fraud_grpc=f"127.0.0.1:{platform.grpc_ports['fraud']}",
            transactions_grpc=f"127.0.0.1:{platform.grpc_ports['transactions']}",
        )
        self.fraud = grpc_client(settings, "fraud", fraud_pb2_grpc.FraudServiceStub)
        self.transactions = grpc_client(
            settings, "transactions", transactions_pb2_grpc.TransactionServiceStub
        )
        self.id = str(uuid.uuid4())

    def case_of(self, transaction_id: str) -> fraud_pb2.Case:
        """The fraud case of ``transaction_id`` (cases are listed newest first: a recent one is
        on the first page)."""
        token = ""
        while True:
            page = self.fraud.ListCases(fraud_pb2.ListCasesRequest(page_size=100, page_token=token))
            for case in page.cases:
                if case.transaction_id == transaction_id:
                    return case
            if not page.next_page_token:
                raise AssertionError(f"no fraud case for transaction {transaction_id}")
            token = page.next_page_token

    def case(self, case_id: str) -> fraud_pb2.Case:
        return self.fraud.GetCase(fraud_pb2.GetCaseRequest(case_id=case_id))

    def review(self, case_id: str, outcome: str) -> fraud_pb2.Case:
        """``ReviewCase`` with ``outcome`` APPROVE or BLOCK."""
        request = fraud_pb2.ReviewCaseRequest(
            case_id=case_id, outcome=outcome, reviewer_id=self.id, notes=f"e2e {outcome}"
        )
        return self.fraud.ReviewCase(request)

    def review_transaction(self, transaction_id: str, outcome: str) -> fraud_pb2.Case:
        return self.review(self.case_of(transaction_id).id, outcome)

    def reverse(self, transaction_id: str) -> transactions_pb2.Transaction:
        request = transactions_pb2.AdminActionRequest(
            id=transaction_id, reason="e2e: disputed payment", actor_id=self.id
        )
        return self.transactions.Reverse(request)


def refusal(call: Any, *args: Any) -> tuple[grpc.StatusCode, str]:
    """(status code, stable code) of a gRPC call that must be refused."""
    try:
        call(*args)
    except grpc.RpcError as err:
        return err.code(), err.details()
    raise AssertionError(f"{call} was not refused")


def open_reviews_long_ago(platform: Platform, transaction_ids: Iterable[str]) -> None:
    """Move the reviews' ``review_opened_at`` back past the review window (a minute over), so
    the recovery job's next pass expires them: the clock, not hours of waiting."""
    ids = list(transaction_ids)
    opened = utcnow() - timedelta(hours=REVIEW_HOLD_HOURS, minutes=1)
    db = Database(platform.databases["transactions"], pool_size=1)
    try:
        with db.session() as session:
            changed = session.execute(
                text(
                    "UPDATE transactions SET review_opened_at = :opened"
                    " WHERE id::text = ANY(:ids) AND review_opened_at IS NOT NULL RETURNING id"
                ),
                {"opened": opened, "ids": ids},
            ).all()
            assert len(changed) == len(ids), f"not every review was open: {ids}"
    finally:
        db.dispose()


def transaction(client: httpx.Client, user: User, transaction_id: str) -> dict[str, Any]:
    r = client.get(f"{MONEY}/{transaction_id}", headers=user.headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def settled_as(
    client: httpx.Client, user: User, transaction_id: str, *statuses: str
) -> dict[str, Any]:
    """Poll the transaction until its status is one of ``statuses`` (what Kafka or the recovery
    job brings about); the transaction as it then is."""

    def reached() -> dict[str, Any] | None:
        found = transaction(client, user, transaction_id)
        return found if found["status"] in statuses else None

    found: dict[str, Any] = poll(
        reached, SETTLE_TIMEOUT, f"transaction {transaction_id} {'/'.join(statuses)}", 0.1
    )
    return found


def wallet(client: httpx.Client, user: User) -> tuple[int, int]:
    """(balance, held) of ``user``'s wallet; its available balance is checked to be the
    difference, and not negative."""
    r = client.get("/api/v1/wallet", headers=user.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["available"] == body["balance"] - body["held"] >= 0, body
    return int(body["balance"]), int(body["held"])
