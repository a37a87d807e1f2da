"""Typed configuration of one baseline run, with the published hyperparameters as defaults.

Defaults (each one a flag of ``mann baselines``):
  MAML, Meta-SGD, ANIL: Finn et al. (2017), Omniglot: Adam on the meta-loss,
    5-way: meta-batch 32, inner step size 0.4, 1 inner step in training and
    3 at test; 20-way: meta-batch 16, step size 0.1, 5 steps in training and
    at test; 60,000 meta-iterations. Meta learning rate 3e-3 as in
    learn2learn's MAML Omniglot example. Meta-SGD (Li et al. 2017) learns the
    step sizes (initialised at the MAML step size) and adapts in one step.
  ProtoNets: Snell et al. (2017), Omniglot: Adam 1e-3 halved every 2,000
    episodes, 60-way training episodes, squared Euclidean distance. Snell
    et al. use 5 queries per class; an episode here has one, so a step takes
    5 episodes. Snell et al. stop on validation loss rather than after a fixed
    count; 20,000 steps is this project's choice.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from episodes.errors import UsageError
from mann.config import episode_checks, evaluation_checks, raise_first_failure

MODELS = {
    "maml-fc": "MAML (learn2learn) with the fully-connected learner",
    "maml-cnn": "MAML (learn2learn) with the 4-layer CNN learner",
    "metasgd-cnn": "Meta-SGD (learn2learn): MAML with a learned step size per weight, CNN learner",
    "anil-cnn": "ANIL: learn2learn MAML on the CNN's last layer only, features meta-learned",
    "protonet": "prototypical networks, 4-layer CNN embedding (plain torch, no learn2learn)",
}
GRADIENT_MODELS = ("maml-fc", "maml-cnn", "metasgd-cnn", "anil-cnn")


@dataclass(frozen=True)
class BaselineConfig:
    """One baseline run. Build it with :func:`published_config` to get the published defaults.

    meta_batch: episodes per meta-update; meta_lr: Adam's learning rate.
    fast_lr, adapt_steps, test_adapt_steps, first_order: the inner loop of the
        gradient-based models (None for ProtoNets).
    train_ways: N of the training episodes (ProtoNets may train wider than it
        tests; the others must train at N). lr_halve_every: halve meta_lr every
        so many steps (0: never).
    """

    model: str = "protonet"
    ways: int = 5
    shots: int = 1
    steps: int = 20_000
    meta_batch: int = 5
    meta_lr: float = 1e-3
    fast_lr: float | None = None
    adapt_steps: int | None = None
    test_adapt_steps: int | None = None
    first_order: bool | None = None
    train_ways: int = 60
    lr_halve_every: int = 2000
    seed: int = 0
    split: str = "cs330"
    split_seed: int = 1
    rotations: bool = False
    eval_every: int = 500
    val_episodes: int = 200
    test_episodes: int = 1000
    eval_seed: int = 1234
    device: str = "auto"

    def validate(self) -> "BaselineConfig":
        """Raise UsageError naming the first bad value and its fix; return self."""
        if self.model not in MODELS:
            raise UsageError(unknown_model_message(self.model))
        gradient = self.model in GRADIENT_MODELS
        raise_first_failure([
            *episode_checks(self.ways, self.shots),
            (self.steps >= 0, f"--steps {self.steps}: use 0 or more training steps"),
            (self.meta_batch >= 1, f"--meta-batch {self.meta_batch}: use 1 or more episodes per step"),
            (self.meta_lr > 0, f"--meta-lr {self.meta_lr}: use a positive learning rate"),
            (self.train_ways >= 2, f"--train-ways {self.train_ways}: use 2 or more classes"),
            (
                not gradient or self.train_ways == self.ways,
                f"--train-ways {self.train_ways}: {self.model} has an N-way output layer, so it trains "
                f"at N = {self.ways}; drop --train-ways",
            ),
            (not gradient or (self.fast_lr or 0) > 0, f"--fast-lr {self.fast_lr}: use a positive step size"),
            (not gradient or (self.adapt_steps or 0) >= 1, f"--adapt-steps {self.adapt_steps}: use 1 or more"),
            (not gradient or (self.test_adapt_steps or 0) >= 1, f"--test-adapt-steps {self.test_adapt_steps}: use 1 or more"),
            (self.lr_halve_every >= 0, f"--lr-halve-every {self.lr_halve_every}: use 0 (never) or more steps"),
            *evaluation_checks(self.split, self.eval_every, self.val_episodes, self.test_episodes, self.device),
        ])
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "BaselineConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


def unknown_model_message(name: str) -> str:
    return f"unknown baseline {name!r}; choose one of {', '.join(MODELS)} (mann baselines --list describes them)"


def published_defaults(model: str, ways: int) -> dict:
    """The published hyperparameters of ``model`` for N = ``ways`` (see the module docstring)."""
    if model not in MODELS:
        raise UsageError(unknown_model_message(model))
    if model == "protonet":
        return dict(steps=20_000, meta_batch=5, meta_lr=1e-3, train_ways=60, lr_halve_every=2000,
                    fast_lr=None, adapt_steps=None, test_adapt_steps=None, first_order=None)
    wide = ways >= 20
    adapt = 5 if wide else 1
    defaults = dict(
        steps=60_000, meta_batch=16 if wide else 32, meta_lr=3e-3, train_ways=ways, lr_halve_every=0,
        fast_lr=0.1 if wide else 0.4, adapt_steps=adapt, test_adapt_steps=5 if wide else 3, first_order=False,
    )
    if model == "metasgd-cnn":
        # Meta-SGD learns its step sizes for a fixed number of steps: one.
        defaults.update(adapt_steps=1, test_adapt_steps=1)
    return defaults


def published_config(model: str, ways: int = 5, shots: int = 1, **overrides) -> BaselineConfig:
    """A validated config: the published defaults for (model, N), then every override that is not None."""
    values = {**published_defaults(model, ways), **{k: v for k, v in overrides.items() if v is not None}}
    return replace(BaselineConfig(), model=model, ways=ways, shots=shots, **values).validate()
