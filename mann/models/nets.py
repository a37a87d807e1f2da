"""The networks the baselines learn: the MAML paper's Omniglot learners and
the ProtoNets embedding, in plain torch with seeded initialisation.

learn2learn ships similar models, but they draw their initial weights from the
global torch and numpy generators (scipy's truncated normal); these take an
explicit ``torch.Generator`` so the same seed gives the same run.

Batch normalisation in the MAML learners never keeps running statistics: it
always normalises with the statistics of the batch it is given (the support
set while adapting, the N query images when scoring), as in the MAML paper's
own implementation.

``published=True`` builds the learners as Finn et al.'s code (cbfinn/maml) does,
where this project's defaults differ: its batch norm (TensorFlow's
``contrib.layers.batch_norm`` defaults) has an offset but no scale and epsilon
1e-3, here a scale frozen at 1 (``requires_grad=False``, so the parameter names
and order stay those of the default learners); its FC weights start from a
normal with standard deviation 0.01 truncated at two; its CNN's output layer
from N(0, 1). Its convolutions start Xavier-uniform, as here. That the offset
is not adapted in the inner loop is the algorithm's part
(:mod:`mann.models.maml_batched`).
"""

from __future__ import annotations

import torch
from torch import nn

from episodes.layout import IMAGE_DIM

CHANNELS = 64
FC_SIZES = (256, 128, 64, 64)
BN_EPS = 1e-5  # nn.BatchNorm's default
PUBLISHED_BN_EPS = 1e-3  # tf.contrib.layers.batch_norm's default, which cbfinn/maml uses
PUBLISHED_FC_STD = 0.01  # cbfinn/maml construct_fc_weights: tf.truncated_normal(stddev=0.01)


class FeatureClassifier(nn.Module):
    """features: images float32 [M, 1, S, S] → [M, F]; classifier: [M, F] → logits [M, N]."""

    def __init__(self, features: nn.Module, classifier: nn.Linear) -> None:
        super().__init__()
        self.features = features
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class SpatialMean(nn.Module):
    """[M, C, H, W] → [M, C]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


def fc_learner(ways: int, generator: torch.Generator, image_dim: int = IMAGE_DIM,
               published: bool = False) -> FeatureClassifier:
    """MAML's non-convolutional Omniglot learner: 784 → 256 → 128 → 64 → 64 (BN, ReLU) → N."""
    eps = PUBLISHED_BN_EPS if published else BN_EPS
    layers: list[nn.Module] = [nn.Flatten()]
    width = image_dim
    for size in FC_SIZES:
        layers += [nn.Linear(width, size), nn.BatchNorm1d(size, eps=eps, track_running_stats=False), nn.ReLU()]
        width = size
    net = _init(FeatureClassifier(nn.Sequential(*layers), nn.Linear(width, ways)), generator)
    if published:
        with torch.no_grad():
            for layer in net.modules():
                if isinstance(layer, nn.Linear):
                    nn.init.trunc_normal_(layer.weight, std=PUBLISHED_FC_STD, a=-2 * PUBLISHED_FC_STD,
                                          b=2 * PUBLISHED_FC_STD, generator=generator)
        _without_bn_scale(net)
    return net


def cnn_learner(ways: int, generator: torch.Generator, published: bool = False) -> FeatureClassifier:
    """MAML's convolutional Omniglot learner: 4 × (3x3 conv, 64 channels, stride 2, BN, ReLU),
    the mean over the remaining 2x2 positions, then a linear layer to N logits."""
    eps = PUBLISHED_BN_EPS if published else BN_EPS
    layers: list[nn.Module] = []
    for i in range(4):
        layers += [
            nn.Conv2d(1 if i == 0 else CHANNELS, CHANNELS, 3, stride=2, padding=1),
            nn.BatchNorm2d(CHANNELS, eps=eps, track_running_stats=False),
            nn.ReLU(),
        ]
    features = nn.Sequential(*layers, SpatialMean())
    net = _init(FeatureClassifier(features, nn.Linear(CHANNELS, ways)), generator)
    if published:
        with torch.no_grad():
            nn.init.normal_(net.classifier.weight, std=1.0, generator=generator)  # cbfinn/maml: tf.random_normal
        _without_bn_scale(net)
    return net


def bn_eps(net: nn.Module) -> float:
    """The epsilon of the learner's batch norm layers (all share one)."""
    return next(m.eps for m in net.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)))


def _without_bn_scale(net: nn.Module) -> None:
    """Batch norm without a learned scale: each scale stays at 1 and no optimiser moves it."""
    for layer in net.modules():
        if isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d)):
            layer.weight.requires_grad_(False)


def conv4_embedding(generator: torch.Generator, as_published: bool = False) -> nn.Sequential:
    """The ProtoNets embedding (Snell et al. 2017): 4 × (3x3 conv, 64 channels, BN, ReLU,
    2x2 max-pool); a 28x28 image becomes a 64-dimensional vector, [M, 1, 28, 28] → [M, 64].

    Each block pools before its ReLU: max-pooling commutes with the ReLU (both
    are monotone), so the values are the paper's, and the ReLU and its backward
    pass then touch a quarter of the activations. The weights are channels-last.
    Together that made a 60-way training step 2.3x faster on one CPU thread here
    (``mann bench``); the state_dict keys are those of the paper's order.
    ``as_published=True`` builds the paper's order in the default memory format:
    the benchmark's baseline, and the tests' proof that the values are equal.
    """
    layers: list[nn.Module] = []
    for i in range(4):
        layers += [nn.Conv2d(1 if i == 0 else CHANNELS, CHANNELS, 3, padding=1), nn.BatchNorm2d(CHANNELS)]
        layers += [nn.ReLU(), nn.MaxPool2d(2)] if as_published else [nn.MaxPool2d(2), nn.ReLU()]
    net = _init(nn.Sequential(*layers, nn.Flatten()), generator)
    return net if as_published else net.to(memory_format=torch.channels_last)


def _init(module: nn.Module, generator: torch.Generator) -> nn.Module:
    """Xavier-uniform weights and zero biases for every conv and linear layer, unit BN scales."""
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(layer.weight, generator=generator)
                nn.init.zeros_(layer.bias)
            elif isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d)):
                nn.init.ones_(layer.weight)
                nn.init.zeros_(layer.bias)
    return module
