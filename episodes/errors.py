"""The one exception type for mistakes a user can fix.

Every check on user input raises :class:`UsageError` with a message that names
the wrong value and says how to fix it. The ``mann`` command prints such an
error as one line (no traceback) and exits with status 2; any other exception
is a bug and keeps its traceback.
"""


class UsageError(ValueError):
    """A bad argument, setting or input file, described so the user can fix it."""
