"""The readable report of one graded submission (``report.md``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mann.grading.grade import SubmissionResult


def report_markdown(result: "SubmissionResult", protections: str = "") -> str:
    sub = result.submission
    lines = [
        f"# {sub.name}: {result.score:g} / {result.max_score:g}",
        "",
        f"Source: `{sub.source}`" + (f" (code found in `{sub.code or '.'}`)" if sub.code is not None else ""),
        f"Graded in {result.seconds:.1f} s" + (f"; sandbox: {protections}" if protections else ""),
    ]
    if result.problem:
        lines += ["", f"**Not graded:** {result.problem}"]
    lines += ["", "| # | test | points | result |", "| --- | --- | --- | --- |"]
    for i, t in enumerate(result.tests, start=1):
        mark = "pass" if t.passed else "FAIL"
        lines.append(f"| {i} | {t.spec.id}: {t.spec.name.replace('|', '/')} | {t.score:g} / {t.spec.points:g} | {mark} |")
    lines += ["", "## Details"]
    for i, t in enumerate(result.tests, start=1):
        lines += ["", f"### {i}. {t.spec.id} ({'pass' if t.passed else 'FAIL'}, {t.seconds:.1f} s)", "", t.message]
        if t.details:
            lines += ["", "```", t.details.replace("```", "'''"), "```"]
    return "\n".join(lines) + "\n"
