"""What a device session needs before it starts (``app.run_once``): the board's TRNG
reseeded ahead for the first key_state and its noise side parked, the transport (a
serial line, or the .ovpn's remote on Wi-Fi), and the date. Loaded for this and dropped
again before the session's own code comes into a board's heap.
"""

import gc

from ovpnkx._compat import TYPE_CHECKING, unload
from ovpnkx.errors import EntropyError

from . import TransportError

if TYPE_CHECKING:
    from typing import Any


def prepare(settings: dict, cfg: "Any", entropy: "Any", out: "Any") -> tuple:
    """(transport, None) when the session can start (transport None: a socket per
    attempt, the runner's), else (None, why not). Emits the ``date`` event."""
    if getattr(entropy, "park", None) is not None:  # the board's TRNG chain
        from .app import BoardNoise

        try:  # the first key_state's reseed, while the session's code is not in the heap yet
            entropy.reseed_ahead()
        except EntropyError as exc:  # no keys from a failed source
            return None, str(exc)
        entropy.park(BoardNoise())
        gc.collect()
    transport = None
    if settings["transport"] == "serial":
        from .serial_port import open_serial

        try:
            transport = open_serial(settings["uart"], settings["baud"], settings["data_uart"])
        except TransportError as exc:
            return None, str(exc)
        finally:
            unload("ovpnkx_device.serial_port")  # opened once: the line's code is SerialTransport's
    else:  # the transport chosen in ovpnkx.json wins over the .ovpn's proto
        host, port, _ = cfg.remote
        cfg.remotes[0] = (host, port, settings["transport"])
    from .wallclock import NoDateError, date_text, ensure_date

    try:  # mbedTLS checks the certificates' validity against the RTC: no date, no session
        secs, source = ensure_date(transport, None if transport is not None else settings["ntp"])
    except (NoDateError, OSError) as exc:
        if transport is not None:
            transport.close()
        return None, str(exc) if isinstance(exc, NoDateError) else "no date: %s" % exc
    finally:
        unload("ovpnkx_device.wallclock")  # needed once per session
    out({"event": "date", "source": source, "utc": date_text(secs)})
    return transport, None
