"""The class gradebook (one row per submission, one column per test) and a
summary of the score distribution, as CSV and Markdown; the summary also
lists the class folder's entries that were not graded."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from episodes.files import atomic_write_text
from mann.grading.feedback import md_cell

if TYPE_CHECKING:
    from mann.grading.grade import SubmissionResult
    from mann.grading.submission import Skipped

BUCKETS = 10


def gradebook(results: list["SubmissionResult"]) -> pd.DataFrame:
    """Columns: submission, one per test id (points scored), total, max_score,
    problem, isolation (the sandbox's level: namespaces or fallback)."""
    rows = []
    for r in results:
        row = {"submission": r.submission.name}
        row.update({t.spec.id: t.score for t in r.tests})
        row.update(total=r.score, max_score=r.max_score, problem=r.problem, isolation=r.isolation)
        rows.append(row)
    return pd.DataFrame(rows)


def distribution(book: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(statistics of the total, histogram of the total in 10% buckets)."""
    total, top = book["total"].astype(float), float(book["max_score"].max() or 1.0)
    values = {
        "submissions": len(book), "max_score": top, "mean": total.mean(),
        "std": total.std(ddof=1) if len(book) > 1 else 0.0, "min": total.min(), "25%": total.quantile(0.25),
        "median": total.median(), "75%": total.quantile(0.75), "max": total.max(),
        "full_marks": int((total >= top).sum()),
    }
    stats = pd.DataFrame([{k: f"{float(v):.4g}" for k, v in values.items()}])
    edges = np.linspace(0.0, 1.0, BUCKETS + 1)
    fraction = (total / top).clip(0, 1).to_numpy()
    counts = np.histogram(fraction, bins=edges)[0]
    labels = [f"{100 * a:.0f}-{100 * b:.0f}%" for a, b in zip(edges[:-1], edges[1:])]
    histogram = pd.DataFrame({"score": labels, "submissions": counts, "bar": ["#" * int(c) for c in counts]})
    return stats, histogram


def pass_rates(results: list["SubmissionResult"]) -> pd.DataFrame:
    """How many submissions passed each test, from the verdicts (a passed test may be worth 0 points)."""
    passed: dict[str, list[bool]] = {}
    for r in results:
        for t in r.tests:
            passed.setdefault(t.spec.id, []).append(t.passed)
    return pd.DataFrame([{"test": test, "passed": sum(flags), "of": len(flags), "rate": sum(flags) / len(flags)}
                         for test, flags in passed.items()])


def write_gradebook(results: list["SubmissionResult"], out: Path, skipped: list["Skipped"] = ()) -> tuple[Path, Path]:
    """Write ``gradebook.csv`` and ``summary.md`` into ``out``; returns both paths.

    skipped: entries of the class folder that are not graded, listed in the
    summary (a student whose folder is a link must not vanish unnoticed)."""
    book = gradebook(results)
    csv_path, md_path = Path(out) / "gradebook.csv", Path(out) / "summary.md"
    atomic_write_text(csv_path, book.to_csv(index=False))
    stats, histogram = distribution(book)
    text = "\n\n".join([
        "# Grading summary",
        stats.to_markdown(index=False, disable_numparse=True),
        "## Score distribution",
        histogram.to_markdown(index=False),
        "## Tests passed",
        pass_rates(results).to_markdown(index=False, floatfmt=".2f"),
        *not_graded(skipped),
    ]) + "\n"
    atomic_write_text(md_path, text)
    return csv_path, md_path


def not_graded(skipped: list["Skipped"]) -> list[str]:
    """The summary's section on class folder entries that were not graded (none when all were)."""
    if not skipped:
        return []
    rows = [f"| {md_cell(entry.path.name)} | {md_cell(entry.reason)} |" for entry in skipped]
    return [f"## Not graded: {len(skipped)} class folder {'entry' if len(skipped) == 1 else 'entries'}",
            "\n".join(["| entry | why |", "| --- | --- |", *rows])]
