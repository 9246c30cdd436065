"""Account lifecycle in split mode: mailboxes are created and deleted by the data host's store, which
records itself as their home and refuses mailboxes whose recorded home is another host (issue 19:
"which data host owns which mailbox is recorded in the config store", one writer per mailbox).

The front-end here has a data directory of its own: it shares only the config store with the data
host (as front-ends share MongoDB in production), so a file it made locally would show.
"""

from __future__ import annotations

import asyncio

import pytest
from storekit import StoreProcess, client_settings

from sealmail.config.sqlite import SQLiteConfigStore
from sealmail.errors import InvalidInput
from sealmail.services import aliases, credentials, domains, mailboxes
from sealmail.store.errors import MailboxElsewhere, StoreUnavailable
from sealmail.store.remote import RemoteMailStore

from support import free_port

ADDRESS = "rémi@example.test"
RAW = b"From: a@example.test\r\nTo: b@example.test\r\nSubject: homes\r\n\r\nbody\r\n"


@pytest.fixture
def data_host(sealmail_bin, settings, certs, redis_url, tmp_path):
    proc = StoreProcess(
        sealmail_bin, settings.data_dir, certs, free_port(), tmp_path / "store.log", redis_url, store_host="data-1"
    )
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def config(settings):
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = SQLiteConfigStore(settings.config_db_path)  # the shared config store (MongoDB in production)
    yield store
    store.close()


@pytest.fixture
def front(settings, certs, data_host, tmp_path):
    """A front-end's settings: its own (empty) data directory, the store at the data host."""
    return client_settings(settings.model_copy(update={"data_dir": tmp_path / "front"}), certs, data_host.port)


def _files(data_dir):
    return sorted(p.name for p in (data_dir / "mailboxes").glob("*")) if (data_dir / "mailboxes").exists() else []


def _account(config, front) -> tuple[str, str]:
    domains.add_domain(config, "example.test")
    aliases.add_alias(config, ADDRESS)
    password = credentials.set_password(config, front, ADDRESS)
    credential = config.get_credential(aliases.get_alias(config, ADDRESS).id)
    assert credential is not None
    assert credential.mailbox_id is not None
    return credential.mailbox_id, password


def test_split_mode_creates_the_mailbox_on_the_data_host_and_records_its_home(config, front, settings) -> None:
    """A new alias's mailbox is made by the store (data host), never under the front-end's data dir."""
    mailbox_id, password = _account(config, front)
    assert f"{mailbox_id}.sqlite" in _files(settings.data_dir)
    assert _files(front.data_dir) == []
    home = config.get_mailbox_home(mailbox_id)
    assert home is not None
    assert home.host == "data-1"
    # ... and the front-end opens it through the store with the password's keys
    unlocked = credentials.unlock(config, front, ADDRESS, password)

    async def go() -> None:
        store = RemoteMailStore.from_settings(front)
        try:
            handle = await store.open(unlocked.mailbox_id, unlocked.secrets)
            await handle.append("INBOX", RAW)
            assert len(await handle.uids("INBOX")) == 1
            await handle.release()
        finally:
            await store.close()

    asyncio.run(go())


def test_split_mode_removing_an_alias_deletes_its_files_and_home_on_the_data_host(config, front, settings) -> None:
    mailbox_id, _ = _account(config, front)
    aliases.remove_alias(config, front, ADDRESS)
    assert not any(name.startswith(mailbox_id) for name in _files(settings.data_dir))
    assert config.get_mailbox_home(mailbox_id) is None


def test_split_mode_reset_and_domain_removal_go_through_the_store(config, front, settings) -> None:
    first, _ = _account(config, front)
    credentials.set_password(config, front, ADDRESS, reset_mailbox=True)
    second = config.get_credential(aliases.get_alias(config, ADDRESS).id).mailbox_id
    assert second != first
    assert config.get_mailbox_home(first) is None
    assert config.get_mailbox_home(second).host == "data-1"
    assert [n for n in _files(settings.data_dir) if n.endswith(".sqlite")] == [f"{second}.sqlite"]
    domains.remove_domain(config, front, "example.test")
    assert [n for n in _files(settings.data_dir) if n.endswith(".sqlite")] == []
    assert config.list_mailbox_homes() == []
    assert _files(front.data_dir) == []


def test_the_store_refuses_a_mailbox_whose_home_is_another_data_host(config, front) -> None:
    """One writer per mailbox: a store opens and writes only the mailboxes recorded as living on it."""
    mailbox_id, password = _account(config, front)
    unlocked = credentials.unlock(config, front, ADDRESS, password)
    config.set_mailbox_home(mailbox_id, "data-2")  # moved away (or recorded by another host)

    async def go() -> None:
        store = RemoteMailStore.from_settings(front)
        try:
            with pytest.raises(MailboxElsewhere, match="data-2"):
                await store.open(mailbox_id, unlocked.secrets)
            with pytest.raises(MailboxElsewhere):
                await store.deliver_async(mailbox_id, unlocked.credential.public_key, RAW)
        finally:
            await store.close()

    asyncio.run(go())
    with pytest.raises(MailboxElsewhere):
        mailboxes.delete(config, front, mailbox_id)


def test_creating_an_account_while_the_store_is_down_fails_temporarily(config, front, data_host) -> None:
    data_host.stop()
    domains.add_domain(config, "example.test")
    aliases.add_alias(config, ADDRESS)
    with pytest.raises(StoreUnavailable):
        credentials.set_password(config, front, ADDRESS)
    assert _files(front.data_dir) == []


def test_one_host_records_no_home_unless_store_host_is_set(config, settings) -> None:
    """Without the new settings a single host works as before; a data host's own CLI records homes."""
    mailboxes.create(config, settings, "a" * 24, b"k" * 32)
    assert config.get_mailbox_home("a" * 24) is None
    named = settings.model_copy(update={"store_host": "data-1"})
    mailboxes.create(config, named, "b" * 24, b"k" * 32)
    assert config.get_mailbox_home("b" * 24).host == "data-1"
    mailboxes.delete(config, named, "b" * 24)
    assert config.get_mailbox_home("b" * 24) is None
    with pytest.raises(InvalidInput):
        config.set_mailbox_home("c" * 24, " ")


def test_the_data_hosts_backup_finds_mailboxes_made_through_the_store(config, front, settings, tmp_path) -> None:
    """Backups run on the data host: the files the store created for a front-end are in its snapshot."""
    from sealmail.backup.snapshot import collect

    mailbox_id, _ = _account(config, front)
    staging = tmp_path / "staging"
    staging.mkdir()
    names = {item.name for item in collect(settings, None, staging)}
    assert f"data/mailboxes/{mailbox_id}.sqlite" in names
