"""The board's build gives private names two or three letters (tools/short_names.py).

What is checked: the names the set binds are renamed the same way in every module (a
module's own names, which no other module and no attribute uses, and the public names
that only functions bind, from a sequence that starts again in each module), and what
must keep its spelling (a name a string looks up, a module's name, a name the set only
reads, a name flashed beside it, a keyword, a builtin, a module-level public name, "_"
and short names) keeps it; the renamed package
runs as its source on MicroPython; the flash build writes the map and renames, its
debugging build (--source-lines) does not.
"""

import os

from _device import flash_tool, run_micropython, write_package

import bundle  # tools/bundle.py (on sys.path through _device)
import short_names  # tools/short_names.py (on sys.path through _device)

SOURCES = {
    "pkg": "",
    "pkg._helpers": '''
def _double(value):
    return _scale(value, 2)


def _scale(value, factor):
    return factor * value


def _outside():
    return "beside"
''',
    "pkg.engine": '''
import sys
from ._helpers import _double, _outside


class _Window:
    def __init__(self, _start=1):
        self._position = _start
        self._looked_up = "by name"
        self._label = "w"

    def _advance(self, steps):
        for _ in range(steps):
            self._position = _double(self._position)
        return self._position


def public(count, step=1):
    return count * step


def clamp(number, max):
    return min(number, max)


def run():
    window = _Window(_start=3)
    impl = sys.implementation
    return [window._advance(2), getattr(window, "_looked_up"), type(window).__name__,
            _outside(), hasattr(impl, "_never_bound_here"), f"{window._label}!", public(2, step=3), clamp(5, 4)]
''',
}


def test_bound_private_names_are_renamed_alike_and_the_others_keep_their_spelling():
    maps = short_names.names_map(SOURCES, extra_words={"_outside"})
    engine_map, helpers_map = maps["pkg.engine"], maps["pkg._helpers"]
    shared = {"_double", "_start", "_position", "_advance"}  # imported, a keyword, attributes
    functions_own = {"engine": {"steps", "impl", "count", "number"}, "helpers": {"value", "factor"}}
    assert set(engine_map) == shared | {"_Window"} | functions_own["engine"]
    assert set(helpers_map) == shared | {"_scale"} | functions_own["helpers"]
    assert all(engine_map[n] == helpers_map[n] == maps["pkg"][n] for n in shared)
    # each module's own names (no attribute, no keyword, one module; a public one only a
    # function binds) take the sequence that starts again in each module
    # take the sequence that starts again in each module, past the short names of the
    # shared names the module uses only: helpers' may be those of attributes it never touches
    own = {name: {mapping[n] for n in mapping if n not in shared} for name, mapping in maps.items()}
    assert not own["pkg"]
    assert own["pkg._helpers"] & {engine_map["_position"], engine_map["_advance"], engine_map["_start"]}
    for name, mapping in maps.items():
        used = [short for n, short in mapping.items() if n in set(SOURCES[name].replace("(", " ").split()) |
                {w for _, _, w in short_names.identifiers(SOURCES[name])}]
        assert len(set(used)) == len(used), name  # in one module, one short name stands for one name
        assert all(len(short) == 2 for short in mapping.values())
    engine = short_names.rename(SOURCES["pkg.engine"], engine_map)
    helpers = short_names.rename(SOURCES["pkg._helpers"], helpers_map)
    w, d, s, p, a = (engine_map[n] for n in ("_Window", "_double", "_start", "_position", "_advance"))
    v, f, st, c, nb = helpers_map["value"], helpers_map["factor"], engine_map["steps"], engine_map["count"], \
        engine_map["number"]
    assert "from ._helpers import %s, _outside" % d in engine  # a module's name stays
    assert "def %s(%s):" % (d, v) in helpers and "def _outside():" in helpers  # beside: kept
    assert "def %s(%s, %s):" % (helpers_map["_scale"], v, f) in helpers  # its own and its function's own
    assert "def __init__(self, %s=1):" % s in engine and "%s(%s=3)" % (w, s) in engine  # keyword too
    assert "self.%s = %s(self.%s)" % (p, d, p) in engine and "impl =" not in engine
    assert 'self._looked_up = "by name"' in engine  # a string names it
    assert 'self._label = "w"' in engine and 'f"{window._label}!"' in engine  # an f-string uses them
    assert "for _ in range(%s):" % st in engine and "_never_bound_here" in engine
    # a module's public function, a keyword and a builtin keep their names; arguments do not
    assert "def public(%s, step=1):" % c in engine and "public(2, step=3)" in engine
    assert "def clamp(%s, max):" % nb in engine and "min(%s, max)" % nb in engine
    for name, source in SOURCES.items():
        renamed = short_names.rename(source, maps[name])
        assert renamed.count("\n") == source.count("\n")
        assert not set(maps[name].values()) & set(source.replace("(", " ").split())  # fresh names
    lines = short_names.map_text(maps).splitlines()
    assert "%s _Window pkg.engine" % w in lines and "%s _scale pkg._helpers" % helpers_map["_scale"] in lines
    assert "%s value pkg._helpers" % v in lines and "%s steps pkg.engine" % st in lines
    assert "%s _double" % d in lines
    assert len(lines) == len(shared) + 2 + sum(len(names) for names in functions_own.values())


def test_the_renamed_package_runs_as_its_source_on_micropython(tmp_path):
    code = "import pkg.engine\nprint(pkg.engine.run())"
    source = run_micropython(write_package(str(tmp_path / "src"), SOURCES), code)
    assert source == "[12, 'by name', '_Window', 'beside', False, 'w!', 6, 4]\n"
    maps = short_names.names_map(SOURCES, extra_words={"_outside"})
    renamed = {name: short_names.rename(text, maps[name]) for name, text in SOURCES.items()}
    out = run_micropython(write_package(str(tmp_path / "board"), renamed), code)
    assert out == source.replace("'_Window'", repr(maps["pkg.engine"]["_Window"]))  # a class's name is its short one


def test_the_flash_build_renames_and_writes_the_map_and_its_debugging_build_does_not(tmp_path):
    flash_tool.compile_tree(None, str(tmp_path / "plain"))
    flash_tool.compile_tree(None, str(tmp_path / "lines"), source_lines=True)
    with open(tmp_path / "plain" / flash_tool.NAMES_MAP, encoding="utf-8") as f:
        lines = [line.split() for line in f]
    shared = [line for line in lines if len(line) == 2]  # short, name: the same in every module
    own = [line for line in lines if len(line) == 3]  # short, name, module: that module's own
    assert len(shared) > 150 and len({short for short, _ in shared}) == len(shared)
    assert len(own) > 100 and len({(short, module) for short, _, module in own}) == len(own)
    # a module's own short names are mostly shared ones of attributes it does not use: few new names
    assert len({short for short, _, _ in own} - {short for short, _ in shared}) < len(own) / 20
    assert len({short for short, _, _ in own}) < len(own) / 3  # one short name serves many modules
    assert {"entropy_input", "client_random1"} <= {name for _, name, _ in own}  # functions' own public names too
    assert ["_open_key_state"] == [name for _, name in shared if name == "_open_key_state"]
    assert [["ovpnkx.x509verify"]] == [line[2:] for line in own if line[1] == "_signature_ints"]
    assert not os.path.exists(tmp_path / "lines" / flash_tool.NAMES_MAP)
    # the board's build has the session's modules in one (tools/bundle.py); its debugging build keeps each
    assert not os.path.exists(tmp_path / "plain" / "lib" / "ovpnkx" / "session.mpy")
    assert not os.path.exists(tmp_path / "lines" / "lib" / "ovpnkx" / "_session.mpy")
    lib = {build: tmp_path / build / "lib" / "ovpnkx" for build in ("plain", "lines")}
    session = {"plain": (lib["plain"] / "_session.mpy").read_bytes(),
               "lines": b"".join((lib["lines"] / (m.split(".")[1] + ".mpy")).read_bytes() for m in bundle.MEMBERS)}
    assert b"_open_key_state" in session["lines"] and b"_open_key_state" not in session["plain"]
    assert len(session["plain"]) < len(session["lines"])
    assert b"typing" not in session["plain"]  # its `if TYPE_CHECKING:` imports are gone (const_inline)
