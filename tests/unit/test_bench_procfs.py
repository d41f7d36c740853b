"""mint bench's /proc readings: parsing, and agreement with psutil on real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import psutil
import pytest

from mint.bench.probes import (
    CLOCK_TICKS,
    ProcessProbe,
    cpu_delta,
    parse_stat_ticks,
    parse_status_kib,
    process_tree,
    thread_cpu_seconds,
    tree_cpu_seconds,
    tree_memory_kib,
    with_sum,
)

# a command name with spaces and a closing parenthesis: fields are counted from the last ")"
STAT = (
    "4242 (py (weird) name) S 1 4242 4242 0 -1 4194560 1000 0 0 0 "
    "123 45 6 7 20 0 3 0 100 200000000 5000 18446744073709551615"
)
STATUS = "Name:\tpython\nVmPeak:\t  300000 kB\nVmHWM:\t  150000 kB\nVmRSS:\t  120000 kB\n"


def test_stat_and_status_parsing() -> None:
    assert parse_stat_ticks(STAT) == 123 + 45  # utime + stime, not the children's 6 and 7
    assert parse_status_kib(STATUS, "VmHWM") == 150000
    assert parse_status_kib(STATUS, "VmRSS") == 120000
    assert parse_status_kib(STATUS, "VmSwap") is None
    with pytest.raises(ValueError):
        parse_status_kib("VmRSS:\t 12 MB\n", "VmRSS")


def test_memory_readings_agree_with_psutil() -> None:
    me = psutil.Process()
    own = process_tree(os.getpid())
    rss_kib = tree_memory_kib(os.getpid(), "VmRSS")
    rss = sum(psutil.Process(pid).memory_info().rss for pid in own)
    assert abs(rss_kib * 1024 - rss) < 16 * 1024 * 1024
    assert tree_memory_kib(os.getpid(), "VmHWM") >= rss_kib
    assert me.pid == own[0]


def test_a_tree_includes_children_and_a_thread_is_read_alone() -> None:
    # a wrapper that forks instead of exec-ing: the child's CPU must count for the service.
    # The grandchild says "ready" once it only sleeps (and the wrapper only waits for it).
    sleeper = "import time; print('ready', flush=True); time.sleep(600)"
    wrapper = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {sleeper!r}])"
    child = subprocess.Popen([sys.executable, "-c", wrapper], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        tree = process_tree(child.pid)
        assert len(tree) == 2 and tree[0] == child.pid
        # both processes sleep: their CPU time stands still, and it is the sum of the two
        expected = sum(sum(psutil.Process(pid).cpu_times()[:2]) for pid in tree)
        assert abs(tree_cpu_seconds(child.pid) - expected) <= 2 / CLOCK_TICKS
        probe = ProcessProbe(lambda: {"svc": child.pid}, threading.get_native_id())
        readings = probe.cpu_seconds()
        assert set(readings) == {"svc", "gateway"}
        assert probe.memory_mib("VmRSS")["svc"] > 1
        assert probe.reset_peaks()
    finally:
        for pid in reversed(process_tree(child.pid)):
            psutil.Process(pid).kill()
        child.wait(10)
    assert process_tree(child.pid) == []
    assert thread_cpu_seconds(threading.get_native_id()) is not None
    assert thread_cpu_seconds(2**31 - 1) is None


def test_cpu_deltas_and_sums() -> None:
    before = {"wallet": 10.0, "transactions": 5.0}
    after = {"wallet": 10.5, "transactions": 0.2, "gateway": 1.0}  # transactions restarted
    delta = cpu_delta(before, after)
    assert delta == {"wallet": 0.5, "transactions": 0.2, "gateway": 1.0}
    assert with_sum(delta)["sum"] == pytest.approx(1.7)
