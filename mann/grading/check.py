"""The shape of one test of the battery: what to run in the sandbox, how to judge it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from mann.grading.runner import Probe


@dataclass(frozen=True)
class Verdict:
    """passed, and a message for the student (why it failed, or what was checked)."""

    passed: bool
    message: str


@dataclass(frozen=True)
class Check:
    """One test of the battery.

    id: the key used in the rubric and the gradebook.
    defaults: its parameters and their default values (the rubric may override them).
    probe: (reference, params) -> Probe run in the sandbox; None for checks of
        the submitted files themselves, which never run student code.
    judge: (reference, params, outcome, probe) -> Verdict, where outcome is
        the sandbox's RunResult (a successful one) and probe the request that
        produced it, or, for file checks, the staged submission folder and
        None. Runs in the grader, on raw outputs only.
    limits: default limit overrides for this check (e.g. longer for training).
    validate: params -> why the rubric's parameters cannot work ("" when they
        can); checked when the rubric is read, before any grading.
    """

    id: str
    defaults: dict[str, Any]
    probe: Callable[..., Probe] | None
    judge: Callable[..., Verdict]
    limits: dict[str, float] = field(default_factory=dict)
    validate: Callable[[dict[str, Any]], str] | None = None


def fail(message: str) -> Verdict:
    return Verdict(False, message)


def ok(message: str) -> Verdict:
    return Verdict(True, message)


class Problems:
    """Every problem one test finds, so that its message lists them all at once.

    >>> problems = Problems(out_of=20, unit="episodes")
    >>> problems.add("order", f"episode {e}: labels are ...")   # once per episode that shows it
    >>> problems.verdict("20 episodes: ...", fix="draw ...")     # ok(...) when nothing was added

    A kind is one way of being wrong: only its first message is kept (the
    first example), followed by how often it occurred when more than once
    (``(in 7 of 20 episodes)``), so a bug repeated in every episode is one line.
    """

    def __init__(self, out_of: int = 0, unit: str = "episodes") -> None:
        self.out_of, self.unit = out_of, unit
        self._first: dict[str, str] = {}
        self._count: dict[str, int] = {}

    def add(self, kind: str, message: str) -> None:
        self._first.setdefault(kind, message)
        self._count[kind] = self._count.get(kind, 0) + 1

    def __contains__(self, kind: str) -> bool:
        return kind in self._first

    def __bool__(self) -> bool:
        return bool(self._first)

    def lines(self) -> list[str]:
        out = []
        for kind, message in self._first.items():
            count = self._count[kind]
            if count > 1:
                message += f" (in {count} of {self.out_of} {self.unit})" if self.out_of else f" ({count} times)"
            out.append(message)
        return out

    def verdict(self, passed: str, fix: str = "") -> Verdict:
        """ok(passed) when no problem was found; else a failure listing every
        problem, one per line, then ``fix`` (what to do about them) if given."""
        lines = self.lines()
        if not lines:
            return ok(passed)
        if len(lines) == 1:
            return fail(f"{lines[0]}; {fix}" if fix else lines[0])
        listed = f"{len(lines)} problems:\n" + "\n".join(f"- {line}" for line in lines)
        return fail(f"{listed}\n{fix[:1].upper()}{fix[1:]}" if fix else listed)


REAL_KINDS = "biuf"  # bool, integers, floats: what a judge may compute on


def shape_problem(value: np.ndarray | None, want: tuple[int, ...], what: str, expected: str = "") -> str:
    """Why ``value`` is not a real-numbered array of exactly shape ``want`` ("" when it is).

    Judges call this before any computation on a returned array: the shape is
    what bounds the grader's work (a [16, 10000] "weight" squared is 10^8 entries).
    """
    if value is None:
        return f"{what} is missing or not a numeric tensor"
    if value.dtype.kind not in REAL_KINDS:
        return f"{what} holds {value.dtype} values, not real numbers"
    if tuple(value.shape) != tuple(want):
        label = f"{expected} = {list(want)}" if expected else str(list(want))
        return f"{what} has shape {list(value.shape)}; expected {label}"
    return ""
