"""AES-GCM (NIST SP 800-38D) in Python over a bare AES-ECB block function.

MicroPython's ``cryptolib.aes`` offers ECB and CBC only, so the counter mode and
GHASH are built here. The same text runs on CPython (over an ECB from
``cryptography``) so that one implementation is tested on both runtimes.

Speed choices (MicroPython has no fast bytes XOR):
- the whole counter stream of a packet is one ECB call, its counter blocks built
  with one big-int addition, and the XOR with the data is one big-int XOR;
- GHASH multiplies by H with a per-key table of 32 x 16 entries (one per nibble
  position), so a block costs 32 look-ups and XORs and no shifts or reductions
  (``ovpnkx.ghash_full``, native code where ``micropython.viper`` works);
- ``compact=True`` trades speed for memory on small heaps: Shoup's 4-bit method,
  16 multiples of H per key (about 0.6 KB instead of 8 KB) plus one shared
  reduction table, 32 shift-and-reduce steps per block. A board on the compact
  table (the default below 256 KiB of heap) never loads the full table's code.
"""

from ._compat import TYPE_CHECKING, const
from .digest import compare_digest
from .errors import LocalProtocolError, RemoteProtocolError

if TYPE_CHECKING:
    from typing import Any, Callable

_BATCH = const(64)  # counter blocks per ECB call
_R = 0xE1 << 120  # GHASH reduction constant, bit-reflected
_MASK32 = 0xFFFFFFFF
_B1 = (1 << 128) - 1
_B1B1 = _B1 * _B1


def _counters(k: int) -> int:
    """Counters 0..k-1, one per 128-bit block, as one integer: sum of i * B^(k-1-i) for
    B = 2^128, which is (B^k - 1 - k(B - 1)) / (B - 1)^2. Worked out per batch rather than
    kept as a 64-block (1 KB) integer for as long as a data key lives on a board's heap."""
    return ((1 << 128 * k) - 1 - k * _B1) // _B1B1


def gf_mul(x: int, h: int) -> int:
    """x * H in GF(2^128), bit by bit (SP 800-38D algorithm 1): the slow reference."""
    z = 0
    for i in range(127, -1, -1):
        if x >> i & 1:
            z ^= h
        h = (h >> 1) ^ _R if h & 1 else h >> 1
    return z


def nibble_entries(h: int, positions: int = 32):
    """Yield T[16 * pos + n] = (nibble n at nibble position pos) * H, pos 0..positions-1,
    n 0..15. Holds four multiples of H at a time, not all 128 (a board's heap: ~4.6 KB
    of big ints at each data key's set-up)."""
    v = h  # H * x^(4 * pos), bit-reflected
    for _ in range(positions):
        p = []
        for _ in range(4):
            p.append(v)
            v = (v >> 1) ^ _R if v & 1 else v >> 1
        for n in range(16):
            z = 0
            if n & 8:
                z ^= p[0]
            if n & 4:
                z ^= p[1]
            if n & 2:
                z ^= p[2]
            if n & 1:
                z ^= p[3]
            yield z


def _mul_x4(v: int) -> int:
    """v * x^4 in GCM's bit-reflected form (four single-bit steps)."""
    for _ in range(4):
        v = (v >> 1) ^ _R if v & 1 else v >> 1
    return v


# the reduction of the four bits a shift by x^4 pushes out (r is at most 15)
_R4 = [_mul_x4(r) for r in range(16)]


class _CompactGhash:
    """GHASH under one key H with Shoup's 4-bit table: small, slower."""

    def __init__(self, h: int) -> None:
        # M[n] = nibble n at the block's first nibble position, times H
        self._m = list(nibble_entries(h, 1))

    def ghash(self, y: int, data: bytes) -> int:
        m, r4, fb = self._m, _R4, int.from_bytes
        mv = memoryview(data)
        for off in range(0, len(data), 16):
            b = (y ^ fb(mv[off:off + 16], "big")).to_bytes(16, "big")
            z = 0
            for i in range(15, -1, -1):  # Horner over the 32 nibbles, last one first
                v = b[i]
                z = (z >> 4) ^ r4[z & 15] ^ m[v & 15]
                z = (z >> 4) ^ r4[z & 15] ^ m[v >> 4]
            y = z
        return y


def _pad16(n: int) -> bytes:
    return bytes(-n % 16)


class AesGcm:
    """AES-GCM with a 16-byte tag under one key.

    ``ecb`` encrypts any multiple of 16 bytes in ECB mode under the key (for
    example ``cryptolib.aes(key, 1).encrypt``). ``seal``/``open`` take a nonce
    (12 bytes in OpenVPN; other lengths are hashed as SP 800-38D says).
    ``compact`` picks the small GHASH table (for boards with little heap).
    """

    def __init__(self, ecb: "Callable[[bytes], bytes]", compact: bool = False) -> None:
        self._ecb = ecb
        if compact:
            ghash = _CompactGhash  # type: Any
        else:
            from .ghash_full import full_ghash

            ghash = full_ghash()
        self._gh = ghash(int.from_bytes(ecb(bytes(16)), "big"))

    def _j0(self, nonce: bytes) -> bytes:
        if len(nonce) == 12:
            return nonce + b"\x00\x00\x00\x01"
        if not nonce:
            raise LocalProtocolError("GCM nonce must not be empty")
        s = nonce + _pad16(len(nonce)) + (8 * len(nonce)).to_bytes(16, "big")
        return self._gh.ghash(0, s).to_bytes(16, "big")

    def _stream(self, j0: bytes, n: int) -> bytes:
        """E(J0) followed by the key stream for ``n`` bytes (blocks J0+1, J0+2, ...)."""
        blocks = (n + 15) // 16 + 1
        prefix = j0[:12]
        ctr = int.from_bytes(j0[12:], "big")
        out = []
        while blocks:
            k = blocks if blocks < _BATCH else _BATCH
            if ctr + k <= _MASK32 + 1:
                first = prefix + ctr.to_bytes(4, "big")
                ctrs = int.from_bytes(first * k, "big") + _counters(k)
                out.append(self._ecb(ctrs.to_bytes(16 * k, "big")))
                ctr = (ctr + k) & _MASK32
            else:  # the 32-bit counter wraps inside this batch (only for hashed nonces)
                parts = []
                for _ in range(k):
                    parts.append(prefix + ctr.to_bytes(4, "big"))
                    ctr = (ctr + 1) & _MASK32
                out.append(self._ecb(b"".join(parts)))
            blocks -= k
        return b"".join(out)

    def _tag(self, mask: bytes, aad: bytes, ct: bytes) -> bytes:
        lens = (8 * len(aad)).to_bytes(8, "big") + (8 * len(ct)).to_bytes(8, "big")
        s = b"".join((aad, _pad16(len(aad)), ct, _pad16(len(ct)), lens))
        y = self._gh.ghash(0, s)
        return (y ^ int.from_bytes(mask, "big")).to_bytes(16, "big")

    @staticmethod
    def _xor(data: bytes, stream: bytes) -> bytes:
        n = len(data)
        if not n:
            return b""
        return (int.from_bytes(data, "big") ^ int.from_bytes(stream[16:16 + n], "big")).to_bytes(n, "big")

    def seal(self, nonce: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
        """Encrypt and authenticate: ciphertext || tag(16)."""
        stream = self._stream(self._j0(nonce), len(plaintext))
        ct = self._xor(plaintext, stream)
        return ct + self._tag(stream[:16], aad, ct)

    def open(self, nonce: bytes, data: bytes, aad: bytes = b"") -> bytes:
        """Check the tag of ciphertext || tag(16) and decrypt; RemoteProtocolError if bad."""
        if len(data) < 16:
            raise RemoteProtocolError("AEAD input shorter than its tag")
        n = len(data) - 16
        ct = bytes(data[:n])
        stream = self._stream(self._j0(nonce), n)
        if not compare_digest(self._tag(stream[:16], aad, ct), bytes(data[n:])):
            raise RemoteProtocolError("AEAD tag mismatch")
        return self._xor(ct, stream)
