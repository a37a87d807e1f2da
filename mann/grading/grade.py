"""Grade submissions: run every rubric test in the sandbox, judge, score.

>>> with Grader(reference, rubric) as grader:
...     result = grader.grade(submission)          # a SubmissionResult
...     write_submission(result, rubric, out / submission.name)

A submission that cannot be graded at all (wrong layout, corrupt zip) gets
zero on every test with the reason; a test whose process fails (import
error, exception, timeout, crash, memory, endless output) gets zero with a
message saying which, and the next test runs in a fresh process.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from episodes.errors import UsageError
from mann.grading.battery import CHECKS
from mann.grading.check import Verdict
from mann.grading.reference import Reference
from mann.grading.rubric import Rubric, TestSpec
from mann.grading.runner import Sandbox
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

    @property
    def score(self) -> float:
        return float(sum(t.score for t in self.tests))

    @property
    def max_score(self) -> float:
        return float(sum(t.spec.points for t in self.tests))


class Grader:
    """One grading session: the reference, the rubric and one sandbox."""

    def __init__(self, reference: Reference, rubric: Rubric, exclude: list[Path] = (),
                 sandbox_user: str | None = None, landlock: bool = True) -> None:
        self.reference = reference
        self.rubric = rubric
        self.staging = Path(tempfile.mkdtemp(prefix="mann-staging-"))
        self.sandbox = Sandbox(reference.tree, exclude=[*exclude, self.staging, Path(rubric.source)],
                               user=sandbox_user, landlock=landlock)
        self._staged = 0

    def __enter__(self) -> "Grader":
        self.sandbox.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.sandbox.close()
        shutil.rmtree(self.staging, ignore_errors=True)

    def grade(self, submission: Submission, rubric: Rubric | None = None) -> SubmissionResult:
        """Run every test of ``rubric`` (default: the session's) on one submission."""
        rubric = rubric or self.rubric
        started = time.monotonic()
        result = SubmissionResult(submission)
        self._staged += 1
        folder = self.staging / f"{self._staged:05d}"
        try:
            code, root = stage(submission, folder) if submission.gradable else (None, None)
        except UsageError as err:
            code, root, submission = None, None, Submission(submission.name, submission.source, None, str(err))
        if code is None:
            result.problem = submission.problem
            result.tests = [TestOutcome(spec, False, f"not graded: {submission.problem}") for spec in rubric.tests]
        else:
            result.tests = [self.run_test(spec, code, root, rubric.seed) for spec in rubric.tests]
        shutil.rmtree(folder, ignore_errors=True)
        result.seconds = time.monotonic() - started
        return result

    def run_test(self, spec: TestSpec, code: Path, root: Path, seed: int) -> TestOutcome:
        check = CHECKS[spec.id]
        params = {**spec.params, "seed": seed}
        started = time.monotonic()
        details = ""
        if check.probe is None:
            verdict = judge_safely(check.judge, self.reference, params, root, None)
        else:
            probe = check.probe(self.reference, params)
            run = self.sandbox.run(code, probe, spec.limits)
            details = "\n\n".join(
                part for part in (
                    f"Traceback of the submission:\n{run.traceback.strip()}" if run.traceback else "",
                    f"Output of the submission:\n{run.output.rstrip()}" if run.output.strip() else "",
                ) if part
            )
            if run.ok:
                verdict = judge_safely(check.judge, self.reference, params, run, probe)
            else:
                verdict = Verdict(False, run.problem)
        return TestOutcome(spec, verdict.passed, verdict.message, details, time.monotonic() - started)


def judge_safely(judge, reference: Reference, params: dict, outcome, probe) -> Verdict:
    """The judge's verdict; outputs so malformed that judging them fails get zero, with the reason."""
    try:
        return judge(reference, params, outcome, probe)
    except Exception as err:  # noqa: BLE001 - raw outputs of a submission can be anything
        last = traceback.format_exception_only(type(err), err)[-1].strip()
        return Verdict(False, f"the submission's outputs could not be judged ({last})")
