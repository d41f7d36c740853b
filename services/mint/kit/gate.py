"""A per-key bound on concurrent work in this process (the money path's per-user bound).

Past the bound a caller is refused at once — never queued: a queued request would hold a worker
thread and, in the money path, a pooled database connection while it waits, so one user
flooding requests could starve every other user of the pool."""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterator
from contextlib import contextmanager

from mint.kit.domain import RateLimited


class ConcurrencyGate:
    """At most ``limit`` holders per key at a time; the next one gets ``RateLimited``
    (``too_many_requests``, HTTP 429 with ``Retry-After: retry_after``)."""

    def __init__(self, limit: int, *, retry_after: int = 1) -> None:
        if limit < 1:
            raise ValueError("a gate admits at least one holder per key")
        self.limit = limit
        self.retry_after = retry_after
        self._held: dict[Hashable, int] = {}
        self._lock = threading.Lock()

    def try_acquire(self, key: Hashable) -> bool:
        """Take a place for ``key`` if one is free (then :meth:`release` it)."""
        with self._lock:
            held = self._held.get(key, 0)
            if held >= self.limit:
                return False
            self._held[key] = held + 1
            return True

    def release(self, key: Hashable) -> None:
        with self._lock:
            left = self._held[key] - 1
            if left:
                self._held[key] = left
            else:
                del self._held[key]

    def refusal(self) -> RateLimited:
        return RateLimited(
            "too_many_requests",
            f"at most {self.limit} of your requests run at once; retry shortly",
            retry_after=self.retry_after,
        )

    @contextmanager
    def enter(self, key: Hashable) -> Iterator[None]:
        """Hold a place for ``key`` for the block; ``RateLimited`` at once when none is free."""
        if not self.try_acquire(key):
            raise self.refusal()
        try:
            yield
        finally:
            self.release(key)

    def holders(self, key: Hashable) -> int:
        with self._lock:
            return self._held.get(key, 0)
