"""Where CI is set, a skipped interop test fails the run (tests/interop/conftest.py) (issue 9 item 16)."""

import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
INTEROP_CONFTEST = os.path.join(os.path.dirname(HERE), "interop", "conftest.py")

SKIPPING = '''
import pytest

def test_needs_something_absent():
    pytest.skip("a p2mp openvpn server needs /dev/net/tun, which is missing here")

def test_runs():
    pass
'''


def _run(tmp_path, ci):
    shutil.copy(INTEROP_CONFTEST, tmp_path / "conftest.py")
    (tmp_path / "test_skipping.py").write_text(SKIPPING)
    env = dict(os.environ)
    env.pop("CI", None)
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                          capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=120)


def test_a_skip_fails_where_ci_is_set(tmp_path):
    proc = _run(tmp_path, "true")
    assert proc.returncode == 1, proc.stdout
    assert "1 failed, 1 passed" in proc.stdout, proc.stdout
    assert "skipped where CI is set" in proc.stdout and "/dev/net/tun" in proc.stdout


def test_a_skip_is_a_skip_elsewhere(tmp_path):
    for ci in (None, "false"):
        proc = _run(tmp_path, ci)
        assert proc.returncode == 0 and "1 passed, 1 skipped" in proc.stdout, (ci, proc.stdout)
