"""The rubric: which tests run, with what names, points, visibility, parameters and limits.

A TOML file (``default_rubric.toml`` ships with the package and documents
every key), or the name of one that ships with it (``<name>_rubric.toml``
beside this module: ``default``, ``xcs330``). It is read and checked
completely before any grading starts: an unknown test or key, negative
points, a bad visibility or a parameter of the wrong type is a UsageError
naming it.

A test runs one check of the battery (its table's id, or ``check = "<id>"``
for a test with an id of its own, so that one check can appear several times
with different parameters) or several (``all_of = [...]``: all must pass for
its points, as when one course test covers what the battery checks apart).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from episodes.errors import UsageError
from mann.grading.battery import CHECKS
from mann.grading.runner import TestLimits

PACKAGED_SUFFIX = "_rubric.toml"
DEFAULT_RUBRIC = Path(__file__).with_name(f"default{PACKAGED_SUFFIX}")
VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")
TEST_KEYS = ("name", "points", "visibility", "enabled", "limits", "check", "all_of")
GRADING_KEYS = {"seed": int, "visibility": str, "stdout_visibility": str}
# a test id is a gradebook column and a file-name-safe label (course ids such as 3-0-hidden fit)
TEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class Part:
    """One check a test runs: its id in the battery, parameters (defaults
    overridden by the rubric) and limits."""

    check: str
    params: dict[str, Any]
    limits: TestLimits


@dataclass(frozen=True)
class TestSpec:
    """One enabled test: its id (the rubric's), title, points, visibility and
    the checks it runs (it passes when every one passes)."""

    id: str
    name: str
    points: float
    visibility: str
    parts: tuple[Part, ...]

    @property
    def params(self) -> dict[str, Any]:
        """The parameters of a test that runs one check."""
        return self._only().params

    @property
    def limits(self) -> TestLimits:
        """The limits of a test that runs one check."""
        return self._only().limits

    def _only(self) -> Part:
        if len(self.parts) != 1:
            raise ValueError(f"test {self.id} runs {len(self.parts)} checks; read each one's in .parts")
        return self.parts[0]


@dataclass(frozen=True)
class Rubric:
    tests: tuple[TestSpec, ...]
    seed: int = 0
    visibility: str = "visible"
    stdout_visibility: str = "hidden"
    source: str = str(DEFAULT_RUBRIC)

    @property
    def max_score(self) -> float:
        return float(sum(t.points for t in self.tests))


def packaged_rubrics() -> dict[str, Path]:
    """{name: file} of the rubrics shipped with the package (``<name>_rubric.toml``)."""
    return {p.name[: -len(PACKAGED_SUFFIX)]: p for p in sorted(DEFAULT_RUBRIC.parent.glob(f"*{PACKAGED_SUFFIX}"))}


def rubric_path(rubric: str | Path | None) -> Path:
    """The file of ``rubric``: a packaged rubric's name (a str), else a path."""
    if rubric is None:
        return DEFAULT_RUBRIC
    packaged = packaged_rubrics()
    if isinstance(rubric, str) and rubric in packaged:
        return packaged[rubric]
    path = Path(rubric)
    if not path.exists() and path.suffix == "" and path.parent == Path("."):
        raise UsageError(f"--rubric {rubric}: no packaged rubric of that name and no such file; packaged rubrics: "
                         f"{', '.join(packaged)} (or give the path of a rubric TOML)")
    return path


def load_rubric(rubric: str | Path | None = None) -> Rubric:
    """Read and check a rubric: a packaged one by name (``"xcs330"``), a file,
    or the default one when rubric is None."""
    path = rubric_path(rubric)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"--rubric {path}: no such file; copy {DEFAULT_RUBRIC} and edit it, or name a packaged "
                         f"rubric: {', '.join(packaged_rubrics())}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"--rubric {path}: cannot read it ({err})") from None
    except tomllib.TOMLDecodeError as err:
        raise UsageError(f"--rubric {path}: not valid TOML ({err})") from None
    return parse_rubric(data, str(path))


def parse_rubric(data: dict, source: str = "rubric") -> Rubric:
    unknown = set(data) - {"grading", "limits", "tests"}
    if unknown:
        raise UsageError(f"{source}: unknown section [{sorted(unknown)[0]}]; use [grading], [limits] and [tests.<id>]")
    grading = data.get("grading", {})
    for key, value in grading.items():
        if key not in GRADING_KEYS:
            raise UsageError(f"{source}: unknown key grading.{key}; known: {', '.join(GRADING_KEYS)}")
        if not isinstance(value, GRADING_KEYS[key]) or isinstance(value, bool):
            raise UsageError(f"{source}: grading.{key} = {value!r} should be a {GRADING_KEYS[key].__name__}")
    for key in ("visibility", "stdout_visibility"):
        if key in grading and grading[key] not in VISIBILITIES:
            raise UsageError(f"{source}: grading.{key} = {grading[key]!r}; choose one of {', '.join(VISIBILITIES)}")
    base = _limits(TestLimits(), data.get("limits", {}), f"{source} [limits]")
    tests = data.get("tests", {})
    if not isinstance(tests, dict) or not tests:
        raise UsageError(f"{source}: no [tests.<id>] table; known tests: {', '.join(CHECKS)}")
    specs = [_spec(test_id, entry, base, source) for test_id, entry in tests.items()]
    enabled = tuple(s for s in specs if s is not None)
    if not enabled:
        raise UsageError(f"{source}: every test is disabled; enable at least one")
    return Rubric(enabled, seed=grading.get("seed", 0), visibility=grading.get("visibility", "visible"),
                  stdout_visibility=grading.get("stdout_visibility", "hidden"), source=source)


def _checks(test_id: str, entry: dict, where: str, source: str) -> tuple[list[str], bool]:
    """(the checks the test runs, whether their parameters are in subtables named by check)."""
    known = ", ".join(CHECKS)
    if "check" in entry and "all_of" in entry:
        raise UsageError(f"{where}: give check (one check) or all_of (several), not both")
    if "all_of" in entry:
        names = entry["all_of"]
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise UsageError(f"{where}: all_of = {names!r}; give a list of check ids, e.g. "
                             f"[\"support_rows\", \"query_shuffled\"]")
        checks, subtables = names, True
    elif "check" in entry:
        if not isinstance(entry["check"], str):
            raise UsageError(f"{where}: check = {entry['check']!r}; give one check id as a string")
        checks, subtables = [entry["check"]], False
    elif test_id in CHECKS:
        return [test_id], False
    else:
        raise UsageError(f"{source}: unknown test [tests.{test_id}]; known tests: {known} (or name the "
                         f"check it runs with check = \"<id>\")")
    for name in checks:
        if name not in CHECKS:
            raise UsageError(f"{where}: unknown check {name!r}; known checks: {known}")
    repeated = sorted({n for n in checks if checks.count(n) > 1})
    if repeated:
        raise UsageError(f"{where}: all_of names {repeated[0]!r} twice; each check once (give another test "
                         f"for other parameters)")
    if not TEST_ID.match(test_id):
        raise UsageError(f"{where}: the test id {test_id!r} may hold only letters, digits, '.', '_' and '-'")
    return checks, subtables


def _spec(test_id: str, entry: dict, base: TestLimits, source: str) -> TestSpec | None:
    where = f"{source} [tests.{test_id}]"
    if not isinstance(entry, dict):
        raise UsageError(f"{where}: must be a table")
    checks, subtables = _checks(test_id, entry, where, source)
    enabled = entry.get("enabled", True)
    if not isinstance(enabled, bool):
        raise UsageError(f"{where}: enabled = {enabled!r}; use true or false")
    points = entry.get("points")
    if isinstance(points, bool) or not isinstance(points, (int, float)):
        raise UsageError(f"{where}: points = {points!r}; give a number >= 0")
    if points < 0:
        raise UsageError(f"{where}: points = {points} is negative; use 0 or more")
    visibility = entry.get("visibility", "visible")
    if visibility not in VISIBILITIES:
        raise UsageError(f"{where}: visibility = {visibility!r}; choose one of {', '.join(VISIBILITIES)}")
    name = entry.get("name", test_id)
    if not isinstance(name, str) or not name.strip():
        raise UsageError(f"{where}: name = {name!r}; give a non-empty title")
    rest = {k: v for k, v in entry.items() if k not in TEST_KEYS}
    if subtables:
        extra = [k for k in rest if k not in checks]
        if extra:
            raise UsageError(f"{where}: unknown key {extra[0]!r}; with all_of, give each check's parameters "
                             f"in its own table [tests.{test_id}.<check>] (checks: {', '.join(checks)})")
        given = {}
        for check_id in checks:
            table = rest.get(check_id, {})
            if not isinstance(table, dict):
                raise UsageError(f"{where}: {check_id} = {table!r}; give its parameters as a table "
                                 f"[tests.{test_id}.{check_id}]")
            given[check_id] = table
    else:
        given = {checks[0]: rest}
    limits = (entry.get("limits", {}), f"{where}.limits")
    parts = tuple(_part(check_id, given[check_id], base, limits,
                        f"{source} [tests.{test_id}.{check_id}]" if subtables else where) for check_id in checks)
    if not enabled:
        return None
    return TestSpec(test_id, name, float(points), visibility, parts)


def _part(check_id: str, params: dict, base: TestLimits, limits: tuple[dict, str], where: str) -> Part:
    """The check with the rubric's parameters over its defaults and the test's
    limits (overrides, where they are written) over its own and ``base``."""
    check = CHECKS[check_id]
    for key in params:
        if key not in check.defaults:
            known = ", ".join([*TEST_KEYS, *check.defaults])
            raise UsageError(f"{where}: unknown key {key!r}; known keys: {known}")
    merged = {**check.defaults, **params}
    _check_params(check_id, merged, where)
    problem = check.validate(merged) if check.validate else ""
    if problem:
        raise UsageError(f"{where}: {problem}")
    return Part(check_id, merged, _limits(replace(base, **check.limits), *limits))


def _check_params(check_id: str, params: dict, at: str) -> None:
    defaults = CHECKS[check_id].defaults
    for key, value in params.items():
        want = defaults[key]
        where = f"{at} {key} = {value!r}"
        if isinstance(want, bool) != isinstance(value, bool):
            raise UsageError(f"{where}: expected {type(want).__name__} like {want!r}")
        if isinstance(want, float) and not isinstance(value, (int, float)):
            raise UsageError(f"{where}: expected a number like {want!r}")
        if isinstance(want, int) and not isinstance(want, bool):
            if not isinstance(value, int) or value < 1:
                raise UsageError(f"{where}: expected a whole number >= 1 like {want!r}")
        if isinstance(want, list):
            if not isinstance(value, list) or not value or any(
                not isinstance(row, list) or len(row) != len(want[0]) for row in value
            ):
                raise UsageError(f"{where}: expected a list of {len(want[0])}-element lists like {want!r}")
        if isinstance(want, float) and value < 0:
            raise UsageError(f"{where}: expected a number >= 0")


def _limits(base: TestLimits, overrides: dict, where: str) -> TestLimits:
    if not isinstance(overrides, dict):
        raise UsageError(f"{where}: must be a table of limits")
    known = {f.name for f in fields(TestLimits)}
    for key, value in overrides.items():
        if key not in known:
            raise UsageError(f"{where}: unknown limit {key!r}; known: {', '.join(sorted(known))}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise UsageError(f"{where}: {key} = {value!r}; give a positive number")
    values = {k: (int(v) if k != "wall_s" else float(v)) for k, v in overrides.items()}
    return replace(base, **values)
