"""Fixtures for interop tests against the real openvpn 2.6 on 127.0.0.1."""

import pytest

from ovpnkx_host import pki as pkimod


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """One CA with server and client certificates and a tls-auth key."""
    return pkimod.make_pki(str(tmp_path_factory.mktemp("pki")))

