"""Run core test modules on the MicroPython unix port.

Usage: micropython tests/mp_runner.py MODULE [MODULE ...]

Each ``test_*`` function of each module is called; one JSON line is printed per
test: {"module", "test", "outcome": "passed"|"failed", "error"}. A module that
cannot be imported yields one failed line with test "<import>". The exit status
is 1 when anything failed.
"""

import io
import json
import sys

_here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
sys.path.append(_here + "/core")
sys.path.append(_here + "/../firmware")


def _trace(exc):
    buf = io.StringIO()
    sys.print_exception(exc, buf)
    return buf.getvalue()


def _report(module, test, outcome, error=""):
    print(json.dumps({"module": module, "test": test, "outcome": outcome, "error": error}))


def main(modules):
    failed = 0
    for name in modules:
        try:
            mod = __import__(name)
        except Exception as exc:  # an import error fails the whole module
            _report(name, "<import>", "failed", _trace(exc))
            failed += 1
            continue
        for attr in sorted(dir(mod)):
            func = getattr(mod, attr)
            if not attr.startswith("test_") or not callable(func):
                continue
            try:
                func()
            except Exception as exc:
                failed += 1
                _report(name, attr, "failed", _trace(exc))
            else:
                _report(name, attr, "passed")
    return 1 if failed else 0


sys.exit(main(sys.argv[1:]))
