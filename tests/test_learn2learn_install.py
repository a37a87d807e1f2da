"""Smoke check of the learn2learn 0.2.0 that scripts/install-learn2learn builds.

It exercises the pieces the baselines rely on, including the Cython-compiled
learn2learn.data extensions whose C sources the script regenerates.
"""

from __future__ import annotations

import pytest

# exc_type=ImportError: since pytest 9 only ModuleNotFoundError skips by default,
# and a half-built learn2learn (e.g. C extensions from an old Cython) raises ImportError.
l2l = pytest.importorskip(
    "learn2learn",
    reason="learn2learn is not importable; install it with scripts/install-learn2learn <python>",
    exc_type=ImportError,
)

import torch  # noqa: E402
from torch.utils.data import TensorDataset  # noqa: E402

WAYS, SHOTS = 5, 2


def test_version():
    assert l2l.__version__ == "0.2.0"


@pytest.mark.parametrize("algorithm", ["MAML", "MetaSGD"])
def test_second_order_adaptation_backpropagates(algorithm):
    torch.manual_seed(0)
    cls = getattr(l2l.algorithms, algorithm)
    meta = cls(l2l.vision.models.OmniglotFC(28**2, WAYS), lr=0.5, first_order=False)
    x = torch.randn(WAYS * SHOTS, 28**2)
    y = torch.arange(WAYS).repeat(SHOTS)
    loss = torch.nn.functional.cross_entropy

    learner = meta.clone()
    learner.adapt(loss(learner(x), y))
    loss(learner(x), y).backward()

    grads = [p.grad for p in meta.parameters()]
    assert all(g is not None for g in grads)
    assert all(torch.isfinite(g).all() for g in grads)


def test_omniglot_cnn_forward():
    model = l2l.vision.models.OmniglotCNN(WAYS)
    assert model(torch.randn(3, 1, 28, 28)).shape == (3, WAYS)


def test_taskset_samples_a_remapped_task():
    torch.manual_seed(0)
    n_classes, per_class = 8, 4
    labels = torch.arange(n_classes).repeat_interleave(per_class)
    data = torch.randn(len(labels), 1, 28, 28)
    dataset = l2l.data.MetaDataset(TensorDataset(data, labels))
    assert sorted(dataset.labels) == list(range(n_classes))

    transforms = [
        l2l.data.transforms.FusedNWaysKShots(dataset, n=WAYS, k=SHOTS),
        l2l.data.transforms.LoadData(dataset),
        l2l.data.transforms.RemapLabels(dataset),
    ]
    taskset = l2l.data.Taskset(dataset, task_transforms=transforms, num_tasks=4)
    x, y = taskset.sample()

    assert x.shape == (WAYS * SHOTS, 1, 28, 28)
    assert sorted(y.tolist()) == sorted(list(range(WAYS)) * SHOTS)
