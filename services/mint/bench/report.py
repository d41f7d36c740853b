"""The bench's report: one JSON document and a Markdown rendering of it (pure functions of the
document, so they are tested without a platform)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from mint.bench.probes import GATEWAY

#: keys every run of the JSON report has (the smoke test checks them)
RUN_KEYS = (
    "scenario",
    "target",
    "clients",
    "elapsed_s",
    "ok",
    "refused",
    "errors",
    "per_second",
    "latency_ms",
    "cpu_ms_per_ok",
    "peak_memory_mib",
    "event_lag",
    "pgbench_tps",
    "ratio_to_pgbench",
)
#: top-level keys of the JSON report
REPORT_KEYS = (
    "started_at",
    "finished_at",
    "options",
    "machine",
    "runs",
    "pgbench_tps",
    "memory_mib",
    "event_lag",
    "start_times",
    "invariants",
    "aims",
)


def _num(value: object, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, int | float):
        return f"{value:,.{digits}f}".replace(",", " ")
    return str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right_from: int = 0) -> list[str]:
    align = ["---" if i < right_from else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def service_names(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """The services whose CPU the runs measured, in a stable order (the gateway and the sum are
    columns of their own)."""
    names: set[str] = set()
    for run in runs:
        names.update(run["cpu_ms_per_ok"])
    return sorted(names - {GATEWAY, "sum"})


def runs_table(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    services = service_names(runs)
    header = [
        "scenario", "target", "clients", "ok/s", "p50 ms", "p95 ms", "p99 ms",
        "ok", "refused", "errors",
        *(f"CPU ms/ok {s}" for s in services), "CPU ms/ok gateway", "CPU ms/ok sum",
        "pgbench TPS", "ratio",
    ]  # fmt: skip
    rows = []
    for run in runs:
        cpu = run["cpu_ms_per_ok"]
        latency = run["latency_ms"]
        rows.append(
            [
                run["scenario"],
                run["target"],
                str(run["clients"]),
                _num(run["per_second"]),
                _num(latency["p50"]),
                _num(latency["p95"]),
                _num(latency["p99"]),
                str(run["ok"]),
                str(run["refused"]),
                str(run["errors"]),
                *(_num(cpu.get(s)) for s in services),
                _num(cpu.get(GATEWAY)),
                _num(cpu.get("sum")),
                _num(run["pgbench_tps"], 0),
                _num(run["ratio_to_pgbench"], 3),
            ]
        )
    return _table(header, rows, right_from=2)


def memory_table(memory: Mapping[str, Mapping[str, float]]) -> list[str]:
    at_rest, peak = memory.get("at_rest", {}), memory.get("peak", {})
    names = sorted((set(at_rest) | set(peak)) - {"total"})
    rows = [[name, _num(at_rest.get(name)), _num(peak.get(name))] for name in names]
    rows.append(["**all services**", _num(at_rest.get("total")), _num(peak.get("total"))])
    return _table(["service process", "resident at rest MiB", "peak resident MiB"], rows, 1)


def lag_table(lag: Mapping[str, Mapping[str, Any]]) -> list[str]:
    rows = [
        [
            consumer,
            ", ".join(info["topics"]),
            str(info["events"]),
            _num(info["p50_ms"]),
            _num(info["p95_ms"]),
            _num(info["p99_ms"]),
        ]
        for consumer, info in lag.items()
    ]
    return _table(["consumer", "topics", "events", "p50 ms", "p95 ms", "p99 ms"], rows, 2)


def aims_table(aims: Sequence[Mapping[str, Any]]) -> list[str]:
    verdict = {True: "met", False: "not met", None: "not measured"}
    rows = [[a["aim"], _num(a["value"], 2), verdict[a["met"]]] for a in aims]
    return _table(["aim", "measured", "verdict"], rows, 1)


def render_markdown(report: Mapping[str, Any]) -> str:
    options = report["options"]
    lines = [
        f"## mint bench — {report['started_at']}",
        "",
        f"{options['duration_s']:g} s per run, seed {options['seed']}, "
        f"{report['machine']['cpus']} CPUs. ok/s: successful answers per second; latency of ok "
        "answers; CPU ms of each process per ok answer; ratio: ok/s ÷ pgbench TPS of the same "
        "ledger work at the same clients.",
        "",
        *runs_table(report["runs"]),
        "",
        "Memory (VmRSS after start; VmHWM, the peak, over the runs; the gateway runs inside "
        "the bench's process and is not counted):",
        "",
        *memory_table(report["memory_mib"]),
        "",
        "Event lag, producing transaction (its outbox row) → consumer, over the whole bench "
        "(users' setup included; each run's own in the JSON)"
        + ("" if report.get("event_lag_drained", True) else " (consumers had not drained)")
        + ":",
        "",
        *lag_table(report["event_lag"]),
        "",
    ]
    starts = report["start_times"]
    if "cold_s" in starts:
        lines.append(
            f"Start of `mint dev --free-ports` until every /readyz answers 200: "
            f"cold {starts['cold_s']:.1f} s, warm {starts['warm_s']:.1f} s."
        )
    else:
        lines.append(f"Start times: {starts.get('note', 'not measured')}.")
    if report.get("aims"):
        lines += [
            "",
            "Aims of issue 9 (reported, never asserted):",
            "",
            *aims_table(report["aims"]),
        ]
        lines.append("")
    invariants = report["invariants"]
    if invariants["ok"]:
        lines.append(f"Ledger invariants: clean ({_counts(invariants['counts'])}).")
    else:
        lines.append(f"Ledger invariants: {len(invariants['violations'])} violation(s):")
        lines += [f"- {v}" for v in invariants["violations"]]
    errors = [run for run in report["runs"] if run["errors"]]
    for run in errors:
        lines.append(
            f"Errors in {run['scenario']} {run['target']} {run['clients']}: "
            + "; ".join(run["error_samples"])
        )
    return "\n".join(lines) + "\n"


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


def failed(report: Mapping[str, Any]) -> bool:
    """A bench fails on errors or broken invariants, never on a time (quality.md)."""
    return bool(any(run["errors"] for run in report["runs"]) or not report["invariants"]["ok"])


def write(report: Mapping[str, Any], results_dir: Path, started: datetime) -> tuple[Path, Path]:
    """``<results_dir>/<UTC timestamp>.json`` and the Markdown beside it."""
    results_dir.mkdir(parents=True, exist_ok=True)
    stem = started.strftime("%Y%m%dT%H%M%SZ")
    json_path = results_dir / f"{stem}.json"
    md_path = results_dir / f"{stem}.md"
    json_path.write_text(json.dumps(report, indent=2, sort_keys=False) + "\n")
    md_path.write_text(render_markdown(report))
    return json_path, md_path
