"""Omniglot episodes for few-shot learning; knows nothing of models.

>>> from episodes import load_omniglot, make_split, EpisodeSampler
>>> data = load_omniglot(root)
>>> train = make_split(data, "cs330", "train")
>>> images, labels = EpisodeSampler(train, 5, 1, batch_size=128, seed=0).sample()
"""

from episodes.errors import UsageError
from episodes.omniglot import OmniglotStore, load_omniglot
from episodes.sampler import EpisodeIndices, EpisodeSampler, fixed_episodes
from episodes.splits import Split, make_split

__all__ = [
    "EpisodeIndices",
    "EpisodeSampler",
    "OmniglotStore",
    "Split",
    "UsageError",
    "fixed_episodes",
    "load_omniglot",
    "make_split",
]
