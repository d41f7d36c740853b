"""The base of every event contract, the shared field types and the registry of event types.

A concrete contract is a frozen pydantic model whose fields are the event's ``data`` (events.md)
and whose class variables say where it goes: ``TOPIC``, ``TYPE`` (``ce_type``), ``SOURCE``
(``ce_source``), ``SUBJECT_FIELD`` (``ce_subject``) and ``KEY_FIELD`` (the Kafka key: the user
the event is about). Defining a class with a ``TYPE`` registers it in :data:`EVENT_TYPES`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Final, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    ValidationError,
)

from mint.contracts import money
from mint.kit import catalog
from mint.kit.time import Instant as Instant


class ContractError(ValueError):
    """Event data that does not match its contract (or an unknown event type).

    ``errors`` lists ``{"loc": "a.b", "msg": "..."}`` per problem; ``str()`` reads as one line.
    """

    def __init__(
        self,
        message: str,
        *,
        event_type: str | None = None,
        errors: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.event_type = event_type
        self.errors = errors or []


# ---- shared field types -----------------------------------------------------------------------


#: An amount in integer minor units (never a float, a bool or a string).
Amount = Annotated[StrictInt, Field(ge=money.MIN_AMOUNT, le=money.MAX_AMOUNT)]
#: A count or a sum that may be zero.
NonNegativeInt = Annotated[StrictInt, Field(ge=0)]
#: An ISO 4217 code; which ones a deployment accepts is money.SUPPORTED_CURRENCIES.
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
#: A wallet account code: ``user:<uuid>`` or a system account (normalised).
AccountCode = Annotated[str, AfterValidator(money.normalize_account)]
#: Free text that must say something (reasons, titles).
Text = Annotated[str, StringConstraints(min_length=1)]
#: An id chosen by a caller rather than a UUID (wallet transfer and hold ids): 1..255 chars.
ClientId = Annotated[str, StringConstraints(min_length=1, max_length=255)]


class Nested(BaseModel):
    """An object inside event data: frozen, unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


# ---- the contract base and the registry -------------------------------------------------------

#: ``ce_type`` → contract, filled as contract classes are defined.
EVENT_TYPES: Final[dict[str, type[EventContract]]] = {}

_TYPE_NAME = re.compile(r"^[a-z]+\.[a-z][a-z_]*$")


class EventContract(BaseModel):
    """The data of one event type. Subclasses without ``TYPE`` are abstract helper bases."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    TOPIC: ClassVar[str]
    TYPE: ClassVar[str]
    SOURCE: ClassVar[str]
    KEY_FIELD: ClassVar[str] = "user_id"
    SUBJECT_FIELD: ClassVar[str]

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if "TYPE" in cls.__dict__:
            _register(cls)
        elif getattr(cls, "TYPE", None) is not None:
            raise TypeError(
                f"{cls.__name__} subclasses the concrete contract {cls.TYPE!r}: "
                "derive both from an abstract base instead, or set its own TYPE"
            )

    def key(self) -> str:
        """The Kafka key: the user the event is about (``KEY_FIELD``), else the subject."""
        value = getattr(self, self.KEY_FIELD)
        return self.subject() if value is None else str(value)

    def subject(self) -> str:
        """``ce_subject``: the id of the event's main object (``SUBJECT_FIELD``)."""
        value = getattr(self, self.SUBJECT_FIELD)
        return "unknown" if value is None else str(value)

    def to_data(self) -> dict[str, Any]:
        """The event's ``data`` as JSON values (UUIDs as strings, instants RFC 3339 ``Z``)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        """Validate event ``data``; :class:`ContractError` says what is wrong."""
        name = getattr(cls, "TYPE", cls.__name__)
        if not isinstance(data, Mapping):
            raise ContractError(
                f"{name}: event data must be a JSON object, not {type(data).__name__}",
                event_type=name,
                errors=[{"loc": "", "msg": "not an object"}],
            )
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            errors = [
                {"loc": ".".join(str(part) for part in err["loc"]), "msg": err["msg"]}
                for err in exc.errors(include_url=False)
            ]
            problems = "; ".join(f"{e['loc'] or '(data)'}: {e['msg']}" for e in errors)
            raise ContractError(
                f"{name}: invalid event data: {problems}", event_type=name, errors=errors
            ) from exc


def _register(cls: type[EventContract]) -> None:
    """Check a concrete contract's class variables and add it to :data:`EVENT_TYPES`."""
    where = f"{cls.__module__}.{cls.__qualname__}"
    for attr in ("TYPE", "TOPIC", "SOURCE", "SUBJECT_FIELD"):
        if not isinstance(getattr(cls, attr, None), str):
            raise TypeError(f"{where} must set {attr}")
    if not _TYPE_NAME.match(cls.TYPE):
        raise TypeError(f"{where}: TYPE {cls.TYPE!r} is not <domain>.<snake_case>")
    if cls.TOPIC not in catalog.TOPICS:
        raise TypeError(f"{where}: TOPIC {cls.TOPIC!r} is not in mint.kit.catalog.TOPICS")
    if cls.SOURCE not in catalog.SERVICE_NAMES:
        raise TypeError(f"{where}: SOURCE {cls.SOURCE!r} is not a service name")
    if cls.SUBJECT_FIELD not in cls.model_fields:
        raise TypeError(f"{where}: SUBJECT_FIELD {cls.SUBJECT_FIELD!r} is not a field")
    if cls.key is EventContract.key and cls.KEY_FIELD not in cls.model_fields:
        raise TypeError(f"{where}: KEY_FIELD {cls.KEY_FIELD!r} is not a field (or override key)")
    existing = EVENT_TYPES.get(cls.TYPE)
    if existing is not None:
        raise TypeError(
            f"{where}: event type {cls.TYPE!r} is already registered by "
            f"{existing.__module__}.{existing.__qualname__}"
        )
    EVENT_TYPES[cls.TYPE] = cls


def contract_for(type: str) -> type[EventContract] | None:
    """The contract of ``ce_type`` ``type``, or ``None`` when there is none."""
    return EVENT_TYPES.get(type)


def parse(type: str, data: Mapping[str, Any]) -> EventContract:
    """Validate ``data`` as an event of ``ce_type`` ``type``; :class:`ContractError` for an
    unknown type or invalid data."""
    contract = contract_for(type)
    if contract is None:
        raise ContractError(
            f"unknown event type {type!r}",
            event_type=type,
            errors=[{"loc": "type", "msg": "unknown event type"}],
        )
    return contract.from_data(data)
