"""Confine the current process before it runs a submission's code.

Runs inside the sandbox (imported by ``server.py`` by path, never through the
``mann`` package), so it imports only the standard library.

Layers, each applied when the machine offers it (the namespaces around the
whole sandbox come from bubblewrap, started by the grader; see
``mann/grading/isolation.py``):

* a PID namespace and mount namespace of the test's own (``enter_test_namespace``):
  when its first process ends, the kernel kills every process left in it;
* no capability in any set (``drop_capabilities``), so a sandboxed root cannot
  chown, mknod, raise priorities or bypass file permissions;
* a seccomp filter (``install_syscall_filter``): no change of any file's mode,
  owner, times or extended attributes, no device node, and no ``socket()`` of
  any family but AF_UNIX (UDP, raw, packet, MPTCP...);
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
_PR_SET_PDEATHSIG, _PR_CAPBSET_DROP, _PR_SET_SECCOMP, _PR_CAP_AMBIENT = 1, 24, 22, 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_CAPABILITY_VERSION_3 = 0x20080522
_CLONE_NEWNS, _CLONE_NEWPID = 0x00020000, 0x20000000
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MS_REC, _MS_PRIVATE = 2, 4, 8, 1 << 14, 1 << 18
# seccomp per machine: (audit arch, socket(), the metadata calls: chmod, chown, utime,
# mknod and xattr families, fchmodat2, setxattrat, removexattrat); skipped elsewhere
_SECCOMP_ARCH = {
    "x86_64": (0xC000003E, 41, (90, 91, 92, 93, 94, 132, 133, 188, 189, 190, 197, 198, 199, 235, 259, 260, 261,
                                268, 280, 452, 463, 466)),
    "aarch64": (0xC00000B7, 198, (5, 6, 7, 14, 15, 16, 33, 52, 53, 54, 55, 88, 452, 463, 466)),
}
_X32_SYSCALL_BIT = 0x40000000
_AF_UNIX = 1

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


def _no_new_privs(libc) -> None:
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")


def enter_test_namespace() -> bool:
    """Make this process's next child the first process (PID 1) of a new PID
    namespace with its own mount namespace. Returns False, changing nothing,
    where the kernel refuses (no CAP_SYS_ADMIN in this user namespace)."""
    libc = _libc()
    return libc.unshare(ctypes.c_int(_CLONE_NEWPID | _CLONE_NEWNS)) == 0


def mount_private_proc() -> bool:
    """In a new mount namespace: stop mounts propagating out (so the host's /proc
    is never covered), then mount a /proc that shows only this PID namespace."""
    libc = _libc()
    if libc.mount(None, b"/", None, ctypes.c_ulong(_MS_REC | _MS_PRIVATE), None) != 0:
        return False
    return libc.mount(b"proc", b"/proc", b"proc", ctypes.c_ulong(_MS_NOSUID | _MS_NODEV | _MS_NOEXEC), None) == 0


def die_with_parent() -> None:
    """SIGKILL this process when the process that forked it ends."""
    import signal

    _libc().prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def drop_capabilities() -> None:
    """Leave no capability in the bounding, ambient, effective, permitted or
    inheritable set; nothing this process executes can regain one.

    Raises OSError when the kernel refuses to empty the sets."""
    libc = _libc()
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            last = int(f.read())
    except (OSError, ValueError):
        last = 63
    for cap in range(last + 1):
        # fails without CAP_SETPCAP; then nothing can be gained back anyway (no_new_privs)
        libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0)
    libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = _CapHeader(_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")
    _no_new_privs(libc)


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def filter_program(arch: int, socket_nr: int, denied: tuple[int, ...], unix_sockets: bool) -> list[tuple]:
    """The classic-BPF seccomp program of ``install_syscall_filter`` as
    (code, jt, jf, k) tuples: EACCES for a foreign ABI, for each ``denied``
    system call and for ``socket()`` of any family but (if ``unix_sockets``)
    AF_UNIX; everything else allowed."""
    import errno

    ld_w_abs, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06
    body = [("ld", 4), ("jeq", arch, "next", "deny"),          # seccomp_data.arch
            ("ld", 0), ("jge", _X32_SYSCALL_BIT, "deny", "next")]  # seccomp_data.nr
    body += [("jeq", nr, "deny", "next") for nr in denied]
    body += [("jeq", socket_nr, "next", "allow"), ("ld", 16)]  # args[0], low half: the family
    if unix_sockets:
        body += [("jeq", _AF_UNIX, "allow", "deny")]
    body += [("ret", 0x00050000 | errno.EACCES), ("ret", 0x7FFF0000)]
    deny, allow = len(body) - 2, len(body) - 1

    def offset(i: int, target: str) -> int:
        return 0 if target == "next" else (deny if target == "deny" else allow) - (i + 1)

    program = []
    for i, op in enumerate(body):
        if op[0] == "ld":
            program.append((ld_w_abs, 0, 0, op[1]))
        elif op[0] == "ret":
            program.append((ret, 0, 0, op[1]))
        else:
            program.append((jeq if op[0] == "jeq" else jge, offset(i, op[2]), offset(i, op[3]), op[1]))
    return program


def install_syscall_filter(unix_sockets: bool = True) -> bool:
    """A seccomp filter for this process and its children: changing any file's
    mode, owner, times or extended attributes and making device nodes fail with
    EACCES (Landlock does not cover metadata), and so does ``socket()`` of any
    family but AF_UNIX (UDP, raw, packet, MPTCP, netlink...), or of any family
    at all without ``unix_sockets``; so do system calls of another ABI (x32,
    32-bit), which could reach these by other numbers.

    Returns False where this machine's system call numbers are not known."""
    import platform

    known = _SECCOMP_ARCH.get(platform.machine())
    if known is None:
        return False
    arch, socket_nr, denied = known
    program = filter_program(arch, socket_nr, denied, unix_sockets)
    filters = (_SockFilter * len(program))(*[_SockFilter(*op) for op in program])
    prog = _SockFprog(len(program), filters)
    libc = _libc()
    _no_new_privs(libc)
    if libc.prctl(_PR_SET_SECCOMP, 2, ctypes.byref(prog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP) failed")
    return True
