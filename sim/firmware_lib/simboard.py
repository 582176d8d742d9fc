"""The simulated board's own module: what board this is and how the sim set it up.

Only on the simulator (a real board has no ``simboard``), so firmware does
``try: import simboard except ImportError: simboard = None``. The launcher passes
everything in the environment variable OVPNKX_SIM_CONFIG (JSON) and two file
descriptors that ``_simboot`` opens before the flash folder becomes ``/``.
"""

import json
import os

_config = json.loads(os.getenv("OVPNKX_SIM_CONFIG") or "{}")
_ctl = None  # pipe to the launcher: b"H" hard reset, b"F"/b"R" soft reset (next REPL mode)
_uart = None  # the firmware side of the uart PTY, opened at boot


def config() -> dict:
    """The whole sim configuration (board description, link and TRNG fault settings)."""
    return _config


def board() -> dict:
    """The board description from boards/<name>/board.json."""
    return _config.get("board", {})


def name() -> str:
    """Board name, e.g. "rp2040"."""
    return _config.get("name", "sim")


def machine() -> str:
    """What a real board reports as sys.implementation._machine."""
    return board().get("machine", "simulated board")


def has_wifi() -> bool:
    """True when the board has Wi-Fi (modelled by loopback sockets)."""
    return bool(board().get("wifi"))


def trng_fault():
    """The --trng-fault setting as given ("stuck", "bias=P", "repeat=N", ...) or None.

    Pass it on as ``ovpnkx.noise.SimTrng(fault=simboard.trng_fault())``.
    """
    return _config.get("trng_fault")


def stock_firmware() -> dict:
    """The board profile's ``stock_firmware`` (modules, heap, RTC, ticks, ...), {} if none."""
    return board().get("stock_firmware") or {}


def ticks_period() -> int:
    """The period of ``time.ticks_*`` on this board (2^30 on a 32-bit port)."""
    return int(stock_firmware().get("ticks_period", {}).get("value", 1 << 30))


def native_code_kept() -> bool:
    """True where the firmware keeps a native module's machine code until a soft reset, in
    memory of its own (``stock_firmware.native_code``: the ESP32 commits it to executable
    memory of the IDF heap); False where it is a GC block that goes with the module (rp2)."""
    return stock_firmware().get("native_code", {}).get("where") == "exec"


def mbedtls_in_gc_heap() -> bool:
    """True where the board's mbedTLS allocates from the GC heap (``stock_firmware.mbedtls_heap``:
    rp2); False where it has a heap of its own (the ESP32's IDF heap) or no ``tls``."""
    return stock_firmware().get("mbedtls_heap", {}).get("where") == "gc"


def mbedtls_charged() -> bool:
    """True when mbedTLS's allocations are charged to the GC heap (rp2, with the shim)."""
    return bool(_config.get("mbedtls_scale"))


def mbedtls_scale() -> float:
    """Host GC-heap bytes charged per byte mbedTLS takes from libc here."""
    return float(_config.get("mbedtls_scale") or 0)


_rtc = [int(_config.get("rtc_offset_s", 0))]


def rtc_offset() -> int:
    """Seconds to add to the host's clock to get the board's RTC."""
    return _rtc[0]


def set_rtc_offset(offset: int) -> None:
    """Set the RTC (kept by the launcher over soft resets; mbedTLS's clock follows)."""
    _rtc[0] = int(offset)
    os.getenv("OVPNKX_SHIM:rtc=%d" % _rtc[0])
    _signal(b"T%d;" % _rtc[0])


def data_uart_id() -> int:
    """The UART id the board's data link uses (the sim's ``uart`` PTY)."""
    return board().get("data_uart", {}).get("id", 1)


def _open_fds() -> None:
    # Called by _simboot while the host file system is still at "/".
    global _ctl, _uart
    os.getenv("OVPNKX_SHIM:rtc=%d" % _rtc[0])  # mbedTLS's time() reads the RTC
    ctl = _config.get("ctl_fd")
    if ctl is not None:
        _ctl = open("/proc/self/fd/%d" % ctl, "wb")
    path = _config.get("uart_dev")
    if path:
        _uart = open(path, "r+b")
        try:
            import termios

            fd = _uart.fileno()
            termios.setraw(fd)
            attrs = termios.tcgetattr(fd)
            cc = attrs[6]
            cc[6] = 0  # VMIN: a read returns what is there
            cc[5] = 0  # VTIME: without waiting
            termios.tcsetattr(fd, termios.TCSANOW, attrs)
        except Exception:
            pass


def _signal(code: bytes) -> None:
    if _ctl is not None:
        _ctl.write(code)
