"""Reading a standard OpenVPN client config (``.ovpn``) on both runtimes.

Supported: ``client``, ``pull``, ``tls-client``, ``remote HOST [PORT [PROTO]]``,
``port``, ``proto udp|udp4|tcp|tcp-client|tcp4|tcp4-client``, ``ca``/``cert``/``key``
and ``tls-auth FILE [DIR]`` as files or inline ``<ca>…</ca>`` blocks,
``key-direction``, ``auth``, ``data-ciphers``, ``cipher``, ``remote-cert-tls``,
``verb``, ``hand-window``, ``tls-timeout``, ``ping``, ``ping-restart``,
``keepalive``, ``auth-user-pass`` (inline block or file). Anything else is
collected in ``ignored`` so the caller can print one warning. A broken config
raises ``ConfigError`` naming the file, the line and the reason.

File access is injected (``read_file(path) -> str``): the core opens nothing.
"""

from ._compat import TYPE_CHECKING
from .errors import LocalProtocolError

if TYPE_CHECKING:
    from typing import Any

_INLINE = ("ca", "cert", "key", "tls-auth", "auth-user-pass")
_PROTOS = {"udp": "udp", "udp4": "udp", "tcp": "tcp", "tcp-client": "tcp", "tcp4": "tcp",
           "tcp4-client": "tcp", "tcp-server": "tcp", "tcp4-server": "tcp"}
_AUTHS = ("SHA1", "SHA256", "SHA512")
# directives that take one number: attribute, lowest, highest
_NUMBERS = {"verb": ("verb", 0, 11), "hand-window": ("hand_window", 1, 3600),
            "tls-timeout": ("tls_timeout", 1, 3600), "ping": ("ping", 0, 86400),
            "ping-restart": ("ping_restart", 0, 86400)}


class ConfigError(LocalProtocolError):
    """A config that cannot be used; the message says file, line and why."""


class ClientConfig:
    """A parsed client (or, with ``server=True``, server) config: PEM texts, not paths."""

    def __init__(self, name: str, server: bool = False) -> None:
        self.name = name
        self.server = server
        self.p2mp = False  # set by client/pull (server: by server/mode server)
        self.tls_client = False
        self.tls_server = False
        self.local = "127.0.0.1"
        self.push = []  # type: list
        self.remotes = []  # type: list  # (host, port, proto)
        self.port = 1194
        self.proto = "udp"
        self.ca = None  # type: str | None
        self.cert = None  # type: str | None
        self.key = None  # type: str | None
        self.tls_auth = None  # type: str | None
        self.key_direction = None  # type: int | None
        self.auth = "SHA1"
        self.data_ciphers = ["AES-256-GCM", "AES-128-GCM", "CHACHA20-POLY1305"]
        self.cipher = None  # type: str | None
        self.remote_cert_tls = None  # type: str | None
        self.verb = 1
        self.hand_window = 60
        self.tls_timeout = 2
        self.ping = 0
        self.ping_restart = 0
        self.username = None  # type: str | None
        self.password = None  # type: str | None
        # server only: the ``server`` helper's pool, and the limits of a p2mp server
        self.server_network = None  # type: str | None  # dotted quad, e.g. "10.8.0.0"
        self.server_netmask = None  # type: str | None
        self.server_nopool = False
        self.topology = "net30"  # openvpn 2.6's default
        self.max_clients = 1024
        self.duplicate_cn = False
        self.connect_freq_initial = (100, 10)  # (n, s): stateless replies per period
        self.ignored = []  # type: list  # (line, directive)

    @property
    def remote(self) -> tuple:
        """The first remote as (host, port, proto)."""
        return self.remotes[0]


def _split(line: str) -> list:
    """Split a config line into words, honouring double quotes."""
    words, cur, quoted, started = [], "", False, False
    for ch in line:
        if ch == '"':
            quoted = not quoted
            started = True
        elif ch in " \t" and not quoted:
            if started:
                words.append(cur)
                cur, started = "", False
        else:
            cur += ch
            started = True
    if quoted:
        raise ValueError("unterminated quote")
    if started:
        words.append(cur)
    return words


def _os_reason(exc: OSError) -> str:
    """The OS's words for a failed read (MicroPython's OSError has only the errno)."""
    reason = getattr(exc, "strerror", None)
    if reason:
        return reason
    errno = exc.args[0] if exc.args else 0
    return {2: "No such file or directory", 13: "Permission denied", 21: "Is a directory"}.get(errno, str(exc))


def _number(words: list, index: int, low: int, high: int) -> int:
    try:
        n = int(words[index])
    except (IndexError, ValueError):
        raise ValueError("%s needs a number" % words[0])
    if not low <= n <= high:
        raise ValueError("%s %d is out of range %d..%d" % (words[0], n, low, high))
    return n


def _ipv4(text: str, what: str) -> int:
    parts = text.split(".")
    if len(parts) != 4 or not all(p.isdigit() and int(p) < 256 for p in parts):
        raise ValueError("%s %r is not an IPv4 address" % (what, text))
    n = 0
    for p in parts:
        n = (n << 8) | int(p)
    return n


def _netbits(mask: int) -> "int | None":
    """Prefix length of a contiguous netmask, None if it is not one."""
    bits = 0
    while bits < 32 and mask & (1 << (31 - bits)):
        bits += 1
    return bits if mask == (0xFFFFFFFF << (32 - bits)) & 0xFFFFFFFF else None


def parse_config(text: str, name: str = "<config>", read_file: "Any" = None,
                 server: bool = False) -> ClientConfig:
    """Parse ``.ovpn`` text. ``read_file(path) -> str`` loads referenced files."""
    cfg = ClientConfig(name, server)
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        lineno = i + 1
        line = lines[i].strip()
        i += 1
        if not line or line[0] in "#;":
            continue
        try:
            if line.startswith("<") and line.endswith(">") and not line.startswith("</"):
                tag = line[1:-1]
                if tag not in _INLINE:
                    raise ValueError("inline block <%s> is not supported" % tag)
                body = []
                while i < len(lines) and lines[i].strip() != "</%s>" % tag:
                    body.append(lines[i])
                    i += 1
                if i >= len(lines):
                    raise ValueError("<%s> is not closed by </%s>" % (tag, tag))
                i += 1
                _set_blob(cfg, tag, "\n".join(body) + "\n")
                continue
            _directive(cfg, _split(line), read_file)
        except ValueError as exc:
            raise ConfigError("%s:%d: %s" % (name, lineno, exc))
        except OSError as exc:
            raise ConfigError("%s:%d: cannot read file: %s" % (name, lineno, exc))
    _check(cfg)
    return cfg


def _set_blob(cfg: ClientConfig, tag: str, body: str) -> None:
    if tag == "auth-user-pass":
        parts = body.strip().split("\n")
        if len(parts) < 2:
            raise ValueError("auth-user-pass needs a username line and a password line")
        cfg.username, cfg.password = parts[0].strip(), parts[1].strip()
        return
    if tag == "tls-auth":
        if "-----BEGIN OpenVPN Static key V1-----" not in body:
            raise ValueError("tls-auth is not an OpenVPN static key")
    elif "-----BEGIN" not in body:
        raise ValueError("%s is not PEM" % tag)
    setattr(cfg, tag.replace("-", "_"), body)


def _directive(cfg: ClientConfig, words: list, read_file: "Any") -> None:
    d = words[0]
    if d in ("client", "pull"):
        cfg.p2mp = True
        cfg.tls_client = True
    elif d == "tls-client":
        cfg.tls_client = True
    elif cfg.server and d == "server":
        if len(words) not in (3, 4) or len(words) == 4 and words[3] != "nopool":
            raise ValueError("server takes NETWORK NETMASK ['nopool'], e.g. server 10.8.0.0 255.255.255.0")
        network, netmask = _ipv4(words[1], "server network"), _ipv4(words[2], "server netmask")
        bits = _netbits(netmask)
        if bits is None or network & ~netmask & 0xFFFFFFFF:
            raise ValueError("server directive network/netmask combination is invalid: %s %s" % (words[1], words[2]))
        if not 16 <= bits <= 29:
            raise ValueError("server netmask /%d: the pool needs a subnet between /16 and /29" % bits)
        cfg.server_network, cfg.server_netmask = words[1], words[2]
        cfg.server_nopool = len(words) == 4
        cfg.p2mp = True
        cfg.tls_server = True
    elif cfg.server and d == "mode":
        if len(words) != 2 or words[1] != "server":
            raise ValueError("mode %s: ovpnkx serve is a p2mp server (mode server)" % " ".join(words[1:]))
        cfg.p2mp = True
        cfg.tls_server = True
    elif cfg.server and d == "topology":
        if len(words) != 2 or words[1] not in ("net30", "p2p", "subnet"):
            raise ValueError("topology takes net30, p2p or subnet")
        cfg.topology = words[1]
    elif cfg.server and d == "max-clients":
        cfg.max_clients = _number(words, 1, 1, 1 << 24)
    elif cfg.server and d == "duplicate-cn":
        cfg.duplicate_cn = True
    elif cfg.server and d == "connect-freq-initial":
        cfg.connect_freq_initial = (_number(words, 1, 1, 1 << 30), _number(words, 2, 1, 86400))
    elif cfg.server and d == "tls-server":
        cfg.tls_server = True
    elif cfg.server and d == "local":
        if len(words) < 2:
            raise ValueError("local needs an address")
        cfg.local = words[1]
    elif cfg.server and d == "push":
        if len(words) != 2:
            raise ValueError('push takes one quoted option, e.g. push "ping 10"')
        cfg.push.append(words[1])
    elif d == "remote":
        if len(words) < 2:
            raise ValueError("remote needs a host")
        port = _number(words, 2, 1, 65535) if len(words) > 2 else None
        proto = None
        if len(words) > 3:
            if words[3] not in _PROTOS:
                raise ValueError("unsupported proto %r" % words[3])
            proto = _PROTOS[words[3]]
        cfg.remotes.append((words[1], port, proto))
    elif d == "port" or d == "rport":
        cfg.port = _number(words, 1, 0 if cfg.server else 1, 65535)  # a server may take any free port
    elif d == "proto":
        if len(words) < 2 or words[1] not in _PROTOS:
            raise ValueError("unsupported proto %r (use udp, udp4, tcp or tcp-client)"
                             % (words[1] if len(words) > 1 else ""))
        cfg.proto = _PROTOS[words[1]]
    elif d in _INLINE:
        if len(words) < 2:
            raise ValueError("%s needs a file name" % d)
        if d == "tls-auth" and len(words) > 2:
            cfg.key_direction = _number(words, 2, 0, 1)
        if words[1] == "[inline]":
            return
        if read_file is None:
            raise ValueError("%s refers to a file, but files cannot be read here" % d)
        try:
            text = read_file(words[1])
        except OSError as exc:
            raise ValueError("cannot read %s file %s: %s" % (d, words[1], _os_reason(exc)))
        _set_blob(cfg, d, text)
    elif d == "key-direction":
        cfg.key_direction = _number(words, 1, 0, 1)
    elif d == "auth":
        if len(words) < 2 or words[1].upper() not in _AUTHS:
            raise ValueError("unsupported auth %r (use SHA1, SHA256 or SHA512)" % (words[1:2] or [""])[0])
        cfg.auth = words[1].upper()
    elif d in ("data-ciphers", "ncp-ciphers"):
        if len(words) < 2:
            raise ValueError("data-ciphers needs a list")
        cfg.data_ciphers = [c.upper() for c in words[1].split(":") if c]
    elif d == "cipher":
        if len(words) < 2:
            raise ValueError("cipher needs a name")
        cfg.cipher = words[1].upper()
    elif d == "remote-cert-tls":
        if len(words) < 2 or words[1] not in ("server", "client"):
            raise ValueError("remote-cert-tls takes server or client")
        cfg.remote_cert_tls = words[1]
    elif d in _NUMBERS:
        attr, low, high = _NUMBERS[d]
        setattr(cfg, attr, _number(words, 1, low, high))
    elif d == "keepalive":
        cfg.ping = _number(words, 1, 1, 86400)
        cfg.ping_restart = _number(words, 2, 1, 86400)
    else:
        cfg.ignored.append(d)


def _check(cfg: ClientConfig) -> None:
    where = cfg.name + ": "
    if cfg.server:
        if not cfg.tls_server:
            raise ConfigError(where + "not a server config (needs server, mode server or tls-server)")
        for what in ("ca", "cert", "key"):
            if getattr(cfg, what) is None:
                raise ConfigError(where + "missing %s (a '%s FILE' line or a <%s> block)" % (what, what, what))
        return
    if not cfg.tls_client:
        raise ConfigError(where + "not a client config (needs client or tls-client)")
    if not cfg.remotes:
        raise ConfigError(where + "no remote")
    cfg.remotes = [(h, p or cfg.port, pr or cfg.proto) for h, p, pr in cfg.remotes]
    for what in ("ca", "cert", "key"):
        if getattr(cfg, what) is None:
            raise ConfigError(where + "missing %s (a '%s FILE' line or a <%s> block)" % (what, what, what))
    if cfg.cipher and cfg.cipher not in cfg.data_ciphers:
        cfg.data_ciphers.append(cfg.cipher)  # --cipher is the fallback cipher
