"""Kill every process below the sandbox's server, whatever session it is in.

The server runs each test in a child that starts its own session, so killing
the server's process group misses a test that is running (and whatever it
started): stopped in the middle of a test, the grader would leave it running,
orphaned, with no server left to enforce its time limit. The server is a
child subreaper, so every process a test leaves behind is reparented to it,
not to init: while it lives, its descendants are all of them.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

ROUNDS = 50  # a killed parent's children move up to the server: look again, a bounded number of times


def descendants(pid: int) -> list[int]:
    """Pids of the live (not zombie) processes below ``pid``, found through /proc's parent links."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        # the command name (field 2) may hold spaces and parentheses
        state, parent = stat[stat.rfind(")") + 2:].split()[:2]
        if state != "Z":
            children.setdefault(int(parent), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        below = children.get(todo.pop(), [])
        found += below
        todo += below
    return found


def kill_descendants(pid: int) -> int:
    """SIGKILL every process below ``pid`` (not ``pid`` itself); how many there were."""
    killed: set[int] = set()
    for _ in range(ROUNDS):
        found = descendants(pid)
        if not found:
            break
        for child in found:
            try:
                os.kill(child, signal.SIGKILL)
                killed.add(child)
            except (ProcessLookupError, PermissionError):
                pass
    return len(killed)
