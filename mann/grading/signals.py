"""Stopping ``mann grade`` with SIGTERM or SIGINT (Ctrl-C) without leaving anything behind.

Within ``stop_on_signals()`` either signal raises :class:`Stopped` where the
grader is, so it unwinds through every ``with`` and ``finally``: the
sandbox's server and its tests are killed, the temp folders removed, and the
gradebook of everyone graded so far written. The command then exits with
128 + the signal's number (143 for SIGTERM, 130 for SIGINT), as a shell
reports a process that a signal stopped. Clean-up that must run to its end
runs within ``signals_held()``.
"""

from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager
from typing import Iterator

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Stopped(BaseException):
    """A stop signal arrived during grading.

    A BaseException, like KeyboardInterrupt, so that the ``except Exception``
    that turns one student's broken grading into their zero lets it through.
    """

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.name = signal.Signals(signum).name
        super().__init__(f"stopped by {self.name}")

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within: SIGTERM and SIGINT raise Stopped; the previous handlers are restored after.

    Only the first signal raises: a second one (an impatient Ctrl-C, a
    supervisor repeating its SIGTERM) would otherwise interrupt the clean-up
    that the first one started.
    """
    if threading.current_thread() is not threading.main_thread():  # Python runs handlers there only
        yield
        return
    received: list[int] = []

    def handler(signum, frame):
        if received:
            print(f"mann: {signal.Signals(signum).name} again: still cleaning up", file=sys.stderr)
            return
        received.append(signum)
        raise Stopped(signum)

    previous = {number: signal.signal(number, handler) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, signal.SIG_DFL if old is None else old)


@contextmanager
def signals_held() -> Iterator[None]:
    """Within: SIGTERM and SIGINT wait until the block ends (blocked, then delivered),
    so that a signal arriving during clean-up cannot cut it short."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
