"""SHA-512 and SHA-384 (FIPS 180-4) in plain Python, for runtimes whose ``hashlib`` lacks them.

The stock MicroPython firmware of the boards has md5, sha1 and sha256 only, yet
``auth SHA512`` / ``auth SHA384`` (tls-auth and CBC+HMAC) need these. MicroPython's
integers are arbitrary precision, so 64-bit words are plain ints masked to 64 bits.

The round constants and initial values are computed at import from their definition
(the first 64 bits of the fractional parts of the cube / square roots of the first
primes) rather than written out, so that no constant can be mistyped; the NIST test
vectors in ``tests/core/test_digest.py`` check the result.

Interface as ``hashlib``'s: ``sha512(data)``, ``update(data)``, ``digest()``
(``digest()`` does not change the object, so ``update`` may follow), ``copy()``.
"""

_M = 0xFFFFFFFFFFFFFFFF


def _primes(n: int) -> list:
    out = []  # type: list
    k = 2
    while len(out) < n:
        if all(k % p for p in out if p * p <= k):
            out.append(k)
        k += 1
    return out


def _iroot(n: int, k: int) -> int:
    """floor(n ** (1/k)) for n < 2 ** (70 * k) (Newton from above; no int.bit_length here)."""
    x = 1 << 70
    while True:
        y = ((k - 1) * x + n // (x ** (k - 1))) // k
        if y >= x:
            return x
        x = y


def _frac64(p: int, k: int) -> int:
    # the first 64 bits of the fractional part of p ** (1/k); the start of _iroot needs p < 4096
    return _iroot(p << (64 * k), k) & _M


_P = _primes(80)
_K = tuple(_frac64(p, 3) for p in _P)
_IV512 = tuple(_frac64(p, 2) for p in _P[:8])
_IV384 = tuple(_frac64(p, 2) for p in _P[8:16])
del _P


def _compress(h: list, block: bytes) -> None:
    w = [int.from_bytes(block[i:i + 8], "big") for i in range(0, 128, 8)]
    for t in range(16, 80):
        x = w[t - 15]
        y = w[t - 2]
        s0 = ((x >> 1) | (x << 63)) ^ ((x >> 8) | (x << 56)) ^ (x >> 7)
        s1 = ((y >> 19) | (y << 45)) ^ ((y >> 61) | (y << 3)) ^ (y >> 6)
        w.append((w[t - 16] + (s0 & _M) + w[t - 7] + (s1 & _M)) & _M)
    a, b, c, d, e, f, g, hh = h
    k = _K
    for t in range(80):
        s1 = (((e >> 14) | (e << 50)) ^ ((e >> 18) | (e << 46)) ^ ((e >> 41) | (e << 23))) & _M
        t1 = hh + s1 + (g ^ (e & (f ^ g))) + k[t] + w[t]
        s0 = (((a >> 28) | (a << 36)) ^ ((a >> 34) | (a << 30)) ^ ((a >> 39) | (a << 25))) & _M
        t2 = s0 + ((a & b) | (c & (a | b)))
        hh = g
        g = f
        f = e
        e = (d + t1) & _M
        d = c
        c = b
        b = a
        a = (t1 + t2) & _M
    h[0] = (h[0] + a) & _M
    h[1] = (h[1] + b) & _M
    h[2] = (h[2] + c) & _M
    h[3] = (h[3] + d) & _M
    h[4] = (h[4] + e) & _M
    h[5] = (h[5] + f) & _M
    h[6] = (h[6] + g) & _M
    h[7] = (h[7] + hh) & _M


class sha512:
    """SHA-512 with ``hashlib``'s interface."""

    digest_size = 64
    block_size = 128
    _iv = _IV512

    def __init__(self, data: bytes = b"") -> None:
        self._h = list(self._iv)
        self._buf = b""
        self._n = 0
        if data:
            self.update(data)

    def update(self, data: bytes) -> None:
        """Hash ``data`` (any bytes-like object) after what came before."""
        data = bytes(data)
        self._n += len(data)
        buf = self._buf + data
        end = len(buf) - len(buf) % 128
        for i in range(0, end, 128):
            _compress(self._h, buf[i:i + 128])
        self._buf = buf[end:]

    def copy(self) -> "sha512":
        """An independent copy (HMAC keeps its keyed inner and outer states this way)."""
        other = self.__class__()
        other._h = list(self._h)
        other._buf = self._buf
        other._n = self._n
        return other

    def digest(self) -> bytes:
        """The digest of everything so far (the object stays usable)."""
        h = list(self._h)
        bits = self._n * 8
        tail = self._buf + b"\x80" + bytes((111 - len(self._buf)) % 128) + bits.to_bytes(16, "big")
        for i in range(0, len(tail), 128):
            _compress(h, tail[i:i + 128])
        return b"".join(x.to_bytes(8, "big") for x in h)[:self.digest_size]


class sha384(sha512):
    """SHA-384: SHA-512 with other initial values, cut to 48 bytes."""

    digest_size = 48
    _iv = _IV384
