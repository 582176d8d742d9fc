from ovpnkx.errors import LocalProtocolError, ProtocolError, RemoteProtocolError

from _support import raises


def test_error_classes_are_distinct():
    assert issubclass(LocalProtocolError, ProtocolError)
    assert issubclass(RemoteProtocolError, ProtocolError)
    assert not issubclass(RemoteProtocolError, LocalProtocolError)


def test_raises_helper_returns_exception():
    def bad():
        raise RemoteProtocolError("short packet")
    exc = raises(RemoteProtocolError, bad)
    assert "short" in str(exc)
