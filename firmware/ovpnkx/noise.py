"""Noise sources: raw samples for ``ovpnkx.entropy.TrngEntropy``.

Interface (duck-typed): ``read_samples(n) -> bytes`` returns n samples, one
per byte; ``bits_per_sample`` is the sample width (1 for a bit source, 8 for
a byte source); ``binary`` is True when samples are 0/1 (it picks the APT
window); ``MIN_ENTROPY_CLAIM`` is the min-entropy per sample this project
assumes for the source (see each class for why). A source that cannot give
trustworthy samples raises ``EntropyError``.

The board classes touch hardware registers only through a ``regs`` object
with ``read(addr) -> int`` and ``write(addr, value)``; the default one wraps
``machine.mem32`` (imported only when used), tests pass a fake.

Each chip's driver is a module of its own (``noise_esp32``, ``noise_rp2040``,
``noise_rp2350``; the sim's model ``noise_sim``), named here as well: a board
loads only its own, for each reseed (``ovpnkx.entropy.TrngEntropy.park``).
"""

import os

from ._compat import MICROPYTHON, TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

# name -> the module that has it (MicroPython: loaded when asked for)
_DRIVERS = {"Esp32Rng": "noise_esp32", "RNG_DATA_ESP32": "noise_esp32", "RNG_DATA_ESP32C3": "noise_esp32",
            "Rp2040Rosc": "noise_rp2040", "ROSC_BASE_RP2040": "noise_rp2040",
            "Rp2350Trng": "noise_rp2350", "TRNG_BASE_RP2350": "noise_rp2350", "SimTrng": "noise_sim"}


def __getattr__(name: str) -> "Any":
    module = _DRIVERS.get(name)
    if module is None:
        raise AttributeError(name)
    return getattr(__import__("ovpnkx." + module, None, None, (name,)), name)


def unique_id() -> bytes:
    """The chip's unique id (``machine.unique_id()``), b"" where there is none.

    Boards personalize their DRBG with it, so two boards never share a stream.
    """
    try:
        import machine

        return machine.unique_id()  # type: ignore[attr-defined,unused-ignore]  # not on the unix port
    except (ImportError, AttributeError):
        return b""


class MachineRegisters:
    """32-bit register access through ``machine.mem32`` (boards only)."""

    def __init__(self) -> None:
        import machine  # type: ignore[import-not-found,unused-ignore]  # boards only

        self._mem32 = machine.mem32

    def read(self, addr: int) -> int:
        return self._mem32[addr] & 0xFFFFFFFF

    def write(self, addr: int, value: int) -> None:
        self._mem32[addr] = value


class HostNoise:
    """``os.urandom`` as a noise source, for hosts and tests of the chain.

    Already conditioned by the OS, so any claim up to 8 bits per byte holds.
    """

    bits_per_sample = 8
    binary = False
    MIN_ENTROPY_CLAIM = 7.0

    def read_samples(self, n: int) -> bytes:
        return os.urandom(n)


if not MICROPYTHON:  # the host's and the tests' imports; a board loads only its own driver
    from .noise_esp32 import RNG_DATA_ESP32, RNG_DATA_ESP32C3, Esp32Rng  # noqa: E402,F401
    from .noise_rp2040 import ROSC_BASE_RP2040, Rp2040Rosc  # noqa: E402,F401
    from .noise_rp2350 import TRNG_BASE_RP2350, Rp2350Trng  # noqa: E402,F401
    from .noise_sim import SimTrng  # noqa: E402,F401
