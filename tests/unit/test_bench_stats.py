"""mint bench's pure pieces: percentiles, answer classification, pgbench output, event lag."""

from __future__ import annotations

import random

import pytest

from mint.bench.eventlag import Produced, lag_summary, libpq_url
from mint.bench.load import ClientPlan, LoadPlan, LoadResult, classify
from mint.bench.pgbench import parse_tps
from mint.bench.platform import BenchUser
from mint.bench.run import BenchOptions, client_plans, per_ok_ms
from mint.bench.stats import percentile, summary


def test_percentiles_are_nearest_rank() -> None:
    samples = [float(n) for n in range(100, 0, -1)]  # unsorted on purpose
    assert percentile(samples, 50) == 50.0
    assert percentile(samples, 95) == 95.0
    assert percentile(samples, 99) == 99.0
    assert percentile(samples, 100) == 100.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([1.0, 2.0, 3.0], 50) == 2.0
    assert summary([]) == {"p50": None, "p95": None, "p99": None}
    assert summary([3.0, 1.0, 2.0, 4.0]) == {"p50": 2.0, "p95": 4.0, "p99": 4.0}
    with pytest.raises(ValueError):
        percentile(samples, 0)


def test_answers_are_ok_refusals_or_errors() -> None:
    assert [classify(s) for s in (200, 201, 299)] == ["ok"] * 3
    assert [classify(s) for s in (429, 422)] == ["refused"] * 2
    assert [classify(s) for s in (400, 401, 404, 409, 500, 503)] == ["errors"] * 6

    result = LoadResult()
    result.record(201, 12.5, "{}")
    for _ in range(7):
        result.record(429, 1.0, '{"code": "too_many_requests"}')
        result.record(503, 1.0, '{"code": "dependency_unavailable"}')
    result.record_failure("ServerDisconnectedError")
    assert (result.ok, result.refused, result.errors) == (1, 7, 8)
    assert result.latencies_ms == [12.5]  # only ok answers are timed
    assert result.statuses == {"201": 1, "429": 7, "503": 7, "no_answer": 1}
    assert len(result.error_samples) == len(result.refusal_samples) == 5  # samples are capped
    assert result.refusal_samples[0].startswith("429 ")
    assert LoadResult.from_json(result.to_json()) == result


def test_a_load_plan_survives_the_pipe() -> None:
    plan = LoadPlan(
        "http://127.0.0.1:1", 2.5, "/warm", [ClientPlan("t", "/p", {"amount": 1, "x": "y"})]
    )
    assert LoadPlan.from_json(plan.to_json()) == plan


def test_pgbench_tps_is_read_without_connection_time() -> None:
    output = (
        "number of transactions actually processed: 7391\n"
        "latency average = 1.352 ms\n"
        "initial connection time = 4.112 ms\n"
        "tps = 739.512345 (without initial connection time)\n"
    )
    assert parse_tps(output) == pytest.approx(739.512345)
    with pytest.raises(ValueError):
        parse_tps("pgbench: error: connection refused\n")


def test_libpq_url_drops_the_sqlalchemy_driver() -> None:
    assert libpq_url("postgresql+psycopg://u:p@127.0.0.1:5/db") == "postgresql://u:p@127.0.0.1:5/db"
    assert libpq_url("postgresql://u:p@h/db") == "postgresql://u:p@h/db"


def test_lag_is_measured_per_consumer_within_the_window() -> None:
    produced = {
        "e1": Produced("transaction.events", 100.0, 100.010),
        "e2": Produced("transaction.events", 101.0, 101.020),
        "e3": Produced("wallet.events", 200.0, None),  # outside the window below
    }
    arrivals = {
        "wallet/transactions": {"e1": 100.050, "e2": 101.100, "e3": 200.5, "unknown": 1.0},
        "clock skew": {"e1": 99.0},  # never negative
    }
    everything = lag_summary(produced, arrivals)
    assert everything["wallet/transactions"]["events"] == 3
    assert everything["wallet/transactions"]["topics"] == ["transaction.events", "wallet.events"]
    windowed = lag_summary(produced, arrivals, (99.0, 150.0))
    assert windowed["wallet/transactions"]["events"] == 2
    assert windowed["wallet/transactions"]["p50_ms"] == pytest.approx(50.0)
    assert windowed["wallet/transactions"]["p99_ms"] == pytest.approx(100.0)
    assert windowed["clock skew"]["p50_ms"] == 0.0
    assert "nobody" not in lag_summary(produced, {"nobody": {}})


def _users(n: int) -> list[BenchUser]:
    return [BenchUser(id=f"user-{i}", token=f"token-{i}") for i in range(n)]


def test_transfer_pairs_give_each_client_its_own_pair() -> None:
    users = _users(BenchOptions(clients=(1, 8)).users_needed)
    plans = client_plans("transfer-pairs", users, 8, random.Random(1))
    senders = [p.token for p in plans]
    recipients = [p.body["recipient_id"] for p in plans]
    assert len(set(senders)) == 8 and len(set(recipients)) == 8
    assert not {s.replace("token", "user") for s in senders} & set(recipients)
    assert all(p.path.endswith("/transfer") and p.body["amount"] == 1 for p in plans)
    # the seed picks the users: the same seed, the same pairs
    assert client_plans("transfer-pairs", users, 8, random.Random(1)) == plans


def test_one_sender_and_many_topups() -> None:
    users = _users(16)
    one = client_plans("transfer-one-sender", users, 8, random.Random(2))
    assert len({p.token for p in one}) == 1
    assert len({p.body["recipient_id"] for p in one}) == 8
    assert one[0].token.replace("token", "user") not in {p.body["recipient_id"] for p in one}
    topups = client_plans("topup-many", users, 8, random.Random(3))
    assert len({p.token for p in topups}) == 8
    assert all(p.path.endswith("/topup") and "recipient_id" not in p.body for p in topups)
    with pytest.raises(ValueError):
        client_plans("nonsense", users, 1, random.Random(1))


def test_options_are_checked() -> None:
    with pytest.raises(ValueError):
        BenchOptions(scenarios=("transfer-pairs", "teleport"))
    with pytest.raises(ValueError):
        BenchOptions(targets=("sideways",))
    with pytest.raises(ValueError):
        BenchOptions(clients=(0,))
    assert per_ok_ms({"wallet": 0.5, "sum": 1.0}, 100) == {"wallet": 5.0, "sum": 10.0}
    assert per_ok_ms({"wallet": 0.5}, 0) == {"wallet": None}


def test_the_command_refuses_unknown_scenarios_before_starting_anything() -> None:
    from typer.testing import CliRunner

    from mint.cli import app

    answer = CliRunner().invoke(app, ["bench", "--scenarios", "transfer-pairs,teleport"])
    assert answer.exit_code == 2
    assert "teleport" in answer.output
    answer = CliRunner().invoke(app, ["bench", "--clients", "1,eight"])
    assert answer.exit_code == 2
