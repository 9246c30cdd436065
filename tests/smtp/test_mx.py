"""The inbound MX over real sockets: smtplib for exact replies, Debian's swaks as a real client."""

from __future__ import annotations

import asyncio
import base64
import smtplib
import socket
import ssl
import subprocess

import pytest

from sealmail.queue.store import JobQueue, load_queue_key
from sealmail.services import credentials
from sealmail.store.mailstore import MailStore

from mailgen import message
from privacyscan import Secrets, assert_no_secrets
from relayprobes import PROBES, refused_as_relay
from smtpkit import inbox, verified_tls
from smtpkit import swaks as run_swaks
from support import wait_for


def _client(port: int) -> smtplib.SMTP:
    client = smtplib.SMTP("127.0.0.1", port, timeout=10)
    client.ehlo("client.example.org")
    return client


async def _in_thread(fn, *args):
    return await asyncio.to_thread(fn, *args)


async def test_ehlo_advertises_the_extensions(mx) -> None:
    """RFC 5321 §4.1.1.1 EHLO; RFC 2920, 1870, 6152, 6531, 2034, 3207 keywords."""

    def ehlo():
        client = _client(mx.port)
        try:
            return client.ehlo_resp.decode(), client.esmtp_features
        finally:
            client.quit()

    text, features = await _in_thread(ehlo)
    assert text.splitlines()[0] == "mx.example.test"
    for keyword in ("pipelining", "size", "8bitmime", "smtputf8", "enhancedstatuscodes", "starttls"):
        assert keyword in features
    assert features["size"] == "200000"


async def test_rcpt_checks_happen_at_rcpt_time(mx) -> None:
    """Unknown user 5.1.1, not hosted 5.7.1 (no relay), disabled replies, mailbox without keys 4.2.0."""

    def rcpts():
        client = _client(mx.port)
        try:
            client.mail("sender@example.org")
            return {
                rcpt: client.rcpt(rcpt)
                for rcpt in (
                    "demo@example.test",
                    "DEMO+news@EXAMPLE.TEST",
                    "nobody@example.test",
                    "someone@gmail.test",
                    "off@example.test",
                    "later@example.test",
                    "quiet@example.test",
                    "nokeys@example.test",
                    "not an address",
                    "sales-eu@example.test",
                )
            }
        finally:
            client.quit()

    replies = await _in_thread(rcpts)
    assert replies["demo@example.test"] == (250, b"2.1.5 Recipient ok")
    assert replies["DEMO+news@EXAMPLE.TEST"][0] == 250
    assert replies["nobody@example.test"] == (550, b"5.1.1 No such user here")
    assert replies["someone@gmail.test"][0] == 550
    assert replies["someone@gmail.test"][1].startswith(b"5.7.1 ")
    assert replies["off@example.test"] == (550, b"5.2.1 Mailbox disabled, not accepting messages")
    assert replies["later@example.test"][0] == 450
    assert replies["later@example.test"][1].startswith(b"4.2.1")
    assert replies["quiet@example.test"][0] == 250  # accept and drop
    assert replies["nokeys@example.test"][0] == 450  # mail waits until the mailbox exists
    assert replies["not an address"][1].startswith(b"5.1.3")
    assert replies["sales-eu@example.test"][0] == 250


async def test_mx_relays_to_no_foreign_destination_in_any_spelling(mx, config) -> None:
    """RFC 5321 §3.6.2, §7.1: no relaying. Percent hack, source routes (§4.1.1.3, Appendix C: the
    route may be ignored, the final destination decides), quoted local parts, address literals,
    trailing dots, subdomains, bang paths (the table in tests/relayprobes.py): a foreign destination
    is refused with 550/553/554 and 5.7.1 or 5.1.x (RFC 3463), never 250; a hosted address spelled
    differently is taken only if the message then lands in that hosted mailbox. Nothing is ever
    queued for delivery elsewhere. (One session per probe, all probes in one test: an MX per probe
    would cost seconds each.)"""

    def send(probe):
        client = _client(mx.port)
        try:
            client.mail("sender@example.org")
            code, text = client.docmd("RCPT TO:" + probe.path)
            reply = f"{code} {text.decode()}"
            if code == 250:
                return reply, client.data(message(7, subject=f"relay probe {probe.id}"))
            return reply, None
        finally:
            client.quit()

    wrong = []
    for probe in PROBES:
        reply, data = await _in_thread(send, probe)
        if not reply.startswith(probe.mx + " "):
            wrong.append(f"{probe.id} {probe.path}: expected {probe.mx}, got {reply}")
        if probe.local is None or not reply.startswith("250"):
            if not refused_as_relay(reply):
                wrong.append(f"{probe.id} {probe.path}: not refused as a relay attempt: {reply}")
            continue
        if data is None or data[0] != 250:
            wrong.append(f"{probe.id} {probe.path}: RCPT accepted, DATA got {data}")
            continue
        stored = inbox(mx.settings, config, probe.local, mx.passwords[probe.local])
        if not any(f"Subject: relay probe {probe.id}".encode() in m for m in stored):
            wrong.append(f"{probe.id} {probe.path}: accepted but not delivered to {probe.local}")
    assert not wrong, "\n".join(wrong)
    queue = JobQueue(mx.settings.data_dir / "queue.sqlite", load_queue_key(mx.settings.data_dir))
    try:
        assert queue.claim("smtp", limit=100) == []
    finally:
        queue.close()


async def test_mx_offers_no_auth_and_refuses_it_rfc4954(mx) -> None:
    """RFC 4954 §1 and RFC 6409 §4.3: AUTH belongs to submission. The MX advertises no AUTH, before or
    after STARTTLS, answers AUTH with 502 5.5.1 (RFC 5321 §4.2.4: command not implemented) even
    with a mailbox's real password, and a session that tried AUTH still may not relay."""
    token = base64.b64encode(b"\0demo@example.test\0" + mx.passwords["demo@example.test"].encode()).decode()

    def session():
        client = _client(mx.port)
        try:
            seen = {"plain": dict(client.esmtp_features)}
            tried = {"plain": [client.docmd("AUTH", "PLAIN " + token), client.docmd("AUTH", "LOGIN")]}
            client.starttls(context=ssl.create_default_context(cafile=mx.ca))
            client.ehlo("client.example.org")
            seen["tls"] = dict(client.esmtp_features)
            tried["tls"] = [client.docmd("AUTH", "PLAIN " + token), client.docmd("AUTH", "LOGIN")]
            client.mail("demo@example.test")
            return seen, tried, client.rcpt("user@other.test")
        finally:
            client.quit()

    seen, tried, rcpt = await _in_thread(session)
    for layer in ("plain", "tls"):
        assert "auth" not in seen[layer], (layer, seen[layer])
        for code, text in tried[layer]:
            assert (code, text[:5]) == (502, b"5.5.1"), (layer, code, text)
    assert rcpt[0] == 550
    assert rcpt[1].startswith(b"5.7.1 ")


async def test_delivered_mail_is_visible_after_unlock(mx, config) -> None:
    raw = message(1, subject="Delivered through the MX")

    def send():
        client = _client(mx.port)
        try:
            return client.sendmail("sender@example.org", ["demo@example.test"], raw)
        finally:
            client.quit()

    assert await _in_thread(send) == {}
    (stored,) = inbox(mx.settings, config, "demo@example.test", mx.passwords["demo@example.test"])
    assert stored.endswith(raw)
    head = stored[: len(stored) - len(raw)].decode()
    assert head.startswith("Received: from client.example.org ([127.0.0.1])")
    assert "by mx.example.test (Sealmail) with ESMTP id " in head
    assert "Authentication-Results: mx.example.test;" in head
    page = config.query_logs(__import__("sealmail.config.models", fromlist=["LogQuery"]).LogQuery())
    assert [e.status for e in page.entries] == ["stored"]


async def test_delivery_and_drain_leave_no_text_key_or_password_on_disk(mx, config) -> None:
    """DESIGN §4: after MX delivery (sealed spool) and after the drain into the encrypted mailbox
    (with the mailbox open, its WAL live, and after it closed), no file anywhere under the data
    directory holds a delivered message's text, an alias password or an unwrapped key."""
    settings = mx.settings
    markers = {
        "demo@example.test": ("Subject-Okapi-Tamarind-5521", "Body-Okapi-Harpsichord-9043"),
        "rémi@universitéxyz.fr": ("Subject-Ibex-Verbena-3307", "Body-Ibex-Clavichord-6618"),
    }

    def send():
        client = _client(mx.port)
        try:
            for rcpt, (subject, body) in markers.items():
                raw = message(7, subject=subject, body=f"{body}\r\n{body} again, in a second line.\r\n")
                assert client.sendmail("sender@example.org", [rcpt], raw, mail_options=["SMTPUTF8"]) == {}
        finally:
            client.quit()

    await _in_thread(send)
    secrets = Secrets()
    for subject, body in markers.values():
        secrets.text("message subject", subject).text("message body", body)
    unlocked = {}
    for address, password in mx.passwords.items():
        secrets.password(f"password of {address}", password)
        unlocked[address] = credentials.unlock(config, settings, address, password)
        secrets.unlocked(address, unlocked[address])
    assert_no_secrets(settings.data_dir, secrets, min_files=4)  # delivered: sealed in the spool

    store = MailStore(settings.data_dir)
    for address, (subject, body) in markers.items():
        keys = unlocked[address]
        box = store.open_sync(keys.mailbox_id, keys.secrets.mailbox_key)
        try:
            assert box.drain(store.spool(keys.mailbox_id), keys.secrets.private_key).drained == 1
            (stored,) = [box.raw(i.body_id) for i in box.messages("INBOX")]
            assert subject.encode() in stored
            assert body.encode() in stored
            assert list((settings.data_dir / "mailboxes").glob("*.sqlite-wal")), "expected a live WAL to inspect"
            assert_no_secrets(settings.data_dir, secrets)  # drained, mailbox open
        finally:
            box.close()
    assert_no_secrets(settings.data_dir, secrets)  # drained and closed


async def test_eai_message_is_stored_byte_identical(mx, config) -> None:
    """RFC 6531: SMTPUTF8 envelope and UTF-8 headers, from and to rémi@universitéxyz.fr."""
    raw = (
        "From: Rémi <rémi@universitéxyz.fr>\r\nTo: Rémi <rémi@universitéxyz.fr>\r\n"
        "Subject: Café à Zürich ☕\r\nMessage-ID: <é1@universitéxyz.fr>\r\n\r\nÇa marche très bien.\r\n"
    ).encode()

    def send():
        client = _client(mx.port)
        try:
            return client.sendmail(
                "rémi@universitéxyz.fr", ["rémi@xn--universitxyz-jeb.fr"], raw, mail_options=["SMTPUTF8"]
            )
        finally:
            client.quit()

    assert await _in_thread(send) == {}
    (stored,) = inbox(mx.settings, config, "rémi@universitéxyz.fr", mx.passwords["rémi@universitéxyz.fr"])
    assert stored.endswith(raw)
    assert b" with UTF8SMTP id " in stored


async def test_oversized_messages_get_552_5_3_4(mx) -> None:
    """RFC 1870 §6 SIZE declared too big at MAIL; RFC 3463 5.3.4 for data past the limit."""

    def send():
        client = _client(mx.port)
        try:
            declared = client.docmd("MAIL FROM:<a@example.org> SIZE=900000")
            client.rset()
            client.mail("a@example.org")
            client.rcpt("demo@example.test")
            # smtplib returns the reply to the end of data (it raises only when DATA itself is refused).
            return declared, client.data(b"Subject: big\r\n\r\n" + (b"y" * 998 + b"\r\n") * 300)
        finally:
            client.close()

    declared, data = await _in_thread(send)
    assert declared[0] == 552
    assert declared[1].startswith(b"5.3.4")
    assert data[0] == 552
    assert data[1].startswith(b"5.3.4")


async def test_over_quota_mailbox_gets_552_5_2_2(mx) -> None:
    def send():
        client = _client(mx.port)
        try:
            client.mail("a@example.org", ["SIZE=5000"])
            return client.rcpt("tiny@example.test")
        finally:
            client.quit()

    code, text = await _in_thread(send)
    assert (code, text[:5]) == (552, b"5.2.2")


async def test_bare_lf_dot_does_not_end_data(mx, config) -> None:
    """SMTP smuggling: only CRLF.CRLF ends DATA; LF.LF / LF.CRLF inside are message content."""
    smuggled = (
        b"Subject: first\r\n\r\nbody\n.\nMAIL FROM:<evil@example.org>\r\nRCPT TO:<demo@example.test>\r\n"
        b"DATA\r\nSubject: smuggled\r\n\r\nx\r\n"
    )

    def send():
        with socket.create_connection(("127.0.0.1", mx.port), timeout=10) as sock:
            f = sock.makefile("rwb")
            f.readline()
            f.write(b"EHLO c.example.org\r\n")
            f.flush()
            while not f.readline().startswith(b"250 "):
                pass
            for line in (b"MAIL FROM:<a@example.org>\r\n", b"RCPT TO:<demo@example.test>\r\n", b"DATA\r\n"):
                f.write(line)
                f.flush()
                f.readline()
            f.write(smuggled + b".\r\n")
            f.flush()
            reply = f.readline()
            f.write(b"QUIT\r\n")
            f.flush()
            return reply

    assert (await _in_thread(send)).startswith(b"250 2.0.0")
    stored = inbox(mx.settings, config, "demo@example.test", mx.passwords["demo@example.test"])
    assert len(stored) == 1
    assert b"Subject: smuggled" in stored[0]  # inside the one message, not a second one


async def test_connection_limit_per_ip(mx) -> None:
    def connect_many():
        socks = [socket.create_connection(("127.0.0.1", mx.port), timeout=10) for _ in range(4)]
        try:
            return [s.makefile("rb").readline() for s in socks]
        finally:
            for s in socks:
                s.close()

    greetings = await _in_thread(connect_many)
    assert [g[:3] for g in greetings] == [b"220"] * 3 + [b"421"]
    assert greetings[3].startswith(b"421 4.7.0")


async def test_starttls_sessions_free_their_connection_slot(mx) -> None:
    """A STARTTLS session counts once against the per-IP limit and frees its slot when it ends.

    (aiosmtpd calls connection_made again for the TLS layer: counting that call leaked a slot per
    TLS session, until a sender's address was refused for good.)
    """

    def sessions():
        context = ssl.create_default_context(cafile=mx.ca)
        for _ in range(10):  # more than three times the limit of 3
            client = _client(mx.port)
            client.starttls(context=context)
            assert client.ehlo("client.example.org")[0] == 250
            client.quit()
        # The server has noticed the last close once its connection book counts nobody.
        wait_for(lambda: mx.component._book.total == 0, timeout=10, what="every session's slot freed")
        with socket.create_connection(("127.0.0.1", mx.port), timeout=10) as sock:
            return sock.makefile("rb").readline()

    assert (await _in_thread(sessions)).startswith(b"220")


async def test_too_many_errors_close_the_session(mx) -> None:
    def errors():
        with socket.create_connection(("127.0.0.1", mx.port), timeout=10) as sock:
            f = sock.makefile("rwb")
            f.readline()
            replies = []
            for _ in range(10):
                try:
                    f.write(b"BOGUS\r\n")
                    f.flush()
                    line = f.readline()
                except ConnectionError:
                    break
                if not line:
                    break
                replies.append(line)
            return replies

    replies = await _in_thread(errors)
    assert replies[-1].startswith(b"421 4.7.0")
    assert all(r.startswith(b"500 5.5.2") for r in replies[:-1])


async def test_starttls(mx, config) -> None:
    """RFC 3207: mail over STARTTLS is taken and lands in the mailbox; RFC 3848: ``with ESMTPS``."""
    raw = message(3)

    def send():
        client = _client(mx.port)
        try:
            client.starttls(context=ssl.create_default_context(cafile=mx.ca))
            client.ehlo("client.example.org")
            return client.sendmail("a@example.org", ["demo@example.test"], raw)
        finally:
            client.quit()

    assert await _in_thread(send) == {}
    (stored,) = inbox(mx.settings, config, "demo@example.test", mx.passwords["demo@example.test"])
    assert stored.endswith(raw)
    assert b" with ESMTPS id " in stored


async def test_multiple_recipients_one_acceptance_fanned_out(mx, config) -> None:
    def send():
        client = _client(mx.port)
        try:
            return client.sendmail(
                "a@example.org",
                ["demo@example.test", "rémi@universitéxyz.fr", "quiet@example.test"],
                message(4),
                mail_options=["SMTPUTF8"],
            )
        finally:
            client.quit()

    assert await _in_thread(send) == {}
    assert len(inbox(mx.settings, config, "demo@example.test", mx.passwords["demo@example.test"])) == 1
    assert len(inbox(mx.settings, config, "rémi@universitéxyz.fr", mx.passwords["rémi@universitéxyz.fr"])) == 1


@pytest.mark.tool("swaks")
async def test_swaks_as_a_real_client(mx, config) -> None:
    """Debian's swaks: plain, STARTTLS, pipelining, SMTPUTF8 is covered above; unknown recipient."""

    def swaks(*args: str) -> subprocess.CompletedProcess:
        return run_swaks(mx.port, "--helo", "swaks.example.org", *args)

    plain = await _in_thread(
        swaks, "--to", "demo@example.test", "--from", "x@example.org", "--header", "Subject: swaks plain"
    )
    assert plain.returncode == 0, plain.stdout + plain.stderr
    tls = await _in_thread(
        swaks,
        "--to",
        "demo@example.test",
        "--from",
        "x@example.org",
        *verified_tls(mx.ca),
        "--header",
        "Subject: swaks tls",
    )
    assert tls.returncode == 0, tls.stdout + tls.stderr
    assert "TLS started" in tls.stdout
    piped = await _in_thread(swaks, "--to", "demo@example.test", "--from", "x@example.org", "--pipeline")
    assert piped.returncode == 0, piped.stdout + piped.stderr
    unknown = await _in_thread(swaks, "--to", "nobody@example.test", "--from", "x@example.org")
    assert unknown.returncode != 0
    assert "550 5.1.1" in unknown.stdout
    stored = inbox(mx.settings, config, "demo@example.test", mx.passwords["demo@example.test"])
    assert len(stored) == 3


@pytest.mark.tool("swaks")
async def test_mx_answers_over_ipv4_and_ipv6_and_swaks_delivers_over_ipv6(mx, config) -> None:
    """RFC 6540: IPv6 is served like IPv4 (one port, both families; with one and with two session
    processes). RFC 5321 §4.4 TCP-info and §4.1.3: the Received line names an IPv6 peer as an
    IPv6 address literal, ``[IPv6:::1]``."""

    def greeting(address: str) -> bytes:
        with socket.create_connection((address, mx.port), timeout=10) as sock:
            return sock.makefile("rb").readline()

    for address in ("127.0.0.1", "::1"):
        assert (await _in_thread(greeting, address)).startswith(b"220 mx.example.test ESMTP"), address

    argv = ["swaks", "--server", "::1", "--port", str(mx.port), "--helo", "swaks.example.org"]
    argv += ["--to", "demo@example.test", "--from", "x@example.org", "--header", "Subject: over IPv6"]
    argv += verified_tls(mx.ca)
    sent = await _in_thread(
        lambda: subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    )
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "Connected to ::1." in sent.stdout
    (stored,) = inbox(mx.settings, config, "demo@example.test", mx.passwords["demo@example.test"])
    assert b"Subject: over IPv6" in stored
    assert b"Received: from swaks.example.org ([IPv6:::1])" in stored


async def test_simple_paths_parse_as_aiosmtpd_parses_them_rfc5321_4_1_2() -> None:
    """RFC 5321 §4.1.2 Path: the fast path for <dot-atom@domain> gives aiosmtpd's own answer, and
    every other form (quoted, commented, UTF-8, malformed) is still left to aiosmtpd's parser."""
    import random

    from aiosmtpd.smtp import SMTP

    from sealmail.smtp.protocol import SealmailSMTP

    class Handler:
        pass

    ours, theirs = SealmailSMTP(Handler(), book=None, max_errors=1), SMTP(Handler())
    samples = [
        "<a@b.c>",
        "<a@b.c> SIZE=100",
        "<a@b.c>  SIZE=100 BODY=8BITMIME",
        "<a@b.c>\t",
        "<a@b.c> (comment) SIZE=1",
        "<a@b.c>(x)",
        "< a@b.c>",
        "<a..b@c.d>",
        "<.a@b.c>",
        "<a.@b.c>",
        '<"quoted local"@b.c>',
        "<rémi@universitéxyz.fr> SMTPUTF8",
        "<@route:a@b.c>",
        "<a@[127.0.0.1]>",
        "<a@b..c>",
        "<a@-b.c>",
        "a@b.c",
        "<a@b.c",
        "<>",
        "",
        "<" + "x" * 65 + "@b.c>",
        "<" + "x" * 64 + "@b.c>",
    ]
    rng = random.Random(5321)
    pieces = ["a", "Z9", ".", "+", "-", "_", "@", "<", ">", " ", "\t", "(", ")", '"', "é", "[", "]", ":", ","]
    samples += ["<" + "".join(rng.choices(pieces, k=rng.randint(1, 14))) + ">" for _ in range(3000)]
    samples += ["<x@y.z>" + "".join(rng.choices(pieces, k=rng.randint(0, 8))) for _ in range(1000)]

    def outcome(server, arg):
        try:
            return server._getaddr(arg)
        except Exception as exc:  # the email package's parser trips on some garbage: so must we, then
            return type(exc)

    for arg in samples:
        assert outcome(ours, arg) == outcome(theirs, arg), arg
    from sealmail.smtp.protocol import _SIMPLE_PATH

    assert _SIMPLE_PATH.fullmatch("<user0+news@example.test> SIZE=4096")  # the common case takes the fast path
