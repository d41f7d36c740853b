"""What the event machinery needs of an event contract (``mint.contracts`` models satisfy it):
where it goes and how it travels. The kit depends on this shape, not on the contracts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Protocol, Self


class Contract(Protocol):
    TOPIC: ClassVar[str]
    TYPE: ClassVar[str]  # ce_type
    SOURCE: ClassVar[str]  # ce_source: the producing service

    def key(self) -> str:
        """The partition key: the user the event is about."""
        ...

    def subject(self) -> str:
        """ce_subject: the id of the main object."""
        ...

    def to_data(self) -> dict[str, Any]:
        """The CloudEvents data, JSON-ready."""
        ...

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        """The model of received data; ``ValueError`` when it does not fit."""
        ...
