"""The rubric: which tests run, with what names, points, visibility, parameters and limits.

A TOML file (``default_rubric.toml`` ships with the package and documents
every key). It is read and checked completely before any grading starts: an
unknown test or key, negative points, a bad visibility or a parameter of the
wrong type is a UsageError naming it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from episodes.errors import UsageError
from mann.grading.battery import CHECKS
from mann.grading.runner import TestLimits

DEFAULT_RUBRIC = Path(__file__).with_name("default_rubric.toml")
VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")
TEST_KEYS = ("name", "points", "visibility", "enabled", "limits")
GRADING_KEYS = {"seed": int, "visibility": str, "stdout_visibility": str}


@dataclass(frozen=True)
class TestSpec:
    """One enabled test: its id in the battery, title, points, visibility,
    parameters (defaults overridden by the rubric) and limits."""

    id: str
    name: str
    points: float
    visibility: str
    params: dict[str, Any]
    limits: TestLimits


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


def load_rubric(path: str | Path | None = None) -> Rubric:
    """Read and check a rubric file (the default one when path is None)."""
    path = Path(path) if path is not None else DEFAULT_RUBRIC
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"--rubric {path}: no such file; copy {DEFAULT_RUBRIC} and edit it") from None
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
    specs = []
    for test_id, entry in tests.items():
        if test_id not in CHECKS:
            raise UsageError(f"{source}: unknown test [tests.{test_id}]; known tests: {', '.join(CHECKS)}")
        specs.append(_spec(test_id, entry, base, source))
    enabled = tuple(s for s in specs if s is not None)
    if not enabled:
        raise UsageError(f"{source}: every test is disabled; enable at least one")
    return Rubric(enabled, seed=grading.get("seed", 0), visibility=grading.get("visibility", "visible"),
                  stdout_visibility=grading.get("stdout_visibility", "hidden"), source=source)


def _spec(test_id: str, entry: dict, base: TestLimits, source: str) -> TestSpec | None:
    where = f"{source} [tests.{test_id}]"
    if not isinstance(entry, dict):
        raise UsageError(f"{where}: must be a table")
    check = CHECKS[test_id]
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
    params = {k: v for k, v in entry.items() if k not in TEST_KEYS}
    for key in params:
        if key not in check.defaults:
            known = ", ".join([*TEST_KEYS, *check.defaults])
            raise UsageError(f"{where}: unknown key {key!r}; known keys: {known}")
    merged = {**check.defaults, **params}
    _check_params(test_id, merged, source)
    problem = check.validate(merged) if check.validate else ""
    if problem:
        raise UsageError(f"{where}: {problem}")
    limits = _limits(replace(base, **{k: v for k, v in check.limits.items()}), entry.get("limits", {}), f"{where}.limits")
    if not enabled:
        return None
    return TestSpec(test_id, name, float(points), visibility, merged, limits)


def _check_params(test_id: str, params: dict, source: str) -> None:
    defaults = CHECKS[test_id].defaults
    for key, value in params.items():
        want = defaults[key]
        where = f"{source} [tests.{test_id}] {key} = {value!r}"
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
