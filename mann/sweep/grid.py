"""The grid of a sweep: which training runs (cells) it holds, from flags, a TOML file or a preset.

A sweep is a union of *blocks*; each block is a Cartesian product over the
axes ``models``, N (``ways``), K (``shots``), ``hidden``, ``seeds`` and optionally
``lr``, ``steps``, ``batch_size`` and ``split``. Settings that are not axes
(``test_episodes``, ``eval_every``, ...) are shared by every cell. A model's own
hyperparameters go in a ``[params.<model>]`` table (at the top, or inside a
block for that block only). An axis or setting left out takes each model's
published default for the cell's N (``mann train --list-models``). Flags, TOML
files and presets all describe a sweep with the same mapping::

    name = "my-sweep"          # optional: the folder under results/ and runs/
    models = ["mann", "protonet"]
    seeds = [0, 1, 2]          # an axis at the top level applies to every block
    test_episodes = 1000       # a setting: the same for every cell

    [params.protonet]          # this model's hyperparameters, in every block
    train_ways = 20
    steps = 2000

    [[grid]]                   # blocks; without any, the top level is the one block
    ways = [2]
    shots = [1, 2]

    [[grid]]
    ways = [5, 20]
    shots = [1]

A command-line axis or setting replaces it in every block and params table.
Presets are TOML files shipped in ``mann/sweep/presets/``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import tomllib
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from episodes.errors import UsageError
from mann.models.hyperparameters import model_kind, model_label
from mann.training.config import EXECUTION_FIELDS, TrainConfig, make_config, not_applicable

# Axis name in files and flags → TrainConfig field, and the type of its values.
AXES: dict[str, tuple[str, type]] = {
    "models": ("model", str),
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
    "distinct_characters": bool,
    "resize": str,
    "eval_every": int,
    "patience": int,
    "refit": bool,
    "val_episodes": int,
    "test_episodes": int,
    "eval_seed": int,
    "checkpoint_every": int,
    "checkpoint_minutes": float,
    "fast": bool,
}
# How the sweep runs, not what a cell computes (not part of any cell's identity).
OPTIONS: dict[str, type] = {
    "carry_checkpoints": bool,  # keep unfinished cells' checkpoints in the store (mann.sweep.carry)
    "order": str,  # which unfinished cell starts first: "costliest" (default) or "grid" (the file's order)
}
ORDERS = ("costliest", "grid")
# What a [params.<model>] table may set: the model's hyperparameters and its schedule.
PARAMS: dict[str, type] = {
    "steps": int, "batch_size": int, "lr": float, "lr_halve_every": int, "hidden": int, "fast": bool,
    "train_ways": int, "fast_lr": float, "adapt_steps": int, "test_adapt_steps": int, "first_order": bool,
    "maml_impl": str, "published_learner": bool, "eval_every": int, "val_episodes": int, "checkpoint_every": int,
    "train_queries": int, "val_queries": int, "patience": int, "refit": bool, "also_test_ways": list,
    "micro_batch": int,
}
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
PRESET_FOLDER = "presets"


def preset_names() -> list[str]:
    """The presets shipped with the package (mann/sweep/presets/<name>.toml)."""
    folder = resources.files(__package__) / PRESET_FOLDER
    return sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml"))


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
    """A named sweep: its blocks (axis → values, plus a block's own params), the settings shared by
    every cell, each model's params, and the device every cell runs on."""

    name: str
    blocks: tuple[dict[str, Any], ...]
    settings: dict[str, Any] = field(default_factory=dict)
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: str = "flags"
    device: str = "auto"
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "source": self.source,
            "blocks": [{k: (list(v) if isinstance(v, tuple) else v) for k, v in b.items()} for b in self.blocks],
            "settings": dict(self.settings),
            "params": self.params,
            **({"options": dict(self.options)} if self.options else {}),
        }


def expand(spec: SweepSpec) -> list[Cell]:
    """Every distinct cell of the sweep, in block order then axis order; UsageError if a config is invalid."""
    configs: list[TrainConfig] = []
    for block in spec.blocks:
        axes = [a for a in AXES if a in block]
        for combo in itertools.product(*(block[a] for a in axes)):
            values = {AXES[a][0]: v for a, v in zip(axes, combo)}
            model = values.pop("model", "mann")
            try:
                # A shared axis or setting that does not apply to this model (hidden for ProtoNets) is left out.
                foreign = not_applicable(model_kind(model))
                shared = {k: v for k, v in {**spec.settings, **values}.items() if k not in foreign}
                params = {**spec.params.get(model, {}), **block.get("params", {}).get(model, {})}
                config = make_config(model, **{"ways": 5, **shared, **params, "device": spec.device})
            except UsageError as err:
                raise UsageError(f"{err} (cell {cell_label(model, values)} of sweep {spec.name!r})") from None
            if config not in configs:
                configs.append(config)
    if not configs:
        raise UsageError(f"sweep {spec.name!r} has no cells; give every axis at least one value")
    return [Cell(i, c) for i, c in zip(cell_ids(configs), configs)]


def store_resize(spec: SweepSpec) -> str:
    """The resize every cell's store needs (one store serves the sweep); UsageError if the cells disagree."""
    wanted = sorted({cell.config.resize for cell in expand(spec)})
    if len(wanted) != 1:
        raise UsageError(f"the sweep's cells ask for resize {' and '.join(wanted)}; one sweep uses one store, "
                         f"so give one resize (split the sweep in two)")
    return wanted[0]


def cell_ids(configs: list[TrainConfig]) -> list[str]:
    """A stable, readable folder name per config: the axes that tell it apart from its neighbours.

    lr, steps, batch size and split appear when they vary among the sweep's configs of the same
    model; configs that still share a name (they differ in a model's own hyperparameter) get a
    short hash of their settings.
    """
    several_models = len({c.model for c in configs}) > 1
    ids = []
    for config in configs:
        same_model = [c for c in configs if c.model == config.model]
        varying = [f for f in ("lr", "steps", "batch_size", "split") if len({getattr(c, f) for c in same_model}) > 1]
        ids.append(cell_id(config, (["model"] if several_models else []) + varying))
    shared = {i for i, name in enumerate(ids) if ids.count(name) > 1}
    for i, config in enumerate(configs):
        if i in shared:
            settings = json.dumps({k: v for k, v in config.to_dict().items() if k not in EXECUTION_FIELDS}, sort_keys=True)
            ids[i] += "_" + hashlib.sha1(settings.encode()).hexdigest()[:6]
    return ids


def training_cost(config: TrainConfig) -> float:
    """Multiply-adds of a cell's training, up to a constant: steps x batch x images x per-image work.

    MANN: per position, layer 1 maps 784+N inputs and H recurrent units to 4H gates and
    layer 2 maps H inputs and N recurrent units to 4N gates. The CNNs: about 10M
    multiply-adds per image for ProtoNets' embedding, 3M for MAML's strided learner,
    times the inner steps. Only the ordering of cells uses it.
    """
    n, images = config.training_ways, config.batch_size * (config.shots + 1) * config.training_ways
    if config.kind == "black-box":
        h = config.hidden
        per_image = 4 * h * (784 + n + h) + 4 * n * (h + n)
    elif config.kind == "gradient":
        per_image = 3e6 * (config.adapt_steps + 1)
    else:
        per_image = 1e7
    return float(config.steps) * images * per_image


def start_order(cells: list[Cell], order: str | None = None) -> list[Cell]:
    """The cells in the order workers take them: :func:`costliest_first` (the default, None or
    "costliest"), or as the grid lists them (``order = "grid"``: a sweep that spans sessions
    finishes its first cells first)."""
    return list(cells) if order == "grid" else costliest_first(cells)


def costliest_first(cells: list[Cell]) -> list[Cell]:
    """The cells ordered by decreasing training cost (ties keep grid order).

    Parallel workers take cells in this order, so the long runs start first and the short
    ones fill in at the end instead of one long run finishing alone on an otherwise idle pool.
    """
    return sorted(cells, key=lambda c: -training_cost(c.config))


def cell_id(config: TrainConfig, varying: list[str]) -> str:
    """'N3_K1_H128_seed0' (a MANN-only sweep); 'protonet_N5_K1_seed0' when the model is not the MANN or
    models vary; plus '_lr0.003', '_B32', '_steps500', '_lake' for other axes that vary in the sweep."""
    parts = [config.label] if "model" in varying or config.model != "mann" else []
    parts += [f"N{config.ways}", f"K{config.shots}"]
    parts += [f"H{config.hidden}"] if config.hidden is not None else []
    parts += [f"seed{config.seed}"]
    suffix = {"lr": f"lr{config.lr:g}", "steps": f"steps{config.steps}", "batch_size": f"B{config.batch_size}",
              "split": config.split}
    return "_".join(parts + [suffix[f] for f in varying if f in suffix])


def cell_label(model: str, values: Mapping[str, Any]) -> str:
    shown = " ".join(f"{k}={values[k]}" for k in ("ways", "shots", "hidden", "seed") if k in values)
    return f"{model_label(model)} {shown}".strip()


def spec_from_mapping(mapping: Mapping[str, Any], where: str, name: str | None = None, device: str = "auto") -> SweepSpec:
    """Check a flags/file/preset mapping and turn it into a SweepSpec; UsageError names the bad key."""
    known = {"name", "grid", "params", *AXES, *SETTINGS, *OPTIONS}
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
        here = f"{where}, grid block {i}"
        bad = sorted(set(block) - set(AXES) - {"params"})
        if bad:
            raise UsageError(f"{here}: {bad[0]!r} is not an axis; use {', '.join(AXES)} (or a params table)")
        axes = {a: _axis_values(v, a, here) for a, v in block.items() if a != "params"}
        blocks.append({**top, **axes, **({"params": _params(block["params"], here)} if "params" in block else {})})
    settings = {key: _setting_value(mapping[key], key, where) for key in SETTINGS if key in mapping}
    options = {key: _typed(mapping[key], OPTIONS[key], f"{where}: {key}") for key in OPTIONS if key in mapping}
    if options.get("order", "costliest") not in ORDERS:
        raise UsageError(f"{where}: order {options['order']!r} is not one of {', '.join(ORDERS)} (costliest: the "
                         "longest cells start first; grid: the cells in the file's order, for runs that span sessions)")
    params = _params(mapping.get("params", {}), where)
    chosen = name if name is not None else mapping.get("name")
    spec = SweepSpec(name="", blocks=tuple(blocks), settings=settings, params=params, source=where, device=device,
                     options=options)
    return replace(spec, name=check_name(chosen) if chosen is not None else default_name(spec))


def apply_overrides(mapping: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict:
    """The mapping with each given flag replacing that key at the top level, in every block and
    in every params table (``--steps 100`` shortens every model)."""
    def strip_params(params: Mapping[str, Any]) -> dict:
        return {m: {k: v for k, v in table.items() if k not in overrides} if isinstance(table, Mapping) else table
                for m, table in params.items()}

    merged = {k: v for k, v in mapping.items() if k != "grid"}
    merged.update(overrides)
    if isinstance(mapping.get("params"), Mapping):
        merged["params"] = strip_params(mapping["params"])
    if "grid" in mapping:
        blocks = []
        for block in mapping["grid"]:
            kept = {k: v for k, v in block.items() if k not in overrides}
            if isinstance(kept.get("params"), Mapping):
                kept["params"] = strip_params(kept["params"])
            blocks.append(kept)
        merged["grid"] = blocks
    return merged


def preset_mapping(name: str) -> dict:
    """The mapping of a shipped preset (mann/sweep/presets/<name>.toml)."""
    names = preset_names()
    if name not in names:
        raise UsageError(f"--preset {name!r}: unknown preset; choose one of {', '.join(names)}")
    text = (resources.files(__package__) / PRESET_FOLDER / f"{name}.toml").read_text()
    return tomllib.loads(text)


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
    described = spec.to_dict()
    payload = json.dumps({k: described[k] for k in ("blocks", "settings", "params") if described[k]}, sort_keys=True)
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
    if kind is str:
        if not isinstance(value, str):
            raise UsageError(f"{where}: {key} = {value!r} must be a string")
    elif kind is bool:
        if not isinstance(value, bool):
            raise UsageError(f"{where}: {key} = {value!r} must be true or false")
    elif kind is float:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise UsageError(f"{where}: {key} = {value!r} must be a number (one value: settings are not axes)")
        return float(value)
    elif not isinstance(value, int) or isinstance(value, bool):
        raise UsageError(f"{where}: {key} = {value!r} must be an integer (one value: settings are not axes)")
    return value


def _params(value: Any, where: str) -> dict[str, dict[str, Any]]:
    """{model: {hyperparameter: value}} of a params table, each model and key checked."""
    if not isinstance(value, Mapping):
        raise UsageError(f"{where}: 'params' must be a table of tables, e.g. [params.protonet] train_ways = 20")
    out = {}
    for model, table in value.items():
        model_kind(model)  # UsageError for an unknown model
        if not isinstance(table, Mapping):
            raise UsageError(f"{where}: params.{model} must be a table of hyperparameters, e.g. steps = 2000")
        bad = sorted(set(table) - set(PARAMS))
        if bad:
            raise UsageError(f"{where}: params.{model}: {bad[0]!r} is not a model setting; use {', '.join(PARAMS)}")
        out[model] = {k: _typed(v, PARAMS[k], f"{where}: params.{model}.{k}") for k, v in table.items()}
    return out


def _typed(value: Any, kind: type, what: str):
    if kind is list:  # a list of integers (also_test_ways)
        if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, int) for v in value):
            raise UsageError(f"{what} = {value!r} must be a list of integers, e.g. [5, 20]")
        return list(value)
    if kind is bool:
        if not isinstance(value, bool):
            raise UsageError(f"{what} = {value!r} must be true or false")
        return value
    accepted = (int, float) if kind is float else (kind,)
    if isinstance(value, bool) or not isinstance(value, accepted):
        raise UsageError(f"{what} = {value!r} must be {'a number' if kind is float else 'an integer'}")
    return kind(value)

