"""mint bench's report: the Markdown table rendered from the JSON document, and when a bench
fails (errors or broken invariants, never a time)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mint.bench.aims import judge
from mint.bench.report import REPORT_KEYS, RUN_KEYS, failed, render_markdown, write


def _run(scenario: str, target: str, clients: int, **overrides: Any) -> dict[str, Any]:
    run: dict[str, Any] = {
        "scenario": scenario,
        "target": target,
        "clients": clients,
        "elapsed_s": 10.0,
        "ok": 3120,
        "refused": 0,
        "errors": 0,
        "per_second": 312.04,
        "latency_ms": {"p50": 21.5, "p95": 48.25, "p99": 90.0},
        "cpu_ms_per_ok": {"transactions": 1.25, "wallet": 0.75, "gateway": 0.5, "sum": 2.5},
        "peak_memory_mib": {"transactions": 110.0, "wallet": 100.0, "total": 210.0},
        "event_lag": {},
        "pgbench_tps": 2900.0,
        "ratio_to_pgbench": 0.1076,
        "error_samples": [],
    }
    run.update(overrides)
    return run


def _report(**overrides: Any) -> dict[str, Any]:
    report: dict[str, Any] = {
        "started_at": "2026-11-30T17:00:00+00:00",
        "finished_at": "2026-11-30T17:10:00+00:00",
        "options": {"duration_s": 10.0, "seed": 1},
        "machine": {"cpus": 2},
        "runs": [
            _run("transfer-pairs", "gateway", 8),
            _run(
                "topup-many",
                "direct",
                1,
                ok=0,
                per_second=0.0,
                latency_ms={"p50": None, "p95": None, "p99": None},
                cpu_ms_per_ok={"transactions": None, "wallet": None, "sum": None},
                pgbench_tps=None,
                ratio_to_pgbench=None,
            ),
        ],
        "pgbench_tps": {"8": 2900.0},
        "memory_mib": {
            "at_rest": {"transactions": 95.5, "wallet": 90.0, "total": 185.5},
            "peak": {"transactions": 110.0, "wallet": 100.0, "total": 210.0},
        },
        "event_lag": {
            "bench consumer (transaction.events)": {
                "topics": ["transaction.events"],
                "events": 3120,
                "p50_ms": 12.0,
                "p95_ms": 30.0,
                "p99_ms": 55.5,
            }
        },
        "event_lag_drained": True,
        "start_times": {"cold_s": 41.0, "warm_s": 14.5},
        "invariants": {"ok": True, "violations": [], "counts": {"entries": 3120}},
        "aims": [],
    }
    report.update(overrides)
    return report


def test_markdown_has_one_row_per_run_and_every_section() -> None:
    text = render_markdown(_report())
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("| scenario |"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    assert columns[:4] == ["scenario", "target", "clients", "ok/s"]
    assert "CPU ms/ok transactions" in columns and "CPU ms/ok wallet" in columns
    assert columns[-3:] == ["CPU ms/ok sum", "pgbench TPS", "ratio"]
    pairs = next(line for line in lines if line.startswith("| transfer-pairs |"))
    cells = [c.strip() for c in pairs.strip("|").split("|")]
    assert len(cells) == len(columns)
    assert cells[:7] == ["transfer-pairs", "gateway", "8", "312.0", "21.5", "48.2", "90.0"]
    assert cells[-4:] == ["0.5", "2.5", "2 900", "0.108"]
    topups = next(line for line in lines if line.startswith("| topup-many |"))
    assert topups.count("| - |") >= 5  # nothing measured shows as "-", not 0
    assert "| **all services** | 185.5 | 210.0 |" in lines
    assert any(line.startswith("| bench consumer (transaction.events) |") for line in lines)
    assert "cold 41.0 s, warm 14.5 s" in text
    assert "Ledger invariants: clean (entries 3120)." in text


def test_violations_and_errors_are_listed_and_fail_the_bench() -> None:
    assert not failed(_report())
    broken = _report(
        invariants={"ok": False, "violations": ["balance_matches: user:x"], "counts": {}}
    )
    assert failed(broken)
    assert "- balance_matches: user:x" in render_markdown(broken)
    erring = _report(runs=[_run("transfer-pairs", "gateway", 8, errors=2, error_samples=["503 x"])])
    assert failed(erring)
    assert "Errors in transfer-pairs gateway 8: 503 x" in render_markdown(erring)
    # refusals (429 from the per-user bound) are not errors
    assert not failed(_report(runs=[_run("transfer-one-sender", "gateway", 8, refused=900)]))
    skipped = render_markdown(_report(start_times={"note": "not measured (--no-start-times)"}))
    assert "Start times: not measured (--no-start-times)." in skipped


def test_results_are_written_as_json_and_markdown(tmp_path: Path) -> None:
    report = _report()
    json_path, md_path = write(
        report, tmp_path / "bench-results", datetime(2026, 11, 30, 17, 5, 9, tzinfo=UTC)
    )
    assert json_path.name == "20261130T170509Z.json" and md_path.name == "20261130T170509Z.md"
    assert json.loads(json_path.read_text()) == report
    assert md_path.read_text() == render_markdown(report)
    assert set(REPORT_KEYS) <= set(report) and set(RUN_KEYS) <= set(report["runs"][0])


def test_aims_are_judged_from_the_report_and_rendered() -> None:
    verdicts = {a["aim"]: (a["value"], a["met"]) for a in judge(_report())}
    assert verdicts["transfers/s, 8 clients, gateway ≥ 300"] == (312.04, True)
    assert verdicts["p99, 8 clients, gateway ≤ 100 ms"] == (90.0, True)
    assert verdicts["CPU per transfer, services + gateway, 8 clients ≤ 3 ms"] == (2.5, True)
    assert verdicts["ratio to raw PostgreSQL, 8 clients ≥ 0.1"] == (0.1076, True)
    assert verdicts["largest service resident at rest ≤ 120 MiB"] == (95.5, True)
    assert verdicts["warm start ≤ 15 s"] == (14.5, True)
    # no 1-client run and no top-up run at 8 clients in this report
    assert verdicts["p50, 1 client, gateway ≤ 15 ms"] == (None, None)
    assert verdicts["top-ups/s as a share of transfers/s, 8 clients ≥ 0.8"] == (None, None)

    slow = _report(
        runs=[
            _run("transfer-pairs", "gateway", 8, per_second=20.0),
            _run("topup-many", "gateway", 8, per_second=10.0),
        ],
        start_times={"note": "not measured (--no-start-times)"},
    )
    verdicts = {a["aim"]: (a["value"], a["met"]) for a in judge(slow)}
    assert verdicts["transfers/s, 8 clients, gateway ≥ 300"] == (20.0, False)
    assert verdicts["top-ups/s as a share of transfers/s, 8 clients ≥ 0.8"] == (0.5, False)
    assert verdicts["warm start ≤ 15 s"] == (None, None)
    text = render_markdown({**slow, "aims": judge(slow)})
    assert "| transfers/s, 8 clients, gateway ≥ 300 | 20.00 | not met |" in text
    assert "| warm start ≤ 15 s | - | not measured |" in text
