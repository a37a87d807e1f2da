"""The learners by name, what kind each is, and their published hyperparameters (pure Python).

Kinds, and the hyperparameters that apply to each (every other one is None):
  black-box  the MANN (``mann``) and a user's class (``path/file.py:Class``,
             ``package.module:Class``): ``hidden``; ``fast`` (the MANN's CPU path)
  gradient   MAML, Meta-SGD, ANIL: ``fast_lr``, ``adapt_steps``, ``test_adapt_steps``, ``first_order``;
             ``maml_impl``: "vectorized" (every task of a meta-batch at once, the default) or
             "learn2learn" (its per-task clone()/adapt() loop, the reference);
             ``published_learner``: MAML and ANIL on Finn et al.'s own learner (batch norm
             without scale, its offset not adapted in the inner loop; their initialisation),
             vectorized only
  metric     ProtoNets: ``train_ways``

Defaults (each one a flag of ``mann train``):
  MANN: the CS330 assignment's: Adam 1e-3, 128 episodes per step, H=128, 25,000 steps.
  MAML, Meta-SGD, ANIL: Finn et al. (2017), Omniglot: Adam on the meta-loss,
    5-way: meta-batch 32, inner step size 0.4, 1 inner step in training and
    3 at test; 20-way: meta-batch 16, step size 0.1, 5 steps in training and
    at test; 60,000 meta-iterations. Meta learning rate 3e-3 as in
    learn2learn's MAML Omniglot example. Meta-SGD (Li et al. 2017) learns the
    step sizes (initialised at the MAML step size) and adapts in one step.
  ProtoNets: Snell et al. (2017), Omniglot: Adam 1e-3 halved every 2,000
    episodes, one 60-way training episode per step with the test shot and 5
    queries per class, squared Euclidean distance; validation on episodes of
    15 queries per class. Snell et al. stop on
    validation loss rather than after a fixed count (``patience``, and
    ``refit`` on train+val: the protonets-omniglot preset); 20,000 steps is this
    project's default without them.
"""

from __future__ import annotations

from pathlib import Path

from episodes.errors import UsageError

MODELS = {
    "mann": "the assignment's memory-augmented LSTM (black-box; CPU fast path)",
    "maml-fc": "MAML with the fully-connected learner",
    "maml-cnn": "MAML with the 4-layer CNN learner",
    "metasgd-cnn": "Meta-SGD: MAML with a learned step size per weight, CNN learner",
    "anil-cnn": "ANIL: MAML on the CNN's last layer only, features meta-learned",
    "protonet": "prototypical networks, 4-layer CNN embedding (plain torch, no learn2learn)",
}
GRADIENT_MODELS = ("maml-fc", "maml-cnn", "metasgd-cnn", "anil-cnn")
# Models that compute each episode of a batch on its own (MAML's batch norm takes each task's own
# statistics): their loss over a batch is the mean of per-episode losses, so it may be computed in
# micro-batches. Not ProtoNets (one batch norm over every episode's images), nor a user's class.
EPISODE_WISE_MODELS = ("mann", *GRADIENT_MODELS)
# How a gradient model adapts its tasks: all at once in plain torch (mann.models.maml_batched), or
# learn2learn's per-task loop (mann.models.gradient), the reference the first is tested against.
MAML_IMPLS = ("vectorized", "learn2learn")
# What runs from before maml_impl existed used: the learn2learn loop was the only one.
LEGACY_MAML_IMPL = "learn2learn"
PLUGIN_HINT = "or path/to/file.py:ClassName / package.module:ClassName for your own black-box model"

# The hyperparameters that belong to one kind of learner, and the flag that sets each.
KIND_FIELDS = {
    "black-box": ("hidden", "fast"),
    "gradient": ("fast_lr", "adapt_steps", "test_adapt_steps", "first_order", "maml_impl", "train_queries",
                 "published_learner"),
    "metric": ("train_ways", "train_queries", "val_queries"),
}
FLAGS = {"hidden": "--hidden", "fast": "--no-fast", "fast_lr": "--fast-lr", "adapt_steps": "--adapt-steps",
         "test_adapt_steps": "--test-adapt-steps", "first_order": "--first-order", "train_ways": "--train-ways",
         "train_queries": "--train-queries", "val_queries": "--val-queries", "maml_impl": "--maml-impl",
         "published_learner": "--published-learner"}


def is_plugin(model: str) -> bool:
    """A user's class, named ``file.py:Class`` or ``package.module:Class``."""
    return ":" in model


def resolve_plugin_spec(spec: str) -> str:
    """The spec with its file made absolute, so worker processes find it; UsageError if it is malformed
    or the file is missing (the class itself is checked when the model is built, before training)."""
    where, _, name = spec.rpartition(":")
    if not where or not name.isidentifier():
        raise UsageError(f"--model {spec!r}: name a class as path/to/file.py:ClassName or package.module:ClassName")
    if not where.endswith(".py"):
        return spec
    path = Path(where).expanduser().resolve()
    if not path.is_file():
        raise UsageError(f"--model {spec!r}: no file {path}; check the path (relative to {Path.cwd()})")
    return f"{path}:{name}"


def model_kind(model: str) -> str:
    """'black-box', 'gradient' or 'metric'; UsageError for an unknown name."""
    if is_plugin(model) or model == "mann":
        return "black-box"
    if model in GRADIENT_MODELS:
        return "gradient"
    if model == "protonet":
        return "metric"
    raise UsageError(unknown_model_message(model))


def unknown_model_message(name: str) -> str:
    return f"--model {name!r}: unknown model; choose one of {', '.join(MODELS)}, {PLUGIN_HINT}"


def model_label(model: str) -> str:
    """A short name for tables and cell ids: the model, or a plugin's class name."""
    return model.rsplit(":", 1)[1] if is_plugin(model) else model


def published_defaults(model: str, ways: int) -> dict:
    """The published hyperparameters of ``model`` for N = ``ways`` (see the module docstring);
    fields it leaves out take :class:`mann.training.config.TrainConfig`'s defaults."""
    kind = model_kind(model)
    if kind == "black-box":
        # The MANN's (the assignment's) are TrainConfig's own defaults; a plugin has no fast path.
        return {"fast": None} if is_plugin(model) else {}
    schedule = dict(eval_every=500, val_episodes=200, hidden=None, fast=None)
    if kind == "metric":
        return dict(schedule, steps=20_000, batch_size=1, lr=1e-3, train_ways=60, train_queries=5,
                    val_queries=15, lr_halve_every=2000)
    wide = ways >= 20
    defaults = dict(
        schedule, steps=60_000, batch_size=16 if wide else 32, lr=3e-3, lr_halve_every=0,
        fast_lr=0.1 if wide else 0.4, adapt_steps=5 if wide else 1, test_adapt_steps=5 if wide else 3,
        first_order=False, maml_impl="vectorized", train_queries=1, published_learner=False,
    )
    if model == "metasgd-cnn":
        # Meta-SGD learns its step sizes for a fixed number of steps: one.
        defaults.update(adapt_steps=1, test_adapt_steps=1)
    return defaults


def describe_models(ways: int) -> str:
    """The models and their defaults for N = ``ways``, for ``mann train --list-models``."""
    lines = [f"models (defaults for N={ways}; a flag overrides any of them):"]
    for name, text in MODELS.items():
        values = {k: v for k, v in published_defaults(name, ways).items() if v is not None}
        lines.append(f"  {name:12s} {text}")
        if values:
            lines.append("  " + " " * 13 + ", ".join(f"{k}={v}" for k, v in values.items()))
    lines.append(f"  {'FILE.py:Class':12s} your own class with the MANN's interface: Class(num_classes, "
                 "samples_per_class, hidden_dim), forward(images, labels) -> [B, K+1, N, N]")
    return "\n".join(lines)
