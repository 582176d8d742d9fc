"""The ``ovpnkx`` command.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and
``run(args) -> int``; they are imported only when chosen, so a broken or slow
subcommand never affects the others.
"""

import argparse
import importlib
import sys

# subcommand -> (module, one-line help)
SUBCOMMANDS = {
    "run": ("ovpnkx_host.run", "the key exchange on a simulated board over its serial line (`make run`)"),
    "demo": ("ovpnkx_host.demo", "key method 2 between a MicroPython and a CPython peer over a pipe"),
    "connect": ("ovpnkx_host.connect", "connect to an OpenVPN server with a client config"),
    "serve": ("ovpnkx_host.serve", "serve OpenVPN clients (UDP, TCP or a serial line)"),
    "load": ("ovpnkx_host.load", "many simulated devices against one OpenVPN server (fleet load test)"),
    "relay": ("ovpnkx_host.relay", "carry a device's packets between a serial line and a server"),
    "sim": ("ovpnkx_sim.launcher", "run a simulated board"),
    "entropy": ("ovpnkx_host.entropy_report", "capture and assess a board's noise source"),
    "directives": ("ovpnkx_host.directives_cli", "the directive policy: every config directive in its class"),
}


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line (exit 2) that name the flag, not the whole usage text."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, "%s: error: %s (see %s --help)\n" % (self.prog, message, self.prog))


def main(argv=None) -> int:
    """Entry point of ``ovpnkx``."""
    argv = sys.argv[1:] if argv is None else argv
    parser = _Parser(prog="ovpnkx", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = argv[0] if argv and argv[0] in SUBCOMMANDS else None
    for name, (module, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        if name == chosen:
            mod = importlib.import_module(module)
            mod.add_arguments(p)
            p.set_defaults(_run=mod.run)
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
