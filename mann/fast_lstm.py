"""A CPU-fast forward/backward for the MANN that is numerically the same model.

Stock ``nn.LSTM`` on the CPU runs a fused kernel whose backward also returns
the gradient with respect to its input, i.e. a [B·T, 4H] x [4H, 784+N] matrix
product for the images, which nobody needs. Here each layer is an
``autograd.Function`` that

* computes the input projection of the whole sequence in one matrix product
  (its weight gradient is one more product in the backward pass),
* runs only the small recurrent products step by step,
* returns the input gradient only when autograd asks for it (layer2 needs it
  to reach layer1; layer1's input is data, so it is skipped).

It reads the weights of the same ``nn.LSTM`` modules, so a model trained with
it loads, saves and grades exactly like the reference :class:`mann.model.MANN`.
"""

from __future__ import annotations

import torch
from torch import nn

from mann.model import MANN, episode_sequence


class LSTMSequence(torch.autograd.Function):
    """One single-layer LSTM over a whole sequence, zero initial state.

    x: float32 [B, T, D]; w_ih: [4H, D]; w_hh: [4H, H]; b_ih, b_hh: [4H].
    Returns h: float32 [B, T, H]. Gate order i, f, g, o as in ``nn.LSTM``.
    """

    @staticmethod
    def forward(ctx, x, w_ih, w_hh, b_ih, b_hh):
        batch, steps, _ = x.shape
        hidden = w_hh.shape[1]
        proj = torch.addmm(b_ih + b_hh, x.reshape(batch * steps, -1), w_ih.t())
        proj = proj.view(batch, steps, 4 * hidden)
        acts = torch.empty_like(proj)  # activated gates, kept for backward
        hs = x.new_zeros(batch, steps + 1, hidden)  # hs[:, t] = h_{t-1}
        cs = x.new_zeros(batch, steps + 1, hidden)
        w_hh_t = w_hh.t()
        for t in range(steps):
            gates = torch.addmm(proj[:, t], hs[:, t], w_hh_t)
            a = acts[:, t]
            torch.sigmoid(gates, out=a)
            # g takes tanh, not sigmoid
            torch.tanh(gates[:, 2 * hidden:3 * hidden], out=a[:, 2 * hidden:3 * hidden])
            i, f, g, o = a.chunk(4, dim=1)
            c = torch.addcmul(f * cs[:, t], i, g)
            cs[:, t + 1] = c
            torch.mul(o, torch.tanh(c), out=hs[:, t + 1])
        ctx.save_for_backward(x, w_ih, w_hh, acts, hs, cs)
        return hs[:, 1:]

    @staticmethod
    def backward(ctx, grad_h):
        x, w_ih, w_hh, acts, hs, cs = ctx.saved_tensors
        batch, steps, hidden = grad_h.shape
        dgates = torch.empty_like(acts)
        dh = grad_h.new_zeros(batch, hidden)
        dc = grad_h.new_zeros(batch, hidden)
        for t in reversed(range(steps)):
            i, f, g, o = acts[:, t].chunk(4, dim=1)
            dh = dh + grad_h[:, t]
            tanh_c = torch.tanh(cs[:, t + 1])
            dc = dc + dh * o * (1 - tanh_c * tanh_c)
            d = dgates[:, t]
            di, df, dg, do = d.chunk(4, dim=1)
            torch.mul(dc * g, i * (1 - i), out=di)
            torch.mul(dc * cs[:, t], f * (1 - f), out=df)
            torch.mul(dc * i, 1 - g * g, out=dg)
            torch.mul(dh * tanh_c, o * (1 - o), out=do)
            dc = dc * f
            dh = d @ w_hh
        flat = dgates.reshape(batch * steps, -1)
        grad_x = grad_w_ih = grad_w_hh = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = (flat @ w_ih).view(x.shape)
        if ctx.needs_input_grad[1]:
            grad_w_ih = flat.t() @ x.reshape(batch * steps, -1)
        if ctx.needs_input_grad[2]:
            grad_w_hh = flat.t() @ hs[:, :-1].reshape(batch * steps, hidden)
        if ctx.needs_input_grad[3] or ctx.needs_input_grad[4]:
            grad_b = flat.sum(dim=0)
        return grad_x, grad_w_ih, grad_w_hh, grad_b, grad_b


def lstm_sequence(x: torch.Tensor, layer: nn.LSTM) -> torch.Tensor:
    """h: float32 [B, T, H] of a one-layer batch-first ``nn.LSTM``, computed fast."""
    return LSTMSequence.apply(
        x, layer.weight_ih_l0, layer.weight_hh_l0, layer.bias_ih_l0, layer.bias_hh_l0
    )


def fast_forward(model: MANN, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The same function as ``model(images, labels)``: float32 [B, K+1, N, N]."""
    x = episode_sequence(images, labels)
    hidden = lstm_sequence(x, model.layer1)
    return lstm_sequence(hidden, model.layer2).reshape(labels.shape)
