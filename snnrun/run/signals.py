"""Stopping a run cleanly: Ctrl-C (SIGINT) and SIGTERM (what ``timeout``, ``kill`` and cluster
schedulers send) both ask the running task to stop at its next safe point (after the current
batch or episode): it saves a checkpoint of that consistent state and raises
:class:`Interrupted`; the tracker marks the MLflow run KILLED and the command exits 130
(SIGINT) or 143 (SIGTERM).  A second signal of either kind stops at once.  Outside a task's
loop (building, loading data) a signal raises :class:`Interrupted` immediately.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Any, Iterator, Optional

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """The run was stopped by ``signum``; ``exit_code`` is the shell's 128 + signum."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def exit_code(exc: BaseException) -> int:
    """130 for Ctrl-C, 143 for SIGTERM."""
    return exc.exit_code if isinstance(exc, Interrupted) else 128 + int(signal.SIGINT)


def _raise_now(signum: int, frame: Any) -> None:
    raise Interrupted(signum)


@contextmanager
def stop_on_signals(target: Optional[Any] = None) -> Iterator[None]:
    """While inside: SIGINT / SIGTERM set ``target.stop_signal`` (the task stops at its next
    safe point) or, with no target or on a second signal, raise :class:`Interrupted` at once.
    Only in the main thread (signals are delivered there); elsewhere a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in SIGNALS}

    def request_stop(signum: int, frame: Any) -> None:
        if target is None or getattr(target, "stop_signal", None):
            raise Interrupted(signum)
        target.stop_signal = int(signum)

    for s in SIGNALS:
        signal.signal(s, request_stop)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def check_stop(target: Any) -> None:
    """Raise :class:`Interrupted` if a signal asked ``target`` to stop (call it after
    saving the checkpoint of a safe point)."""
    signum = getattr(target, "stop_signal", None)
    if signum:
        raise Interrupted(signum)
