"""The ``server`` helper's address pool: which ``ifconfig`` each client is pushed.

As openvpn 2.6 expands ``server NETWORK NETMASK`` for ``dev tun`` (helper.c,
pool.c, multi.c):

- ``topology subnet``: the server is NETWORK+1; the pool runs from NETWORK+2 to
  the broadcast address - 1, one address per client; pushed ``route-gateway
  NETWORK+1``, ``topology subnet`` and ``ifconfig ADDRESS NETMASK``.
- ``topology net30`` (2.6's default) and ``p2p``: the server is NETWORK+1 /
  NETWORK+2; the pool runs from NETWORK+4 to the broadcast address - 4 (- 0 for
  a /29), one /30 per client (``net30``: ``ifconfig b+2 b+1`` and ``route
  NETWORK+1``) or one address per client (``p2p``: ``ifconfig ADDRESS
  NETWORK+1``).

ovpnkx never configures an interface or sends anything to these addresses:
they are only told to the client, as a client expects.
"""


def _ip(n: int) -> str:
    return "%d.%d.%d.%d" % (n >> 24 & 255, n >> 16 & 255, n >> 8 & 255, n & 255)


def _parse(text: str) -> int:
    a, b, c, d = (int(x) for x in text.split("."))
    return a << 24 | b << 16 | c << 8 | d


class IfconfigPool:
    """Addresses of one ``server`` directive: ``size`` entries, ``ifconfig(i)`` for entry i."""

    def __init__(self, network: str, netmask: str, topology: str) -> None:
        self.network = _parse(network)
        self.netmask = _parse(netmask)
        self.topology = topology
        broadcast = self.network | (~self.netmask & 0xFFFFFFFF)
        server = self.network + 1
        if topology == "subnet":
            self.base, self.step = self.network + 2, 1
            self.size = broadcast - 1 - self.base + 1
            self.push = ["route-gateway %s" % _ip(server), "topology subnet"]
        else:
            reserve = 0 if broadcast - self.network == 7 else 4  # a /29 keeps no reserve
            start, end = self.network + 4, broadcast - reserve
            if topology == "net30":
                self.base, self.step = start & ~3, 4
                self.size = (((end | 3) + 1) - self.base) >> 2
                self.push = ["route %s" % _ip(server), "topology net30"]
            else:  # p2p
                self.base, self.step = start, 1
                self.size = end - start + 1
                self.push = ["topology p2p"]

    def ifconfig(self, index: int) -> str:
        """The ``ifconfig`` option pushed to the client holding entry ``index``."""
        if not 0 <= index < self.size:
            raise IndexError("pool entry %d of %d" % (index, self.size))
        if self.topology == "subnet":
            return "ifconfig %s %s" % (_ip(self.base + index), _ip(self.netmask))
        if self.topology == "net30":
            b = self.base + 4 * index
            return "ifconfig %s %s" % (_ip(b + 2), _ip(b + 1))
        return "ifconfig %s %s" % (_ip(self.base + index), _ip(self.network + 1))

    def address(self, index: int) -> str:
        """The client's own address for entry ``index``."""
        return self.ifconfig(index).split()[1]
