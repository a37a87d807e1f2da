"""Build any learner by name from a run's settings: the one place that knows every model class.

``settings`` is anything with the fields of :class:`mann.training.config.TrainConfig`
that a learner reads (model, ways, shots, hidden, fast, fast_lr, adapt_steps,
test_adapt_steps, first_order, maml_impl, published_learner, seed); fields that do not apply to a model are None.
"""

from __future__ import annotations

from typing import Protocol

import torch

from mann.models.black_box import BlackBoxLearner, call_module
from mann.models.fast_lstm import fast_forward
from mann.models.gradient import GradientLearner
from mann.models.hyperparameters import is_plugin, model_kind
from mann.models.maml_batched import BatchedGradientLearner
from mann.models.mann import MANN
from mann.models.plugin import build_plugin
from mann.models.protocol import Learner
from mann.models.protonet import ProtoNetLearner


class LearnerSettings(Protocol):
    model: str
    ways: int
    shots: int
    hidden: int | None
    fast: bool | None
    fast_lr: float | None
    adapt_steps: int | None
    test_adapt_steps: int | None
    first_order: bool | None
    maml_impl: str | None
    published_learner: bool | None
    seed: int


def build_learner(settings: LearnerSettings, device: torch.device | str = "cpu") -> Learner:
    """The named learner with fresh weights drawn from ``settings.seed``, its module on ``device``.

    UsageError (before any training) when learn2learn is missing for a gradient
    model with ``maml_impl="learn2learn"``, or a user's model cannot be built or returns the wrong shape.
    """
    device = torch.device(device)
    generator = torch.Generator().manual_seed(settings.seed)
    kind = model_kind(settings.model)
    if kind == "black-box":
        if is_plugin(settings.model):
            learner: Learner = BlackBoxLearner(
                build_plugin(settings.model, settings.ways, settings.shots, settings.hidden, settings.seed))
        else:
            model = MANN(settings.ways, settings.shots + 1, settings.hidden, generator=generator)
            # The fast path is a CPU kernel; on CUDA the stock cuDNN LSTM is faster.
            learner = BlackBoxLearner(model, fast_forward if settings.fast and device.type == "cpu" else call_module)
    elif kind == "gradient":
        # The learn2learn loop is the reference; the vectorized one computes the same on the same weights.
        args = (settings.model, settings.ways, settings.fast_lr, settings.adapt_steps, settings.test_adapt_steps,
                settings.first_order, generator)
        if settings.maml_impl == "vectorized":
            learner = BatchedGradientLearner(*args, shots=settings.shots, published=bool(settings.published_learner))
        else:
            learner = GradientLearner(*args, shots=settings.shots)
    else:
        learner = ProtoNetLearner(generator, settings.shots)
    learner.module.to(device)
    return learner
