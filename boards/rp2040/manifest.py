# Frozen modules of an ovpnkx Pico (RP2040, no Wi-Fi). Paths are relative to this file.
#   make -C ports/rp2 BOARD=RPI_PICO FROZEN_MANIFEST=/path/to/ovpnkx/boards/rp2040/manifest.py
# A Pico W (the sim's "rp2040w") uses manifest_w.py.
include("$(PORT_DIR)/boards/manifest.py")  # the port's own frozen modules (_boot.py, asyncio, ...)
package("ovpnkx", base_path="../../firmware")
package("ovpnkx_device", base_path="../../firmware")
module("noise.py")  # this board's entropy: import noise; noise.make_entropy()
