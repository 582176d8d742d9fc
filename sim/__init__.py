"""ovpnkx_sim: a simulated MicroPython board for ovpnkx.

``ovpnkx sim start --board NAME`` runs the MicroPython unix port as a board: REPL
on a PTY that mpremote drives, a flash folder as its file system, a second serial
port (``uart``) through a lossy link model, loopback sockets as Wi-Fi. See
``sim/README.md``.
"""
