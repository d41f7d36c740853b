"""The dev runner's stop: a stop signal caught while its handler is swapped for SIG_IGN is
reported by CPython as an unraisable ``OSError`` ("Signal 15 ignored due to race condition").
The runner asked for that signal to be ignored, so it says nothing; every other unraisable error
still reaches the hook that was installed before (a storm of external SIGTERMs against
``StopRequest.install``/``close`` in a loop printed the message 2 times in 100 000 before)."""

from __future__ import annotations

import signal
import sys
from types import SimpleNamespace
from typing import cast

from mint.dev.dev import _quiet_about_ignored_stop_signals


def _unraisable(exc: BaseException) -> sys.UnraisableHookArgs:
    # the type exists for type checkers only; CPython passes an object with these attributes
    args = SimpleNamespace(
        exc_type=type(exc), exc_value=exc, exc_traceback=None, err_msg=None, object=None
    )
    return cast("sys.UnraisableHookArgs", args)


def test_an_ignored_stop_signal_is_not_reported_and_anything_else_is() -> None:
    reported: list[BaseException | None] = []
    hook = _quiet_about_ignored_stop_signals(lambda args: reported.append(args.exc_value))

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        hook(_unraisable(OSError(f"Signal {int(signum)} ignored due to race condition")))
    assert reported == []

    other_signal = OSError(f"Signal {int(signal.SIGUSR1)} ignored due to race condition")
    other_error = OSError("connection reset")
    not_os_error = RuntimeError(f"Signal {int(signal.SIGTERM)} ignored due to race condition")
    for exc in (other_signal, other_error, not_os_error):
        hook(_unraisable(exc))
    assert reported == [other_signal, other_error, not_os_error]
