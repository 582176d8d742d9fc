"""The noise side of ``ovpnkx.entropy.TrngEntropy``: read and health-test noise samples,
condition them with SHA-256, and seed or reseed the DRBG from them.

Needed at a reseed only (every new key_state, and at the reseed interval). A parked
source (``TrngEntropy.park``, a board) loads this module for the reseed and drops it
again with the driver and the health tests, so that a session's heap holds only
the DRBG and the part of ``TrngEntropy`` that draws from it.
"""

import hashlib

from ._compat import TYPE_CHECKING, const
from .drbg import HmacDrbg
from .errors import EntropyError

if TYPE_CHECKING:
    from typing import Any

    from .entropy import TrngEntropy

_SEED_BITS = const(256)  # security strength of the DRBG
_NONCE_BITS = const(128)
_CONDITIONING_FACTOR = const(2)  # condition twice the entropy we take out
_CHUNK = const(512)  # samples read from the noise source at a time


def seed(e: "TrngEntropy") -> None:
    """Instantiate ``e``'s DRBG (start-up test first where none ran), or reseed it, from
    fresh noise."""
    _noise_side(e)
    if e._drbg is None:
        if e.health.samples_tested == 0:
            from .health import STARTUP_SAMPLES

            _read(e, STARTUP_SAMPLES, "start-up test")  # tested, then discarded
        entropy_input = _conditioned_bytes(e, _SEED_BITS)
        nonce = _conditioned_bytes(e, _NONCE_BITS)[:16]
        e._drbg = HmacDrbg(entropy_input, nonce, e._personalization, e.reseed_interval)
    else:
        e._drbg.reseed(_conditioned_bytes(e, _SEED_BITS))


def _noise_side(e: "TrngEntropy") -> None:
    """A parked source's noise side back: a fresh driver from the loader, fresh health
    tests and their start-up test (the continuous tests' history left with the old ones)."""
    if e._noise is not None:
        return
    from .health import STARTUP_SAMPLES, HealthTests

    try:
        e._noise = e._loader.load()
    except (EntropyError, MemoryError):  # a MemoryError is the heap's, not the source's
        raise
    except Exception as exc:  # a driver that will not start: no output either way
        raise EntropyError("entropy source failed: cannot restart the noise source: %s: %s"
                           % (type(exc).__name__, exc))
    e.health = HealthTests(e.h, bool(e._noise.binary), e._rct, e._apt)
    _read(e, STARTUP_SAMPLES, "start-up test")  # tested, then discarded


def _read(e: "TrngEntropy", n: int, phase: str, hasher: "Any" = None) -> None:
    """Read and test ``n`` samples, hashing them into ``hasher`` if given."""
    noise = e._noise
    while n > 0:
        k = n if n < _CHUNK else _CHUNK
        try:
            samples = noise.read_samples(k)
        except (EntropyError, MemoryError):
            raise
        except Exception as exc:  # a register read, a driver: no output either way
            raise EntropyError("entropy source failed: noise source raised %s" % type(exc).__name__)
        if len(samples) != k:
            raise EntropyError("entropy source failed: noise source returned %d of %d samples"
                               % (len(samples), k))
        e.health.feed(samples, phase)
        if hasher is not None:
            hasher.update(samples)
        n -= k


def _conditioned_bytes(e: "TrngEntropy", bits: int) -> bytes:
    """32 bytes of SHA-256 over samples carrying twice ``bits`` of min-entropy."""
    h = e.h
    need = _CONDITIONING_FACTOR * bits
    samples = int(need / h)
    if samples * h < need:
        samples += 1
    e._conditioned += 1
    hasher = hashlib.sha256(b"ovpnkx conditioning\x00" + e._conditioned.to_bytes(4, "big"))
    _read(e, samples, "", hasher)
    return hasher.digest()
