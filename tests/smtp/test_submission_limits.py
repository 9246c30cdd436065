"""Per-alias hourly sending limits of submission (``sealmail.services.sendlimits``), counted in a real
Redis, over real sockets.

Reply codes: RFC 5321 §4.2.2 and §4.2.5 (451: local error, try again; a 4yz reply to MAIL or RCPT
leaves the transaction as it was), RFC 3463 §3.8 X.7.1 (not authorized, a policy reason; transient
here). RFC 5321 §4.5.3.1.10's ``452 4.5.3`` stays the reply for too many recipients in one
transaction (``mx_max_recipients``), the hourly recipients limit is ``451 4.7.1``.
"""

from __future__ import annotations

import asyncio
import math
import re
import smtplib
import time
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from sealmail.queue.store import JobQueue, load_queue_key
from sealmail.services import aliases
from sealmail.smtp.submission import SubmissionComponent

from smtpkit import auth_plain, swaks, verified_tls

pytestmark = pytest.mark.tool("redis-server")

ALICE = "alice@example.test"
_WHEN = re.compile(r"try again after (\d\d):(\d\d) UTC$")


@pytest.fixture
def sub_overrides(request, redis_url) -> dict:
    """A database of the session's Redis for these tests alone, emptied per test; low limits (a test
    may change them, ``indirect``)."""
    import redis

    url = redis_url.rsplit("/", 1)[0] + "/5"
    redis.Redis.from_url(url).flushdb()
    return {
        "redis_url": SecretStr(url),
        "submission_max_messages_per_hour": 2,
        "submission_max_recipients_per_hour": 3,
        **getattr(request, "param", {}),
    }


def _message(n: int) -> bytes:
    return (
        f"From: Alice <{ALICE}>\r\nTo: bob@b.test\r\nSubject: note {n}\r\n"
        f"Date: Mon, 2 Nov 2026 10:00:00 +0000\r\nMessage-ID: <limit{n}@example.test>\r\n\r\nHello.\r\n"
    ).encode()


def _client(sub) -> smtplib.SMTP_SSL:
    client = smtplib.SMTP_SSL("127.0.0.1", sub.tls_port, context=sub.context, timeout=30)
    client.login(ALICE, sub.passwords[ALICE])
    return client


def _send(sub, n: int, rcpts: list[str]) -> tuple[int, bytes]:
    with _client(sub) as c:
        assert c.mail(ALICE)[0] == 250
        for rcpt in rcpts:
            assert c.rcpt(rcpt)[0] == 250
        return c.data(_message(n))


def _queued(settings) -> list[str]:
    """The recipients of every queued job (the queue is this host's SQLite file)."""
    queue = JobQueue(settings.data_dir / "queue.sqlite", load_queue_key(settings.data_dir))
    try:
        return sorted(job.meta["rcpt_to"] for job in queue.claim("smtp", limit=100))
    finally:
        queue.close()


def _reset_clocks(first_sent: float, last_sent: float) -> set[str]:
    """What the reply may say: an hour after the first accepted message, rounded up to the minute,
    for any moment of it between ``first_sent`` and ``last_sent`` (clock text only: midnight-safe)."""
    first, last = (math.ceil((t + 3600) / 60) for t in (first_sent, last_sent))
    return {datetime.fromtimestamp(m * 60, UTC).strftime("%H:%M") for m in range(first, last + 1)}


@pytest.mark.tool("swaks")
async def test_the_message_past_the_hourly_limit_is_refused_451_4_7_1_at_mail_from(sub) -> None:
    """Limit 2 an hour: two messages queued, the third refused at MAIL FROM (RFC 5321 §4.2.5: nothing
    of it is taken) with the documented text saying when the window has room again; a user's real
    client (swaks) sees the reply."""
    began = time.time()
    for n in (1, 2):
        code, reply = await asyncio.to_thread(_send, sub, n, [f"bob{n}@b.test"])
        assert code == 250, reply
    ended = time.time()
    result = await asyncio.to_thread(
        swaks,
        sub.starttls_port,
        *verified_tls(sub.ca),
        *auth_plain(ALICE, sub.passwords[ALICE]),
        *("--from", ALICE, "--to", "bob3@b.test", "--header", f"From: {ALICE}"),
    )
    assert result.returncode != 0
    # swaks marks a server's error reply "<~*" inside TLS
    line = next((x for x in result.stdout.splitlines() if x.startswith("<~* ")), result.stdout)
    assert line.startswith("<~* 451 4.7.1 Sending limit reached: 2 messages an hour; try again after ")
    when = _WHEN.search(line)
    assert when, line
    assert f"{when[1]}:{when[2]}" in _reset_clocks(began, ended)
    before, after = result.stdout.split(line, 1)
    assert "MAIL FROM" in before.splitlines()[-1]
    assert "RCPT TO" not in after  # the client stopped at MAIL FROM
    assert _queued(sub.settings) == ["bob1@b.test", "bob2@b.test"]


@pytest.mark.parametrize("sub_overrides", [{"submission_max_messages_per_hour": 0}], indirect=True)
async def test_recipients_past_the_hourly_limit_are_refused_one_by_one_with_451_4_7_1(sub) -> None:
    """Limit 3 recipients an hour: after two, the next transaction takes one more recipient and
    refuses the one after it (that recipient only); the message goes to those accepted, and the
    next transaction gets no recipient at all."""
    code, _ = await asyncio.to_thread(_send, sub, 1, ["a@b.test", "b@b.test"])
    assert code == 250

    def second() -> tuple[tuple[int, bytes], tuple[int, bytes], tuple[int, bytes]]:
        with _client(sub) as c:
            assert c.mail(ALICE)[0] == 250
            taken = c.rcpt("c@b.test")
            refused = c.rcpt("d@b.test")
            return taken, refused, c.data(_message(2))

    taken, refused, data = await asyncio.to_thread(second)
    assert taken[0] == 250
    assert refused[0] == 451
    assert refused[1].decode().startswith("4.7.1 Sending limit reached: 3 recipients an hour; try again after ")
    assert data[0] == 250
    assert _queued(sub.settings) == ["a@b.test", "b@b.test", "c@b.test"]

    def third() -> tuple[int, bytes]:
        with _client(sub) as c:
            assert c.mail(ALICE)[0] == 250  # a message is left this hour, no recipient
            return c.rcpt("e@b.test")

    code, text = await asyncio.to_thread(third)
    assert (code, text.decode().split(";")[0]) == (451, "4.7.1 Sending limit reached: 3 recipients an hour")


async def test_the_limit_is_checked_again_atomically_at_data(sub) -> None:
    """Two sessions that both passed MAIL FROM with one message left: the first DATA is queued, the
    second refused 451 4.7.1 before its 250 (never half-accepted), so racing sessions cannot pass it."""
    code, _ = await asyncio.to_thread(_send, sub, 1, ["a@b.test"])
    assert code == 250

    def race() -> tuple[tuple[int, bytes], tuple[int, bytes]]:
        with _client(sub) as one, _client(sub) as two:
            for c in (one, two):
                assert c.mail(ALICE)[0] == 250
                assert c.rcpt("b@b.test")[0] == 250
            return one.data(_message(2)), two.data(_message(3))

    first, second = await asyncio.to_thread(race)
    assert first[0] == 250
    assert second[0] == 451
    assert second[1].decode().startswith("4.7.1 Sending limit reached: 2 messages an hour")
    assert _queued(sub.settings) == ["a@b.test", "b@b.test"]


async def test_every_submission_host_counts_together_in_redis(sub) -> None:
    """A second submission host on the same Redis sees what the first one sent: the limit is the
    alias's, not a host's."""
    other = SubmissionComponent(sub.settings)
    ports = await other.start()
    try:
        code, _ = await asyncio.to_thread(_send, sub, 1, ["a@b.test"])
        assert code == 250

        def on_other(n: int) -> tuple[int, bytes]:
            with smtplib.SMTP_SSL("127.0.0.1", ports["submission_tls"], context=sub.context, timeout=30) as c:
                c.login(ALICE, sub.passwords[ALICE])
                return c.mail(ALICE)

        assert (await asyncio.to_thread(on_other, 2))[0] == 250
        code, _ = await asyncio.to_thread(_send, sub, 2, ["b@b.test"])
        assert code == 250
        code, text = await asyncio.to_thread(on_other, 3)
        assert (code, text.decode().split(";")[0]) == (451, "4.7.1 Sending limit reached: 2 messages an hour")
    finally:
        await other.stop()


async def test_redis_keys_name_the_alias_by_its_id_never_its_address(sub, config) -> None:
    import redis

    code, _ = await asyncio.to_thread(_send, sub, 1, ["a@b.test"])
    assert code == 250
    client = redis.Redis.from_url(sub.settings.redis_url.get_secret_value())
    keys = [k.decode() for k in client.keys("sealmail:send:*")]
    alias_id = config.find_alias("example.test", "exact", "alice").id
    assert sorted(keys) == ["sealmail:send:active", f"sealmail:send:alias:{alias_id}"]
    stored = b" ".join(m for k in keys for m in client.zrange(k, 0, -1))
    assert b"alice" not in stored
    assert b"b.test" not in stored


async def test_an_alias_blocked_by_an_administrator_gets_550_5_7_1_in_a_session_open_already(sub, config) -> None:
    """RFC 3463 §3.8 X.7.1, permanent: the block stays until an administrator lifts it. It is read at
    each MAIL FROM, so a client signed in before the block is refused from its next message on."""

    def session() -> list[tuple[int, bytes]]:
        with _client(sub) as c:
            replies = [c.mail(ALICE)]
            c.rset()
            aliases.update_alias(config, ALICE, sending_blocked=True)  # the admin's switch, meanwhile
            replies.append(c.mail(ALICE))
            aliases.update_alias(config, ALICE, sending_blocked=False)
            replies.append(c.mail(ALICE))
            return replies

    before, blocked, allowed = await asyncio.to_thread(session)
    assert before[0] == 250
    assert blocked == (550, b"5.7.1 This account may not send mail; contact your administrator")
    assert allowed[0] == 250
