"""Packages whose public names load their module on first use (PEP 562).

``mann --help`` must not pay for torch and pandas: a package ``__init__`` maps
each public name to the submodule defining it, and the submodule is imported
only when the name is first used.
"""

from __future__ import annotations

import importlib
from typing import Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """(``__getattr__``, ``__dir__``) for ``package``; exports: public name → submodule (relative, e.g. "sampler")."""

    def __getattr__(name: str) -> object:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{exports[name]}"), name)

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
