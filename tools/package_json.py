"""Write package.json (mip): the library part, ovpnkx and ovpnkx_device, as sources.

    mpremote mip install ./package.json                  # from a checkout
    mpremote mip install github:OWNER/REPO               # from GitHub (same file)

URLs are relative to package.json, so both work. `make flash` installs the same
modules compiled with mpy-cross instead; this is for a board that only needs
the library. Run after adding or removing a module (a test checks it is current).
"""

import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("ovpnkx", "ovpnkx_device")


def package_json() -> dict:
    """The package.json contents for the current firmware/ tree."""
    urls = []
    for pkg in PACKAGES:
        for name in sorted(os.listdir(os.path.join(REPO, "firmware", pkg))):
            if name.endswith(".py"):
                urls.append(["%s/%s" % (pkg, name), "firmware/%s/%s" % (pkg, name)])
    return {"urls": urls, "deps": [], "version": "0.1.0"}


def main() -> int:
    path = os.path.join(REPO, "package.json")
    with open(path, "w") as f:
        json.dump(package_json(), f, indent=2)
        f.write("\n")
    print("wrote %s (%d files)" % (path, len(package_json()["urls"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
