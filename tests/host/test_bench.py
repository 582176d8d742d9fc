"""`make bench` cannot rot: each section (bench/bench_*.py, found as bench/run.py finds
them, so sections added later are covered) runs in its quick mode, succeeds, and
leaves no process behind.

Every process a benchmark starts inherits a token in its environment; after the run
no live process may carry it (those found are listed, then killed)."""

import glob
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SECTIONS = sorted(os.path.basename(p)[len("bench_"):-len(".py")]
                  for p in glob.glob(os.path.join(ROOT, "bench", "bench_*.py")))


def _carrying(token: bytes) -> dict:
    """pid -> command line of the live processes whose environment holds ``token``."""
    found = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % name, "rb") as f:
                if token not in f.read():
                    continue
            with open("/proc/%s/cmdline" % name, "rb") as f:
                found[int(name)] = f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
        except OSError:
            continue  # gone meanwhile, or not ours to read
    return found


def test_every_section_is_collected():
    assert {"board", "datachannel", "entropy", "handshake"} <= set(SECTIONS)


@pytest.mark.parametrize("section", SECTIONS)
def test_bench_section_quick(section):
    token = uuid.uuid4().hex
    env = dict(os.environ, OVPNKX_BENCH_TOKEN=token)
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "run.py"), "--quick", "--only", section],
                          env=env, capture_output=True, text=True, timeout=900, cwd=ROOT)
    left = _carrying(("OVPNKX_BENCH_TOKEN=" + token).encode())
    deadline = time.monotonic() + 3
    while left and time.monotonic() < deadline:  # a process that was already exiting
        time.sleep(0.1)
        left = _carrying(("OVPNKX_BENCH_TOKEN=" + token).encode())
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    out = proc.stdout[-4000:] + proc.stderr[-2000:]
    assert proc.returncode == 0 and "FAILED" not in proc.stdout, out
    assert not left, "section %s left processes behind: %s" % (section, left)
    print(proc.stdout.strip().splitlines()[-1])


def test_a_bench_stopped_by_sigterm_stops_what_it_started():
    """A CI timeout or a ``kill`` ends ``make bench`` with SIGTERM: the boards and servers of
    the section it was in stop with it (they outlived it before)."""
    token = uuid.uuid4().hex
    mark = ("OVPNKX_BENCH_TOKEN=" + token).encode()
    env = dict(os.environ, OVPNKX_BENCH_TOKEN=token)
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "bench", "run.py"), "--quick", "--only", "board"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    try:
        deadline = time.monotonic() + 300
        while not any("_mprun" in cmd for cmd in _carrying(mark).values()):  # a simulated board is up
            assert proc.poll() is None and time.monotonic() < deadline, "no board started"
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=60)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    left = _carrying(mark)
    deadline = time.monotonic() + 5
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = _carrying(mark)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    assert proc.returncode == 128 + signal.SIGTERM, out[-3000:]
    assert not left, "left behind: %s" % left


def test_a_heap_trial_that_failed_but_not_for_memory_runs_once_more(monkeypatch):
    """The board section's bisection: one slow trial near the edge must not throw it high."""
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    try:
        import bench_board
    finally:
        sys.path.remove(os.path.join(ROOT, "bench"))
    done = {"event": "result", "ok": True}
    keys = {"event": "keys"}
    timed_out = {"event": "result", "ok": False, "reason": "hand-window expired"}
    oom = {"event": "result", "ok": False, "reason": "out of memory during the session (free heap now 9 B)"}

    def trials(*outcomes):
        runs = list(outcomes)
        monkeypatch.setattr(bench_board, "_trial", lambda *a: runs.pop(0))
        return runs

    left = trials([timed_out], [keys, done])
    assert bench_board._works("rp2040w", "", {}, 1, False) and not left
    left = trials([oom], [keys, done])
    assert not bench_board._works("rp2040w", "", {}, 1, False) and len(left) == 1  # memory: final
    left = trials([timed_out], [timed_out])
    assert not bench_board._works("rp2040w", "", {}, 1, False) and not left
    left = trials([keys, done], [keys, done])
    assert not bench_board._works("rp2040w", "", {}, 1, False, keys=2) and not left  # too few keys, twice
