"""A smoke run of ``mint bench`` against the end-to-end suite's platform: one scenario, one
client, 2 s. It asserts a well-formed report, no errors and clean ledger invariants — never a
time or a rate (README "Benchmarks"; ``make bench`` is the real run)."""

from __future__ import annotations

import json
from pathlib import Path

from mint.bench.platform import Target
from mint.bench.report import REPORT_KEYS, RUN_KEYS, failed
from mint.bench.run import BENCH_CONSUMER, BenchOptions, run_bench
from mint.dev.platform import Platform
from mint.infra import EmbeddedInfra


def test_bench_smoke_run(platform: Platform, embedded_infra: EmbeddedInfra, tmp_path: Path) -> None:
    lines: list[str] = []
    options = BenchOptions(
        duration_s=2,
        clients=(1,),
        scenarios=("transfer-pairs",),
        targets=("gateway",),
        start_times=False,
        results_dir=tmp_path / "bench-results",
    )
    report = run_bench(options, Target(platform, embedded_infra), progress=lines.append)

    assert set(REPORT_KEYS) <= set(report)
    [run] = report["runs"]
    assert set(RUN_KEYS) <= set(run)
    assert (run["scenario"], run["target"], run["clients"]) == ("transfer-pairs", "gateway", 1)
    assert run["ok"] > 0 and run["per_second"] > 0 and run["errors"] == 0, run["error_samples"]
    assert all(run["latency_ms"][p] is not None for p in ("p50", "p95", "p99"))
    # every implemented service is measured, and the gateway thread of this process
    assert {"auth", "wallet", "transactions", "gateway", "sum"} <= set(run["cpu_ms_per_ok"])
    assert run["cpu_ms_per_ok"]["sum"] > 0 and run["cpu_ms_per_ok"]["transactions"] > 0
    assert run["peak_memory_mib"]["transactions"] > 0
    assert report["memory_mib"]["at_rest"]["total"] > 0
    # the raw PostgreSQL anchor ran the transfer-shaped script
    assert report["pgbench_tps"]["1"] > 0 and run["ratio_to_pgbench"] > 0
    # the bench's own consumer saw the run's transfers on transaction.events
    assert run["event_lag"][BENCH_CONSUMER]["events"] > 0
    assert report["invariants"]["ok"], report["invariants"]["violations"]
    assert report["invariants"]["counts"]["transactions"] >= run["ok"]
    assert not failed(report)

    [json_path] = (tmp_path / "bench-results").glob("*.json")
    assert json.loads(json_path.read_text())["runs"][0]["ok"] == run["ok"]
    markdown = json_path.with_suffix(".md").read_text()
    assert any(
        line.startswith("| transfer-pairs | gateway | 1 |") for line in markdown.splitlines()
    )
    assert "[bench] transfer-pairs gateway 1 clients: 2 s …" in lines
