"""The shape of one test of the battery: what to run in the sandbox, how to judge it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

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
    """

    id: str
    defaults: dict[str, Any]
    probe: Callable[..., Probe] | None
    judge: Callable[..., Verdict]
    limits: dict[str, float] = field(default_factory=dict)


def fail(message: str) -> Verdict:
    return Verdict(False, message)


def ok(message: str) -> Verdict:
    return Verdict(True, message)
