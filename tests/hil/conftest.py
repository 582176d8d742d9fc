"""Options and fixtures of the HIL suite (tests/hil): one suite, a simulated or a real board.

    pytest tests/hil                                          # default: the two runs of `make test`
    pytest tests/hil --device sim:esp32
    pytest tests/hil --device /dev/ttyACM0 --board rp2040w    # `make hil PORT=/dev/ttyACM0 BOARD=rp2040w`
        [--data-port /dev/ttyUSB0] [--host-ip 192.168.1.10 --wifi-ssid NET --wifi-password PW]

Without ``--device`` the suite runs twice: on a simulated Pico W (``sim:rp2040w``,
sessions over its data UART) and on a simulated Pico 2 W (``sim:rp2350w``, serial
sessions over its REPL port), so every test runs on at least one of them. A plain Pico
or Pico 2 has no ``tls`` on stock firmware and is refused.
"""

import pytest

from ovpnkx_host.pki import make_pki

from _hil import Board

DEFAULT = (("sim:rp2040w", "uart"), ("sim:rp2350w", "repl"))


def pytest_addoption(parser):
    g = parser.getgroup("hil", "hardware-in-the-loop suite (tests/hil)")
    g.addoption("--device", default=None,
                help="sim:BOARD or a real board's REPL port (default: sim:rp2040w and sim:rp2350w)")
    g.addoption("--board", default=None, help="the real board's profile (boards/: rp2040w, rp2350w, esp32; rp2040 and rp2350 are refused: no tls)")
    g.addoption("--data-port", default=None,
                help="host end of a real board's data UART (else serial sessions share the REPL port)")
    g.addoption("--serial-via", choices=("auto", "uart", "repl"), default="auto",
                help="serial sessions over the data UART or the REPL port (auto: the UART if there is one)")
    g.addoption("--host-ip", default=None,
                help="real board, Wi-Fi tests: this host's address on the board's network (servers listen there)")
    g.addoption("--wifi-ssid", default=None, help="real board, Wi-Fi tests: the network to join")
    g.addoption("--wifi-password", default=None)


def _boards(config) -> list:
    # one list per run: a session fixture is reused only for the very same param object
    if not hasattr(config, "_hil_boards"):
        config._hil_boards = _make_boards(config)
    return config._hil_boards


def _make_boards(config) -> list:
    device = config.getoption("--device")
    if device is None:
        return [Board(spec, spec[4:], via) for spec, via in DEFAULT]
    if device.startswith("sim:"):
        return [Board(device, device[4:], config.getoption("--serial-via"))]
    name = config.getoption("--board")
    if not name:
        raise pytest.UsageError("--device %s needs --board NAME (its profile in boards/)" % device)
    return [Board(device, name, config.getoption("--serial-via"), config.getoption("--data-port"),
                  config.getoption("--host-ip"), config.getoption("--wifi-ssid"),
                  config.getoption("--wifi-password"))]


def pytest_generate_tests(metafunc):
    if "board" in metafunc.fixturenames:
        boards = _boards(metafunc.config)
        metafunc.parametrize("board", boards, indirect=True, scope="session", ids=[b.id for b in boards])


@pytest.fixture(scope="session")
def board(request):
    """The board under test, started (sim) and stopped around its tests."""
    b = request.param.start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return make_pki(str(tmp_path_factory.mktemp("hil-pki")))
