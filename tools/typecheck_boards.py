"""Type-check each board's code against its own port's MicroPython typeshed.

Boards are checked one by one, not in pyproject.toml's run: their files share names
(``main.py``, ``board.py``) that would clash as modules, and each port has its own
``machine``/``esp32``/``rp2``. The board folder and ``firmware/`` are on the path, as
they are on the device's flash. Exits non-zero if any board has type errors.
"""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MYPY = os.path.join(os.path.dirname(sys.executable), "mypy")
# board folder -> port whose typeshed tools/mpy_typeshed.py builds
PORTS = {"rp2040": "rp2", "rp2350": "rp2", "esp32": "esp32", "sim": "unix"}


def main() -> int:
    failed = []
    boards_dir = os.path.join(ROOT, "boards")
    names = sorted(os.listdir(boards_dir)) if os.path.isdir(boards_dir) else []
    for name in names:
        path = os.path.join(boards_dir, name)
        if not os.path.isdir(path) or not any(f.endswith(".py") for f in os.listdir(path)):
            continue
        port = PORTS.get(name)
        if port is None:
            print("boards/%s: no port known; add it to PORTS in %s" % (name, __file__))
            failed.append(name)
            continue
        env = dict(os.environ, MYPYPATH=path + os.pathsep + os.path.join(ROOT, "firmware"))
        # manifest*.py are freeze manifests run by MicroPython's build, not modules
        cmd = [MYPY, "--custom-typeshed-dir", os.path.join(ROOT, ".venv", "typeshed", port),
               "--exclude", r"manifest[^/]*\.py$", os.path.join("boards", name)]
        print("mypy boards/%s (port %s)" % (name, port), flush=True)
        if subprocess.run(cmd, cwd=ROOT, env=env).returncode != 0:
            failed.append(name)
    if failed:
        print("type errors in boards: %s" % ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
