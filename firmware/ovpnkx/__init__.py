"""ovpnkx: OpenVPN key method 2, sans-IO, for MicroPython and CPython.

The modules are named as OpenVPN names its layers (packet, reliable, tlswrap,
control, keymethod2, prf, keystate, datachannel, entropy, session). None of them
opens a socket, reads a clock or draws randomness: bytes, time (``now_ms``) and
entropy come in from the caller.
"""

__version__ = "0.1.0"
