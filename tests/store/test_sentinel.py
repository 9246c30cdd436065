"""Redis Sentinel failover with real servers: the app's clients follow the new master by themselves.

A master, a replica and three sentinels (quorum 2, down-after-milliseconds 1000) on loopback; the
master is SIGKILLed. Redis Sentinel's documented failover: the sentinels agree the master is down
(ODOWN, quorum), elect a leader, promote the replica, and answer SENTINEL
get-master-addr-by-name with the new address; clients ask them again on reconnection.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
import redis

from sealmail.net.redisconn import Subscriber, connector
from sealmail.services import revocation
from sealmail.settings import Settings
from sealmail.store import events as ev

from sentinelkit import start_cluster

pytestmark = pytest.mark.tool("redis-server", "redis-sentinel")

FAILOVER_BOUND = 15.0  # generous on a shared machine; the target is 5 s (printed below)


@pytest.fixture(params=[False, True], ids=["plain", "tls"])
def cluster(request, tmp_path):
    """Plain TCP, and TLS everywhere (data nodes, replication, sentinels) from a private CA that the
    app trusts through ``rediss://…?ssl_ca_certs=`` (SEALMAIL_REDIS_SENTINEL_TLS for the sentinels)."""
    found = start_cluster(tmp_path, tls=request.param)
    yield found
    found.stop()


@pytest.fixture
def sentinel_settings(cluster, tmp_path):
    return Settings(data_dir=tmp_path / "data", **cluster.settings_update())


async def test_writes_work_again_through_the_factory_after_the_master_is_killed(cluster, sentinel_settings) -> None:
    """After a master failover a write through the app's one factory succeeds again, on the
    promoted replica, within the bound (target 5 s)."""
    found = connector(sentinel_settings)
    assert found is not None
    assert found.uses_sentinel
    client = found.client()
    try:
        await client.set("before", b"1")
        old = cluster.kill_master()
        killed_at = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                await client.set("after", str(attempt))
                break
            except redis.RedisError:
                assert time.monotonic() - killed_at < FAILOVER_BOUND, "no write succeeded after the failover"
                await asyncio.sleep(0.05)
        took = time.monotonic() - killed_at
        print(f"\nwrites work again {took:.2f} s after SIGKILL of the master (target 5 s)")
        assert took < FAILOVER_BOUND
        new = cluster.master_port()
        assert new != old
        check = cluster.data(new)
        try:
            assert check.get("after") == str(attempt).encode()
            assert check.get("before") == b"1"  # replicated before the kill
        finally:
            check.close()
    finally:
        await client.aclose()


async def test_subscriber_resubscribes_on_the_new_master_and_both_buses_resync(cluster, sentinel_settings) -> None:
    """Pub/sub is at-most-once: after the failover the one subscriber subscribes again by itself
    (on the new master), the change bus hands every subscription ``Resync`` and the revocation bus
    re-checks its sessions; then live events flow again."""
    found = connector(sentinel_settings)
    assert found is not None
    subscriber = Subscriber(found)
    bus = ev.RedisBus(found, subscriber)
    publisher = ev.RedisBus(found)
    revocations = revocation.RedisRevocations(found, subscriber)
    ended: list[revocation.Revoked] = []
    valid = True
    try:
        sub = await bus.subscribe("mbox-failover")
        await revocations.watch("alias-failover", ended.append, recheck=lambda: valid)
        assert subscriber.subscriptions == 1
        valid = False  # changed during the gap: no event will reach us
        old = cluster.kill_master()
        killed_at = time.monotonic()
        event = await sub.get(timeout=FAILOVER_BOUND)
        assert isinstance(event, ev.Resync)
        print(f"\nsubscriber resubscribed {time.monotonic() - killed_at:.2f} s after SIGKILL of the master")
        assert subscriber.subscriptions == 2
        assert subscriber._pubsub.connection.port == cluster.master_port() != old
        for _ in range(100):
            if ended:
                break
            await asyncio.sleep(0.05)
        assert [e.reason for e in ended] == [revocation.STALE]
        # Live events again, published through another client of the factory.
        deadline = time.monotonic() + FAILOVER_BOUND
        while True:
            try:
                await publisher.publish(ev.FoldersChanged("mbox-failover"))
                break
            except redis.RedisError:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
        assert isinstance(await sub.get(timeout=5), ev.FoldersChanged)
        await sub.close()
    finally:
        await revocations.close()
        await bus.close()
        await publisher.close()
        await subscriber.close()


async def test_store_component_announces_through_the_sentinels_master(cluster, sentinel_settings) -> None:
    """The data host's store component publishes its change events on the master the sentinels name
    (Redis Sentinel: clients ask ``SENTINEL get-master-addr-by-name``), not on the node its
    ``redis_url`` happens to name: a front-end's IMAP session, subscribed through the sentinels,
    hears that new mail waits (RFC 2177 IDLE depends on it). In Sentinel mode the URL gives only
    the credentials (here its host does not even resolve)."""
    import ssl

    from sealmail.store.server import StoreServer

    found = connector(sentinel_settings)
    assert found is not None
    front_end = Subscriber(found)
    bus = ev.RedisBus(found, front_end)
    server = StoreServer(sentinel_settings, tls=ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))
    try:
        sub = await bus.subscribe("mbox-announced")
        await server.mailstore.spool_appended("mbox-announced")
        event = await sub.get(timeout=5)
        assert isinstance(event, ev.SpoolAppended)
        await sub.close()
    finally:
        await server.close()
        await bus.close()
        await front_end.close()


async def test_long_lived_publisher_follows_a_sentinel_failover_of_a_live_master(cluster, sentinel_settings) -> None:
    """``SENTINEL FAILOVER``: the master is demoted while alive. PUBLISH on a replica is accepted and
    reaches only that node's subscribers, so a publisher left on the demoted node would announce to
    nobody, with no error. Sentinel's ``CLIENT KILL`` on the demoted node does not always prevent
    it (seen: a reconnect landing there while a sentinel still named it): the change bus's
    publisher checks ``ROLE`` with each publish, so its events reach a subscriber on the new
    master and none of its connections stays on the old one."""
    found = connector(sentinel_settings)
    assert found is not None
    subscriber = Subscriber(found)
    bus = ev.RedisBus(found, subscriber)
    publisher = ev.RedisBus(found)
    try:
        sub = await bus.subscribe("mbox-demoted")
        await publisher.publish(ev.FoldersChanged("mbox-demoted"))  # its connection is on the old master
        assert isinstance(await sub.get(timeout=5), ev.FoldersChanged)
        old = cluster.master_port()
        sentinel = cluster.sentinel(cluster.sentinel_ports[0])
        try:
            sentinel.execute_command("SENTINEL", "FAILOVER", "sealmail")
        finally:
            sentinel.close()
        deadline = time.monotonic() + FAILOVER_BOUND
        while cluster.master_port() == old:
            assert time.monotonic() < deadline, "the sentinels did not promote the replica"
            await asyncio.sleep(0.1)
        # The old master must have become a replica before the check. Sentinel converts it when its
        # INFO shows a master the configuration calls a replica, and polls INFO every 10 s: its own bound.
        deadline = time.monotonic() + FAILOVER_BOUND + 10
        while cluster.data(old).info("replication").get("role") != "slave":
            assert time.monotonic() < deadline, "the old master was not reconfigured as a replica"
            await asyncio.sleep(0.1)
        # Every event published after the failover reaches the subscriber (after its resync).
        got: list[ev.ChangeEvent] = []
        deadline = time.monotonic() + FAILOVER_BOUND
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                await publisher.publish(ev.FoldersChanged("mbox-demoted"))
            event = await sub.get(timeout=0.5)
            if isinstance(event, ev.FoldersChanged):
                got.append(event)
                break
        assert got, "no event published after the failover reached the subscriber on the new master"
        # No connection of the publisher is left on the demoted node.
        pool = publisher._client.connection_pool
        ports = {c.port for c in (*pool._available_connections, *pool._in_use_connections) if c.is_connected}
        assert ports == {cluster.master_port()} != {old}
        await sub.close()
    finally:
        await bus.close()
        await publisher.close()
        await subscriber.close()


async def test_publish_that_lands_on_a_replica_is_made_again_on_the_master(cluster, sentinel_settings) -> None:
    """A sentinel that still names the demoted master (Redis Sentinel's configurations converge,
    not at once): the publisher's connection lands on a replica, where PUBLISH is accepted and
    heard by nobody on the master. The bus sees ``ROLE`` answer ``slave``, drops the connection,
    asks the sentinels again and publishes on the master."""
    found = connector(sentinel_settings)
    assert found is not None
    subscriber = Subscriber(found)
    bus = ev.RedisBus(found, subscriber)
    publisher = ev.RedisBus(found)
    manager = publisher._client.connection_pool.sentinel_manager
    real = manager.discover_master
    replica = next(port for port in cluster.data_ports if port != cluster.master_port())
    answers: list[int] = []

    async def lagging(name: str) -> tuple[str, int]:
        address = ("127.0.0.1", replica) if not answers else await real(name)
        answers.append(address[1])
        return address

    manager.discover_master = lagging
    try:
        sub = await bus.subscribe("mbox-lagging")
        await publisher.publish(ev.FoldersChanged("mbox-lagging"))
        assert isinstance(await sub.get(timeout=5), ev.FoldersChanged)
        assert answers[0] == replica
        assert answers[-1] == cluster.master_port()
        await sub.close()
    finally:
        await bus.close()
        await publisher.close()
        await subscriber.close()


async def test_a_master_that_stops_answering_holds_a_call_up_once_not_per_retry(cluster, sentinel_settings) -> None:
    """A master host that vanishes (a stopped container, a cut link) sends no reset: a command on
    it waits for the socket timeout. The client retries a refused or reset connection through the
    sentinels, but a timeout is not tried again on the same node (it answered nothing, and each
    try would cost another timeout while the sentinels fail over): the caller hears of it after one
    timeout, and its next command goes to the master the sentinels name by then."""
    import os
    import signal

    from sealmail.net.redisconn import SENTINEL_SOCKET_TIMEOUT

    client = connector(sentinel_settings).client()
    port = cluster.master_port()
    pid = cluster.procs[port].pid
    try:
        await client.set("before", b"1")
        os.kill(pid, signal.SIGSTOP)  # alive for the kernel (it accepts), silent for the clients
        stopped = time.monotonic()
        with contextlib.suppress(redis.RedisError):
            await client.get("before")
        held = time.monotonic() - stopped
        print(f"\na call on the silent master returned after {held:.1f} s")
        assert held < SENTINEL_SOCKET_TIMEOUT * 2
        while True:
            try:
                await client.set("after", b"1")
                break
            except redis.RedisError:
                assert time.monotonic() - stopped < FAILOVER_BOUND, "no write succeeded after the failover"
                await asyncio.sleep(0.1)
        assert cluster.master_port() != port
    finally:
        os.kill(pid, signal.SIGCONT)
        await client.aclose()
        # redis-py drops a connection whose handshake timed out on the silent node without closing
        # its socket: collect it here, where its ResourceWarning is expected.
        import gc
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()
