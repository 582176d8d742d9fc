"""The key_state machine of ``keystate`` as a list of edges and as a Graphviz diagram.

Host-only (``tools/flash.py`` HOST_ONLY): for documentation and tests, never needed by a
board, so its code stays off a board's heap.
"""

from . import keystate as ks


def edges() -> list:
    """All transitions as (role, state name, event name, new state name), sorted.

    role is "client", "server" or "both"; enough to draw the diagram.
    """
    table = list(ks._TRANSITIONS) + [(ks.BOTH, s, ks.EV_ERROR, ks.S_ERROR) for s in ks.STATE_NAMES]
    out = [(role, ks.STATE_NAMES[s], ks.EVENT_NAMES[e], ks.STATE_NAMES[n]) for role, s, e, n in table]
    out.sort()
    return out


def dot(is_server: bool) -> str:
    """Graphviz text of one role's machine (EV_ERROR edges folded into one note)."""
    role = ks.SERVER if is_server else ks.CLIENT
    lines = ["digraph key_state_%s {" % role]
    for r, s, e, n in edges():
        if r in (role, ks.BOTH) and e != "EV_ERROR":
            lines.append('  %s -> %s [label="%s"];' % (s, n, e))
    lines.append('  any [shape=plaintext]; any -> S_ERROR [label="EV_ERROR"];')
    lines.append("}")
    return "\n".join(lines)
