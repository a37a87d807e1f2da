"""Measured reasons for the gaps between our cells and their papers' figures.

A sweep store may hold ``gaps.toml`` beside its ``sweep.json``: one ``[[gap]]`` table per
cell whose figure is off the published one, with the reason a run measured and the file
that shows it (relative to the store)::

    [[gap]]
    model = "maml-fc"
    N = 5
    K = 1
    reason = "the split: ... 91.3 ± 0.9 on a split of Finn et al.'s kind"
    evidence = "../maml-fc-split/README.md"

``mann report --papers`` prints them under its table, and ``mann report`` of the store under
its "beside the papers" table, each linked from the table's folder.
The file is written by hand after a diagnostic run; this module only reads and checks it.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from episodes.errors import UsageError
from mann.reporting.papers import protocol_tests
from mann.sweep.store import ResultStore

GAPS_FILE = "gaps.toml"
FIELDS = {"model": str, "N": int, "K": int, "reason": str, "evidence": str}
KIND_NAMES = {str: "a quoted string", int: "a whole number"}


@dataclass(frozen=True)
class Gap:
    """Why the cell (model, N, K) differs from its paper's figure, and the file (absolute path) that shows it."""

    model: str
    ways: int
    shots: int
    reason: str
    evidence: Path


def read_gaps(store: Path, tests: set[tuple[str, int, int]]) -> list[Gap]:
    """The gaps of the sweep store ``store`` (none without a gaps.toml), each checked.

    ``tests``: the (model, N, K) tests the store's cells make; a gap for any other cell, a missing
    or misspelt field, or evidence that is not there is refused, naming the entry and the fix.
    """
    path = Path(store) / GAPS_FILE
    if not path.exists():
        return []
    try:
        document = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"{path} is not valid TOML ({error}); fix it or remove it") from None
    others = sorted(set(document) - {"gap"})
    if others:  # a misspelt [[gaps]] would otherwise print nothing, silently
        raise UsageError(f"{path}: unknown table or key(s) {', '.join(others)}; write each gap as a [[gap]] table")
    entries = document.get("gap", [])
    if not isinstance(entries, list):
        raise UsageError(f"{path}: write each gap as a [[gap]] table, not [gap]")
    gaps = []
    for number, entry in enumerate(entries, start=1):
        where = f"{path}, gap {number}"
        unknown = sorted(set(entry) - set(FIELDS))
        missing = [f for f in FIELDS if f not in entry]
        if unknown or missing:
            raise UsageError(f"{where}: " + "; ".join(
                ([f"unknown field(s) {', '.join(unknown)}"] if unknown else [])
                + ([f"missing {', '.join(missing)}"] if missing else []))
                + f"; a gap has exactly {', '.join(FIELDS)}")
        for field, kind in FIELDS.items():
            if not isinstance(entry[field], kind) or isinstance(entry[field], bool):
                raise UsageError(f"{where}: {field} = {entry[field]!r} should be {KIND_NAMES[kind]}")
        key = (entry["model"], entry["N"], entry["K"])
        if key not in tests:
            made = ", ".join(f"{m} {n}-way {k}-shot" for m, n, k in sorted(tests))
            raise UsageError(f"{where}: {key[0]} {key[1]}-way {key[2]}-shot is not a test of this store's cells "
                             f"({made}); put the gap in the store that trains it")
        evidence = (path.parent / entry["evidence"]).resolve()
        if not evidence.is_file():
            raise UsageError(f"{where}: evidence {entry['evidence']!r} is not a file (looked for {evidence}); "
                             "give a path relative to the store")
        if not entry["reason"].strip():
            raise UsageError(f"{where}: reason is empty; say what a run measured")
        gaps.append(Gap(key[0], key[1], key[2], entry["reason"].strip(), evidence))
    return gaps


def store_gaps(folder: Path) -> list[Gap]:
    """The checked gaps.toml of the sweep store ``folder``: only for tests its vinyals cells make."""
    cells = ResultStore(folder).spec().get("cells", {}).values()
    return read_gaps(folder, {test for config in cells for test in protocol_tests(config)})


def gap_lines(gaps: list[Gap], table: pd.DataFrame, out: Path) -> list[str]:
    """Markdown bullets under the table: each gap's cell, its difference, the reason, a link from ``out``."""
    if not gaps:
        return []
    diffs: dict[tuple, list[str]] = {}  # a sweep's table has one row per seed
    for row in table.to_dict("records"):
        if row["ours − published"]:
            diffs.setdefault((row["model"], int(row["N"]), int(row["K"])), []).append(row["ours − published"])
    lines = ["Where a cell is off its paper's figure, the measured reason:", ""]
    for gap in gaps:
        shown = ", ".join(diffs.get((gap.model, gap.ways, gap.shots), []))
        link = Path(os.path.relpath(gap.evidence, out.resolve())).as_posix()
        lines.append(f"- {gap.model} {gap.ways}-way {gap.shots}-shot" + (f" ({shown})" if shown else "")
                     + f": {gap.reason} ([{link}]({link}))")
    return lines + [""]
