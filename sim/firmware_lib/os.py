"""``os`` for the simulated board: the unix port's, with the sim's mount points hidden.

The launcher mounts host folders at /.simlib, /.frozen and /.board (what a real
board has in firmware); listing "/" leaves them out so that mpremote's ``fs ls``
and ``fs cp -r`` see only the flash, as on a board.
"""

from uos import *  # noqa: F401,F403
import uos as _os

_HIDDEN = (".simlib", ".frozen", ".board")


def _is_root(path) -> bool:
    if isinstance(path, bytes):
        path = path.decode()
    return path in ("/", "") and _os.getcwd() == "/" or path == "/"


def ilistdir(path="", *args):
    """os.ilistdir() without the sim's mount points at the root; entries carry the
    size as a 4th item, as on a board's littlefs/FAT (the unix VFS gives 3)."""
    for entry in _os.ilistdir(path, *args):
        name = entry[0].decode() if isinstance(entry[0], bytes) else entry[0]
        if _is_root(path) and name in _HIDDEN:
            continue
        if len(entry) < 4:
            size = 0
            if entry[1] == 0x8000:
                sep = "" if not path or path.endswith("/") else "/"
                try:
                    size = _os.stat(path + sep + name if path else name)[6]
                except OSError:
                    pass
            entry = (entry[0], entry[1], entry[2], size)
        yield entry


def listdir(path=""):
    """os.listdir() without the sim's mount points at the root."""
    return [e[0] for e in ilistdir(path)]
