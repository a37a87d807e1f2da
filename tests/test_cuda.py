"""The CUDA path (skipped on machines without a GPU)."""

from __future__ import annotations

import pytest
import torch

from episodes import EpisodeSampler, make_split
from conftest import train_on
from mann.training.config import make_config
from mann.models.fast_lstm import fast_forward
from mann.models.mann import MANN, loss_function

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU visible on this machine")


def test_sampler_gives_the_same_episodes_on_cuda(store):
    split = make_split(store, "cs330", "train")
    cpu = EpisodeSampler(split, 5, 1, batch_size=16, seed=3, device="cpu").sample()
    gpu = EpisodeSampler(split, 5, 1, batch_size=16, seed=3, device="cuda").sample()
    assert gpu[0].is_cuda and torch.equal(cpu[0], gpu[0].cpu()) and torch.equal(cpu[1], gpu[1].cpu())


def test_cudnn_model_matches_the_cpu_reference():
    model = MANN(5, 2, 64, generator=torch.Generator().manual_seed(0))
    images = torch.rand(8, 2, 5, 784)
    labels = torch.eye(5).expand(8, 2, 5, 5).contiguous()
    ref = model(images, labels)
    out = model.cuda()(images.cuda(), labels.cuda()).cpu()
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(fast_forward(model, images.cuda(), labels.cuda()).cpu(), ref, atol=1e-4, rtol=1e-4)
    assert torch.isfinite(loss_function(out, labels))


def test_training_runs_on_cuda(store, tmp_path):
    config = make_config("mann", 3, shots=1, hidden=16, steps=20, batch_size=8, eval_every=10, val_episodes=20,
                         test_episodes=50, device="cuda")
    summary = train_on(config, store, tmp_path, progress=False)
    assert summary["device"] != "cpu"


@pytest.mark.parametrize("model", ["protonet", "maml-cnn"])
def test_baselines_train_on_cuda(model, store, tmp_path):
    config = make_config(model, 3, shots=1, steps=4, batch_size=2, train_ways=None if model != "protonet" else 5,
                         eval_every=2, val_episodes=10, test_episodes=20, device="cuda", split="lake")
    summary = train_on(config, store, tmp_path, progress=False)
    assert "cpu" not in summary["device"] and 0 <= summary["test_accuracy"] <= 1
