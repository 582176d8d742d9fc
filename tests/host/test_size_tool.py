"""tools/size.py (``make size``): one row per firmware module, totals that add up."""

import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(ROOT, "tools", "size.py")


def _run(*args):
    return subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True, timeout=300)


def _table(stdout):
    lines = stdout.splitlines()
    header = lines[0].split()
    rows = {}
    for line in lines[1:]:
        cells = line.split()
        assert len(cells) == len(header), line
        rows[cells[0]] = cells[1:]
        if cells[0] == "total":
            break
    return header[1:], rows


def _modules(firmware):
    found: set = set()
    for pkg in os.listdir(firmware):
        pkg_dir = os.path.join(firmware, pkg)
        if os.path.isfile(os.path.join(pkg_dir, "__init__.py")):
            for dirpath, _dirs, files in os.walk(pkg_dir):
                found.update(os.path.relpath(os.path.join(dirpath, f), firmware)
                             for f in files if f.endswith(".py"))
    return found


def test_lists_every_module_and_totals_add_up(tmp_path):
    # a snapshot, so that edits to firmware/ during the run cannot skew the sizes
    firmware = str(tmp_path / "firmware")
    shutil.copytree(os.path.join(ROOT, "firmware"), firmware,
                    ignore=shutil.ignore_patterns("__pycache__"))
    expected = _modules(firmware)
    proc = _run(firmware, str(tmp_path / "mpy"))
    assert proc.returncode == 0, proc.stderr
    columns, rows = _table(proc.stdout)
    assert columns[:2] == ["source", "bytecode"]
    total = rows.pop("total")
    assert "ovpnkx/errors.py" in expected
    assert set(rows) == expected
    for i, column in enumerate(columns):
        sizes = [int(r[i]) for r in rows.values() if r[i] not in ("native", "-")]
        assert int(total[i]) == sum(sizes), column
    for rel, cells in rows.items():
        assert int(cells[0]) == os.path.getsize(os.path.join(firmware, rel))
        if cells[1] != "native":
            mpy = os.path.join(str(tmp_path), "mpy", "bytecode", rel[:-3] + ".mpy")
            assert int(cells[1]) == os.path.getsize(mpy)
            with open(mpy, "rb") as f:
                assert f.read(1) == b"M"  # .mpy magic


def test_native_module_and_compile_failure(tmp_path):
    pkg = tmp_path / "fw" / "pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("X = 1\n")
    (pkg / "fast.py").write_text(
        "import micropython\n@micropython.viper\ndef f(x: int) -> int:\n    return x + 1\n")
    (pkg / "broken.py").write_text("def f(:\n")
    proc = _run(str(tmp_path / "fw"), str(tmp_path / "out"))
    assert proc.returncode == 1
    assert "FAILED pkg/broken.py" in proc.stderr
    assert "pkg/fast.py" not in proc.stderr
    _columns, rows = _table(proc.stdout)
    assert rows["pkg/fast.py"][1] == "native"
    assert int(rows["pkg/fast.py"][2]) > 0
    assert rows["pkg/broken.py"][1] == "FAILED"
    assert rows["pkg/fast.py"][-1] == "-"  # native code: the unix port cannot say what it costs a chip


def test_heap_column_counts_what_each_function_costs_beyond_its_bytecode(tmp_path):
    """heap~: a module of 100 one-line methods takes far more heap than its .mpy (each
    function's raw code, function object and dict slot), one bulky string about its size."""
    pkg = tmp_path / "fw" / "pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "many.py").write_text("class A:\n" + "".join("    def m%03d(self, x):\n        return x + %d\n" % (i, i)
                                                        for i in range(100)))
    (pkg / "bulky.py").write_text("TEXT = b'%s'\n" % ("x" * 4000))
    proc = _run(str(tmp_path / "fw"), str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    columns, rows = _table(proc.stdout)
    assert columns[-1] == "heap~"
    mpy, heap = int(rows["pkg/many.py"][2]), int(rows["pkg/many.py"][-1])
    assert heap > 2 * mpy, (mpy, heap)
    mpy, heap = int(rows["pkg/bulky.py"][2]), int(rows["pkg/bulky.py"][-1])
    assert mpy < heap < 1.5 * mpy, (mpy, heap)
