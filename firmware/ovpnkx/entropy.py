"""Where every random byte of the core comes from.

All pre_master/random1/random2 bytes of key method 2 and the session ids are
drawn from an entropy object::

    random_bytes(n) -> bytes   # raises EntropyError, never returns weak bytes
    reseed()                   # the session calls it for every new key_state
    state                      # "ok" or "error"
    error                      # the failure message, or None

Three kinds: ``HostEntropy`` (os.urandom), ``DeterministicEntropy`` (tests
only; both in ``ovpnkx.hostentropy``) and ``TrngEntropy``, the full chain for boards:

    noise samples -> SP 800-90B RCT + APT (start-up over 1024 samples, then
    continuous) -> SHA-256 conditioning of at least twice the needed entropy
    -> HMAC_DRBG (SHA-256), reseeded from the noise source for every new
    key_state and at the reseed interval.

A health failure is sticky: no output until ``reset()``. On a board the noise side
(driver, health tests, and the reading and conditioning in ``ovpnkx.seeding``) can be
parked between reseeds, so that a session's heap holds only the DRBG
(``TrngEntropy.park``).
"""

from ._compat import MICROPYTHON, TYPE_CHECKING, const, unload
from .drbg import HmacDrbg, ReseedRequired  # noqa: F401 (re-exported)
from .drbg import restore as _restore_drbg
from .errors import EntropyError, LocalProtocolError  # noqa: F401 (re-exported)

if TYPE_CHECKING:
    from typing import Any

# the health tests load with the noise side (not at import: a parked source leaves them out)
_HEALTH = ("STARTUP_SAMPLES", "HealthTests")


def __getattr__(name: str) -> "Any":
    if name in _HEALTH:
        from . import health

        return getattr(health, name)
    if name in ("HostEntropy", "DeterministicEntropy"):  # MicroPython: loaded where asked for
        from . import hostentropy

        return getattr(hostentropy, name)
    raise AttributeError(name)


_RESEED_INTERVAL = const(1024)  # generate calls between reseeds from the noise source


def _check_n(n: int) -> None:
    if not isinstance(n, int) or n < 0:
        raise LocalProtocolError("random_bytes needs a byte count >= 0")


class TrngEntropy:
    """Noise source -> health tests -> SHA-256 conditioning -> HMAC_DRBG.

    ``noise_source`` follows ``ovpnkx.noise`` (``read_samples``,
    ``binary``); ``bits_per_sample_claim`` is the min-entropy h per sample
    the health-test cutoffs and the sample counts are computed from.
    ``rct_cutoff``/``apt_cutoff`` override the computed cutoffs (boards with
    single-precision floats carry constants). The first use runs the start-up
    test (``startup()`` runs it early).
    """

    def __init__(self, noise_source, bits_per_sample_claim: float, personalization: bytes = b"",
                 reseed_interval: int = _RESEED_INTERVAL, rct_cutoff: "int | None" = None,
                 apt_cutoff: "int | None" = None) -> None:
        width = getattr(noise_source, "bits_per_sample", None)
        if width is not None and bits_per_sample_claim > width:
            raise LocalProtocolError("claimed %s bits of min-entropy from %d-bit samples"
                                     % (bits_per_sample_claim, width))
        self._noise = noise_source
        self.h = bits_per_sample_claim
        self._personalization = bytes(personalization)
        self.reseed_interval = reseed_interval
        self._rct = rct_cutoff
        self._apt = apt_cutoff
        self.reseed_count = 0
        self._conditioned = 0
        self._loader = None  # type: Any  # set by park(): brings the noise side back
        self._ahead = False  # reseed_ahead() stands for the next key_state's reseed
        self._new_health()

    def _new_health(self) -> None:
        from .health import HealthTests

        self.health = HealthTests(self.h, bool(self._noise.binary), self._rct, self._apt)
        self._drbg = None  # type: HmacDrbg | None
        self.state = "ok"
        self.error = None  # type: str | None

    def _release_noise(self) -> None:
        if self._loader is not None and self._noise is not None:
            self._noise = None
            self.health = None  # type: ignore[assignment]
            self._loader.release()
            unload("seeding")

    def _from_noise(self) -> None:
        """Seed or reseed the DRBG from fresh noise (``ovpnkx.seeding``), then let the noise
        side go again if parked: on a board, that code is in the heap for a reseed only."""
        from . import seeding

        try:
            seeding.seed(self)
        finally:
            self._release_noise()

    def _guard(self, func, *args):
        if self.state == "error":
            raise EntropyError(self.error)
        try:
            return func(*args)
        except EntropyError as exc:
            self.state = "error"
            self.error = str(exc) or "entropy source failed"
            self._drbg = None
            raise EntropyError(self.error)

    def _seeded(self) -> HmacDrbg:
        if self._drbg is None or self._drbg.reseed_required:
            self._from_noise()
        drbg = self._drbg
        assert drbg is not None
        return drbg

    def _generate(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            out += self._seeded().generate(min(n - len(out), 4096))
        return out

    # -- the public interface --

    def startup(self) -> None:
        """Run the start-up test and seed the DRBG now (e.g. at boot)."""
        self._guard(self._seeded)

    def random_bytes(self, n: int) -> bytes:
        """``n`` bytes from the DRBG; raises ``EntropyError`` once the source failed."""
        _check_n(n)
        return self._guard(self._generate, n)

    def reseed(self) -> None:
        """Fresh, health-tested noise into the DRBG; call for every new key_state.

        After ``reseed_ahead()`` the first call takes that reseed as its own: nothing of an
        earlier key_state was drawn since it."""
        if self._ahead and self.state != "error":
            self._ahead = False
        else:
            self._guard(self._from_noise)
        self.reseed_count += 1

    def reseed_ahead(self) -> None:
        """Reseed now for the next key_state (a board does it before a session, while its
        code is not yet in the heap); the next ``reseed()`` then reads no noise."""
        self._guard(self._from_noise)
        self._ahead = True

    def park(self, loader: "Any") -> None:
        """Let go of the noise side (driver, health tests) between reseeds, for a small
        heap: ``loader.release()`` drops their code now and after every later reseed,
        ``loader.load()`` makes a new driver when one is needed, whose start-up test
        then runs again. The DRBG and its state stay."""
        self._loader = loader
        self._release_noise()

    def snapshot(self) -> tuple:
        """The source's whole state as plain values, its DRBG's included: ``restore`` makes a
        source of it that goes on where this one stopped. A board keeps only this between
        draws, and this module's and the DRBG's code leave its heap
        (``ovpnkx_device.app.ParkedEntropy``)."""
        drbg = self._drbg
        return (self._noise, self.h, self._personalization, self.reseed_interval, self._rct, self._apt,
                self.reseed_count, self._conditioned, self._loader, self._ahead, self.health, self.state,
                self.error, None if drbg is None else drbg.snapshot())

    def reset(self) -> None:
        """Leave the error state: new health tests, new start-up test, new DRBG."""
        if self._drbg is not None:
            self._drbg.clear()
        self._ahead = False
        if self._noise is None:
            self._drbg = None
            self.state = "ok"
            self.error = None
            return  # the noise side comes back (start-up tested) with the next draw
        self._new_health()


def restore(snapshot: tuple) -> TrngEntropy:
    """The source whose state ``TrngEntropy.snapshot`` returned, DRBG and all."""
    e = object.__new__(TrngEntropy)  # not started again: the state is the whole source
    (e._noise, e.h, e._personalization, e.reseed_interval, e._rct, e._apt, e.reseed_count, e._conditioned,
     e._loader, e._ahead, e.health, e.state, e.error, drbg) = snapshot
    e._drbg = None if drbg is None else _restore_drbg(drbg)
    return e


if not MICROPYTHON:  # the host's and the tests' sources, here for their imports; a board loads them only if asked
    from .hostentropy import DeterministicEntropy, HostEntropy  # noqa: E402,F401
