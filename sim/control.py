"""Client of a running sim's control socket (a Unix stream socket, one JSON object per line).

Requests and replies (see sim/README.md):
  {"cmd": "link", "dir": "both"|"to_host"|"to_board", "drop": P, "dup": P,
   "corrupt": P, "baud": N, "latency_ms": MS, "seed": N}   -> {"ok": true, "link": {...}}
  {"cmd": "stats"}                     -> {"ok": true, "link": {...}, "stats": {...}, "boots": N}
  {"cmd": "reset", "kind": "hard"}     -> {"ok": true}
  {"cmd": "stop"}                      -> {"ok": true}
Errors: {"ok": false, "error": "..."}.
"""

import json
import socket


def request(path: str, cmd: dict, timeout: float = 5.0) -> dict:
    """Send one command to the sim's control socket at ``path``; return its reply."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(json.dumps(cmd).encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    return json.loads(buf.decode())
