"""Bad command lines and configs: exit 2 with one line that names the problem.

Most cases call ``ovpnkx_host.cli.main`` in-process (an uncaught exception fails
the test, so "no traceback" is checked for free); the real entry point is run as
a subprocess for the unimplemented-directives warning, on both runtimes.
"""

import json
import os
import socket
import subprocess
import sys

import pytest

from ovpnkx_host import openvpn as ov
from ovpnkx_host import pki as pkimod
from ovpnkx_host.cli import main

OVPNKX = os.path.join(os.path.dirname(sys.executable), "ovpnkx")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return pkimod.make_pki(str(tmp_path_factory.mktemp("cli-pki")))


def _run(capsys, argv) -> tuple:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def _config(tmp_path, pki, name: str, extra: str = "", port: int = 1194) -> str:
    path = tmp_path / name
    path.write_text(ov.client_config(pki, port, inline=False) + extra)
    return str(path)


def test_connect_without_config(capsys):
    code, _, err = _run(capsys, ["connect"])
    assert code == 2
    line = _one_line(err)
    assert line.startswith("ovpnkx connect: error:") and "--config" in line


@pytest.mark.parametrize("flags,words", [
    (["--pings", "abc"], ["--pings", "invalid int value: 'abc'"]),
    (["--pings", "-1"], ["--pings must be >= 0"]),
    (["--timeout", "soon"], ["--timeout", "'soon'"]),
    (["--runtime", "lua"], ["--runtime", "'lua'"]),
    (["--config"], ["--config", "expected one argument"]),
])
def test_connect_bad_flags(capsys, tmp_path, pki, flags, words):
    code, out, err = _run(capsys, ["connect", "--config", _config(tmp_path, pki, "ok.ovpn"), *flags])
    assert code == 2
    line = _one_line(err)
    for w in words:
        assert w in line, line
    assert out == ""


@pytest.mark.parametrize("kind", ["missing", "directory", "binary", "broken"])
@pytest.mark.parametrize("command", ["connect", "serve"])
def test_unusable_config_file(capsys, tmp_path, pki, command, kind):
    if kind == "missing":
        path, words = str(tmp_path / "nothere.conf"), ["cannot read", "nothere.conf", "No such file or directory"]
    elif kind == "directory":
        path, words = str(tmp_path), ["cannot read", "Is a directory"]
    elif kind == "binary":
        (tmp_path / "bin.conf").write_bytes(b"\xff\xfe\x00client\n")
        path, words = str(tmp_path / "bin.conf"), ["cannot read", "bin.conf", "not UTF-8"]
    else:  # a config whose line 3 names a file that is not there
        (tmp_path / "broken.conf").write_text("client\nremote 127.0.0.1 1194\nca nothere.crt\n"
                                              if command == "connect" else
                                              "server 10.8.0.0 255.255.255.0\nport 0\nca nothere.crt\n")
        path, words = str(tmp_path / "broken.conf"), ["broken.conf:3: cannot read ca file nothere.crt"]
    code, _, err = _run(capsys, [command, "--config", path])
    assert code == 2
    line = _one_line(err)
    assert line.startswith("ovpnkx %s: " % command), line
    for w in words:
        assert w in line, line


def test_connect_refuses_a_server_config_and_serve_a_client_config(capsys, tmp_path, pki):
    client = _config(tmp_path, pki, "client.ovpn")
    code, _, err = _run(capsys, ["serve", "--config", client])
    assert code == 2 and "not a server config" in _one_line(err)
    server = tmp_path / "server.conf"
    server.write_text("server 10.8.0.0 255.255.255.0\nca %s\ncert %s\nkey %s\n"
                      % (pki.ca, pki.server_cert, pki.server_key))
    code, _, err = _run(capsys, ["connect", "--config", str(server)])
    assert code == 2 and "not a client config" in _one_line(err)


@pytest.mark.parametrize("port", ["70000", "-1", "http"])
def test_serve_bad_port(capsys, tmp_path, pki, port):
    server = tmp_path / "server.conf"
    server.write_text("server 10.8.0.0 255.255.255.0\nca %s\ncert %s\nkey %s\n"
                      % (pki.ca, pki.server_cert, pki.server_key))
    code, _, err = _run(capsys, ["serve", "--config", str(server), "--port", port])
    assert code == 2
    assert "--port" in _one_line(err)


def test_unknown_subcommand(capsys):
    code, _, err = _run(capsys, ["frobnicate"])
    assert code == 2
    assert "frobnicate" in _one_line(err)


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_host_only_directives_in_one_note(tmp_path, pki, runtime):
    """One note lists every host-only directive once; the run then fails for its own reason
    (nothing listens: an ICMP port unreachable, a warning, and the end at the hand-window)."""
    port = ov.free_port(socket.SOCK_DGRAM)  # nothing listens there
    conf = _config(tmp_path, pki, "warn.ovpn", port=port,
                   extra="persist-key\npersist-tun\nresolv-retry infinite\nmute-replay-warnings\npersist-key\n")
    with open(conf) as f:
        text = f.read()
    with open(conf, "w") as f:
        f.write(text.replace("hand-window 20", "hand-window 3"))
    proc = subprocess.run([OVPNKX, "connect", "--config", conf, "--runtime", runtime, "--json", "--pings", "1"],
                          capture_output=True, text=True, timeout=60)
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    notes = [e for e in events if e["event"] == "note" and e["reason"].startswith("host-only")]
    assert len(notes) == 1 and not [e for e in events if e["event"] == "warning"
                                    and "ICMP port unreachable" not in e["reason"]], events
    listed = notes[0]["reason"].split(": ", 1)[1].split(", ")
    assert sorted(listed) == ["dev", "mute-replay-warnings", "nobind", "persist-key", "persist-tun", "resolv-retry"]
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "connection refused" in events[-1]["reason"], events[-1]
