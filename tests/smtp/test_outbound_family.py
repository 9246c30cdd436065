"""Outbound SMTP over one address family, from a chosen source address (issue 23).

A receiver (``smtpsink.Sink``) listens on 127.0.0.1 and ::1 on one port, under a name with an A and
an AAAA record in a real DNS server (dnsmasq); the jobs component delivers a queued message to it.
What the receiver sees as the peer of the connection says which family, and which local address,
the delivery used (RFC 5321 §5.1 leaves the order of a host's addresses to the sender; the setting
takes the choice away from it). 127.0.0.2 is a local address on Linux (all of 127/8 is loopback).

Delivery tries a host's IPv4 addresses first, so "arrives over IPv4" alone would hold without the
setting too; what only the setting does is shown by mx.fallback.test, whose IPv4 address refuses
connections (nothing listens on 127.0.0.3): by default delivery falls back to its IPv6 address,
with ``ipv4`` it never does.
"""

from __future__ import annotations

import socket

import pytest

from sealmail.config.models import LogQuery
from sealmail.config.sqlite import SQLiteConfigStore
from sealmail.jobs.component import JobsComponent
from sealmail.queue.service import open_queue

from dnsserver import DnsServer
from smtpsink import Sink
from support import async_wait_for

pytestmark = pytest.mark.tool("dnsmasq")

MESSAGE = b"From: alice@a.test\r\nTo: bob@b.test\r\nSubject: which family\r\n\r\nHello.\r\n"


def _port_free_on_both() -> int:
    """A port free on 127.0.0.1 and on ::1 alike."""
    for _ in range(50):
        with socket.socket(socket.AF_INET6) as six:
            six.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            six.bind(("::1", 0))
            port = six.getsockname()[1]
            with socket.socket() as four:
                try:
                    four.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return int(port)
    raise RuntimeError("no port free on both loopback addresses")


@pytest.fixture
async def receiver():
    sink = Sink(_port_free_on_both(), hosts=("127.0.0.1", "::1"))
    await sink.start()
    yield sink
    await sink.stop()


@pytest.fixture
def dns(tmp_path):
    server = DnsServer(tmp_path / "dns")
    (tmp_path / "dns").mkdir()
    server.mx("b.test", "mx.b.test")
    server.a("mx.b.test", "127.0.0.1")
    server.a("mx.b.test", "::1")
    server.mx("v6.test", "mx.v6.test")
    server.a("mx.v6.test", "::1")
    server.mx("fallback.test", "mx.fallback.test")
    server.a("mx.fallback.test", "127.0.0.3")
    server.a("mx.fallback.test", "::1")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def outbound(settings, receiver, dns):
    def make(**changes):
        return settings.model_copy(
            update={
                "hostname": "mail.a.test",
                "dns_servers": [dns.address],
                "smtp_relay_port": receiver.port,
                "smtp_timeout": 5.0,
                "smtp_retry_base": 60.0,
                **changes,
            }
        )

    return make


def _queue(settings, rcpt: str) -> None:
    queue = open_queue(settings, None)
    try:
        queue.add("smtp", {"mail_from": "alice@a.test", "rcpt_to": rcpt}, MESSAGE)
    finally:
        queue.close()


async def _deliver(settings, rcpt: str, sink: Sink) -> None:
    _queue(settings, rcpt)
    jobs = JobsComponent(settings)
    await jobs.start()
    try:
        await async_wait_for(lambda: sink.received, timeout=20, what="the receiver got the message")
    finally:
        await jobs.stop()


async def _deferred(settings) -> list[str]:
    """Run the jobs component until the delivery log has a deferral; its details."""
    jobs = JobsComponent(settings)
    await jobs.start()
    config = SQLiteConfigStore(settings.config_db_path)
    try:

        def deferred() -> list[str]:
            return [e.detail for e in config.query_logs(LogQuery(status="deferred")).entries]

        return await async_wait_for(deferred, timeout=20, what="the delivery was deferred")
    finally:
        await jobs.stop()
        config.close()


def _peer_address(sink: Sink) -> str:
    assert len(sink.received) == 1
    peer = sink.received[0].peer
    assert peer is not None
    return peer[0]


async def test_ipv4_only_connects_over_ipv4(outbound, receiver) -> None:
    await _deliver(outbound(outbound_ip_family="ipv4"), "bob@b.test", receiver)
    assert _peer_address(receiver) == "127.0.0.1"


async def test_ipv6_only_connects_over_ipv6(outbound, receiver) -> None:
    """The same receiver and records: only the setting changed, and the connection came over IPv6."""
    await _deliver(outbound(outbound_ip_family="ipv6"), "bob@b.test", receiver)
    assert _peer_address(receiver) == "::1"


async def test_the_chosen_source_address_is_the_peer_the_receiver_sees(outbound, receiver) -> None:
    settings = outbound(outbound_ip_family="ipv4", outbound_source_ipv4="127.0.0.2")
    await _deliver(settings, "bob@b.test", receiver)
    assert _peer_address(receiver) == "127.0.0.2"
    assert receiver.received[0].rcpt_tos == ["bob@b.test"]


async def test_by_default_a_refused_ipv4_address_falls_back_to_ipv6(outbound, receiver) -> None:
    await _deliver(outbound(), "dave@fallback.test", receiver)
    assert _peer_address(receiver) == "::1"


async def test_ipv4_only_never_falls_back_to_ipv6(outbound, receiver) -> None:
    settings = outbound(outbound_ip_family="ipv4")
    _queue(settings, "dave@fallback.test")
    details = await _deferred(settings)
    assert "mx.fallback.test [127.0.0.3]" in details[0]
    assert receiver.received == []


async def test_an_mx_without_an_address_of_the_family_is_deferred_with_the_reason(outbound, receiver) -> None:
    settings = outbound(outbound_ip_family="ipv4")
    _queue(settings, "carol@v6.test")
    details = await _deferred(settings)
    assert "mx.v6.test has no IPv4 address (only ::1; SEALMAIL_OUTBOUND_IP_FAMILY=ipv4)" in details[0]
    assert receiver.received == []


def test_a_source_address_of_a_family_never_used_is_refused(settings) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=r"SEALMAIL_OUTBOUND_SOURCE_IPV6 is set, but .*never sends over IPv6"):
        settings.model_validate({**settings.model_dump(), "outbound_ip_family": "ipv4", "outbound_source_ipv6": "::1"})
    with pytest.raises(ValidationError, match="is not an IPv4 address"):
        settings.model_validate({**settings.model_dump(), "outbound_source_ipv4": "::1"})
