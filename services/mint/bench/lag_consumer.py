"""The bench's own consumer group on a topic, a process of its own
(``python -m mint.bench.lag_consumer <bootstrap> <topic>``): it notes when each event arrives.

It prints ``ready`` once its partitions are assigned (from then on no event is missed: it reads
from the end of each partition as of that moment), and on a ``stop`` line on stdin prints one
line of JSON, ``{ce_id: epoch seconds received}``. The lag is computed by the parent against the
producer's outbox row (:mod:`mint.bench.eventlag`).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

READY = "ready"
STOP = "stop"


def main() -> None:
    from confluent_kafka import Consumer

    from mint.kit.events.topics import ensure_topics

    bootstrap, topic = sys.argv[1], sys.argv[2]
    # stdout carries the protocol only: anything else that prints (structlog) goes to stderr
    protocol, sys.stdout = sys.stdout, sys.stderr
    # Subscribed to a topic that does not exist yet (nothing produced to it so far), a consumer
    # is assigned nothing until its next metadata refresh, minutes later: create it as its
    # producer would.
    ensure_topics(bootstrap, [topic], with_dlq=False)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"mint-bench-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "latest",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 10,  # a lag probe: deliver at once, not in batches
        }
    )
    assigned = threading.Event()

    def on_assign(_consumer: Any, partitions: list[Any]) -> None:
        if partitions:
            assigned.set()

    consumer.subscribe([topic], on_assign=on_assign)
    stop = threading.Event()

    def wait_for_stop() -> None:
        sys.stdin.readline()
        stop.set()

    threading.Thread(target=wait_for_stop, daemon=True).start()
    received: dict[str, float] = {}
    announced = False
    try:
        while not stop.is_set():
            msg = consumer.poll(0.2)
            if assigned.is_set() and not announced:
                print(READY, file=protocol, flush=True)
                announced = True
            if msg is None or msg.error():
                continue
            now = time.time()
            for header in msg.headers() or []:
                key, value = header[0], header[1]
                if key == "ce_id" and value is not None:
                    text = value.decode() if isinstance(value, bytes) else str(value)
                    received.setdefault(text, now)
    finally:
        consumer.close()
    print(json.dumps(received), file=protocol, flush=True)


class LagConsumerProcess:
    """The parent's side: start it, wait until it is assigned, stop it and collect."""

    def __init__(
        self, bootstrap: str, topic: str, log_path: Path, *, ready_timeout: float = 60.0
    ) -> None:
        from mint.bench.load import read_line

        self.log_path = log_path
        with log_path.open("ab") as log:  # librdkafka's own logging goes there
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "mint.bench.lag_consumer", bootstrap, topic],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        assert self._proc.stdout is not None
        try:
            line = read_line(self._proc.stdout, ready_timeout)
        except TimeoutError:
            line = "(nothing)"
        if line.strip() != READY:
            self.kill()
            raise RuntimeError(
                f"the bench's consumer of {topic} got no partitions within {ready_timeout:.0f}s "
                f"(said {line.strip()!r}); see {log_path}"
            )

    def collect(self) -> dict[str, float]:
        from mint.bench.load import read_line

        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(STOP + "\n")
        self._proc.stdin.flush()
        line = read_line(self._proc.stdout, 60)
        self._proc.wait(30)
        received: dict[str, float] = json.loads(line)
        return received

    def kill(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait(5)


if __name__ == "__main__":
    main()
