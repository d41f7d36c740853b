"""Money as a state machine (hypothesis ``RuleBasedStateMachine``) through the gateway of a running
platform: a few users top up, pay each other, withdraw, retry with the same Idempotency-Key,
reuse a key for another request, and send requests at the same time.

A model of the ledger predicts every answer (a movement is refused exactly when its sender
cannot cover it, or pays themself) and is updated from the answers (201: the money moved; a
refusal: nothing did). After every step each wallet must agree with the model — the Jepsen
bank properties: money is conserved (the users hold what was topped up minus what was withdrawn)
and no available balance is negative. And the idempotence properties: a key applies at most
once, every retry with it replays the first answer (status and body, ``Idempotent-Replayed``),
a key reused for a different request is refused without moving anything, and at the end every
transaction a user is party to is one that some answer named (no retry created another).
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import httpx
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from mint.dev.platform import Platform
from mint.ledger_audit import audit
from tests.e2e.conftest import User, register, wait_for_wallet
from tests.e2e.security_support import poll

USERS = 3
MONEY = "/api/v1/transactions"
#: A client waits this long at most for the final answer of one request (a hang, not a pace).
ANSWER_TIMEOUT = 120.0

Kind = Literal["topup", "transfer", "withdraw"]
WHO = st.integers(0, USERS - 1)
#: Another user than the one drawn with it: ``(who + OTHER) % USERS``.
OTHER = st.integers(1, USERS - 1)
OPENING_BALANCE = 300
TOP_UP = st.integers(1, 1_000)
#: Payments around the balances the users build up, so that refusals for funds happen too.
AMOUNT = st.integers(1, 500)


@dataclass(frozen=True)
class Move:
    """One money request as a client makes it: who sends it, what, and under which key."""

    initiator: int
    kind: Kind
    amount: int
    recipient: int | None = None  # a transfer's
    key: str = field(default_factory=lambda: f"sm-{uuid.uuid4()}")

    def body(self, users: Sequence[User]) -> dict[str, Any]:
        body: dict[str, Any] = {"amount": self.amount}
        if self.recipient is not None:
            body["recipient_id"] = users[self.recipient].id
        return body

    def parties(self) -> set[int]:
        return {self.initiator} | ({self.recipient} if self.recipient is not None else set())


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    replayed: bool
    #: An earlier attempt of the same request was answered 503 PROCESSING: it was the first,
    #: and this final answer is its outcome, replayed.
    after_processing: bool = False

    @property
    def code(self) -> str | None:
        code = self.body.get("code")
        return None if code is None else str(code)

    @property
    def transaction_id(self) -> str | None:
        """The transaction the answer names: the object of a 201, or a refusal's
        ``transaction_id`` (none for a request refused before it had one)."""
        found = self.body.get("id") if self.status == 201 else self.body.get("transaction_id")
        return None if found is None else str(found)

    @property
    def failed_outright(self) -> bool:
        """A 503 saying ``transaction_status: FAILED``: a dependency did not answer in time and
        nothing moved (a legitimate answer on a busy machine; the model moves nothing)."""
        return self.status == 503 and self.body.get("transaction_status") == "FAILED"


@dataclass(frozen=True)
class Sent:
    """A request and its first final answer: what every retry with its key must replay."""

    move: Move
    answer: Answer


@dataclass
class Ledger:
    """The model: each user's balance, and what came in and went out of the platform."""

    balances: list[int]
    topped_up: int = 0
    withdrawn: int = 0

    def copy(self) -> Ledger:
        return Ledger(list(self.balances), self.topped_up, self.withdrawn)

    def predict(self, move: Move) -> tuple[int, str | None]:
        """(status, code) the platform must answer ``move`` with, given these balances."""
        if move.kind == "transfer" and move.recipient == move.initiator:
            return 422, "self_transfer"
        if move.kind != "topup" and self.balances[move.initiator] < move.amount:
            return 422, "insufficient_funds"
        return 201, None

    def apply(self, move: Move) -> None:
        if move.kind == "topup":
            self.balances[move.initiator] += move.amount
            self.topped_up += move.amount
            return
        self.balances[move.initiator] -= move.amount
        if move.kind == "transfer":
            assert move.recipient is not None
            self.balances[move.recipient] += move.amount
        else:
            self.withdrawn += move.amount

    def explains(self, moves: Sequence[Move], answers: Sequence[Answer]) -> bool:
        """Whether the answers are those of the moves run one after another in SOME order
        (concurrent requests must be serializable)."""
        for order in itertools.permutations(range(len(moves))):
            trial = self.copy()
            for i in order:
                if answers[i].failed_outright:
                    continue  # nothing moved, whatever it would have been
                if (answers[i].status, answers[i].code) != trial.predict(moves[i]):
                    break
                if answers[i].status == 201:
                    trial.apply(moves[i])
            else:
                return True
        return False


def send(client: httpx.Client, users: Sequence[User], move: Move) -> Answer:
    user = users[move.initiator]
    r = client.post(
        f"{MONEY}/{move.kind}",
        json=move.body(users),
        headers={**user.headers, "Idempotency-Key": move.key},
    )
    assert r.headers["content-type"].startswith(("application/json", "application/problem+json"))
    return Answer(r.status_code, r.json(), r.headers.get("idempotent-replayed") == "true")


def _pending(answer: Answer) -> bool:
    """Not an outcome yet: refused at the user's bound on concurrent money requests (429:
    nothing claimed, the key left free), or the first request with this key still running
    (409 ``idempotency_request_in_progress``, a 503 ``transaction_status: PROCESSING``)."""
    return (
        answer.status == 429
        or (answer.status == 409 and answer.code == "idempotency_request_in_progress")
        or (answer.status == 503 and answer.body.get("transaction_status") == "PROCESSING")
    )


def final(client: httpx.Client, users: Sequence[User], move: Move) -> Answer:
    """The request's final answer, as a client gets it: a pending answer is retried with the
    same key (the protocol of the API's 429, 409 and 503 PROCESSING)."""

    processing = False

    def attempt() -> Answer | None:
        nonlocal processing
        answer = send(client, users, move)
        processing = processing or answer.body.get("transaction_status") == "PROCESSING"
        return None if _pending(answer) else answer

    found: Answer = poll(attempt, ANSWER_TIMEOUT, f"a final answer to {move}", interval=0.25)
    assert found.status < 500 or found.failed_outright, found
    return replace(found, after_processing=processing)


def registered(platform: Platform, count: int) -> list[User]:
    """``count`` new users with their wallets (registered side by side: it is the slow part)."""

    def one(i: int) -> User:
        with httpx.Client(base_url=platform.gateway_url, timeout=60) as client:
            user = register(client, f"Machine{i}")
            wallet = wait_for_wallet(client, user)
            assert (wallet["balance"], wallet["held"]) == (0, 0), wallet
            return user

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def transaction_ids(client: httpx.Client, user: User) -> Iterator[str]:
    """Every transaction ``user`` sent or received, page by page."""
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        r = client.get(MONEY, params=params, headers=user.headers)
        assert r.status_code == 200, r.text
        page = r.json()
        yield from (str(item["id"]) for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return


def money_machine(platform: Platform) -> type[RuleBasedStateMachine]:
    """The machine, bound to the session's running platform."""

    class MoneyMachine(RuleBasedStateMachine):
        sent = Bundle("sent")

        def __init__(self) -> None:
            super().__init__()
            self.client = httpx.Client(base_url=platform.gateway_url, timeout=60)
            # one client per side of a concurrent pair (a client is not shared across threads)
            self.sides = [httpx.Client(base_url=platform.gateway_url, timeout=60) for _ in "ab"]
            self.pool = ThreadPoolExecutor(2)
            self.users: list[User] = []
            self.ledger = Ledger([0] * USERS)
            self.history: list[Sent] = []

        # ---- setup and the model's bookkeeping -------------------------------------------

        @initialize()
        def register_users(self) -> None:
            self.users = registered(platform, USERS)
            for who in range(USERS):  # something to pay with from the first step on
                self.one(Move(who, "topup", OPENING_BALANCE))

        def settle(self, moves: Sequence[Move], answers: Sequence[Answer]) -> list[Sent]:
            """Check the answers against the model, apply the ones that moved money."""
            assert self.ledger.explains(moves, answers), (moves, answers)
            for move, answer in zip(moves, answers, strict=True):
                event(f"{move.kind} answered {answer.status} {answer.code or ''}".strip())
                assert not answer.replayed or answer.after_processing, (
                    f"a new key replayed: {answer}"
                )
                if answer.status == 201:
                    assert answer.body["status"] == "COMPLETED", answer
                    assert answer.body["amount"] == move.amount, answer
                    self.ledger.apply(move)
            done = [Sent(m, a) for m, a in zip(moves, answers, strict=True)]
            self.history += done
            return done

        def one(self, move: Move) -> Sent:
            (done,) = self.settle([move], [final(self.client, self.users, move)])
            return done

        def at_once(self, moves: Sequence[Move]) -> list[Answer]:
            """Send ``moves`` from two threads released together; their final answers."""
            start = threading.Barrier(len(moves))

            def side(i: int) -> Answer:
                start.wait(timeout=30)
                return final(self.sides[i], self.users, moves[i])

            return list(self.pool.map(side, range(len(moves))))

        # ---- rules ---------------------------------------------------------------------------

        @rule(target=sent, who=WHO, amount=TOP_UP)
        def top_up(self, who: int, amount: int) -> Sent:
            return self.one(Move(who, "topup", amount))

        @rule(target=sent, sender=WHO, other=OTHER, amount=AMOUNT)
        def transfer(self, sender: int, other: int, amount: int) -> Sent:
            return self.one(Move(sender, "transfer", amount, (sender + other) % USERS))

        @rule(target=sent, who=WHO, amount=AMOUNT)
        def pay_oneself(self, who: int, amount: int) -> Sent:
            return self.one(Move(who, "transfer", amount, who))

        @rule(target=sent, who=WHO, amount=AMOUNT)
        def withdraw(self, who: int, amount: int) -> Sent:
            return self.one(Move(who, "withdraw", amount))

        @rule(previous=sent)
        def retry_with_the_same_key(self, previous: Sent) -> None:
            again = send(self.client, self.users, previous.move)
            assert again.replayed, f"a retry was not a replay: {again} (first {previous})"
            assert (again.status, again.body) == (previous.answer.status, previous.answer.body)

        @rule(previous=sent, more=st.integers(1, 50))
        def reuse_a_key_for_another_request(self, previous: Sent, more: int) -> None:
            other = replace(previous.move, amount=previous.move.amount + more)
            answer = send(self.client, self.users, other)
            assert (answer.status, answer.code) == (422, "idempotency_key_reused"), answer
            assert not answer.replayed

        @rule(target=sent, previous=sent, who=WHO, amount=TOP_UP)
        def another_user_may_use_the_same_key(
            self, previous: Sent, who: int, amount: int
        ) -> Sent | Any:
            """Keys are scoped to their user: another user's same key is a new request."""
            if any(
                s.move.key == previous.move.key for s in self.history if s.move.initiator == who
            ):
                return multiple()  # the key is this user's own already
            return self.one(Move(who, "topup", amount, key=previous.move.key))

        @rule(target=sent, a=WHO, other=OTHER, first=AMOUNT, second=AMOUNT)
        def transfers_both_ways_at_once(self, a: int, other: int, first: int, second: int) -> Any:
            b = (a + other) % USERS
            moves = [Move(a, "transfer", first, b), Move(b, "transfer", second, a)]
            return multiple(*self.settle(moves, self.at_once(moves)))

        @rule(
            target=sent, sender=WHO, to=st.tuples(OTHER, OTHER), amounts=st.tuples(AMOUNT, AMOUNT)
        )
        def two_payments_of_one_user_at_once(
            self, sender: int, to: tuple[int, int], amounts: tuple[int, int]
        ) -> Any:
            # two money requests of one user at once: within the per-user bound (2); a 429
            # would be a refusal with nothing claimed, retried with the same key by ``final``
            moves = [
                Move(sender, "transfer", amounts[i], (sender + to[i]) % USERS) for i in range(2)
            ]
            return multiple(*self.settle(moves, self.at_once(moves)))

        @rule(target=sent, who=WHO, kind=st.sampled_from(["topup", "withdraw"]), amount=AMOUNT)
        def the_same_request_twice_at_once(self, who: int, kind: Kind, amount: int) -> Sent:
            """A client that sends twice (a double click, a retry racing its original): one
            request moves the money, the other gets its very answer as a replay."""
            move = Move(who, kind, amount)
            answers = self.at_once([move, move])
            assert sorted(a.replayed for a in answers) == [False, True], answers
            first = next(a for a in answers if not a.replayed)
            assert all((a.status, a.body) == (first.status, first.body) for a in answers)
            (done,) = self.settle([move], [first])
            return done

        # ---- invariants ----------------------------------------------------------------------

        @invariant()
        def wallets_agree_with_the_model(self) -> None:
            if not self.users:
                return
            seen = []
            for user, expected in zip(self.users, self.ledger.balances, strict=True):
                r = self.client.get("/api/v1/wallet", headers=user.headers)
                assert r.status_code == 200, r.text
                wallet = r.json()
                assert wallet["available"] >= 0, wallet
                assert wallet["available"] == wallet["balance"] - wallet["held"], wallet
                assert wallet["balance"] == expected, (wallet, self.ledger, self.history)
                seen.append(wallet["balance"])
            # conservation: what the users hold is what came in minus what went out
            assert sum(seen) == self.ledger.topped_up - self.ledger.withdrawn

        @invariant()
        def no_key_made_a_second_transaction(self) -> None:
            """Each user is party to exactly the transactions that the first answers named (a
            retry that started a movement again would add one, even a refused one)."""
            for index, user in enumerate(self.users):
                named = {
                    s.answer.transaction_id
                    for s in self.history
                    if index in s.move.parties() and s.answer.transaction_id is not None
                }
                found = list(transaction_ids(self.client, user))
                assert len(found) == len(set(found))
                assert set(found) == named, (user.id, set(found) ^ named)

        def teardown(self) -> None:
            self.pool.shutdown(wait=True)
            for client in (self.client, *self.sides):
                client.close()

    return MoneyMachine


def test_money_across_users_with_retries_and_concurrency(platform: Platform) -> None:
    run_state_machine_as_test(
        money_machine(platform),
        settings=settings(
            max_examples=10,
            stateful_step_count=15,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    # and across the services: every transaction has exactly the wallet entry it implies
    report = audit(platform.databases["wallet"], platform.databases["transactions"])
    assert report.ok, report.violations
