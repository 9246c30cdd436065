"""IMAP with the mailboxes on a data host (issue 19): ``sealmail serve store`` in its own process.

Two front-end IMAP servers share one mailbox through the store and see each other's changes
(RFC 9051 §7.5.1 EXPUNGE, §7.5.2 FETCH FLAGS as unsolicited updates after NOOP, §6.1.2); a killed
store turns commands into ``NO [UNAVAILABLE]`` (RFC 5530 §3), and service comes back by itself.
"""

from __future__ import annotations

import imaplib
import ssl

import pytest
import redis
from storekit import StoreProcess, client_settings, store_certs

from sealmail.config.sqlite import SQLiteConfigStore
from sealmail.store.remote import RemoteMailStore

from .conftest import ADDRESS, make_account
from support import ComponentThread, free_port, wait_for

MESSAGE = b"From: a@example.test\r\nSubject: hello\r\n\r\nbody\r\n"


@pytest.fixture
def split(sealmail_bin, imap_settings, redis_url, tmp_path):
    """A store process and two IMAP front-ends (separate components) reaching mailboxes through it."""
    redis.Redis.from_url(redis_url).flushdb()
    certs = store_certs(tmp_path / "tls")
    settings = imap_settings.model_copy(update={"redis_url": redis_url})
    settings = type(settings).model_validate(settings.model_dump())
    config = SQLiteConfigStore(settings.config_db_path)
    account = make_account(config, settings, ADDRESS)
    store = StoreProcess(sealmail_bin, settings.data_dir, certs, free_port(), tmp_path / "store.log", redis_url)
    store.start()
    front = client_settings(settings, certs, store.port)
    fronts = [ComponentThread("imap", front) for _ in range(2)]
    tls = ssl.create_default_context(cafile=str(certs.ca))
    try:
        yield store, fronts, account, tls
    finally:
        for server in fronts:
            server.stop()
        store.stop()
        config.close()


def _login(server: ComponentThread, account, tls: ssl.SSLContext) -> imaplib.IMAP4_SSL:
    client = imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=tls, timeout=30)
    client._encoding = "utf-8"
    client.login(f'"{account.address}"', account.password)
    return client


def test_two_front_ends_see_each_others_flags_and_expunges(split) -> None:
    """RFC 9051 §7.5.2/§7.5.1: a flag change and an expunge made through one front-end reach the other."""
    _store, fronts, account, tls = split
    assert all(isinstance(f.component.ctx.mailstore, RemoteMailStore) for f in fronts)  # type: ignore[attr-defined]
    one, two = _login(fronts[0], account, tls), _login(fronts[1], account, tls)
    try:
        one.append("INBOX", None, None, MESSAGE)
        one.append("INBOX", None, None, MESSAGE)
        one.select("INBOX")
        two.select("INBOX")
        one.uid("STORE", "1", "+FLAGS", "(\\Flagged)")

        def flagged() -> bool:
            two.noop()
            return any(b"\\Flagged" in r for r in two.untagged_responses.pop("FETCH", []))

        wait_for(flagged, what="the other front-end's FETCH FLAGS")
        one.uid("STORE", "2", "+FLAGS", "(\\Deleted)")
        one.expunge()

        def expunged() -> bool:
            two.noop()
            return two.untagged_responses.pop("EXPUNGE", []) == [b"2"]

        wait_for(expunged, what="the other front-end's EXPUNGE")
        status, data = two.uid("SEARCH", "ALL")
        assert status == "OK"
        assert data == [b"1"]
    finally:
        one.logout()
        two.logout()


def test_killed_store_answers_unavailable_then_recovers(split) -> None:
    """RFC 5530 §3: NO [UNAVAILABLE] while the store is down; the same session works once it is back."""
    store, fronts, account, tls = split
    client = _login(fronts[0], account, tls)
    try:
        client.append("INBOX", None, None, MESSAGE)
        client.select("INBOX")
        store.kill()
        status, data = client._simple_command("UID", "FETCH", "1:*", "(FLAGS)")
        assert status == "NO"
        assert b"[UNAVAILABLE]" in data[0]
        fresh = imaplib.IMAP4_SSL("127.0.0.1", fronts[1].ports["imaps"], ssl_context=tls, timeout=30)
        fresh._encoding = "utf-8"
        with pytest.raises(imaplib.IMAP4.error, match="UNAVAILABLE"):
            fresh.login(f'"{account.address}"', account.password)  # not "authentication failed"
        fresh.shutdown()
        store.start()
        status, data = client.uid("FETCH", "1:*", "(FLAGS)")
        assert status == "OK"
        assert b"FLAGS" in data[0]
        again = _login(fronts[1], account, tls)
        again.logout()
    finally:
        client.logout()
