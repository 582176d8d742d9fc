"""Host side of ovpnkx: the CPython peer, the `ovpnkx` command and its tools."""
