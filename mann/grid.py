"""The grid of a sweep: which training runs (cells) it holds, from flags, a TOML file or a preset.

A sweep is a union of *blocks*; each block is a Cartesian product over the
axes N (``ways``), K (``shots``), ``hidden``, ``seeds`` and optionally ``lr``,
``steps``, ``batch_size`` and ``split``. Settings that are not axes
(``test_episodes``, ``eval_every``, ...) are shared by every cell. Flags, TOML
files and presets all describe a sweep with the same mapping::

    name = "my-sweep"          # optional: the folder under results/ and runs/
    seeds = [0, 1, 2]          # an axis at the top level applies to every block
    steps = 25000
    test_episodes = 1000       # a setting: the same for every cell

    [[grid]]                   # blocks; without any, the top level is the one block
    ways = [2]
    shots = [1, 2]

    [[grid]]
    ways = [3, 4]
    shots = [1]

A command-line axis replaces that axis in every block.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

from episodes.errors import UsageError
from mann.config import TrainConfig

# Axis name in files and flags → TrainConfig field, and the type of its values.
AXES: dict[str, tuple[str, type]] = {
    "ways": ("ways", int),
    "shots": ("shots", int),
    "hidden": ("hidden", int),
    "seeds": ("seed", int),
    "lr": ("lr", float),
    "steps": ("steps", int),
    "batch_size": ("batch_size", int),
    "split": ("split", str),
}
# Shared settings: TrainConfig fields that are the same for every cell.
SETTINGS: dict[str, type] = {
    "split_seed": int,
    "rotations": bool,
    "eval_every": int,
    "val_episodes": int,
    "test_episodes": int,
    "eval_seed": int,
    "checkpoint_every": int,
    "fast": bool,
}
# Fields that say how a cell runs, not what it computes: never part of a sweep's identity.
EXECUTION_FIELDS = ("device", "checkpoint_every")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

PRESETS: dict[str, dict[str, Any]] = {
    # The assignment's four graded runs (K, N) = (1,2) (2,2) (1,3) (1,4) at H = 128,
    # plus its follow-up: hidden 8 and 256 on K=1, N=3; full length, three seeds.
    "cs330": {
        "name": "cs330-sweep",
        "seeds": [0, 1, 2],
        "hidden": [128],
        "steps": [25_000],
        "batch_size": [128],
        "lr": [1e-3],
        "split": ["cs330"],
        "grid": [
            {"ways": [2], "shots": [1, 2]},
            {"ways": [3, 4], "shots": [1]},
            {"ways": [3], "shots": [1], "hidden": [8, 256]},
        ],
    },
    # The same table shape, short: a first look in about two minutes on two CPU cores.
    "quick": {
        "name": "quick",
        "seeds": [0],
        "hidden": [128],
        "steps": [1000],
        "batch_size": [32],
        "lr": [1e-3],
        "split": ["cs330"],
        "eval_every": 100,
        "val_episodes": 100,
        "test_episodes": 300,
        "grid": [
            {"ways": [2], "shots": [1, 2]},
            {"ways": [3, 4], "shots": [1]},
            {"ways": [3], "shots": [1], "hidden": [8, 256]},
        ],
    },
}


@dataclass(frozen=True)
class Cell:
    """One training run of a sweep: its stable id (a folder name) and its config."""

    id: str
    config: TrainConfig

    def identity(self) -> dict:
        """The config without how it runs: two cells with equal identities give the same numbers."""
        return {k: v for k, v in self.config.to_dict().items() if k not in EXECUTION_FIELDS}


@dataclass(frozen=True)
class SweepSpec:
    """A named sweep: its blocks (axis → values) and the settings shared by every cell."""

    name: str
    blocks: tuple[dict[str, tuple], ...]
    base: TrainConfig
    source: str = "flags"

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "source": self.source,
            "blocks": [{k: list(v) for k, v in b.items()} for b in self.blocks],
            "settings": {k: getattr(self.base, k) for k in SETTINGS},
        }


def expand(spec: SweepSpec) -> list[Cell]:
    """Every distinct cell of the sweep, in block order then axis order; UsageError if a config is invalid."""
    configs: list[TrainConfig] = []
    for block in spec.blocks:
        values = [block.get(axis, (getattr(spec.base, field),)) for axis, (field, _) in AXES.items()]
        for combo in itertools.product(*values):
            config = replace(spec.base, **{field: v for (field, _), v in zip(AXES.values(), combo)})
            if config not in configs:
                configs.append(config)
    if not configs:
        raise UsageError(f"sweep {spec.name!r} has no cells; give every axis at least one value")
    for config in configs:
        try:
            config.validate()
        except UsageError as err:
            raise UsageError(f"{err} (cell {cell_label(config)} of sweep {spec.name!r})") from None
    varying = [f for f in ("lr", "steps", "batch_size", "split") if len({getattr(c, f) for c in configs}) > 1]
    return [Cell(cell_id(c, varying), c) for c in configs]


def training_cost(config: TrainConfig) -> float:
    """Multiply-adds of a cell's training, up to a constant: steps x batch x sequence x per-position work.

    Per position, layer 1 maps 784+N inputs and H recurrent units to 4H gates and layer 2
    maps H inputs and N recurrent units to 4N gates. Only the ordering of cells uses it.
    """
    n, h = config.ways, config.hidden
    per_position = 4 * h * (784 + n + h) + 4 * n * (h + n)
    return float(config.steps) * config.batch_size * (config.shots + 1) * n * per_position


def costliest_first(cells: list[Cell]) -> list[Cell]:
    """The cells ordered by decreasing training cost (ties keep grid order).

    Parallel workers take cells in this order, so the long runs start first and the short
    ones fill in at the end instead of one long run finishing alone on an otherwise idle pool.
    """
    return sorted(cells, key=lambda c: -training_cost(c.config))


def cell_id(config: TrainConfig, varying: list[str]) -> str:
    """'N3_K1_H128_seed0', plus '_lr0.003', '_B32', '_steps500', '_lake' for axes that vary in the sweep."""
    parts = [f"N{config.ways}", f"K{config.shots}", f"H{config.hidden}", f"seed{config.seed}"]
    suffix = {"lr": f"lr{config.lr:g}", "steps": f"steps{config.steps}", "batch_size": f"B{config.batch_size}",
              "split": config.split}
    return "_".join(parts + [suffix[f] for f in varying])


def cell_label(config: TrainConfig) -> str:
    return f"N={config.ways} K={config.shots} H={config.hidden} seed={config.seed}"


def spec_from_mapping(mapping: Mapping[str, Any], where: str, name: str | None = None) -> SweepSpec:
    """Check a flags/file/preset mapping and turn it into a SweepSpec; UsageError names the bad key."""
    known = {"name", "grid", *AXES, *SETTINGS}
    unknown = sorted(set(mapping) - known)
    if unknown:
        raise UsageError(
            f"{where}: unknown key {unknown[0]!r}; use only {', '.join(sorted(known))}"
        )
    top = {axis: _axis_values(mapping[axis], axis, where) for axis in AXES if axis in mapping}
    grid = mapping.get("grid", [{}])
    if not isinstance(grid, list) or not all(isinstance(b, Mapping) for b in grid):
        raise UsageError(f"{where}: 'grid' must be a list of tables ([[grid]] blocks), each with axis lists")
    if not grid:
        raise UsageError(f"{where}: 'grid' has no blocks, so the sweep has no cells; add a [[grid]] block")
    blocks = []
    for i, block in enumerate(grid, 1):
        bad = sorted(set(block) - set(AXES))
        if bad:
            raise UsageError(f"{where}, grid block {i}: {bad[0]!r} is not an axis; use {', '.join(AXES)}")
        blocks.append({**top, **{a: _axis_values(v, a, f"{where}, grid block {i}") for a, v in block.items()}})
    settings = {key: _setting_value(mapping[key], key, where) for key in SETTINGS if key in mapping}
    base = replace(TrainConfig(), **settings)
    chosen = name if name is not None else mapping.get("name")
    spec = SweepSpec(name="", blocks=tuple(blocks), base=base, source=where)
    return replace(spec, name=check_name(chosen) if chosen is not None else default_name(spec))


def apply_overrides(mapping: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict:
    """The mapping with each given flag replacing that key at the top level and in every block."""
    merged = {k: v for k, v in mapping.items() if k != "grid"}
    merged.update(overrides)
    if "grid" in mapping:
        merged["grid"] = [{k: v for k, v in block.items() if k not in overrides} for block in mapping["grid"]]
    return merged


def preset_mapping(name: str) -> dict:
    if name not in PRESETS:
        raise UsageError(f"--preset {name!r}: unknown preset; choose one of {', '.join(PRESETS)}")
    return json.loads(json.dumps(PRESETS[name]))


def load_config_file(path: str | Path) -> dict:
    """The mapping of a TOML sweep file; UsageError if it is missing, unreadable or not TOML."""
    path = Path(path)
    if path.suffix.lower() not in (".toml", ""):
        raise UsageError(f"--config {path}: sweep files are TOML (.toml); see `mann sweep --help` for the format")
    try:
        text = path.read_text()
    except OSError as err:
        raise UsageError(f"--config {path}: cannot read it ({err.strerror}); check the path") from None
    except UnicodeDecodeError:
        raise UsageError(f"--config {path}: not a text file; give a TOML sweep file") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise UsageError(f"--config {path}: not valid TOML ({err}); fix the file") from None


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.match(name) or name in (".", ".."):
        raise UsageError(
            f"sweep name {name!r}: use letters, digits, '.', '_' and '-' only (it names a folder under results/)"
        )
    return name


def default_name(spec: SweepSpec) -> str:
    """'sweep-<hash of the grid>': the same command finds its folder again, another grid gets another."""
    payload = json.dumps({"blocks": spec.to_dict()["blocks"], "settings": spec.to_dict()["settings"]}, sort_keys=True)
    return "sweep-" + hashlib.sha1(payload.encode()).hexdigest()[:8]


def _axis_values(value: Any, axis: str, where: str) -> tuple:
    kind = AXES[axis][1]
    values = value if isinstance(value, list) else [value]
    if not values:
        raise UsageError(f"{where}: {axis} = [] is empty, so the sweep has no cells; give at least one value")
    accepted = {int: (int,), float: (int, float), str: (str,)}[kind]
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, accepted):
            what = {int: "an integer", float: "a number", str: "a string"}[kind]
            raise UsageError(f"{where}: {axis} value {v!r} is not {what}")
        out.append(kind(v))
    if len(set(out)) != len(out):
        raise UsageError(f"{where}: {axis} lists a value twice ({out}); give each value once")
    return tuple(out)


def _setting_value(value: Any, key: str, where: str):
    kind = SETTINGS[key]
    if kind is bool:
        if not isinstance(value, bool):
            raise UsageError(f"{where}: {key} = {value!r} must be true or false")
    elif not isinstance(value, int) or isinstance(value, bool):
        raise UsageError(f"{where}: {key} = {value!r} must be an integer (one value: settings are not axes)")
    return value

