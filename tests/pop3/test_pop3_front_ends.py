"""POP3 on several front-ends sharing one data host's store (issue 19, split mode).

RFC 1939 §8: "the POP3 server ... acquire[s] an exclusive-access lock on the maildrop". With
front-ends on several hosts a lock in one host's files holds only there: the store grants it, per
mailbox, to one session at a time, and it ends with that session or its front-end's connection.
Each front-end here has a data directory of its own (only the config store is shared), so a lock
file on a front-end could not make these tests pass.
"""

from __future__ import annotations

import poplib

import pytest
from storekit import StoreThread

import mailgen
from pop3kit import Running, connect, deliver, login


def message(n: int) -> bytes:
    return mailgen.message(n).replace("rémi@".encode(), b"remi@")


def _refused_in_use(running: Running, context, account) -> None:
    client = connect(running, context)
    try:
        client.user(account.address)
        with pytest.raises(poplib.error_proto, match=r"\[IN-USE\]"):
            client.pass_(account.password)
    finally:
        client.close()


@pytest.fixture
def data_host(pop3_settings, tmp_path):
    store = StoreThread(pop3_settings, tmp_path / "tls")
    yield store
    store.stop()


@pytest.fixture
def front_end(pop3_settings, data_host, tmp_path):
    started: list[Running] = []

    def start(name: str) -> Running:
        data_dir = tmp_path / name
        data_dir.mkdir()
        # The shared config store (MongoDB in production); mailboxes only through the store.
        (data_dir / "config.sqlite").symlink_to(pop3_settings.config_db_path)
        running = Running(data_host.client_settings(pop3_settings.model_copy(update={"data_dir": data_dir})))
        started.append(running)
        return running

    yield start
    for running in started:
        if not running.loop.is_closed():  # a test may have stopped one already
            running.stop()


def test_the_maildrop_lock_holds_across_front_ends(front_end, pop3_settings, account, client_context) -> None:
    """RFC 1939 §8 / RFC 2449 §8.1.2: a second session on another front-end gets -ERR [IN-USE]."""
    deliver(pop3_settings, account, message(1))
    first, second = front_end("front-a"), front_end("front-b")
    holder = login(first, client_context, account)
    assert holder.stat()[0] == 1
    _refused_in_use(second, client_context, account)
    holder.dele(1)
    holder.quit()  # UPDATE, then the lock is released
    again = login(second, client_context, account)
    assert again.stat()[0] == 0
    again.quit()


def test_a_front_end_that_loses_the_store_lets_go_of_the_lock(
    front_end, pop3_settings, account, client_context
) -> None:
    """The lock is the front-end session's lease on the store: it ends with that front-end's connection,
    so a host that dies (or is cut off) does not lock the maildrop forever, and the cut-off session
    cannot write any more once another session holds the lock (one writer, RFC 1939 §8)."""
    deliver(pop3_settings, account, message(1), message(2))
    first, second = front_end("front-a"), front_end("front-b")
    holder = login(first, client_context, account)
    holder.dele(1)
    _refused_in_use(second, client_context, account)
    first.call(first.server.ctx.mailstore.close())  # front-end A's connection to the store ends
    taker = login(second, client_context, account)
    assert taker.stat()[0] == 2
    with pytest.raises(poplib.error_proto, match=r"\[SYS/TEMP\]"):
        holder.retr(2)  # A's session reconnects, but the lock is taken: it may not go on
    holder.close()
    taker.quit()
    again = login(second, client_context, account)
    assert again.stat()[0] == 2  # A's DELE without a QUIT changed nothing
    again.quit()
