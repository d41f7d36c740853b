"""A service killed mid-transfer, then recovery (quality.md "Reliability": "a service killed
mid-transfer (recovery completes or fails it; balances consistent)").

Clients move money through the gateway of the platform as ``make dev`` runs it, each request
under its own Idempotency-Key, retrying the SAME key on every answer that is not final until one
is (conventions.md "Idempotency"; a 503 says whether anything may still move). While they run,
the wallet's process group is killed with SIGKILL, and once the supervisor has it serving again,
the transactions' — so requests die at every step of the flow: a wallet ``Transfer`` without an
answer (the transaction stays PROCESSING, the client gets 503 then 409), a claimed key without
its transaction, a transaction left PENDING or PROCESSING by a dead process. The transactions
recovery job (services.md §3 "Recovery") settles each: PROCESSING re-drives the wallet's
idempotent ``Transfer``, PENDING past its window fails ``recovery_timeout`` (a 503 with
``transaction_status: FAILED``: nothing moved), a claim without a transaction is released for
the retry. The e2e platform runs the job with windows of seconds (``extra_env`` in
tests/e2e/conftest.py), the interval is the service's own.

The fraud check runs on every movement: a transfer it sends to review (its amount unusual for
the user) is answered 202 with its amount held — a final answer too; a reviewer approves them
all afterwards, and each completes through the capture of its hold.

Afterwards: every key got exactly one final answer and replays it; every transaction of these
users is final and is the one its key's answer names; money is conserved (the users hold exactly
what their completed top-ups brought in, and each balance is what the completed transactions
say); no available balance is negative; the cross-service ledger audit finds nothing.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import httpx
from sqlalchemy import text

from mint.dev.platform import Platform
from mint.kit.db import Database
from mint.ledger_audit import audit
from tests.e2e.conftest import User, register, wait_for_wallet
from tests.e2e.review_support import Reviewer, settled_as
from tests.e2e.security_support import poll

USERS = 4
FUNDS = 5_000
#: Transfers up to this much: with the balances above, some are refused for funds.
MAX_TRANSFER = 2_000
TOPUP = 300
MONEY = "/api/v1/transactions"
#: A client gives up on one key after this long without a final answer (a hang, not a pace).
ANSWER_TIMEOUT = 120.0
#: The pause between two tries of one key (a client's backoff).
RETRY_PAUSE = 0.2
FINAL_STATUSES = ("COMPLETED", "FAILED", "CANCELLED", "REVERSED")


@dataclass
class Request:
    """One money request and the final answer its key got (None: none in time)."""

    user: User
    kind: str  # topup | transfer
    body: dict[str, Any]
    key: str = field(default_factory=lambda: str(uuid.uuid4()))
    status: int | None = None
    answer: dict[str, Any] | None = None
    #: the answers before the final one, by (status, code): what the faults looked like
    retried: list[tuple[int, str]] = field(default_factory=list)

    def send(self, http: httpx.Client) -> httpx.Response:
        headers = {**self.user.headers, "Idempotency-Key": self.key}
        return http.post(f"{MONEY}/{self.kind}", json=self.body, headers=headers)

    @property
    def server_error(self) -> bool:
        """Answered 5xx other than 503: a bug (a crash must look like a 503 to a client)."""
        return self.status is not None and self.status >= 500 and self.status != 503

    @property
    def transaction_id(self) -> str:
        """The transaction the final answer names (the object, or a refusal's field)."""
        assert self.answer is not None
        named = (
            self.answer["id"] if self.status in (201, 202) else self.answer.get("transaction_id")
        )
        assert named, (self.status, self.answer)
        return str(named)


def is_final(r: httpx.Response) -> bool:
    """Whether a retry with the same key can change nothing any more: 201, 202 (accepted for a
    fraud review, its amount held), a refusal, or a 503 saying the transaction FAILED. Not
    final: 409 ``idempotency_request_in_progress`` (someone — the flow or recovery — is still
    moving it), 429 (the key was left free), any other 503 (the wallet gave no answer:
    PROCESSING, or a review's hold unconfirmed; or the gateway found the service down)."""
    if r.status_code in (201, 202):
        return True
    body = r.json()
    if r.status_code == 409:
        return bool(body.get("code") != "idempotency_request_in_progress")
    if r.status_code == 503:
        return bool(body.get("transaction_status") == "FAILED")
    return r.status_code != 429


def settle(http: httpx.Client, request: Request) -> Request:
    """Send ``request`` and retry its key until the answer is final (or ``ANSWER_TIMEOUT``)."""
    deadline = time.monotonic() + ANSWER_TIMEOUT
    while time.monotonic() < deadline:
        try:
            r = request.send(http)
        except httpx.TransportError as exc:
            request.retried.append((0, type(exc).__name__))
        else:
            if r.status_code >= 500 and r.status_code != 503:
                request.status, request.answer = r.status_code, {"text": r.text}
                return request  # never retried: a 500 is a bug the test reports
            if is_final(r):
                request.status, request.answer = r.status_code, r.json()
                return request
            request.retried.append((r.status_code, str(r.json().get("code"))))
        time.sleep(RETRY_PAUSE)
    return request


class Client(threading.Thread):
    """One user moving money until ``stop``: transfers to the others (every fourth request a
    top-up), one key each, each settled before the next."""

    def __init__(
        self, gateway_url: str, user: User, others: Sequence[User], seed: int, stop: threading.Event
    ) -> None:
        super().__init__(name=f"client-{seed}", daemon=True)
        self.gateway_url, self.user, self.others = gateway_url, user, others
        self.random, self.stop = random.Random(seed), stop
        self.requests: list[Request] = []

    def run(self) -> None:
        with httpx.Client(base_url=self.gateway_url, timeout=30) as http:
            while not self.stop.is_set():
                request = self.next_request()
                self.requests.append(request)
                settle(http, request)
                if request.status is None or request.server_error:
                    return  # the test fails on it

    def next_request(self) -> Request:
        if len(self.requests) % 4 == 3:
            return Request(self.user, "topup", {"amount": TOPUP})
        recipient = self.random.choice(self.others)
        amount = self.random.randint(1, MAX_TRANSFER)
        return Request(self.user, "transfer", {"recipient_id": recipient.id, "amount": amount})

    @property
    def settled(self) -> int:
        return sum(1 for r in self.requests if r.status is not None)


def kill(platform: Platform, service: str) -> None:
    """SIGKILL the service's process group, then wait until the supervisor's new process
    answers /readyz."""
    child = platform.children[service]
    assert child.proc is not None
    killed = child.proc.pid
    os.killpg(killed, signal.SIGKILL)
    url = f"http://127.0.0.1:{platform.http_ports[service]}/readyz"

    def serving_again() -> bool:
        proc = platform.children[service].proc
        if proc is None or proc.pid == killed or proc.poll() is not None:
            return False
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    poll(serving_again, 120, f"{service} restarted by the supervisor and ready", interval=0.3)


def progressed(clients: Sequence[Client], since: dict[str, int], more: int) -> bool:
    """Every client has settled ``more`` keys since ``since`` (its key stuck by the fault
    included: a client settles its keys one after the other)."""
    return all(c.settled >= since[c.name] + more for c in clients)


def fund(gateway: httpx.Client, users: Sequence[User]) -> list[Request]:
    funded = [settle(gateway, Request(u, "topup", {"amount": FUNDS})) for u in users]
    assert [r.status for r in funded] == [201] * len(users), [r.answer for r in funded]
    return funded


def test_a_killed_wallet_then_transactions_recover_every_transaction(
    platform: Platform, gateway: httpx.Client
) -> None:
    users = [register(gateway, f"Crash{i}") for i in range(USERS)]
    for user in users:
        wait_for_wallet(gateway, user)
    requests = fund(gateway, users)

    stop = threading.Event()
    clients = [
        Client(platform.gateway_url, u, [o for o in users if o is not u], seed=i, stop=stop)
        for i, u in enumerate(users)
    ]
    for client in clients:
        client.start()
    try:
        started = dict.fromkeys([c.name for c in clients], 0)
        poll(partial(progressed, clients, started, 2), 60, "every client moving money")
        for service in ("wallet", "transactions"):
            kill(platform, service)
            since = {c.name: c.settled for c in clients}
            poll(
                partial(progressed, clients, since, 2),
                ANSWER_TIMEOUT + 60,
                f"every client settling keys again after {service} was killed",
            )
    finally:
        stop.set()
        for client in clients:
            client.join(ANSWER_TIMEOUT + 30)
    for client in clients:
        requests += client.requests

    unanswered = [(r.kind, r.key, r.retried[-5:]) for r in requests if r.status is None]
    assert not unanswered, f"keys without a final answer: {unanswered}"
    errors = [(r.status, r.answer) for r in requests if r.server_error]
    assert not errors, f"5xx other than 503: {errors}"
    finals = Counter(r.status for r in requests)
    faults = Counter(a for r in requests for a in r.retried)
    print(
        f"\n[crash] {len(requests)} keys, final answers {dict(finals)}, retried on {dict(faults)}"
    )

    replay_every_key(gateway, requests)
    print(f"[crash] approved after a fraud review: {approve_reviews(platform, gateway, requests)}")
    transactions = transactions_of(platform, users)
    assert_one_final_transaction_per_key(requests, transactions)
    assert_money_conserved(platform, users, transactions)
    settled_by_recovery = recovered(platform, [t["id"] for t in transactions.values()])
    print(f"[crash] settled by the recovery job: {len(settled_by_recovery)}")
    assert settled_by_recovery, "no transaction was left to recovery: the kills hit nothing"

    report = audit(platform.databases["wallet"], platform.databases["transactions"])
    assert report.ok and report.violations == [], report.violations


def approve_reviews(platform: Platform, gateway: httpx.Client, requests: Sequence[Request]) -> int:
    """A reviewer approves every transfer the fraud check held for review (202); each then
    completes: the capture of its hold."""
    reviewer = Reviewer(platform)
    held = [r for r in requests if r.status == 202]
    for request in held:
        reviewer.review_transaction(request.transaction_id, "APPROVE")
    for request in held:
        settled_as(gateway, request.user, request.transaction_id, "COMPLETED")
    return len(held)


def replay_every_key(gateway: httpx.Client, requests: Sequence[Request]) -> None:
    """Each key, sent again, replays its final answer: same status, same body."""
    for request in requests:
        r = request.send(gateway)
        assert r.headers.get("idempotent-replayed") == "true", (request.key, r.status_code, r.text)
        assert (r.status_code, r.json()) == (request.status, request.answer), request.key


Row = dict[str, Any]


def transactions_of(platform: Platform, users: Sequence[User]) -> dict[tuple[str, str], Row]:
    """Every transaction these users initiated or received, by (initiator, idempotency key)."""
    ids = [u.id for u in users]
    db = Database(platform.databases["transactions"], pool_size=1)
    try:
        with db.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT id::text, user_id::text, idempotency_key, type, status, amount,"
                    " sender_id::text, recipient_id::text FROM transactions"
                    " WHERE user_id::text = ANY(:ids) OR sender_id::text = ANY(:ids)"
                    " OR recipient_id::text = ANY(:ids)"
                ),
                {"ids": ids},
            ).mappings()
            found = [dict(row) for row in rows]
    finally:
        db.dispose()
    by_key: dict[tuple[str, str], Row] = {}
    for row in found:
        key = (row["user_id"], row["idempotency_key"])
        assert key not in by_key, f"two transactions for one key: {by_key[key]} and {row}"
        by_key[key] = row
    return by_key


def assert_one_final_transaction_per_key(
    requests: Sequence[Request], transactions: dict[tuple[str, str], Row]
) -> None:
    """Every transaction is final and belongs to exactly one key, the one whose answer names
    it; the answer says what happened to it (201: COMPLETED; a refusal: FAILED)."""
    unsettled = [t for t in transactions.values() if t["status"] not in FINAL_STATUSES]
    assert not unsettled, f"transactions left unsettled: {unsettled}"
    by_key = {(r.user.id, r.key): r for r in requests}
    assert set(transactions) == set(by_key), "a transaction without its key, or a key without one"
    for key, txn in transactions.items():
        request = by_key[key]
        assert request.transaction_id == txn["id"], (request.answer, txn)
        expected = "COMPLETED" if request.status in (201, 202) else "FAILED"
        assert txn["status"] == expected, (request.status, request.answer, txn)
        assert txn["amount"] == request.body["amount"]
        assert txn["type"] == request.kind.upper()


def assert_money_conserved(
    platform: Platform, users: Sequence[User], transactions: dict[tuple[str, str], Row]
) -> None:
    """The users hold exactly what their completed top-ups brought in from
    ``external:funding`` (transfers only move it between them), each balance is what the
    completed transactions say it is, and no available balance is negative."""
    completed = [t for t in transactions.values() if t["status"] == "COMPLETED"]
    expected = {u.id: 0 for u in users}
    for txn in completed:
        if txn["type"] == "TRANSFER":
            expected[txn["sender_id"]] -= txn["amount"]
        expected[txn["recipient_id"]] += txn["amount"]
    topped_up = sum(t["amount"] for t in completed if t["type"] == "TOPUP")

    db = Database(platform.databases["wallet"], pool_size=1)
    try:
        with db.engine.connect() as conn:
            accounts = {
                row.owner: (int(row.balance), int(row.held))
                for row in conn.execute(
                    text(
                        "SELECT owner_user_id::text AS owner, balance, held FROM accounts"
                        " WHERE owner_user_id::text = ANY(:ids)"
                    ),
                    {"ids": list(expected)},
                )
            }
            funded = conn.execute(
                text(
                    "SELECT coalesce(sum(e.amount), 0) FROM journal_entries e"
                    " JOIN accounts f ON f.id = e.from_account_id AND f.code = 'external:funding'"
                    " JOIN accounts u ON u.id = e.to_account_id"
                    " WHERE u.owner_user_id::text = ANY(:ids)"
                ),
                {"ids": list(expected)},
            ).scalar_one()
    finally:
        db.dispose()
    balances = {owner: balance for owner, (balance, _) in accounts.items()}
    assert balances == expected, "a balance disagrees with the completed transactions"
    assert sum(balances.values()) == topped_up == int(funded), (balances, topped_up, funded)
    negative = {o: b - h for o, (b, h) in accounts.items() if b - h < 0}
    assert not negative, f"negative available balances: {negative}"


def recovered(platform: Platform, transaction_ids: Sequence[str]) -> list[str]:
    """Those of ``transaction_ids`` that the recovery job settled (its actor is ``system``)."""
    db = Database(platform.databases["transactions"], pool_size=1)
    try:
        with db.engine.connect() as conn:
            return [
                str(row[0])
                for row in conn.execute(
                    text(
                        "SELECT DISTINCT transaction_id::text FROM transaction_transitions"
                        " WHERE actor = 'system' AND transaction_id::text = ANY(:ids)"
                    ),
                    {"ids": list(transaction_ids)},
                )
            ]
    finally:
        db.dispose()
