"""Grading a generated class (``mann bench --only grading``): every submission's
time with the rubric's limits, and the class serial vs ``--jobs N``, in one run.

The class is ``mann.grading.specimens.make_class``: correct, buggy and hostile
submissions. Both runs grade the same folder with the same rubric; the bench
checks that their gradebooks agree before it reports any time.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pandas as pd

from mann.grading.grade import Grader
from mann.grading.gradebook import gradebook
from mann.grading.parallel import grade_class
from mann.grading.reference import Reference
from mann.grading.rubric import Rubric
from mann.grading.specimens import make_class
from mann.grading.submission import find_submissions


def grade_timed(reference: Reference, rubric: Rubric, folder: Path, jobs: int) -> tuple[float, list]:
    """(wall seconds, results in the class's order) of grading ``folder`` on ``jobs`` sandboxes."""
    submissions = find_submissions([folder])
    started = time.monotonic()
    results = grade_class(submissions, lambda: Grader(reference, rubric), jobs, lambda s, r, g: r)
    return time.monotonic() - started, results


def grading_times(reference: Reference, rubric: Rubric, size: int, jobs: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-submission seconds of the serial run, by kind; the class's wall time
    serial vs ``jobs`` at once, and whether the two gradebooks agree)."""
    with tempfile.TemporaryDirectory(prefix="mann-bench-class-") as tmp:
        folder = Path(tmp) / "class"
        kinds = make_class(folder, size)
        serial_s, serial = grade_timed(reference, rubric, folder, 1)
        parallel_s, parallel = grade_timed(reference, rubric, folder, jobs)
    books = [gradebook(results).set_index("submission").drop(columns=["problem"]) for results in (serial, parallel)]
    differ = sorted(books[0].index[(books[0] != books[1]).any(axis=1)])
    rows = [{"submission": r.submission.name, "kind": kinds[r.submission.name], "seconds": r.seconds,
             "score": r.score} for r in serial]
    per = pd.DataFrame(rows)
    by_kind = per.groupby("kind", sort=False).agg(submissions=("seconds", "size"), mean_s=("seconds", "mean"),
                                                  median_s=("seconds", "median"), max_s=("seconds", "max"))
    slowest = per.loc[per.groupby("kind", sort=False)["seconds"].idxmax(), ["kind", "submission"]]
    by_kind = by_kind.reset_index().merge(slowest.rename(columns={"submission": "slowest"}), on="kind")
    totals = pd.DataFrame([
        {"run": "serial (--jobs 1)", "submissions": size, "wall_s": serial_s, "s/submission": serial_s / size,
         "speedup": 1.0},
        {"run": f"--jobs {jobs}", "submissions": size, "wall_s": parallel_s, "s/submission": parallel_s / size,
         "speedup": serial_s / parallel_s},
    ])
    totals["gradebook"] = ["", "same as serial" if not differ else "differs: " + ", ".join(differ)]
    return by_kind, totals
