# Frozen modules of an ovpnkx Pico W (RP2040 + CYW43439). Paths are relative to this file.
#   make -C ports/rp2 BOARD=RPI_PICO_W FROZEN_MANIFEST=/path/to/ovpnkx/boards/rp2040/manifest_w.py
include("$(BOARD_DIR)/manifest.py")  # RPI_PICO_W's manifest: the port's modules plus networking
package("ovpnkx", base_path="../../firmware")
package("ovpnkx_device", base_path="../../firmware")
module("noise.py")
