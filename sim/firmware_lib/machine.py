"""``machine`` for the simulated board: the small part of the HAL the firmware uses.

reset(), soft_reset(), unique_id(), freq(), idle(), UART (id 1 is the sim's ``uart``
PTY, through the launcher's link model), Pin (a stub that remembers its value).
Not available: mem8/mem16/mem32, I2C, SPI, ADC, PWM, Timer, deepsleep.
"""

import select
import time

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
        self._poll = select.poll()
        self._poll.register(self._f, select.POLLIN)
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
        return 1 if self._poll.poll(0) else 0

    def _wait(self, ms) -> bool:
        return bool(self._poll.poll(ms))

    def read(self, nbytes=None):
        out = bytearray()
        limit = 1 << 30 if nbytes is None else nbytes
        wait = self.timeout
        while len(out) < limit:
            if not self._wait(wait):
                break
            chunk = self._f.read(min(256, limit - len(out)))
            if not chunk:
                break
            out.extend(chunk)
            wait = self.timeout_char
        return bytes(out) if out else None

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


