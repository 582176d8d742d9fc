"""The board's entropy source, chosen and started once at boot.

``board_entropy()`` is what the device app calls before any session: the
board's ``noise.make_entropy()`` (module ``noise``: ``boards/<name>/noise.py``,
which ``make flash`` puts in ``/lib``), with the simulated TRNG's fault
(``simboard.trng_fault()``) applied,
and the SP 800-90B start-up test run at once.

It never raises for a bad source: it returns an entropy object in the error
state whose ``random_bytes`` raises ``EntropyError`` naming the failed test.
A session cannot even be constructed from it (its session id is the first
draw), so nothing derived from a faulty source is ever sent.

A parked source (``ovpnkx_device.app.BoardNoise``) loads this module again to make a new
driver for a reseed (``board_noise``), and lets it go right after.
"""

from ovpnkx._compat import TYPE_CHECKING
from ovpnkx.entropy import EntropyError
from ovpnkx.errors import LocalProtocolError

if TYPE_CHECKING:
    from typing import Any


class FailedEntropy:
    """An entropy source that could not even be made: always in the error state."""

    def __init__(self, error: str) -> None:
        self.state = "error"
        self.error = error
        self.reseed_count = 0

    def random_bytes(self, n: int) -> bytes:
        """Always raises ``EntropyError`` with the reason the source failed."""
        raise EntropyError(self.error)

    def reseed(self) -> None:
        raise EntropyError(self.error)

    def startup(self) -> None:
        raise EntropyError(self.error)

    def reset(self) -> None:
        """Nothing to retry: the source was never made."""


def _simboard() -> "Any":
    try:
        import simboard  # type: ignore[import-not-found,unused-ignore]  # the sim only

        return simboard
    except ImportError:
        return None


def _make(name: str, fault: "str | None", sim: "Any", module: "Any") -> "Any":
    if name == "host":
        if fault is not None:
            raise LocalProtocolError("a TRNG fault needs the modelled TRNG, not host entropy")
        from ovpnkx.hostentropy import HostEntropy

        return HostEntropy()
    if module is None:
        import noise  # type: ignore[import-not-found,unused-ignore]  # the board's, see boards/

        module = noise
    if name == "sim":  # the development board's driver is the noise model itself
        return module.make_entropy(fault=fault)
    # a real board's driver reads its registers; on the sim the noise model (and
    # --trng-fault) sits behind machine.mem32, so the fault is not the driver's business
    return module.make_entropy()


def board_entropy(name: "str | None" = None, fault: "str | None" = None, module: "Any" = None) -> "Any":
    """This board's entropy source, start-up tested.

    ``name``: ``"host"`` for ``os.urandom`` (the unix port, development);
    otherwise the board, by default ``simboard.name()`` on the sim. ``fault``:
    a modelled TRNG fault (``ovpnkx.noise.SimTrng``), by default the sim's
    ``--trng-fault``. ``module``: the board's noise module (default: import
    ``noise``). The result has ``state`` "ok" or "error" and ``error``.
    """
    sim = _simboard()
    if name is None:
        name = sim.name() if sim is not None else "board"
    if fault is None and sim is not None:
        fault = sim.trng_fault()
    try:
        entropy = _make(name, fault, sim, module)
    except EntropyError as exc:
        return FailedEntropy(str(exc) or "entropy source failed")
    except ImportError:
        return FailedEntropy("entropy source failed: board %s has no noise module on sys.path" % name)
    except LocalProtocolError:
        raise  # misuse (a fault for a source that cannot model one): the caller's bug
    except Exception as exc:  # a driver or register access: no source, no sessions
        return FailedEntropy("entropy source failed: cannot start board %s's noise source: %s: %s"
                             % (name, type(exc).__name__, exc))
    startup = getattr(entropy, "startup", None)
    if startup is not None:
        try:
            startup()
        except EntropyError:
            pass  # the object is in its error state now and says why
    return entropy


def board_noise(name: "str | None" = None, fault: "str | None" = None, module: "Any" = None) -> "Any":
    """The raw noise source under ``board_entropy()``, not health-tested nor
    conditioned: for characterising it (``ovpnkx entropy``). Raises what
    making the source raises."""
    sim = _simboard()
    if name is None:
        name = sim.name() if sim is not None else "board"
    if fault is None and sim is not None:
        fault = sim.trng_fault()
    entropy = _make(name, fault, sim, module)
    noise = getattr(entropy, "_noise", None)
    if noise is None:
        raise LocalProtocolError("board %s has no raw noise source (%s)" % (name, type(entropy).__name__))
    return noise


def describe(entropy: "Any") -> str:
    """One line for logs: the source's kind and state (never its output)."""
    kind = type(entropy).__name__
    noise = getattr(entropy, "_noise", None)
    if noise is not None:
        kind += " over " + type(noise).__name__
    if entropy.state == "error":
        return "%s: %s" % (kind, entropy.error)
    return kind + ": ok"
