"""Fixtures for interop tests against the real openvpn 2.6 on 127.0.0.1.

Where the environment variable ``CI`` is set (``.ci/run`` sets ``CI=true``), a skipped
interop test fails the run: a missing ``/dev/net/tun`` or openvpn must not pass silently.
"""

import os

import pytest

from ovpnkx_host import pki as pkimod


def ci_is_set() -> bool:
    """True where CI is set to something other than empty, 0 or false."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail") and ci_is_set():
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = "interop test skipped where CI is set (it must run in CI): %s" % reason


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """One CA with server and client certificates and a tls-auth key."""
    return pkimod.make_pki(str(tmp_path_factory.mktemp("pki")))
