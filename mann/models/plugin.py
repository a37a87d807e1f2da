"""A user's own black-box model, named ``path/to/file.py:ClassName`` or ``package.module:ClassName``.

The class has the MANN's interface: ``Class(num_classes, samples_per_class,
hidden_dim)`` is an ``nn.Module`` whose ``forward(images, labels)`` takes
images float32 [B, K+1, N, 784] and labels float32 [B, K+1, N, N] (query row
zeroed) and returns logits float32 [B, K+1, N, N]. Every problem — a missing
file or module, a missing class, a constructor or forward that fails, a wrong
output shape — is one UsageError, raised before any training.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

import torch
from torch import nn

from episodes.errors import UsageError
from episodes.layout import IMAGE_DIM

INTERFACE = "Class(num_classes, samples_per_class, hidden_dim) with forward(images, labels) -> [B, K+1, N, N]"


def load_class(spec: str) -> type:
    """The class a resolved spec names (the file is imported once per process)."""
    where, _, name = spec.rpartition(":")
    try:
        if where.endswith(".py"):
            module_name = f"mann_user_model_{abs(hash(where)):x}"
            module = sys.modules.get(module_name)
            if module is None:
                loader = importlib.util.spec_from_file_location(module_name, where)
                module = importlib.util.module_from_spec(loader)
                sys.modules[module_name] = module
                try:
                    loader.loader.exec_module(module)
                except BaseException:
                    del sys.modules[module_name]
                    raise
        else:
            module = importlib.import_module(where)
    except ImportError as err:
        raise UsageError(f"--model {spec!r}: cannot import {where} ({err}); check the module name and sys.path") from None
    except Exception as err:  # noqa: BLE001 - the user's module failed while importing
        raise UsageError(f"--model {spec!r}: importing {where} raised {type(err).__name__}: {err}") from None
    cls = getattr(module, name, None)
    if not isinstance(cls, type):
        found = sorted(k for k, v in vars(module).items() if isinstance(v, type) and issubclass(v, nn.Module))
        hint = f"; its nn.Module classes: {', '.join(found)}" if found else ""
        raise UsageError(f"--model {spec!r}: {where} has no class {name!r}{hint}")
    return cls


def build_plugin(spec: str, ways: int, shots: int, hidden: int, seed: int) -> nn.Module:
    """The user's model for N = ``ways``, K = ``shots``, checked on a probe batch.

    Its weights are drawn from torch's global generator seeded with ``seed``
    inside :func:`torch.random.fork_rng`, so the caller's random state is untouched
    and the same seed gives the same weights.
    """
    cls = load_class(spec)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            module = cls(ways, shots + 1, hidden)
        except Exception as err:  # noqa: BLE001 - the user's constructor
            raise UsageError(f"--model {spec!r}: {cls.__name__}({ways}, {shots + 1}, {hidden}) raised "
                             f"{type(err).__name__}: {err}; it must take {INTERFACE}") from None
    if not isinstance(module, nn.Module) or not any(p.requires_grad for p in module.parameters()):
        raise UsageError(f"--model {spec!r}: {cls.__name__} must be a torch.nn.Module with trainable parameters")
    check_output_shape(spec, module, ways, shots)
    return module


def check_output_shape(spec: str, module: nn.Module, ways: int, shots: int) -> None:
    """UsageError unless ``module(images, labels)`` on two probe episodes is logits [2, K+1, N, N]."""
    images = torch.zeros(2, shots + 1, ways, IMAGE_DIM)
    labels = torch.eye(ways).expand(2, shots + 1, ways, ways).clone()
    labels[:, -1] = 0
    try:
        with torch.no_grad():
            out = module(images, labels)
    except Exception as err:  # noqa: BLE001 - the user's forward
        raise UsageError(f"--model {spec!r}: forward(images [2, {shots + 1}, {ways}, {IMAGE_DIM}], labels "
                         f"[2, {shots + 1}, {ways}, {ways}]) raised {type(err).__name__}: {err}") from None
    want = (2, shots + 1, ways, ways)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != want:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise UsageError(f"--model {spec!r}: forward returned {got} for 2 episodes of N={ways}, K={shots}; "
                         f"a black-box model returns logits [B, K+1, N, N] = {list(want)}")
    if not out.is_floating_point():
        raise UsageError(f"--model {spec!r}: forward returned {out.dtype}; return float logits")
