# Entry point of the simulated board, run by the launcher in the MicroPython unix
# port: opens the sim's file descriptors, makes the flash folder "/", then runs
# the board's REPL (_simrepl). Everything happens in a function so that __main__'s
# globals stay clean for user code, as on a board.
import micropython

micropython.kbd_intr(-1)  # Ctrl-C is a plain byte until user code runs


def _boot():
    import os
    import sys

    import simboard
    import machine  # noqa: F401 imported while the host paths still resolve
    import _simrepl
    import _simprofile

    _simprofile.install()  # absent modules, the board's ticks and RTC, mbedTLS in the heap

    simboard._open_fds()
    cfg = simboard.config()
    os.umount("/")
    os.mount(os.VfsPosix(cfg["flash"]), "/")
    os.mount(os.VfsPosix(cfg["simlib"]), "/.simlib")
    path = ["", "/.simlib"]
    if cfg.get("frozen"):
        os.mount(os.VfsPosix(cfg["frozen"]), "/.frozen")
        path.append("/.frozen")
    if cfg.get("frozen") and cfg.get("board_dir"):  # boards/<name>/: noise.py, as frozen into that board
        # (stock firmware freezes nothing: the board's noise.mpy is where make flash put it, /lib)
        os.mount(os.VfsPosix(cfg["board_dir"]), "/.board")
        path.append("/.board")
    path.append("/lib")
    os.chdir("/")
    sys.path[:] = path
    return _simrepl


def _hold_back(simboard):
    # leave user code exactly the board's free heap after boot: the sim's own
    # modules took some of the extra the launcher gave; hold back the rest
    import gc

    # HAL modules that are C in a board's firmware (flash, no heap): on Wi-Fi boards the
    # sim's network and socket are Python, so they load now, into the sim's own share,
    # rather than into the user's heap when the app first imports them
    for name in ("network", "socket"):
        try:
            __import__(name)
        except ImportError:  # a board without Wi-Fi has neither
            pass
    if simboard.config().get("code_charge"):
        import _simprofile

        _simprofile.grow_host_pools()  # the app's names then cost the chip's qstr pools, not the unix port's
    target = simboard.config().get("free_after_boot_host")
    gc.collect()
    if target:
        pad = gc.mem_free() - target
        if pad > 0:
            try:
                simboard._held_back = bytearray(pad)
            except MemoryError:
                # no free block that long (a heap far below the board's, e.g. a bisection's
                # first probe): as much as there is, in pieces; else the board fails to boot,
                # again and again, where it should boot and then run out of memory
                held = simboard._held_back = []
                try:
                    for _ in range(pad // 4096):
                        held.append(bytearray(4096))
                except MemoryError:
                    pass


_repl = _boot()
import simboard  # noqa: E402

_hold_back(simboard)
del simboard
_repl.main(globals())
