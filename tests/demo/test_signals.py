"""The demo's ending signals: each raises once in the main thread, then is ignored."""

from __future__ import annotations

import os
import signal

import pytest

from peerdp.demo.signals import EndingSignals, Stopped


@pytest.mark.parametrize(
    "sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT], ids=["SIGTERM", "SIGHUP", "SIGQUIT"]
)
def test_term_hup_and_quit_raise_stopped_once_then_are_ignored(sig: signal.Signals) -> None:
    before = signal.getsignal(sig)
    with EndingSignals():
        with pytest.raises(Stopped) as stopped:
            os.kill(os.getpid(), sig)
        assert stopped.value.exit_code == 128 + sig
        assert str(stopped.value) == sig.name
        os.kill(os.getpid(), sig)  # during the clean-up: ignored, nothing raised
        os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(sig) is before


def test_ctrl_c_is_a_keyboard_interrupt_and_hold_ignores_everything() -> None:
    with EndingSignals(), pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
    with EndingSignals() as signals:
        signals.hold()  # the clean-up of a demo that ended by itself
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
            os.kill(os.getpid(), sig)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
