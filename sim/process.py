"""Start a simulated board from Python: `ovpnkx sim start` as a context manager.

    with SimBoard("rp2040", "--baud", "0") as board:
        board.info["repl"]   # the first JSON line of `ovpnkx sim start`
"""

import json
import os
import select
import subprocess
import sys

from ovpnkx_host.process import stop_process


class SimStartError(RuntimeError):
    """The simulated board did not start (the message has its stderr)."""


class SimBoard:
    """A running `ovpnkx sim start --board BOARD [ARGS…]`; ``info`` is its start line."""

    def __init__(self, board: str, *args: str, timeout_s: float = 20) -> None:
        cmd = [sys.executable, "-m", "ovpnkx_host.cli", "sim", "start", "--board", board, *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=dict(os.environ, PYTHONUNBUFFERED="1"))
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        line = self.proc.stdout.readline() if ready else ""
        if not line.startswith("{"):
            self.proc.kill()
            err = self.proc.stderr.read() if self.proc.stderr is not None else ""
            self.proc.wait()
            raise SimStartError("the simulated board %s did not start: %s%s" % (board, line, err))
        self.info = json.loads(line)

    def stop(self) -> None:
        """SIGTERM (the sim removes its temporary flash), SIGKILL if it lingers."""
        stop_process(self.proc)
        for f in (self.proc.stdout, self.proc.stderr):
            if f is not None:
                f.close()

    def __enter__(self) -> "SimBoard":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
