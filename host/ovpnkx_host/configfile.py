"""Loading a config file for the `ovpnkx` commands: one place for its errors and notes."""

import os
import sys

from ovpnkx.config import ClientConfig, ConfigError, parse_config

from . import capabilities


def load_config(path_arg: str, prog: str, server: bool = False, caps: "dict | None" = None,
                quiet: bool = False, check_runtime: bool = True) -> "ClientConfig | None":
    """Parse ``path_arg`` under the directive policy and check it against ``caps``.

    Files it names are read beside it; ``caps`` defaults to this CPython runtime's
    (``ovpnkx_host.capabilities.cpython``); ``check_runtime=False`` checks the policy
    only (the runtime that runs the config checks the rest). On failure prints one
    line naming the file (and line) and the reason to stderr, and returns None: the
    caller exits with status 2. Otherwise prints its warnings and notes to stderr
    (unless ``quiet``).
    """
    path = os.path.abspath(path_arg)
    base = os.path.dirname(path)

    def read_file(name: str) -> str:
        with open(os.path.join(base, name)) as f:
            return f.read()

    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if check_runtime and caps is None:
            caps = capabilities.cpython()
        cfg = parse_config(text, path_arg, read_file, server=server, caps=caps if check_runtime else None)
        if check_runtime and caps is not None and caps.get("tls_cipher_syntax") == "openssl":
            check_openssl(cfg)
    except OSError as exc:
        print("%s: cannot read %s: %s" % (prog, path_arg, exc.strerror), file=sys.stderr)
        return None
    except UnicodeDecodeError:
        print("%s: cannot read %s: not a text file (not UTF-8)" % (prog, path_arg), file=sys.stderr)
        return None
    except ConfigError as exc:
        print("%s: %s" % (prog, exc), file=sys.stderr)
        return None
    if not quiet:
        for line in describe(cfg):
            print("%s: %s" % (prog, line), file=sys.stderr)
    return cfg


def describe(cfg: ClientConfig) -> list:
    """The warnings and notes of a parsed config, one line each."""
    out = ["warning: " + w for w in cfg.warnings] + ["note: " + n for n in cfg.notes]
    if cfg.host_only:
        out.append("note: host-only directives, nothing to do here: " + ", ".join(cfg.host_only))
    return out


def check_openssl(cfg: ClientConfig) -> None:
    """Refuse tls-cipher / tls-ciphersuites strings OpenSSL does not take (ConfigError)."""
    from .tls_openssl import cipher_list_error

    for directive, value in (("tls-cipher", cfg.tls_cipher), ("tls-ciphersuites", cfg.tls_ciphersuites)):
        if value:
            why = cipher_list_error(directive, value)
            if why:
                raise ConfigError("%s: %s: cpython cannot honour it: %s" % (cfg.where(directive), directive, why))
