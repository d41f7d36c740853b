"""mint.kit.gate: a per-key bound that refuses at once (never queues) and frees on exit."""

from __future__ import annotations

import threading

import pytest

from mint.kit.domain import RateLimited
from mint.kit.gate import ConcurrencyGate


def test_the_bound_is_per_key_and_freed_on_exit() -> None:
    gate = ConcurrencyGate(2, retry_after=3)
    with gate.enter("alice"), gate.enter("alice"):
        with pytest.raises(RateLimited) as refused, gate.enter("alice"):
            pass
        assert (refused.value.code, refused.value.retry_after) == ("too_many_requests", 3)
        with gate.enter("bob"):  # another key is not affected
            assert gate.holders("bob") == 1
        assert gate.holders("alice") == 2
    assert gate.holders("alice") == 0
    with gate.enter("alice"):  # free again
        pass


def test_an_error_inside_frees_the_place() -> None:
    gate = ConcurrencyGate(1)
    with pytest.raises(ValueError), gate.enter("k"):
        raise ValueError("boom")
    assert gate.holders("k") == 0


def test_concurrent_entries_never_exceed_the_bound() -> None:
    gate = ConcurrencyGate(3)
    inside, peak, refused = [0], [0], [0]
    lock, start = threading.Lock(), threading.Barrier(12)

    def worker() -> None:
        start.wait()
        for _ in range(200):
            try:
                with gate.enter("k"):
                    with lock:
                        inside[0] += 1
                        peak[0] = max(peak[0], inside[0])
                    with lock:
                        inside[0] -= 1
            except RateLimited:
                with lock:
                    refused[0] += 1

    threads = [threading.Thread(target=worker) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] <= 3 and gate.holders("k") == 0
