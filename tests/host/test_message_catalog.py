"""The board's error messages in flash (tools/message_catalog.py, ovpnkx.errors).

The flash build replaces the core's error texts (and the texts marked with ``message()``)
by numbers and writes the texts to ``messages.txt``; ``str(exc)`` on the board reads them
back. What is checked: the rewritten code gives the same messages as the source, on
MicroPython, for every form the rewriting takes and leaves; every shipped module is rewritten with its lines kept;
a board without its catalog still gets an error that says which message it was.
"""

import ast
import os
import shutil
import subprocess
import sys

from _device import REPO, flash_tool, run_micropython

import message_catalog  # tools/message_catalog.py (on sys.path through _device)

MICROPYTHON = os.path.join(os.path.dirname(sys.executable), "micropython")

# every form a message takes in the core, and forms the rewriting must leave alone
SAMPLE = '''
from ovpnkx.errors import LocalProtocolError, RemoteProtocolError, EntropyError, message
import ovpnkx.errors as errors

def name(x):
    return "N%d" % x

PAIR = ("a", "b")  # a tuple as the right side: formats its elements
ONE = ("only",)

CASES = [
    lambda: RemoteProtocolError("empty packet"),
    lambda: RemoteProtocolError("unknown opcode %d" % 7),
    lambda: RemoteProtocolError("%s has %d acks, at most %d allowed" % (name(3), 9, 8)),
    lambda: LocalProtocolError("ack %r is not a uint32" % ((1, 2),)),
    lambda: RemoteProtocolError("a 100% literal, no format"),
    lambda: RemoteProtocolError("%d%% of %s" % (50, "it")),
    lambda: errors.RemoteProtocolError("certificate verify failed: %s"
                                       % ("the server sent no certificate",)),
    lambda: EntropyError("entropy source failed: %s: %s" % (
        "repetition count test (RCT)",
        "stuck")),
    lambda: RemoteProtocolError("outer %s" % LocalProtocolError("inner %d" % 5)),
    lambda: RemoteProtocolError("%s and %s" % PAIR),
    lambda: RemoteProtocolError("pair %r" % (PAIR,)),
    lambda: RemoteProtocolError("one %r" % ONE),
    lambda: message("a reason, not an error: %d s" % 30),
    lambda: message("a plain reason"),
    lambda: RemoteProtocolError("first " + name(1)),
    lambda: RemoteProtocolError("empty packet"),
    lambda: ValueError("not ours %d" % 1),
    lambda: LocalProtocolError(),
    lambda: LocalProtocolError("two", "args"),
]
for case in CASES:
    exc = case()
    print(type(exc).__name__, "|", str(exc), "|", "%s" % exc)
'''


def _board_lib(tmp_path, sample: str) -> str:
    """A lib folder as the flash build makes it: errors.py, the rewritten sample, messages.txt."""
    lib = tmp_path / "lib"
    (lib / "ovpnkx").mkdir(parents=True)
    for name in ("__init__.py", "_compat.py", "errors.py"):
        shutil.copy(os.path.join(REPO, "firmware", "ovpnkx", name), lib / "ovpnkx" / name)
    catalog: list = []
    (lib / "sample.py").write_text(message_catalog.extract(sample, catalog))
    (lib / "ovpnkx" / message_catalog.CATALOG).write_text(message_catalog.catalog_text(catalog))
    return str(lib)


def test_the_rewritten_code_raises_the_sources_messages_on_micropython(tmp_path):
    catalog: list = []
    rewritten = message_catalog.extract(SAMPLE, catalog)
    # moved: the literals and the literal % arguments; the same text once
    assert catalog == ["empty packet", "unknown opcode %d", "%s has %d acks, at most %d allowed",
                       "ack %r is not a uint32", "a 100% literal, no format", "%d%% of %s",
                       "certificate verify failed: %s", "entropy source failed: %s: %s", "outer %s",
                       "%s and %s", "pair %r", "one %r", "a reason, not an error: %d s", "a plain reason"]
    assert '"first " + name(1)' in rewritten and 'ValueError("not ours %d" % 1)' in rewritten
    assert "'inner %d' % 5" in rewritten  # inside another message's arguments: left as written
    assert rewritten.count("\n") == SAMPLE.count("\n")

    source_lib = str(tmp_path / "src")
    os.makedirs(source_lib)
    (tmp_path / "src" / "sample.py").write_text(SAMPLE)
    expected = run_micropython(os.path.join(REPO, "firmware") + ":" + source_lib, "import sample")
    assert "unknown opcode 7 |" in expected and "50% of it" in expected and "a 100% literal" in expected
    assert "str | a reason, not an error: 30 s |" in expected and "str | a plain reason |" in expected
    assert "a and b |" in expected and "pair ('a', 'b') |" in expected and "one 'only' |" in expected
    assert run_micropython(_board_lib(tmp_path, SAMPLE), "import sample") == expected


def test_without_its_catalog_a_board_still_names_the_message(tmp_path):
    lib = _board_lib(tmp_path, SAMPLE)
    os.remove(os.path.join(lib, "ovpnkx", message_catalog.CATALOG))
    out = run_micropython(lib, "import sample")
    assert "RemoteProtocolError | message 1 (messages.txt unreadable) (7,)" in out


def test_every_shipped_module_is_rewritten_with_its_lines_kept():
    catalog: list = []
    moved = 0
    for pkg in flash_tool.PACKAGES:
        folder = os.path.join(REPO, "firmware", pkg)
        for name in sorted(os.listdir(folder)):
            if not name.endswith(".py") or "%s/%s" % (pkg, name) in flash_tool.HOST_ONLY:
                continue
            with open(os.path.join(folder, name), encoding="utf-8") as f:
                source = f.read()
            before = len(catalog)
            rewritten = message_catalog.extract(source, catalog)
            ast.parse(rewritten)
            assert rewritten.count("\n") == source.count("\n"), name
            moved += rewritten != source
            assert len(catalog) >= before
    assert moved > 30 and len(catalog) > 200
    assert all("\n" not in text for text in catalog)


def test_the_flash_build_ships_the_catalog_and_its_modules_use_it(tmp_path):
    flash_tool.compile_tree(None, str(tmp_path))
    lib = str(tmp_path / "lib")
    with open(os.path.join(lib, "ovpnkx", message_catalog.CATALOG), encoding="utf-8") as f:
        assert "%s truncated in session_id\n" in f.read()
    # tlsalert.error_text: how the TLS engine words an exception it passes on (the board has
    # packet's code in the session's bundle, tools/bundle.py)
    script = ("from ovpnkx import %s tlsalert\n"
              "for w in (b'', b'\\x00', b'\\x38\\x01\\x01', b'\\x28' + b'\\x01' * 8 + b'\\x09'):\n"
              "    try:\n        packet.parse_control(w)\n"
              "    except Exception as e:\n        print(type(e).__name__, e, type(e.args[0]).__name__)\n"
              "        print('text', tlsalert.error_text(e))\n")
    board = run_micropython(lib, script % "_session as packet,")
    source = run_micropython(os.path.join(REPO, "firmware"), script % "packet,")
    assert board.replace(" int\n", "\n") == source.replace(" str\n", "\n")
    assert board.count(" int\n") == 4  # the board's errors carry numbers, not texts
    assert "P_CONTROL_HARD_RESET_CLIENT_V2 truncated in session_id" in board


def test_an_uncaught_error_on_the_board_prints_its_text_not_its_number(tmp_path):
    flash_tool.compile_tree(None, str(tmp_path))
    proc = subprocess.run([MICROPYTHON, "-c", "from ovpnkx import _session\n_session.parse_control(b'')"],
                          env=dict(os.environ, MICROPYPATH=str(tmp_path / "lib")), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 1
    out = proc.stdout + proc.stderr  # the unix port prints it to stdout
    assert out.splitlines()[-1] == "RemoteProtocolError: empty packet", out
