"""The reference MANN: interface, masking, loss, and the fast path's equivalence."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mann.models.fast_lstm import fast_forward
from mann.models.mann import MANN, loss_function


def random_episode(batch, ways, shots, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(batch, shots + 1, ways, 784, generator=g, dtype=dtype)
    perm = torch.rand(batch, ways, generator=g).argsort(1)
    labels = torch.eye(ways, dtype=dtype).expand(batch, shots + 1, ways, ways).clone()
    labels[:, -1] = torch.eye(ways, dtype=dtype)[perm]
    return images, labels


def test_interface_of_the_assignment():
    model = MANN(5, 2, 64, generator=torch.Generator().manual_seed(0))
    assert (model.layer1.input_size, model.layer1.hidden_size) == (5 + 784, 64)
    assert (model.layer2.input_size, model.layer2.hidden_size) == (64, 5)
    assert model.layer1.batch_first and model.layer2.batch_first
    images, labels = random_episode(3, 5, 1)
    assert model(images, labels).shape == (3, 2, 5, 5)


def test_initialisation():
    model = MANN(3, 2, 32, generator=torch.Generator().manual_seed(0))
    for layer in (model.layer1, model.layer2):
        assert not layer.bias_ih_l0.any() and not layer.bias_hh_l0.any()
        w = layer.weight_hh_l0  # [4H, H]: orthonormal columns
        torch.testing.assert_close(w.t() @ w, torch.eye(w.shape[1]), atol=1e-5, rtol=0)
    fan_in, fan_out = 3 + 784, 4 * 32
    bound = (6 / (fan_in + fan_out)) ** 0.5
    assert model.layer1.weight_ih_l0.abs().max() <= bound


def test_same_generator_seed_same_weights():
    a = MANN(5, 2, 16, generator=torch.Generator().manual_seed(3)).state_dict()
    b = MANN(5, 2, 16, generator=torch.Generator().manual_seed(3)).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("forward", [lambda m, x, y: m(x, y), fast_forward], ids=["stock", "fast"])
def test_query_labels_are_hidden_and_callers_tensor_untouched(forward):
    model = MANN(4, 3, 16, generator=torch.Generator().manual_seed(1))
    images, labels = random_episode(6, 4, 2)
    kept = labels.clone()
    out = forward(model, images, labels)
    assert torch.equal(labels, kept)
    other = labels.clone()
    other[:, -1] = torch.rand_like(other[:, -1])
    assert torch.equal(out, forward(model, images, other))
    # Support labels are seen: changing them does change the output.
    other = labels.clone()
    other[:, 0] = other[:, 0].flip(-1)
    assert not torch.equal(out, forward(model, images, other))


def test_loss_uses_the_query_row_only():
    images, labels = random_episode(4, 3, 2)
    preds = torch.randn(4, 3, 3, 3)
    changed = preds.clone()
    changed[:, :-1] = torch.randn_like(changed[:, :-1])
    assert loss_function(preds, labels) == loss_function(changed, labels)
    expected = F.cross_entropy(preds[:, -1].reshape(-1, 3), labels[:, -1].reshape(-1, 3).argmax(-1))
    torch.testing.assert_close(loss_function(preds, labels), expected)
    changed = preds.clone()
    changed[:, -1] += torch.randn_like(changed[:, -1])
    assert loss_function(preds, labels) != loss_function(changed, labels)


@pytest.mark.parametrize("ways,shots,hidden", [(2, 1, 128), (5, 1, 128), (3, 4, 8), (4, 2, 256), (20, 1, 16)])
def test_fast_path_is_the_same_function(ways, shots, hidden):
    model = MANN(ways, shots + 1, hidden, generator=torch.Generator().manual_seed(ways))
    images, labels = random_episode(8, ways, shots, seed=hidden)
    preds_ref = model(images, labels)
    loss_ref = loss_function(preds_ref, labels)
    grads_ref = torch.autograd.grad(loss_ref, list(model.parameters()))
    preds = fast_forward(model, images, labels)
    loss = loss_function(preds, labels)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    torch.testing.assert_close(preds, preds_ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(loss, loss_ref, atol=1e-5, rtol=0)
    for g, g_ref in zip(grads, grads_ref):
        torch.testing.assert_close(g, g_ref, atol=1e-5, rtol=1e-4)


def test_fast_path_training_curve_matches_stock():
    """300 Adam steps on a fixed stream of episodes: the two loss curves agree."""
    curves = []
    for forward in (lambda m, x, y: m(x, y), fast_forward):
        torch.manual_seed(0)
        model = MANN(3, 2, 32, generator=torch.Generator().manual_seed(0))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        curve = []
        for step in range(300):
            images, labels = random_episode(16, 3, 1, seed=step % 20)
            loss = loss_function(forward(model, images, labels), labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
            curve.append(loss.item())
        curves.append(torch.tensor(curve))
    stock, fast = curves
    assert stock[-20:].mean() < stock[:20].mean() - 0.1  # it learnt something
    # fp32 sums in another order drift apart slowly over 300 Adam steps; a wrong
    # gradient anywhere would separate the curves by far more than this.
    torch.testing.assert_close(fast, stock, atol=1e-2, rtol=0)
    assert (fast - stock).abs().mean() < 1e-3
