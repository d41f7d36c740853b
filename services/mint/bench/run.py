"""Orchestration: the platform, its users, the raw PostgreSQL anchor, one measured run per
scenario x target x clients, then event lag, the ledger audit and the report."""

from __future__ import annotations

import os
import platform as host
import random
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mint.bench import aims, eventlag, pgbench, starts
from mint.bench.lag_consumer import LagConsumerProcess
from mint.bench.load import ClientPlan, LoadPlan, LoadProcess, LoadResult
from mint.bench.platform import (
    BenchUser,
    Progress,
    Target,
    create_funded_users,
    own_platform,
    remove_scratch,
    scratch_directory,
)
from mint.bench.probes import ProcessProbe, cpu_delta, gateway_thread_id, with_sum
from mint.bench.report import render_markdown, write
from mint.bench.stats import summary

SCENARIOS = ("transfer-pairs", "transfer-one-sender", "topup-many")
TARGETS = ("gateway", "direct")
TRANSFER_PATH = "/api/v1/transactions/transfer"
TOPUP_PATH = "/api/v1/transactions/topup"
#: GET-ed once per connection before the window: answered by transactions on both targets
WARMUP_PATH = "/api/v1/transactions?limit=1"
FUNDING = 100_000_000  # minor units each user starts with: far more than the runs move
LAG_TOPIC = "transaction.events"
BENCH_CONSUMER = f"bench consumer ({LAG_TOPIC})"
DRAIN_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class BenchOptions:
    duration_s: float = 10.0
    clients: tuple[int, ...] = (1, 8, 32)
    scenarios: tuple[str, ...] = SCENARIOS
    targets: tuple[str, ...] = TARGETS
    seed: int = 1
    start_times: bool = True
    pgbench: bool = True
    results_dir: Path = Path("bench-results")

    def __post_init__(self) -> None:
        unknown = (set(self.scenarios) - set(SCENARIOS)) | (set(self.targets) - set(TARGETS))
        if unknown:
            raise ValueError(f"unknown scenarios or targets {sorted(unknown)}")
        if not self.clients or min(self.clients) < 1:
            raise ValueError("client counts must be at least 1")
        if self.duration_s <= 0:
            raise ValueError("the duration must be positive")

    @property
    def users_needed(self) -> int:
        """transfer-pairs takes two users per client, transfer-one-sender one sender and a
        recipient per client, topup-many one user per client."""
        return 2 * max(self.clients)


@dataclass
class RunRecord:
    scenario: str
    target: str
    clients: int
    elapsed_s: float
    window: tuple[float, float]  # epoch seconds of the measured window
    ok: int
    refused: int
    errors: int
    statuses: dict[str, int]
    per_second: float
    latency_ms: dict[str, float | None]
    cpu_ms_per_ok: dict[str, float | None]
    cpu_s: dict[str, float]
    peak_memory_mib: dict[str, float]
    generator_cpu_s: float
    error_samples: list[str]
    refusal_samples: list[str]
    pgbench_tps: float | None = None
    ratio_to_pgbench: float | None = None
    event_lag: dict[str, dict[str, object]] = field(default_factory=dict)


def client_plans(
    scenario: str, users: list[BenchUser], clients: int, rng: random.Random
) -> list[ClientPlan]:
    """Who each client is and what it repeats: ``transfer-pairs`` each client its own sender →
    recipient pair, ``transfer-one-sender`` every client from one wallet (to a recipient each),
    ``topup-many`` each client another user topping up. The seed picks the users."""
    chosen = rng.sample(users, min(len(users), 2 * clients))
    one_cent = {"amount": 1, "currency": "USD", "description": "bench"}
    if scenario == "transfer-pairs":
        return [
            ClientPlan(
                token=chosen[2 * i].token,
                path=TRANSFER_PATH,
                body={**one_cent, "recipient_id": chosen[2 * i + 1].id},
            )
            for i in range(clients)
        ]
    if scenario == "transfer-one-sender":
        sender, recipients = chosen[0], chosen[1 : clients + 1]
        return [
            ClientPlan(
                token=sender.token, path=TRANSFER_PATH, body={**one_cent, "recipient_id": r.id}
            )
            for r in recipients
        ]
    if scenario == "topup-many":
        return [ClientPlan(token=u.token, path=TOPUP_PATH, body=one_cent) for u in chosen[:clients]]
    raise ValueError(f"unknown scenario {scenario}")


def per_ok_ms(cpu_s: Mapping[str, float], ok: int) -> dict[str, float | None]:
    """CPU milliseconds per successful answer, per process, and their sum."""
    return {name: (seconds * 1000 / ok if ok else None) for name, seconds in cpu_s.items()}


def measure_run(
    target: Target,
    probe: ProcessProbe,
    scenario: str,
    target_name: str,
    clients: int,
    plans: list[ClientPlan],
    duration_s: float,
) -> RunRecord:
    base_url = target.gateway_url if target_name == "gateway" else target.transactions_url
    load = LoadProcess(LoadPlan(base_url, duration_s, WARMUP_PATH, plans))
    try:
        probe.reset_peaks()
        before = probe.cpu_seconds()
        load.go()
        result: LoadResult = load.result()
        after = probe.cpu_seconds()
    finally:
        load.kill()
    peak = probe.memory_mib("VmHWM")
    cpu_s = with_sum(cpu_delta(before, after))
    return RunRecord(
        scenario=scenario,
        target=target_name,
        clients=clients,
        elapsed_s=result.elapsed_s,
        window=(result.started_at, result.finished_at),
        ok=result.ok,
        refused=result.refused,
        errors=result.errors,
        statuses=result.statuses,
        per_second=result.ok / result.elapsed_s if result.elapsed_s else 0.0,
        latency_ms=summary(result.latencies_ms),
        cpu_ms_per_ok=per_ok_ms(cpu_s, result.ok),
        cpu_s=cpu_s,
        peak_memory_mib={**peak, "total": sum(peak.values())},
        generator_cpu_s=result.generator_cpu_s,
        error_samples=result.error_samples,
        refusal_samples=result.refusal_samples,
    )


def run_bench(
    options: BenchOptions, target: Target | None = None, progress: Progress = print
) -> dict[str, Any]:
    """Run the bench against ``target`` (a running platform) or a platform of its own, write
    the JSON and Markdown into ``options.results_dir`` and return the report."""
    started = datetime.now(UTC)
    scratch = scratch_directory()
    try:
        start_times = _start_times(options, scratch, progress)
        if target is not None:
            report = _bench(target, options, scratch, progress)
        else:
            with own_platform(scratch, progress) as own:
                report = _bench(own, options, scratch, progress)
    finally:
        remove_scratch(scratch)
    report = {
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "options": {**asdict(options), "results_dir": str(options.results_dir)},
        "machine": {
            "cpus": os.cpu_count(),
            "system": host.platform(),
            "python": host.python_version(),
        },
        **report,
        "start_times": start_times,
    }
    report["aims"] = aims.judge(report)
    json_path, md_path = write(report, options.results_dir, started)
    progress(render_markdown(report))
    progress(f"[bench] wrote {json_path} and {md_path}")
    return report


def _start_times(options: BenchOptions, scratch: Path, progress: Progress) -> dict[str, Any]:
    if not options.start_times:
        return {"note": "not measured (--no-start-times)"}
    progress("[bench] timing a cold and a warm start of `mint dev --free-ports` …")
    try:
        times = starts.cold_and_warm(scratch / "starts")
    except (RuntimeError, TimeoutError, OSError) as exc:
        progress(f"[bench] start times failed: {exc}")
        return {"note": f"failed: {exc}"}
    progress(f"[bench] cold start {times['cold_s']:.1f} s, warm start {times['warm_s']:.1f} s")
    return dict(times)


def _bench(
    target: Target, options: BenchOptions, scratch: Path, progress: Progress
) -> dict[str, Any]:
    probe = ProcessProbe(target.service_pids, gateway_thread_id())
    at_rest = probe.memory_mib("VmRSS")
    databases = dict(target.platform.databases)
    # From here on every event counts for the lag over the whole bench: the users' setup too
    # (registration → wallet creation is the consumer the runs themselves do not exercise).
    since = time.time()
    lag_consumer = LagConsumerProcess(
        target.platform.infra.kafka_bootstrap, LAG_TOPIC, scratch / "lag-consumer.log"
    )
    try:
        users = create_funded_users(target.gateway_url, options.users_needed, FUNDING, progress)
        anchor = _anchor(target, options, scratch, progress)
        runs = _runs(target, probe, users, anchor, options, progress)
        received = lag_consumer.collect()
    finally:
        lag_consumer.kill()
    progress("[bench] waiting for the consumers to drain, then reading event lag …")
    drained = eventlag.wait_drained(databases, since, DRAIN_TIMEOUT_S)
    produced, arrivals = eventlag.arrivals_by_consumer(databases, since)
    arrivals[BENCH_CONSUMER] = received
    for run in runs:
        run.event_lag = eventlag.lag_summary(produced, arrivals, run.window)
    return {
        "runs": [_run_json(run) for run in runs],
        "pgbench_tps": {str(k): v for k, v in anchor.items()},
        "memory_mib": {
            "at_rest": {**at_rest, "total": sum(at_rest.values())},
            "peak": _peak_over(runs),
        },
        "event_lag": eventlag.lag_summary(produced, arrivals),
        "event_lag_drained": drained,
        "invariants": _invariants(databases, progress),
    }


def _anchor(
    target: Target, options: BenchOptions, scratch: Path, progress: Progress
) -> dict[int, float]:
    """pgbench's TPS at each client count (none with ``--no-pgbench``)."""
    anchor: dict[int, float] = {}
    if not options.pgbench:
        return anchor
    for clients in options.clients:
        progress(f"[bench] pgbench {clients} clients: {options.duration_s:g} s …")
        anchor.update(pgbench.measure(target.infra, [clients], options.duration_s, scratch))
        progress(f"[bench] pgbench {clients} clients: {anchor[clients]:.0f} TPS")
    return anchor


def _runs(
    target: Target,
    probe: ProcessProbe,
    users: list[BenchUser],
    anchor: Mapping[int, float],
    options: BenchOptions,
    progress: Progress,
) -> list[RunRecord]:
    runs: list[RunRecord] = []
    rng = random.Random(options.seed)
    for scenario in options.scenarios:
        for target_name in options.targets:
            for clients in options.clients:
                label = f"[bench] {scenario} {target_name} {clients} clients"
                progress(f"{label}: {options.duration_s:g} s …")
                plans = client_plans(scenario, users, clients, rng)
                run = measure_run(
                    target, probe, scenario, target_name, clients, plans, options.duration_s
                )
                run.pgbench_tps = anchor.get(clients)
                if run.pgbench_tps:
                    run.ratio_to_pgbench = run.per_second / run.pgbench_tps
                runs.append(run)
                progress(
                    f"{label}: {run.per_second:.1f}/s, p50 {_ms(run.latency_ms['p50'])}, "
                    f"p99 {_ms(run.latency_ms['p99'])}, ok {run.ok}, refused {run.refused}, "
                    f"errors {run.errors}"
                )
    return runs


def _run_json(run: RunRecord) -> dict[str, Any]:
    out = asdict(run)
    out["window"] = list(run.window)
    return out


def _peak_over(runs: list[RunRecord]) -> dict[str, float]:
    """The highest peak of each service over the runs; ``total``: the highest sum in one run."""
    peak: dict[str, float] = {}
    for run in runs:
        for name, mib in run.peak_memory_mib.items():
            peak[name] = max(peak.get(name, 0.0), mib)
    return peak


def _invariants(databases: Mapping[str, str], progress: Progress) -> dict[str, Any]:
    from mint.ledger_audit import audit

    progress("[bench] checking the ledger invariants …")
    found = audit(databases["wallet"], databases["transactions"])
    return {
        "ok": found.ok,
        "violations": found.violations,
        "stuck": found.stuck,
        "in_flight": len(found.in_flight),
        "counts": found.counts,
    }


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"
