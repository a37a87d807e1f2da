"""Typed configuration of one training run, checked before any work starts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from episodes.errors import UsageError
from episodes.sampler import DRAWERS
from episodes.splits import SCHEMES


@dataclass(frozen=True)
class TrainConfig:
    """One MANN run. Defaults are the assignment's (Adam 1e-3, B=128, H=128, 25k steps)."""

    ways: int = 5
    shots: int = 1
    hidden: int = 128
    steps: int = 25_000
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0
    split: str = "cs330"
    split_seed: int = 1
    rotations: bool = False
    eval_every: int = 100
    val_episodes: int = 250
    test_episodes: int = 1000
    eval_seed: int = 1234
    checkpoint_every: int = 1000
    device: str = "auto"
    fast: bool = True

    def validate(self) -> "TrainConfig":
        """Raise UsageError naming the first bad value and its fix; return self."""
        raise_first_failure([
            *episode_checks(self.ways, self.shots),
            (self.hidden >= 1, f"--hidden {self.hidden}: use a hidden size >= 1"),
            (self.steps >= 0, f"--steps {self.steps}: use 0 or more training steps"),
            (self.batch_size >= 1, f"--batch-size {self.batch_size}: use a batch size >= 1"),
            (self.lr > 0, f"--lr {self.lr}: use a positive learning rate"),
            *evaluation_checks(self.split, self.eval_every, self.val_episodes, self.test_episodes, self.device),
            (self.checkpoint_every >= 1, f"--checkpoint-every {self.checkpoint_every}: use 1 or more steps"),
        ])
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


Check = tuple[bool, str]


def episode_checks(ways: int, shots: int) -> list[Check]:
    """(ok, message) for the episode shape every model trains on: N-way, K-shot, K+1 distinct drawers."""
    return [
        (ways >= 2, f"--ways {ways}: an episode needs N >= 2 classes"),
        (shots >= 1, f"--shots {shots}: use K >= 1 support example per class"),
        (
            shots + 1 <= DRAWERS,
            f"--shots {shots}: K+1 = {shots + 1} distinct drawers are needed but "
            f"Omniglot has {DRAWERS}; use K <= {DRAWERS - 1}",
        ),
    ]


def evaluation_checks(split: str, eval_every: int, val_episodes: int, test_episodes: int, device: str) -> list[Check]:
    """(ok, message) for the split, the evaluation schedule and the device every run shares."""
    return [
        (split in SCHEMES, f"--split {split!r}: choose one of {', '.join(SCHEMES)}"),
        (eval_every >= 1, f"--eval-every {eval_every}: use 1 or more steps"),
        (val_episodes >= 1, f"--val-episodes {val_episodes}: use 1 or more"),
        (test_episodes >= 1, f"--test-episodes {test_episodes}: use 1 or more (1000 is the default)"),
        (
            device in ("auto", "cpu", "cuda") or device.startswith("cuda:"),
            f"--device {device!r}: choose auto, cpu or cuda",
        ),
    ]


def raise_first_failure(checks: list[Check]) -> None:
    """UsageError with the message of the first check that is not ok."""
    for ok, message in checks:
        if not ok:
            raise UsageError(message)
