"""Authenticated submission over real sockets (RFC 6409, RFC 8314, RFC 4954, RFC 3461)."""

from __future__ import annotations

import asyncio
import base64
import smtplib
import socket

import dkim
import pytest

from sealmail.net.drain import set_draining
from sealmail.queue.store import JobQueue, load_queue_key
from sealmail.services import aliases, credentials, domains
from sealmail.services.dnsrecords import records_for

from relayprobes import PROBES
from smtpkit import auth_plain, swaks, verified_tls


def _queued(settings) -> list:
    queue = JobQueue(settings.data_dir / "queue.sqlite", load_queue_key(settings.data_dir))
    try:
        return queue.claim("smtp", limit=100)
    finally:
        queue.close()


MESSAGE = (
    b"From: Alice <alice@example.test>\r\nTo: Bob <bob@b.test>\r\nSubject: Hello Bob\r\n"
    b"Date: Mon, 2 Nov 2026 10:00:00 +0000\r\nMessage-ID: <s1@example.test>\r\n\r\nHi Bob.\r\n"
)


async def test_implicit_tls_submission_is_signed_and_queued(sub) -> None:
    """RFC 8314 §3.3 implicit TLS on 465; AUTH PLAIN; one queue entry per recipient with the DSN parameters."""

    def send():
        with smtplib.SMTP_SSL("127.0.0.1", sub.tls_port, context=sub.context) as c:
            c.ehlo("client.example")
            assert "auth" in c.esmtp_features
            assert "dsn" in c.esmtp_features
            c.login("alice@example.test", sub.passwords["alice@example.test"])
            code, reply = c.docmd("MAIL FROM:<alice@example.test> RET=HDRS ENVID=abc123")
            assert code == 250, reply
            assert c.docmd("RCPT TO:<bob@b.test> NOTIFY=FAILURE,DELAY ORCPT=rfc822;bob@b.test")[0] == 250
            assert c.docmd("RCPT TO:<carol@c.test>")[0] == 250
            return c.data(MESSAGE)

    code, reply = await asyncio.to_thread(send)
    assert code == 250
    assert reply.startswith(b"2.0.0 Ok: queued as ")
    jobs = sorted(_queued(sub.settings), key=lambda j: j.meta["rcpt_to"])
    assert [j.meta["rcpt_to"] for j in jobs] == ["bob@b.test", "carol@c.test"]
    assert jobs[0].meta["dsn"] == {
        "ret": "HDRS",
        "envid": "abc123",
        "notify": "DELAY,FAILURE",
        "orcpt": "rfc822;bob@b.test",
    }
    assert jobs[1].meta["dsn"] == {"ret": "HDRS", "envid": "abc123"}
    signed = jobs[0].payload
    assert signed.count(b"DKIM-Signature:") == 2
    assert b"a=ed25519-sha256" in signed
    assert b"a=rsa-sha256" in signed
    txt = {
        f"{r.name}.".encode(): r.value.encode() for r in records_for(sub.settings, "example.test") if r.type == "TXT"
    }
    verifier = dkim.DKIM(signed)
    for index in range(2):
        assert verifier.verify(idx=index, dnsfunc=lambda name, timeout=5: txt.get(name))


async def test_starttls_port_refuses_auth_and_mail_in_clear(sub) -> None:
    """RFC 3207 §4 / RFC 8314: on 587 nothing happens before STARTTLS; then AUTH works."""

    def send():
        with smtplib.SMTP("127.0.0.1", sub.starttls_port, timeout=10) as c:
            c.ehlo("client.example")
            assert "auth" not in c.esmtp_features
            before = c.docmd("AUTH PLAIN " + base64.b64encode(b"\0alice@example.test\0x").decode())
            c.starttls(context=sub.context)
            c.ehlo("client.example")
            assert "auth" in c.esmtp_features
            c.login("alice@example.test", sub.passwords["alice@example.test"])
            return before, c.sendmail("alice@example.test", ["bob@b.test"], MESSAGE)

    before, refused = await asyncio.to_thread(send)
    assert before[0] == 530
    assert refused == {}
    (job,) = _queued(sub.settings)  # taken after STARTTLS and AUTH: queued for bob, signed
    assert job.payload.endswith(MESSAGE.split(b"\r\n\r\n", 1)[1])
    assert b"Subject: Hello Bob" in job.payload


async def test_mail_without_auth_is_refused(sub) -> None:
    def send():
        with smtplib.SMTP_SSL("127.0.0.1", sub.tls_port, context=sub.context) as c:
            c.ehlo("client.example")
            return c.docmd("MAIL FROM:<alice@example.test>")

    code, reply = await asyncio.to_thread(send)
    assert code == 530
    assert reply.startswith(b"5.7.0")


async def test_relay_probes_without_auth_get_530_on_both_ports(sub) -> None:
    """RFC 4954 §6 and RFC 6409 §4.3: submission takes no envelope before AUTH. Every open-relay probe
    of tests/relayprobes.py (percent hack, source routes, quoted local parts, address literals,
    trailing dots, subdomains, bang paths), on 465, on 587 in clear and on 587 after STARTTLS:
    MAIL, RCPT and DATA all get 530 5.7.0, and nothing is queued."""

    def probe_all(layer: str) -> list[str]:
        wrong = []
        for probe in PROBES:  # a session each: refused commands count towards the error limit
            if layer == "465":
                client = smtplib.SMTP_SSL("127.0.0.1", sub.tls_port, context=sub.context, timeout=10)
            else:
                client = smtplib.SMTP("127.0.0.1", sub.starttls_port, timeout=10)
            with client:
                client.ehlo("client.example")
                if layer == "587-starttls":
                    client.starttls(context=sub.context)
                    client.ehlo("client.example")
                for command in ("MAIL FROM:<alice@example.test>", "RCPT TO:" + probe.path, "DATA"):
                    code, text = client.docmd(command)
                    if (code, text[:6]) != (530, b"5.7.0 "):
                        wrong.append(f"{layer} {probe.id} {command}: {code} {text.decode()}")
        return wrong

    for layer in ("465", "587-clear", "587-starttls"):
        wrong = await asyncio.to_thread(probe_all, layer)
        assert not wrong, "\n".join(wrong)
    assert _queued(sub.settings) == []


async def test_wrong_password_and_unknown_user_get_535(sub) -> None:
    def attempt(user: str, password: str):
        with smtplib.SMTP_SSL("127.0.0.1", sub.tls_port, context=sub.context) as c:
            try:
                c.login(user, password)
            except smtplib.SMTPAuthenticationError as exc:
                return exc.smtp_code, exc.smtp_error
            return 235, b""

    assert await asyncio.to_thread(attempt, "alice@example.test", "wrong") == (
        535,
        b"5.7.8 Authentication credentials invalid",
    )
    assert (await asyncio.to_thread(attempt, "nobody@example.test", "x"))[0] == 535


async def test_a_client_sending_each_message_on_a_new_login_pays_one_derivation(sub) -> None:
    """Clients that sign in per message reuse the remembered check (services.logins); a wrong
    password next to it still fails with 535 (RFC 4954 §6)."""

    def attempt(password: str) -> int:
        with smtplib.SMTP_SSL("127.0.0.1", sub.tls_port, context=sub.context) as c:
            try:
                return c.login("alice@example.test", password)[0]
            except smtplib.SMTPAuthenticationError as exc:
                return exc.smtp_code

    logins = sub.component.app.logins
    codes = [await asyncio.to_thread(attempt, sub.passwords["alice@example.test"]) for _ in range(4)]
    assert codes == [235] * 4
    assert (logins.derivations, logins.hits) == (1, 3)
    assert await asyncio.to_thread(attempt, "wrong") == 535


async def test_a_failed_login_does_not_log_the_user_name_typed(sub, caplog) -> None:
    """RFC 4954 §6 (AUTH failures): the failure is logged with the peer, never the name typed (often a
    password typed in the wrong field)."""
    import logging

    caplog.set_level(logging.INFO)
    typed = "Tr0ub4dor&3-correct-horse"

    def attempt():
        with smtplib.SMTP_SSL("127.0.0.1", sub.tls_port, context=sub.context) as c:
            with pytest.raises(smtplib.SMTPAuthenticationError):
                c.login(typed, "anything")

    await asyncio.to_thread(attempt)
    logged = "\n".join(f"{r.getMessage()} {vars(r)}" for r in caplog.records)
    assert "failed login" in logged
    assert typed not in logged


async def test_brute_force_locks_the_account(sub) -> None:
    """Failed logins are throttled per account: even the right password is refused with 454 4.7.0 for a while."""

    def attempt(password: str):
        with smtplib.SMTP_SSL("127.0.0.1", sub.tls_port, context=sub.context) as c:
            c.ehlo("client.example")
            c.user, c.password = "alice@example.test", password
            return c.auth("PLAIN", c.auth_plain, initial_response_ok=True)  # one attempt, one mechanism

    def code_of(password: str) -> tuple[int, bytes]:
        try:
            return attempt(password)
        except smtplib.SMTPAuthenticationError as exc:
            return exc.smtp_code, exc.smtp_error

    codes = [(await asyncio.to_thread(code_of, f"guess{n}"))[0] for n in range(6)]
    assert codes[:5] == [535] * 5
    assert codes[5] == 454
    assert (await asyncio.to_thread(code_of, sub.passwords["alice@example.test"])) == (
        454,
        b"4.7.0 Too many failed logins, try again later",
    )


async def test_spoofed_sender_is_refused(sub) -> None:
    """Envelope sender and From: must be the signed-in alias (plus-addresses allowed)."""

    def send():
        with smtplib.SMTP_SSL("127.0.0.1", sub.tls_port, context=sub.context) as c:
            c.login("alice@example.test", sub.passwords["alice@example.test"])
            envelope = c.docmd("MAIL FROM:<bob@example.test>")
            c.rset()
            plus = c.docmd("MAIL FROM:<alice+lists@example.test>")
            c.rcpt("bob@b.test")
            header = c.data(MESSAGE.replace(b"From: Alice <alice@example.test>", b"From: CEO <ceo@example.test>"))
            return envelope, plus, header

    envelope, plus, header = await asyncio.to_thread(send)
    assert envelope[0] == 553
    assert envelope[1].startswith(b"5.7.1")
    assert plus[0] == 250
    assert header[0] == 553
    assert header[1].startswith(b"5.7.1")


async def test_eai_submission(sub) -> None:
    """RFC 6531: an internationalised address signs in and sends with SMTPUTF8."""
    message = ("From: Rémi <rémi@universitéxyz.fr>\r\nTo: bob@b.test\r\nSubject: Café\r\n\r\nÇa va ?\r\n").encode()

    def send():
        with smtplib.SMTP_SSL("127.0.0.1", sub.tls_port, context=sub.context) as c:
            c.ehlo("client.example")
            # smtplib's login() encodes credentials as ASCII; RFC 4616 PLAIN carries UTF-8.
            token = base64.b64encode(
                "\0rémi@universitéxyz.fr\0".encode() + sub.passwords["rémi@universitéxyz.fr"].encode()
            )
            assert c.docmd("AUTH", "PLAIN " + token.decode())[0] == 235
            return c.sendmail("rémi@universitéxyz.fr", ["bob@b.test"], message, mail_options=["SMTPUTF8"])

    assert await asyncio.to_thread(send) == {}
    (job,) = _queued(sub.settings)
    assert job.meta["smtputf8"] is True
    assert b"Message-ID: <" in job.payload  # added (RFC 6409 §8.3)
    assert b"d=xn--universitxyz-jeb.fr" in job.payload


@pytest.mark.tool("swaks")
async def test_swaks_tls_auth(sub) -> None:
    result = await asyncio.to_thread(
        swaks,
        sub.starttls_port,
        *verified_tls(sub.ca),
        *auth_plain("alice@example.test", sub.passwords["alice@example.test"]),
        *("--from", "alice@example.test", "--to", "bob@b.test", "--header", "From: alice@example.test"),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "235 2.7.0" in result.stdout
    assert "250 2.0.0 Ok: queued as" in result.stdout


def _as(sub, login: str, password: str, address: str) -> tuple[tuple[int, bytes], tuple[int, bytes] | None]:
    """Signed in as ``login``: MAIL FROM ``address``, then (when that was taken) DATA with ``From: address``."""
    with smtplib.SMTP_SSL("127.0.0.1", sub.tls_port, context=sub.context) as c:
        c.login(login, password)
        envelope = c.docmd(f"MAIL FROM:<{address}>")
        if envelope[0] != 250:
            return envelope, None
        c.rcpt("bob@b.test")
        return envelope, c.data(MESSAGE.replace(b"<alice@example.test>", f"<{address}>".encode()))


async def test_sender_authorisation_with_plus_addresses(sub, config) -> None:
    """RFC 6409 §6.1 / RFC 5321 §3.3: the submission server decides which senders a signed-in user
    may use. An alias may use its own address, and ``local+tag`` only when ``local`` is the signed-in
    alias and ``local+tag`` is not itself another alias; an alias whose name holds a ``+`` is itself."""
    aliases.add_alias(config, "alice+x@example.test", recipients=["x-owner@example.org"])
    plus_password = credentials.set_password(config, sub.settings, "alice+x@example.test")
    alice = ("alice@example.test", sub.passwords["alice@example.test"])
    plus = ("alice+x@example.test", plus_password)

    own = await asyncio.to_thread(_as, sub, *alice, "alice@example.test")
    tagged = await asyncio.to_thread(_as, sub, *alice, "alice+news@example.test")
    someone_elses = await asyncio.to_thread(_as, sub, *alice, "alice+x@example.test")
    itself = await asyncio.to_thread(_as, sub, *plus, "alice+x@example.test")
    its_base = await asyncio.to_thread(_as, sub, *plus, "alice@example.test")
    tag_of_base = await asyncio.to_thread(_as, sub, *plus, "alice+x+y@example.test")  # delivers to alice

    assert [own[0][0], own[1][0]] == [250, 250]
    assert [tagged[0][0], tagged[1][0]] == [250, 250]
    assert someone_elses[0][0] == 553
    assert someone_elses[0][1].startswith(b"5.7.1")
    assert [itself[0][0], itself[1][0]] == [250, 250]
    assert its_base[0][0] == 553
    assert tag_of_base[0][0] == 553


async def test_from_header_naming_another_alias_is_refused(sub, config) -> None:
    """RFC 6409 §8.1 / §6.1: the From: header is checked like the envelope: a tag that is someone
    else's alias is refused even when the envelope sender is the user's own."""
    aliases.add_alias(config, "alice+x@example.test", recipients=["x-owner@example.org"])

    def send():
        with smtplib.SMTP_SSL("127.0.0.1", sub.tls_port, context=sub.context) as c:
            c.login("alice@example.test", sub.passwords["alice@example.test"])
            assert c.docmd("MAIL FROM:<alice@example.test>")[0] == 250
            c.rcpt("bob@b.test")
            return c.data(MESSAGE.replace(b"<alice@example.test>", b"<alice+x@example.test>"))

    code, reply = await asyncio.to_thread(send)
    assert code == 553
    assert reply.startswith(b"5.7.1")


async def test_a_changed_password_ends_the_signed_in_session_with_421(sub, config) -> None:
    """RFC 5321 §3.8: the server closes a session it must end with 421 (here 4.7.0: security, RFC 3463).

    Issue 16: a password changed (here by the admin, in the same process: no Redis) ends the
    sessions signed in with the old one at once, not at their next login."""

    def session() -> tuple[smtplib.SMTP_SSL, int]:
        c = smtplib.SMTP_SSL("127.0.0.1", sub.tls_port, context=sub.context, timeout=10)
        c.ehlo("client.example")
        c.login("alice@example.test", sub.passwords["alice@example.test"])
        assert c.docmd("MAIL FROM:<alice@example.test>")[0] == 250
        return c

    client = await asyncio.to_thread(session)
    await asyncio.to_thread(credentials.set_password, config, sub.settings, "alice@example.test")

    def read_until_closed() -> list[bytes]:
        client.sock.settimeout(5)
        lines = []
        reader = client.sock.makefile("rb")
        while line := reader.readline():
            lines.append(line)
        return lines

    lines = await asyncio.to_thread(read_until_closed)
    client.close()
    assert lines, "the server closed without a reply"
    assert lines[0].startswith(b"421 4.7.0 "), lines


def _greeting(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        return sock.makefile("rb").readline()


async def test_submission_drain_refuses_with_421_4_3_2_rfc5321_3_8(sub) -> None:
    """Draining (sealmail drain on): a new submission connection gets 421 4.3.2 (RFC 5321 §3.8)."""
    set_draining(sub.settings.run_dir, True)
    assert (await asyncio.to_thread(_greeting, sub.starttls_port)).startswith(b"421 4.3.2 ")
    set_draining(sub.settings.run_dir, False)
    assert (await asyncio.to_thread(_greeting, sub.starttls_port)).startswith(b"220")


async def test_a_domain_another_host_added_is_signed_with_the_key_dns_publishes(sub, config, tmp_path) -> None:
    """Several front-ends share one config store (issue 19): a domain added later on another host
    (its web admin or API made the DKIM keys there) is signed here with the very keys that host's
    DNS records publish (RFC 6376 §3.6.2.2: the verifier takes the key from DNS), not left unsigned."""
    other = sub.settings.model_copy(update={"dkim_dir": tmp_path / "other-host-dkim"})
    domains.add_domain(config, "later.test", other)
    aliases.add_alias(config, "lena@later.test", recipients=["elsewhere@example.org"])
    password = credentials.set_password(config, sub.settings, "lena@later.test")
    assert not (sub.settings.dkim_path / "later.test").exists(), "this host had the keys before it needed them"
    message = MESSAGE.replace(b"Alice <alice@example.test>", b"Lena <lena@later.test>")

    def send():
        with smtplib.SMTP_SSL("127.0.0.1", sub.tls_port, context=sub.context) as c:
            c.login("lena@later.test", password)
            return c.sendmail("lena@later.test", ["bob@b.test"], message)

    assert await asyncio.to_thread(send) == {}
    signed = _queued(sub.settings)[0].payload
    assert signed.count(b"DKIM-Signature:") == 2
    published = {f"{r.name}.".encode(): r.value.encode() for r in records_for(other, "later.test") if r.type == "TXT"}
    verifier = dkim.DKIM(signed)
    for index in range(2):
        assert verifier.verify(idx=index, dnsfunc=lambda name, timeout=5: published.get(name))
    # And this host now gives the same DKIM records as the host that made the keys.
    here = {(r.name, r.value) for r in records_for(sub.settings, "later.test", config) if "._domainkey." in r.name}
    assert here == {(r.name, r.value) for r in records_for(other, "later.test") if "._domainkey." in r.name}
