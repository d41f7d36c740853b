"""``mint dev``: the whole platform on embedded infrastructure, data in ``.mint/``."""

from __future__ import annotations

import contextlib
import selectors
import shutil
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from mint.infra import EmbeddedInfra, InfraError
from mint.infra.process import DirectoryLock, StartCancelled
from mint.kit.catalog import CAPABILITIES
from mint.kit.runner import implemented_services

DEFAULT_LIMITS = Path(__file__).resolve().parents[1] / "kit" / "limits_default.yaml"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
#: the runner's own lock; the embedded servers hold ``.infra.lock`` beside it
LOCK_FILE = "dev.lock"


def private_dir(path: Path) -> None:
    """``path`` as a directory only its owner can list or enter (it holds secrets)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)  # an existing directory keeps its mode through mkdir


def prepare(root: Path) -> None:
    """Generate what a fresh checkout needs: directories, a signing key, the limits file."""
    private_dir(root)  # the internal token and runtime.json live here
    private_dir(root / "keys")
    for sub in ("logs", "mail"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    from mint.auth.keys import ensure_signing_key

    ensure_signing_key(root / "keys")
    limits = root / "limits.yaml"
    if not limits.exists():
        shutil.copyfile(DEFAULT_LIMITS, limits)


def database_owners(services: list[str]) -> list[str]:
    return [s for s in services if CAPABILITIES[s].database]


class StopRequest:
    """The stop signals (Ctrl-C, SIGTERM, SIGHUP) the runner received.

    The handler only records the signal: it may run at any point of the main thread — inside a
    lock-holding call, or inside an earlier run of itself when signals come in a burst — so it
    takes no lock and does no I/O (``threading.Event.set`` from a handler deadlocks when a second
    signal interrupts the first). Python writes each signal's number to a socket as well
    (``signal.set_wakeup_fd``), which :meth:`wait` blocks on; the main loop does the stopping.
    """

    def __init__(self) -> None:
        self.signals: list[int] = []  # list.append is one step: safe in a nested handler
        self._receive, self._wake = socket.socketpair()
        self._previous_wakeup_fd = -1

    @property
    def requested(self) -> bool:
        return bool(self.signals)

    def install(self) -> None:
        for sock in (self._receive, self._wake):
            sock.setblocking(False)
        self._previous_wakeup_fd = signal.set_wakeup_fd(
            self._wake.fileno(), warn_on_full_buffer=False
        )
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._record)

    def _record(self, signum: int, _frame: FrameType | None) -> None:
        self.signals.append(signum)

    def wait(self, timeout: float) -> bool:
        """Block until a stop signal arrives or ``timeout`` passes; return whether one came."""
        if not self.requested:
            with selectors.DefaultSelector() as selector:
                selector.register(self._receive, selectors.EVENT_READ)
                selector.select(timeout)
            with contextlib.suppress(BlockingIOError):
                while self._receive.recv(64):
                    pass
        return self.requested

    def close(self) -> None:
        """After the stop: from now on stop signals are ignored (``SIG_IGN``, which Python keeps
        through its finalization too), so one arriving while the process exits does not end it
        with a signal's status instead of its own."""
        # A signal caught by the C handler while ``signal.signal`` swaps the handler is delivered
        # to Python after the swap, finds SIG_IGN and is reported as an "unraisable" OSError on
        # stderr ("Signal 15 ignored due to race condition"). Ignoring it is what we asked for.
        sys.unraisablehook = _quiet_about_ignored_stop_signals(sys.unraisablehook)
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)
        signal.set_wakeup_fd(self._previous_wakeup_fd)
        self._receive.close()
        self._wake.close()


def _quiet_about_ignored_stop_signals(
    previous: Callable[[sys.UnraisableHookArgs], object],
) -> Callable[[sys.UnraisableHookArgs], object]:
    ignored = {f"Signal {int(signum)} ignored due to race condition" for signum in STOP_SIGNALS}

    def hook(unraisable: sys.UnraisableHookArgs) -> object:
        if isinstance(unraisable.exc_value, OSError) and str(unraisable.exc_value) in ignored:
            return None
        return previous(unraisable)

    return hook


def run_dev(root: Path, services: list[str] | None = None, *, free_ports: bool = False) -> None:
    """Run ``services`` (default: every implemented one) until Ctrl-C or SIGTERM.

    ``free_ports`` picks free ports instead of the spec's (several platforms on one machine)."""
    available = implemented_services()
    chosen = services or available
    unknown = sorted(set(chosen) - set(available))
    if unknown:
        raise SystemExit(f"[mint dev] unknown services {unknown}; implemented: {available}")
    stop = StopRequest()
    stop.install()  # first: a signal during startup is recorded, and startup ends early
    try:
        _run(root.resolve(), chosen, free_ports, stop)
    finally:
        stop.close()


def _run(root: Path, services: list[str], free_ports: bool, stop: StopRequest) -> None:
    from mint.dev.platform import Platform

    private_dir(root)
    lock = DirectoryLock(root / LOCK_FILE, "mint dev")
    try:
        dead_runner = lock.acquire()
    except InfraError as exc:
        raise SystemExit(f"[mint dev] {exc}") from None
    if dead_runner is not None:
        _say(
            f"[mint dev] taking over {root / LOCK_FILE}: it was left by runner pid "
            f"{dead_runner}, which no longer holds it"
        )
    infra: EmbeddedInfra | None = None
    platform: Platform | None = None
    try:
        prepare(root)
        owners = database_owners(services)
        _say(f"[mint dev] starting embedded infrastructure in {root} …")
        # Servers keep their data beside the keys and logs: .mint/postgres, .mint/kafka,
        # .mint/s3, and mail lands in .mint/mail. They are spawned from this (the main) thread,
        # so they die with the runner however it dies.
        infra = EmbeddedInfra(root, databases=owners, cancelled=lambda: stop.requested)
        endpoints = infra.start()
        platform = Platform(
            root=root,
            infra=endpoints,
            services=services,
            databases={s: endpoints.database_urls[s] for s in owners},
            spec_ports=not free_ports,
            should_stop=lambda: stop.requested,
        )
        _say(f"[mint dev] starting services: {', '.join(services)} …")
        platform.start(timeout=180)
        _banner(platform, root)
        while not stop.wait(timeout=5.0):
            pass
    except StartCancelled:
        pass  # stopped during startup: the finally below stops whatever started
    finally:
        # Further signals only add to stop.signals: stopping runs to its end exactly once.
        _say("\n[mint dev] stopping …")
        try:
            if platform is not None:
                platform.stop()
            if infra is not None:
                infra.stop()
        finally:
            lock.release()
        _say("[mint dev] stopped.")


def _banner(platform: object, root: Path) -> None:
    from mint.dev.platform import Platform

    assert isinstance(platform, Platform)
    lines = [
        "",
        f"  Mint is running:      http://localhost:{platform.gateway_port}",
        "",
    ]
    for name in platform.services:
        grpc = platform.grpc_ports.get(name)
        lines.append(
            f"    {name:<14} http :{platform.http_ports[name]}"
            + (f"   grpc :{grpc}" if grpc else "")
            + f"   log {root / 'logs' / (name + '.log')}"
        )
    lines += [
        "",
        f"  Infrastructure:       postgres {platform.infra.postgres_admin_url.split('@')[-1]}, "
        f"kafka {platform.infra.kafka_bootstrap}, redis {platform.infra.redis_url}",
        f"  Mail lands in:        {platform.infra.mail_dir} (one .eml per message)",
        "  Create an admin:      .venv/bin/mint admin create --email admin@example.com "
        "--password '<password>' --name Admin",
        "  Check the ledger:     .venv/bin/mint ledger check",
        f"  Runtime description:  {root / 'runtime.json'}",
        "  Stop with Ctrl-C.",
        "",
    ]
    _say("\n".join(lines))


def _say(text: str) -> None:
    """Print to the console, which may be gone (a closed terminal sends SIGHUP): stopping must
    not fail for want of somewhere to say so."""
    with contextlib.suppress(OSError, ValueError):
        print(text, flush=True)
