# Frozen modules of an ovpnkx generic ESP32 (no PSRAM). Paths are relative to this file.
#   make -C ports/esp32 BOARD=ESP32_GENERIC FROZEN_MANIFEST=/path/to/ovpnkx/boards/esp32/manifest.py
include("$(PORT_DIR)/boards/manifest.py")  # the port's own frozen modules (_boot.py, inisetup, ...)
package("ovpnkx", base_path="../../firmware")
package("ovpnkx_device", base_path="../../firmware")
module("noise.py")
