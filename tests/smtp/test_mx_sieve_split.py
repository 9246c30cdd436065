"""Sieve at delivery on a front-end MX whose mailboxes and config store are a data host's (issue 19).

Real parts: ``sealmail serve store`` in its own process (killed with SIGKILL), the MX with
``store_url`` and ``config_backend=store`` (no config file of its own), real SMTP and the mailbox read
through the store channel. The filing travels inside the sealed record (the MX seals, the data host
appends, whoever holds the key drains), so every copy is in the mailbox once; while the data host is
away no script can be read: the message is held sealed and, handed over later, kept in INBOX, and
the MX's log says why.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
from datetime import UTC, datetime

import pytest
from storekit import SplitMx

from sealmail.services import credentials, sievescripts
from sealmail.services.resolve import resolve
from sealmail.smtp.outbox import Outbox
from sealmail.store.model import Filing, Placement

from support import ComponentThread, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.tool("dnsmasq", "redis-server")]
ADDRESS = "demo@example.test"


def _message(subject: str) -> bytes:
    return (
        f"From: <a@example.org>\r\nTo: <{ADDRESS}>\r\nMessage-ID: <{subject.replace(' ', '.')}@example.org>\r\n"
        f"Subject: {subject}\r\n\r\nbody of {subject}\r\n"
    ).encode()


@pytest.fixture
def split(settings, config, redis_url, sealmail_bin, tmp_path):
    s = SplitMx(
        settings,
        config,
        redis_url,
        sealmail_bin,
        tmp_path,
        ADDRESS,
        config_backend="store",  # the config store too is the data host's: away with it
        mx_lookup_fresh_seconds=0.0,  # every RCPT asks: what the store answers now decides
    )
    sievescripts.save_and_activate(
        config,
        resolve(config, ADDRESS).alias.id,
        "filing",
        'require ["fileinto", "copy", "mailbox", "imap4flags"];\n'
        'fileinto :copy "Archive";\nfileinto :copy :create :flags "\\\\Seen" "Lists/sieve";\n',
    )
    s.mailbox_id = credentials.unlock(config, settings, ADDRESS, s.password).mailbox_id
    yield s
    s.stop()


def _folders(s: SplitMx, *names: str) -> dict[str, list[tuple[frozenset[str], bytes]]]:
    """Each folder's (flags, message) read through the store channel (opening drains the spool)."""

    async def read(handle) -> dict[str, list[tuple[frozenset[str], bytes]]]:
        found = {}
        for name in names:
            infos = await handle.messages(name)
            found[name] = [(i.flags, await handle.raw(i.body_id)) for i in infos]
        return found

    return s.read(read)


def _send(port: int, subject: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.sendmail("a@example.org", [ADDRESS], _message(subject))  # raises unless 250


def test_every_copy_a_script_files_reaches_the_data_host_once(split) -> None:
    """RFC 3894 / RFC 5490 / RFC 5232 through the store channel: the MX seals one record naming three
    copies; the data host's drain stores each once (a second opening drains nothing again). The jobs
    component's path (``deliver`` sealed on the data host) carries a filing the same way."""
    s = split
    mx = ComponentThread("mx", s.settings)
    try:
        _send(mx.ports["mx"], "filed remotely")
    finally:
        mx.stop()

    async def through_jobs_path() -> None:
        store = s.remote()
        try:
            credential = s.config.get_credential(resolve(s.config, ADDRESS).alias.id)
            filing = Filing((Placement("Archive", ("$Remote",)),), "INBOX")
            await asyncio.to_thread(
                store.deliver, s.mailbox_id, credential.public_key, _message("sealed there"), datetime.now(UTC), filing
            )
        finally:
            await store.close()

    asyncio.run(through_jobs_path())
    for _ in range(2):
        found = _folders(s, "INBOX", "Archive", "Lists/sieve")
        subjects = {name: sorted(m.split(b"Subject: ")[1].split(b"\r\n")[0] for _, m in found[name]) for name in found}
        assert subjects == {
            "INBOX": [b"filed remotely"],
            "Archive": [b"filed remotely", b"sealed there"],
            "Lists/sieve": [b"filed remotely"],
        }
        assert [flags for flags, _ in found["Lists/sieve"]] == [frozenset({"\\Seen"})]
        assert sorted(flags for flags, _ in found["Archive"]) == [frozenset(), frozenset({"$Remote"})]


def test_with_the_config_store_away_the_message_is_held_and_kept_and_the_log_says_why(split, caplog) -> None:
    s = split
    outbox = Outbox(s.front / "outbox")
    mx = ComponentThread("mx", s.settings)
    try:
        port = mx.ports["mx"]
        _send(port, "while up")  # RCPT resolved the alias: it is known while the data host is away
        s.store.kill()
        with caplog.at_level(logging.WARNING, logger="sealmail.mx"):
            _send(port, "while away")
        assert len(outbox.entries()) == 1
        s.store.start()
        wait_for(lambda: not outbox.entries(), timeout=60, what="the outbox handed over")
    finally:
        mx.stop()
    found = _folders(s, "INBOX", "Archive", "Lists/sieve")
    subjects = {name: sorted(m.split(b"Subject: ")[1].split(b"\r\n")[0] for _, m in found[name]) for name in found}
    assert subjects == {
        "INBOX": [b"while away", b"while up"],  # kept: no script could be read
        "Archive": [b"while up"],
        "Lists/sieve": [b"while up"],
    }
    said = [r.getMessage() for r in caplog.records if "Sieve script" in r.getMessage()]
    assert any("could not be read" in line and "kept" in line for line in said), said
