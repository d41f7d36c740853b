"""The typed event contracts (mint.contracts) against events.md: every type has a model, every
model round-trips through its JSON data, keys and subjects follow the catalogue's rules."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import types
import typing
import uuid
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any, ClassVar, TypeVar
from uuid import UUID

import pytest
from pydantic import BaseModel, ValidationError

import mint.contracts
from mint.contracts import (
    EVENT_TYPES,
    TOPIC_TYPES,
    ContractError,
    EventContract,
    Instant,
    contract_for,
    money,
    parse,
)
from mint.contracts.admin import AdminTransactionReversed, AdminUserFrozen, KycApproved
from mint.contracts.audit import LoginFailed
from mint.contracts.auth import UserRegistered
from mint.contracts.kyc import KycProfileCreated, KycSubmitted, TierUpgraded
from mint.contracts.social import SplitSettled
from mint.contracts.transaction import (
    TransactionCompleted,
    TransactionFailed,
    TransactionFraudBlocked,
    TransactionObject,
)
from mint.contracts.wallet import HoldPlaced, TransferPosted, WalletCreated
from mint.kit import catalog

#: events.md, "Types and data" — every type that travels on Kafka (not webhook.test).
EXPECTED_TYPES = {
    # auth.events
    "auth.user_registered",
    "auth.user_verified",
    "auth.user_frozen",
    "auth.user_unfrozen",
    "auth.role_changed",
    # wallet.events
    "wallet.created",
    "wallet.frozen",
    "wallet.unfrozen",
    "wallet.transfer_posted",
    "wallet.hold_placed",
    "wallet.hold_captured",
    "wallet.hold_released",
    # transaction.events
    "transaction.completed",
    "transaction.failed",
    "transaction.fraud_blocked",
    "transaction.review_required",
    "transaction.cancelled",
    "transaction.reversed",
    # fraud.events
    "fraud.case_opened",
    "fraud.case_reviewed",
    # kyc.events
    "kyc.profile_created",
    "kyc.submitted",
    "kyc.tier_upgraded",
    "kyc.verification_failed",
    # social.events
    "social.contact_added",
    "social.contact_removed",
    "social.money_request_created",
    "social.money_request_accepted",
    "social.money_request_declined",
    "social.money_request_cancelled",
    "social.money_request_expired",
    "social.money_request_paid",
    "social.money_request_failed",
    "social.split_created",
    "social.split_payment_requested",
    "social.split_share_paid",
    "social.split_settled",
    # analytics.events
    "analytics.budget_warning",
    "analytics.budget_exceeded",
    # admin.events
    "admin.user_frozen",
    "admin.user_unfrozen",
    "admin.role_changed",
    "admin.kyc_approved",
    "admin.kyc_rejected",
    "admin.fraud_case_reviewed",
    "admin.transaction_reversed",
    "admin.transaction_force_completed",
    "admin.transaction_failed",
    "admin.limits_updated",
    "admin.sanction_added",
    "admin.sanction_removed",
    # webhook.events
    "webhook.endpoint_disabled",
    # audit.events (security events, produced by auth)
    "auth.login_succeeded",
    "auth.login_failed",
    "auth.refresh_reused",
    "auth.password_reset",
}
#: Topics events.md gives types for — every topic of the catalogue.
EXPECTED_TOPICS = {
    "auth.events",
    "wallet.events",
    "transaction.events",
    "fraud.events",
    "kyc.events",
    "social.events",
    "analytics.events",
    "admin.events",
    "webhook.events",
    "audit.events",
}
#: events.md "Topics and consumers": the producer of each topic.
PRODUCERS = {
    "auth.events": "auth",
    "wallet.events": "wallet",
    "transaction.events": "transactions",
    "fraud.events": "fraud",
    "kyc.events": "kyc",
    "social.events": "social",
    "analytics.events": "analytics",
    "admin.events": "admin",
    "webhook.events": "webhook",
    "audit.events": "auth",
}

SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
MOMENT = datetime(2026, 1, 31, 12, 34, 56, 123456, tzinfo=UTC)
M = TypeVar("M", bound=BaseModel)

# ---- a factory: a valid instance of any contract, fields filled by name and type -------------

#: Fields whose type alone does not make a valid value (patterns, account codes, …).
BY_NAME: dict[str, Any] = {
    "currency": "USD",
    "month": "2026-01",
    "ratio": 0.85,
    "email": "ann@example.com",
    "ip": "203.0.113.7",
    "user_agent": "Mozilla/5.0 (pytest)",
    "from_account": lambda: money.user_account(uuid.uuid4()),
    "to_account": lambda: money.user_account(uuid.uuid4()),
    "account": lambda: money.user_account(uuid.uuid4()),
}
#: Per contract class or base: values that make the whole object consistent.
BY_BASE: dict[type[BaseModel], dict[str, Any]] = {
    TransactionObject: {"type": "TRANSFER", "failure_reason": "insufficient_funds"},
    TransactionFraudBlocked: {"failure_reason": "fraud_blocked"},
}


def unwrap(annotation: Any) -> Any:
    """``X`` for ``Annotated[X, ...]`` (pydantic keeps the metadata inside unions)."""
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def is_instant(annotation: Any) -> bool:
    """``Instant`` or ``Instant | None``."""
    options = typing.get_args(annotation) if is_union(annotation) else (annotation,)
    return any(unwrap(option) is datetime for option in options)


def is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


def sample(annotation: Any, name: str) -> Any:
    """A valid value of ``annotation`` (as pydantic stores it: constraints stripped)."""
    annotation = unwrap(annotation)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if is_union(annotation):
        return sample(next(a for a in args if a is not type(None)), name)
    if origin is typing.Literal:
        return args[0]
    if origin is tuple:
        return (sample(args[0], name),)
    if origin is dict:
        return {"status": "ACTIVE", "limits": {"daily": 10_000}}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return build(annotation)
    simple: dict[Any, Any] = {
        UUID: uuid.uuid4,
        int: lambda: 1234,
        float: lambda: 0.5,
        str: lambda: f"sample {name}",
        datetime: lambda: MOMENT,
    }
    if annotation in simple:
        return simple[annotation]()
    raise AssertionError(f"no sample for {name}: {annotation!r}; add one to BY_NAME")


def build(cls: type[M], **overrides: Any) -> M:
    values: dict[str, Any] = {}
    for base in reversed(cls.__mro__):  # the most specific class wins
        values.update(BY_BASE.get(base, {}))
    for name, field in cls.model_fields.items():
        if name in values:
            continue
        if name in BY_NAME:
            value = BY_NAME[name]
            values[name] = value() if callable(value) else value
        else:
            values[name] = sample(field.annotation, name)
    values.update(overrides)
    return cls(**values)


def transaction(**fields: Any) -> TransactionCompleted:
    return build(TransactionCompleted, **fields)


ALL_TYPES = sorted(EVENT_TYPES)


# ---- the registry against events.md -----------------------------------------------------------


def test_registered_types_are_exactly_events_md() -> None:
    assert set(EVENT_TYPES) == EXPECTED_TYPES


def test_every_topic_has_models_and_every_model_a_catalogue_topic() -> None:
    topics = {contract.TOPIC for contract in EVENT_TYPES.values()}
    assert topics <= set(catalog.TOPICS)
    assert topics == EXPECTED_TOPICS
    assert set(TOPIC_TYPES) == EXPECTED_TOPICS
    assert list(TOPIC_TYPES) == [t for t in catalog.TOPICS if t in EXPECTED_TOPICS]
    assert sorted(t for types_ in TOPIC_TYPES.values() for t in types_) == ALL_TYPES
    assert TOPIC_TYPES["webhook.events"] == ("webhook.endpoint_disabled",)
    assert "auth.login_failed" in TOPIC_TYPES["audit.events"]
    assert "auth.login_failed" not in TOPIC_TYPES["auth.events"]


@pytest.mark.parametrize("event_type", ALL_TYPES)
def test_class_variables(event_type: str) -> None:
    contract = EVENT_TYPES[event_type]
    assert event_type == contract.TYPE
    assert PRODUCERS[contract.TOPIC] == contract.SOURCE
    assert contract.SUBJECT_FIELD in contract.model_fields
    assert contract.model_config.get("frozen") is True
    assert contract.model_config.get("extra") == "forbid"


def test_contract_for() -> None:
    assert contract_for("auth.user_registered") is UserRegistered
    assert contract_for("transaction.completed") is TransactionCompleted
    assert contract_for("webhook.test") is None
    assert contract_for("nope") is None
    assert TransactionObject not in EVENT_TYPES.values()


def test_parse_dispatches_on_type() -> None:
    user = uuid.uuid4()
    event = parse("auth.user_registered", {"user_id": str(user), "email": "a@b.co", "name": "A"})
    assert isinstance(event, UserRegistered)
    assert event.user_id == user
    with pytest.raises(ContractError, match=r"unknown event type 'webhook\.test'"):
        parse("webhook.test", {"endpoint_id": str(uuid.uuid4())})


def test_registering_a_type_twice_raises() -> None:
    before = dict(EVENT_TYPES)
    with pytest.raises(TypeError, match=r"'auth\.user_registered' is already registered"):

        class Again(EventContract):
            TOPIC: ClassVar[str] = "auth.events"
            TYPE: ClassVar[str] = "auth.user_registered"
            SOURCE: ClassVar[str] = "auth"
            SUBJECT_FIELD: ClassVar[str] = "user_id"

            user_id: UUID

    assert before == EVENT_TYPES
    assert contract_for("auth.user_registered") is UserRegistered


def test_a_contract_must_name_a_catalogue_topic_and_real_fields() -> None:
    with pytest.raises(TypeError, match=r"not in mint\.kit\.catalog\.TOPICS"):

        class Stray(EventContract):
            TOPIC: ClassVar[str] = "nowhere.events"
            TYPE: ClassVar[str] = "nowhere.happened"
            SOURCE: ClassVar[str] = "auth"
            SUBJECT_FIELD: ClassVar[str] = "user_id"

            user_id: UUID

    with pytest.raises(TypeError, match="SUBJECT_FIELD 'thing_id' is not a field"):

        class NoSubject(EventContract):
            TOPIC: ClassVar[str] = "auth.events"
            TYPE: ClassVar[str] = "auth.no_subject"
            SOURCE: ClassVar[str] = "auth"
            SUBJECT_FIELD: ClassVar[str] = "thing_id"

            user_id: UUID

    with pytest.raises(TypeError, match="subclasses the concrete contract"):

        class Derived(UserRegistered):
            pass

    assert set(EVENT_TYPES) == EXPECTED_TYPES


# ---- every contract: data round-trips, invalid data is refused -------------------------------


@pytest.mark.parametrize("event_type", ALL_TYPES)
def test_round_trip(event_type: str) -> None:
    contract = EVENT_TYPES[event_type]
    event = build(contract)
    data = event.to_data()
    wire = json.loads(json.dumps(data))  # JSON-serialisable, and JSON changes nothing
    assert wire == data
    assert list(data) == list(contract.model_fields)
    assert all(SNAKE.match(key) for key in data), list(data)
    assert contract.from_data(wire) == event
    assert contract.from_data(wire).to_data() == data
    assert isinstance(event.key(), str) and event.key()
    assert event.subject() == str(getattr(event, contract.SUBJECT_FIELD))


@pytest.mark.parametrize("event_type", ALL_TYPES)
def test_instants_render_rfc3339_microseconds_z(event_type: str) -> None:
    contract = EVENT_TYPES[event_type]
    data = build(contract).to_data()
    instants = [
        name for name, field in contract.model_fields.items() if is_instant(field.annotation)
    ]
    for name in instants:
        assert INSTANT.match(data[name]), (name, data[name])
        assert data[name] == "2026-01-31T12:34:56.123456Z"
    assert all(not isinstance(value, datetime) for value in data.values())


@pytest.mark.parametrize("event_type", ALL_TYPES)
def test_missing_required_field_is_refused(event_type: str) -> None:
    contract = EVENT_TYPES[event_type]
    data = build(contract).to_data()
    required = [name for name, field in contract.model_fields.items() if field.is_required()]
    assert required, f"{event_type} has no required field"
    for name in required:
        broken = {k: v for k, v in data.items() if k != name}
        with pytest.raises(ContractError, match=rf"{event_type}: .*{name}: Field required"):
            contract.from_data(broken)


@pytest.mark.parametrize("event_type", ALL_TYPES)
def test_extra_field_is_refused(event_type: str) -> None:
    contract = EVENT_TYPES[event_type]
    data = build(contract).to_data()
    with pytest.raises(ContractError, match="surprise: Extra inputs are not permitted") as info:
        contract.from_data({**data, "surprise": 1})
    assert info.value.event_type == event_type
    assert info.value.errors == [{"loc": "surprise", "msg": "Extra inputs are not permitted"}]


def test_contract_error_is_a_value_error_with_readable_message() -> None:
    with pytest.raises(ValueError) as info:
        UserRegistered.from_data({"user_id": "not-a-uuid", "email": "a@b.co"})
    error = info.value
    assert isinstance(error, ContractError)
    message = str(error)
    assert message.startswith("auth.user_registered: invalid event data: ")
    assert "user_id: Input should be a valid UUID" in message
    assert "name: Field required" in message
    with pytest.raises(ContractError, match="must be a JSON object"):
        UserRegistered.from_data(["not", "a", "mapping"])  # type: ignore[arg-type]


def test_contracts_are_frozen() -> None:
    event = build(UserRegistered)
    field = "name"
    with pytest.raises(ValidationError, match="frozen"):
        setattr(event, field, "someone else")
    assert event.name == "sample name"


# ---- field types ------------------------------------------------------------------------------


def test_instant_is_utc_whatever_the_input() -> None:
    plus_two = timezone(timedelta(hours=2))
    cases = [
        "2026-01-31T14:34:56.123456+02:00",
        "2026-01-31T12:34:56.123456Z",
        "2026-01-31T12:34:56.123456",  # no offset: UTC
        datetime(2026, 1, 31, 14, 34, 56, 123456, tzinfo=plus_two),
        datetime(2026, 1, 31, 12, 34, 56, 123456),  # naive: UTC
    ]
    for value in cases:
        txn = transaction(created_at=value)
        assert txn.created_at == MOMENT
        assert txn.created_at.tzinfo is not None
        assert txn.created_at.utcoffset() == timedelta(0)
        assert txn.to_data()["created_at"] == "2026-01-31T12:34:56.123456Z"
    whole = transaction(created_at="2026-01-31T12:00:00Z").to_data()["created_at"]
    assert whole == "2026-01-31T12:00:00.000000Z"
    data = transaction().to_data()
    for bad in (1_700_000_000, "yesterday", None):
        with pytest.raises(ContractError, match="created_at"):
            TransactionCompleted.from_data({**data, "created_at": bad})


def test_instant_is_exported_for_reuse() -> None:
    class Stamp(BaseModel):
        at: Instant

    stamp = Stamp.model_validate({"at": "2026-01-31T13:34:56.123456+01:00"})
    assert stamp.at == MOMENT
    assert stamp.model_dump(mode="json") == {"at": "2026-01-31T12:34:56.123456Z"}
    assert stamp.model_dump() == {"at": MOMENT}  # python mode keeps the datetime


def test_amounts_are_integers_in_range() -> None:
    data = transaction().to_data()
    for bad in (0, -5, 10**12, 12.5, "100", True):
        with pytest.raises(ContractError, match="amount"):
            TransactionCompleted.from_data({**data, "amount": bad})
    assert TransactionCompleted.from_data({**data, "amount": 10**12 - 1}).amount == 10**12 - 1


def test_fixed_values_are_enforced() -> None:
    data = transaction().to_data()
    with pytest.raises(ContractError, match="status"):
        TransactionCompleted.from_data({**data, "status": "FAILED"})
    with pytest.raises(ContractError, match="category"):
        TransactionCompleted.from_data({**data, "category": "GROCERIES"})
    with pytest.raises(ContractError, match="currency"):
        TransactionCompleted.from_data({**data, "currency": "usd"})
    tier = build(TierUpgraded).to_data()
    with pytest.raises(ContractError, match="new_tier"):
        TierUpgraded.from_data({**tier, "new_tier": "GOLD"})
    failed = build(TransactionFailed, status="FAILED").to_data()
    with pytest.raises(ContractError, match=r"transaction\.fraud_blocked"):
        TransactionFailed.from_data({**failed, "failure_reason": "fraud_blocked"})
    blocked = build(TransactionFraudBlocked).to_data()
    assert blocked["status"] == "FAILED" and blocked["failure_reason"] == "fraud_blocked"


def test_transaction_parties_follow_the_type() -> None:
    data = transaction().to_data()
    with pytest.raises(ContractError, match="a TOPUP has sender_id null and recipient_id set"):
        TransactionCompleted.from_data({**data, "type": "TOPUP"})
    with pytest.raises(ContractError, match="WITHDRAWAL"):
        TransactionCompleted.from_data({**data, "type": "WITHDRAWAL"})


def test_account_codes_are_validated_and_normalised() -> None:
    user = uuid.uuid4()
    posted = build(TransferPosted, from_account=f"user:{str(user).upper()}")
    assert posted.from_account == f"user:{user}"
    data = posted.to_data()
    for bad in ("user:nope", "external:elsewhere", str(user), ""):
        with pytest.raises(ContractError, match="from_account"):
            TransferPosted.from_data({**data, "from_account": bad})


# ---- partition keys and subjects --------------------------------------------------------------


def test_transaction_key_is_the_initiator() -> None:
    sender, recipient = uuid.uuid4(), uuid.uuid4()
    topup = transaction(type="TOPUP", sender_id=None, recipient_id=recipient)
    assert topup.key() == str(recipient)
    transfer = transaction(type="TRANSFER", sender_id=sender, recipient_id=recipient)
    assert transfer.key() == str(sender)
    withdrawal = transaction(type="WITHDRAWAL", sender_id=sender, recipient_id=None)
    assert withdrawal.key() == str(sender)
    assert transfer.subject() == str(transfer.id)


def test_transfer_posted_key_is_the_user_side() -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fields: dict[str, Any] = {"transfer_id": "t-1", "amount": 500, "currency": "USD"}

    def key(from_account: str, to_account: str) -> str:
        event = TransferPosted(from_account=from_account, to_account=to_account, **fields)
        assert event.subject() == "t-1"
        return event.key()

    assert key(money.FUNDING_ACCOUNT, money.user_account(bob)) == str(bob)  # top-up
    assert key(money.user_account(alice), money.PAYOUT_ACCOUNT) == str(alice)  # withdrawal
    assert key(money.user_account(alice), money.user_account(bob)) == str(alice)  # transfer
    assert key(money.FUNDING_ACCOUNT, money.PAYOUT_ACCOUNT) == "t-1"  # no user: the subject


def test_hold_key_is_the_account_owner() -> None:
    alice = uuid.uuid4()
    hold = HoldPlaced(hold_id="h-1", account=money.user_account(alice), amount=1, currency="USD")
    assert (hold.key(), hold.subject()) == (str(alice), "h-1")
    system = HoldPlaced(hold_id="h-2", account=money.FUNDING_ACCOUNT, amount=1, currency="USD")
    assert system.key() == "h-2"


def test_other_keys_and_subjects() -> None:
    wallet = build(WalletCreated)
    assert (wallet.key(), wallet.subject()) == (str(wallet.user_id), str(wallet.wallet_id))
    anonymous = LoginFailed(ip="203.0.113.7", user_agent="curl")
    assert (anonymous.key(), anonymous.subject()) == ("unknown", "unknown")
    known = build(LoginFailed)
    assert known.key() == known.subject() == str(known.user_id)
    admin = build(AdminUserFrozen)
    assert admin.key() == admin.subject() == admin.target_id
    reversal = build(AdminTransactionReversed)
    assert reversal.key() == reversal.target_id
    approved = build(KycApproved)
    assert (approved.key(), approved.subject()) == (str(approved.user_id), approved.target_id)
    submitted = build(KycSubmitted)
    assert (submitted.key(), submitted.subject()) == (
        str(submitted.user_id),
        str(submitted.profile_id),
    )
    settled = build(SplitSettled)
    assert settled.key() == settled.subject() == str(settled.split_id)
    for event_type in ALL_TYPES:
        contract = EVENT_TYPES[event_type]
        if contract.TOPIC in ("kyc.events", "fraud.events", "analytics.events"):
            event = build(contract)
            assert event.key() == str(event.user_id)  # type: ignore[attr-defined]


# ---- what the services emit today validates ---------------------------------------------------


def test_transaction_object_matches_the_api_serializer() -> None:
    from mint.transactions.schemas import TransactionOut

    def serialize(row: object) -> dict[str, object]:
        return TransactionOut.model_validate(row).model_dump(mode="json")

    row = SimpleNamespace(
        id=uuid.uuid4(),
        type="TRANSFER",
        status="COMPLETED",
        amount=1250,
        currency="USD",
        sender_id=uuid.uuid4(),
        recipient_id=uuid.uuid4(),
        description="dinner",
        merchant="Pizza Place",
        category="FOOD",
        reference={"type": "money_request", "id": str(uuid.uuid4())},
        fraud={"decision": "ALLOW", "score": 0, "rules": []},
        failure_reason=None,
        created_at=MOMENT,
        completed_at=MOMENT + timedelta(seconds=1),
    )
    api = serialize(row)
    event = TransactionCompleted.from_data(api)
    assert event.to_data() == api
    assert list(event.to_data()) == list(api)
    topup = SimpleNamespace(**{**vars(row), "type": "TOPUP", "sender_id": None})
    topup.reference = topup.fraud = topup.description = topup.merchant = topup.category = None
    assert TransactionCompleted.from_data(serialize(topup)).key() == str(row.recipient_id)


def test_todays_producer_data_validates() -> None:
    user, profile = uuid.uuid4(), uuid.uuid4()
    # auth/api.py register
    registered = UserRegistered.from_data({"user_id": str(user), "email": "a@b.co", "name": "A"})
    assert registered.to_data() == {"user_id": str(user), "email": "a@b.co", "name": "A"}
    # auth/web.py security_event without a user
    LoginFailed.from_data({"user_id": None, "ip": "0.0.0.0", "user_agent": ""})
    # kyc/store.py passes UUID objects (the kit converts them)
    assert KycProfileCreated.from_data({"user_id": user}).to_data() == {"user_id": str(user)}
    KycSubmitted.from_data({"user_id": user, "profile_id": profile})
    # wallet/holds.py and wallet/store.py
    HoldPlaced.from_data(
        {"hold_id": str(uuid.uuid4()), "account": f"user:{user}", "amount": 9, "currency": "USD"}
    )


# ---- money ------------------------------------------------------------------------------------


def test_money_constants() -> None:
    """The values the wallet and transactions services used before they shared these."""
    assert money.CURRENCY == "USD"
    assert frozenset({"USD"}) == money.SUPPORTED_CURRENCIES
    assert (money.MIN_AMOUNT, money.MAX_AMOUNT) == (1, 10**12 - 1)
    assert money.FUNDING_ACCOUNT == "external:funding"
    assert money.PAYOUT_ACCOUNT == "external:payout"
    assert money.SYSTEM_ACCOUNTS == ("external:funding", "external:payout")
    assert money.USER_ACCOUNT_PREFIX == "user:"
    user = uuid.uuid4()
    assert money.user_account(user) == f"user:{user}"


def test_account_helpers() -> None:
    user = uuid.uuid4()
    assert money.user_account(str(user).upper()) == f"user:{user}"
    assert money.user_of_account(f"user:{user}") == user
    assert money.user_of_account(money.FUNDING_ACCOUNT) is None
    assert money.user_of_account(money.PAYOUT_ACCOUNT) is None
    with pytest.raises(ValueError):
        money.user_of_account("user:nope")
    with pytest.raises(ValueError):
        money.user_account("nope")
    assert money.normalize_account(money.PAYOUT_ACCOUNT) == money.PAYOUT_ACCOUNT


# ---- imports ----------------------------------------------------------------------------------


def test_contracts_import_no_service_stack() -> None:
    code = (
        "import sys, mint.contracts\n"
        "heavy = ('sqlalchemy', 'fastapi', 'grpc', 'confluent_kafka', 'starlette')\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in heavy\n"
        "    or (m.startswith('mint.') and m.split('.')[1] not in ('contracts', 'kit'))\n"
        "    or (m.startswith('mint.kit.') and m not in ('mint.kit.catalog', 'mint.kit.time')))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == ""


def test_package_exports() -> None:
    for name in ("EventContract", "ContractError", "EVENT_TYPES", "contract_for", "Instant"):
        assert name in mint.contracts.__all__
        assert hasattr(mint.contracts, name)
    assert issubclass(ContractError, ValueError)
