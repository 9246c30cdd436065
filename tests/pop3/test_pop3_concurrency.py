"""An IMAP-style session and a POP3 session on one mailbox at the same time (docs/protocols.md, "POP3 and IMAP at once").

The IMAP side is what the IMAP server uses: its own ``MailStore`` (another process, in effect) with
``sign_in``, and a subscription on the Redis change bus. The rule under test: IMAP never locks POP3
out; POP3 works on its login snapshot; POP3's deletions reach IMAP at QUIT as ordinary expunges.
"""

from __future__ import annotations

import asyncio
import poplib

import pytest
from pydantic import SecretStr

from sealmail.config.sqlite import SQLiteConfigStore
from sealmail.services.logins import Logins
from sealmail.services.sessions import sign_in
from sealmail.store import events as ev
from sealmail.store.mailstore import MailStore

from pop3kit import deliver, login


def _message(n: int) -> bytes:
    return f"From: a@example.org\r\nSubject: message {n}\r\nMessage-ID: <c{n}@example.org>\r\n\r\nbody {n}\r\n".encode()


def test_imap_and_pop3_sessions_at_once(serve, pop3_settings, account, client_context, redis_url) -> None:
    running = serve(redis_url=SecretStr(redis_url))
    deliver(pop3_settings, account, *(_message(n) for n in (1, 2, 3)))

    loop = asyncio.new_event_loop()
    config = SQLiteConfigStore(pop3_settings.config_db_path)
    bus = ev.RedisBus(redis_url)
    imap_store = MailStore(pop3_settings.data_dir, bus)
    run = loop.run_until_complete
    try:
        imap = run(sign_in(Logins(pop3_settings), config, imap_store, account.address, account.password))
        changes = run(bus.subscribe(account.mailbox_id))
        box = imap.mailbox
        assert run(box.uids("INBOX")) == [1, 2, 3]

        pop = login(running, client_context, account)  # an open IMAP session does not lock POP3 out
        uidl = pop.uidl()[1]

        # IMAP expunges message 1 and a new message arrives, while the POP3 session is open.
        run(box.store_flags("INBOX", [1], "add", ["\\Deleted"]))
        run(box.expunge("INBOX"))
        run(box.append("INBOX", _message(4)))

        assert pop.stat() == (3, sum(len(_message(n)) for n in (1, 2, 3)))  # the login snapshot
        assert pop.uidl()[1] == uidl
        with pytest.raises(poplib.error_proto, match="removed by another session"):
            pop.retr(1)
        assert b"".join(line + b"\r\n" for line in pop.retr(2)[1]) == _message(2)
        pop.dele(1)  # deleting what IMAP removed already is harmless
        pop.dele(3)
        run(asyncio.sleep(0.2))
        assert run(box.uids("INBOX")) == [2, 3, 4]  # nothing changed before QUIT
        assert pop.quit() == b"+OK Sealmail POP3 server signing off (2 messages left)"

        # The IMAP session sees the POP3 deletion as an ordinary expunge, through the change bus.
        assert run(box.uids("INBOX")) == [2, 4]
        seen = []
        while (event := run(changes.get(5))) is not None:
            seen.append(event)
            if isinstance(event, ev.MessagesExpunged) and 3 in event.uids:
                break
        assert any(isinstance(e, ev.MessagesExpunged) and e.uids == (3,) for e in seen)
        assert "\\Seen" in run(box.messages("INBOX", [2]))[0].flags  # RETR'd over POP3

        pop = login(running, client_context, account)  # the next POP3 login sees IMAP's new message
        assert pop.stat()[0] == 2
        pop.quit()
        run(changes.close())
        run(imap.close())
    finally:
        run(imap_store.close())
        run(bus.close())
        config.close()
        loop.close()
