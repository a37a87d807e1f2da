"""The one place learn2learn is imported, lazily, so the rest works without it.

learn2learn 0.2.0 does not install from PyPI on Python 3.11 as is (its C
sources come from an old Cython); ``scripts/install-learn2learn`` builds it.
Importing it also imports gym, which prints a four-line deprecation notice to
stderr on every import; the notice is about gym's RL environments, which no
baseline uses, so it is kept off the user's terminal.
"""

from __future__ import annotations

import contextlib
import io
import sys

from episodes.errors import UsageError

INSTALL_HINT = "install it with scripts/install-learn2learn .venv/bin/python (or scripts/setup)"


def import_learn2learn():
    """The ``learn2learn`` module; UsageError naming the install script when it is absent or broken."""
    if "learn2learn" in sys.modules and sys.modules["learn2learn"] is not None:
        return sys.modules["learn2learn"]
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            import learn2learn
    except ImportError as err:
        raise UsageError(f"this baseline needs learn2learn 0.2.0, which cannot be imported ({err}); {INSTALL_HINT}") from None
    return learn2learn
