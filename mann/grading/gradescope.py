"""Gradescope's ``results.json`` for one graded submission.

Format (Gradescope autograder specification): top-level ``score``,
``execution_time`` (s), ``output``, ``visibility``, ``stdout_visibility`` and
``tests``, a list of ``{name, number, score, max_score, output, visibility}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mann.grading.rubric import VISIBILITIES, Rubric
from mann.grading.submission import where

if TYPE_CHECKING:
    from mann.grading.grade import SubmissionResult

OUTPUT_CHARS = 8000


def results_payload(result: "SubmissionResult", rubric: Rubric) -> dict:
    tests = []
    for number, outcome in enumerate(result.tests, start=1):
        text = outcome.message
        if outcome.details:
            text += "\n\n" + outcome.details
        tests.append({
            "name": outcome.spec.name,
            "number": str(number),
            "score": round(outcome.score, 4),
            "max_score": outcome.spec.points,
            "output": text[:OUTPUT_CHARS],
            "visibility": outcome.spec.visibility,
        })
    passed = sum(t.passed for t in result.tests)
    summary = f"{result.score:g} / {result.max_score:g} points; {passed} of {len(result.tests)} tests passed."
    if result.problem:
        summary = f"{result.problem}\n{summary}"
    elif result.submission.code is not None:
        summary = f"{summary}\nGraded the code in {where(result.submission.code)} of the upload."
    if result.isolation:
        summary = f"{summary}\nSandbox isolation: {result.isolation}."
    payload = {
        "score": round(result.score, 4),
        "execution_time": int(round(result.seconds)),
        "output": summary,
        "visibility": rubric.visibility,
        "stdout_visibility": rubric.stdout_visibility,
        "tests": tests,
    }
    check_payload(payload)
    return payload


def check_payload(payload: dict) -> None:
    """Raise ValueError unless ``payload`` has the fields and types Gradescope accepts."""
    def number(x) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool)

    if not number(payload.get("score")) or not number(payload.get("execution_time")):
        raise ValueError("score and execution_time must be numbers")
    for key in ("visibility", "stdout_visibility"):
        if payload.get(key) not in VISIBILITIES:
            raise ValueError(f"{key} must be one of {VISIBILITIES}")
    if not isinstance(payload.get("output"), str) or not isinstance(payload.get("tests"), list):
        raise ValueError("output must be a string and tests a list")
    for test in payload["tests"]:
        if set(test) != {"name", "number", "score", "max_score", "output", "visibility"}:
            raise ValueError(f"test entry has keys {sorted(test)}")
        if not (number(test["score"]) and number(test["max_score"]) and 0 <= test["score"] <= test["max_score"]):
            raise ValueError(f"test {test['name']!r}: score must be a number in [0, max_score]")
        if not all(isinstance(test[k], str) for k in ("name", "number", "output")):
            raise ValueError(f"test {test['name']!r}: name, number and output must be strings")
        if test["visibility"] not in VISIBILITIES:
            raise ValueError(f"test {test['name']!r}: visibility must be one of {VISIBILITIES}")
