"""The splits a run trains, validates and tests on, built once per run and checked for its N and K."""

from __future__ import annotations

from dataclasses import dataclass

from episodes.errors import UsageError
from episodes.layout import check_episode_shape
from episodes.omniglot import OmniglotStore
from episodes.splits import Split, make_split
from mann.training.config import TrainConfig


@dataclass(frozen=True)
class RunSplits:
    """train / val / test parts of one split scheme, and the content hash and resize of the store they came from."""

    train: Split
    val: Split
    test: Split
    source: str
    resize: str = "lanczos"

    def fingerprints(self) -> dict[str, str]:
        """The summary fields naming the data: each part's fingerprint, and the store's resize
        (two stores that differ only in it hold different pixels under equal fingerprints)."""
        return {**{f"{p}_fingerprint": getattr(self, p).fingerprint for p in ("train", "val", "test")},
                "resize": self.resize}

    def describe(self) -> list[str]:
        return [s.describe() for s in (self.train, self.val, self.test)]


def prepare_splits(store: OmniglotStore, config: TrainConfig) -> RunSplits:
    """The run's three splits; UsageError if one cannot serve its episodes (training at ``training_ways``)."""
    splits = RunSplits(
        *(make_split(store, config.split, p, config.split_seed, config.rotations) for p in ("train", "val", "test")),
        source=store.source,
        resize=store.resize,
    )
    for split, ways, batch in ((splits.train, config.training_ways, config.batch_size),
                               (splits.val, config.ways, 1), (splits.test, config.ways, 1)):
        try:
            check_episode_shape(ways, config.shots, batch, split.num_classes)
        except UsageError as err:
            raise UsageError(f"{err} (in {split.scheme}/{split.part})") from None
    return splits
