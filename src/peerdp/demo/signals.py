"""The signals that end the demo, turned into exceptions so its clean-up always runs.

Ctrl-C (SIGINT) is Python's KeyboardInterrupt; SIGTERM (`kill`, `timeout`), SIGHUP (the
terminal closed) and SIGQUIT (Ctrl-\\) would end the process at once by default, leaving
the servers it started running in their own sessions. Within `EndingSignals` each raises
in the main thread, once; from then on, or once the clean-up has begun (`hold`), they are
ignored, so a second signal cannot cut the clean-up short.
"""

from __future__ import annotations

import signal
from types import FrameType, TracebackType
from typing import Any

ENDING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


class Stopped(BaseException):
    """The demo was told to stop by SIGTERM, SIGHUP or SIGQUIT (like KeyboardInterrupt, not an
    Exception, so no `except Exception` on the way swallows it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """What a shell reports for a process ended by this signal (143, 129, 131)."""
        return 128 + self.signum


class EndingSignals:
    """SIGINT raises KeyboardInterrupt, the other ending signals raise `Stopped`, the
    first time only; the previous handlers come back on the way out."""

    def __init__(self) -> None:
        self.held = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> EndingSignals:
        self._previous = {signum: signal.signal(signum, self._handle) for signum in ENDING}
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def hold(self) -> None:
        """The clean-up begins: ignore every ending signal from now on."""
        self.held = True

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.held:
            return
        self.held = True
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Stopped(signum)
