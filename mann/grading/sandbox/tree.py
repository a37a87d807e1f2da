"""Find and kill every process below a given one, whatever session it is in.

Runs on both sides of the sandbox (imported by ``server.py`` by path, and by
the grader as ``mann.grading.sandbox.tree``), so it imports only the
standard library.

Killing processes one pass at a time can be outrun: a chain of processes,
each forking the next in a new session and exiting, moves faster than a
loop that kills what it finds. So ``stop_and_kill`` first stops (SIGSTOP)
every process it finds below the root, walking the tree again until it
stays quiet, and only then kills them all: a stopped process cannot fork,
and its children stay in the tree below it.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Callable

QUIET_S = 0.1  # how long the tree must show nothing new before the stopped are killed


def descendants(root: int) -> list[int]:
    """Every process below ``root`` (zombies included), from each process's
    ``task/*/children`` (fast enough to catch a chain of forks), or from every
    /proc entry's parent where the kernel lacks those files."""
    if not os.path.exists(f"/proc/self/task/{os.getpid()}/children"):
        return _descendants_by_scan(root)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    kids = [int(x) for x in f.read().split()]
            except OSError:  # the thread or process is gone
                continue
            out += kids
            todo += kids
    return out


def _descendants_by_scan(root: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name (field 2) may hold spaces and parentheses.
        fields = stat[stat.rfind(")") + 2:].split()
        parents.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [root]
    while todo:
        for pid in parents.get(todo.pop(), []):
            out.append(pid)
            todo.append(pid)
    return out


def stop_and_kill(root: int, deadline_s: float = 10.0) -> set[int]:
    """Stop, then SIGKILL, every process below ``root`` (not ``root`` itself).
    Returns their pids; reaping them is the caller's (their parent's) business."""
    return stop_and_kill_found(lambda: set(descendants(root)), deadline_s)


def stop_and_kill_found(find: Callable[[], set[int]], deadline_s: float = 10.0) -> set[int]:
    """Stop (SIGSTOP) what ``find`` returns until the tree stays quiet, then SIGKILL them all."""
    stopped: set[int] = set()
    end = time.monotonic() + deadline_s
    quiet_since = None
    while time.monotonic() < end:
        found = find() - stopped
        if not found and not stopped:  # nothing to kill (a zombie would show)
            break
        if not found:
            # a process exiting hands its children over only as it dies: one
            # empty pass is not proof, a short quiet spell is
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since > QUIET_S:
                break
            continue
        quiet_since = None
        for pid in found:
            try:
                os.kill(pid, signal.SIGSTOP)
            except (ProcessLookupError, PermissionError):
                pass
        stopped |= found
    for pid in stopped:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return stopped
