"""The board's build writes integer constants as numbers (tools/const_inline.py).

What is checked: every form of use the core has is inlined and its import dropped; what
must stay (a re-export, a name a string looks up, a rebound or big value, a shadowing
local) stays; the rewritten package gives the same results as its source on MicroPython;
every module the board gets keeps its lines and compiles, and the constants the session
reads per packet are numbers in what it runs, as are TYPE_CHECKING and MICROPYTHON (False
and True on a board).
"""

import os

from _device import REPO, flash_tool, run_micropython, write_package

import board_source  # tools/board_source.py (on sys.path through _device)
import const_inline  # tools/const_inline.py

# a package "pkg": consts defines, the others use, in every form the core has
SOURCES = {
    "pkg": "",
    "pkg.consts": '''
from micropython import const
OPCODE = 4
NEGATIVE = -1
WRAPPED = const(7)
_PRIVATE = 9
BIG = 4294967295  # not a small int on a 32-bit port: stays a name
REBOUND = 1
NAMED = 5  # a string below names it: its definition stays
FORWARDED = 6  # re-exported by pkg.middle
ATTR_SET = 2  # assigned from outside: not a constant
NAMES = {OPCODE: "op", NEGATIVE: "neg"}
TABLE = {"NAMED": 1}
SPELLED = 8  # only spelled among other words of a string (a table of names for messages): goes
SPELLED_NAMES = dict(zip((SPELLED, OPCODE), "SPELLED OPCODE".split()))


def bump():
    global REBOUND
    REBOUND += 1
    return OPCODE + _PRIVATE
''',
    "pkg.middle": '''
from .consts import FORWARDED, OPCODE
MIDDLE = OPCODE * 2
''',
    "pkg.user": '''
from . import consts as c
from .consts import WRAPPED, NEGATIVE as NEG
from .middle import FORWARDED
from pkg.consts import OPCODE
import pkg.middle as middle
c.ATTR_SET = 3


def shadowed(WRAPPED=1):
    return WRAPPED


def run():
    return [c.OPCODE, OPCODE, NEG, WRAPPED, c.BIG, c.REBOUND, c.NAMED, FORWARDED, middle.MIDDLE,
            c.ATTR_SET, shadowed(), c.NAMES[c.OPCODE], c.bump(), c.REBOUND]
''',
    "pkg.wrapped": '''
from .consts import WRAPPED


def wrapped():
    return WRAPPED
''',
    "pkg.only": '''
from .consts import OPCODE


def op():
    return OPCODE
''',
}


def test_every_form_of_use_is_inlined_and_what_must_stay_stays():
    out = const_inline.inline(SOURCES)
    user, consts, middle, only = out["pkg.user"], out["pkg.consts"], out["pkg.middle"], out["pkg.only"]
    # WRAPPED is also an argument in pkg.user: that module keeps the name, pkg.wrapped does not
    assert "return [4, 4, (-1), WRAPPED, c.BIG, c.REBOUND, 5, FORWARDED, middle.MIDDLE," in user
    assert "c.ATTR_SET, shadowed(), c.NAMES[4]" in user
    assert "from .consts import WRAPPED\n" in user and "return 7" in out["pkg.wrapped"]
    assert "from pkg.consts" not in user and "__import__('pkg.consts')" in user  # still imported
    # definitions: gone where nothing names them any more
    assert 'SPELLED_NAMES = dict(zip((8, 4), "SPELLED OPCODE".split()))' in consts
    for gone in ("OPCODE = 4", "NEGATIVE = -1", "_PRIVATE = 9", "SPELLED = 8"):
        assert gone not in consts, gone
    for kept in ("BIG = 4294967295", "REBOUND = 1", "NAMED = 5", "FORWARDED = 6", "ATTR_SET = 2", "WRAPPED = const(7)"):
        assert kept in consts, kept
    assert "NAMES = {4: \"op\", (-1): \"neg\"}" in consts and "return 4 + 9" in consts
    assert "from .consts import FORWARDED\n" in middle and "MIDDLE = 4 * 2" in middle  # re-exported: kept
    assert "from .consts import" not in only and "return 4" in only
    for name, source in SOURCES.items():
        assert out[name].count("\n") == source.count("\n"), name


def test_a_name_the_code_beside_the_set_uses_keeps_its_definition():
    """A board's noise.py is flashed beside the set and imports from it: what it names stays."""
    out = const_inline.inline(SOURCES, beside={"OPCODE"})
    assert "\nOPCODE = 4\n" in out["pkg.consts"] and "return 4" in out["pkg.only"]
    assert "\nOPCODE = 4\n" not in const_inline.inline(SOURCES)["pkg.consts"]


def test_the_rewritten_package_runs_as_its_source_on_micropython(tmp_path):
    code = "import pkg.user, pkg.only, pkg.wrapped\nprint(pkg.user.run(), pkg.only.op(), pkg.wrapped.wrapped())"
    source = run_micropython(write_package(str(tmp_path / "src"), SOURCES), code)
    assert source.startswith("[4, 4, -1, 7, 4294967295, 1, 5, 6, 8, 3, 1, 'op', 13, 2] 4 7")
    assert run_micropython(write_package(str(tmp_path / "board"), const_inline.inline(SOURCES)), code) == source


def test_every_module_a_board_gets_keeps_its_lines_and_compiles(tmp_path):
    files = []
    for pkg in flash_tool.PACKAGES:
        os.makedirs(tmp_path / pkg)
        for name in sorted(os.listdir(os.path.join(REPO, "firmware", pkg))):
            rel = "%s/%s" % (pkg, name)
            if name.endswith(".py") and rel not in flash_tool.HOST_ONLY:
                files.append((rel, os.path.join(REPO, "firmware", rel), str(tmp_path / rel)))
    board_source.rewrite(files)
    changed = 0
    for rel, src, dst in files:
        with open(src, encoding="utf-8") as f, open(dst, encoding="utf-8") as g:
            before, after = f.read(), g.read()
        assert after.count("\n") == before.count("\n"), rel
        compile(after, rel, "exec")
        changed += before != after
        if rel == "ovpnkx/control.py":  # the opcodes and key_state events it reads per packet
            assert "pk.P_CONTROL_V1" in before and "pk.P_CONTROL_V1" not in after
            assert "ks.EV_KEY_SENT" in before and "self.state.handle(5)" in after
        if rel == "ovpnkx/seriallink.py":  # its framing constants are no names on the board
            assert "\nMAX_FRAGMENT = " in before and "\nMAX_FRAGMENT = " not in after
        if rel == "ovpnkx/session.py":  # no typing on a board: the annotations' imports go
            assert "\nif TYPE_CHECKING:\n" in before and "\nif False:\n" in after and "TYPE_CHECKING" not in after
        if rel == "ovpnkx/digest.py":  # a board runs MicroPython: its CPython branches go
            assert "if not MICROPYTHON:" in before and "if not True:" in after and "MICROPYTHON" not in after
    assert changed > 30
