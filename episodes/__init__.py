"""Omniglot episodes for few-shot learning; knows nothing of models.

>>> from episodes import load_omniglot, make_split, EpisodeSampler
>>> data = load_omniglot(root)
>>> train = make_split(data, "cs330", "train")
>>> images, labels = EpisodeSampler(train, 5, 1, batch_size=128, seed=0).sample()

errors.py     UsageError: a mistake the user can fix (one line, exit status 2)
layout.py     image size, drawers, the N/K rules (pure Python)
files.py      atomic writes and writable-folder checks, for every layer above
omniglot.py   locate / download / verify / decode Omniglot into a cached uint8 store
splits.py     named, reproducible class splits (cs330, lake, vinyals) with fingerprints
sampler.py    EpisodeSampler: images [B, K+1, N, 784], labels [B, K+1, N, N]; fixed_episodes
prefetch.py   draws the next batch beside the training step when a core is free
png_tree.py   the store written as the assignment's 28x28 PNG tree (for graded code)
lake_runs.py  the 20 official 20-way one-shot runs (all_runs.zip)

Names load their module on first use, so importing the package costs nothing.
"""

from episodes.lazy import lazy_exports

__all__ = ["EpisodeIndices", "EpisodeSampler", "OmniglotStore", "Split", "UsageError", "cache_dir", "fixed_episodes",
           "load_omniglot", "make_split", "resolve_root"]
__getattr__, __dir__ = lazy_exports(__name__, {
    "EpisodeIndices": "sampler", "EpisodeSampler": "sampler", "fixed_episodes": "sampler",
    "OmniglotStore": "omniglot", "load_omniglot": "omniglot", "resolve_root": "omniglot", "cache_dir": "omniglot", "Split": "splits", "make_split": "splits",
    "UsageError": "errors",
})
