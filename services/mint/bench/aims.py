"""The aims of issue 9, judged against a report: printed, never asserted (a bench fails only on
errors or broken invariants). Each aim reads one figure of the report; a figure the run did not
measure (another client count, ``--no-start-times``) leaves its aim "not measured"."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Report = Mapping[str, Any]


def _run(report: Report, scenario: str, target: str, clients: int) -> Mapping[str, Any] | None:
    for run in report["runs"]:
        if (run["scenario"], run["target"], run["clients"]) == (scenario, target, clients):
            found: Mapping[str, Any] = run
            return found
    return None


def _pairs(report: Report, clients: int) -> Mapping[str, Any] | None:
    return _run(report, "transfer-pairs", "gateway", clients)


def _rate_8(report: Report) -> float | None:
    run = _pairs(report, 8)
    return None if run is None else float(run["per_second"])


def _p99_8(report: Report) -> float | None:
    run = _pairs(report, 8)
    return None if run is None else run["latency_ms"]["p99"]


def _p50_1(report: Report) -> float | None:
    run = _pairs(report, 1)
    return None if run is None else run["latency_ms"]["p50"]


def _ratio_8(report: Report) -> float | None:
    run = _pairs(report, 8)
    return None if run is None else run["ratio_to_pgbench"]


def _cpu_8(report: Report) -> float | None:
    run = _pairs(report, 8)
    return None if run is None else run["cpu_ms_per_ok"].get("sum")


def _topups_share_8(report: Report) -> float | None:
    pairs, topups = _pairs(report, 8), _run(report, "topup-many", "gateway", 8)
    if pairs is None or topups is None or not pairs["per_second"]:
        return None
    return float(topups["per_second"]) / float(pairs["per_second"])


def _largest_at_rest(report: Report) -> float | None:
    at_rest = {k: v for k, v in report["memory_mib"]["at_rest"].items() if k != "total"}
    return max(at_rest.values()) if at_rest else None


def _warm_start(report: Report) -> float | None:
    warm = report["start_times"].get("warm_s")
    return None if warm is None else float(warm)


@dataclass(frozen=True)
class Aim:
    what: str
    unit: str
    bound: float
    at_least: bool  # True: the figure must reach the bound; False: stay within it
    figure: Callable[[Report], float | None]

    def judge(self, report: Report) -> dict[str, Any]:
        value = self.figure(report)
        met = (
            None
            if value is None
            else (value >= self.bound if self.at_least else value <= self.bound)
        )
        return {
            "aim": f"{self.what} {'≥' if self.at_least else '≤'} {self.bound:g}{self.unit}",
            "value": value,
            "met": met,
        }


AIMS = (
    Aim("transfers/s, 8 clients, gateway", "", 300, True, _rate_8),
    Aim("p99, 8 clients, gateway", " ms", 100, False, _p99_8),
    Aim("p50, 1 client, gateway", " ms", 15, False, _p50_1),
    Aim("ratio to raw PostgreSQL, 8 clients", "", 0.10, True, _ratio_8),
    Aim("CPU per transfer, services + gateway, 8 clients", " ms", 3, False, _cpu_8),
    Aim("top-ups/s as a share of transfers/s, 8 clients", "", 0.8, True, _topups_share_8),
    Aim("largest service resident at rest", " MiB", 120, False, _largest_at_rest),
    Aim("warm start", " s", 15, False, _warm_start),
)


def judge(report: Report) -> list[dict[str, Any]]:
    return [aim.judge(report) for aim in AIMS]
