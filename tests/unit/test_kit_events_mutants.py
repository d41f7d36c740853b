"""The outbox relay's backoffs, where `make mutation` found them unproven: a row the cluster
refused waits 1/2 s, doubling, capped; an outage backs the whole relay off the same way, and is
logged once however long it lasts.

Each test names the mutants it kills (mutmut's names, ``mutmut show NAME`` in .mutation/).
"""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from mint.kit.config import KitSettings
from mint.kit.db import Database
from mint.kit.events.outbox import OutboxRelay

# The relay is built, never run: nothing connects to this address.
UNUSED_DATABASE = "postgresql+psycopg://mint@127.0.0.1:9/unused"


@pytest.fixture
def relay() -> OutboxRelay:
    return OutboxRelay(Database(UNUSED_DATABASE, pool_size=1), KitSettings(), max_backoff_seconds=6)


def test_a_refused_row_waits_half_a_second_doubling_up_to_the_cap(relay: OutboxRelay) -> None:
    """OutboxRelay._row_backoff (``*`` for ``/``, the exponent, the cap)."""
    waits = [relay._row_backoff(attempts) for attempts in range(1, 7)]
    assert waits == [0.5, 1.0, 2.0, 4.0, 6.0, 6.0]
    assert relay._row_backoff(1_000) == 6.0  # the exponent is bounded: no overflow, the cap


def test_an_outage_backs_off_doubling_and_is_logged_once(relay: OutboxRelay) -> None:
    """OutboxRelay._failed / _recovered (the count of failures, the outage's start, the log)."""
    with capture_logs() as logs:
        waits = [relay._failed(ConnectionError("down")) for _ in range(6)]
        relay._recovered()
        again = relay._failed(ConnectionError("down again"))
    assert waits == [0.5, 1.0, 2.0, 4.0, 6.0, 6.0]
    assert again == 0.5  # recovered: counting starts over
    assert [e["event"] for e in logs] == [
        "outbox_publish_failing",
        "outbox_publish_recovered",
        "outbox_publish_failing",
    ]
    assert logs[0]["error"] == "down" and logs[0]["error_type"] == "ConnectionError"
