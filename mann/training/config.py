"""Typed configuration of one training run of any model, checked once, where it is built.

Build a config with :func:`make_config`: it starts from the model's published
hyperparameters for N (:mod:`mann.models.hyperparameters`), applies every value
given, and checks the result. A :class:`TrainConfig` that exists is valid: its
``__post_init__`` raises UsageError naming the first bad value and its fix.
Pure Python (no torch), so the command line can check flags before importing it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from episodes.errors import UsageError
from episodes.layout import DRAWERS, RESIZES, SCHEMES, episode_shape_problems
from mann.models.hyperparameters import (
    EPISODE_WISE_MODELS, FLAGS, GRADIENT_MODELS, KIND_FIELDS, LEGACY_MAML_IMPL, MAML_IMPLS, MODELS, is_plugin, model_kind, model_label, published_defaults, resolve_plugin_spec,
)

Check = tuple[bool, str]


@dataclass(frozen=True)
class TrainConfig:
    """One run. Defaults are the MANN's (the assignment's: Adam 1e-3, B=128, H=128, 25k steps).

    model: a name of :data:`mann.models.hyperparameters.MODELS` or a user's class
        (``file.py:Class``). batch_size: episodes per step (a meta-batch).
    lr: Adam's learning rate; lr_halve_every: halve it every so many steps (0: never).
    hidden, fast: black-box models only. fast_lr, adapt_steps, test_adapt_steps,
        first_order, maml_impl: gradient-based models only (maml_impl: "vectorized",
        every task of a meta-batch adapted at once, or "learn2learn", its per-task loop),
        published_learner (MAML and ANIL on Finn et al.'s learner: mann.models.nets). train_ways, train_queries: N and the
        queries per class of ProtoNets' training episodes (it may train wider than it
        tests); val_queries: queries per class of its validation episodes. A field
        that does not apply is None.
    patience: stop when the validation loss has not improved for this many
        evaluations in a row (0: never) and test the weights of the best evaluation.
    refit: after stopping, train fresh weights on train + val for as many steps as
        the first run took (its best step plus the patience), and test those
        (Snell et al.'s final models); needs patience.
    also_test_ways: more N to test the final weights on, each on its own fixed
        episodes (one ProtoNets model serves the 5- and 20-way tests).
    distinct_characters: draw every episode (training, validation, test) as N distinct
        characters at one random rotation each, as Finn et al.'s MAML code draws Omniglot
        tasks, instead of N distinct classes (needs rotated classes: vinyals or rotations).
    resize: how the store's 28x28 images were made (episodes.omniglot: lanczos, or
        nearest as the papers' code did); the store a run gets must match it.
    micro_batch: run forward and backward on so many episodes of a step at a time and
        add up their gradients (None: the whole batch at once). The mean loss and its
        gradient are the batch's, up to float rounding, for models that compute each
        episode on their own (:data:`mann.models.hyperparameters.EPISODE_WISE_MODELS`);
        it only changes memory and speed, so, like the device, it is not part of what a
        run computes and may change when a run resumes.
    """

    model: str = "mann"
    ways: int = 5
    shots: int = 1
    hidden: int | None = 128
    steps: int = 25_000
    batch_size: int = 128
    lr: float = 1e-3
    lr_halve_every: int = 0
    train_ways: int | None = None
    train_queries: int | None = None
    val_queries: int | None = None
    fast_lr: float | None = None
    adapt_steps: int | None = None
    test_adapt_steps: int | None = None
    first_order: bool | None = None
    maml_impl: str | None = None
    published_learner: bool | None = None
    seed: int = 0
    split: str = "cs330"
    split_seed: int = 1
    rotations: bool = False
    distinct_characters: bool = False
    resize: str = "lanczos"
    eval_every: int = 100
    patience: int = 0
    refit: bool = False
    val_episodes: int = 250
    test_episodes: int = 1000
    also_test_ways: tuple[int, ...] = ()
    eval_seed: int = 1234
    checkpoint_every: int = 1000
    checkpoint_minutes: float = 5.0
    device: str = "auto"
    micro_batch: int | None = None
    fast: bool | None = True

    def __post_init__(self) -> None:
        if isinstance(self.also_test_ways, list):  # from JSON or TOML
            object.__setattr__(self, "also_test_ways", tuple(self.also_test_ways))
        raise_first_failure(config_checks(self))

    @property
    def kind(self) -> str:
        return model_kind(self.model)

    @property
    def label(self) -> str:
        """The model's short name (a plugin's class name)."""
        return model_label(self.model)

    @property
    def training_ways(self) -> int:
        """N of the training episodes (ProtoNets' train_ways; the test N for every other model)."""
        return self.train_ways or self.ways

    @property
    def queries(self) -> int:
        """Q, the query rows of a training episode (ProtoNets' train_queries; 1 for every other model)."""
        return self.train_queries or 1

    @property
    def validation_queries(self) -> int:
        """The query rows of a validation episode (ProtoNets' val_queries; 1 for every other model)."""
        return self.val_queries or 1

    def to_dict(self) -> dict:
        """Every field, JSON-ready (also_test_ways as a list)."""
        return {**asdict(self), "also_test_ways": list(self.also_test_ways)}

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """The config of a summary or checkpoint row (unknown keys ignored; legacy rows are MANN runs)."""
        return cls(**with_legacy_fields(values))


def with_legacy_fields(values: dict) -> dict:
    """A stored config's fields (a summary's, a checkpoint's; other keys dropped), with those it
    predates that do not take the dataclass's defaults filled in as they were then."""
    values = {k: v for k, v in values.items() if k in FIELDS}
    if values.get("model") == "protonet":  # ProtoNets runs from before these fields had one query row
        values.setdefault("train_queries", 1)
        values.setdefault("val_queries", 1)
    if values.get("model") in GRADIENT_MODELS:
        if "maml_impl" not in values:  # gradient runs from before maml_impl used learn2learn's loop
            values["maml_impl"] = LEGACY_MAML_IMPL
        values.setdefault("train_queries", 1)  # ... and one query row
        values.setdefault("published_learner", False)  # ... and this project's learners
    return values


def stored_config(values: dict) -> dict:
    """Every field of a stored config, comparable with :meth:`TrainConfig.to_dict` (not checked:
    a stored config is compared, not run)."""
    return {**TrainConfig().to_dict(), **with_legacy_fields(values)}


def refit_length(best_step: int, patience: int, eval_every: int) -> int:
    """Steps of the refit on trainval: the best step plus the patience (Snell et al.'s trainval.py)."""
    return best_step + patience * eval_every


FIELDS = tuple(f.name for f in fields(TrainConfig))
# Fields that say how a run executes, not what it computes.
EXECUTION_FIELDS = ("device", "checkpoint_every", "checkpoint_minutes", "micro_batch")


def make_config(model: str = "mann", ways: int = 5, **given) -> TrainConfig:
    """The model's published defaults for N = ``ways``, then every value in ``given`` that is not None.

    UsageError for an unknown model or field, a hyperparameter given to a model it
    does not apply to (e.g. ``--fast-lr`` for the MANN), or any bad value.
    """
    unknown = sorted(set(given) - set(FIELDS))
    if unknown:
        raise UsageError(f"{unknown[0]!r} is not a training setting; use {', '.join(FIELDS)}")
    if not isinstance(model, str):
        raise UsageError(f"--model {model!r}: name a model ({', '.join(MODELS)}) or a class file.py:Class")
    kind = model_kind(model)
    if is_plugin(model):
        model = resolve_plugin_spec(model)
    foreign = [k for k, v in given.items() if v is not None and k in not_applicable(kind)]
    if foreign:
        users = ", ".join(k for k, names in KIND_FIELDS.items() if foreign[0] in names)
        raise UsageError(f"{FLAGS[foreign[0]]} {given[foreign[0]]}: applies to {users} models only, "
                         f"not {model_label(model)}; drop it")
    values = {**{k: None for k in not_applicable(kind)}, **published_defaults(model, ways),
              **{k: v for k, v in given.items() if v is not None}}
    return TrainConfig(model=model, ways=ways, **values)


def not_applicable(kind: str) -> tuple[str, ...]:
    """The hyperparameters of every other kind of learner (a field two kinds share applies to both)."""
    own = KIND_FIELDS.get(kind, ())
    return tuple(dict.fromkeys(f for k, names in KIND_FIELDS.items() if k != kind for f in names if f not in own))


def config_checks(c: TrainConfig) -> list[Check]:
    """(ok, message) for every rule a config must meet; the first failing one is raised."""
    if not isinstance(c.model, str):
        return [(False, f"--model {c.model!r}: name a model or a class file.py:Class")]
    kind = model_kind(c.model)
    checks: list[Check] = [(False, problem) for problem in episode_shape_problems(c.ways, c.shots, c.batch_size)]
    for name in not_applicable(kind):
        value = getattr(c, name)
        checks.append((value is None, f"{FLAGS[name]} {value}: does not apply to {c.label}; build configs with "
                                      f"make_config, which leaves it out"))
    if kind == "black-box":
        checks.append((isinstance(c.hidden, int) and c.hidden >= 1, f"--hidden {c.hidden}: use a hidden size >= 1"))
    if kind == "gradient":
        checks += [
            ((c.fast_lr or 0) > 0, f"--fast-lr {c.fast_lr}: use a positive step size"),
            ((c.adapt_steps or 0) >= 1, f"--adapt-steps {c.adapt_steps}: use 1 or more"),
            ((c.test_adapt_steps or 0) >= 1, f"--test-adapt-steps {c.test_adapt_steps}: use 1 or more"),
            (isinstance(c.first_order, bool), f"--first-order {c.first_order}: true or false"),
            (c.maml_impl in MAML_IMPLS, f"--maml-impl {c.maml_impl!r}: choose {' or '.join(MAML_IMPLS)}"),
            (isinstance(c.published_learner, bool), f"--published-learner {c.published_learner}: true or false"),
        ]
        if c.published_learner:
            checks += [
                (c.maml_impl == "vectorized", f"--published-learner with --maml-impl {c.maml_impl}: the published "
                                              "learner is built by the vectorized implementation only; drop --maml-impl"),
                (not c.model.startswith("metasgd"), f"--published-learner with --model {c.model}: it is Finn et al.'s "
                                                    "MAML learner; use maml-cnn, maml-fc or anil-cnn, or drop it"),
            ]
    if kind in ("metric", "gradient"):
        checks.append((isinstance(c.train_queries, int) and c.train_queries >= 1,
                       f"--train-queries {c.train_queries}: use 1 or more queries per class"))
    if kind == "metric":
        checks.append((isinstance(c.train_ways, int) and c.train_ways >= 2,
                       f"--train-ways {c.train_ways}: use 2 or more classes"))
        checks.append((isinstance(c.val_queries, int) and c.val_queries >= 1,
                       f"--val-queries {c.val_queries}: use 1 or more queries per class"))
    if kind in ("metric", "gradient"):
        for flag, q in (("--train-queries", c.train_queries), ("--val-queries", c.val_queries)):
            if isinstance(q, int) and isinstance(c.shots, int):
                checks.append((c.shots + q <= DRAWERS,
                               f"{flag} {q}: K + queries = {c.shots + q} distinct drawers per class, but Omniglot "
                               f"has {DRAWERS}; use {flag} {DRAWERS - c.shots} or fewer"))
    checks += [
        (c.steps >= 0, f"--steps {c.steps}: use 0 or more training steps"),
        (c.lr > 0, f"--lr {c.lr}: use a positive learning rate"),
        (c.lr_halve_every >= 0, f"--lr-halve-every {c.lr_halve_every}: use 0 (never) or more steps"),
        (c.split in SCHEMES, f"--split {c.split!r}: choose one of {', '.join(SCHEMES)}"),
        (c.resize in RESIZES, f"--resize {c.resize!r}: choose one of {', '.join(RESIZES)}"),
        (not (c.split == "vinyals" and c.rotations),
         "--rotations does not apply to --split vinyals: its lists already hold every character at "
         "0/90/180/270 degrees as four classes; drop --rotations"),
        (not c.distinct_characters or c.rotations or c.split == "vinyals",
         f"--distinct-characters with --split {c.split} and no --rotations: every character is one class, so "
         f"distinct classes are distinct characters already; add --rotations, or drop --distinct-characters"),
        (c.eval_every >= 1, f"--eval-every {c.eval_every}: use 1 or more steps"),
        (isinstance(c.patience, int) and c.patience >= 0,
         f"--patience {c.patience}: use 0 (never stop early) or a number of evaluations"),
        (not c.refit or c.patience > 0, "--refit needs --patience: the refit trains for the length early stopping "
                                        "chose; add e.g. --patience 200"),
        (all(isinstance(n, int) and not isinstance(n, bool) and n >= 2 for n in c.also_test_ways),
         f"--also-test-ways {list(c.also_test_ways)}: use N >= 2 for each"),
        (c.val_episodes >= 1, f"--val-episodes {c.val_episodes}: use 1 or more"),
        (c.test_episodes >= 1, f"--test-episodes {c.test_episodes}: use 1 or more (1000 is the default)"),
        (c.checkpoint_every >= 1, f"--checkpoint-every {c.checkpoint_every}: use 1 or more steps"),
        (c.checkpoint_minutes >= 0, f"--checkpoint-minutes {c.checkpoint_minutes}: use 0 (by steps only) or more"),
        (c.device in ("auto", "cpu", "cuda") or c.device.startswith("cuda:"),
         f"--device {c.device!r}: choose auto, cpu or cuda"),
    ]
    return checks + micro_batch_checks(c)


def micro_batch_checks(c: TrainConfig) -> list[Check]:
    """--micro-batch: a number of episodes in 1..B, for a model whose episodes do not see each other."""
    m = c.micro_batch
    if m is None:
        return []
    if not isinstance(m, int) or isinstance(m, bool) or m < 1:
        return [(False, f"--micro-batch {m!r}: use 1 or more episodes per pass, or leave it out for the whole "
                        "batch at once")]
    episodes = f"{c.batch_size} episode{'s' if c.batch_size != 1 else ''}"
    return [
        (c.model in EPISODE_WISE_MODELS,
         f"--micro-batch {m} with --model {c.label}: "
         + ("its batch norm pools the images of every episode of a step, so" if c.model == "protonet" else
            "a user's model may let the episodes of a step interact (batch norm, attention), so")
         + " its loss in micro-batches would not be the batch's; drop --micro-batch"),
        (m <= c.batch_size, f"--micro-batch {m}: more than the {episodes} of a step (--batch-size); "
                            f"use {c.batch_size} or fewer"),
    ]


def raise_first_failure(checks: list[Check]) -> None:
    """UsageError with the message of the first check that is not ok."""
    for ok, message in checks:
        if not ok:
            raise UsageError(message)
