"""The board's error messages live in its flash, not in its heap.

Stock firmware loads every ``.mpy`` it imports into the GC heap, string constants
included, and the texts of the core's error messages (``RemoteProtocolError("%s
truncated in session_id" % name)``) are ~9 KiB of a Pico W's heap during a
handshake. So the flash build (``tools/flash.py``, through ``tools/board_source.py``)
compiles each module with its messages replaced by numbers,
``RemoteProtocolError(12, name)``, and writes the texts
to ``/lib/ovpnkx/messages.txt``, one per line: ``ovpnkx.errors`` reads the line back
when the error is turned into text (``str(exc)``), so the device reports exactly the
message the source says. The same idea as MicroPython's own compressed error texts,
or defmt's format strings kept off the target.

What is replaced: the one positional argument of a call to one of the core's error
classes (ERROR_CLASSES) or to ``ovpnkx.errors.message`` (a text that is not an
error's) when it is a string literal, or a string literal ``%`` its arguments;
anything else (a variable, a ``+``, a text with a line break) stays as written.
The source is changed only in those spans, and keeps its line numbers. Only the
board's build does this; CPython and the tests of the core on MicroPython run the
source as it is.
"""

import ast

CATALOG = "messages.txt"  # beside errors.mpy, in /lib/ovpnkx/
# ovpnkx.errors.ProtocolError and its subclasses, whose __str__ reads the catalog
ERROR_CLASSES = frozenset((
    "ProtocolError", "LocalProtocolError", "RemoteProtocolError", "EntropyError", "ConfigError",
    "SettingsError", "NoDateError", "ReseedRequired", "ConnectionListExhausted"))
MOVED_CALLS = ERROR_CLASSES | {"message"}  # ovpnkx.errors.message: the marker of other texts


def _message(call: ast.Call) -> "tuple[str, list] | None":
    """(text, argument nodes) of a call (MOVED_CALLS) whose message can move, else None."""
    func = call.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
    if name not in MOVED_CALLS or len(call.args) != 1 or call.keywords:
        return None
    arg = call.args[0]
    args: list = []
    if isinstance(arg, ast.BinOp) and isinstance(arg.op, ast.Mod):
        # The board does "text % args[1]" for one argument (the right side as written:
        # x, which may be a tuple at run time, or (x,)) and "text % args[1:]" for more,
        # so only a tuple of two or more is passed as its elements.
        right = arg.right
        elts = right.elts if isinstance(right, ast.Tuple) else None
        if elts is not None and any(isinstance(a, ast.Starred) for a in elts):
            return None
        args = elts if elts is not None and len(elts) > 1 else [right]
        arg = arg.left
    if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
        return None
    if "\n" in arg.value or "\r" in arg.value:
        return None
    return arg.value, args


def _offset(line_starts: list, line: int, col: int) -> int:
    return line_starts[line - 1] + col


def extract(source: str, catalog: list) -> str:
    """``source`` with its error messages replaced by their index in ``catalog``.

    New texts are appended to ``catalog``; a text already there keeps its number.
    Line numbers are kept: a message that spanned lines leaves its line breaks behind.
    """
    data = source.encode()
    line_starts = [0]
    for line in data.splitlines(keepends=True):
        line_starts.append(line_starts[-1] + len(line))
    found = []
    for node in ast.walk(ast.parse(source)):
        message = _message(node) if isinstance(node, ast.Call) else None
        if message is not None:
            arg = node.args[0]
            start = _offset(line_starts, arg.lineno, arg.col_offset)
            end = _offset(line_starts, arg.end_lineno, arg.end_col_offset)  # type: ignore[arg-type]
            found.append((start, end) + message)
    # a message inside another's arguments stays as written (the outer one is unparsed whole)
    found = [m for m in found if not any(o is not m and o[0] <= m[0] and m[1] <= o[1] for o in found)]
    for start, end, text, args in sorted(found, key=lambda m: m[0]):  # numbers in source order
        if text not in catalog:
            catalog.append(text)
    for start, end, text, args in sorted(found, key=lambda m: m[0], reverse=True):
        new = ", ".join([str(catalog.index(text))] + ["(%s)" % ast.unparse(a) for a in args])
        new += "\n" * (data[start:end].count(b"\n") - new.count("\n"))
        data = data[:start] + new.encode() + data[end:]
    return data.decode()


def catalog_text(catalog: list) -> str:
    """The catalog file: line i is the text of message i."""
    return "".join(text + "\n" for text in catalog)
