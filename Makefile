# ovpnkx — every target installs what it needs first (virtual environment,
# pinned PyPI packages, Debian's openvpn), once.

VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed-stamp
OPENVPN := $(VENV)/.openvpn-stamp
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup test typecheck run size bench fuzz clean flash hil

setup: $(STAMP) $(OPENVPN)

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) tools/mpy_typeshed.py
	@touch $@

# Debian's openvpn 2.6: the real peer of the interop tests.
$(OPENVPN):
	@command -v openvpn >/dev/null 2>&1 || { \
	  apt-cache show openvpn >/dev/null 2>&1 || $(SUDO) apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq openvpn; }
	@openvpn --version | head -n 1
	@mkdir -p $(VENV) && touch $@

# Two workers (pytest-xdist), each file on one of them: most of the suite waits on
# processes, links and timers, not on a core.
test: setup typecheck
	$(VENV)/bin/pytest -n 2 --dist loadfile

# firmware as MicroPython (pyproject.toml), host and core as CPython, each board.
typecheck: $(STAMP)
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy --config-file host/mypy.ini
	$(PY) tools/typecheck_boards.py

# The main job: a simulated Pico W (rp2040w) flashed with the firmware runs the key exchange
# over its UART at 115200 baud against ovpnkx serve, and a summary is printed.
# `ovpnkx demo` is the loopback variant (no board, UDP between the two runtimes).
run: setup
	$(VENV)/bin/ovpnkx run

size: $(STAMP)
	$(PY) tools/size.py

bench: setup
	$(PY) bench/run.py

# Seeded fuzzing of every reader of peer input: 10^6 inputs per target on CPython,
# 10^5 on MicroPython; a table of inputs, exceptions and memory (tools/fuzz.py).
# Not part of `make test` (which runs a quick seeded pass: tests/*/test_fuzz_quick.py).
fuzz: setup
	$(PY) tools/fuzz.py $(FUZZ_ARGS)

clean:
	rm -rf $(VENV) build out .mypy_cache .pytest_cache

# Flash a board (or the simulated board's repl): mpy-cross + mpremote, then soft reset.
#   make flash BOARD=rp2040w PORT=/dev/ttyACM0 CONFIG=client.ovpn [TRANSPORT=serial|udp|tcp] [SETTINGS=f.json] [SOURCE_LINES=1]
flash: $(STAMP)
	@test -n "$(BOARD)" -a -n "$(PORT)" || { echo "usage: make flash BOARD=NAME PORT=PORT [CONFIG=client.ovpn] [TRANSPORT=serial|udp|tcp] [SETTINGS=file.json]"; exit 2; }
	$(PY) tools/flash.py --board $(BOARD) --port $(PORT) $(if $(CONFIG),--config $(CONFIG)) $(if $(TRANSPORT),--transport $(TRANSPORT)) $(if $(SETTINGS),--settings $(SETTINGS)) $(if $(SOURCE_LINES),--source-lines)

# The HIL suite (tests/hil). Without PORT: the two simulated boards of `make test`.
#   make hil PORT=/dev/ttyACM0 BOARD=rp2040w [DATA_PORT=/dev/ttyUSB0]
#            [HOST_IP=192.168.1.10 WIFI_SSID=net WIFI_PASSWORD=pw]     (Wi-Fi boards)
#   make hil PORT=sim:sim          (any simulated board)
hil: setup
	$(VENV)/bin/pytest tests/hil $(if $(PORT),--device $(PORT)) $(if $(BOARD),--board $(BOARD)) $(if $(DATA_PORT),--data-port $(DATA_PORT)) $(if $(HOST_IP),--host-ip $(HOST_IP)) $(if $(WIFI_SSID),--wifi-ssid '$(WIFI_SSID)' --wifi-password '$(WIFI_PASSWORD)')
