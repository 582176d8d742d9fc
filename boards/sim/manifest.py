# The simulated board freezes nothing: `ovpnkx sim start` mounts the same folders
# instead (firmware/ at /.frozen, boards/sim/ at /.board; see sim/README.md).
# Kept so that every board has a manifest naming what a build would freeze.
package("ovpnkx", base_path="../../firmware")
package("ovpnkx_device", base_path="../../firmware")
module("noise.py")
