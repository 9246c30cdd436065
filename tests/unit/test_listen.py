"""One helper binds every listener on several addresses: IPv4 and IPv6 side by side."""

from __future__ import annotations

import errno
import logging
import socket

import pytest

from sealmail.net.listen import ListenError, bind_sockets, listen_sockets
from sealmail.settings import Settings

# RFC 3849: 2001:db8::/32 is for documentation; no host has it, so binding it fails like a host without IPv6.
ABSENT_IPV6 = "2001:db8::1"


def _close(sockets: list[socket.socket]) -> None:
    for sock in sockets:
        sock.close()


def _roundtrip(sockets: list[socket.socket], address: str) -> None:
    port = sockets[0].getsockname()[1]
    for sock in sockets:
        sock.listen(8)
    with socket.create_connection((address, port), timeout=5) as client:
        client.sendall(b"ping")
    for sock in sockets:
        sock.settimeout(0.2)
        try:
            conn, _ = sock.accept()
        except TimeoutError:
            continue
        with conn:
            assert conn.recv(4) == b"ping"
            return
    pytest.fail(f"nothing accepted the connection to {address}")


def test_port_zero_gives_both_families_the_same_port() -> None:
    """RFC 3493 §5.3: with IPV6_V6ONLY an IPv6 socket leaves the IPv4 side of its port to another socket."""
    sockets = bind_sockets(["0.0.0.0", "::"], 0)  # noqa: S104
    try:
        assert [s.family for s in sockets] == [socket.AF_INET, socket.AF_INET6]
        assert sockets[0].getsockname()[1] == sockets[1].getsockname()[1] != 0
        assert sockets[1].getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1
        assert all(s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) for s in sockets)
        assert all(s.proto == socket.IPPROTO_TCP and s.get_inheritable() for s in sockets)
        _roundtrip(sockets, "127.0.0.1")
        _roundtrip(sockets, "::1")
    finally:
        _close(sockets)


def test_loopback_pair_and_localhost() -> None:
    sockets = bind_sockets(["localhost"], 0)
    try:
        assert [s.getsockname()[0] for s in sockets] == ["127.0.0.1", "::1"]
        _roundtrip(sockets, "::1")
    finally:
        _close(sockets)


def test_port_zero_picks_again_when_the_port_is_taken_on_the_other_family(monkeypatch) -> None:
    """The port the IPv4 socket picked may be in use on IPv6: the helper tries another."""
    from sealmail.net import listen

    blockers = []
    real = listen._bind_one

    def bind_one(address: str, port: int) -> socket.socket:
        if address == "::1" and not blockers:
            blockers.append(real("::1", port))  # someone else listens on it
            blockers[0].listen(1)
        return real(address, port)

    monkeypatch.setattr(listen, "_bind_one", bind_one)
    sockets = bind_sockets(["127.0.0.1", "::1"], 0)
    try:
        assert sockets[0].getsockname()[1] == sockets[1].getsockname()[1] != blockers[0].getsockname()[1]
    finally:
        _close(sockets + blockers)


def test_an_explicit_ipv6_address_the_host_lacks_fails_clearly() -> None:
    with pytest.raises(ListenError) as info:
        bind_sockets(["127.0.0.1", ABSENT_IPV6], 0)
    assert info.value.errno == errno.EADDRNOTAVAIL
    assert info.value.strerror.startswith(f"cannot listen on [{ABSENT_IPV6}]:")


def test_an_address_in_use_names_address_and_port() -> None:
    held = bind_sockets(["::1"], 0)
    held[0].listen(1)
    port = held[0].getsockname()[1]
    try:
        with pytest.raises(ListenError) as info:
            bind_sockets(["::1"], port)
        assert info.value.errno == errno.EADDRINUSE
        assert info.value.strerror == f"cannot listen on [::1]:{port}: Address already in use"
    finally:
        _close(held)


def test_missing_ipv6_is_skipped_with_one_warning_when_optional(caplog) -> None:
    with caplog.at_level(logging.WARNING, "sealmail.net"):
        sockets = bind_sockets(["127.0.0.1", ABSENT_IPV6], 0, ipv6_optional=True)
    try:
        assert [s.family for s in sockets] == [socket.AF_INET]
        warnings = [r.getMessage() for r in caplog.records]
        assert warnings == [f"no IPv6 on this host: not listening on [{ABSENT_IPV6}]:{sockets[0].getsockname()[1]}"]
    finally:
        _close(sockets)
    # Optional IPv6 does not hide other failures, nor make an IPv4 problem optional.
    with pytest.raises(ListenError, match=r"cannot listen on 192\.0\.2\.1:"):
        bind_sockets(["192.0.2.1", "::1"], 0, ipv6_optional=True)


def test_only_the_default_addresses_make_ipv6_optional(monkeypatch) -> None:
    from sealmail.net import listen

    seen = []
    monkeypatch.setattr(listen, "bind_sockets", lambda a, p, ipv6_optional: seen.append(ipv6_optional) or [])
    listen_sockets(Settings(), 0)
    listen_sockets(Settings(bind_addresses=["127.0.0.1", "::1"]), 0)  # sealmail dev
    listen_sockets(Settings(bind_addresses=["0.0.0.0", "::"], mx_port=25), 0)  # noqa: S104 - the role writes this
    listen_sockets(Settings(bind_addresses=["::"]), 0)
    listen_sockets(Settings(bind_addresses=["0.0.0.0", "2001:db8::1"]), 0)  # noqa: S104
    assert seen == [True, True, True, False, False]
