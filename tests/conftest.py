"""Runs every core test twice: on CPython (pytest) and on the MicroPython unix port.

Tests in ``tests/core/`` are collected by pytest as usual; for each one a twin item
``<name>[micropython]`` is added that reports the outcome of the same function run
by ``tests/mp_runner.py`` under ``.venv/bin/micropython``. A core module that must
stay CPython-only (hypothesis) sets ``CPYTHON_ONLY = True``.
"""

import json
import os
import subprocess
import sys

import pytest

TESTS = os.path.dirname(os.path.abspath(__file__))
CORE = os.path.join(TESTS, "core")
MICROPYTHON = os.path.join(os.path.dirname(sys.executable), "micropython")

_results: dict = {}


def _run_micropython(modules):
    """Run the given core modules in one MicroPython process; cache per test."""
    # a heap roomy enough that fragmentation never fails a test's large buffer (heap limits
    # are the sim's business)
    proc = subprocess.run(
        [MICROPYTHON, "-X", "heapsize=8M", os.path.join(TESTS, "mp_runner.py"), *modules],
        capture_output=True, text=True, timeout=900, cwd=TESTS,
    )
    seen = set()
    for line in proc.stdout.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and "module" in rec:
            _results[(rec["module"], rec["test"])] = rec
            seen.add(rec["module"])
    for mod in modules:
        if mod not in seen:
            _results[(mod, "<import>")] = {
                "outcome": "failed",
                "error": "MicroPython run ended early (exit %s):\n%s\n%s"
                % (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:]),
            }


class MicroPythonItem(pytest.Item):
    """The MicroPython twin of a core test function."""

    def __init__(self, *, module_name, func_name, **kwargs):
        super().__init__(**kwargs)
        self.module_name = module_name
        self.func_name = func_name

    def runtest(self):
        # one process per module, when its first twin runs: with `make test`'s workers
        # (pytest-xdist, one file per worker at a time) each module runs once, where its file runs
        if not any(mod == self.module_name for mod, _ in _results):
            _run_micropython([self.module_name])
        imp = _results.get((self.module_name, "<import>"))
        if imp:
            raise AssertionError("on MicroPython, module %s failed:\n%s" % (self.module_name, imp["error"]))
        rec = _results.get((self.module_name, self.func_name))
        if rec is None:
            raise AssertionError("%s.%s did not run on MicroPython" % (self.module_name, self.func_name))
        if rec["outcome"] != "passed":
            raise AssertionError("on MicroPython:\n" + rec["error"])

    def repr_failure(self, excinfo):
        return str(excinfo.value)

    def reportinfo(self):
        return self.path, None, "%s[micropython]" % self.func_name


def _is_core(item):
    return isinstance(item, pytest.Function) and os.path.dirname(str(item.path)) == CORE


def pytest_collection_modifyitems(session, config, items):
    core = [it for it in items if _is_core(it) and not getattr(it.module, "CPYTHON_ONLY", False)]
    out = []
    for it in items:
        out.append(it)
        if it in core:
            out.append(MicroPythonItem.from_parent(
                it.parent, name=it.name + "[micropython]",
                module_name=it.module.__name__.rsplit(".", 1)[-1],
                func_name=it.name))
    items[:] = out


def pytest_terminal_summary(terminalreporter):
    counts = {"CPython": [0, 0], "MicroPython": [0, 0]}
    for outcome in ("passed", "failed"):
        for rep in terminalreporter.stats.get(outcome, []):
            path = os.path.join(str(terminalreporter.config.rootpath), rep.nodeid.split("::")[0])
            if rep.when != "call" or os.path.dirname(path) != CORE:
                continue
            runtime = "MicroPython" if rep.nodeid.endswith("[micropython]") else "CPython"
            counts[runtime][0 if outcome == "passed" else 1] += 1
    if any(sum(c) for c in counts.values()):
        terminalreporter.write_line(
            "core tests: CPython %d passed, %d failed; MicroPython %d passed, %d failed"
            % (counts["CPython"][0], counts["CPython"][1], counts["MicroPython"][0], counts["MicroPython"][1]))
