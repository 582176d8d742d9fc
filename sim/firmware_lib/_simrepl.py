"""The simulated board's REPL, after MicroPython's shared/runtime/pyexec.c.

Speaks the byte protocol of a real board on its stdin/stdout (the launcher joins
them to the ``repl`` PTY): friendly REPL (Ctrl-A raw, Ctrl-B banner, Ctrl-C cancel,
Ctrl-D soft reset, Ctrl-E paste mode), raw REPL ("raw REPL; CTRL-B to exit",
"OK", two \\x04 terminators) and raw-paste mode ("\\x05A\\x01" -> "R\\x01" + window,
\\x01 flow control). A soft reset ends this process; the launcher starts a fresh one
(fresh heap) and keeps the PTY open.
"""

import builtins
import io
import micropython
import sys

import simboard

_CTRL_A = 1
_CTRL_B = 2
_CTRL_C = 3
_CTRL_D = 4
_CTRL_E = 5
_PASTE_WINDOW = 128  # half of MICROPY_REPL_STDIN_BUFFER_MAX (256)

_in = sys.stdin.buffer
_out = sys.stdout.buffer
_raw_print = builtins.print


def _w(s) -> None:
    _out.write(s if isinstance(s, (bytes, bytearray)) else s.encode())


def _getc() -> int:
    b = _in.read(1)
    if not b:  # the launcher went away
        sys.exit(0)
    return b[0]


def _cooked_print(*args, sep=" ", end="\n", file=None, **kw):
    # A board's print() turns "\n" into "\r\n" on the serial line.
    if file is None or file is sys.stdout or file is sys.stderr:
        s = (" " if sep is None else sep).join([str(a) for a in args])
        s += "\n" if end is None else end
        (file or sys.stdout).write(s.replace("\n", "\r\n"))
    else:
        _raw_print(*args, sep=sep, end=end, file=file)


def _repl_print(obj) -> None:
    if obj is not None:
        sys.stdout.write(repr(obj).replace("\n", "\r\n") + "\r\n")
        builtins._ = obj


def _print_exception(exc) -> None:
    buf = io.StringIO()
    sys.print_exception(exc, buf)
    lines = [ln for ln in buf.getvalue().split("\n")
             if not ("_simrepl.py" in ln or "_simboot.py" in ln)]
    _w("\r\n".join(lines))


def _execute(src, name, mode, g):
    """Compile and run; returns the exception raised (None if none)."""
    try:
        code = compile(src, name, mode)
        micropython.kbd_intr(_CTRL_C)
        exec(code, g)
        micropython.kbd_intr(-1)
        for _ in range(2):  # let a Ctrl-C that raced the end surface here
            pass
    except BaseException as exc:  # noqa: B902 the board reports everything
        micropython.kbd_intr(-1)
        return exc
    return None


def _run(src, name, mode, g, eof):
    """Run like parse_compile_execute(); returns True when a soft reset is due."""
    if mode == "exec":
        g["__file__"] = name
    exc = _execute(src, name, mode, g)
    try:
        if eof:
            _w(b"\x04")
        reset = isinstance(exc, SystemExit)
        if exc is not None and not reset:
            _print_exception(exc)
        if eof:
            _w(b"\x04")
        return reset
    except KeyboardInterrupt:
        return False


def _banner() -> None:
    version = sys.version.split("; ", 1)[-1]
    _w("%s; %s\r\n" % (version, simboard.machine()))
    _w('Type "help()" for more information.\r\n')


# ---- friendly REPL ----------------------------------------------------------

def _readline(prompt):
    """Minimal readline(): returns (ctrl_char_or_0, text)."""
    _w(prompt)
    line = []
    esc = 0
    while True:
        c = _getc()
        if esc:
            esc = 0 if (esc == 2 and (c < 0x30 or c > 0x39)) or (esc == 1 and c != 0x5B) else 2
            continue
        if c == 0x1B:
            esc = 1
        elif _CTRL_A <= c <= _CTRL_E and not line:
            return c, ""
        elif c == _CTRL_C:
            return c, ""
        elif c == 0x0D:
            _w(b"\r\n")
            return 0, bytes(line).decode()
        elif c in (0x08, 0x7F):
            if line:
                line.pop()
                _w(b"\x08 \x08")
        elif c >= 0x20 or c == 0x09:
            line.append(c)
            _out.write(bytes((c,)))


def _open_brackets(src) -> bool:
    depth = 0
    i = 0
    n = len(src)
    while i < n:
        ch = src[i]
        if ch == "#":
            while i < n and src[i] != "\n":
                i += 1
        elif ch in "'\"":
            q = src[i:i + 3] if src[i:i + 3] in ("'''", '"""') else ch
            i += len(q)
            while i < n and src[i:i + len(q)] != q:
                i += 2 if src[i] == "\\" else 1
            if i >= n:
                return True  # unterminated (triple-quoted) string
            i += len(q) - 1
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        i += 1
    return depth > 0


_COMPOUND = ("if ", "while ", "for ", "try", "with ", "def ", "class ", "@", "async ")


def _continue_with_input(src) -> bool:
    # After py/repl.c mp_repl_continue_with_input().
    if _open_brackets(src) or src.endswith("\\"):
        return True
    lines = src.split("\n")
    if lines[0].lstrip().startswith(_COMPOUND):
        return lines[-1].strip() != ""
    return lines[-1].rstrip().endswith(":")


def _friendly(g):
    """Returns "raw" to switch mode or "reset" for a soft reset."""
    _banner()
    while True:
        c, line = _readline(">>> ")
        if c == _CTRL_A:
            _w(b"\r\n")
            return "raw"
        if c == _CTRL_B:
            _w(b"\r\n")
            _banner()
            continue
        if c == _CTRL_C:
            _w(b"\r\n")
            continue
        if c == _CTRL_D:
            _w(b"\r\n")
            return "reset"
        mode = "single"
        if c == _CTRL_E:
            _w(b"\r\npaste mode; Ctrl-C to cancel, Ctrl-D to finish\r\n=== ")
            buf = bytearray()
            cancelled = False
            while True:
                ch = _getc()
                if ch == _CTRL_C:
                    _w(b"\r\n")
                    cancelled = True
                    break
                if ch == _CTRL_D:
                    _w(b"\r\n")
                    break
                buf.append(ch)
                _w(b"\r\n=== " if ch == 0x0D else bytes((ch,)))
            if cancelled:
                continue
            line = bytes(buf).decode().replace("\r", "\n")
            mode = "exec"
        elif not line:
            continue
        else:
            cancelled = False
            while _continue_with_input(line):
                c, more = _readline("... ")
                if c == _CTRL_C:
                    _w(b"\r\n")
                    cancelled = True
                    break
                if c == _CTRL_D:
                    break
                line += "\n" + more
            if cancelled:
                continue
        if _run(line, "<stdin>", mode, g, False):
            return "reset"


# ---- raw REPL -------------------------------------------------------------

def _raw_paste(g):
    _w(b"R\x01")
    _out.write(bytes((_PASTE_WINDOW & 0xFF, _PASTE_WINDOW >> 8, 1)))
    remain = _PASTE_WINDOW
    buf = bytearray()
    while True:
        c = _getc()
        if c == _CTRL_C or c == _CTRL_D:
            _w(b"\x04")
            if c == _CTRL_C:
                _w(b"\x04")
                _print_exception(KeyboardInterrupt())
                _w(b"\x04")
                return False
            break
        buf.append(c)
        remain -= 1
        if remain == 0:
            _w(b"\x01")
            remain = _PASTE_WINDOW
    return _run(bytes(buf), "<stdin>", "exec", g, True)


def _raw(g):
    _w(b"raw REPL; CTRL-B to exit\r\n>")
    line = bytearray()
    while True:
        c = _getc()
        if c == _CTRL_A:
            if len(line) == 2 and line[0] == _CTRL_E:
                if line[1] != ord("A"):
                    _w(b"R\x00")
                elif _raw_paste(g):
                    return "reset"
                line = bytearray()
                _w(b">")
                continue
            line = bytearray()
            _w(b"raw REPL; CTRL-B to exit\r\n>")
        elif c == _CTRL_B:
            _w(b"\r\n")
            return "friendly"
        elif c == _CTRL_C:
            line = bytearray()
        elif c == _CTRL_D:
            _w(b"OK")
            if not line:
                _w(b"\r\n")
                return "reset"
            if _run(bytes(line), "<stdin>", "exec", g, True):
                return "reset"
            line = bytearray()
            _w(b">")
        else:
            line.append(c)


# ---- the board's main loop (ports/rp2/main.c) -----------------------------

def _run_file(name, g) -> bool:
    import os

    try:
        os.stat(name)
    except OSError:
        return False
    with open(name, "rb") as f:
        src = f.read()
    return _run(src, name, "exec", g, False)


def main(g):
    """Boot (boot.py, then main.py in friendly mode), then the REPL until a reset."""
    g.clear()
    g["__name__"] = "__main__"
    builtins.print = _cooked_print
    builtins.__repl_print__ = _repl_print
    mode = simboard.config().get("mode", "friendly")
    reset = _run_file("boot.py", g)
    if not reset and mode == "friendly":
        reset = _run_file("main.py", g)
    while not reset:
        try:
            nxt = _friendly(g) if mode == "friendly" else _raw(g)
        except KeyboardInterrupt:  # a Ctrl-C that arrived just after user code
            continue
        if nxt == "reset":
            break
        mode = nxt
    _w(b"MPY: soft reboot\r\n")
    simboard._signal(b"R" if mode == "raw" else b"F")
    sys.exit(0)
