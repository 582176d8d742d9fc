"""The board's stock firmware, enforced on the simulated board (installed by _simboot).

The unix port has every module and a 64-bit clock; a board's stock firmware does
not. ``install()`` replaces ``builtins.__import__`` so that for the code on the board:

- a module the profile lists as absent (``stock_firmware.modules.absent``: ``tls``
  and ``ssl`` on a plain Pico) raises ImportError as on the board;
- ``hashlib`` offers only the profile's algorithms;
- ``time`` is ``_simtime`` (ticks wrap with the board's period, clock from the RTC);
- ``tls`` is ``_simtls`` where the port puts mbedTLS in the GC heap (rp2), and
  ``gc.collect()`` then also gives back what mbedTLS freed;
- with ``--code-at-chip-scale``, a module loaded from a ``.mpy`` is charged what stock
  firmware keeps of it at the chip's scale: each name (qstr) it interns that is neither
  built in nor interned before, its file's path among them, for good, as the firmware
  never frees one (their characters, and the chip's qstr pools as the firmware grows
  them); the rest of the file (bytecode, constants) in its globals for as long as the
  module is loaded. A native (viper) function's machine code is that rest too where the
  firmware puts it in the GC heap (rp2); on the ESP32 it goes to executable memory of
  its own, which only a soft reset frees, at every import (``native_committed``).
"""

import builtins
import gc as _gc
from array import array
from micropython import const
import hashlib as _hashlib
import os
import sys

import simboard


class _Namespace:
    pass


def _hashlib_for(algos):
    ns = _Namespace()
    for name in algos:
        if hasattr(_hashlib, name):
            setattr(ns, name, getattr(_hashlib, name))
    ns.__name__ = "hashlib"
    return ns


def _gc_for(tls_module):
    ns = _Namespace()
    for name in ("enable", "disable", "isenabled", "mem_free", "mem_alloc", "threshold"):
        if hasattr(_gc, name):
            setattr(ns, name, getattr(_gc, name))

    def collect():
        n = _gc.collect()
        tls_module.resync()
        return n

    ns.collect = collect
    ns.__name__ = "gc"
    return ns


# --code-at-chip-scale. A loaded .mpy's code (bytecode, constants) and the names it interns
# are bytes, which take twice the words on a 32-bit board that they take on this 64-bit host;
# ``charge`` is how many times their bytes again the sim holds (1 here). The file is read as
# stock MicroPython loads it (py/persistentcode.c, mp_raw_code_load and load_qstr; .mpy
# version 6, docs/reference/mpyfiles.rst): a 4-byte header (b"M", version, flags, small-int
# bits), vuint n_qstr, vuint n_obj, then n_qstr entries, each a vuint v: v odd is static qstr
# number v >> 1, built into every firmware (costs nothing); v even is a name of v >> 1 bytes
# and a NUL, which the firmware interns (qstr_from_strn) unless it already has it, and never
# frees. The rest of the file is the module's code, freed with the module.
#
# What an interned name costs the chip (py/qstr.c, read at micropython 31ba059e: qstr_from_strn,
# qstr_from_strn_helper since ROMFS, puts len + 1 bytes, the characters and a NUL, in a qstr
# chunk; qstr_add gives it an entry in the newest qstr pool). A pool is one allocation of a
# header and ``alloc`` entries of sizeof(const char *) + sizeof(qstr_hash_t) + sizeof(qstr_len_t)
# (py/qstr.h, qstr_pool_t: prev, total_prev_len, alloc, len, hashes, lengths: 6 words). On
# 32-bit stock v1.28 an entry is a 4-byte pointer, MICROPY_QSTR_BYTES_IN_LEN = 1 (py/mpconfig.h
# default) and MICROPY_QSTR_BYTES_IN_HASH = 1 on rp2 (ports/rp2/mpconfigport.h line 104 at
# micropython 002dfd27, a post-ROMFS commit: "#define MICROPY_QSTR_BYTES_IN_HASH (1)"), 2 on
# esp32 (the py/mpconfig.h default at MICROPY_CONFIG_ROM_LEVEL_EXTRA_FEATURES, which
# ports/esp32/mpconfigport.h sets and does not override).
#
# The chip's pools, not the unix port's: when the newest pool is full, qstr_add allocates one
# of twice its entries (at least MICROPY_ALLOC_QSTR_ENTRIES_INIT, 10), after the frozen
# modules' pool, which tools/mpy-tool.py declares with min(its names, 10) entries "so that the
# first dynamically allocated pool is twice this size" (the stock boards freeze modules). So
# the firmware's own names aside, the app's names fill pools of 20, 40, 80, ... 1280 entries,
# each allocated whole, in one piece, when the one before is full: the 1,261st name costs a
# pool of 1,280 entries (7.7 KB on rp2). The unix port grows its pools the same way, but from
# where the sim's own Python (HAL, REPL) left them; so at boot ``grow_host_pools`` has the unix
# port allocate a pool with room for every name the app will intern, and the sim charges the
# chip's pools itself (``_pool``).
_POOL_HEAD = const(24)
_POOL_ENTRY = const(4 + 1)  # pointer and length; plus the hash's bytes
_FROZEN_POOL = const(10)  # entries of the frozen modules' pool, the last before the app's
_ENTRIES_INIT = const(10)  # MICROPY_ALLOC_QSTR_ENTRIES_INIT: the least a new pool has
# what the firmware interned, NUL-framed (how _interned finds them), in chunks as the chip
# keeps them (qstr_add): a chunk of at least MICROPY_ALLOC_QSTR_CHUNK_INIT (128) bytes that
# grows in place while the heap after it is free, and a new one where it is not. While a
# module loads, the names come one after another and the chunk mostly grows; so a module's
# new names are held in chunks of their own, of at most _CHUNK bytes each (a chunk of a
# module's names in one piece would need a stretch of the heap a board does not need).
# A list with room made at boot.
_CHUNK = const(1024)
_names = [None] * 256
_names_at = [0, 0]  # chunks (the open one included), bytes used of the open one after its NUL
_names_charge = []  # the chip's qstr pools, each held in one piece
_pool = [0, 0, _FROZEN_POOL]  # the app's names interned, room in its pools so far, the last pool's entries
_builtin = []  # names the firmware has built in beyond mpy-cross's static ones, NUL-framed
# names of py/qstrdefs.h that no module's dir() shows (the compiler's names of code objects)
_CORE_NAMES = ("<module>", "<lambda>", "<listcomp>", "<dictcomp>", "<setcomp>", "<genexpr>", "<string>",
               "<stdin>", "__file__", "__path__", "__main__")
# modules every supported board's stock firmware has (and tls, socket, network where the
# profile does not say absent): their names are the firmware's, in its ROM
_FIRMWARE_MODULES = ("sys", "gc", "micropython", "time", "struct", "json", "hashlib", "binascii", "cryptolib",
                     "select", "errno", "io", "collections", "array", "math", "os", "machine", "random",
                     "re", "heapq", "deflate", "tls", "socket", "network")
# On the chip a module's code is many allocations, not one (py/persistentcode.c,
# load_raw_code and load_obj): each function's bytecode is one block of its own length, each
# string or bytes constant one of its own, and the rest (raw code structures, small
# constants) small ones. A charge held as one block would need a stretch of the heap that the
# board never needs, and fail where the board would not; one held in blocks of a fixed size
# could not use the smaller holes a board's code does fill. So a charge is held as the chip
# allocates it: for a block of the chip's of L bytes, which takes ceil(L / 16) GC blocks of
# 16 B there (words at this host's scale: twice as many bytes), the unix port has taken one of
# ceil(L / 32) blocks of 32 B, and the sim takes the difference as one allocation (none where
# it is nothing: L <= 16). The rest of the file is held in blocks of _CHARGE_BLOCK host bytes.
# The blocks hold one another in a chain (each its predecessor), so that holding them takes
# nothing beyond them: a block of 32 B is a tuple (a 16-byte header and 8 B an item on this
# 64-bit port), a bigger one a list ([None] * k: a 32-byte header, then its k items in one
# allocation of their own, as the chip's code object and its bytecode are two).
_CHARGE_BLOCK = const(512)
_LIST_HEAD = const(32)


def _chip_extra(n, scale):
    # host bytes the chip's block of n bytes (in 16-byte GC blocks, at ``scale`` host bytes a
    # chip byte) takes beyond the unix port's own block for it (in GC blocks of 16 * scale)
    return scale * ((n + 15) // 16 * 16) - (n + 16 * scale - 1) // (16 * scale) * (16 * scale)


def _block(n, prev):
    # about n host bytes (at least 32) in one or two allocations, holding ``prev``
    if n < 2 * _LIST_HEAD:
        return (prev, None)  # built in place (BUILD_TUPLE): no other allocation
    block = [None] * ((n - _LIST_HEAD) // 8)
    block[0] = prev
    return block


class _Sizes:
    """The sizes of a .mpy's blocks (``mpy_names``), kept in room made at boot: the parse
    allocates nothing the chip does not (a list of them, grown as it went, did)."""

    def __init__(self, room):
        self.at = array("H", bytes(2 * room))  # a block is < 64 KiB
        self.n = 0

    def append(self, size):
        if self.n < len(self.at):
            self.at[self.n] = size
        self.n += 1  # past the room: the caller sees it and charges the file whole


_sizes = _Sizes(512)  # the biggest module of the set has 238


def _charge(rest, sizes=None, scale=2):
    # the chain of blocks: the chip's blocks of ``sizes`` bytes (their extra over the unix
    # port's), then ``rest`` host bytes in blocks of at most _CHARGE_BLOCK
    head = None
    if sizes is not None:
        for i in range(sizes.n):
            n = _chip_extra(sizes.at[i], scale)
            if n:
                head = _block(n, head)
    while rest > 0:
        head = _block(min(rest, _CHARGE_BLOCK), head)
        rest -= _CHARGE_BLOCK
    return head


def charged(mod):
    """(host bytes a module's code charge holds, its blocks, its biggest block's bytes)."""
    block = mod.__dict__.get("__chip_bytes__")
    total = blocks = biggest = 0
    while block is not None:
        n = 32 if isinstance(block, tuple) else _LIST_HEAD + (8 * len(block) + 31) // 32 * 32
        total += n
        blocks += 1
        biggest = max(biggest, n)
        block = block[0]
    return total, blocks, biggest


def names_charged():
    """Host bytes held for the names interned so far: their characters (the unix port holds
    the other half) and the chip's qstr pools (all of them: the unix port's has room already)."""
    return sum(len(_names[i]) for i in range(_names_at[0])) + sum(len(c) for c in _names_charge)


def names_interned():
    """(names the app interned on the chip, entries of the chip's pools for them)."""
    return _pool[0], _pool[1]


def _note_builtin(absent):
    # what the firmware has in ROM: the names in its modules, their types and the builtins,
    # read here from the unix port's same modules (a few of its names a board lacks)
    import builtins as b

    seen = set(_CORE_NAMES)
    for obj in [b] + [getattr(b, n) for n in dir(b)]:
        seen.update(dir(obj))
    for name in _FIRMWARE_MODULES:
        if name in absent:
            continue
        try:
            mod = __import__(name)
        except ImportError:
            continue
        seen.add(name)
        for n in dir(mod):
            seen.add(n)
            seen.update(dir(getattr(mod, n)))
    _builtin.append(b"\0" + "\0".join(sorted(seen)).encode() + b"\0")


def grow_host_pools():
    """Have the unix port allocate a qstr pool of 2,560 entries or more now (at boot, in the
    sim's own heap), so that the app's names take its room rather than new pools of the unix
    port's in the user's heap; the sim charges the chip's pools instead. Returns how many
    names it interned."""
    _gc.collect()
    names = [None] * 256
    for start in range(0, 8192, 256):
        # the names are made before they are interned, in one stretch that is free again
        # afterwards, rather than as garbage between the qstr chunks (holes a board has not)
        for i in range(256):
            names[i] = "~sim%d" % (start + i)
        for i in range(256):
            before = _gc.mem_free()
            hasattr(None, names[i])  # interns the name (mp_obj_str_get_qstr); a miss allocates nothing
            if before - _gc.mem_free() >= 2560 * 10:  # a pool of >= 2,560 entries of >= 10 B
                return start + i + 1
        for i in range(256):
            names[i] = None
        _gc.collect()  # the next ones where these were
    return -1


def _intern_on_chip(new, charge, hash_bytes):
    # the chip's pools for ``new`` more names: a pool is one allocation, held for good
    for _ in range(new):
        if _pool[0] == _pool[1]:
            entries = max(_ENTRIES_INIT, _pool[2] * 2)
            _pool[1] += entries
            _pool[2] = entries
            _names_charge.append(bytearray((_POOL_HEAD + entries * (_POOL_ENTRY + hash_bytes)) * (charge + 1)))
        _pool[0] += 1


def _hash_bytes():
    return 2 if simboard.board().get("chip", "").upper().startswith("ESP32") else 1


_BYTE = bytearray(1)  # what _vuint reads into: parsing a .mpy allocates nothing per byte


def _vuint(f):
    v = 0
    n = 0
    while True:
        if f.readinto(_BYTE) != 1:
            raise ValueError("truncated")
        b = _BYTE[0]
        n += 1
        v = (v << 7) | (b & 0x7F)
        if not b & 0x80:
            return v, n


def _skip_obj(f, sizes):
    # one constant of the object table (load_obj): a type byte (0-4: fun table, None, False,
    # True, Ellipsis; 5 str, 6 bytes, 7 int, 8 float, 9 complex as text, 10 tuple) and its data
    if f.readinto(_BYTE) != 1:
        raise ValueError("truncated")
    kind = _BYTE[0]
    if kind <= 4:
        return
    n = _vuint(f)[0]
    if kind == 10:
        for _ in range(n):
            _skip_obj(f, sizes)
        return
    if kind in (5, 6):
        n += 1  # the NUL after the data
        sizes.append(n)
    f.seek(n, 1)


def _raw_code(f, sizes):
    # one function and its children (load_raw_code): vuint (length << 3 | has children << 2 |
    # kind), the bytecode or machine code; a native function's length goes to _native[0], not
    # to ``sizes`` (its code is a GC block on rp2 and executable memory on the ESP32: the
    # caller charges it as the board does), then its prelude offset (native) or scope flags
    # (viper; mpy-cross writes no rodata nor BSS)
    kind_len = _vuint(f)[0]
    kind = kind_len & 3
    n = kind_len >> 3
    if kind:
        _native[0] += n
    else:
        sizes.append(n)
    f.seek(n, 1)
    if kind:
        _vuint(f)
        if kind == 3:  # inline assembler: its argument count and type signature
            _vuint(f)
            _vuint(f)
    if kind_len & 4:
        for _ in range(_vuint(f)[0]):
            _raw_code(f, sizes)


_native = [0]  # machine code bytes of the .mpy last parsed
_exec = [0, 0]  # native functions' code committed to executable memory for good (ESP32): loads, bytes


def native_committed():
    """(.mpy loads whose machine code the board committed to executable memory that only a
    soft reset frees, the bytes of it) since boot: the ESP32's (``simboard.native_code_kept``),
    which takes that memory again at every import of a native module; (0, 0) elsewhere."""
    return _exec[0], _exec[1]


def mpy_names(path, sizes=None, on_name=None):
    """The names a .mpy of version 6 interns (its non-static qstrs, as bytes; with
    ``on_name``, each given to it and None here) and the bytes their entries take in the
    file; None if the file is not a .mpy of version 6. ``sizes`` (anything with ``append``)
    gets the size of each block the chip allocates for the file's constants and functions'
    bytecode."""
    names = [] if on_name is None else None
    in_file = 0
    try:
        with open(path, "rb") as f:
            head = f.read(4)
            if len(head) != 4 or head[0] != 0x4D or head[1] != 6:
                return None
            n_qstr = _vuint(f)[0]
            n_obj = _vuint(f)[0]
            for _ in range(n_qstr):
                v, n = _vuint(f)
                if v & 1:
                    continue
                s = f.read((v >> 1) + 1)
                if len(s) != (v >> 1) + 1 or s[-1] != 0:
                    return None
                if on_name is None:
                    names.append(s[:-1])
                else:
                    on_name(s[:-1])
                in_file += n + len(s)
            if sizes is not None:
                for _ in range(n_obj):
                    _skip_obj(f, sizes)
                _native[0] = 0
                _raw_code(f, sizes)
    except (OSError, ValueError):
        return None
    return names, in_file


def _interned(name):
    key = b"\0" + name + b"\0"
    for i in range(_names_at[0]):
        if _names[i].find(key) >= 0:
            return True
    return bool(_builtin) and _builtin[0].find(key) >= 0


def _count_new(name):
    if not _interned(name):
        _new[0] += 1
        _new[1] += len(name) + 1


def _intern(name):
    # a new name's characters and NUL into the module's open chunk, or a new one: as many host
    # bytes again as the unix port holds of them, the chip's in all
    if _interned(name):
        return
    k, used = _names_at
    n = len(name) + 1
    chunk = _names[k - 1] if k else None
    if chunk is None or used + n > len(chunk) - 1:
        if k == len(_names):
            _names.append(None)
        chunk = _names[k] = bytearray(1 + max(n, min(_new[1], _CHUNK)))
        k += 1
        used = 0
    chunk[1 + used:used + n] = name
    _new[1] -= n
    _names_at[0] = k
    _names_at[1] = used + n


_new = [0, 0]  # names of the module being charged that are new, and their bytes (with NULs) left


def _charge_module(mod, path, size, charge, hash_bytes):
    sizes = _sizes
    sizes.n = 0
    _new[0] = _new[1] = 0
    parsed = mpy_names(path, sizes, _count_new)
    if parsed is None or sizes.n > len(sizes.at):
        sys.stderr.write("_simprofile: %s %s: charged its whole size\n"
                         % (path, "is not a .mpy of version 6" if parsed is None else "has more blocks than the sim has room for"))
        setattr(mod, "__chip_bytes__", _charge(int(size * charge)))
        return
    in_file = parsed[1]
    # the import interns the file's path too (py/builtinimport.c: the .mpy is read by a qstr
    # of its path, "/lib/ovpnkx/session.mpy"), which the unix port holds at half its words
    path_name = path.encode()
    _count_new(path_name)
    # stock firmware loads a .mpy without leaving garbage; the parse's, left in the heap
    # among what the module keeps, fragmented it (the Pico W's chip-scale peak rose ~14 KiB)
    _gc.collect()
    if _new[0]:  # the names again, now into chunks of the module's own: no list of them on the way
        _names_at[1] = 1 << 30  # (the last module's chunk is full)
        mpy_names(path, None, _intern)
        _intern(path_name)
        # and this parse's garbage (each name read is an object here) gone before the pools
        # and the code take their places: load_qstr frees its buffer at once (m_del), so a
        # board's import leaves no holes among what it keeps (with them, the ESP32's
        # handshake failed at its own heap about half of the time)
        _gc.collect()
        _intern_on_chip(_new[0], charge, hash_bytes)
    rest = size - in_file - sum(sizes.at[i] for i in range(sizes.n))
    if _native[0] and simboard.native_code_kept():  # the machine code is not the GC heap's
        rest -= _native[0]
        _exec[0] += 1
        _exec[1] += _native[0]
    setattr(mod, "__chip_bytes__", _charge(int(rest * charge), sizes, charge + 1))


def _charge_code(charge):
    # each module loaded from a .mpy since the last import: its names for good (the firmware
    # never frees an interned name), its code in its globals, held exactly as long as the module
    hash_bytes = _hash_bytes()
    for mod in sys.modules.values():
        path = getattr(mod, "__file__", "")
        if path.endswith(".mpy") and "__chip_bytes__" not in mod.__dict__:
            try:
                size = os.stat(path)[6]
            except OSError:
                continue
            _charge_module(mod, path, size, charge, hash_bytes)


def install():
    fw = simboard.stock_firmware()
    modules = fw.get("modules", {})
    absent = set(modules.get("absent", ()))
    subst = {}
    algos = modules.get("hashlib", {}).get("value")
    if algos is not None:
        subst["hashlib"] = _hashlib_for(algos)
    import _simtime

    subst["time"] = _simtime
    if "tls" not in absent and simboard.mbedtls_charged():
        import _simtls

        subst["tls"] = _simtls
        subst["gc"] = _gc_for(_simtls)
    real = builtins.__import__
    charge = simboard.config().get("code_charge", 0)
    if charge:
        _note_builtin(absent)

    def _import(name, globals=None, locals=None, fromlist=(), level=0):
        if level == 0:
            if name in absent:
                raise ImportError("no module named '%s'" % name)
            mod = subst.get(name)
            if mod is not None:
                return mod
        if not charge:
            return real(name, globals, locals, fromlist, level)
        before = len(sys.modules)
        mod = real(name, globals, locals, fromlist, level)
        if len(sys.modules) > before:
            _charge_code(charge)
        return mod

    builtins.__import__ = _import
