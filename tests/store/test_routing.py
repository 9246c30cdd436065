"""Several data hosts share the mailboxes: front-ends route each mailbox to its home (issue 19: "which
data host owns which mailbox is recorded in the config store, so several data hosts can share the
mailboxes").

Two real ``sealmail serve store`` processes (``store_host`` store1 and store2), each with its own data
directory, share one config store: store1's, which store2 reads over the store channel
(``config_backend=store``; or MongoDB). The front-end reaches both over mutual TLS (RFC 8446 §4.3.2) with one client
certificate, through ``store.routing.RoutingMailStore``.
"""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, datetime

import pytest
from storekit import StoreProcess, client_settings

from sealmail.config import wire
from sealmail.config.sqlite import SQLiteConfigStore
from sealmail.services import aliases, credentials, domains
from sealmail.settings import Settings
from sealmail.smtp.outbox import HandOver, Outbox, new_entry_id
from sealmail.store import remote, rpc
from sealmail.store.errors import StoreUnavailable
from sealmail.store.remote import RemoteMailStore
from sealmail.store.routing import RoutingMailStore, choose_home
from sealmail.store.spool import seal_message

from support import free_port

RAW = b"From: a@example.test\r\nTo: b@example.test\r\nSubject: routed\r\n\r\nbody\r\n"


@pytest.fixture
def config(settings):
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = SQLiteConfigStore(settings.config_db_path)  # the shared config store
    yield store
    store.close()


@pytest.fixture
def hosts(sealmail_bin, settings, config, certs, redis_url, tmp_path):
    """store1 on settings.data_dir serves the config store; store2, on a directory of its own, reads
    it there (config_backend=store, as the role sets up a further data host without MongoDB)."""
    second = tmp_path / "data2"
    second.mkdir()
    first = StoreProcess(
        sealmail_bin, settings.data_dir, certs, free_port(), tmp_path / "store1.log", redis_url, store_host="store1"
    )
    procs = {
        "store1": first,
        "store2": StoreProcess(
            sealmail_bin,
            second,
            certs,
            free_port(),
            tmp_path / "store2.log",
            redis_url,
            store_host="store2",
            config_backend="store",
            store_url=f"wss://localhost:{first.port}",
            store_client_cert_file=str(certs.client_cert),
            store_client_key_file=str(certs.client_key),
        ),
    }
    for proc in procs.values():
        proc.start()
    assert not (second / "config.sqlite").exists()
    yield {"store1": (procs["store1"], settings.data_dir), "store2": (procs["store2"], second)}
    for proc in procs.values():
        proc.stop()


@pytest.fixture
def front(settings, certs, hosts, tmp_path):
    """A front-end of both data hosts; store1 (store_url) serves the config store and the queue."""
    base = client_settings(settings.model_copy(update={"data_dir": tmp_path / "front"}), certs, hosts["store1"][0].port)
    urls = {name: f"wss://localhost:{proc.port}" for name, (proc, _) in hosts.items()}
    return base.model_copy(update={"store_urls": urls})


def _files(data_dir) -> list[str]:
    return (
        sorted(p.name for p in (data_dir / "mailboxes").glob("*.sqlite")) if (data_dir / "mailboxes").exists() else []
    )


def _accounts(config, front, count: int) -> list[tuple[str, str, str]]:
    """(address, mailbox id, password) of ``count`` new aliases, each with a mailbox made through the router."""
    domains.add_domain(config, "example.test")
    made = []
    for i in range(count):
        address = f"user{i}@example.test"
        aliases.add_alias(config, address)
        password = credentials.set_password(config, front, address)
        credential = config.get_credential(aliases.get_alias(config, address).id)
        assert credential is not None
        assert credential.mailbox_id is not None
        made.append((address, credential.mailbox_id, password))
    return made


def test_store_urls_setting_parses_name_url_pairs_and_wants_wss(certs) -> None:
    """SEALMAIL_STORE_URLS is a comma list of name=wss://host:port; store_url stays required."""
    tls = {
        "store_ca_file": certs.ca,
        "store_client_cert_file": certs.client_cert,
        "store_client_key_file": certs.client_key,
    }
    parsed = Settings(
        store_url="wss://10.0.0.41:3456",
        store_urls="store1=wss://10.0.0.41:3456, store2=wss://10.0.0.42:3456",  # type: ignore[arg-type]
        **tls,
    )
    assert parsed.store_urls == {"store1": "wss://10.0.0.41:3456", "store2": "wss://10.0.0.42:3456"}
    assert Settings().store_urls is None  # one host: unchanged
    with pytest.raises(ValueError, match="wss://"):
        Settings(store_url="wss://a:1", store_urls="store1=ws://10.0.0.41:3456", **tls)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="name=wss"):
        Settings(store_url="wss://a:1", store_urls="wss://10.0.0.41:3456", **tls)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="SEALMAIL_STORE_URL"):
        Settings(store_urls="store1=wss://10.0.0.41:3456", **tls)  # type: ignore[arg-type]


def test_new_mailboxes_go_to_the_data_host_with_the_fewest_homes(config, front, hosts) -> None:
    """Placement rule: fewest mailboxes homed there, the first named on a tie; the files land there only."""
    made = _accounts(config, front, 3)
    homes = [config.get_mailbox_home(mailbox_id).host for _, mailbox_id, _ in made]
    assert homes == ["store1", "store2", "store1"]
    for (_, mailbox_id, _), host in zip(made, homes, strict=True):
        assert f"{mailbox_id}.sqlite" in _files(hosts[host][1])
        other = "store2" if host == "store1" else "store1"
        assert f"{mailbox_id}.sqlite" not in _files(hosts[other][1])
    assert _files(front.data_dir) == []
    assert choose_home(config, ["store2", "store1"]) == "store2"  # 1 each: the first named
    # ... and removing an alias deletes its mailbox on its own home
    aliases.remove_alias(config, front, made[1][0])
    assert _files(hosts["store2"][1]) == []
    assert len(_files(hosts["store1"][1])) == 2


def test_sessions_delivery_and_pop3_lock_reach_each_mailboxs_home(config, front, hosts) -> None:
    """IMAP-level calls, MX delivery (deliver and the outbox's deliver_sealed), the spool size and the
    POP3 lock (RFC 1939 §8) all go to the mailbox's home data host."""
    made = _accounts(config, front, 2)
    keys = {mailbox_id: credentials.unlock(config, front, address, password) for address, mailbox_id, password in made}

    async def go() -> None:
        router = RoutingMailStore.from_settings(front, config)
        outbox = Outbox(front.data_dir / "outbox")
        try:
            for mailbox_id, unlocked in keys.items():
                public = unlocked.credential.public_key
                await router.deliver_async(mailbox_id, public, RAW)
                await asyncio.to_thread(router.deliver, mailbox_id, public, RAW)
                sealed = b"".join(seal_message(public, mailbox_id, RAW, datetime.now(UTC)))
                outbox.put(new_entry_id(), mailbox_id, sealed)
            assert await asyncio.to_thread(HandOver(outbox, router).run_once) == 2
            assert outbox.entries() == []
            for mailbox_id, unlocked in keys.items():
                assert await asyncio.to_thread(router.spool_size, mailbox_id) > 0  # held on its home host
                handle = await router.open(mailbox_id, unlocked.secrets)
                await handle.append("INBOX", RAW, ["\\Flagged"])
                await handle.drain()
                assert len(await handle.uids("INBOX")) == 4
                lease = await router.lock_maildrop(handle)
                assert lease is not None
                other = await router.open(mailbox_id, unlocked.secrets)
                assert await router.lock_maildrop(other) is None  # held on the home host
                await lease.release()
                await other.release()
                await handle.release()
            # each mailbox is on its home data host, read there directly
            for _, mailbox_id, _ in made:
                host = config.get_mailbox_home(mailbox_id).host
                direct = RemoteMailStore.from_settings(
                    front.model_copy(update={"store_url": f"wss://localhost:{hosts[host][0].port}"})
                )
                try:
                    handle = await direct.open(mailbox_id, keys[mailbox_id].secrets)
                    assert len(await handle.uids("INBOX")) == 4
                    await handle.release()
                finally:
                    await direct.close()
        finally:
            await router.close()

    asyncio.run(go())


def test_a_mailbox_whose_home_moved_is_found_after_mailbox_elsewhere(config, front, hosts) -> None:
    """The router keeps homes per process; a store's MailboxElsewhere makes it read the home again."""
    (address, mailbox_id, password), _ = _accounts(config, front, 2)
    assert config.get_mailbox_home(mailbox_id).host == "store1"
    unlocked = credentials.unlock(config, front, address, password)

    async def go() -> None:
        router = RoutingMailStore.from_settings(front, config)
        try:
            handle = await router.open(mailbox_id, unlocked.secrets)  # store1, now kept
            await handle.append("INBOX", RAW)
            await handle.release()
            # the operator moves the mailbox to store2 and records its new home there
            for path in (hosts["store1"][1] / "mailboxes").glob(f"{mailbox_id}*"):
                shutil.move(path, hosts["store2"][1] / "mailboxes" / path.name)
            config.set_mailbox_home(mailbox_id, "store2")
            handle = await router.open(mailbox_id, unlocked.secrets)  # store1 refuses: read again
            assert len(await handle.uids("INBOX")) == 1
            assert handle.home is router.stores["store2"]
            await handle.release()
            await router.deliver_async(mailbox_id, unlocked.credential.public_key, RAW)
            assert await asyncio.to_thread(router.spool_size, mailbox_id) > 0
        finally:
            await router.close()

    asyncio.run(go())


def test_one_data_host_down_makes_only_its_mailboxes_unavailable(config, front, hosts) -> None:
    """A killed data host: its mailboxes fail temporarily (StoreUnavailable), the other host's work."""
    made = _accounts(config, front, 2)
    unlocked = [credentials.unlock(config, front, address, password) for address, _, password in made]
    on_one, on_two = unlocked
    assert config.get_mailbox_home(on_two.mailbox_id).host == "store2"

    async def go() -> None:
        router = RoutingMailStore.from_settings(front, config)
        try:
            hosts["store2"][0].kill()
            with pytest.raises(StoreUnavailable):
                await router.open(on_two.mailbox_id, on_two.secrets)
            with pytest.raises(StoreUnavailable):
                await router.deliver_async(on_two.mailbox_id, on_two.credential.public_key, RAW)
            handle = await router.open(on_one.mailbox_id, on_one.secrets)
            await handle.append("INBOX", RAW)
            assert len(await handle.uids("INBOX")) == 1
            await handle.release()
            await router.deliver_async(on_one.mailbox_id, on_one.credential.public_key, RAW)
        finally:
            await router.close()

    asyncio.run(go())


def test_a_further_data_host_reads_the_config_store_but_serves_none(config, front, hosts) -> None:
    """store2 records homes in store1's config store and answers no config calls itself: the
    front-ends read one config store only (store_url's)."""
    _, mailbox_id, _ = _accounts(config, front, 2)[1]
    assert config.get_mailbox_home(mailbox_id).host == "store2"  # recorded by store2, in store1's file
    store2 = f"wss://localhost:{hosts['store2'][0].port}"
    with pytest.raises(rpc.MethodNotAllowed):
        remote.call_once(front, wire.CONFIG_PREFIX + "get_mailbox_home", mailbox_id, url=store2)
    assert remote.call_once(front, wire.CONFIG_PREFIX + "get_mailbox_home", mailbox_id).host == "store2"
