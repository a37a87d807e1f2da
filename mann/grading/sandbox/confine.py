"""Confine the current process before it runs a submission's code.

Runs inside the sandbox (imported by ``server.py`` by path, never through the
``mann`` package), so it imports only the standard library.

Three layers, each applied when the machine offers it:

* resource limits (``setrlimit``): address space, CPU seconds, size of any
  file written (which also caps printed output, sent to a file), no core
  dumps, and a process count when running as a separate user;
* an optional switch to an unprivileged user (only possible when the grader
  runs as root, e.g. on Gradescope);
* Landlock (Linux >= 5.13): the process may read only the listed folders
  (system libraries, Python, the data tree, its inputs), write only its own
  work folder, open no TCP connection, and signal no process outside itself.
  Everything else (the grader's code, the rubric, other students' files) is
  invisible to it, whoever owns the files.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import resource
from dataclasses import dataclass

# Landlock system call numbers (the same on every Linux architecture since 5.13).
_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

# Filesystem rights by ABI version (include/uapi/linux/landlock.h).
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_ABI1_ALL = (1 << 13) - 1
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
# Rights that make sense on a file (the rest apply to folders only).
_FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1 << 0, 1 << 1

READ_ONLY = EXECUTE | READ_FILE | READ_DIR


@dataclass(frozen=True)
class Limits:
    """Per-process resource limits (0 means: leave the limit as it is)."""

    memory_mb: int = 0
    cpu_s: int = 0
    file_mb: int = 0
    processes: int = 0


def _libc():
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    libc.prctl.restype = ctypes.c_int
    return libc


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 when Landlock is unavailable."""
    try:
        version = _libc().syscall(_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    except (OSError, AttributeError):
        return 0
    return max(int(version), 0)


def _handled_fs(abi: int) -> int:
    rights = _ABI1_ALL
    if abi >= 2:
        rights |= REFER
    if abi >= 3:
        rights |= TRUNCATE
    if abi >= 5:
        rights |= IOCTL_DEV
    return rights


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def landlock_restrict(read: list[str], write: list[str], devices: dict[str, int]) -> int:
    """Allow only ``read`` (read + execute), ``write`` (everything) and ``devices``
    ({path: rights}) from now on, for this process and its children.

    Paths that do not exist are skipped. Returns the ABI used (0: Landlock is
    unavailable and nothing was restricted). Raises OSError when the kernel
    refuses a ruleset it advertised.
    """
    abi = landlock_abi()
    if abi < 1:
        return 0
    libc = _libc()
    handled = _handled_fs(abi)
    attr = _RulesetAttr(handled, _NET_BIND_TCP | _NET_CONNECT_TCP if abi >= 4 else 0,
                        _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL if abi >= 6 else 0)
    size = 8 if abi < 4 else (16 if abi < 6 else 24)
    ruleset = libc.syscall(_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    try:
        rules = [(p, READ_ONLY) for p in read] + [(p, handled) for p in write] + list(devices.items())
        for path, rights in rules:
            _add_rule(libc, ruleset, path, rights & handled)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        if libc.syscall(_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(ruleset)
    return abi


def _add_rule(libc, ruleset: int, path: str, rights: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return
    try:
        if not os.path.isdir(path):
            rights &= _FILE_RIGHTS
        attr = _PathBeneathAttr(rights, fd)
        if libc.syscall(_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(_RULE_PATH_BENEATH),
                        ctypes.byref(attr), ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), f"landlock_add_rule failed for {path}")
    finally:
        os.close(fd)


def set_limits(limits: Limits) -> None:
    """Apply the resource limits to this process (inherited by its children).

    The CPU limit's soft value sends SIGXCPU, the hard one a second later
    SIGKILL, so a submission that ignores SIGXCPU still stops.
    """
    mb = 1 << 20
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if limits.memory_mb:
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_mb * mb, limits.memory_mb * mb))
    if limits.cpu_s:
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 1))
    if limits.file_mb:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_mb * mb, limits.file_mb * mb))
    if limits.processes:
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))


def drop_privileges(uid: int, gid: int) -> None:
    """Become ``uid``/``gid`` for good (only root can; no-op for the current user)."""
    if os.geteuid() == uid:
        return
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)


def with_exclusions(roots: list[str], excluded: list[str]) -> list[str]:
    """Folders to allow so that everything below ``roots`` is reachable except ``excluded``.

    Landlock only allows; to hide e.g. the grader's package inside an allowed
    site-packages, each root holding an excluded path is replaced by its
    entries, recursively, leaving out the excluded ones.
    """
    hidden = {os.path.realpath(p) for p in excluded}
    out: list[str] = []

    def visit(path: str) -> None:
        real = os.path.realpath(path)
        if real in hidden:
            return
        if not any(h.startswith(real.rstrip("/") + "/") for h in hidden) or not os.path.isdir(real):
            out.append(real)
            return
        try:
            entries = sorted(os.listdir(real))
        except OSError:
            return
        for name in entries:
            visit(os.path.join(real, name))

    for root in roots:
        if os.path.exists(root):
            visit(root)
    return sorted(set(out))
