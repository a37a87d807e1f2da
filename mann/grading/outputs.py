"""Write one graded submission's files: results.json (Gradescope) and report.md."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mann.grading.feedback import report_markdown
from mann.grading.gradescope import results_payload
from mann.grading.rubric import Rubric
from episodes.files import atomic_write_json, atomic_write_text

if TYPE_CHECKING:
    from mann.grading.grade import SubmissionResult


def write_submission(result: "SubmissionResult", rubric: Rubric, folder: Path, protections: str = "",
                     results_json: Path | None = None) -> Path:
    """Write ``folder/results.json`` and ``folder/report.md`` (and ``results_json`` if given)."""
    folder.mkdir(parents=True, exist_ok=True)
    payload = results_payload(result, rubric)
    atomic_write_json(folder / "results.json", payload)
    atomic_write_text(folder / "report.md", report_markdown(result, protections))
    if results_json is not None:
        atomic_write_json(results_json, payload)
    return folder
