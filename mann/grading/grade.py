"""Grade submissions: run every rubric test in the sandbox, judge, score.

>>> with Grader(reference, rubric) as grader:
...     result = grader.grade(submission)          # a SubmissionResult
...     write_submission(result, rubric, out / submission.name)

A submission that cannot be graded at all (wrong layout, corrupt zip) gets
zero on every test with the reason; a test whose process fails (import
error, exception, timeout, crash, memory, endless output) gets zero with a
message saying which, and the next test runs in a fresh process. Anything
else that goes wrong while grading one submission (a bug of the grader, an
output nobody foresaw) is that submission's zero with "internal error: ..."
and the session goes on to the next one.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import traceback
import weakref
from dataclasses import dataclass, field
from pathlib import Path

from episodes.errors import UsageError
from mann.grading.battery import CHECKS
from mann.grading.check import Verdict
from mann.grading.reference import Reference
from mann.grading.rubric import Part, Rubric, TestSpec
from mann.grading.runner import PART_NAMES, Sandbox
from mann.signals import signals_held
from mann.grading.submission import Submission, stage


@dataclass
class TestOutcome:
    """spec: the rubric entry; passed; message: the verdict for the
    student; details: the submission's traceback and printed output, if any."""

    spec: TestSpec
    passed: bool
    message: str
    details: str = ""
    seconds: float = 0.0

    @property
    def score(self) -> float:
        """All of the test's points or none."""
        return self.spec.points if self.passed else 0.0


@dataclass
class SubmissionResult:
    submission: Submission
    tests: list[TestOutcome] = field(default_factory=list)
    problem: str = ""
    seconds: float = 0.0
    isolation: str = ""  # the sandbox's level (isolation.py), "" when nothing ran

    @property
    def score(self) -> float:
        return float(sum(t.score for t in self.tests))

    @property
    def max_score(self) -> float:
        return float(sum(t.spec.points for t in self.tests))


class Grader:
    """One grading session: the reference, the rubric and one sandbox.

    Whatever stops it (an exception, a stop signal raised as Stopped, even
    one arriving before ``with`` has entered it), the sandbox's processes are
    killed and its temp folders, ``mann-staging-*`` and the sandbox's
    ``mann-grade-*``, removed: by ``close`` (the ``with`` block), else when the
    Grader is collected or Python exits.
    """

    def __init__(self, reference: Reference, rubric: Rubric, exclude: list[Path] = (),
                 sandbox_user: str | None = None, landlock: bool = True, isolation: str = "auto") -> None:
        self.reference = reference
        self.rubric = rubric
        self.staging = Path(tempfile.mkdtemp(prefix="mann-staging-"))
        try:
            self.sandbox = Sandbox(reference.tree, exclude=[*exclude, self.staging, Path(rubric.source)],
                                   user=sandbox_user, landlock=landlock, isolation=isolation)
        except BaseException:  # e.g. --isolation namespaces refused: the staging folder is not left behind
            shutil.rmtree(self.staging, ignore_errors=True)
            raise
        self._cleanup = weakref.finalize(self, _clean_up, self.sandbox, self.staging)
        self._staged = 0

    def __enter__(self) -> "Grader":
        try:
            self.sandbox.start()
        except BaseException:  # a failed or interrupted start: no __exit__ will come
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._cleanup()  # once: later calls do nothing

    def grade(self, submission: Submission, rubric: Rubric | None = None) -> SubmissionResult:
        """Run every test of ``rubric`` (default: the session's) on one submission.

        Never raises an Exception: one student's upload must not stop the
        class, so an unexpected one gives that student zero on every test
        with ``internal error: <type>: <message>`` (and its traceback in the
        details, for the course staff).
        """
        rubric = rubric or self.rubric
        started = time.monotonic()
        try:
            result = self._grade(submission, rubric, started)
        except Exception as err:  # noqa: BLE001 - the class goes on whatever broke
            # The server may still be running (or about to answer) the interrupted
            # test: a fresh one keeps its late answer from being read as the next test's.
            self.sandbox.reset()
            result = internal_error(submission, rubric, err, time.monotonic() - started)
        result.isolation = self.sandbox.isolation.level
        return result

    def _grade(self, submission: Submission, rubric: Rubric, started: float) -> SubmissionResult:
        result = SubmissionResult(submission)
        self._staged += 1
        folder = self.staging / f"{self._staged:05d}"
        try:
            try:
                code, root = stage(submission, folder) if submission.gradable else (None, None)
            except UsageError as err:
                code, root, submission = None, None, Submission(submission.name, submission.source, None, str(err))
            if code is None:
                result.problem = submission.problem
                result.tests = [TestOutcome(spec, False, f"not graded: {submission.problem}") for spec in rubric.tests]
            else:
                done: dict = {}  # one submission's verdicts, shared by the tests that run the same check
                dead: dict[str, str] = {}  # part of the submission -> how it ran out of time, and where
                result.tests = [self.run_test(spec, code, root, rubric.seed, done, dead) for spec in rubric.tests]
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        result.seconds = time.monotonic() - started
        return result

    def run_test(self, spec: TestSpec, code: Path, root: Path, seed: int, done: dict | None = None,
                 dead: dict[str, str] | None = None) -> TestOutcome:
        """Run every check of ``spec``; it passes when all of them pass. ``done``
        keeps verdicts by (check, parameters, limits) across one submission's
        tests: a check two tests share runs once (its inputs are seeded).
        ``dead`` (updated here) maps each part of the submission that ran out
        of time in an earlier check to how and where: a check that needs one of
        them gets zero at once, instead of waiting out its own limit."""
        started = time.monotonic()
        done = {} if done is None else done
        dead = {} if dead is None else dead
        outcomes = []
        for part in spec.parts:
            key = (part.check, json.dumps(part.params, sort_keys=True), part.limits)
            if key not in done:
                done[key] = self.run_part(part, spec, code, root, seed, dead)
            outcomes.append(done[key])
        if len(outcomes) == 1:
            (verdict, details), = outcomes
            return TestOutcome(spec, verdict.passed, verdict.message, details, time.monotonic() - started)
        verdicts = [verdict for verdict, _ in outcomes]
        details = "\n\n".join(f"[{part.check}]\n{text}" for part, (_, text) in zip(spec.parts, outcomes) if text)
        return TestOutcome(spec, all(v.passed for v in verdicts), combined(spec.parts, verdicts), details,
                           time.monotonic() - started)

    def run_part(self, part: Part, spec: TestSpec, code: Path, root: Path, seed: int,
                 dead: dict[str, str]) -> tuple[Verdict, str]:
        """(the verdict of one check of ``spec``, the submission's traceback and printed output)."""
        check = CHECKS[part.check]
        params = {**part.params, "seed": seed}
        if check.probe is None:
            return judge_safely(check.judge, self.reference, params, root, None), ""
        probe = check.probe(self.reference, params)
        blocked = next((needed for needed in probe.needs if needed in dead), None)
        if blocked is not None:
            return Verdict(False, f"not run: needs {PART_NAMES[blocked]}, which {dead[blocked]}"), ""
        run = self.sandbox.run(code, probe, part.limits)
        if run.failure and run.part in probe.needs:
            dead[run.part] = ran_out(run, part.limits, spec.name)
        details = "\n\n".join(
            text for text in (
                f"Traceback of the submission:\n{run.traceback.strip()}" if run.traceback else "",
                f"Output of the submission:\n{run.output.rstrip()}" if run.output.strip() else "",
            ) if text
        )
        if run.ok:
            return judge_safely(check.judge, self.reference, params, run, probe), details
        return Verdict(False, run.problem), details


def combined(parts: tuple[Part, ...], verdicts: list[Verdict]) -> str:
    """The message of a test of several checks: how many failed, then each
    check's message (its own lines indented below it), the failed ones first."""
    failed = [not v.passed for v in verdicts]
    head = f"{sum(failed)} of {len(parts)} checks failed" if any(failed) else f"all {len(parts)} checks passed"
    order = sorted(range(len(parts)), key=lambda i: not failed[i])
    lines = [f"- {parts[i].check}: {'FAIL: ' if failed[i] else ''}{verdicts[i].message}".replace("\n", "\n  ")
             for i in order]
    return "\n".join([f"{head}:", *lines])


def _clean_up(sandbox: Sandbox, staging: Path) -> None:
    # A stop signal arriving now waits until the sandbox is closed and the
    # folders are gone: raised halfway, it would leave them behind.
    with signals_held():
        try:
            sandbox.close()
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def ran_out(run, limits, test_name: str) -> str:
    """'timed out after 60 s in test "<name>"' and the like, for the tests that need the same part."""
    how = {"timeout": f"timed out after {limits.wall_s:g} s",
           "cpu": f"used up the CPU limit of {limits.cpu_s} s",
           "slow": "was too slow to finish within the time limit"}[run.failure]
    return f"{how} in test \"{test_name}\""


def internal_error(submission: Submission, rubric: Rubric, err: Exception, seconds: float) -> SubmissionResult:
    """Zero on every test of ``rubric``, saying which exception stopped the grading."""
    problem = f"internal error: {type(err).__name__}: {str(err)[:500]}"
    details = "Traceback of the grader:\n" + "".join(traceback.format_exception(type(err), err, err.__traceback__))[-4000:]
    tests = [TestOutcome(spec, False, f"not graded: {problem}; tell the course staff", details) for spec in rubric.tests]
    return SubmissionResult(submission, tests, problem, seconds)


def judge_safely(judge, reference: Reference, params: dict, outcome, probe) -> Verdict:
    """The judge's verdict; outputs so malformed that judging them fails get zero, with the reason."""
    try:
        return judge(reference, params, outcome, probe)
    except Exception as err:  # noqa: BLE001 - raw outputs of a submission can be anything
        last = traceback.format_exception_only(type(err), err)[-1].strip()
        return Verdict(False, f"the submission's outputs could not be judged ({last})")
