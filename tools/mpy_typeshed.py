"""Build one MicroPython typeshed per port for mypy, from the pinned stub packages.

The micropython-*-stubs packages are not PEP 561 packages: they put ``machine.pyi``,
``time.pyi``, ``hashlib.pyi``... at the top of site-packages, so mypy does not find
them there, and the packages of different ports overwrite each other's files.
``micropython-stdlib-stubs`` is a reduced typeshed ``stdlib/`` meant to *replace*
CPython's (mypy ``--custom-typeshed-dir``). Upstream's advice is ``pip install
--target typings`` plus ``custom_typeshed_dir``/``mypy_path`` = typings, but then mypy
reports the stubs' own errors as ours. So, as the micropython-typeshed project does,
each port's modules are moved into the typeshed's ``stdlib/`` and listed in its
``VERSIONS``: mypy then treats every MicroPython module as stdlib (errors inside
silenced, CPython-only modules such as ``hmac`` simply missing).

Pins live in pyproject.toml ``[tool.ovpnkx.mpy-stubs]`` (port -> requirements).
Result: ``.venv/typeshed/<port>/{stdlib,stubs}``; rebuilt only when the pins change.

Usage: python tools/mpy_typeshed.py [PORT ...]   (default: every port)
"""

import os
import shutil
import subprocess
import sys
import tempfile
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, ".venv", "typeshed")
# Top-level entries of the stub wheels that are not modules.
_NOT_MODULES = {"stdlib", "stubs", "README.md", "LICENSE.md", "pyproject.toml", "__builtins__.pyi"}


def pins() -> dict:
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)["tool"]["ovpnkx"]["mpy-stubs"]


def build(port: str, requirements: list) -> str:
    dest = os.path.join(OUT, port)
    stamp = os.path.join(dest, "PINS")
    wanted = "\n".join(requirements) + "\n"
    if os.path.exists(stamp) and open(stamp).read() == wanted:
        return dest
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
             "--disable-pip-version-check", "--target", tmp, *requirements],
            check=True,
        )
        stdlib = os.path.join(tmp, "stdlib")
        extra = []
        for name in sorted(os.listdir(tmp)):
            path = os.path.join(tmp, name)
            if name in _NOT_MODULES or name.endswith(".dist-info") or name.startswith("."):
                continue
            if name.endswith(".pyi") or os.path.isdir(path):
                shutil.move(path, os.path.join(stdlib, name))
                extra.append(name[:-4] if name.endswith(".pyi") else name)
        with open(os.path.join(stdlib, "VERSIONS"), "a") as f:
            f.write("\n# MicroPython modules of port %s\n" % port)
            for mod in extra:
                f.write("%s: 3.0-\n" % mod)
        shutil.rmtree(dest, ignore_errors=True)
        os.makedirs(dest)
        for sub in ("stdlib", "stubs"):
            shutil.move(os.path.join(tmp, sub), os.path.join(dest, sub))
    with open(stamp, "w") as f:
        f.write(wanted)
    return dest


def main(argv: list) -> int:
    table = pins()
    for port in argv or sorted(table):
        print("typeshed %s: %s" % (port, os.path.relpath(build(port, table[port]), ROOT)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
