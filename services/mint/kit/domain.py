"""The one error model of every service's use cases (no HTTP, no gRPC here).

A use case refuses by raising a :class:`DomainError` whose *kind* says what went wrong and whose
*code* is the stable snake_case string clients see. Each edge maps the kind exactly once:
HTTP in :mod:`mint.kit.errors` (problem+json), gRPC in :mod:`mint.kit.rpc`'s server interceptor
(status + ``code`` as details), and a gRPC client turns a failed call back into the same
``DomainError`` (:func:`mint.kit.rpc.error_from_rpc`), so an error crosses services unchanged.

Services subclass these for their own families (``class WalletRefused(Refused)``) or raise them
directly: ``raise NotFound("wallet_not_found", "no wallet yet")``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar


class Kind(StrEnum):
    """What went wrong — the only thing the edges look at to pick a status."""

    INVALID = "invalid"  # malformed input            HTTP 422  gRPC INVALID_ARGUMENT
    NOT_FOUND = "not_found"  # no such object (or not yours) 404     NOT_FOUND
    REFUSED = "refused"  # a rule says no              422       FAILED_PRECONDITION
    CONFLICT = "conflict"  # already exists / in use     409       ALREADY_EXISTS
    UNAUTHENTICATED = "unauthenticated"  # who are you?   401       UNAUTHENTICATED
    FORBIDDEN = "forbidden"  # known, but not allowed     403       PERMISSION_DENIED
    RATE_LIMITED = "rate_limited"  # slow down            429       RESOURCE_EXHAUSTED
    UNAVAILABLE = "unavailable"  # a dependency is down   503       UNAVAILABLE


class DomainError(Exception):
    """A use case that cannot be done. ``extra`` fields travel to the HTTP problem body
    (``limit``, ``remaining``, ``transaction_id`` …); keep them JSON-safe."""

    kind: ClassVar[Kind] = Kind.REFUSED

    def __init__(self, code: str, detail: str = "", **extra: Any) -> None:
        super().__init__(code)
        self.code = code
        self.detail = detail or code.replace("_", " ")
        self.extra = extra

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.detail!r})"


class Invalid(DomainError):
    kind = Kind.INVALID


class NotFound(DomainError):
    kind = Kind.NOT_FOUND


class Refused(DomainError):
    kind = Kind.REFUSED


class Conflict(DomainError):
    kind = Kind.CONFLICT


class Unauthenticated(DomainError):
    kind = Kind.UNAUTHENTICATED


class Forbidden(DomainError):
    kind = Kind.FORBIDDEN


class RateLimited(DomainError):
    """``retry_after`` seconds become the HTTP ``Retry-After`` header."""

    kind = Kind.RATE_LIMITED

    def __init__(self, code: str, detail: str = "", *, retry_after: int, **extra: Any) -> None:
        super().__init__(code, detail, **extra)
        self.retry_after = retry_after


class Unavailable(DomainError):
    """A dependency did not answer. The code is ``dependency_unavailable`` unless said."""

    kind = Kind.UNAVAILABLE

    def __init__(
        self, code: str = "dependency_unavailable", detail: str = "", **extra: Any
    ) -> None:
        super().__init__(code, detail or "a dependency is unavailable", **extra)


#: One class per kind, for the edges that rebuild an error from a kind (gRPC clients).
BY_KIND: dict[Kind, type[DomainError]] = {
    cls.kind: cls
    for cls in (Invalid, NotFound, Refused, Conflict, Unauthenticated, Forbidden, Unavailable)
}
