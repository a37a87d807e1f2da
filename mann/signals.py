"""Stopping a long command with SIGTERM or SIGINT (Ctrl-C) without losing what it did.

Two ways, one exception. Within ``stop_on_signals()`` either signal raises
:class:`Stopped` where the program is, so it unwinds through every ``with``
and ``finally`` (``mann grade``: the sandbox's server and its tests are
killed, the temp folders removed, the gradebook of everyone graded so far
written). Within ``stop_at_safe_point()`` the signal is only recorded, and
the program raises Stopped itself once its state is whole (training: at the
end of the current step, after writing a checkpoint at that step). Either way
the command then exits with 128 + the signal's number (143 for SIGTERM, 130
for SIGINT), as a shell reports a process that a signal stopped. Clean-up
that must run to its end runs within ``signals_held()``.
"""

from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Stopped(BaseException):
    """A stop signal arrived (``detail``: where the command stopped and how to go on).

    A BaseException, like KeyboardInterrupt, so that the ``except Exception``
    that turns one student's broken grading into their zero, or one sweep
    cell's failure into its failed row, lets it through.
    """

    def __init__(self, signum: int, detail: str = "") -> None:
        self.signum = signum
        self.name = signal.Signals(signum).name
        self.detail = detail
        super().__init__(f"stopped by {self.name}" + (f" {detail}" if detail else ""))

    def __reduce__(self):  # from a worker process to its sweep, which re-raises it
        return Stopped, (self.signum, self.detail)

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


@contextmanager
def stop_signals_to(handler: Callable) -> Iterator[None]:
    """Within: ``handler`` takes SIGTERM and SIGINT; the previous handlers are restored after.
    Off the main thread, where Python runs no handler, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.signal(number, handler) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, signal.SIG_DFL if old is None else old)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within: SIGTERM and SIGINT raise Stopped; the previous handlers are restored after.

    Only the first signal raises: a second one (an impatient Ctrl-C, a
    supervisor repeating its SIGTERM) would otherwise interrupt the clean-up
    that the first one started.
    """
    received: list[int] = []

    def handler(signum, frame):
        if received:
            print(f"mann: {signal.Signals(signum).name} again: still cleaning up", file=sys.stderr)
            return
        received.append(signum)
        raise Stopped(signum)

    with stop_signals_to(handler):
        yield


@contextmanager
def stop_at_safe_point(notice: str) -> Iterator[Callable[[], int | None]]:
    """Within: the first SIGTERM or SIGINT is recorded, not raised; yields ``received()``, the
    signal's number once one has arrived (None before), for the block to poll where stopping
    loses nothing and raise Stopped there. A second signal raises Stopped at once, for a user
    who will not wait for the safe point (files written atomically stay whole). Off the main
    thread, where Python cannot take signals, the handlers stay as they are and received() is None.
    ``notice`` is printed to stderr when the first signal arrives: what happens before the stop.
    """
    received: list[int] = []

    def handler(signum, frame):
        if received:
            raise Stopped(signum, "again: not waiting for the safe point")
        received.append(signum)
        print(f"mann: {signal.Signals(signum).name}: {notice} (send it again to stop at once)", file=sys.stderr)

    with stop_signals_to(handler):
        yield lambda: received[0] if received else None


@contextmanager
def signals_held() -> Iterator[None]:
    """Within: SIGTERM and SIGINT wait until the block ends (blocked, then delivered),
    so that a signal arriving during clean-up cannot cut it short."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
