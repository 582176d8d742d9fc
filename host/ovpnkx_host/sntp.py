"""An SNTP server on 127.0.0.1 for simulated Wi-Fi boards, which take their date by NTP
(``"ntp": "127.0.0.1:PORT"`` in ``/ovpnkx.json``): the tests, the HIL suite on the sim
and the board bench answer with this host's clock, and nothing leaves the machine."""

import socket
import struct
import threading
import time

NTP_EPOCH_OFFSET = 2208988800  # 1900-01-01 to 1970-01-01, in seconds


class NtpResponder:
    """Answers SNTP client requests from a daemon thread; ``requests`` counts them."""

    _shared = None

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.requests = 0
        threading.Thread(target=self._serve, name="ntp", daemon=True).start()

    @classmethod
    def shared(cls) -> "NtpResponder":
        """One responder for the whole process (a test run)."""
        if cls._shared is None:
            cls._shared = cls()
        return cls._shared

    @property
    def server(self) -> str:
        """``HOST:PORT`` for the board's ``"ntp"`` setting."""
        return "127.0.0.1:%d" % self.port

    def _serve(self) -> None:
        while True:
            try:
                data, peer = self.sock.recvfrom(512)
            except OSError:
                return  # closed
            if len(data) < 48 or data[0] & 7 != 3:  # not a client request (mode 3)
                continue
            self.requests += 1
            now = time.time() + NTP_EPOCH_OFFSET
            ts = struct.pack("!II", int(now), int((now % 1) * (1 << 32)))
            # LI 0, VN 4, mode 4 (server), stratum 1; origin = the client's transmit time
            self.sock.sendto(b"\x24\x01\x00\xe9" + bytes(20) + data[40:48] + ts + ts, peer)

    def close(self) -> None:
        """Stop answering."""
        self.sock.close()
