"""``tls`` for a simulated rp2 board: the unix port's mbedTLS, charged to the GC heap.

On rp2 stock firmware mbedTLS allocates from the GC heap (MICROPY_TRACKED_ALLOC);
the unix port's allocates with libc calloc, outside it. Each call into ``tls`` here
runs with the LD_PRELOAD shim (sim/ovpnkx_shim.c) counting the libc bytes mbedTLS
allocates and frees; after the call the sim holds that many bytes of the GC heap
(``bytearray`` ballast, at the chip's scale: ``chip_bytes_per_host_byte`` of the
board profile, in host heap units), and first checks that the call's peak would
have fitted. Each live block of 4 KB or more (the shim lists them: mbedTLS's record
buffers, 16 KB in and 4 KB out) is held as one bytearray, since on the board it is
one allocation that needs that much free heap in one piece; the rest in small pieces.
An allocation that fails raises OSError(ENOMEM), as mbedTLS's
MBEDTLS_ERR_SSL_ALLOC_FAILED does on the board.

Frees that happen outside a call (an SSLContext's finaliser during a collection)
are noticed at the next call or ``gc.collect()``. Ballast let go is collected at once:
on the board what mbedTLS frees is free heap at once, for the next block to take.
"""

import gc as _gc  # the real one (imported before _simprofile's import hook)
import os

import tls as _tls

import simboard

PROTOCOL_TLS_CLIENT = _tls.PROTOCOL_TLS_CLIENT
PROTOCOL_TLS_SERVER = _tls.PROTOCOL_TLS_SERVER
CERT_NONE = _tls.CERT_NONE
CERT_OPTIONAL = _tls.CERT_OPTIONAL
CERT_REQUIRED = _tls.CERT_REQUIRED
MBEDTLS_VERSION = _tls.MBEDTLS_VERSION

_CHUNK = 512
_ENOMEM = 12
_scale = simboard.mbedtls_scale()  # host heap bytes per libc byte
_ballast = []


def _shim(cmd):
    return os.getenv("OVPNKX_SHIM:" + cmd)


_big = []  # bytearrays held for mbedTLS's live big blocks, each of its block's size (scaled)


def charged() -> int:
    """Host heap bytes now held for mbedTLS."""
    return len(_ballast) * _CHUNK + sum(len(b) for b in _big)


def _hold(n_bytes, big=()):
    """Hold ``n_bytes`` of mbedTLS memory: each size in ``big`` (a live big block) as one
    bytearray, the rest in _CHUNK pieces. Blocks gone are let go before new ones come."""
    spare = list(_big)
    kept = []
    missing = []
    # largest first, as mbedTLS allocates them (mbedtls_ssl_setup: in_buf, 16 KB, then
    # out_buf, 4 KB): the 4 KB block first would take the front of a freed 16 KB place
    for size in sorted((int(n * _scale) for n in big), reverse=True):
        for b in spare:
            if len(b) == size:  # a block that stayed keeps its bytearray (and its place)
                spare.remove(b)
                kept.append(b)
                break
        else:
            missing.append(size)
    _big[:] = kept
    spare = kept = None
    rest = int(n_bytes * _scale) - sum(len(b) for b in _big) - sum(missing)
    del _ballast[(max(rest, 0) + _CHUNK - 1) // _CHUNK:]
    for size in missing:
        _big.append(bytearray(size))
    while len(_ballast) * _CHUNK < rest:
        _ballast.append(bytearray(_CHUNK))


def _parse(answer):
    live, peak, big = answer.split()  # big: the live big blocks' sizes, comma-separated ("-": none)
    return int(live), int(peak), [] if big == "-" else [int(n) for n in big.split(",")]


def _let_go(before):
    # what mbedTLS freed (m_tracked_free) is free heap at once on the board; the ballast let
    # go here is garbage until a collection, and meanwhile new blocks would go elsewhere
    if charged() < before:
        _gc.collect()


def _settle(answer):
    live, peak, big = _parse(answer)
    before = charged()
    try:
        if int(peak * _scale) > before:
            _hold(peak, big)  # the call's high-water mark had to fit, all at once
        # (a call that only freed, e.g. close, had its peak before it: held already)
        at_peak = charged()
        _hold(live, big)
        _let_go(max(before, at_peak))
    except MemoryError:
        _hold(0)
        resync()  # a collection may have freed older mbedTLS memory
        try:
            _hold(peak, big)
            _hold(live, big)
        except MemoryError:
            del _big[:]  # what could be held stays held, in pieces (nothing new is allocated)
            _hold(min(live, len(_ballast) * _CHUNK // _scale))
            raise OSError(_ENOMEM)


def resync():
    """Hold what mbedTLS has now (after frees outside a call: an SSLContext's finaliser
    during a collection)."""
    answer = _shim("q")
    if answer:
        live, _, big = _parse(answer)
        before = charged()
        try:
            _hold(live, big)
        except MemoryError:
            raise OSError(_ENOMEM)
        _let_go(before)


def _call(fn, *args, **kw):
    _shim("on")
    try:
        result = fn(*args, **kw)
    finally:
        answer = _shim("off")
        if answer:
            _settle(answer)
    return result


class SSLSocket:
    def __init__(self, sock):
        self._s = sock

    def read(self, *args):
        return _call(self._s.read, *args)

    def readinto(self, *args):
        return _call(self._s.readinto, *args)

    def readline(self, *args):
        return _call(self._s.readline, *args)

    def write(self, data):
        return _call(self._s.write, data)

    def close(self):
        return _call(self._s.close)

    def setblocking(self, flag):
        return self._s.setblocking(flag)

    def cipher(self):
        return self._s.cipher()

    def __getattr__(self, name):
        return getattr(self._s, name)


class SSLContext:
    def __init__(self, protocol):
        self._c = _call(_tls.SSLContext, protocol)

    @property
    def verify_mode(self):
        return self._c.verify_mode

    @verify_mode.setter
    def verify_mode(self, value):
        self._c.verify_mode = value

    @property
    def verify_callback(self):
        return self._c.verify_callback

    @verify_callback.setter
    def verify_callback(self, value):
        self._c.verify_callback = value

    def load_cert_chain(self, cert, key):
        return _call(self._c.load_cert_chain, cert, key)

    def load_verify_locations(self, cadata):
        return _call(self._c.load_verify_locations, cadata)

    def get_ciphers(self):
        return self._c.get_ciphers()

    def set_ciphers(self, ciphers):
        return _call(self._c.set_ciphers, ciphers)

    def wrap_socket(self, sock, **kw):
        return SSLSocket(_call(self._c.wrap_socket, sock, **kw))
