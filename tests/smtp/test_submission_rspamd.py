"""Submission asks a real rspamd (``tests/rspamdkit.py``) about each message a signed-in user sends,
before it answers DATA (``sealmail.spam.outbound``), over real sockets.

Reply codes: RFC 5321 §4.2.2 (550 refused for policy, 451 try again later), RFC 3463 §3.8 X.7.1
(delivery not authorized, message refused).
"""

from __future__ import annotations

import asyncio
import logging
import smtplib

import pytest
from rspamdkit import GTUBE, JUNK_MARK

from sealmail.config.models import LogQuery
from sealmail.queue.store import JobQueue, load_queue_key

from support import free_port

pytestmark = pytest.mark.tool("rspamd", "dnsmasq", "redis-server")

ALICE = "alice@example.test"


@pytest.fixture
def sub_overrides(request, rspamd) -> dict:
    """Every submission server of this module scans with the session's rspamd (a test may add settings,
    ``indirect``, or ask for a port where nothing answers with ``{"down": True}``); one message an hour,
    so a refused message that counted would show."""
    extra = dict(getattr(request, "param", {}))
    url = f"http://127.0.0.1:{free_port()}" if extra.pop("down", False) else rspamd.url
    return {"rspamd_url": url, "rspamd_timeout": 5.0, "submission_max_messages_per_hour": 1, **extra}


def _message(subject: str, body: str = "Hello Bob, see you at lunch tomorrow.") -> bytes:
    return (
        f"From: Alice <{ALICE}>\r\nTo: Bob <bob@b.test>\r\nSubject: {subject}\r\n"
        f"Date: Mon, 2 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{subject.replace(' ', '.')}@example.test>\r\n"
        f"\r\n{body}\r\n"
    ).encode()


def _send(sub, raw: bytes) -> tuple[int, bytes]:
    with smtplib.SMTP_SSL("127.0.0.1", sub.tls_port, context=sub.context, timeout=30) as c:
        c.login(ALICE, sub.passwords[ALICE])
        c.mail(ALICE)
        c.rcpt("bob@b.test")
        return c.data(raw)


def _queued(settings) -> list[bytes]:
    queue = JobQueue(settings.data_dir / "queue.sqlite", load_queue_key(settings.data_dir))
    try:
        return [job.payload for job in queue.claim("smtp", limit=100)]
    finally:
        queue.close()


def _log(config) -> list[tuple[str, str]]:
    return [(e.status, e.detail) for e in config.query_logs(LogQuery(kind="delivery")).entries]


async def test_gtube_submitted_is_refused_550_5_7_1_and_costs_nothing(sub, config, caplog) -> None:
    """rspamd's reject of a signed-in user's message -> RFC 5321 §4.2.2 550, RFC 3463 5.7.1 with its
    message; nothing queued, the refusal in the delivery log, and the hourly limit (1) untouched. The
    process log names the alias by its id: no address in it."""
    caplog.set_level(logging.INFO)
    code, reply = await asyncio.to_thread(_send, sub, _message("offer", GTUBE.decode()))
    assert (code, reply) == (550, b"5.7.1 Gtube pattern")
    assert _queued(sub.settings) == []
    ((status, detail),) = _log(config)
    assert status == "rejected"
    assert detail.startswith("outbound spam check: reject, score ")
    code, _ = await asyncio.to_thread(_send, sub, _message("lunch"))
    assert code == 250  # the refused message did not count against the limit
    alias_id = config.find_alias("example.test", "exact", "alice").id
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("sealmail"))
    assert f"from alias {alias_id}: rspamd reject" in logged
    assert "alice" not in logged
    assert "b.test" not in logged


async def test_the_add_header_band_is_sent_unmarked_and_flagged_in_the_log(sub, config) -> None:
    """``add header`` on outbound mail: sent (a user's own mail is not lost to a borderline score), with
    no X-Spam-* field of ours on it, and the delivery log flags it with rspamd's score."""
    raw = _message(f"cheap watches {JUNK_MARK}")
    code, _ = await asyncio.to_thread(_send, sub, raw)
    assert code == 250
    (payload,) = _queued(sub.settings)
    assert b"X-Spam" not in payload
    assert payload.endswith(raw)
    ((status, detail),) = _log(config)
    assert status == "queued"
    assert "; flagged by rspamd, score " in detail


async def test_a_clean_message_is_sent_unflagged(sub, config) -> None:
    code, _ = await asyncio.to_thread(_send, sub, _message("lunch"))
    assert code == 250
    assert len(_queued(sub.settings)) == 1
    ((status, detail),) = _log(config)
    assert (status, "flagged" in detail) == ("queued", False)


@pytest.mark.parametrize("sub_overrides", [{"down": True}], indirect=True)
async def test_rspamd_down_sends_unchecked_by_default(sub) -> None:
    """``rspamd_unavailable=accept``: a filter that cannot answer does not stop a user's mail."""
    code, _ = await asyncio.to_thread(_send, sub, _message("lunch"))
    assert code == 250
    assert len(_queued(sub.settings)) == 1


@pytest.mark.parametrize("sub_overrides", [{"down": True, "rspamd_unavailable": "tempfail"}], indirect=True)
async def test_rspamd_down_with_tempfail_is_451_4_7_1(sub) -> None:
    """``rspamd_unavailable=tempfail``: RFC 5321 §4.2.2 451, the client keeps the message and retries."""
    code, reply = await asyncio.to_thread(_send, sub, _message("lunch"))
    assert (code, reply) == (451, b"4.7.1 Spam filter unavailable, try again later")
    assert _queued(sub.settings) == []
