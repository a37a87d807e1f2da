"""MAML, Meta-SGD and ANIL through learn2learn, on tasks from the project's sampler.

Each task is adapted on its own: the learner is cloned, takes ``adapt_steps``
gradient steps on the support set (second-order unless ``first_order``), and
its query logits give the meta-loss. At test time the adaptation takes
``test_adapt_steps`` first-order steps (the meta-gradient is not needed, and
the adapted weights are the same).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mann.baselines.config import BaselineConfig
from mann.baselines.l2l import import_learn2learn
from mann.baselines.learners import cnn_learner, fc_learner
from mann.baselines.tasks import Tasks


class GradientBaseline:
    """A learn2learn-wrapped learner.

    module: every meta-learned parameter (the learner's initial weights, and
        Meta-SGD's step sizes), for the optimiser, ``model.pt`` and the count.
    """

    def __init__(self, config: BaselineConfig, generator: torch.Generator) -> None:
        l2l = import_learn2learn()
        self.config = config
        net = fc_learner(config.ways, generator) if config.model == "maml-fc" else cnn_learner(config.ways, generator)
        algorithm = config.model.split("-")[0]
        if algorithm == "maml":
            self.module: nn.Module = l2l.algorithms.MAML(net, lr=config.fast_lr, first_order=config.first_order)
        elif algorithm == "metasgd":
            self.module = l2l.algorithms.MetaSGD(net, lr=config.fast_lr, first_order=config.first_order)
        elif algorithm == "anil":
            # ANIL adapts only the head; the features are meta-learned by the outer loop alone.
            head = l2l.algorithms.MAML(net.classifier, lr=config.fast_lr, first_order=config.first_order)
            self.module = nn.ModuleDict({"features": net.features, "head": head})
        else:
            raise ValueError(f"not a gradient-based baseline: {config.model}")
        self.anil = algorithm == "anil"

    def logits(self, tasks: Tasks, training: bool) -> torch.Tensor:
        """Query logits float32 [B, N, N] after adapting to each task's support set.

        training=True keeps the graph for the meta-gradient; otherwise the
        result is detached and the adaptation first-order.
        """
        steps = self.config.adapt_steps if training else self.config.test_adapt_steps
        first_order = None if training else True
        out = []
        with torch.enable_grad():  # adaptation needs gradients even when scoring
            for b in range(len(tasks)):
                support_x, support_y, query_x, _ = tasks.episode(b)
                logits = self._adapt_and_predict(support_x, support_y, query_x, steps, first_order)
                out.append(logits if training else logits.detach())
        return torch.stack(out)

    def _adapt_and_predict(self, support_x, support_y, query_x, steps, first_order) -> torch.Tensor:
        if self.anil:
            features = self.module["features"]
            support_x, query_x = features(support_x), features(query_x)
            learner = self.module["head"].clone()
        else:
            learner = self.module.clone()
        for _ in range(steps):
            learner.adapt(F.cross_entropy(learner(support_x), support_y), first_order=first_order)
        return learner(query_x)
