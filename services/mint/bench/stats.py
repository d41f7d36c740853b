"""Percentiles of latency samples (pure)."""

from __future__ import annotations

import math
from collections.abc import Sequence

#: The percentiles every latency summary reports.
PERCENTILES = (50, 95, 99)


def percentile(samples: Sequence[float], p: float) -> float | None:
    """The ``p``-th percentile by the nearest-rank method (the smallest sample with at least
    ``p`` % of the samples at or below it); ``None`` without samples."""
    if not 0 < p <= 100:
        raise ValueError(f"percentile {p} is outside (0, 100]")
    if not samples:
        return None
    ordered = sorted(samples)
    rank = math.ceil(p / 100 * len(ordered))
    return ordered[max(rank, 1) - 1]


def summary(samples: Sequence[float]) -> dict[str, float | None]:
    """``{"p50": …, "p95": …, "p99": …}`` of ``samples`` (``None`` when there are none)."""
    ordered = sorted(samples)
    return {f"p{p}": percentile(ordered, p) for p in PERCENTILES}
