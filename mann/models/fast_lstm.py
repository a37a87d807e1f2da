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
it loads, saves and grades exactly like the reference :class:`mann.models.mann.MANN`.
"""

from __future__ import annotations

import torch
from torch import nn

from mann.models.mann import MANN
from mann.models.protocol import hide_query_labels


class LSTMSequence(torch.autograd.Function):
    """One single-layer LSTM over a whole sequence, zero initial state.

    The input at each step is ``[x | side]``: x float32 [B, T, D] and side
    float32 [B, T, S] or None. Kept apart so the images are never copied into
    a concatenated input; w_ih: [4H, D+S]; w_hh: [4H, H]; b_ih, b_hh: [4H].
    Returns h: float32 [B, T, H]. Gate order i, f, g, o as in ``nn.LSTM``.

    Per time step only the recurrent product and a few element-wise ops run.
    Whatever does not depend on the step-to-step recursion (the input
    projection, the gates' derivatives, the weight gradients) is done for the
    whole sequence at once: on tensors this small the cost is per op, not per
    element.
    """

    @staticmethod
    def forward(ctx, x, side, w_ih, w_hh, b_ih, b_hh):
        batch, steps, width = x.shape
        hidden = w_hh.shape[1]
        # Pre-activations of all steps at once; activated in place step by step.
        acts = torch.addmm(b_ih + b_hh, x.reshape(batch * steps, width), w_ih[:, :width].t())
        if side is not None:
            acts.addmm_(side.reshape(batch * steps, -1), w_ih[:, width:].t())
        acts = acts.view(batch, steps, 4 * hidden)
        hs = x.new_zeros(batch, steps + 1, hidden)  # hs[:, t] = h_{t-1}
        cs = x.new_zeros(batch, steps + 1, hidden)  # cs[:, t] = c_{t-1}
        tanh_c = x.new_empty(batch, steps, hidden)
        w_hh_t = w_hh.t()
        for t in range(steps):
            a = acts[:, t]
            a.addmm_(hs[:, t], w_hh_t)
            a[:, : 2 * hidden].sigmoid_()
            a[:, 2 * hidden:3 * hidden].tanh_()
            a[:, 3 * hidden:].sigmoid_()
            i, f, g, o = a.chunk(4, dim=1)
            torch.addcmul(f * cs[:, t], i, g, out=cs[:, t + 1])
            torch.tanh(cs[:, t + 1], out=tanh_c[:, t])
            torch.mul(o, tanh_c[:, t], out=hs[:, t + 1])
        ctx.save_for_backward(x, side, w_ih, w_hh, acts, hs, cs, tanh_c)
        return hs[:, 1:]

    @staticmethod
    def backward(ctx, grad_h):
        x, side, w_ih, w_hh, acts, hs, cs, tanh_c = ctx.saved_tensors
        batch, steps, hidden = grad_h.shape
        i, f, g, o = acts.unflatten(-1, (4, hidden)).unbind(2)  # each [B, T, H]
        # d(pre-activation) = dc * factor for i, f, g and dh * factor for o;
        # the factors need no recursion, so they are made for all steps at once.
        dc_factor = acts.new_empty(batch, steps, 3, hidden)
        torch.mul(g, i * (1 - i), out=dc_factor[:, :, 0])
        torch.mul(cs[:, :-1], f * (1 - f), out=dc_factor[:, :, 1])
        torch.mul(i, 1 - g * g, out=dc_factor[:, :, 2])
        dh_to_dc = o * (1 - tanh_c * tanh_c)
        dh_to_do = tanh_c * o * (1 - o)
        dgates = acts.new_empty(batch, steps, 4, hidden)
        dh = grad_h.new_zeros(batch, hidden)
        dc = grad_h.new_zeros(batch, hidden)
        for t in reversed(range(steps)):
            dh = dh + grad_h[:, t]
            dc = torch.addcmul(dc, dh, dh_to_dc[:, t])
            torch.mul(dc.unsqueeze(1), dc_factor[:, t], out=dgates[:, t, :3])
            torch.mul(dh, dh_to_do[:, t], out=dgates[:, t, 3])
            if t:  # the carries into step -1 are never used
                dc = dc * f[:, t]
                dh = dgates[:, t].reshape(batch, 4 * hidden) @ w_hh
        flat = dgates.view(batch * steps, 4 * hidden)
        width = x.shape[-1]
        grad_x = grad_side = grad_w_ih = grad_w_hh = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = (flat @ w_ih[:, :width]).view(x.shape)
        if ctx.needs_input_grad[1]:
            grad_side = (flat @ w_ih[:, width:]).view(side.shape)
        if ctx.needs_input_grad[2]:
            # [x | side]^T · dG, then transposed: MKL runs this orientation ~25%
            # faster than dG^T · [x | side] here; the cat is of the small result.
            parts = [x.reshape(batch * steps, width).t() @ flat]
            if side is not None:
                parts.append(side.reshape(batch * steps, -1).t() @ flat)
            grad_w_ih = torch.cat(parts).t()
        if ctx.needs_input_grad[3]:
            grad_w_hh = flat.t() @ hs[:, :-1].reshape(batch * steps, hidden)
        if ctx.needs_input_grad[4] or ctx.needs_input_grad[5]:
            grad_b = flat.sum(dim=0)
        return grad_x, grad_side, grad_w_ih, grad_w_hh, grad_b, grad_b


def lstm_sequence(x: torch.Tensor, layer: nn.LSTM, side: torch.Tensor | None = None) -> torch.Tensor:
    """h: float32 [B, T, H] of a one-layer batch-first ``nn.LSTM`` on ``[x | side]``, computed fast."""
    return LSTMSequence.apply(
        x, side, layer.weight_ih_l0, layer.weight_hh_l0, layer.bias_ih_l0, layer.bias_hh_l0
    )


def fast_forward(model: MANN, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The same function as ``model(images, labels)``: float32 [B, K+1, N, N]."""
    batch, rows, ways, _ = labels.shape
    steps = rows * ways
    hidden = lstm_sequence(images.reshape(batch, steps, -1), model.layer1, hide_query_labels(labels).reshape(batch, steps, ways))
    return lstm_sequence(hidden, model.layer2).reshape(labels.shape)
