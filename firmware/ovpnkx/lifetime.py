"""SessionConfig keywords from a parsed config's key lifetime directives.

Read once, when a session's config is made; on MicroPython the caller unloads
this module again (``_compat.unload("lifetime")``).
"""

from ._compat import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any


def key_lifetime_options(cfg: "Any") -> dict:
    """SessionConfig keywords from a parsed config's reneg-sec (``max`` or ``(max, min)``),
    reneg-bytes, reneg-pkts, tran-window (s) and replay-window (``n`` or ``(n, t)``),
    where the config has them (absent: the defaults)."""
    out = {}  # type: dict
    for name, key in (("reneg_sec", "reneg_sec"), ("reneg_bytes", "reneg_bytes"), ("reneg_pkts", "reneg_pkts"),
                      ("tran_window", "tran_window_ms"), ("replay_window", "replay_window")):
        value = getattr(cfg, name, None)
        if isinstance(value, (tuple, list)):
            if value[1] is None:
                value = value[0]
            elif name == "replay_window":
                value, out["replay_time_s"] = value[0], value[1]
            else:
                value = tuple(value)
        if value is not None:
            out[key] = value * 1000 if name == "tran_window" else value
    return out
