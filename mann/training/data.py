"""The splits a run trains, validates and tests on, built once per run and checked for its N and K."""

from __future__ import annotations

from dataclasses import dataclass

from episodes.errors import UsageError
from episodes.layout import check_episode_shape
from episodes.omniglot import OmniglotStore
from episodes.splits import Split, character_groups_for, make_split
from mann.training.config import TrainConfig


@dataclass(frozen=True)
class RunSplits:
    """train / val / test parts of one split scheme (and train + val for a refit), and the content
    hash and resize of the store they came from."""

    train: Split
    val: Split
    test: Split
    source: str
    trainval: Split | None = None
    resize: str = "lanczos"

    @property
    def parts(self) -> tuple[Split, ...]:
        return tuple(s for s in (self.train, self.val, self.trainval, self.test) if s is not None)

    def fingerprints(self) -> dict[str, str]:
        """Each part's fingerprint (the resize, which the fingerprints do not show, is in the config)."""
        return {f"{s.part}_fingerprint": s.fingerprint for s in self.parts}

    def describe(self) -> list[str]:
        return [s.describe() for s in self.parts]


def prepare_splits(store: OmniglotStore, config: TrainConfig) -> RunSplits:
    """The run's three splits; UsageError if one cannot serve its episodes (training at ``training_ways``)."""
    if store.resize != config.resize:
        raise UsageError(f"the run asks for --resize {config.resize} but the store was decoded with {store.resize}; "
                         f"load it with load_omniglot(..., resize={config.resize!r})")

    def part(name: str) -> Split:
        return make_split(store, config.split, name, config.split_seed, config.rotations)

    splits = RunSplits(part("train"), part("val"), part("test"), store.source,
                       part("trainval") if config.refit else None, store.resize)
    training_shots = config.shots + config.queries - 1
    needs = [(splits.train, config.training_ways, training_shots, config.batch_size), (splits.val, config.ways, config.shots + config.validation_queries - 1, 1),
             *((splits.test, ways, config.shots, 1) for ways in (config.ways, *config.also_test_ways))]
    if splits.trainval is not None:
        needs.append((splits.trainval, config.training_ways, training_shots, config.batch_size))
    for split, ways, shots, batch in needs:
        try:
            check_episode_shape(ways, shots, batch, split.num_classes)
        except UsageError as err:
            raise UsageError(f"{err} (in {split.scheme}/{split.part})") from None
        if config.distinct_characters:
            character_groups_for(split, ways)
    return splits
