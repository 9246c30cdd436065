"""The first sign-in of an alias makes its mailbox exactly once (issue 16, item 8).

An alias given a mailbox after its password was set gets its keys at its first sign-in. Mail
clients open several connections at once for their first sync: every one of them must end up in
the same mailbox, and mail delivered afterwards must reach all of them (RFC 9051 §6.3.2: each
session sees the one INBOX).
"""

from __future__ import annotations

import threading

from sealmail.services import aliases, credentials

from .conftest import Account
from mailgen import message

ADDRESS = "late@example.test"


def test_eight_concurrent_first_logins_share_one_mailbox(imap) -> None:
    aliases.add_alias(imap.config, ADDRESS, recipients=["elsewhere@example.org"])
    password = credentials.set_password(imap.config, imap.settings, ADDRESS)
    aliases.update_alias(imap.config, ADDRESS, storage=True)
    alias = aliases.get_alias(imap.config, ADDRESS)
    assert not imap.config.get_credential(alias.id).has_keys
    before = set((imap.settings.data_dir / "mailboxes").glob("*.sqlite"))

    imap.accounts[ADDRESS] = Account(ADDRESS, password, "", b"")
    # Eight is past the login limiter's 5 attempts per account: those in flight wait, none is refused.
    clients: list = [None] * 8
    errors: list[BaseException] = []
    start = threading.Barrier(len(clients))

    def login(i: int) -> None:
        try:
            start.wait()
            clients[i] = imap.client(ADDRESS)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=login, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors

    credential = imap.config.get_credential(alias.id)
    assert credential.has_keys
    made = set((imap.settings.data_dir / "mailboxes").glob("*.sqlite")) - before
    assert [p.stem for p in made] == [credential.mailbox_id]

    imap.accounts[ADDRESS] = Account(ADDRESS, password, credential.mailbox_id, credential.public_key)
    imap.deliver(message(1), ADDRESS)
    for client in clients:
        typ, data = client.select("INBOX")
        assert typ == "OK"
        assert data == [b"1"]
        client.logout()
