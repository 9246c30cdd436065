"""IDLE (RFC 2177) across a Redis Sentinel failover: new mail delivered while the master is down
reaches a session that was idling before the master was killed.

The MX's "new mail in the spool" event is published while no master answers, so it is lost (Redis
pub/sub is at-most-once). The IMAP process's subscriber subscribes again on the promoted replica,
the bus hands every subscription ``Resync``, the spool watcher drains the spool, and the session
announces EXISTS as RFC 2177 §3 requires of an idling server.
"""

from __future__ import annotations

import asyncio
import ssl
import time

import pytest

from sealmail.config.sqlite import SQLiteConfigStore
from sealmail.net.redisconn import connector
from sealmail.store import events as ev
from sealmail.store.mailstore import MailStore

from .conftest import ADDRESS, Imap, make_account
from .test_idle import _idle, _wait_for
from mailgen import message
from sentinelkit import start_cluster
from support import ComponentThread

pytestmark = pytest.mark.tool("redis-server", "redis-sentinel")


@pytest.fixture
def sentinel_imap(imap_settings, tmp_path):
    cluster = start_cluster(tmp_path / "redis")
    settings = type(imap_settings).model_validate(
        {**imap_settings.model_copy(update=cluster.settings_update()).model_dump()}
    )
    config = SQLiteConfigStore(settings.config_db_path)
    accounts = {ADDRESS: make_account(config, settings, ADDRESS)}
    server = ComponentThread("imap", settings)
    tls = ssl.create_default_context(cafile=str(tmp_path / "tls" / "ca.pem"))
    try:
        yield Imap(settings, config, server, tls, tmp_path / "tls" / "ca.pem", cluster.url, accounts), cluster
    finally:
        server.stop()
        config.close()
        cluster.stop()


def test_idle_session_hears_mail_delivered_during_a_master_failover(sentinel_imap) -> None:
    imap, cluster = sentinel_imap
    acct = imap.account()
    subscriber = imap.server.component.ctx.subscriber
    watcher = imap.raw()
    watcher.login(acct)
    watcher.command("s SELECT INBOX")
    _idle(watcher)
    assert subscriber.subscriptions == 1

    cluster.kill_master()
    killed_at = time.monotonic()

    async def mx_delivers() -> None:
        # Another process's store, as the MX: sealed into the spool, then the (lost) announcement.
        found = connector(imap.settings)
        assert found is not None
        bus = ev.RedisBus(found)
        store = MailStore(imap.settings.data_dir, bus)
        try:
            await store.deliver_async(acct.mailbox_id, acct.public_key, message(1))
        finally:
            await store.close()
            await bus.close()

    asyncio.run(mx_delivers())
    assert subscriber.subscriptions == 1, "delivered before the session's subscriber was back"

    _wait_for(watcher, b"* 1 EXISTS\r\n", timeout=20.0)
    print(f"\nIDLE saw the mail {time.monotonic() - killed_at:.2f} s after SIGKILL of the master")
    assert subscriber.subscriptions == 2
    watcher.send("DONE\r\n")
    assert watcher.until("i")[-1] == b"i OK IDLE terminated\r\n"
    watcher.close()
