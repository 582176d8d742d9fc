"""The client's restarts over its connection list (openvpn's SIGUSR1 handling).

``ClientRun`` loads this module only where a restart can happen: without
``--pings`` (openvpn's lifetime), with several remotes, or with remote-random
(a board's heap holds the code it imports). Each restart pauses as openvpn's
socket_restart_pause does (``ovpnkx.connlist``) and goes on with the next entry.
"""

from ovpnkx._compat import MICROPYTHON, TYPE_CHECKING
from ovpnkx.connlist import ConnectionList, ConnectionListExhausted

if TYPE_CHECKING:
    from typing import Any

_TICK_MS = 200  # longest sleep between looks at the stop request


def restart_loop(run: "Any", remotes: list) -> int:
    """Attempts over ``remotes`` until one ends the run (a ``runner.ClientRun``); the exit status."""
    cfg = run.cfg
    clist = ConnectionList(remotes, cfg.remote_random, run.entropy.random_bytes, cfg.connect_retry,
                           cfg.connect_retry_max if run.retry else 1)
    outcome = None
    while True:
        try:
            entry = clist.next()
        except ConnectionListExhausted as exc:
            last = outcome.reason if outcome is not None else ""
            if not run.retry:  # each remote once: the last attempt's reason says it all
                n = len(clist.entries)
                reason = last if n == 1 else "all %d remotes failed; the last: %s" % (n, last)
            else:
                reason = "%s; the last: %s" % (exc, last)
            return run.finish(False, reason, outcome.session if outcome is not None else None)
        if outcome is not None:  # a restart (openvpn's SIGUSR1)
            pause = clist.restart_pause_s(outcome.no_pause)
            run.restarts += 1
            host, port, proto = entry
            run.emit({"event": "restart", "at_ms": run.clock.now_ms(), "reason": outcome.reason, "in_s": pause,
                      "remote": host if proto == "serial" else "%s:%d" % (host, port)})
            if not _pause(run, pause * 1000):
                if run.stop.signal:
                    return run.finish(True, "stopped by %s" % run.stop.signal, outcome.session)
                return run.finish(False, "timed out after %d s (state: waiting to reconnect; last: %s)"
                                  % (run.timeout_s, outcome.reason), outcome.session)
        outcome = run.attempt(entry, clist)
        status = run.conclude(outcome)
        if status is not None:
            return status


def _pause(run: "Any", ms: int) -> bool:
    """Sleep ``ms`` unless stopped or out of time first (then False)."""
    end = run.clock.now_ms() + ms
    while True:
        now = run.clock.now_ms()
        if run.stop.signal or run.timed_out(now):
            return False
        if now >= end:
            return True
        try:
            (run.sleep_ms or _sleep_ms)(min(_TICK_MS, end - now))
        except KeyboardInterrupt:
            run.stop.interrupted()


def _sleep_ms(ms: int) -> None:
    import time

    if MICROPYTHON:
        time.sleep_ms(ms)  # type: ignore[attr-defined]
    else:
        time.sleep(ms / 1000)
