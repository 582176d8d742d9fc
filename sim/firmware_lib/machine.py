"""``machine`` for the simulated board: the small part of the HAL the firmware uses.

reset(), soft_reset(), unique_id(), freq(), idle(), UART (id 1 is the sim's ``uart``
PTY, through the launcher's link model), Pin (a stub that remembers its value),
RTC (starts at the board's ``rtc_at_reset``), and ``mem32`` with the board's noise
source modelled behind its registers (``_Registers``). Not available: mem8/mem16,
I2C, SPI, ADC, PWM, Timer, deepsleep.
"""

import select  # noqa: F401  the sim's select (C on a board) loads at boot, in the sim's own share
import sys
import time
import uselect

import simboard


def reset() -> None:
    """Hard reset: the launcher restarts the board process (fresh heap, friendly REPL)."""
    simboard._signal(b"H")
    while True:  # the launcher kills this process
        time.sleep(1)


def soft_reset() -> None:
    """Soft reset, as on a board: raises SystemExit, which the REPL turns into a reboot."""
    raise SystemExit


def unique_id() -> bytes:
    """8 bytes derived from the board name (stable across runs, like a flash chip id)."""
    import hashlib

    return hashlib.sha256(("ovpnkx-sim:" + simboard.name()).encode()).digest()[:8]


def freq(hz=None):
    """CPU frequency of the modelled chip (setting it is accepted and ignored)."""
    if hz is None:
        return simboard.board().get("cpu_hz", 125000000)
    return None


def idle() -> None:
    time.sleep_ms(1)


_BATCH = 256  # modelled noise bits made at a time


class RTC:
    """The real-time clock: (year, month, day, weekday, hours, minutes, seconds, subseconds).

    It starts at the board's ``rtc_at_reset`` (2021-01-01 00:00 on rp2) after a hard
    reset and keeps running over a soft reset, as on the board.
    """

    def __init__(self, id=0):
        pass

    def datetime(self, datetimetuple=None):
        import _simtime

        if datetimetuple is None:
            t = _simtime.gmtime()
            return (t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0)
        d = datetimetuple
        secs = _simtime.mktime((d[0], d[1], d[2], d[4], d[5], d[6]))
        simboard.set_rtc_offset(secs - int(time.time()))

    def init(self, datetimetuple):
        self.datetime(datetimetuple)


# --- registers: the board's noise source, modelled ------------------------------------

_ROSC_RP2040 = 0x40060000
_TRNG_RP2350 = 0x400F0000
_RNG_DATA_ESP32 = 0x3FF75144


def _noise_model():
    from ovpnkx.noise import SimTrng

    return SimTrng(fault=simboard.trng_fault())


class _Registers:
    """The registers the boards' noise drivers read, with ``ovpnkx.noise.SimTrng`` (and
    ``--trng-fault``) behind them: RP2040 ROSC STATUS/RANDOMBIT, RP2350 TRNG
    (RND_SOURCE_ENABLE, VALID, EHR_DATA0..5), ESP32 RNG_DATA_REG. Any other address
    raises OSError (a real board would read some peripheral, or fault)."""

    def __init__(self, chip):
        self.chip = chip
        # the model's buffers and its source of physical randomness, made now (at boot, in
        # the sim's own share of the heap): a board's register read takes no heap
        self._raw = bytearray(4 * _BATCH)  # 4 bytes of randomness a bit
        self._bits = bytearray(_BATCH)
        self._urandom = open("/dev/urandom", "rb")
        self._pos = _BATCH
        self._model = None
        self._trng = {}
        self.reads = 0

    def load_model(self):
        """The noise model, made now (at boot, in the sim's own share of the heap: a board's
        register costs its heap nothing) from the repository's ``ovpnkx.noise``. Its modules
        leave ``sys.modules`` again, so that the app's imports load (and are charged) its own."""
        lib = simboard.config().get("model_lib")
        if not lib or self._model is not None:
            return
        before = set(sys.modules)
        sys.path.insert(0, lib)
        try:
            self._model = _noise_model()
        except ImportError:  # no source beside the sim: the flashed module, at the first read
            pass
        finally:
            sys.path.remove(lib)
            for name in set(sys.modules) - before:
                del sys.modules[name]

    def _bit(self):
        if self._pos >= _BATCH:
            if self._model is None:  # not loaded at boot: the one on the board's path once flashed
                self._model = _noise_model()
            if self._urandom.readinto(self._raw) != len(self._raw):
                raise OSError("simulated %s: /dev/urandom gave less than asked" % self.chip)
            self._model.fill(self._bits, self._raw)
            self._pos = 0
        b = self._bits[self._pos]
        self._pos += 1
        return b

    def _word(self):
        w = 0
        for i in range(32):
            w |= self._bit() << i
        return w

    def read(self, addr):
        self.reads += 1
        if self.chip == "RP2040" and addr == _ROSC_RP2040 + 0x18:
            return 0x80001000  # STATUS: STABLE | ENABLED
        if self.chip == "RP2040" and addr == _ROSC_RP2040 + 0x1C:
            return self._bit()  # RANDOMBIT
        if self.chip == "RP2350" and _TRNG_RP2350 <= addr < _TRNG_RP2350 + 0x200:
            off = addr - _TRNG_RP2350
            if off == 0x110:  # TRNG_VALID: the EHR is full while the source is on
                return 1 if self._trng.get(0x12C, 0) & 1 else 0
            if 0x114 <= off <= 0x128:  # EHR_DATA0..5
                return self._word() if self._trng.get(0x12C, 0) & 1 else 0
            return self._trng.get(off, 0)
        if self.chip == "ESP32" and addr == _RNG_DATA_ESP32:
            return self._word()
        raise OSError("simulated %s: no modelled register at 0x%08x" % (self.chip, addr))

    def write(self, addr, value):
        if self.chip == "RP2350" and _TRNG_RP2350 <= addr < _TRNG_RP2350 + 0x200:
            self._trng[addr - _TRNG_RP2350] = value & 0xFFFFFFFF
            return
        raise OSError("simulated %s: no modelled register at 0x%08x" % (self.chip, addr))


class _Mem32:
    def __init__(self):
        self.regs = _Registers(simboard.board().get("chip", ""))

    def __getitem__(self, addr):
        return self.regs.read(addr & 0xFFFFFFFF)

    def __setitem__(self, addr, value):
        self.regs.write(addr & 0xFFFFFFFF, value)


mem32 = _Mem32()
mem32.regs.load_model()  # imported while the host paths still resolve (_simboot)


def reset_cause() -> int:
    return PWRON_RESET


PWRON_RESET = 1
HARD_RESET = 2
SOFT_RESET = 5


class Pin:
    """Stub pin: remembers its value; no electrical effect."""

    IN = 0
    OUT = 1
    OPEN_DRAIN = 2
    PULL_UP = 1
    PULL_DOWN = 2

    def __init__(self, id, mode=-1, pull=-1, value=None):
        self._id = id
        self._v = 0 if value is None else int(bool(value))

    def value(self, v=None):
        if v is None:
            return self._v
        self._v = int(bool(v))

    def on(self):
        self._v = 1

    def off(self):
        self._v = 0

    def toggle(self):
        self._v ^= 1

    __call__ = value

    def __repr__(self):
        return "Pin(%r)" % (self._id,)


class UART:
    """machine.UART subset over the sim's uart PTY (UART 1, or the board's data UART id).

    read(n)/readinto()/readline() wait up to ``timeout`` ms for the first byte and
    ``timeout_char`` ms between bytes, then return what arrived (None if nothing),
    like the rp2/esp32 ports. write() blocks until the launcher took the bytes; the
    baud rate of the line is the link model's (--baud), not this object's.
    """

    def __init__(self, id, baudrate=115200, bits=8, parity=None, stop=1, *, tx=None, rx=None,
                 timeout=0, timeout_char=None, rxbuf=256, txbuf=256):
        if id not in (1, simboard.data_uart_id()) or simboard._uart is None:
            raise ValueError("UART(%r) doesn't exist on the simulated board (use UART(%d))"
                             % (id, simboard.data_uart_id()))
        self._f = simboard._uart
        # the unix port's own poll on the fd, asked through ipoll: a board's any() and a
        # read() with nothing to read allocate nothing, and neither may the sim's
        self._poll = uselect.poll()
        self._poll.register(self._f.fileno(), uselect.POLLIN)
        self.init(baudrate, bits, parity, stop, timeout=timeout, timeout_char=timeout_char)

    def init(self, baudrate=115200, bits=8, parity=None, stop=1, *, tx=None, rx=None,
             timeout=0, timeout_char=None, rxbuf=256, txbuf=256):
        self.baudrate = baudrate
        self.timeout = timeout
        if timeout_char is None:
            # at least one character time, in ms, as the ports do
            timeout_char = max(1, 13000 // max(1, baudrate) + 1)
        self.timeout_char = timeout_char

    def deinit(self):
        pass

    def any(self) -> int:
        return 1 if self._wait(0) else 0

    def _wait(self, ms) -> bool:
        for _ in self._poll.ipoll(ms):
            return True
        return False

    def read(self, nbytes=None):
        limit = 1 << 30 if nbytes is None else nbytes
        if limit <= 0 or not self._wait(self.timeout):
            return None
        data = self._f.read(min(256, limit))
        if not data:
            return None
        out = None  # more than one chunk: gathered here (a board's read makes one object)
        n = len(data)
        while n < limit and self._wait(self.timeout_char):
            chunk = self._f.read(min(256, limit - n))
            if not chunk:
                break
            if out is None:
                out = bytearray(data)
            out.extend(chunk)
            n += len(chunk)
        return data if out is None else bytes(out)

    def readinto(self, buf, nbytes=None):
        n = len(buf) if nbytes is None else nbytes
        data = self.read(n)
        if not data:
            return None
        buf[: len(data)] = data
        return len(data)

    def readline(self):
        out = bytearray()
        wait = self.timeout
        while True:
            if not self._wait(wait):
                break
            c = self._f.read(1)
            if not c:
                break
            out.extend(c)
            if c == b"\n":
                break
            wait = self.timeout_char
        return bytes(out) if out else None

    def write(self, buf) -> int:
        n = self._f.write(buf)
        return len(buf) if n is None else n

    def flush(self):
        pass

    def txdone(self) -> bool:
        return True

    def fileno(self):
        return self._f.fileno()

    def ioctl(self, req, arg):  # lets select.poll() register a UART
        return self._f.ioctl(req, arg)


