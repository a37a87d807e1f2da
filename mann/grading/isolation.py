"""Which isolation the grading sandbox gets on this machine, and the bubblewrap
command that gives it the strong one.

Two levels, chosen once per grading session (``choose``):

``namespaces``
    The sandbox's fork server runs under bubblewrap (``bwrap``) in new user,
    PID, network, IPC, UTS, cgroup and mount namespaces: the only files it
    sees are read-only binds of the system's libraries, Python and its
    packages, the data tree, and its own folder (writable); ``/proc``,
    ``/dev`` and ``/tmp`` are its own; there is no network but a loopback that
    is down; it dies with the grader (``--die-with-parent``). Every test then
    runs in a PID namespace of its own inside it (``sandbox/server.py``).
``fallback``
    Where bubblewrap is missing or cannot create namespaces (an unprivileged
    container): the same fork server without them. Each test still drops every
    capability, runs under Landlock, rlimits and the socket filter, in a PID
    namespace of its own where the kernel allows it, else under the server's
    child subreaper, which stops and kills every descendant.

Both levels keep the per-test layers of ``sandbox/confine.py``.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass

from episodes.errors import UsageError

NAMESPACES, FALLBACK = "namespaces", "fallback"
# The few files of /etc that Python, numpy and torch read: not /etc/shadow and the rest.
ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime", "/etc/passwd",
             "/etc/group", "/etc/nsswitch.conf", "/etc/mime.types", "/etc/alternatives")
SYSTEM_DIRS = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin")
NAMESPACE_FLAGS = ("--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
                   "--unshare-cgroup-try")


@dataclass(frozen=True)
class Isolation:
    """The level a session grades with; ``reason`` says why it is the fallback."""

    level: str
    bwrap: str | None = None
    reason: str = ""

    @property
    def namespaced(self) -> bool:
        return self.level == NAMESPACES

    def describe(self) -> str:
        if self.namespaced:
            return "namespaces (bubblewrap: user, PID, network, IPC, UTS, mount)"
        return f"fallback without namespaces ({self.reason})"


def base_command(bwrap: str) -> list[str]:
    """bubblewrap's options for a sandbox root with nothing mounted yet.

    Inside, the server is root of its own user namespace holding only
    CAP_SYS_ADMIN (to give each test its own PID namespace and /proc) and
    CAP_SETPCAP (to empty each test's bounding set); tests drop both."""
    return [bwrap, *NAMESPACE_FLAGS, "--die-with-parent", "--new-session", "--hostname", "sandbox",
            "--uid", "0", "--gid", "0", "--cap-drop", "ALL", "--cap-add", "CAP_SYS_ADMIN",
            "--cap-add", "CAP_SETPCAP", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]


def mounts(read: list[str], write: list[str]) -> list[str]:
    """bwrap options that show ``read`` read-only and ``write`` writable, at the
    same paths, plus the system folders (a symlink such as /lib -> usr/lib stays
    a symlink) and ETC_FILES. Paths that do not exist are left out."""
    out: list[str] = []
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            out += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            out += ["--ro-bind", path, path]
    for path in ETC_FILES:
        if os.path.lexists(path):
            out += ["--ro-bind", path, path]
    for path in sorted(set(read)):
        # /usr is bound whole; /proc, /dev and /tmp are the sandbox's own
        if os.path.exists(path) and path not in ("/tmp", "/usr") and not path.startswith(("/usr/", "/proc", "/dev")):
            out += ["--ro-bind", path, path]
    for path in sorted(set(write)):
        out += ["--bind", path, path]
    return out


CHOICES = ("auto", NAMESPACES, FALLBACK)


def choose(wanted: str = "auto") -> Isolation:
    """The level to grade with: the strongest this machine allows (``auto``), or
    the one asked for; UsageError when ``namespaces`` is asked for and missing."""
    if wanted not in CHOICES:
        raise UsageError(f"--isolation {wanted}: unknown level; choose one of {', '.join(CHOICES)}")
    if wanted == FALLBACK:
        return Isolation(FALLBACK, reason="namespaces turned off (--isolation fallback)")
    found = available()
    if wanted == NAMESPACES and not found.namespaced:
        raise UsageError(f"--isolation namespaces: not available on this machine: {found.reason}; "
                         f"install bubblewrap where user namespaces are allowed, or use --isolation auto")
    return found


@functools.lru_cache(maxsize=None)
def available() -> Isolation:
    """The strongest level this machine allows, found by starting bubblewrap once."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return Isolation(FALLBACK, reason="bubblewrap (bwrap) is not installed; "
                         "install it (apt-get install bubblewrap) for namespaces")
    probe = [*base_command(bwrap), *mounts([], []), "/bin/true"]
    try:
        done = subprocess.run(probe, capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        return Isolation(FALLBACK, reason=f"bubblewrap could not start: {err}")
    if done.returncode != 0:
        why = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        return Isolation(FALLBACK, reason=f"bubblewrap cannot create namespaces here: {why[0][:200]}")
    return Isolation(NAMESPACES, bwrap=bwrap)


def etc_files() -> list[str]:
    return [p for p in ETC_FILES if os.path.lexists(p)]

