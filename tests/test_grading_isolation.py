"""Each isolation level holds against what a hostile class tried: processes that
outlive their test, metadata changes and device nodes outside the sandbox,
priority changes, reading the grader's /proc and /etc/shadow, and contact over
UDP, MPTCP, TCP, unix sockets and raw sockets with listeners on 127.0.0.1.

Every attack is in one submission whose code is otherwise correct: it must
score full marks with every attack blocked, and the next student is graded
normally. Run at both levels: ``namespaces`` (bubblewrap) where this machine
allows it, and ``fallback`` (no namespaces) always.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from grading_variants import make_variant, rubric_for_tests
from mann.grading import isolation
from mann.grading.grade import Grader
from mann.grading.submission import find_submissions

MARKERS = ("mannchain", "manndaemon")  # names (comm) the attack's processes give themselves

ATTACKS = '''
import ctypes as _ctypes, os as _os, socket as _socket, stat as _stat
def _try(label, fn):
    try:
        fn()
        print(f"ATTACK {{label}}: SUCCEEDED", flush=True)
    except BaseException as err:
        print(f"ATTACK {{label}}: blocked ({{type(err).__name__}}: {{err}})", flush=True)
def _read(path, n=1):
    with open(path, "rb") as f:
        return f.read(n)
def _name(comm):
    _ctypes.CDLL(None).prctl(15, comm, 0, 0, 0)
def _sock(family, kind, proto, address, payload=b"MANN"):
    s = _socket.socket(family, kind, proto)
    s.settimeout(2)
    if kind == _socket.SOCK_DGRAM:
        s.sendto(payload, address)
    else:
        s.connect(address)
        s.sendall(payload)
_try("chmod-outside", lambda: _os.chmod({victim!r}, 0o777))
_try("chown-outside", lambda: _os.chown({victim!r}, 1234, 1234))
_try("utime-outside", lambda: _os.utime({victim!r}, (0, 0)))
_try("setxattr-outside", lambda: _os.setxattr({victim!r}, "user.mann", b"x"))
_try("mknod-device", lambda: _os.mknod("null2", 0o666 | _stat.S_IFCHR, _os.makedev(1, 3)))
_try("nice-minus-5", lambda: _os.nice(-5) < 0 or (_ for _ in ()).throw(PermissionError("no change")))
_try("sched-fifo", lambda: _os.sched_setscheduler(0, _os.SCHED_FIFO, _os.sched_param(1)))
_try("read-shadow", lambda: _read("/etc/shadow"))
_try("grader-environ", lambda: _read("/proc/{grader}/environ"))
_try("grader-cmdline", lambda: _read("/proc/{grader}/cmdline"))
_try("grader-maps", lambda: _read("/proc/{grader}/maps"))
_try("grader-fds", lambda: _os.listdir("/proc/{grader}/fd"))
_try("udp", lambda: _sock(_socket.AF_INET, _socket.SOCK_DGRAM, 0, ("127.0.0.1", {udp})))
_try("mptcp", lambda: _sock(_socket.AF_INET, _socket.SOCK_STREAM, 262, ("127.0.0.1", {tcp})))
_try("tcp", lambda: _sock(_socket.AF_INET, _socket.SOCK_STREAM, 0, ("127.0.0.1", {tcp})))
_try("unix-socket", lambda: _sock(_socket.AF_UNIX, _socket.SOCK_STREAM, 0, {unix!r}))
_try("raw-icmp", lambda: _socket.socket(_socket.AF_INET, _socket.SOCK_RAW, _socket.IPPROTO_ICMP))
_try("af-packet", lambda: _socket.socket(_socket.AF_PACKET, _socket.SOCK_RAW, 0))
if _os.fork() == 0:  # a chain: each process in a new session forks the next and exits
    _name(b"mannchain")
    while True:
        _os.setsid()
        if _os.fork() != 0:
            _os._exit(0)
if _os.fork() == 0:  # a daemon: double fork, new session, keeps trying to send
    _os.setsid()
    if _os.fork() != 0:
        _os._exit(0)
    _name(b"manndaemon")
    import time as _time
    while True:
        try:
            _sock(_socket.AF_INET, _socket.SOCK_DGRAM, 0, ("127.0.0.1", {udp}), b"LATE")
        except OSError:
            pass
        _time.sleep(0.05)
'''
BLOCKED = ("chmod-outside", "chown-outside", "utime-outside", "setxattr-outside", "mknod-device", "nice-minus-5",
           "sched-fifo", "read-shadow", "grader-environ", "grader-cmdline", "grader-maps", "grader-fds", "udp",
           "mptcp", "tcp", "unix-socket", "raw-icmp", "af-packet")


@pytest.fixture(scope="module", params=[isolation.NAMESPACES, isolation.FALLBACK])
def grader(request, grading_reference):
    if request.param == isolation.NAMESPACES and not isolation.available().namespaced:
        pytest.skip(f"no namespaces on this machine: {isolation.available().reason}")
    rubric = rubric_for_tests(["mann_output"], {"wall_s": 60, "cpu_s": 30, "file_mb": 2, "output_kb": 16})
    with Grader(grading_reference, rubric, isolation=request.param) as g:
        if not g.sandbox.landlock_abi:
            pytest.skip("this kernel has no Landlock: the fallback cannot hide files (see README)")
        yield g


def marked_processes() -> list[tuple[int, str]]:
    found = []
    for entry in os.listdir("/proc"):
        try:
            comm = Path(f"/proc/{entry}/comm").read_text().strip()
        except OSError:
            continue
        if comm in MARKERS:
            found.append((int(entry), comm))
    return found


@pytest.fixture
def listeners(tmp_path):
    """UDP, TCP and unix-socket listeners on the loopback, non-blocking."""
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    for s, address in ((udp, ("127.0.0.1", 0)), (tcp, ("127.0.0.1", 0)), (unix, str(tmp_path / "listener.sock"))):
        s.bind(address)
        s.setblocking(False)
    tcp.listen(8)
    unix.listen(8)
    yield {"udp": udp, "tcp": tcp, "unix": unix}
    for s in (udp, tcp, unix):
        s.close()


def received(listeners) -> list[str]:
    """Which listeners heard from anyone."""
    heard = []
    try:
        listeners["udp"].recvfrom(64)
        heard.append("udp")
    except BlockingIOError:
        pass
    for name in ("tcp", "unix"):
        try:
            listeners[name].accept()[0].close()
            heard.append(name)
        except BlockingIOError:
            pass
    return heard


def test_every_attack_fails_at_this_level_and_the_class_is_graded(grader, tmp_path, listeners):
    victim = tmp_path / "victim.txt"
    victim.write_text("the grader's file")
    victim.chmod(0o600)
    os.utime(victim, (1_000_000, 1_000_000))
    before = victim.stat()
    code = ATTACKS.format(victim=str(victim), grader=os.getpid(), udp=listeners["udp"].getsockname()[1],
                          tcp=listeners["tcp"].getsockname()[1], unix=str(tmp_path / "listener.sock"))
    make_variant(tmp_path / "class" / "attacker", {}, {"mann.py": code})
    make_variant(tmp_path / "class" / "zz_after", {})
    results = {s.name: grader.grade(s) for s in find_submissions([tmp_path / "class"])}

    attacker = results["attacker"]
    (test,) = attacker.tests
    log = test.details
    assert test.passed, (test.message, log)  # its model is otherwise correct
    for label in BLOCKED:
        assert f"ATTACK {label}: blocked" in log, (label, log)
    assert "SUCCEEDED" not in log, log
    assert results["zz_after"].score == results["zz_after"].max_score
    assert attacker.isolation == grader.sandbox.isolation.level

    after = victim.stat()
    assert (after.st_mode, after.st_uid, after.st_gid, after.st_mtime) == (
        before.st_mode, before.st_uid, before.st_gid, before.st_mtime)
    assert os.listxattr(victim) == []
    deadline = time.monotonic() + 5  # SIGKILL is delivered at once; reaping may lag a little
    while marked_processes() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert marked_processes() == [], "processes of the attack outlived grading"
    time.sleep(0.3)
    assert received(listeners) == []
