"""The load generator, a process of its own (``python -m mint.bench.load``) so it never shares a
GIL with the gateway, which runs as a thread of the bench's process.

Protocol: the parent writes one line of JSON (a :class:`LoadPlan`) to stdin; the generator opens
one keep-alive connection per client (asyncio + aiohttp, one request in flight per client),
warms each connection up with one untimed GET, prints ``ready`` and waits for a ``go`` line, so
the parent can read its probes just before the measured window. It then drives every client in a
closed loop for ``duration_s`` and prints one line of JSON (a :class:`LoadResult`).

Every request carries a fresh ``Idempotency-Key``. Answers are classified 2xx ``ok``, 429 and
422 ``refused`` (business refusals: the per-user bound, a limit), anything else — and a request
that got no answer — ``errors``. Latencies are those of ``ok`` answers.
"""

from __future__ import annotations

import asyncio
import json
import resource
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import IO, Any

READY = "ready"
GO = "go"
REFUSAL_STATUSES = frozenset({422, 429})
SAMPLES_KEPT = 5
SAMPLE_CHARS = 400
REQUEST_TIMEOUT_S = 30.0


def classify(status: int) -> str:
    """``ok``, ``refused`` or ``errors``: the counter an answer with ``status`` goes to."""
    if 200 <= status < 300:
        return "ok"
    if status in REFUSAL_STATUSES:
        return "refused"
    return "errors"


@dataclass(frozen=True)
class ClientPlan:
    """One client: who it is and the request it repeats (a fresh key each time)."""

    token: str
    path: str
    body: dict[str, Any]


@dataclass(frozen=True)
class LoadPlan:
    base_url: str
    duration_s: float
    #: GET-ed once per client, untimed, to open its connection before the measured window
    warmup_path: str
    clients: list[ClientPlan]

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> LoadPlan:
        raw = json.loads(text)
        return cls(
            base_url=raw["base_url"],
            duration_s=float(raw["duration_s"]),
            warmup_path=raw["warmup_path"],
            clients=[ClientPlan(**client) for client in raw["clients"]],
        )


@dataclass
class LoadResult:
    elapsed_s: float = 0.0
    started_at: float = 0.0  # epoch seconds: the measured window, for the event-lag join
    finished_at: float = 0.0
    ok: int = 0
    refused: int = 0
    errors: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    error_samples: list[str] = field(default_factory=list)
    refusal_samples: list[str] = field(default_factory=list)
    #: CPU seconds the generator itself spent in the window (it must stay cheap)
    generator_cpu_s: float = 0.0

    def record(self, status: int, latency_ms: float, body: str) -> None:
        kind = classify(status)
        self.statuses[str(status)] = self.statuses.get(str(status), 0) + 1
        if kind == "ok":
            self.ok += 1
            self.latencies_ms.append(latency_ms)
            return
        sample = f"{status} {body[:SAMPLE_CHARS]}"
        if kind == "refused":
            self.refused += 1
            if len(self.refusal_samples) < SAMPLES_KEPT:
                self.refusal_samples.append(sample)
        else:
            self.errors += 1
            if len(self.error_samples) < SAMPLES_KEPT:
                self.error_samples.append(sample)

    def record_failure(self, what: str) -> None:
        """A request that got no answer (connection refused, reset, timed out)."""
        self.errors += 1
        self.statuses["no_answer"] = self.statuses.get("no_answer", 0) + 1
        if len(self.error_samples) < SAMPLES_KEPT:
            self.error_samples.append(f"no answer: {what[:SAMPLE_CHARS]}")

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> LoadResult:
        return cls(**json.loads(text))


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _generate(plan: LoadPlan, stdin: IO[str], stdout: IO[str]) -> LoadResult:
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    sessions = [
        aiohttp.ClientSession(
            base_url=plan.base_url,
            connector=aiohttp.TCPConnector(limit=1, keepalive_timeout=300),
            timeout=timeout,
            headers={"Authorization": f"Bearer {client.token}"},
        )
        for client in plan.clients
    ]
    result = LoadResult()
    try:
        for session in sessions:
            async with session.get(plan.warmup_path) as answer:
                await answer.read()
        print(READY, file=stdout, flush=True)
        line = await asyncio.get_running_loop().run_in_executor(None, stdin.readline)
        if line.strip() != GO:
            raise SystemExit(f"load generator: expected {GO!r}, got {line!r}")
        cpu_start = _cpu_seconds()
        result.started_at = time.time()
        start = time.perf_counter()
        deadline = start + plan.duration_s
        await asyncio.gather(
            *(
                _drive(session, client, deadline, result)
                for session, client in zip(sessions, plan.clients, strict=True)
            )
        )
        result.elapsed_s = time.perf_counter() - start
        result.finished_at = time.time()
        result.generator_cpu_s = _cpu_seconds() - cpu_start
    finally:
        for session in sessions:
            await session.close()
    return result


async def _drive(session: Any, client: ClientPlan, deadline: float, result: LoadResult) -> None:
    import aiohttp

    body = json.dumps(client.body).encode()
    while time.perf_counter() < deadline:
        headers = {"Idempotency-Key": str(uuid.uuid4()), "Content-Type": "application/json"}
        sent = time.perf_counter()
        try:
            async with session.post(client.path, data=body, headers=headers) as answer:
                text = await answer.text()
                result.record(answer.status, (time.perf_counter() - sent) * 1000, text)
        except (aiohttp.ClientError, TimeoutError) as exc:
            result.record_failure(f"{type(exc).__name__}: {exc}")


def main() -> None:
    plan = LoadPlan.from_json(sys.stdin.readline())
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # the standard loop is fine, only a little more expensive
        pass
    result = asyncio.run(_generate(plan, sys.stdin, sys.stdout))
    print(result.to_json(), flush=True)


class LoadProcess:
    """The parent's side: start the generator with a plan, say go, collect the result."""

    def __init__(self, plan: LoadPlan, *, ready_timeout: float = 60.0) -> None:
        self.plan = plan
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "mint.bench.load"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(plan.to_json() + "\n")
        self._proc.stdin.flush()
        try:
            line = read_line(self._proc.stdout, ready_timeout)
        except TimeoutError:
            line = "(nothing)"
        if line.strip() != READY:
            self.kill()
            raise RuntimeError(f"load generator did not get ready: {line!r}")

    def go(self) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write(GO + "\n")
        self._proc.stdin.flush()

    def result(self) -> LoadResult:
        assert self._proc.stdout is not None
        wait = self.plan.duration_s + REQUEST_TIMEOUT_S + 30
        try:
            line = read_line(self._proc.stdout, wait)
            self._proc.wait(10)
        finally:
            self.kill()
        if not line.strip():
            raise RuntimeError(f"load generator ended without a result (exit {self._proc.poll()})")
        return LoadResult.from_json(line)

    def kill(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait(5)


def read_line(stream: IO[str], timeout: float) -> str:
    """One line of ``stream``, or an error after ``timeout`` seconds (a hung child)."""
    import selectors

    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise TimeoutError(f"no answer from the load generator within {timeout:.0f}s")
    return stream.readline()


if __name__ == "__main__":
    main()
