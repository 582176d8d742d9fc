"""`ovpnkx directives`: the directive policy, every directive in its class.

``--markdown`` prints ``docs/directives.md`` (a test checks that the file is current);
the default is one line per class, for notes and scripts; ``--check NAME`` prints the
class of one directive in a client and a server config.
"""

import argparse

from ovpnkx import directives as D
from ovpnkx.options import all_names, classify

INTRO = """\
# The directive policy

Every directive of a client config (`ovpnkx connect`, the board's `/client.ovpn`, `make flash`)
and of a server config (`ovpnkx serve`) is in exactly one class. The same table
(`firmware/ovpnkx/directives.py`) and the same parser (`firmware/ovpnkx/config.py`) run on
CPython, on the MicroPython unix port and on the board, so a config is judged alike everywhere.

- **Implemented**: parsed, validated (a bad argument is refused with file, line and reason) and
  honoured. Directives whose behaviour other parts build are marked with that part.
- **Host-only**: about the host's tun device, routes, DNS, scripts around the tunnel, privileges,
  logging or daemon life. They mean nothing here: accepted and listed in one note.
- **Refused**: refused with file, line and the reason below, whatever `ignore-unknown-option` or
  `setenv opt` say (openvpn knows them and would honour them; ignoring one could weaken security).
- **Unknown**: any other name is refused with the nearest known name as a hint
  (`remote-cert-tsl: unknown directive (did you mean remote-cert-tls?)`). As in openvpn, an
  unknown name listed by an earlier `ignore-unknown-option`, written as `setenv opt NAME …`, or
  following `setenv FORWARD_COMPATIBLE 1` is only a warning. Unlike openvpn, bad arguments to a
  known directive stay an error there too: a security directive is never dropped.

Then the config is checked against what the runtime can do (`firmware/ovpnkx/capability.py`:
ciphers, digests, TLS versions and suites, tls-crypt, certificate chains), for CPython
(`ovpnkx connect --runtime cpython`, `ovpnkx serve`), for the MicroPython runtime (checked on the
device itself) and for a board before `make flash` writes anything (from `boards/<b>/board.json`).
As openvpn does, a cipher written `?NAME` in `data-ciphers` is optional: dropped with a note where
the runtime lacks it (openvpn 2.6's default list ends with `?CHACHA20-POLY1305`, so MicroPython
offers AES-GCM only and says so); a cipher without `?` that the runtime lacks is refused.
`tls-version-min 1.3 or-highest` comes down to 1.2 on MicroPython (with a note); without
`or-highest` it is refused there.

Regenerate this file with `.venv/bin/ovpnkx directives --markdown > docs/directives.md`.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of `ovpnkx directives`."""
    p.add_argument("--markdown", action="store_true", help="print docs/directives.md")
    p.add_argument("--check", metavar="NAME", help="the class of one directive")


def _names(text: str) -> list:
    return sorted(text.split())


def _by_others() -> dict:
    out = {}
    for work, names in D.BY_OTHERS:
        for n in names.split():
            out[n] = work
    return out


def classes() -> dict:
    """{class title: [names]} for both roles (implemented split by role)."""
    out = {
        "implemented (client and server)": _names(D.BOTH),
        "implemented (client only)": _names(D.CLIENT),
        "implemented (server only)": _names(D.SERVER),
        "host-only": _names(D.HOST_ONLY),
        "host-only in a client config (server directives)": _names(D.SERVER_HOST_ONLY_IN_CLIENT),
    }
    refused = []
    for _, names in D.REFUSED:
        refused += names.split()
    out["refused"] = sorted(refused)
    return out


def markdown() -> str:
    """The text of docs/directives.md."""
    others = _by_others()
    lines = [INTRO, "## Implemented", "",
             "The last column names the directives whose behaviour is built by another part of issue 8 (and",
             "merged by the lead before release); the config parser parses and validates them all.", "",
             "| directive | client config | server config | behaviour built by |", "|---|---|---|---|"]
    for n in sorted(set(_names(D.BOTH) + _names(D.CLIENT) + _names(D.SERVER))):
        cell = []
        for server in (False, True):
            kind, _ = classify(n, server)
            cell.append({"implemented": "yes", "host-only": "host-only"}.get(kind, "refused"))
        lines.append("| `%s` | %s | %s | %s |" % (n, cell[0], cell[1], others.get(n, "")))
    lines += ["", "## Host-only", "", ", ".join("`%s`" % n for n in _names(D.HOST_ONLY)), "",
              "In a client config also (server directives openvpn takes there without effect): "
              + ", ".join("`%s`" % n for n in _names(D.SERVER_HOST_ONLY_IN_CLIENT)), "", "## Refused", ""]
    for reason, names in D.REFUSED:
        lines += ["- %s: %s" % (reason[0].upper() + reason[1:], ", ".join("`%s`" % n for n in _names(names)))]
    lines += ["", "A directive implemented for one role only is refused in the other (`push` in a client "
              "config: \"not supported in a client config (a server directive)\").", "",
              "%d directives known in all." % len(all_names()), ""]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Print the policy."""
    if args.check:
        for role, server in (("client", False), ("server", True)):
            kind, reason = classify(args.check, server)
            print("%s config: %s%s" % (role, kind, ": " + reason if reason else ""))
        return 0
    if args.markdown:
        print(markdown(), end="")
        return 0
    for title, names in classes().items():
        print("%s (%d): %s" % (title, len(names), " ".join(names)))
    return 0
