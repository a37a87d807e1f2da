"""The readable report of one graded submission (``report.md``).

Everything a submission can choose (its name, file names, the messages of
what it raised, what it printed) is escaped before it goes into Markdown, so
that it reads as written: no table rows, links, emphasis or raw HTML of its
own. Printed output and tracebacks go into fenced code blocks, which render
nothing.
"""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mann.grading.grade import SubmissionResult

# Characters that start Markdown syntax inline (GitHub-flavoured: tables, strikethrough).
# "_" only where it could open or close emphasis: weight_hh_l0 stays readable.
_INLINE = re.compile(r"([\\`*\[\]|~])|(?<!\w)_|_(?!\w)")
# Line starts that would make a heading, quote, list item or rule of a submission's line.
_LINE_START = re.compile(r"^(\s*)(#|>|\+|=|-{3,}|\d+[.)])", re.MULTILINE)


def md_text(text: str) -> str:
    """``text`` escaped to show literally in Markdown, line breaks kept (the
    grader's own multi-line messages list problems as ``- `` items)."""
    text = html.escape(str(text), quote=False)
    text = _INLINE.sub(lambda m: "\\" + m.group(0), text)
    return _LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2), text)


def md_cell(text: str) -> str:
    """``text`` escaped for one table cell: one line, no cell separators."""
    return md_text(" ".join(str(text).split()))


def md_code(text: str) -> str:
    """An inline code span holding ``text`` literally, whatever backticks it holds."""
    text = " ".join(str(text).split())
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def md_fenced(text: str) -> list[str]:
    """Lines of a fenced code block holding ``text`` (no line of it can close the fence)."""
    return ["```", text.replace("```", "'''"), "```"]


def report_markdown(result: "SubmissionResult", protections: str = "") -> str:
    sub = result.submission
    lines = [
        f"# {md_text(sub.name)}: {result.score:g} / {result.max_score:g}",
        "",
        f"Source: {md_code(sub.source)}" + (f" (code found in {md_code(sub.code or '.')})" if sub.code is not None else ""),
        f"Graded in {result.seconds:.1f} s" + (f"; sandbox: {md_text(protections)}" if protections else ""),
    ]
    if result.problem:
        lines += ["", f"**Not graded:** {md_text(result.problem)}"]
    lines += ["", "| # | test | points | result |", "| --- | --- | --- | --- |"]
    for i, t in enumerate(result.tests, start=1):
        mark = "pass" if t.passed else "FAIL"
        # a course's names carry its ids already ("1-0-basic: ...")
        title = t.spec.name if t.spec.name.startswith(t.spec.id) else f"{t.spec.id}: {t.spec.name}"
        lines.append(f"| {i} | {md_cell(title)} | {t.score:g} / {t.spec.points:g} | {mark} |")
    lines += ["", "## Details"]
    for i, t in enumerate(result.tests, start=1):
        lines += ["", f"### {i}. {md_text(t.spec.id)} ({'pass' if t.passed else 'FAIL'}, {t.seconds:.1f} s)", "",
                  md_text(t.message)]
        if t.details:
            lines += ["", *md_fenced(t.details)]
    return "\n".join(lines) + "\n"
