"""Builds the simulated board's LD_PRELOAD shim (``sim/ovpnkx_shim.c``) once per source.

``path()`` returns the shared object, compiled with the system's C compiler into
``~/.cache/ovpnkx`` (or ``$OVPNKX_CACHE``), or None with the reason in ``why()``
when there is no compiler: the sim then runs without charging mbedTLS to the heap
and says so in its start line.
"""

import hashlib
import os
import shutil
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "ovpnkx_shim.c")
_why = ""


def why() -> str:
    """Why ``path()`` returned None."""
    return _why


def path() -> "str | None":
    """The compiled shim (built on first use), or None."""
    global _why
    with open(SOURCE, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    cache = os.environ.get("OVPNKX_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "ovpnkx")
    lib = os.path.join(cache, "ovpnkx_shim-%s.so" % digest)
    if os.path.exists(lib):
        return lib
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        _why = "no C compiler (cc) to build sim/ovpnkx_shim.c"
        return None
    os.makedirs(cache, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=cache)
    os.close(fd)
    proc = subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", tmp, SOURCE], capture_output=True, text=True)
    if proc.returncode != 0:
        os.unlink(tmp)
        _why = "building the shim failed: %s" % proc.stderr.strip()[:300]
        return None
    os.replace(tmp, lib)  # atomic: parallel sims may build it at the same time
    return lib
