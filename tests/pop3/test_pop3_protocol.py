"""POP3 over real sockets, driven by poplib (and raw lines where poplib hides the wire), RFC by RFC."""

from __future__ import annotations

import base64
import dataclasses
import poplib
import socket
from datetime import UTC, datetime, timedelta

import pytest

from sealmail.pop3.maildrop import MaildropLock
from sealmail.store.mailstore import MailStore

import mailgen
from pop3kit import Wire, connect, deliver, login, make_account, open_mailbox
from support import wait_for


def message(n: int, **kwargs: str) -> bytes:
    """An all-ASCII test message (the UTF-8 tests make their own)."""
    return mailgen.message(n, **kwargs).replace("rémi@".encode(), b"remi@")


def _fetch(client: poplib.POP3, number: int) -> bytes:
    _, lines, _ = client.retr(number)
    return b"".join(line + b"\r\n" for line in lines)


# ---- RFC 2449: CAPA, and RFC 2595: STLS ----------------------------------------------------------------


def test_capabilities_before_and_after_stls(pop3, client_context) -> None:
    """RFC 2449 §5: CAPA; RFC 2595 §4: STLS offered in clear, no plaintext login until TLS is on."""
    client = poplib.POP3("127.0.0.1", pop3.ports["pop3"], timeout=30)
    assert client.getwelcome().startswith(b"+OK")
    caps = client.capa()
    assert "STLS" in caps
    assert "USER" not in caps
    assert "SASL" not in caps
    for name in ("TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"):
        assert name in caps
    assert caps["EXPIRE"] == ["NEVER"]
    assert caps["LOGIN-DELAY"] == ["0"]
    assert caps["UTF8"] == ["USER"]  # RFC 6856 §2
    client.stls(client_context)  # checks the certificate and the name "127.0.0.1"
    caps = client.capa()
    assert "STLS" not in caps
    assert "USER" in caps
    assert caps["SASL"] == ["PLAIN"]
    client.quit()


def test_plaintext_login_before_stls_is_refused(pop3, account, client_context) -> None:
    """RFC 2595 §2.2: USER (before PASS is sent) and AUTH are refused on a clear connection."""
    wire = Wire.plain(pop3)
    assert wire.line().startswith(b"+OK")
    assert wire.cmd(f"USER {account.address}").startswith(b"-ERR [AUTH] ")
    assert wire.cmd(f"PASS {account.password}").startswith(b"-ERR [AUTH] ")
    plain = base64.b64encode(f"\0{account.address}\0{account.password}".encode()).decode()
    assert wire.cmd(f"AUTH PLAIN {plain}").startswith(b"-ERR [AUTH] ")
    assert wire.cmd("STAT").startswith(b"-ERR")  # still not logged in
    wire.close()

    client = poplib.POP3("127.0.0.1", pop3.ports["pop3"], timeout=30)
    client.stls(client_context)
    client.user(account.address)
    assert client.pass_(account.password).startswith(b"+OK")
    client.quit()


def test_stls_drops_commands_pipelined_in_clear(pop3, client_context) -> None:
    """RFC 2595 §4 / CVE-2011-0411: nothing sent before the TLS handshake counts as sent under TLS."""
    sock = socket.create_connection(("127.0.0.1", pop3.ports["pop3"]), timeout=30)
    assert sock.recv(1024).startswith(b"+OK")
    sock.sendall(b"STLS\r\nQUIT\r\n")  # an injected QUIT would end the session after the handshake
    assert sock.recv(1024) == b"+OK Begin TLS negotiation\r\n"
    wire = Wire(client_context.wrap_socket(sock, server_hostname="localhost"))
    assert wire.cmd("CAPA") == b"+OK Capability list follows\r\n"
    assert b"USER\r\n" in wire.multiline()
    assert wire.cmd("STLS").startswith(b"-ERR")  # RFC 2595 §4: not again under TLS
    wire.close()


# ---- RFC 1939: AUTHORIZATION, TRANSACTION, UPDATE -------------------------------------------------


def test_login_stat_list_retr(pop3, pop3_settings, account, client_context) -> None:
    """RFC 1939 §4-5, §7: USER/PASS, then STAT and LIST sizes are the octets RETR sends (§11)."""
    raws = [message(n) for n in range(1, 4)]
    deliver(pop3_settings, account, *raws)  # sealed in the spool; login drains it (DESIGN §3)
    client = login(pop3, client_context, account)
    count, size = client.stat()
    assert (count, size) == (3, sum(map(len, raws)))
    _, listing, _ = client.list()
    assert listing == [f"{n} {len(raw)}".encode() for n, raw in enumerate(raws, start=1)]
    assert client.list(2).split()[1:] == [b"2", str(len(raws[1])).encode()]
    for n, raw in enumerate(raws, start=1):
        resp, lines, octets = client.retr(n)
        assert resp == f"+OK {len(raw)} octets".encode()
        assert octets == len(raw)
        assert b"".join(line + b"\r\n" for line in lines) == raw
    assert client.noop().startswith(b"+OK")
    assert client.quit().startswith(b"+OK")


def test_byte_stuffing(pop3, pop3_settings, account, client_context) -> None:
    """RFC 1939 §3: lines starting with "." are stuffed; a lone "." line does not end the message."""
    raw = message(1, body=".\r\n..two dots\r\n.leading\r\nmiddle . dot\r\n.\r\nlast\r\n")
    deliver(pop3_settings, account, raw)
    wire = Wire.tls(pop3, client_context)
    wire.line()
    assert wire.login(account).startswith(b"+OK")
    assert wire.cmd("RETR 1") == f"+OK {len(raw)} octets\r\n".encode()
    sent = wire.multiline()
    assert b".\r\n" not in sent[: sent.index(b"..\r\n")]
    assert b"...two dots\r\n" in sent
    assert b"..leading\r\n" in sent
    assert sum(len(line) for line in sent) == len(raw) + 4  # four stuffed lines
    wire.cmd("QUIT")
    wire.close()
    client = login(pop3, client_context, account)
    assert _fetch(client, 1) == raw  # poplib un-stuffs
    client.quit()


def test_bare_lf_messages_are_sent_and_counted_with_crlf(pop3, pop3_settings, account, client_context) -> None:
    """RFC 1939 §11: LIST counts line endings as sent (CRLF), also for a message stored with bare LF."""
    bare = b"Subject: bare\n\nline one\n.dot\nno newline at the end"
    deliver(pop3_settings, account, bare)
    client = login(pop3, client_context, account)
    expected = bare.replace(b"\n", b"\r\n") + b"\r\n"
    assert client.list(1).split()[2] == str(len(expected)).encode()
    _, lines, octets = client.retr(1)
    assert octets == len(expected)
    assert b"".join(line + b"\r\n" for line in lines) == expected
    client.quit()
    box = open_mailbox(pop3_settings, account)
    try:
        assert box.raw(box.messages("INBOX")[0].body_id) == bare  # the stored bytes are untouched
    finally:
        box.close()


def test_top(pop3, pop3_settings, account, client_context) -> None:
    """RFC 1939 §7: TOP n m is the header, the blank line and m lines of the body."""
    raw = message(1, body="one\r\n.two\r\nthree\r\n")
    deliver(pop3_settings, account, raw)
    client = login(pop3, client_context, account)
    header = raw[: raw.index(b"\r\n\r\n")].split(b"\r\n")
    assert client.top(1, 0)[1] == [*header, b""]
    assert client.top(1, 2)[1] == [*header, b"", b"one", b".two"]
    assert client.top(1, 50)[1] == [*header, b"", b"one", b".two", b"three"]
    client.quit()
    box = open_mailbox(pop3_settings, account)
    try:
        assert "\\Seen" not in box.messages("INBOX")[0].flags  # TOP does not count as reading
    finally:
        box.close()


def test_uidl_is_stable_and_unique(pop3, pop3_settings, account, client_context) -> None:
    """RFC 1939 §7: unique ids persist across sessions, and deleting one message changes no other's."""
    deliver(pop3_settings, account, *(message(n) for n in range(1, 5)))
    client = login(pop3, client_context, account)
    _, first, _ = client.uidl()
    ids = [line.split()[1] for line in first]
    assert len(set(ids)) == 4
    assert all(len(i) == 16 for i in ids)
    assert client.uidl(3).split()[1:] == [b"3", ids[2]]
    client.dele(2)
    assert [line.split()[0] for line in client.uidl()[1]] == [b"1", b"3", b"4"]
    client.quit()
    client = login(pop3, client_context, account)
    assert [line.split()[1] for line in client.uidl()[1]] == [ids[0], ids[2], ids[3]]
    client.quit()


def test_dele_takes_effect_only_at_quit(pop3, pop3_settings, account, client_context) -> None:
    """RFC 1939 §5-6: DELE marks, RSET unmarks, only QUIT removes; a dropped connection removes nothing."""
    raws = [message(n) for n in range(1, 4)]
    deliver(pop3_settings, account, *raws)
    client = login(pop3, client_context, account)
    assert client.dele(1).startswith(b"+OK")
    assert client.stat() == (2, len(raws[1]) + len(raws[2]))
    assert [line.split()[0] for line in client.list()[1]] == [b"2", b"3"]
    for command in (lambda: client.retr(1), lambda: client.list(1), lambda: client.dele(1), lambda: client.top(1, 0)):
        with pytest.raises(poplib.error_proto, match="deleted"):
            command()
    client.rset()
    assert client.stat()[0] == 3
    client.dele(2)
    client.close()  # the connection drops without QUIT
    # The server has ended that session once its exclusive maildrop lock (RFC 1939 §8) is free again.
    wait_for(lambda: _maildrop_free(pop3, account), timeout=10, what="the dropped session released the maildrop")

    client = login(pop3, client_context, account)
    assert client.stat()[0] == 3
    client.dele(2)
    assert client.quit() == b"+OK Sealmail POP3 server signing off (2 messages left)"
    client = login(pop3, client_context, account)
    assert [_fetch(client, n) for n in (1, 2)] == [raws[0], raws[2]]
    client.quit()


def test_retrieved_messages_are_seen_over_imap(pop3, pop3_settings, account, client_context) -> None:
    """A message RETR'd over POP3 shows as \\Seen to IMAP once the session ends with QUIT."""
    deliver(pop3_settings, account, message(1), message(2))
    client = login(pop3, client_context, account)
    client.retr(2)
    client.quit()
    box = open_mailbox(pop3_settings, account)
    try:
        assert ["\\Seen" in m.flags for m in box.messages("INBOX")] == [False, True]
    finally:
        box.close()


def test_delete_mode_trash(serve, pop3_settings, account, client_context) -> None:
    """pop3_delete_mode=trash: DELE moves the message to the \\Trash folder at QUIT."""
    running = serve(pop3_delete_mode="trash")
    deliver(pop3_settings, account, message(1), message(2))
    client = login(running, client_context, account)
    client.retr(1)
    client.dele(1)
    client.quit()
    box = open_mailbox(pop3_settings, account)
    try:
        assert len(box.messages("INBOX")) == 1
        (trashed,) = box.messages("Trash")
        assert box.raw(trashed.body_id) == message(1)
        assert "\\Seen" in trashed.flags
    finally:
        box.close()


# ---- errors: malformed commands, wrong states, limits ---------------------------------------------


def test_malformed_commands_get_err_and_the_session_goes_on(pop3, pop3_settings, account, client_context) -> None:
    """RFC 1939 §3 / RFC 2449 §3: a bad command gets -ERR; the session continues."""
    deliver(pop3_settings, account, message(1))
    wire = Wire.tls(pop3, client_context)
    wire.line()
    for bad in (b"", b"FROB", b"STAT", b"\xff\xfe", b"USER", b"PASS x", b"AUTH SCRAM-SHA-256", b"X" * 9000):
        assert wire.cmd(bad).startswith(b"-ERR"), bad
    assert wire.login(account).startswith(b"+OK")
    for bad in ("RETR", "RETR x", "RETR 0", "RETR 2", "RETR -1", "LIST 1 2", "TOP 1", "TOP 1 x", "TOP 1 -1"):
        assert wire.cmd(bad).startswith(b"-ERR"), bad
    for bad in ("USER x", "PASS x", "STLS", "UTF8", "AUTH PLAIN"):
        assert wire.cmd(bad).startswith(b"-ERR"), bad  # AUTHORIZATION-state commands
    assert wire.cmd("noop") == b"+OK\r\n"  # keywords are case-insensitive (RFC 1939 §3)
    assert wire.cmd("STAT") == f"+OK 1 {len(message(1))}\r\n".encode()
    assert wire.cmd("QUIT").startswith(b"+OK")
    wire.close()


def test_pipelining(pop3, pop3_settings, account, client_context) -> None:
    """RFC 2449 §6.6: several commands in one write get their replies in order."""
    deliver(pop3_settings, account, message(1), message(2))
    wire = Wire.tls(pop3, client_context)
    wire.line()
    wire.send(f"USER {account.address}\r\nPASS {account.password}\r\nSTAT\r\nUIDL 2\r\nRETR 1\r\nQUIT\r\n".encode())
    assert wire.line().startswith(b"+OK")
    assert wire.line().startswith(b"+OK Maildrop has 2")
    assert wire.line() == f"+OK 2 {len(message(1)) + len(message(2))}\r\n".encode()
    assert wire.line().startswith(b"+OK 2 ")
    assert wire.line().startswith(b"+OK ")
    assert b"".join(wire.multiline()) == message(1)
    assert wire.line().startswith(b"+OK")
    wire.close()


def test_connections_over_the_limit_are_refused(serve, client_context) -> None:
    running = serve(pop3_max_connections_per_ip=1)
    first = Wire.tls(running, client_context)
    assert first.line().startswith(b"+OK")
    second = Wire.tls(running, client_context)
    assert second.line().startswith(b"-ERR [SYS/TEMP]")
    assert second.line() == b""
    first.close()
    second.close()


def test_idle_session_is_logged_out_without_update(serve, pop3_settings, account, client_context) -> None:
    """RFC 1939 §3: the autologout timer closes the connection without a reply and without UPDATE."""
    running = serve()
    # The setting's minimum is RFC 1939's 10 minutes; the test shortens the server's copy.
    running.server.policy = dataclasses.replace(running.server.policy, idle_timeout=0.5)
    deliver(pop3_settings, account, message(1))
    wire = Wire.tls(running, client_context)
    wire.line()
    wire.login(account)
    assert wire.cmd("DELE 1").startswith(b"+OK")
    assert wire.line() == b""  # closed, nothing sent
    wire.close()
    client = login(running, client_context, account)
    assert client.stat()[0] == 1
    client.quit()


# ---- RFC 5034: AUTH PLAIN; RFC 3206: response codes; rate limits ----------------------------------


def test_auth_plain(pop3, account, client_context) -> None:
    """RFC 5034 §4 with RFC 4616: initial response, empty challenge, cancel, bad input."""
    good = base64.b64encode(f"\0{account.address}\0{account.password}".encode()).decode()
    wire = Wire.tls(pop3, client_context)
    wire.line()
    assert wire.cmd("AUTH") == b"+OK Supported SASL mechanisms\r\n"
    assert wire.multiline() == [b"PLAIN\r\n"]
    assert wire.cmd("AUTH PLAIN") == b"+ \r\n"
    assert wire.cmd("*") == b"-ERR Authentication cancelled\r\n"
    assert wire.cmd("AUTH PLAIN") == b"+ \r\n"
    assert wire.cmd("not base64!").startswith(b"-ERR")
    assert wire.cmd("AUTH PLAIN =").startswith(b"-ERR")
    other = base64.b64encode(f"boss@example.test\0{account.address}\0{account.password}".encode()).decode()
    assert wire.cmd(f"AUTH PLAIN {other}").startswith(b"-ERR [AUTH]")
    assert wire.cmd("AUTH PLAIN") == b"+ \r\n"
    assert wire.cmd(good).startswith(b"+OK Maildrop has 0 messages")
    wire.cmd("QUIT")
    wire.close()
    wire = Wire.tls(pop3, client_context)  # with the initial response on the command line
    wire.line()
    assert wire.cmd(f"AUTH PLAIN {good}").startswith(b"+OK")
    wire.cmd("QUIT")
    wire.close()


def test_failed_logins_say_auth_and_are_rate_limited(pop3, account, client_context) -> None:
    """RFC 3206 §4 [AUTH] for bad credentials; like IMAP, failures are throttled per account and IP."""
    client = connect(pop3, client_context)
    for _ in range(5):  # LimitPolicy.per_account
        client.user(account.address)
        with pytest.raises(poplib.error_proto, match=r"^b'-ERR \[AUTH\] Authentication failed'$"):
            client.pass_("wrong password")
    client.user(account.address)
    with pytest.raises(poplib.error_proto, match=r"\[SYS/TEMP\] Too many failed logins"):
        client.pass_(account.password)  # refused without even checking it
    client.user("nobody@example.test")
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        client.pass_("x")  # unknown users look the same as wrong passwords
    client.quit()


def test_second_pop3_session_is_in_use(pop3, account, client_context) -> None:
    """RFC 1939 §8 exclusive maildrop lock, answered with [IN-USE] (RFC 2449 §8.1.2)."""
    first = login(pop3, client_context, account)
    second = connect(pop3, client_context)
    second.user(account.address)
    with pytest.raises(poplib.error_proto, match=r"\[IN-USE\]"):
        second.pass_(account.password)
    first.quit()
    second.user(account.address)
    assert second.pass_(account.password).startswith(b"+OK")
    second.quit()


def test_login_delay(serve, account, client_context) -> None:
    """RFC 2449 §6.5: LOGIN-DELAY is advertised with the value applied, and [LOGIN-DELAY] refuses."""
    running = serve(pop3_login_delay=60)
    client = connect(running, client_context)
    assert client.capa()["LOGIN-DELAY"] == ["60"]
    client.user(account.address)
    client.pass_(account.password)
    client.quit()
    client = connect(running, client_context)
    client.user(account.address)
    with pytest.raises(poplib.error_proto, match=r"\[LOGIN-DELAY\]"):
        client.pass_(account.password)
    client.quit()


def test_expire_zero_removes_what_was_retrieved(serve, pop3_settings, account, client_context) -> None:
    """RFC 2449 §6.7: with EXPIRE 0 the client cannot leave retrieved mail on the server."""
    running = serve(pop3_expire=0)
    deliver(pop3_settings, account, message(1), message(2))
    client = login(running, client_context, account)
    assert client.capa()["EXPIRE"] == ["0"]
    client.retr(1)
    client.quit()
    client = login(running, client_context, account)
    assert client.stat() == (1, len(message(2)))
    assert _fetch(client, 1) == message(2)
    client.quit()


def test_expire_days_counts_from_arrival(serve, pop3_settings, account, client_context) -> None:
    """RFC 2449 §6.7: EXPIRE 30 keeps read mail at least 30 days after arrival; unread mail stays."""
    running = serve(pop3_expire=30)
    store_deliver = MailStore(pop3_settings.data_dir)
    old = datetime.now(UTC) - timedelta(days=40)
    for n in (1, 2):
        store_deliver.deliver(account.mailbox_id, account.public_key, message(n), old)
    store_deliver.deliver(account.mailbox_id, account.public_key, message(3))
    store_deliver.spool(account.mailbox_id).close()
    client = login(running, client_context, account)
    assert client.capa()["EXPIRE"] == ["30"]
    client.retr(1)  # old and read: expires at QUIT
    client.retr(3)  # read, but new
    client.quit()
    client = login(running, client_context, account)
    assert [_fetch(client, n) for n in (1, 2)] == [message(2), message(3)]
    client.quit()


# ---- RFC 6856: UTF-8 -----------------------------------------------------------------------------


def test_utf8_mode_and_downgrading(pop3, pop3_settings, client_context) -> None:
    """RFC 6856 §2: UTF-8 user names; raw UTF-8 headers only after UTF8, downgraded before (RFC 6858)."""
    account = make_account(pop3_settings, "zoë@exämple.test")
    raw = "From: Zoë <zoë@exämple.test>\r\nSubject: Café à Zürich\r\n\r\nDéjà vu.\r\n".encode()
    deliver(pop3_settings, account, raw)

    client = connect(pop3, client_context)
    assert client.utf8().startswith(b"+OK")
    client.user(account.address)
    client.pass_(account.password)
    assert client.list(1).split()[2] == str(len(raw)).encode()
    assert _fetch(client, 1) == raw
    with pytest.raises(poplib.error_proto):
        client.utf8()  # only in the AUTHORIZATION state
    client.quit()

    client = login(pop3, client_context, account)  # no UTF8 command: downgraded header
    size = int(client.list(1).split()[2])
    sent = _fetch(client, 1)
    assert len(sent) == size
    header, _, body = sent.partition(b"\r\n\r\n")
    assert header.isascii()
    assert b"=?utf-8?" in header
    assert body == "Déjà vu.\r\n".encode()  # bodies are never changed
    client.quit()


def _maildrop_free(pop3, account) -> bool:
    lock = MaildropLock.acquire(pop3.server.ctx.settings.data_dir, account.mailbox_id)
    if lock is None:
        return False
    lock.release_now()
    return True


# ---- the snapshot: mail arriving during a session ---------------------------------------------------


def test_mail_arriving_during_a_session_shows_at_the_next_login(pop3, pop3_settings, account, client_context) -> None:
    """RFC 1939 §5: message numbers and sizes stay fixed for a session; new mail waits for the next."""
    deliver(pop3_settings, account, message(1))
    client = login(pop3, client_context, account)
    assert client.stat()[0] == 1
    mailstore = pop3.server.ctx.mailstore  # local, or the data host's store (SEALMAIL_TEST_STORE=remote)
    pop3.call(mailstore.deliver_async(account.mailbox_id, account.public_key, message(2)))
    # The server's open handle drains the sealed spool into INBOX: the message is really there now.
    spool = MailStore(pop3_settings.data_dir).spool(account.mailbox_id)
    try:
        wait_for(lambda: spool.count() == 0, timeout=10, what="message 2 drained")
    finally:
        spool.close()
    assert client.stat()[0] == 1
    with pytest.raises(poplib.error_proto):
        client.retr(2)
    client.quit()
    client = login(pop3, client_context, account)
    assert client.stat()[0] == 2
    client.quit()


def test_server_stop_ends_sessions_without_update(serve, pop3_settings, account, client_context) -> None:
    running = serve()
    deliver(pop3_settings, account, message(1))
    client = login(running, client_context, account)
    client.dele(1)
    running.call(running.server.server.close(grace=0.2))
    client.close()
    other = serve()
    client = login(other, client_context, account)
    assert client.stat()[0] == 1
    client.quit()
