"""SIGINT / SIGTERM: a stop request at the next safe point, exit codes 130 / 143."""

from __future__ import annotations

import os
import signal
import types

import pytest

from snnrun.run.signals import Interrupted, check_stop, exit_code, stop_on_signals


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_first_signal_requests_a_stop_second_interrupts(sig, code):
    task = types.SimpleNamespace(stop_signal=None)
    before = signal.getsignal(sig)
    with stop_on_signals(task):
        os.kill(os.getpid(), sig)
        assert task.stop_signal == sig  # nothing raised: the task finishes its batch
        with pytest.raises(Interrupted) as info:
            check_stop(task)  # ...saves, then stops
        assert exit_code(info.value) == code
        with pytest.raises(Interrupted):
            os.kill(os.getpid(), sig)  # a second signal stops at once
    assert signal.getsignal(sig) is before  # handlers restored


def test_without_a_task_a_signal_interrupts_at_once():
    with stop_on_signals():
        with pytest.raises(KeyboardInterrupt) as info:  # Interrupted is a KeyboardInterrupt: runs end KILLED
            os.kill(os.getpid(), signal.SIGTERM)
    assert exit_code(info.value) == 143
    assert exit_code(KeyboardInterrupt()) == 130
    check_stop(types.SimpleNamespace(stop_signal=None))  # no request: no-op
