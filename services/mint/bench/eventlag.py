"""Event lag: from the producing transaction to each consumer, computed after the runs.

Every service writes an event into its ``outbox`` table in the transaction that makes the change
(``created_at`` is that transaction's ``now()``, its start, a little before its commit); the
relay publishes it (``published_at``); each consuming group records ``(group, event id,
processed_at)`` in its own ``processed_events`` table in the transaction of its effect
(``mint.kit.events.tables``). Joining those rows across the databases by event id gives the lag
to every service consumer; the bench's own group (:mod:`mint.bench.lag_consumer`) gives the lag
to a bare Kafka consumer of ``transaction.events``. The server's clock stamps both ends (one
PostgreSQL), the bench's consumer reads the same machine's clock.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import psycopg

from mint.bench.stats import summary


def libpq_url(url: str) -> str:
    """A SQLAlchemy URL (``postgresql+psycopg://…``) as libpq takes it."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.split('+')[0]}{sep}{rest}"


@dataclass(frozen=True)
class Produced:
    """One outbox row: when its transaction wrote it and when the relay published it."""

    topic: str
    created_at: float  # epoch seconds
    published_at: float | None


def fetch_outbox(url: str, since: float) -> dict[str, Produced]:
    sql = """
        SELECT id::text, topic, EXTRACT(EPOCH FROM created_at)::float8,
               EXTRACT(EPOCH FROM published_at)::float8
        FROM outbox WHERE created_at >= to_timestamp(%s)
    """
    with psycopg.connect(libpq_url(url)) as conn:
        rows = conn.execute(sql, (since,)).fetchall()
    return {
        event_id: Produced(topic, created, published)
        for event_id, topic, created, published in rows
    }


def fetch_processed(url: str, since: float) -> dict[str, dict[str, float]]:
    """``{group: {event id: processed_at}}`` of one service's consumers."""
    sql = """
        SELECT "group", event_id, EXTRACT(EPOCH FROM processed_at)::float8
        FROM processed_events WHERE processed_at >= to_timestamp(%s)
    """
    out: dict[str, dict[str, float]] = {}
    with psycopg.connect(libpq_url(url)) as conn:
        for group, event_id, processed in conn.execute(sql, (since,)):
            out.setdefault(group, {})[event_id] = processed
    return out


def unpublished_count(url: str, since: float) -> int:
    sql = (
        "SELECT count(*) FROM outbox WHERE created_at >= to_timestamp(%s) AND published_at IS NULL"
    )
    with psycopg.connect(libpq_url(url)) as conn:
        row = conn.execute(sql, (since,)).fetchone()
    return int(row[0]) if row else 0


def wait_drained(databases: Mapping[str, str], since: float, timeout: float) -> bool:
    """Wait until every outbox row written since ``since`` is published and the consumers'
    ``processed_events`` stopped growing (two readings a second apart agree); False when
    ``timeout`` passed first."""
    deadline = time.monotonic() + timeout
    previous = -1
    while time.monotonic() < deadline:
        pending = sum(unpublished_count(url, since) for url in databases.values())
        processed = sum(
            len(events)
            for url in databases.values()
            for events in fetch_processed(url, since).values()
        )
        if pending == 0 and processed == previous:
            return True
        previous = processed
        time.sleep(1.0)
    return False


def arrivals_by_consumer(
    databases: Mapping[str, str], since: float
) -> tuple[dict[str, Produced], dict[str, dict[str, float]]]:
    """Every outbox row since ``since`` (all producers), and per consumer ``<service>/<group>``
    (plus ``outbox relay`` for publishing) when each event arrived."""
    produced: dict[str, Produced] = {}
    arrivals: dict[str, dict[str, float]] = {}
    for service, url in sorted(databases.items()):
        produced.update(fetch_outbox(url, since))
        for group, events in fetch_processed(url, since).items():
            arrivals[f"{service}/{group}"] = events
    arrivals["outbox relay (published)"] = {
        event_id: row.published_at for event_id, row in produced.items() if row.published_at
    }
    return produced, arrivals


def lag_summary(
    produced: Mapping[str, Produced],
    arrivals: Mapping[str, Mapping[str, float]],
    window: tuple[float, float] | None = None,
) -> dict[str, dict[str, object]]:
    """Per consumer: the topics it got, how many events, and the lag p50/p95/p99 in ms of the
    events produced within ``window`` (epoch seconds, inclusive; ``None``: all of them)."""
    out: dict[str, dict[str, object]] = {}
    for consumer, events in sorted(arrivals.items()):
        lags: list[float] = []
        topics: set[str] = set()
        for event_id, arrived in events.items():
            row = produced.get(event_id)
            if row is None:
                continue
            if window is not None and not window[0] <= row.created_at <= window[1]:
                continue
            lags.append(max(0.0, arrived - row.created_at) * 1000)
            topics.add(row.topic)
        if lags:
            out[consumer] = {
                "topics": sorted(topics),
                "events": len(lags),
                **{f"{k}_ms": v for k, v in summary(lags).items()},
            }
    return out
