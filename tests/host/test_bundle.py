"""The board's build writes the modules a session always holds as one (tools/bundle.py).

What is checked: the bundle of a small package runs on MicroPython as its modules did
(members reading each other by name, by ``from . import x as y`` and inside functions;
the package's other modules importing from the bundle); what cannot be one module is
refused with the reason; and the real set bundles and, on a simulated board, holds
less heap than its modules one by one.
"""

import os

import pytest
from _device import run_micropython, write_package

import board_source  # tools/board_source.py (on sys.path through _device)
import bundle  # tools/bundle.py
import const_inline  # tools/const_inline.py

TOY = {
    "toy": "",
    "toy.errors": "class ToyError(Exception):\n    pass\n",
    "toy.base": ('"""base"""\nfrom micropython import const\nfrom .errors import ToyError\n'
                 "LIMIT = const(3)\n_SCALE = 10\n__all__ = ('scaled',)\n\n"
                 "def scaled(x):\n    if x > LIMIT:\n        raise ToyError('too big')\n    return x * _SCALE\n"),
    "toy.user": ("from micropython import const\nfrom . import base as b\nfrom .base import scaled as times_ten\n"
                 "LIMIT = const(3)\n\n"
                 "def both(x):\n    from .base import scaled\n    return b.scaled(x) + times_ten(x) + scaled(x)\n"),
    "toy.outside": "from . import base as b\nfrom .user import both\n\ndef run(x):\n    return both(x) + b.LIMIT\n",
}
ORDER = ("toy.base", "toy.user")


def test_a_bundle_runs_as_its_modules_did(tmp_path):
    out = bundle.bundle(dict(TOY), ORDER, "toy._bundle")
    assert "toy.base" not in out and "toy.user" not in out and "toy._bundle" in out
    assert out["toy.outside"].splitlines()[:2] == ["from . import _bundle as b", "from ._bundle import both"]
    text = out["toy._bundle"]
    assert "times_ten = scaled" in text and "b = _bundle_self" in text and "__all__" not in text
    lib = write_package(str(tmp_path / "lib"), out)
    code = ("import toy.outside, toy._bundle, sys\nprint(toy.outside.run(2), sorted(k for k in sys.modules if k.startswith('toy')))\n"
            "try:\n toy._bundle.scaled(4)\nexcept toy._bundle.ToyError as e:\n print(e)")
    got = run_micropython(lib, code).split("\n")
    assert got[0] == "63 ['toy', 'toy._bundle', 'toy.errors', 'toy.outside']" and got[1] == "too big"


@pytest.mark.parametrize("change, words", [
    ({"toy.user": "from .base import scaled\n\ndef scaled(x):\n    return x\n"}, "toy.base and toy.user both bind scaled"),
    ({"toy.user": "from micropython import const\nLIMIT = const(4)\n"}, "both bind LIMIT"),
    ({"toy.base": "from .user import both\n"}, "toy.base imports toy.user at its top level, which comes after it"),
    ({"toy.user": "import toy.base\n"}, "import toy.base (write from ... import)"),
    ({"toy.user": "def f():\n    from .base import scaled\n    del scaled\n"}, "del of scaled"),
    ({"toy.user": "x = 1; from .base import scaled\n"}, "shares its line"),
])
def test_what_cannot_be_one_module_is_refused(change, words):
    sources = dict(TOY, **change)
    with pytest.raises(bundle.BundleError) as info:
        bundle.bundle(sources, ORDER, "toy._bundle")
    assert words in str(info.value)


def test_the_boards_set_bundles_and_its_members_go():
    firmware = os.path.join(board_source.REPO, "firmware")
    sources = {}
    for pkg in ("ovpnkx", "ovpnkx_device"):
        for name in sorted(os.listdir(os.path.join(firmware, pkg))):
            if name.endswith(".py"):
                with open(os.path.join(firmware, pkg, name), encoding="utf-8") as f:
                    sources[board_source.module_name(pkg + "/" + name)] = f.read()
    out = bundle.bundle(const_inline.inline(sources, set()))
    assert set(out) == set(sources) - set(bundle.MEMBERS) | {bundle.BUNDLE}
    compile(out[bundle.BUNDLE], bundle.BUNDLE, "exec")
    for module, text in out.items():  # no module of the set reads a member by its own name any more
        for member in bundle.MEMBERS:
            short = member.split(".")[1]
            assert "from .%s import" % short not in text and "from %s import" % member not in text, (module, member)
