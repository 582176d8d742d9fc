"""The directive parser, as OpenVPN's options.c: every line through the policy of ``ovpnkx.directives``.

Every directive falls into exactly one class: implemented (parsed and validated here
into a ``ClientConfig``), host-only (nothing to do here; listed in ``cfg.host_only``),
refused (with file, line and reason), or unknown (refused with the nearest known name as
a hint). As in OpenVPN, an unknown directive named by an earlier
``ignore-unknown-option``, given as ``setenv opt NAME …``, or following ``setenv
FORWARD_COMPATIBLE 1`` is only a warning (``cfg.warnings``). Unlike OpenVPN, bad
arguments to a known directive are an error even then: a security directive is never
dropped. A leading UTF-8 byte order mark is skipped. Use ``config.parse_config``.
"""

from . import directives as _dirs
from ._compat import TYPE_CHECKING, is_decimal
from .config import AUTHS, CIPHERS, TLS_VERSIONS, ClientConfig, ConfigError

if TYPE_CHECKING:
    from typing import Any

_PROTOS = {"udp": "udp", "udp4": "udp", "tcp": "tcp", "tcp-client": "tcp", "tcp4": "tcp",
           "tcp4-client": "tcp", "tcp-server": "tcp", "tcp4-server": "tcp"}
# the blocks that can be inline, and the PEM marker each must hold (None: checked elsewhere)
_BLOBS = {"ca": "-----BEGIN", "cert": "-----BEGIN", "key": "-----BEGIN", "extra-certs": "-----BEGIN",
          "dh": "-----BEGIN DH PARAMETERS-----", "tls-auth": "-----BEGIN OpenVPN Static key V1-----",
          "tls-crypt": "-----BEGIN OpenVPN Static key V1-----", "tls-crypt-v2": None,
          "auth-user-pass": None, "peer-fingerprint": None}
_V2_CLIENT = "-----BEGIN OpenVPN tls-crypt-v2 client key-----"
_V2_SERVER = "-----BEGIN OpenVPN tls-crypt-v2 server key-----"
# directive -> (attribute, lowest, highest) for those that take one number
_NUMBERS = {"verb": ("verb", 0, 11), "hand-window": ("hand_window", 1, 3600),
            "tls-timeout": ("tls_timeout", 1, 3600), "ping": ("ping", 0, 86400),
            "ping-restart": ("ping_restart", 0, 86400), "connect-retry-max": ("connect_retry_max", 0, 1 << 30),
            "server-poll-timeout": ("server_poll_timeout", 1, 86400),
            "connect-timeout": ("server_poll_timeout", 1, 86400),
            "reneg-bytes": ("reneg_bytes", 0, 1 << 62), "reneg-pkts": ("reneg_pkts", 0, 1 << 62),
            "tran-window": ("tran_window", 1, 86400), "max-clients": ("max_clients", 1, 1 << 24)}
# directives that take no argument -> attribute set to True
_FLAGS = {"remote-random": "remote_random", "duplicate-cn": "duplicate_cn", "tls-client": "tls_client",
          "tls-server": "tls_server", "comp-noadapt": "comp_noadapt"}
# a server's own directives, which ServerConfig.server_directive parses (in one string: a
# board, which parses client configs only, interns none of their names)
_SERVER_ONLY = "server push topology connect-freq-initial verify-client-cert".split()
# pushed options the client applies (push.py and the parts built on it): a pull-filter on them
# would change the session, which ovpnkx does not implement
_APPLIED_PUSHES = ("peer-id", "cipher", "key-derivation", "protocol-flags", "ping", "ping-restart", "comp-lzo",
                   "compress", "explicit-exit-notify", "auth-token", "auth-token-user")


# -- the policy --------------------------------------------------------------------------------

def _in(name: str, names: str) -> bool:
    return (" " + name + " ") in names


def classify(name: str, server: bool) -> tuple:
    """(class, reason) of directive ``name`` in a server or client config.

    class: "implemented", "host-only", "refused" or "unknown".
    """
    if _in(name, _dirs.BOTH) or _in(name, _dirs.SERVER if server else _dirs.CLIENT):
        return "implemented", ""
    if _in(name, _dirs.HOST_ONLY) or not server and _in(name, _dirs.SERVER_HOST_ONLY_IN_CLIENT):
        return "host-only", ""
    if _in(name, _dirs.CLIENT if server else _dirs.SERVER):
        mine, other = ("server", "client") if server else ("client", "server")
        if name in ("client", "pull", "tls-client", "server", "mode", "tls-server"):
            return "refused", "not a %s config (%s makes a %s config)" % (mine, name, other)
        return "refused", "not supported in a %s config (a %s directive)" % (mine, other)
    for reason, names in _dirs.REFUSED:
        if _in(name, names):
            return "refused", reason
    return "unknown", ""


def _distance(a: str, b: str, limit: int) -> int:
    # optimal string alignment distance (a swap of neighbours counts 1), capped at limit + 1
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2 = []  # type: list
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            v = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                v = min(v, prev2[j - 2] + 1)
            cur[j] = v
        prev2, prev = prev, cur
    return prev[len(b)]


def all_names() -> list:
    """Every directive name the policy knows, sorted."""
    text = _dirs.BOTH + _dirs.CLIENT + _dirs.SERVER + _dirs.HOST_ONLY
    for _, names in _dirs.REFUSED:
        text += names
    return sorted(set(text.split()))


def suggest(name: str) -> "str | None":
    """The known directive nearest to ``name`` (a likely typo), or None."""
    limit = 1 if len(name) <= 4 else 2
    best, best_d = None, limit + 1
    for known in all_names():
        d = _distance(name, known, limit)
        if d < best_d:
            best, best_d = known, d
    return best


# -- reading -----------------------------------------------------------------------------------

def _split(line: str) -> list:
    """Split a config line into words as OpenVPN does.

    Double quotes group words and allow backslash escapes; single quotes group words
    literally; outside quotes a backslash escapes the next character; ``#`` or ``;``
    starting a word begins a comment.
    """
    words, cur, started = [], "", False
    quote = None  # type: str | None
    i = 0
    while i < len(line):
        ch = line[i]
        i += 1
        if quote == "'":
            if ch == "'":
                quote = None
            else:
                cur += ch
            continue
        if ch == "\\" and i < len(line):
            cur += line[i]
            i += 1
            started = True
        elif ch == '"':
            quote = None if quote else '"'
            started = True
        elif quote:
            cur += ch
        elif ch == "'":
            quote = "'"
            started = True
        elif ch in " \t\r":
            if started:
                words.append(cur)
                cur, started = "", False
        elif ch in "#;" and not started:
            break
        else:
            cur += ch
            started = True
    if quote:
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
    text = words[index] if index < len(words) else ""
    if not is_decimal(text[1:] if text[:1] == "-" else text):
        raise ValueError("%s needs a number" % words[0])
    n = int(text)
    if not low <= n <= high:
        raise ValueError("%s %d is out of range %d..%d" % (words[0], n, low, high))
    return n


def _args(words: list, low: int, high: int) -> None:
    n = len(words) - 1
    if n < low or n > high:
        if low == high:
            want = "no argument" if low == 0 else ("%d argument%s" % (low, "s" if low > 1 else ""))
        else:
            want = "%d to %d arguments" % (low, high)
        raise ValueError("%s takes %s, not %d" % (words[0], want, n))


def config_defaults(cfg: ClientConfig, name: str, server: bool) -> None:
    """A new config's values before its directives: OpenVPN 2.6's defaults
    (``ClientConfig.__init__``, whose class says what each is; here, with the parser, so
    that a board does not keep this code)."""
    cfg.name = name
    cfg.server = server
    cfg.p2mp = False
    cfg.tls_client = False
    cfg.tls_server = False
    cfg.local = "127.0.0.1"
    cfg.remotes = []
    cfg.port = 1194
    cfg.proto = "udp"
    cfg.ca = None
    cfg.cert = None
    cfg.key = None
    cfg.extra_certs = None
    cfg.tls_auth = None
    cfg.key_direction = None
    cfg.tls_crypt = None
    cfg.tls_crypt_v2 = None
    cfg.auth = "SHA1"
    cfg.data_ciphers = list(CIPHERS[:3])
    cfg.optional_ciphers = ["CHACHA20-POLY1305"]
    cfg.cipher = None
    cfg.remote_cert_tls = None
    cfg.remote_cert_ku = None
    cfg.remote_cert_eku = None
    cfg.verify_x509_name = None
    cfg.peer_fingerprints = []
    cfg.tls_version_min = None
    cfg.tls_version_min_or_highest = False
    cfg.tls_version_max = None
    cfg.tls_cipher = None
    cfg.tls_ciphersuites = None
    cfg.verb = 1
    cfg.hand_window = 60
    cfg.tls_timeout = 2
    cfg.ping = 0
    cfg.ping_restart = 0
    cfg.username = None
    cfg.password = None
    cfg.comp_lzo = None
    cfg.compress = None
    cfg.allow_compression = "no"
    cfg.comp_noadapt = False
    cfg.pull_filters = []
    cfg.remote_random = False
    cfg.connect_retry = (1, 300)
    cfg.connect_retry_max = 0
    cfg.server_poll_timeout = 120
    cfg.explicit_exit_notify = 0
    cfg.reneg_sec = 3600
    cfg.reneg_sec_min = None
    cfg.reneg_bytes = 0
    cfg.reneg_pkts = 0
    cfg.tran_window = 3600
    cfg.replay_window = (64, 15)
    cfg.host_only = []
    cfg.warnings = []
    cfg.notes = []
    cfg.lines = {}
    cfg.ignore_unknown = []
    cfg.forward_compatible = False


def parse(text: str, name: str, read_file: "Any", server: bool) -> ClientConfig:
    """Parse config text into a ClientConfig (ConfigError naming file, line and reason)."""
    if server:  # host-only: a board parses client configs only
        from .serverconfig import ServerConfig

        cfg = ServerConfig(name)  # type: ClientConfig
    else:
        cfg = ClientConfig(name)
    if text[:1] == "\ufeff":  # a UTF-8 byte order mark, as some editors write
        text = text[1:]
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        lineno = i + 1
        line = lines[i].strip()
        i += 1
        if not line or line[0] in "#;":
            continue
        try:
            body = None
            if line.startswith("<") and line.endswith(">") and not line.startswith("</"):
                tag = line[1:-1]
                parts = []
                while i < len(lines) and lines[i].strip() != "</%s>" % tag:
                    parts.append(lines[i])
                    i += 1
                if i >= len(lines):
                    raise ValueError("<%s> is not closed by </%s>" % (tag, tag))
                i += 1
                body = "\n".join(parts) + "\n"
                words = [tag, "[inline]"]
            else:
                words = _split(line)
                if not words:
                    continue
            _apply(cfg, words, body, read_file, lineno)
        except ValueError as exc:
            raise ConfigError("%s:%d: %s" % (name, lineno, exc))
        except OSError as exc:
            raise ConfigError("%s:%d: cannot read file: %s" % (name, lineno, _os_reason(exc)))
    _check(cfg)
    return cfg


def _name_like(word: str) -> bool:
    """True for what could be a directive's name (lower-case letters, digits, '-', '_')."""
    if not 0 < len(word) <= 40:
        return False
    for c in word:
        if not ("a" <= c <= "z" or "0" <= c <= "9" or c in "-_"):
            return False
    return True


def _apply(cfg: ClientConfig, words: list, body: "str | None", read_file: "Any", lineno: int) -> None:
    """Run one directive through the policy; ValueError says why it is refused."""
    soft = cfg.forward_compatible
    if words[0].startswith("--") and len(words[0]) > 2:
        words[0] = words[0][2:]  # openvpn takes "--remote" in a file too
    if words[0] == "setenv" and len(words) > 1 and words[1] == "opt":
        words = words[2:]  # "setenv opt X …": X, but unknown is only a warning
        if not words:
            raise ValueError("setenv opt needs a directive")
        soft = True
    d = words[0]
    kind, reason = classify(d, cfg.server)
    if kind == "unknown" and not _name_like(d):
        # a stray line of a key or certificate (outside its block) must not reach a log
        raise ValueError("not a directive (a line of key or certificate data outside its <block>?); "
                         "the line is not shown")
    if kind == "unknown":
        if soft or d in cfg.ignore_unknown:
            if d in cfg.ignore_unknown:
                why = "ignore-unknown-option"
            else:
                why = "setenv FORWARD_COMPATIBLE 1" if cfg.forward_compatible else "setenv opt"
            cfg.warnings.append("%s:%d: %s: unknown directive, ignored (%s)" % (cfg.name, lineno, d, why))
            return
        hint = suggest(d)
        raise ValueError("%s: unknown directive%s" % (d, " (did you mean %s?)" % hint if hint else ""))
    if kind == "refused":
        raise ValueError("%s: refused: %s" % (d, reason))
    cfg.lines[d] = lineno
    if kind == "host-only":
        if d not in cfg.host_only:
            cfg.host_only.append(d)
        return
    if body is not None and d not in _BLOBS:
        raise ValueError("%s cannot be an inline block" % d)
    _directive(cfg, words, body, read_file)


def _blob(cfg: ClientConfig, words: list, body: "str | None", read_file: "Any") -> str:
    """The text of a file-or-inline directive."""
    d = words[0]
    if body is not None:
        return body
    if len(words) < 2:
        raise ValueError("%s needs a file name" % d)
    if words[1] == "[inline]":  # the block follows, or came before: nothing to read now
        return ""
    if read_file is None:
        raise ValueError("%s refers to a file, but files cannot be read here" % d)
    try:
        return read_file(words[1])
    except OSError as exc:
        raise ValueError("cannot read %s file %s: %s" % (d, words[1], _os_reason(exc)))


def _set_blob(cfg: ClientConfig, d: str, text: str) -> None:
    if not text:
        return
    if d in ("tls-crypt", "tls-crypt-v2"):
        _check_key(cfg, d, text)  # the key parsers say which key a wrong file holds
    marker = _BLOBS[d]
    if d == "tls-crypt-v2":
        marker = _V2_SERVER if cfg.server else _V2_CLIENT
    if marker is not None and marker not in text:
        if marker.startswith("-----BEGIN OpenVPN Static"):
            raise ValueError("%s is not an OpenVPN static key" % d)
        if d == "tls-crypt-v2":
            raise ValueError("tls-crypt-v2 is not an OpenVPN tls-crypt-v2 %s key" % ("server" if cfg.server else "client"))
        raise ValueError("%s is not PEM" % d if d != "dh" else "dh is not PEM DH parameters")
    if d == "auth-user-pass":
        parts = text.strip().split("\n")
        if len(parts) < 2:
            raise ValueError("auth-user-pass needs a username line and a password line")
        cfg.username, cfg.password = parts[0].strip(), parts[1].strip()
    elif d == "peer-fingerprint":
        for line in text.split("\n"):
            line = line.strip()
            if line and line[0] not in "#;":
                cfg.peer_fingerprints.append(parse_fingerprint(line))
    else:
        setattr(cfg, d.replace("-", "_"), text)


def _check_key(cfg: ClientConfig, d: str, text: str) -> None:
    """A tls-crypt / tls-crypt-v2 key that will not load is a config error of this line."""
    from .errors import LocalProtocolError

    try:
        if d == "tls-crypt":
            from .wrapconfig import parse_static_key

            parse_static_key(text)
        elif cfg.server:
            from .tlscrypt_server import parse_v2_server_key

            parse_v2_server_key(text)
        else:
            from .tlscrypt import parse_v2_client_key

            parse_v2_client_key(text)
    except LocalProtocolError as exc:
        raise ValueError(str(exc) if str(exc).startswith(d) else "%s: %s" % (d, exc))
    except ImportError:
        pass  # a build without tls-crypt: the capability check says so


def _directive(cfg: ClientConfig, words: list, body: "str | None", read_file: "Any") -> None:
    d = words[0]
    if d in _BLOBS and d != "peer-fingerprint" and not (d == "dh" and len(words) == 2 and words[1] == "none"):
        if d == "auth-user-pass" and len(words) == 1:
            raise ValueError("auth-user-pass needs a file or an <auth-user-pass> block (ovpnkx cannot prompt)")
        if d == "tls-auth" and len(words) > 2 and body is None:
            cfg.key_direction = _number(words, 2, 0, 1)
        if d == "tls-crypt-v2" and len(words) > 2 and body is None:
            if not cfg.server:
                raise ValueError("tls-crypt-v2 takes a key file")
            cfg.server_directive(words)  # its force-cookie or allow-noncookie
        elif body is None:
            if len(words) < 2:
                raise ValueError("%s needs a file name" % d)
            if d == "tls-crypt" and len(words) > 2:
                raise ValueError("tls-crypt takes a key file only (no key-direction)")
            _args(words, 1, 2 if d == "tls-auth" else 1)
        _set_blob(cfg, d, _blob(cfg, words, body, read_file))
    elif d == "dh":
        cfg.dh = "none"
    elif d == "peer-fingerprint":
        if body is not None:
            _set_blob(cfg, d, body)
        else:
            _args(words, 1, 1)
            if words[1] != "[inline]":
                cfg.peer_fingerprints.append(parse_fingerprint(words[1]))
    elif d in ("client", "pull"):
        _args(words, 0, 0)
        cfg.p2mp = True
        cfg.tls_client = True
    elif d in _FLAGS:
        _args(words, 0, 0)
        setattr(cfg, _FLAGS[d], True)
    elif d == "mode":
        _args(words, 1, 1)
        if words[1] not in ("server", "p2p"):
            raise ValueError("mode takes server or p2p")
        if words[1] == "server":
            cfg.p2mp = cfg.tls_server = True
    elif d == "local":
        _args(words, 1, 1)
        cfg.local = words[1]
    elif cfg.server and d in _SERVER_ONLY:  # host-only: ServerConfig parses these (a board never loads it)
        cfg.server_directive(words)
    elif d == "remote":
        if len(words) < 2:
            raise ValueError("remote needs a host")
        _args(words, 1, 3)
        port = _number(words, 2, 1, 65535) if len(words) > 2 else None
        proto = None
        if len(words) > 3:
            if words[3] not in _PROTOS:
                raise ValueError("unsupported proto %r" % words[3])
            proto = _PROTOS[words[3]]
        cfg.remotes.append((words[1], port, proto))
    elif d in ("port", "rport", "lport"):
        _args(words, 1, 1)
        cfg.port = _number(words, 1, 0 if cfg.server else 1, 65535)  # a server may take any free port
    elif d == "proto":
        if len(words) < 2 or words[1] not in _PROTOS:
            raise ValueError("unsupported proto %r (use udp, udp4, tcp or tcp-client)"
                             % (words[1] if len(words) > 1 else ""))
        _args(words, 1, 1)
        cfg.proto = _PROTOS[words[1]]
    elif d == "key-direction":
        _args(words, 1, 1)
        cfg.key_direction = _number(words, 1, 0, 1)
    elif d == "auth":
        if len(words) < 2 or words[1].upper() not in AUTHS:
            what = (words[1:2] or [""])[0]
            if what.lower() == "none":
                raise ValueError("auth none: refused: ovpnkx always authenticates packets")
            raise ValueError("unsupported auth %r (use SHA1, SHA256, SHA384 or SHA512)" % what)
        _args(words, 1, 1)
        cfg.auth = words[1].upper()
    elif d in ("data-ciphers", "ncp-ciphers"):
        _args(words, 1, 1)
        _data_ciphers(cfg, words[1])
    elif d in ("cipher", "data-ciphers-fallback"):
        _args(words, 1, 1)
        c = words[1].upper()
        if c == "NONE":
            raise ValueError("%s none: refused: ovpnkx does not send data unencrypted" % d)
        if c not in CIPHERS:
            raise ValueError("unsupported cipher %r (ovpnkx has %s)" % (words[1], ", ".join(CIPHERS)))
        cfg.cipher = c
    elif d == "remote-cert-tls":
        if len(words) != 2 or words[1] not in ("server", "client"):
            raise ValueError("remote-cert-tls takes server or client")
        from .certinfo import KU_REQUIRED, REMOTE_CERT_TLS

        cfg.remote_cert_tls = words[1]
        cfg.remote_cert_ku = KU_REQUIRED
        cfg.remote_cert_eku = REMOTE_CERT_TLS[words[1]]
    elif d == "remote-cert-ku":
        from .certinfo import KU_REQUIRED

        values = []
        for w in words[1:]:
            try:
                v = int(w, 16)
            except ValueError:
                raise ValueError("remote-cert-ku takes hex key usage values, not %r" % w)
            if not 0 < v <= 0xFFFF:
                raise ValueError("remote-cert-ku value %r is out of range" % w)
            values.append(v)
        cfg.remote_cert_ku = values or KU_REQUIRED
    elif d == "remote-cert-eku":
        _args(words, 1, 1)
        cfg.remote_cert_eku = words[1]
    elif d == "verify-x509-name":
        _args(words, 1, 2)
        kind = words[2] if len(words) > 2 else "subject"
        if kind not in ("subject", "name", "name-prefix"):
            raise ValueError("unknown X.509 name type %r (use subject, name or name-prefix)" % kind)
        if not words[1]:
            raise ValueError("verify-x509-name needs a name")
        cfg.verify_x509_name = (words[1], kind)
    elif d in ("tls-version-min", "tls-version-max"):
        _args(words, 1, 2 if d == "tls-version-min" else 1)
        if words[1] not in TLS_VERSIONS:
            raise ValueError("%s takes 1.0, 1.1, 1.2 or 1.3, not %r" % (d, words[1]))
        if d == "tls-version-max":
            cfg.tls_version_max = words[1]
        else:
            if len(words) > 2 and words[2] != "or-highest":
                raise ValueError("tls-version-min takes a version and optionally or-highest")
            cfg.tls_version_min = words[1]
            cfg.tls_version_min_or_highest = len(words) > 2
    elif d in ("tls-cipher", "tls-ciphersuites"):
        _args(words, 1, 1)
        setattr(cfg, d.replace("-", "_"), words[1])
    elif d in _NUMBERS:
        _args(words, 1, 1)
        attr, low, high = _NUMBERS[d]
        setattr(cfg, attr, _number(words, 1, low, high))
    elif d == "keepalive":
        _args(words, 2, 2)
        ping, restart = _number(words, 1, 1, 86400), _number(words, 2, 1, 86400)
        if restart < 2 * ping:
            raise ValueError("keepalive %d %d: the restart timeout must be at least twice the ping interval"
                             % (ping, restart))
        cfg.ping, cfg.ping_restart = ping, restart
    elif d == "comp-lzo":
        _args(words, 0, 1)
        mode = words[1] if len(words) > 1 else "adaptive"
        if mode not in ("no", "yes", "adaptive"):
            raise ValueError("bad comp-lzo option %r (must be yes, no or adaptive)" % mode)
        if mode != "no":
            raise ValueError("comp-lzo %s: refused: ovpnkx does not implement LZO compression; use comp-lzo no "
                             "(the server must not compress either)" % mode)
        cfg.comp_lzo = mode
    elif d == "compress":
        _args(words, 0, 1)
        alg = words[1] if len(words) > 1 else ""
        if alg in ("lzo", "lz4", "lz4-v2"):
            raise ValueError("compress %s: refused: ovpnkx does not implement compression; use compress stub-v2 "
                             "(or plain compress, the stub)" % alg)
        if alg not in ("", "stub", "stub-v2"):
            raise ValueError("bad compress option %r" % alg)
        cfg.compress = alg
    elif d == "allow-compression":
        _args(words, 1, 1)
        if words[1] not in ("no", "asym", "yes"):
            raise ValueError("bad allow-compression option %r (must be yes, no or asym)" % words[1])
        if words[1] != "no":
            # allowing it would have to mean decompressing: there is no LZO/LZ4 here
            raise ValueError("allow-compression %s: refused: ovpnkx has no decompressor (LZO, LZ4); only the "
                             "compression stubs work, which allow-compression no permits" % words[1])
        cfg.allow_compression = words[1]
    elif d == "explicit-exit-notify":
        _args(words, 0, 1)
        cfg.explicit_exit_notify = _number(words, 1, 0, 255) if len(words) > 1 else 1
    elif d == "reneg-sec":
        _args(words, 1, 2)
        cfg.reneg_sec = _number(words, 1, 0, 1 << 30)
        cfg.reneg_sec_min = _number(words, 2, 0, cfg.reneg_sec) if len(words) > 2 else None
    elif d == "replay-window":
        _args(words, 1, 2)
        cfg.replay_window = (_number(words, 1, 0, 65536),
                             _number(words, 2, 0, 600) if len(words) > 2 else 15)
    elif d == "connect-retry":
        _args(words, 1, 2)
        first = _number(words, 1, 0, 1 << 20)
        cfg.connect_retry = (first, _number(words, 2, first, 1 << 20) if len(words) > 2 else max(first, 300))
    elif d == "pull-filter":
        _args(words, 2, 2)
        action, text = words[1], " ".join(words[2].split())
        if action not in ("accept", "ignore", "reject"):
            raise ValueError("pull-filter takes accept, ignore or reject and a text")
        if action == "reject":
            raise ValueError("pull-filter reject: refused: ovpnkx does not implement rejecting pushed options")
        for name in _APPLIED_PUSHES:
            if action == "ignore" and (name.startswith(text) or (text + " ").startswith(name + " ")):
                raise ValueError("pull-filter ignore %r: refused: it would filter the pushed %s, which ovpnkx "
                                 "applies; not implemented" % (text, name))
        cfg.pull_filters.append((action, text))  # routes, DNS, addresses: not applied here anyway
    elif d == "ignore-unknown-option":
        if len(words) < 2:
            raise ValueError("ignore-unknown-option needs a directive name")
        for w in words[1:]:
            cfg.ignore_unknown.append(w[2:] if w.startswith("--") else w)
    elif d == "setenv":
        # setenv NAME VALUE: the environment of scripts (host-only); FORWARD_COMPATIBLE 1 as openvpn
        _args(words, 1, 2)
        if words[1] == "FORWARD_COMPATIBLE" and len(words) > 2 and words[2] == "1":
            cfg.forward_compatible = True
        elif "setenv" not in cfg.host_only:
            cfg.host_only.append("setenv")
    else:  # a name in an implemented class without a branch here is a bug of this module
        raise ValueError("%s: accepted by the policy but not handled (a bug in ovpnkx.config)" % d)


def _data_ciphers(cfg: ClientConfig, text: str) -> None:
    names, optional = [], []
    for token in text.split(":"):
        opt = token.startswith("?")
        c = token[1:].upper() if opt else token.upper()
        if not c:
            continue
        if c == "NONE":
            raise ValueError("data-ciphers none: refused: ovpnkx does not send data unencrypted")
        if c not in CIPHERS:
            if opt:
                continue  # openvpn drops an unknown optional cipher
            raise ValueError("unsupported cipher %s in data-ciphers (ovpnkx has %s; prefix ? to make a cipher "
                             "optional)" % (c, ", ".join(CIPHERS)))
        if c not in names:
            names.append(c)
            if opt:
                optional.append(c)
    if not names:
        raise ValueError("data-ciphers names no cipher ovpnkx has (%s)" % ", ".join(CIPHERS))
    cfg.data_ciphers, cfg.optional_ciphers = names, optional


def _check(cfg: ClientConfig) -> None:
    where = cfg.name + ": "
    if cfg.server:
        if not cfg.tls_server:
            raise ConfigError(where + "not a server config (needs server, mode server or tls-server)")
    else:
        if not cfg.tls_client:
            raise ConfigError(where + "not a client config (needs client or tls-client)")
        if not cfg.remotes:
            raise ConfigError(where + "no remote")
        cfg.remotes = [(h, p or cfg.port, pr or cfg.proto) for h, p, pr in cfg.remotes]
    for what in ("ca", "cert", "key"):
        if getattr(cfg, what) is None and not (what == "ca" and cfg.peer_fingerprints):
            raise ConfigError(where + "missing %s (a '%s FILE' line or a <%s> block%s)" % (
                what, what, what, ", or peer-fingerprint" if what == "ca" else ""))
    v = TLS_VERSIONS
    if cfg.tls_version_min and cfg.tls_version_max and v.index(cfg.tls_version_min) > v.index(cfg.tls_version_max):
        raise ConfigError("%s: tls-version-min %s is above tls-version-max %s" % (
            cfg.where("tls-version-min"), cfg.tls_version_min, cfg.tls_version_max))
    if cfg.tls_crypt is not None and (cfg.tls_auth is not None or cfg.tls_crypt_v2 is not None) \
            or cfg.tls_auth is not None and cfg.tls_crypt_v2 is not None:
        raise ConfigError(where + "tls-auth, tls-crypt and tls-crypt-v2 exclude each other: give one")
    if cfg.server and cfg.dh not in (None, "none"):
        cfg.notes.append("%s: dh: ovpnkx serve offers ECDHE key exchange only, so the DH parameters are not "
                         "used (openvpn 2.4+ clients all negotiate ECDHE)" % cfg.where("dh"))
    if cfg.extra_certs:
        cfg.cert = str(cfg.cert).rstrip("\n") + "\n" + cfg.extra_certs  # our chain, as one PEM text
    if cfg.cipher and cfg.cipher not in cfg.data_ciphers:
        cfg.data_ciphers.append(cfg.cipher)  # --cipher is the fallback cipher


def parse_fingerprint(text: str) -> bytes:
    """A SHA-256 fingerprint ``AB:CD:…`` (32 colon-separated hex bytes, any case).

    Raises ValueError naming what is wrong (the config parser adds file and line).
    """
    parts = text.strip().split(":")
    if len(parts) != 32 or any(len(p) != 2 for p in parts):
        raise ValueError("peer-fingerprint %r is not a SHA-256 fingerprint (32 hex bytes separated by ':')"
                         % text.strip()[:100])
    try:
        return bytes(int(p, 16) for p in parts)
    except ValueError:
        raise ValueError("peer-fingerprint %r is not hex" % text.strip()[:100])
