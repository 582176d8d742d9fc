"""Stopping the subprocesses the tools and tests start (openvpn, sims, servers)."""

import subprocess


def stop_process(proc: subprocess.Popen, timeout_s: float = 10) -> None:
    """SIGTERM if it still runs, then SIGKILL if it lingers past ``timeout_s``."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
