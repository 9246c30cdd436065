"""Shared server plumbing: connection limits, bounded lines, STARTTLS, login throttling."""

from __future__ import annotations

import asyncio
import ssl

import pytest

from sealmail.net import limits
from sealmail.net.limits import Attempt, LimitPolicy, LoginLimiter, Refused, memory_limiter
from sealmail.net.listen import bind_sockets
from sealmail.net.server import Connection, Limits, LineServer, LineTooLong
from sealmail.net.tls import ServerTLS
from sealmail.tls.devca import ensure_dev_certificates


async def _echo(conn: Connection) -> None:
    await conn.send(b"hello\r\n")
    while True:
        try:
            line = await conn.readline(timeout=5)
        except LineTooLong:
            await conn.send(b"too long\r\n")
            continue
        if line.strip() == b"STARTTLS":
            await conn.send(b"go\r\n")
            await conn.starttls()
            continue
        if line.strip() == b"QUIT":
            await conn.send(b"bye\r\n")
            return
        await conn.send(b"secure " + line if conn.secure else line)


async def _refuse(conn: Connection) -> None:
    await conn.send(b"busy\r\n")


@pytest.fixture
async def server(tmp_path):
    certs = ensure_dev_certificates(tmp_path / "tls")
    srv = LineServer("test", _echo, _refuse, Limits(max_per_ip=2, max_line=64), ServerTLS(certs.cert, certs.key))
    port = await srv.listen(bind_sockets(["127.0.0.1"], 0), implicit_tls=False)
    client_ctx = ssl.create_default_context(cafile=certs.ca_cert)
    yield srv, port, client_ctx
    await srv.close()


async def test_lines_and_limits(server) -> None:
    _srv, port, _ = server
    r, w = await asyncio.open_connection("127.0.0.1", port)
    assert await r.readline() == b"hello\r\n"
    w.write(b"x" * 200 + b"\r\nshort\r\n")
    assert await r.readline() == b"too long\r\n"
    assert await r.readline() == b"short\r\n"  # the session goes on after an over-long line
    second = await asyncio.open_connection("127.0.0.1", port)
    assert await second[0].readline() == b"hello\r\n"
    third = await asyncio.open_connection("127.0.0.1", port)
    assert await third[0].readline() == b"busy\r\n"  # over the per-IP limit: refused, slot freed
    assert await third[0].read() == b""
    w.write(b"QUIT\r\n")
    assert await r.readline() == b"bye\r\n"
    second[1].close()
    await asyncio.sleep(0.1)
    fourth = await asyncio.open_connection("127.0.0.1", port)
    assert await fourth[0].readline() == b"hello\r\n"
    for writer in (w, second[1], third[1], fourth[1]):
        writer.close()
        await writer.wait_closed()


async def test_starttls(server) -> None:
    _, port, client_ctx = server
    r, w = await asyncio.open_connection("127.0.0.1", port)
    await r.readline()
    w.write(b"STARTTLS\r\n")
    assert await r.readline() == b"go\r\n"
    await w.start_tls(client_ctx, server_hostname="localhost")
    w.write(b"ping\r\n")
    assert await r.readline() == b"secure ping\r\n"
    w.close()
    await w.wait_closed()


async def test_implicit_tls_listener(tmp_path) -> None:
    certs = ensure_dev_certificates(tmp_path / "tls")
    srv = LineServer("test", _echo, _refuse, tls=ServerTLS(certs.cert, certs.key))
    port = await srv.listen(bind_sockets(["127.0.0.1"], 0), implicit_tls=True)
    try:
        ctx = ssl.create_default_context(cafile=certs.ca_cert)
        r, w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="127.0.0.1")
        assert await r.readline() == b"hello\r\n"
        w.write(b"ping\r\n")
        assert await r.readline() == b"secure ping\r\n"
        w.close()
    finally:
        await srv.close()


@pytest.fixture(params=["memory", "redis"])
async def limiter(request, redis_url):
    policy = LimitPolicy(per_ip=4, per_account=2, window_seconds=60)
    if request.param == "memory":
        yield memory_limiter(policy)
        return
    import secrets

    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    yield LoginLimiter(client, policy, prefix=f"test:{secrets.token_hex(4)}")
    await client.aclose()


async def _fail(limiter, ip: str, account: str | None) -> bool:
    """One wrong login: False when the limiter refused it before any check."""
    attempt = await limiter.reserve(ip, account)
    if isinstance(attempt, Refused):
        return False
    await attempt.failed()
    return True


async def test_login_limits_per_account_and_per_ip(limiter) -> None:
    assert await _fail(limiter, "192.0.2.1", "a@example.test")
    assert await _fail(limiter, "192.0.2.2", "a@example.test")
    assert await limiter.reserve("192.0.2.3", "a@example.test") == Refused(
        busy=False
    )  # the account is locked from anywhere
    attempt = await limiter.reserve("192.0.2.3", "b@example.test")
    assert isinstance(attempt, Attempt)
    await attempt.cancel()
    for account in ("c@x.test", "d@x.test"):
        await _fail(limiter, "192.0.2.9", account)
    await (await limiter.reserve("192.0.2.9", "e@x.test")).cancel()
    await _fail(limiter, "192.0.2.9", None)
    await _fail(limiter, "192.0.2.9", None)
    assert await limiter.reserve("192.0.2.9", "e@x.test") == Refused(
        busy=False
    )  # the address is locked for every account


async def test_success_clears_the_account(limiter) -> None:
    await _fail(limiter, "192.0.2.1", "a@example.test")
    await (await limiter.reserve("192.0.2.1", "a@example.test")).succeeded()
    await _fail(limiter, "192.0.2.1", "a@example.test")
    assert isinstance(await limiter.reserve("192.0.2.1", "a@example.test"), Attempt)


async def test_parallel_wrong_logins_reach_the_check_at_most_limit_times(limiter) -> None:
    """50 concurrent guesses: the attempt is reserved atomically before the (slow) password check."""
    checks = 0

    async def login() -> None:
        nonlocal checks
        attempt = await limiter.reserve("192.0.2.50", "victim@example.test")
        if isinstance(attempt, Refused):
            return
        checks += 1
        await asyncio.sleep(0.05)  # the Argon2 derivation
        await attempt.failed()

    await asyncio.gather(*(login() for _ in range(50)))
    assert checks == limiter.policy.per_account


async def test_parallel_right_logins_wait_for_each_other_instead_of_being_refused(limiter) -> None:
    """A mail client's first sync opens several connections at once with the right password: attempts
    in flight past the limit wait for the earlier ones instead of being refused as if they had failed."""
    signed_in = 0

    async def login() -> None:
        nonlocal signed_in
        attempt = await limiter.reserve("192.0.2.60", "owner@example.test")
        assert isinstance(attempt, Attempt)
        await asyncio.sleep(0.05)  # the Argon2 derivation
        await attempt.succeeded()
        signed_in += 1

    await asyncio.gather(*(login() for _ in range(8)))
    assert signed_in == 8


async def test_an_attempt_in_flight_never_reported_stops_counting(limiter, monkeypatch) -> None:
    """A process killed in the middle of a check leaves its reservation: it counts only for a while."""
    for _ in range(limiter.policy.per_account):
        assert isinstance(await limiter.reserve("192.0.2.70", "lost@example.test"), Attempt)
    assert await limiter.reserve("192.0.2.70", "lost@example.test", wait=0.2) == Refused(busy=True)
    monkeypatch.setattr(limits, "PENDING_SECONDS", 0)
    assert isinstance(await limiter.reserve("192.0.2.70", "lost@example.test", wait=0.2), Attempt)


async def test_a_login_still_crowded_after_the_wait_is_told_so_not_that_it_failed(limiter) -> None:
    """More logins of one account in flight than its limit, past the wait: refused as busy (try again in a
    moment), which the protocols word apart from a lockout after failures (found by bench/imap.py: a
    client opening many connections at once was told of failed logins that never happened)."""
    held = [await limiter.reserve("192.0.2.80", "many@example.test") for _ in range(limiter.policy.per_account)]
    refused = await limiter.reserve("192.0.2.80", "many@example.test", wait=0.2)
    assert refused == Refused(busy=True)
    assert not refused
    assert refused.reason == "too many logins in progress"
    for attempt in held:
        await attempt.succeeded()
    assert isinstance(await limiter.reserve("192.0.2.80", "many@example.test"), Attempt)


@pytest.mark.parametrize(
    "spelling",
    ["Victim@Example.Test", "victim@EXAMPLE.TEST.", "victim@\uff45xample.test", " victim@example.test "],
)
async def test_respelled_addresses_share_one_counter(limiter, spelling: str) -> None:
    """RFC 5890/UTS 46: the domain is compared in its mapped form, so every spelling is one account."""
    assert await _fail(limiter, "192.0.2.1", "victim@example.test")
    assert await _fail(limiter, "192.0.2.2", spelling)
    assert await limiter.reserve("192.0.2.3", "victim@example.test") == Refused(busy=False)
    assert await limiter.reserve("192.0.2.4", spelling) == Refused(busy=False)
