"""Baselines on the MANN's episodes: learn2learn MAML (FC and CNN learners),
Meta-SGD and ANIL, and prototypical networks.

>>> from mann.baselines import published_config, train_baseline
>>> summary = train_baseline(published_config("protonet", ways=5, shots=1, steps=2000), store, "runs/proto")

learn2learn is imported only when a gradient-based baseline is built.
"""

from mann.baselines.config import MODELS, BaselineConfig, published_config, published_defaults
from mann.baselines.tasks import Tasks, episode_to_tasks
from mann.baselines.train import build_baseline, evaluate_baseline, load_baseline, train_baseline

__all__ = [
    "MODELS",
    "BaselineConfig",
    "Tasks",
    "build_baseline",
    "episode_to_tasks",
    "evaluate_baseline",
    "load_baseline",
    "published_config",
    "published_defaults",
    "train_baseline",
]
