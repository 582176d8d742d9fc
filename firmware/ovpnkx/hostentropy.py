"""The entropy objects that are not a board's TRNG chain: ``HostEntropy`` (os.urandom)
and ``DeterministicEntropy`` (tests only). Importable from ``ovpnkx.entropy`` as
before; a module of their own so that a board's session does not hold their code.
"""

import os

from .digest import hash_digest
from .drbg import HmacDrbg
from .entropy import _check_n


class HostEntropy:
    """``os.urandom``: the host side (CPython, or MicroPython's unix port)."""

    def __init__(self) -> None:
        self.state = "ok"
        self.error = None
        self.reseed_count = 0

    def random_bytes(self, n: int) -> bytes:
        """``n`` bytes from the operating system's CSPRNG."""
        _check_n(n)
        return os.urandom(n)

    def reseed(self) -> None:
        """Nothing to do (the OS reseeds itself); counted for the session's checks."""
        self.reseed_count += 1


class DeterministicEntropy:
    """FOR TESTS ONLY: an HMAC_DRBG seeded from a fixed ``seed``.

    Every run with the same seed gives the same bytes, which makes protocol
    transcripts reproducible. Never use it for real keys.
    """

    TESTS_ONLY = True

    def __init__(self, seed: bytes) -> None:
        seed = bytes(seed)
        self._seed = seed
        self._drbg = HmacDrbg(hash_digest("SHA256", b"ovpnkx tests-only entropy\x00" + seed),
                              hash_digest("SHA256", b"ovpnkx tests-only nonce\x00" + seed)[:16],
                              b"DeterministicEntropy")
        self.state = "ok"
        self.error = None
        self.reseed_count = 0

    def random_bytes(self, n: int) -> bytes:
        """``n`` reproducible bytes."""
        _check_n(n)
        out = b""
        while len(out) < n:
            out += self._drbg.generate(min(n - len(out), 4096))
        return out

    def reseed(self) -> None:
        """Reseed deterministically from the seed and the reseed count."""
        self.reseed_count += 1
        self._drbg.reseed(hash_digest("SHA256", b"ovpnkx tests-only reseed\x00" + self._seed
                                      + self.reseed_count.to_bytes(4, "big")))
