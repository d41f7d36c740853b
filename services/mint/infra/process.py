"""Server processes: spawning into their own process group, tied to the life of the process that
started them, logging, readiness, stopping; the lock a data directory is held with."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

import psutil

LOG_TAIL_LINES = 30


class InfraError(RuntimeError):
    """A component of the embedded infrastructure could not be prepared, started or reached."""


class StartCancelled(InfraError):
    """A start was abandoned because a stop was requested meanwhile (Ctrl-C during startup)."""


def wrapped_command(
    cmd: Sequence[str], *, run_as: str | None = None, die_with_this_thread: bool
) -> list[str]:
    """``cmd`` wrapped in ``setpriv`` when it must run as the user ``run_as`` (and its group
    only), or die with its spawner: with ``die_with_this_thread`` the kernel SIGKILLs it when the
    *thread* spawning it ends (``PR_SET_PDEATHSIG``), however that happens — a SIGKILL or an OOM
    kill of this process included. So the spawning thread must outlive the child: the main
    thread, or a supervisor thread that ends only after stopping its children.

    ``setpriv`` changes the user first and sets the parent-death signal last, just before it
    execs ``cmd`` (a change of user clears the signal; an exec keeps it). An exec wrapper rather
    than a ``preexec_fn``: the runner has threads, and Python code run between fork and exec may
    deadlock on a lock another thread held at the fork. Without ``setpriv`` the command runs
    unwrapped; the pids kept by :func:`record_processes` then let the next run clean up
    (:func:`kill_stale`).
    """
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        if run_as is not None:
            raise InfraError(f"`setpriv` (util-linux) is needed to run {cmd[0]} as {run_as}")
        return list(cmd)
    wrapper: list[str] = []
    if run_as is not None:
        wrapper += [f"--reuid={run_as}", f"--regid={run_as}", "--clear-groups"]
    if die_with_this_thread:
        wrapper += ["--pdeathsig", "KILL"]
    return [setpriv, *wrapper, *cmd] if wrapper else list(cmd)


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # as the servers themselves do, ignore connections lingering in TIME_WAIT
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def tcp_answers(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class PortBook:
    """Free loopback ports, remembered in `<data_dir>/ports.json` so that a restarted
    `make dev` gets the same ports again whenever they are still free."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._taken: set[int] = set()
        try:
            self._saved: dict[str, int] = {
                k: int(v) for k, v in json.loads(path.read_text()).items()
            }
        except (OSError, ValueError, AttributeError):
            self._saved = {}

    def get(self, key: str) -> int:
        with self._lock:
            port = self._saved.get(key)
            if port is None or port in self._taken or not port_is_free(port):
                port = self._fresh()
            self._taken.add(port)
            self._saved[key] = port
            self._path.write_text(json.dumps(self._saved, indent=2, sort_keys=True))
            return port

    def _fresh(self) -> int:
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", 0))
                port = int(s.getsockname()[1])
            # grpc ports of seaweedfs default to port+10000: stay clear of the top of the range
            if port not in self._taken and port < 55000:
                return port


def run_checked(
    cmd: Sequence[str], component: str, log_path: Path, timeout: float, **kwargs: object
) -> None:
    """Run a preparation command (initdb, storage format, mvn), appending its output to the log."""
    with log_path.open("ab") as log:
        log.write(f"\n$ {' '.join(cmd)}\n".encode())
        log.flush()
        try:
            proc = subprocess.run(
                list(cmd),
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
                **kwargs,  # type: ignore[call-overload]
            )
        except subprocess.TimeoutExpired as exc:
            raise InfraError(
                f"{component}: {cmd[0]} timed out after {timeout:.0f}s; see {log_path}"
            ) from exc
        except OSError as exc:
            raise InfraError(f"{component}: cannot run {cmd[0]}: {exc}") from exc
    if proc.returncode != 0:
        raise InfraError(
            f"{component}: `{' '.join(cmd)}` failed with exit code {proc.returncode}; "
            f"see {log_path}:\n{log_tail(log_path)}"
        )


class ManagedProcess:
    """A long-running server in its own session (process group); output goes to a log file."""

    def __init__(
        self,
        component: str,
        cmd: Sequence[str],
        log_path: Path,
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        run_as: str | None = None,
        stop_signal: int = signal.SIGTERM,
        stop_timeout: float = 20.0,
    ) -> None:
        self.component = component
        self.cmd = list(cmd)
        self.log_path = log_path
        self.env = env
        self.cwd = cwd
        self.run_as = run_as
        self.stop_signal = stop_signal
        self.stop_timeout = stop_timeout
        self.popen: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None

    def start(self) -> None:
        # Only the main thread lives as long as this process: a server tied to a helper thread
        # would be killed when that thread ends.
        main_thread = threading.current_thread() is threading.main_thread()
        try:
            cmd = wrapped_command(self.cmd, run_as=self.run_as, die_with_this_thread=main_thread)
        except InfraError as exc:
            raise InfraError(f"{self.component}: {exc}") from None
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} $ {' '.join(cmd)}\n".encode())
            log.flush()
            self.started_at = time.monotonic()
            try:
                self.popen = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self.env,
                    cwd=self.cwd,
                    start_new_session=True,
                )
            except OSError as exc:
                raise InfraError(f"{self.component}: cannot start {cmd[0]}: {exc}") from exc

    def check_alive(self) -> None:
        if self.popen is None:
            raise InfraError(f"{self.component}: not started")
        code = self.popen.poll()
        if code is not None:
            raise InfraError(
                f"{self.component} exited with code {code} during startup; see {self.log_path}:\n"
                f"{log_tail(self.log_path)}"
            )

    def wait_until(self, probe: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll `probe` until it returns True; fail if the process dies or time runs out."""
        deadline = time.monotonic() + timeout
        delay = 0.1
        while True:
            self.check_alive()
            try:
                if probe():
                    self._note(
                        f"ready ({what}) {time.monotonic() - self.started_at:.1f}s after start"
                    )
                    return
            except Exception:  # the probe failing just means "not yet"
                pass
            if time.monotonic() > deadline:
                raise InfraError(
                    f"{self.component} not ready ({what}) within {timeout:.0f}s; "
                    f"see {self.log_path}:\n{log_tail(self.log_path)}"
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)

    def stop(self) -> None:
        """Ask the server to stop, then kill whatever is left of its process group."""
        if self.popen is None:
            return
        popen, self.popen = self.popen, None
        pgid = popen.pid  # leader of its own session, so its pid is the process group id
        started, how = time.monotonic(), "had exited"
        if popen.poll() is None:
            how = f"stopped by {signal.Signals(self.stop_signal).name}"
            with contextlib.suppress(ProcessLookupError):
                os.kill(popen.pid, self.stop_signal)
            try:
                popen.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                how = f"killed (no exit {self.stop_timeout:.0f}s after the stop signal)"
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
                popen.wait(timeout=10)
        kill_group(pgid)
        elapsed = time.monotonic() - started
        self._note(f"{how}, exit code {popen.returncode}, {elapsed:.1f}s")

    def _note(self, text: str) -> None:
        with contextlib.suppress(OSError), self.log_path.open("a") as log:
            log.write(f"\n==== {self.component} {text}\n")


def kill_group(pgid: int, grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL, every process left in a process group."""
    members = [p for p in psutil.process_iter() if _pgid(p) == pgid]
    if not members:
        return
    for p in members:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _, alive = psutil.wait_procs(members, timeout=grace)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(alive, timeout=5)


def _pgid(p: psutil.Process) -> int | None:
    try:
        return os.getpgid(p.pid)
    except OSError:
        return None


def record_processes(path: Path, pids: dict[str, int]) -> None:
    """Remember our servers (pid and start time) so a later run can clean up after a crash."""
    out: dict[str, dict[str, float]] = {}
    for name, pid in pids.items():
        with contextlib.suppress(psutil.Error):
            out[name] = {"pid": pid, "create_time": psutil.Process(pid).create_time()}
    path.write_text(json.dumps(out, indent=2, sort_keys=True))


def kill_stale(path: Path) -> None:
    """Kill servers left behind by an earlier run that died without stopping them: those
    recorded by `record_processes` that are still the same processes (same start time)."""
    try:
        recorded = json.loads(path.read_text())
        entries = [(int(e["pid"]), float(e["create_time"])) for e in recorded.values()]
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return
    for pid, create_time in entries:
        try:
            proc = psutil.Process(pid)
            if proc.create_time() == create_time:
                kill_group(os.getpgid(pid))
        except (psutil.Error, OSError):
            continue
    path.unlink(missing_ok=True)


class DirectoryLock:
    """The exclusive lock of a data directory: a file naming its holder's pid.

    The lock is an ``flock`` on the file, which the kernel releases when its holder dies however
    it dies (a SIGKILL included), so a dead holder never blocks the next run: its lock is taken
    over, and :meth:`acquire` returns the pid the file still named, for a log line. A live holder
    is refused with its pid. The file is emptied on :meth:`release`, so only an unclean end
    leaves a name behind.
    """

    def __init__(self, path: Path, holder: str) -> None:
        self.path = path
        self.holder = holder  # what holds it, for messages: "mint dev", "EmbeddedInfra"
        self._file: IO[str] | None = None

    def acquire(self) -> int | None:
        """Take the lock; return the pid of a dead holder whose lock was taken over, if any.
        Raises InfraError naming the live holder when the directory is in use."""
        lock_file = self.path.open("a+")  # not inherited by children: they cannot keep it
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.seek(0)
            holder = _named_pid(lock_file.read())
            lock_file.close()
            who, how = (f"pid {holder}", f" (kill {holder})") if holder else ("another process", "")
            raise InfraError(
                f"{self.path.parent} is in use by a running {self.holder} ({who}); "
                f"stop it first{how} or use another directory"
            ) from None
        lock_file.seek(0)
        previous = _named_pid(lock_file.read())
        lock_file.truncate(0)
        lock_file.write(f"{os.getpid()}\n")
        lock_file.flush()
        self._file = lock_file
        return previous if previous != os.getpid() else None

    def release(self) -> None:
        if self._file is None:
            return
        lock_file, self._file = self._file, None
        with contextlib.suppress(OSError):
            lock_file.truncate(0)
        lock_file.close()  # closing the descriptor releases the flock


def _named_pid(text: str) -> int | None:
    try:
        return int(text.split()[0])
    except (IndexError, ValueError):
        return None
