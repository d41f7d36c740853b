"""CPU time and resident memory of each service process and of the gateway thread, from /proc.

A service's process is the one its runner spawned (``mint.infra.process.wrapped_command`` execs
``setpriv`` into the Python interpreter, so the pid is the interpreter's) together with any
descendants, so a wrapper that forks instead of exec-ing is still measured. The gateway runs as
a uvicorn thread inside the bench's own process: its CPU is that thread's
(``/proc/self/task/<tid>/stat``); its memory is not separable from the bench's and is not
reported.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
GATEWAY = "gateway"
#: the thread name mint.dev.platform.Platform gives the gateway's uvicorn server
GATEWAY_THREAD_NAME = "gateway"


def parse_stat_ticks(stat: str) -> int:
    """utime + stime (clock ticks) of a ``/proc/<pid>/stat`` or ``…/task/<tid>/stat`` line.

    The command name (field 2) is in parentheses and may hold spaces or parentheses itself, so
    fields are counted from the last ``)``: utime and stime are fields 14 and 15 of the line."""
    _, _, rest = stat.rpartition(")")
    fields = rest.split()
    # rest starts at field 3 (state): field n is fields[n - 3]
    return int(fields[14 - 3]) + int(fields[15 - 3])


def parse_status_kib(status: str, key: str) -> int | None:
    """The value in KiB of ``key`` (``VmRSS``, ``VmHWM``) in a ``/proc/<pid>/status`` text."""
    for line in status.splitlines():
        name, sep, value = line.partition(":")
        if sep and name == key:
            number, _, unit = value.strip().partition(" ")
            if unit and unit != "kB":
                raise ValueError(f"unexpected unit {unit!r} for {key}")
            return int(number)
    return None


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants that are alive now."""
    try:
        root = psutil.Process(pid)
        return [pid, *(child.pid for child in root.children(recursive=True))]
    except psutil.NoSuchProcess:
        return []


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None


def tree_cpu_seconds(pid: int) -> float:
    ticks = 0
    for member in process_tree(pid):
        stat = _read(PROC / str(member) / "stat")
        if stat is not None:
            ticks += parse_stat_ticks(stat)
    return ticks / CLOCK_TICKS


def thread_cpu_seconds(tid: int) -> float | None:
    stat = _read(PROC / "self" / "task" / str(tid) / "stat")
    return None if stat is None else parse_stat_ticks(stat) / CLOCK_TICKS


def tree_memory_kib(pid: int, key: str) -> int:
    total = 0
    for member in process_tree(pid):
        status = _read(PROC / str(member) / "status")
        if status is not None:
            total += parse_status_kib(status, key) or 0
    return total


def reset_peak(pid: int) -> bool:
    """Reset the peak resident size (VmHWM) of ``pid``'s tree to its current size (writing
    ``5`` to ``clear_refs``); False when the kernel refuses it."""
    done = True
    for member in process_tree(pid):
        try:
            (PROC / str(member) / "clear_refs").write_text("5")
        except OSError:
            done = False
    return done


def gateway_thread_id() -> int | None:
    """The native id of this process's gateway thread, None when it runs elsewhere."""
    for thread in threading.enumerate():
        if thread.name == GATEWAY_THREAD_NAME and thread.native_id is not None:
            return thread.native_id
    return None


@dataclass
class ProcessProbe:
    """Reads the service processes (``pids()``: service → pid, read anew each time, so a
    restarted service is followed) and the gateway thread."""

    pids: Callable[[], Mapping[str, int]]
    gateway_tid: int | None

    def cpu_seconds(self) -> dict[str, float]:
        out = {name: tree_cpu_seconds(pid) for name, pid in self.pids().items()}
        if self.gateway_tid is not None:
            gateway = thread_cpu_seconds(self.gateway_tid)
            if gateway is not None:
                out[GATEWAY] = gateway
        return out

    def memory_mib(self, key: str) -> dict[str, float]:
        """``key`` (``VmRSS`` now, ``VmHWM`` the peak) of each service, in MiB."""
        return {name: tree_memory_kib(pid, key) / 1024 for name, pid in self.pids().items()}

    def reset_peaks(self) -> bool:
        results = [reset_peak(pid) for pid in self.pids().values()]
        return all(results)


def cpu_delta(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    """CPU seconds spent between two :meth:`ProcessProbe.cpu_seconds` readings, per name (a
    process that restarted in between counts from zero)."""
    out: dict[str, float] = {}
    for name, end in after.items():
        start = before.get(name, 0.0)
        out[name] = end - start if end >= start else end
    return out


def with_sum(values: Mapping[str, float]) -> dict[str, float]:
    """``values`` plus their ``sum``."""
    return {**values, "sum": sum(values.values())}
