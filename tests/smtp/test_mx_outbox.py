"""Issue 19: a front-end MX whose data host's store is away keeps accepting, holds only sealed mail
in a durable local outbox, and hands it over exactly once when the store is back.

Real parts: ``sealmail serve store`` in its own process (killed with SIGKILL), the MX component with
``store_url`` set and a data directory of its own (the front-end's), a real Redis (the MX's dedup
keys), real SMTP over loopback (RFC 5321 §4.1.1.4: a ``250`` after DATA means the server took
responsibility for the message, so every ``250`` must survive the data host being down).
"""

from __future__ import annotations

import asyncio
import re
import signal
import smtplib
import subprocess
import sys
import textwrap
from datetime import UTC, datetime

import pytest
from storekit import SplitMx

from sealmail.services import credentials
from sealmail.services.resolve import resolve
from sealmail.smtp.outbox import HandOver, Outbox, new_entry_id
from sealmail.store.spool import seal_message

from privacyscan import Secrets, assert_no_secrets
from support import ComponentThread, wait_for

pytestmark = pytest.mark.slow
ADDRESS = "demo@example.test"
MARKER = "quokka-outbox-marker"


def _message(i: int) -> bytes:
    return (
        f"From: <a@example.org>\r\nTo: <{ADDRESS}>\r\nMessage-ID: <held{i}@example.org>\r\n"
        f"Subject: {MARKER} {i}\r\n\r\n{MARKER} body {i}\r\n"
    ).encode()


@pytest.fixture
def split(settings, config, redis_url, sealmail_bin, tmp_path):
    """A data host (store process on the shared data directory) and a front-end directory for the MX."""
    s = SplitMx(settings, config, redis_url, sealmail_bin, tmp_path, ADDRESS)
    (s.front / "config.sqlite").symlink_to(settings.config_db_path)  # the shared config store
    yield s
    s.stop()


def _inbox_subjects(s: SplitMx) -> list[str]:
    """The INBOX's subjects, read through the store (opening the mailbox drains its spool)."""

    async def read(handle) -> list[bytes | None]:
        infos = await handle.messages("INBOX")
        headers = await handle.headers([i.body_id for i in infos])
        return [headers[i.body_id] for i in infos]

    found = [re.search(rb"Subject: (.*)\r\n", header) for header in s.read(read)]
    return [m.group(1).decode() for m in found if m]


def test_mx_holds_sealed_mail_while_the_store_is_away_and_hands_it_over_exactly_once(split) -> None:
    """Every ``250`` given while the store was killed is in the mailbox exactly once after it returns;
    the outbox held each message (on disk when its ``250`` was read) and never its plaintext."""
    s = split
    outbox = Outbox(s.front / "outbox")
    mx = ComponentThread("mx", s.settings)
    try:
        port = mx.ports["mx"]
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.sendmail("a@example.org", [ADDRESS], _message(0))  # the store is up: straight through
        assert outbox.entries() == []
        s.store.kill()
        n = 12
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            for i in range(1, n + 1):
                code, _ = client.noop()
                assert code == 250
                client.sendmail("a@example.org", [ADDRESS], _message(i))  # raises unless 250
                assert len(outbox.entries()) == i  # durable before the reply was read
        # RCPT keeps working for the alias while the data host is away (a new connection too)
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.sendmail("a@example.org", [ADDRESS], _message(n + 1))
        held = len(outbox.entries())
        assert held == n + 1
        scanned = assert_no_secrets(s.front, Secrets().text("text", MARKER).password("password", s.password))
        assert scanned >= held
        s.store.start()
        wait_for(lambda: not outbox.entries(), timeout=60, what="the outbox handed over")
    finally:
        mx.stop()
    subjects = _inbox_subjects(s)
    expected = [f"{MARKER} {i}" for i in range(n + 2)]
    assert sorted(subjects) == sorted(expected)  # each one exactly once
    assert len(subjects) == len(set(subjects)) == n + 2


HANDOVER_THEN_DIE = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from pathlib import Path
    from sealmail.smtp.outbox import HandOver, Outbox
    from sealmail.store.remote import RemoteMailStore, client_tls

    url, ca, cert, key, directory = sys.argv[1:]

    def die(self, entry_id):  # the store appended the entry; the file is not removed yet
        os.kill(os.getpid(), signal.SIGKILL)

    Outbox.remove = die

    async def main():
        store = RemoteMailStore(url, client_tls(Path(ca), Path(cert), Path(key)), timeout=10)
        await asyncio.to_thread(HandOver(Outbox(Path(directory)), store).run_once)

    asyncio.run(main())
    """
)


def test_a_hand_over_killed_between_append_and_removal_duplicates_nothing(split) -> None:
    """kill -9 of the hand-over after the store appended an entry but before its file went: the next
    hand-over brings it again, the store recognises the entry id, the mailbox has it once."""
    s = split
    unlocked = credentials.unlock(s.config, s.data_settings, ADDRESS, s.password)
    alias = resolve(s.config, ADDRESS).alias
    assert alias is not None
    credential = s.config.get_credential(alias.id)
    assert credential is not None
    assert credential.public_key is not None
    public = credential.public_key
    outbox = Outbox(s.front / "outbox")
    for i in range(3):
        sealed = b"".join(seal_message(public, unlocked.mailbox_id, _message(i), datetime.now(UTC)))
        outbox.put(new_entry_id(), unlocked.mailbox_id, sealed)
    argv = [s.settings.store_url, str(s.certs.ca), str(s.certs.client_cert), str(s.certs.client_key)]
    proc = subprocess.run(
        [sys.executable, "-c", HANDOVER_THEN_DIE, *argv, str(outbox.directory)],
        check=False,
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert len(outbox.entries()) == 3  # the first one is in the store's spool AND still here

    async def hand_over() -> int:
        store = s.remote()
        try:
            return await asyncio.to_thread(HandOver(outbox, store).run_once)
        finally:
            await store.close()

    assert asyncio.run(hand_over()) == 3
    assert outbox.entries() == []
    subjects = _inbox_subjects(s)
    assert sorted(subjects) == [f"{MARKER} {i}" for i in range(3)]
