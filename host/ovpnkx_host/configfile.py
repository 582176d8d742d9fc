"""Loading a config file for the `ovpnkx` commands: one place for its errors."""

import os
import sys

from ovpnkx.config import ClientConfig, ConfigError, parse_config


def load_config(path_arg: str, prog: str, server: bool = False) -> "ClientConfig | None":
    """Parse ``path_arg``; files it names are read beside it.

    On failure prints one line naming the file (and line) and the reason to
    stderr, and returns None: the caller exits with status 2.
    """
    path = os.path.abspath(path_arg)
    base = os.path.dirname(path)

    def read_file(name: str) -> str:
        with open(os.path.join(base, name)) as f:
            return f.read()

    try:
        with open(path) as f:
            return parse_config(f.read(), path_arg, read_file, server=server)
    except OSError as exc:
        print("%s: cannot read %s: %s" % (prog, path_arg, exc.strerror), file=sys.stderr)
    except UnicodeDecodeError:
        print("%s: cannot read %s: not a text file (not UTF-8)" % (prog, path_arg), file=sys.stderr)
    except ConfigError as exc:
        print("%s: %s" % (prog, exc), file=sys.stderr)
    return None
