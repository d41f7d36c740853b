"""Money as a state machine (hypothesis ``RuleBasedStateMachine``) through the gateway of a running
platform: a few users top up, pay each other, withdraw, retry with the same Idempotency-Key,
reuse a key for another request, and send requests at the same time — and some payments are
large enough for the fraud service to send them to REVIEW (services.md §4 ``new_recipient_large``:
a transfer above 20 000 to a non-contact), so that among them a reviewer approves or blocks
(fraud ``ReviewCase``, reaching transactions over Kafka), the sender cancels, a review expires
(its clock moved back, then the recovery job), and an admin reverses completed transfers.

A model of the ledger predicts every answer and is updated from the answers. The fraud verdict
is predicted too: ``new_recipient_large`` exactly when a transfer is above 20 000, and
``large_amount_deviation`` only once the user has the five completed transactions of that type
it needs (whether it fires then depends on statistics fraud keeps from Kafka events: the model
takes the verdict's word for it, checks its score and decision). By the decision: BLOCK is a 403
``fraud_blocked``; otherwise a movement is refused exactly when its sender cannot cover it from
the available balance (or pays themself); REVIEW answers 202 and holds the amount; ALLOW answers
201 and moves it. Approval moves a held amount, a reviewer's block, a cancel or an expiry
releases it; a reversal moves a transfer back unless the recipient's available balance cannot
cover it (``reversal_insufficient_funds``).

After every step each wallet's (balance, held) must agree with the model — the Jepsen bank
properties: money is conserved (the users hold what was topped up minus what was withdrawn)
and no available balance is negative. And the idempotence properties: a key applies at most
once, every retry with it replays the first answer (status and body, ``Idempotent-Replayed``,
a 202 even after its review settled), a key reused for a different request is refused without
moving anything, and at the end every transaction a user is party to is one that some answer
named (no retry created another). At the end of the run the cross-service ledger audit is clean.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

import grpc
import httpx
import yaml
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from mint.dev.platform import Platform
from mint.ledger_audit import audit
from tests.e2e.conftest import HIGH_LIMITS, User, register, wait_for_wallet
from tests.e2e.review_support import (
    REVIEW_ABOVE,
    Reviewer,
    open_reviews_long_ago,
    refusal,
    settled_as,
    transaction,
)
from tests.e2e.security_support import poll

USERS = 3
MONEY = "/api/v1/transactions"
#: A client waits this long at most for the final answer of one request (a hang, not a pace).
ANSWER_TIMEOUT = 120.0

Kind = Literal["topup", "transfer", "withdraw"]
WHO = st.integers(0, USERS - 1)
#: Another user than the one drawn with it: ``(who + OTHER) % USERS``.
OTHER = st.integers(1, USERS - 1)
#: Enough for a user to have a large payment or two under review at once.
OPENING_BALANCE = 50_000
TOP_UP = st.integers(1, 1_000)
AMOUNT = st.integers(1, 500)
#: Transfers the fraud service reviews (above 20 000), at most 50 000 so that ``night_large``
#: (above 50 000 between 00:00 and 05:00 UTC) never fires whatever the hour.
LARGE = st.integers(REVIEW_ABOVE + 1, 30_000)
#: Small and large: the large ones exhaust the balances, so refusals for funds happen too.
PAYMENT = st.one_of(AMOUNT, LARGE)
#: Which of the open reviews (or reversible transfers): this modulo their number.
PICK = st.integers(0, 1_000)
FINAL = ("COMPLETED", "FAILED", "CANCELLED", "REVERSED")

_FRAUD: Final = yaml.safe_load(HIGH_LIMITS)["fraud"]
#: The scores of the rules that can fire here (services.md §4); any other rule is a surprise.
RULE_SCORES: Final = {"new_recipient_large": 50, "large_amount_deviation": 60}
DEVIATION: Final = "large_amount_deviation"
#: ``large_amount_deviation`` needs this many completed transactions of the type.
DEVIATION_HISTORY: Final = 5


def decision(score: int) -> str:
    if score >= _FRAUD["block_threshold"]:
        return "BLOCK"
    return "REVIEW" if score >= _FRAUD["review_threshold"] else "ALLOW"


@dataclass(frozen=True)
class Verdict:
    """The fraud verdict a transaction records: ``{decision, score, rules}``."""

    decision: str
    score: int
    rules: frozenset[str]

    @classmethod
    def of(cls, fraud: dict[str, Any] | None) -> Verdict | None:
        if fraud is None:
            return None
        return cls(str(fraud["decision"]), int(fraud["score"]), frozenset(fraud["rules"]))


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
    #: An earlier attempt of the same request was answered 503 PROCESSING (or PENDING): it was
    #: the first, and this final answer is its outcome, replayed.
    after_processing: bool = False

    @property
    def code(self) -> str | None:
        code = self.body.get("code")
        return None if code is None else str(code)

    @property
    def transaction_id(self) -> str | None:
        """The transaction the answer names: the object of a 201 or 202, or a refusal's
        ``transaction_id`` (none for a request refused before it had one)."""
        accepted = self.status in (201, 202)
        found = self.body.get("id") if accepted else self.body.get("transaction_id")
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
    """The model: each user's balance and held amount, what came in and went out of the
    platform, the open reviews and the transfers an admin may still reverse."""

    balances: list[int]
    held: list[int]
    topped_up: int = 0
    withdrawn: int = 0
    #: completed transactions by (initiator, type): when ``large_amount_deviation`` may fire
    completed: Counter[tuple[int, Kind]] = field(default_factory=Counter)
    #: PENDING under review, by transaction id
    reviews: dict[str, Move] = field(default_factory=dict)
    #: COMPLETED transfers not reversed, by transaction id
    reversible: dict[str, Move] = field(default_factory=dict)

    def copy(self) -> Ledger:
        return Ledger(
            list(self.balances),
            list(self.held),
            self.topped_up,
            self.withdrawn,
            Counter(self.completed),
            dict(self.reviews),
            dict(self.reversible),
        )

    def available(self, who: int) -> int:
        return self.balances[who] - self.held[who]

    def possible_rules(self, move: Move) -> list[frozenset[str]]:
        """The rule sets fraud may fire for ``move``: ``new_recipient_large`` exactly for a
        large transfer, plus ``large_amount_deviation`` once the user has the history for it."""
        certain = {"new_recipient_large"} if move.kind == "transfer" else set()
        if move.amount <= REVIEW_ABOVE:
            certain = set()
        options = [frozenset(certain)]
        if self.completed[(move.initiator, move.kind)] >= DEVIATION_HISTORY:
            options.append(frozenset(certain | {DEVIATION}))
        return options

    def predict(self, move: Move, verdict: Verdict | None) -> tuple[int, str | None] | None:
        """(status, code) the platform must answer ``move`` with, given these balances and the
        verdict the transaction recorded; None when that verdict is impossible here."""
        if move.kind == "transfer" and move.recipient == move.initiator:
            return (422, "self_transfer") if verdict is None else None  # refused before scoring
        if verdict is None or verdict.rules not in self.possible_rules(move):
            return None
        score = sum(RULE_SCORES[name] for name in verdict.rules)
        if (verdict.score, verdict.decision) != (score, decision(score)):
            return None
        if verdict.decision == "BLOCK":
            return 403, "fraud_blocked"
        if move.kind != "topup" and self.available(move.initiator) < move.amount:
            return 422, "insufficient_funds"  # the transfer, or the review's hold, refused
        return (202 if verdict.decision == "REVIEW" else 201), None

    def apply(self, move: Move, answer: Answer) -> None:
        """What an answer did: 201 moved the money, 202 holds it under review."""
        txn_id = answer.transaction_id
        if answer.status == 201:
            assert txn_id is not None
            self._complete(txn_id, move)
        elif answer.status == 202:
            assert txn_id is not None
            self.reviews[txn_id] = move
            if move.kind != "topup":  # a top-up has no payer: nothing to hold
                self.held[move.initiator] += move.amount

    def settle_review(self, txn_id: str, *, approved: bool) -> None:
        """The review is over: the hold released, and the money moved if it was approved."""
        move = self.reviews.pop(txn_id)
        if move.kind != "topup":
            self.held[move.initiator] -= move.amount
        if approved:
            self._complete(txn_id, move)

    def reverse(self, txn_id: str) -> None:
        move = self.reversible.pop(txn_id)
        assert move.recipient is not None
        self.balances[move.recipient] -= move.amount
        self.balances[move.initiator] += move.amount

    def _complete(self, txn_id: str, move: Move) -> None:
        self.completed[(move.initiator, move.kind)] += 1
        if move.kind == "topup":
            self.balances[move.initiator] += move.amount
            self.topped_up += move.amount
            return
        self.balances[move.initiator] -= move.amount
        if move.kind == "transfer":
            assert move.recipient is not None
            self.balances[move.recipient] += move.amount
            self.reversible[txn_id] = move
        else:
            self.withdrawn += move.amount

    def explains(
        self,
        moves: Sequence[Move],
        answers: Sequence[Answer],
        verdicts: Sequence[Verdict | None],
    ) -> bool:
        """Whether the answers are those of the moves run one after another in SOME order
        (concurrent requests must be serializable)."""
        for order in itertools.permutations(range(len(moves))):
            trial = self.copy()
            for i in order:
                if answers[i].failed_outright:
                    continue  # nothing moved, whatever it would have been
                if (answers[i].status, answers[i].code) != trial.predict(moves[i], verdicts[i]):
                    break
                trial.apply(moves[i], answers[i])
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
    (409 ``idempotency_request_in_progress``, a 503 ``transaction_status: PROCESSING``, or
    PENDING: a review whose hold the wallet did not confirm, placed by recovery)."""
    return (
        answer.status == 429
        or (answer.status == 409 and answer.code == "idempotency_request_in_progress")
        or (
            answer.status == 503
            and answer.body.get("transaction_status") in ("PROCESSING", "PENDING")
        )
    )


def final(client: httpx.Client, users: Sequence[User], move: Move) -> Answer:
    """The request's final answer, as a client gets it: a pending answer is retried with the
    same key (the protocol of the API's 429, 409 and 503 PROCESSING)."""

    processing = False

    def attempt() -> Answer | None:
        nonlocal processing
        answer = send(client, users, move)
        in_flight = answer.body.get("transaction_status") in ("PROCESSING", "PENDING")
        processing = processing or (answer.status == 503 and in_flight)
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


def money_machine(platform: Platform, seen: Counter[str]) -> type[RuleBasedStateMachine]:
    """The machine, bound to the session's running platform; ``seen`` tallies what happened
    across the examples (hypothesis keeps its ``event`` statistics to itself here)."""

    class MoneyMachine(RuleBasedStateMachine):
        sent = Bundle("sent")

        def __init__(self) -> None:
            super().__init__()
            self.client = httpx.Client(base_url=platform.gateway_url, timeout=60)
            # one client per side of a concurrent pair (a client is not shared across threads)
            self.sides = [httpx.Client(base_url=platform.gateway_url, timeout=60) for _ in "ab"]
            self.pool = ThreadPoolExecutor(2)
            self.reviewer = Reviewer(platform)
            self.users: list[User] = []
            self.ledger = Ledger([0] * USERS, [0] * USERS)
            self.history: list[Sent] = []

        # ---- setup and the model's bookkeeping -------------------------------------------

        @initialize()
        def register_users(self) -> None:
            self.users = registered(platform, USERS)
            for who in range(USERS):  # something to pay with from the first step on
                self.one(Move(who, "topup", OPENING_BALANCE))

        def settle(self, moves: Sequence[Move], answers: Sequence[Answer]) -> list[Sent]:
            """Check the answers (and the verdicts) against the model, apply what they did."""
            verdicts = [self.verdict(m, a) for m, a in zip(moves, answers, strict=True)]
            assert self.ledger.explains(moves, answers, verdicts), (moves, answers, verdicts)
            for move, answer, verdict in zip(moves, answers, verdicts, strict=True):
                decided = "" if verdict is None else f" {verdict.decision}"
                self.saw(f"{move.kind}{decided} {answer.status} {answer.code or ''}".strip())
                assert not answer.replayed or answer.after_processing, (
                    f"a new key replayed: {answer}"
                )
                if answer.status in (201, 202):
                    expected = "COMPLETED" if answer.status == 201 else "PENDING"
                    assert answer.body["status"] == expected, answer
                    assert answer.body["amount"] == move.amount, answer
                self.ledger.apply(move, answer)
            done = [Sent(m, a) for m, a in zip(moves, answers, strict=True)]
            self.history += done
            return done

        def verdict(self, move: Move, answer: Answer) -> Verdict | None:
            """The fraud verdict the answer's transaction recorded (a refusal's, read back)."""
            if answer.failed_outright or answer.transaction_id is None:
                return None
            if answer.status in (201, 202):
                return Verdict.of(answer.body["fraud"])
            found = transaction(self.client, self.users[move.initiator], answer.transaction_id)
            return Verdict.of(found["fraud"])

        def saw(self, what: str) -> None:
            event(what)
            seen[what] += 1

        def pick(self, among: dict[str, Move], pick: int) -> tuple[str, Move]:
            txn_id = list(among)[pick % len(among)]
            return txn_id, among[txn_id]

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

        @rule(target=sent, sender=WHO, other=OTHER, amount=PAYMENT)
        def transfer(self, sender: int, other: int, amount: int) -> Sent:
            return self.one(Move(sender, "transfer", amount, (sender + other) % USERS))

        @rule(target=sent, who=WHO, amount=AMOUNT)
        def pay_oneself(self, who: int, amount: int) -> Sent:
            return self.one(Move(who, "transfer", amount, who))

        @rule(target=sent, who=WHO, amount=PAYMENT)
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

        @rule(target=sent, a=WHO, other=OTHER, first=PAYMENT, second=PAYMENT)
        def transfers_both_ways_at_once(self, a: int, other: int, first: int, second: int) -> Any:
            b = (a + other) % USERS
            moves = [Move(a, "transfer", first, b), Move(b, "transfer", second, a)]
            return multiple(*self.settle(moves, self.at_once(moves)))

        @rule(
            target=sent,
            sender=WHO,
            to=st.tuples(OTHER, OTHER),
            amounts=st.tuples(PAYMENT, PAYMENT),
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

        # ---- reviews and reversals ---------------------------------------------------------

        @precondition(lambda self: self.ledger.reviews)
        @rule(pick=PICK, outcome=st.sampled_from(["APPROVE", "BLOCK"]))
        def the_reviewer_decides(self, pick: int, outcome: str) -> None:
            """``ReviewCase``; its ``fraud.case_reviewed`` settles the transaction over Kafka:
            APPROVE captures the hold (COMPLETED), BLOCK releases it (CANCELLED)."""
            txn_id, move = self.pick(self.ledger.reviews, pick)
            case = self.reviewer.case_of(txn_id)
            assert case.status == "OPEN", case
            decided = self.reviewer.review(case.id, outcome)
            assert decided.status == {"APPROVE": "APPROVED", "BLOCK": "REJECTED"}[outcome]
            done = settled_as(self.client, self.users[move.initiator], txn_id, *FINAL)
            approved = outcome == "APPROVE"
            assert done["status"] == ("COMPLETED" if approved else "CANCELLED"), done
            self.ledger.settle_review(txn_id, approved=approved)
            self.saw(f"review {decided.status}")
            assert refusal(self.reviewer.review, case.id, outcome) == (
                grpc.StatusCode.FAILED_PRECONDITION,
                "case_not_open",
            )

        @precondition(lambda self: self.ledger.reviews)
        @rule(pick=PICK)
        def the_sender_cancels_a_review(self, pick: int) -> None:
            txn_id, move = self.pick(self.ledger.reviews, pick)
            r = self.cancel(txn_id, move)
            assert (r.status_code, r.json()["status"]) == (200, "CANCELLED"), r.text
            self.ledger.settle_review(txn_id, approved=False)
            self.saw("review cancelled by the sender")

        @precondition(lambda self: self.ledger.reviews)
        @rule(pick=PICK)
        def the_sender_cancels_as_the_reviewer_approves(self, pick: int) -> None:
            """The approval travels over Kafka, the cancel straight to transactions: whichever
            settles the review first wins, and the other changes nothing."""
            txn_id, move = self.pick(self.ledger.reviews, pick)
            self.reviewer.review_transaction(txn_id, "APPROVE")
            r = self.cancel(txn_id, move)
            done = settled_as(self.client, self.users[move.initiator], txn_id, *FINAL)
            if r.status_code == 200:
                assert done["status"] == "CANCELLED", (r.json(), done)
            else:
                assert (r.status_code, r.json()["code"]) == (409, "invalid_state"), r.text
                assert done["status"] == "COMPLETED", done
            self.saw(f"cancel racing an approval: {done['status']}")
            self.ledger.settle_review(txn_id, approved=done["status"] == "COMPLETED")

        @precondition(lambda self: self.ledger.reviews)
        @rule(pick=PICK)
        def a_review_expires(self, pick: int) -> None:
            """Nobody decides within the review window (its clock moved back): the recovery
            job's next pass releases the hold and cancels the transaction."""
            txn_id, move = self.pick(self.ledger.reviews, pick)
            open_reviews_long_ago(platform, [txn_id])
            done = settled_as(self.client, self.users[move.initiator], txn_id, *FINAL)
            assert done["status"] == "CANCELLED", done
            self.ledger.settle_review(txn_id, approved=False)
            self.saw("review expired")

        @precondition(lambda self: self.ledger.reversible)
        @rule(pick=PICK)
        def an_admin_reverses_a_transfer(self, pick: int) -> None:
            """``TransactionService.Reverse``: refused exactly when the recipient's available
            balance cannot cover the amount."""
            txn_id, move = self.pick(self.ledger.reversible, pick)
            assert move.recipient is not None
            if self.ledger.available(move.recipient) < move.amount:
                assert refusal(self.reviewer.reverse, txn_id) == (
                    grpc.StatusCode.FAILED_PRECONDITION,
                    "reversal_insufficient_funds",
                )
                self.saw("reversal refused: the recipient spent it")
                return
            reversed_ = self.reviewer.reverse(txn_id)
            assert (reversed_.id, reversed_.status) == (txn_id, "REVERSED"), reversed_
            self.saw("reversal")
            self.ledger.reverse(txn_id)

        def cancel(self, txn_id: str, move: Move) -> httpx.Response:
            headers = self.users[move.initiator].headers
            return self.client.post(f"{MONEY}/{txn_id}/cancel", headers=headers)

        # ---- invariants ----------------------------------------------------------------------

        @invariant()
        def wallets_agree_with_the_model(self) -> None:
            if not self.users:
                return
            seen = []
            for who, user in enumerate(self.users):
                r = self.client.get("/api/v1/wallet", headers=user.headers)
                assert r.status_code == 200, r.text
                wallet = r.json()
                assert wallet["available"] >= 0, wallet
                assert wallet["available"] == wallet["balance"] - wallet["held"], wallet
                expected = (self.ledger.balances[who], self.ledger.held[who])
                assert (wallet["balance"], wallet["held"]) == expected, (
                    wallet,
                    self.ledger,
                    self.history,
                )
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
            # the reviews left open are cancelled, so that they hold nothing after the run
            for txn_id, move in list(self.ledger.reviews.items()):
                self.cancel(txn_id, move)
            self.pool.shutdown(wait=True)
            for client in (self.client, *self.sides):
                client.close()

    return MoneyMachine


def test_money_across_users_with_retries_and_concurrency(platform: Platform) -> None:
    seen: Counter[str] = Counter()
    run_state_machine_as_test(
        money_machine(platform, seen),
        settings=settings(
            # 8 runs of 15 steps: the review expiries wait for the recovery job (every 10 s),
            # and the whole test stays within a minute on CI's 2 cores
            max_examples=8,
            stateful_step_count=15,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    print(f"\n[money machine] {dict(sorted(seen.items()))}")
    # the large payments did go to review, and reviews were settled (not a vacuous run)
    assert any(what.endswith("REVIEW 202") for what in seen), seen
    assert any(what.startswith(("review ", "cancel racing")) for what in seen), seen
    # and across the services: every transaction has exactly the wallet entry it implies
    report = audit(platform.databases["wallet"], platform.databases["transactions"])
    assert report.ok and report.violations == [], report.violations
