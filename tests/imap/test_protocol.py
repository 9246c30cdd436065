"""RFC behaviour over real sockets: imaplib for what clients do, the raw client for exact responses."""

from __future__ import annotations

import imaplib
import re
import time

import pytest

from .conftest import ADDRESS, ASCII_ADDRESS
from mailgen import message


def ok(result: tuple) -> list:
    typ, data = result
    assert typ == "OK", data
    return data


# ---- greeting, capabilities, login ---------------------------------------------------------------
def test_greeting_and_capabilities_before_and_after_login(imap) -> None:
    """RFC 9051 §7.1 (CAPABILITY response code in the greeting), §6.1.1, §6.2.3."""
    raw = imap.raw()
    assert raw.greeting.startswith(b"* OK [CAPABILITY IMAP4rev1 IMAP4rev2 ")
    assert b"AUTH=PLAIN" in raw.greeting
    assert b"SASL-IR" in raw.greeting
    assert b"STARTTLS" not in raw.greeting  # TLS is on already (port 993)
    raw.login(imap.account())
    caps = raw.command("c1 CAPABILITY")[0].decode()
    for cap in (
        "IDLE",
        "UIDPLUS",
        "MOVE",
        "NAMESPACE",
        "ID",
        "ENABLE",
        "LITERAL+",
        "SPECIAL-USE",
        "LIST-EXTENDED",
        "LIST-STATUS",
        "UNSELECT",
        "CHILDREN",
        "QUOTA",
        "APPENDLIMIT=",
        "UTF8=ACCEPT",
        "CONDSTORE",
        "ESEARCH",
    ):
        assert f" {cap}" in caps, cap
    raw.close()


def test_plaintext_login_before_starttls_is_refused(imap) -> None:
    """RFC 9051 §6.2.3 and §7.2.1 LOGINDISABLED; RFC 8314: cleartext passwords never cross the wire."""
    raw = imap.raw(tls=False)
    assert b"LOGINDISABLED" in raw.greeting
    assert b"STARTTLS" in raw.greeting
    assert b"AUTH=PLAIN" not in raw.greeting
    acct = imap.account(ASCII_ADDRESS)
    lines = raw.command(f"a LOGIN {acct.address} {acct.password}")
    assert lines[-1].startswith(b"a NO [PRIVACYREQUIRED]")
    lines = raw.command("b AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==")
    assert lines[-1].startswith(b"b NO [PRIVACYREQUIRED]")
    raw.close()


def test_starttls_then_login(imap) -> None:
    """RFC 9051 §6.2.1: after STARTTLS the client asks again and may log in."""
    client = imaplib.IMAP4("127.0.0.1", imap.plain_port, timeout=10)
    assert "LOGINDISABLED" in client.capabilities
    client.starttls(ssl_context=imap.tls)
    assert "LOGINDISABLED" not in client.capabilities
    assert "AUTH=PLAIN" in client.capabilities
    acct = imap.account(ASCII_ADDRESS)
    ok(client.login(acct.address, acct.password))
    ok(client.select())
    client.logout()


def test_starttls_drops_pipelined_cleartext(imap) -> None:
    """Commands sent in clear after STARTTLS are not run as if they came over TLS (CVE-2011-0411)."""
    import socket

    sock = socket.create_connection(("127.0.0.1", imap.plain_port), timeout=10)
    f = sock.makefile("rb")
    f.readline()
    sock.sendall(b"a STARTTLS\r\nb CAPABILITY\r\n")
    assert f.readline().startswith(b"a OK")
    tls = imap.tls.wrap_socket(sock, server_hostname="localhost")
    tls.sendall(b"c NOOP\r\n")
    tf = tls.makefile("rb")
    assert tf.readline().startswith(b"c OK")  # nothing answered "b"
    for closable in (tf, f, tls, sock):
        closable.close()


def test_login_and_authenticate_plain_with_sasl_ir(imap) -> None:
    """RFC 9051 §6.2.2 AUTHENTICATE, RFC 4959 SASL-IR, RFC 4616 PLAIN; §6.2.3 LOGIN with a literal password."""
    import base64

    acct = imap.account(ASCII_ADDRESS)
    raw = imap.raw()
    token = base64.b64encode(f"\0{acct.address}\0{acct.password}".encode()).decode()
    lines = raw.command(f"a AUTHENTICATE PLAIN {token}")
    assert lines[-1].startswith(b"a OK [CAPABILITY IMAP4rev1")
    raw.close()

    raw = imap.raw()  # without an initial response: "+ " then the response line
    raw.send("b AUTHENTICATE PLAIN\r\n")
    assert raw.readline() == b"+ \r\n"
    lines = raw.command(token, tag="b")
    assert lines[-1].startswith(b"b OK")
    raw.close()

    raw = imap.raw()  # a synchronizing literal for the password
    raw.send(f"c LOGIN {acct.address} {{{len(acct.password)}}}\r\n")
    assert raw.readline().startswith(b"+ ")
    assert raw.command(acct.password, tag="c")[-1].startswith(b"c OK")
    raw.close()

    client = imap.client(ADDRESS)  # a non-ASCII address (EAI) through imaplib
    client.logout()


def test_a_utf8_user_name_sent_as_an_atom_signs_in(imap) -> None:
    """RFC 6855 §3 allows UTF-8 in quoted strings and literals; Python's imaplib (and getmail6 on it)
    sends the LOGIN user name unquoted, so a UTF-8 name arrives as an 8-bit atom. It is taken as
    UTF-8 text; octets that are not UTF-8 still get BAD."""
    acct = imap.account(ADDRESS)
    client = imaplib.IMAP4_SSL("127.0.0.1", imap.port, ssl_context=imap.tls, timeout=30)
    client._mode_utf8()  # what a script does for a UTF-8 user name
    typ, _ = client.login(acct.address, acct.password)
    assert typ == "OK"
    client.logout()
    raw = imap.raw()
    assert raw.command(b"a LOGIN r\xe9mi@example.test secret")[-1].startswith(b"a BAD")
    raw.close()


def test_failed_logins_are_throttled_per_account(imap) -> None:
    """Failures are counted in Redis: past the limit even the right password is refused for a while."""
    acct = imap.account(ASCII_ADDRESS)
    raw = imap.raw()
    for i in range(5):
        lines = raw.command(f"f{i} LOGIN {acct.address} wrong-password")
        assert lines[-1].startswith(f"f{i} NO [AUTHENTICATIONFAILED]".encode())
    lines = raw.command(f"g LOGIN {acct.address} {acct.password}")
    assert lines[-1].startswith(b"g NO [UNAVAILABLE]")
    raw.close()
    # Another account from the same address is still fine (per-IP limit is higher).
    imap.client(ADDRESS).logout()


# ---- folders ------------------------------------------------------------------------------------
def test_first_login_has_special_use_folders(imap) -> None:
    """RFC 6154 §2: special-use attributes in LIST; RFC 9051 §6.3.9 and RFC 3348 CHILDREN attributes."""
    raw = imap.raw()
    raw.login(imap.account())
    lines = raw.command('a LIST "" "*"')
    assert set(lines[:-1]) == {
        b'* LIST (\\HasNoChildren) "/" "INBOX"\r\n',
        b'* LIST (\\HasNoChildren \\Archive) "/" "Archive"\r\n',
        b'* LIST (\\HasNoChildren \\Drafts) "/" "Drafts"\r\n',
        b'* LIST (\\HasNoChildren \\Junk) "/" "Junk"\r\n',
        b'* LIST (\\HasNoChildren \\Sent) "/" "Sent"\r\n',
        b'* LIST (\\HasNoChildren \\Trash) "/" "Trash"\r\n',
    }
    assert raw.command('b LIST "" ""')[0] == b'* LIST (\\Noselect) "/" ""\r\n'
    raw.close()


def test_create_rename_delete_and_modified_utf7(imap) -> None:
    """RFC 9051 §6.3.4-6.3.6; RFC 3501 §5.1.3 modified UTF-7 names for clients without UTF8=ACCEPT."""
    raw = imap.raw()
    raw.login(imap.account())
    assert raw.command('a CREATE "Projets/&AOk-t&AOk-/"')[-1].startswith(b"a OK")  # "Projets/été"
    lines = raw.command('b LIST "" "Projets*"')
    assert b'* LIST (\\HasChildren) "/" "Projets"\r\n' in lines
    assert b'* LIST (\\HasNoChildren) "/" "Projets/&AOk-t&AOk-"\r\n' in lines
    assert raw.command('c CREATE "Projets"')[-1].startswith(b"c NO [ALREADYEXISTS]")
    assert raw.command('d RENAME "Projets" "Archive/2026"')[-1].startswith(b"d OK")
    lines = raw.command('e LIST "" "Archive/%"')
    assert lines[:-1] == [b'* LIST (\\HasChildren) "/" "Archive/2026"\r\n']
    assert raw.command('f DELETE "Nope"')[-1].startswith(b"f NO [NONEXISTENT]")
    assert raw.command("g DELETE INBOX")[-1].startswith(b"g NO")
    assert raw.command('h DELETE "Archive/2026"')[-1].startswith(b"h OK")
    lines = raw.command('i LIST "" "Archive/*"')  # RFC 9051 §6.3.5: a parent with children stays \Noselect
    assert b'* LIST (\\Noselect \\HasChildren) "/" "Archive/2026"\r\n' in lines
    # After ENABLE UTF8=ACCEPT (RFC 6855 §3) names travel as UTF-8.
    assert raw.command("j ENABLE UTF8=ACCEPT")[0] == b"* ENABLED UTF8=ACCEPT\r\n"
    lines = raw.command('k LIST "" "Archive/2026/*"')
    assert lines[0] == '* LIST (\\HasNoChildren) "/" "Archive/2026/été"\r\n'.encode()
    raw.close()


def test_subscriptions_lsub_and_list_extended(imap) -> None:
    """RFC 9051 §6.3.7-8, RFC 3501 §6.3.9 LSUB, RFC 5258 LIST-EXTENDED, RFC 5819 LIST-STATUS."""
    raw = imap.raw()
    raw.login(imap.account())
    raw.command("a CREATE Lists/rust")  # RFC 9051 §6.3.4: not subscribed by CREATE
    assert raw.command('a2 LSUB "" "Lists*"')[:-1] == []
    raw.command("b SUBSCRIBE Lists/rust")
    raw.command("c UNSUBSCRIBE Junk")
    lines = raw.command('d LSUB "" "Lists/%"')
    assert lines[:-1] == [b'* LSUB () "/" "Lists/rust"\r\n']
    lines = raw.command('e LSUB "" "%"')
    assert b'* LSUB (\\Noselect) "/" "Lists"\r\n' in lines
    assert not any(b'"Junk"' in line for line in lines)
    lines = raw.command('f LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"')
    assert b'* LIST () "/" "Lists" ("CHILDINFO" ("SUBSCRIBED"))\r\n' in lines
    assert not any(b'"Junk"' in line for line in lines)
    lines = raw.command('g LIST (SPECIAL-USE) "" "*" RETURN (SUBSCRIBED)')
    assert b'* LIST (\\HasNoChildren \\Junk) "/" "Junk"\r\n' in lines
    assert b'* LIST (\\HasNoChildren \\Sent \\Subscribed) "/" "Sent"\r\n' in lines
    assert len(lines) == 6
    lines = raw.command('h LIST "" ("INBOX" "Sent") RETURN (CHILDREN STATUS (MESSAGES UIDNEXT))')
    assert lines[:-1] == [
        b'* LIST (\\HasNoChildren) "/" "INBOX"\r\n',
        b'* STATUS "INBOX" (MESSAGES 0 UIDNEXT 1)\r\n',
        b'* LIST (\\HasNoChildren \\Sent) "/" "Sent"\r\n',
        b'* STATUS "Sent" (MESSAGES 0 UIDNEXT 1)\r\n',
    ]
    assert raw.command("i NAMESPACE")[0] == b'* NAMESPACE (("" "/")) NIL NIL\r\n'
    raw.close()


def test_create_special_use(imap) -> None:
    """RFC 6154 §3 CREATE-SPECIAL-USE."""
    raw = imap.raw()
    raw.login(imap.account())
    assert raw.command("a CREATE Everything (USE (\\All))")[-1].startswith(b"a OK")
    assert raw.command('b LIST "" Everything')[0] == b'* LIST (\\HasNoChildren \\All) "/" "Everything"\r\n'
    assert raw.command("c CREATE Bogus (USE (\\Bogus))")[-1].startswith(b"c NO [USEATTR]")
    raw.close()


# ---- append, select, status ---------------------------------------------------------------------
def test_append_select_status(imap) -> None:
    """RFC 9051 §6.3.12 APPEND, RFC 4315 APPENDUID, §6.3.2 SELECT responses, §6.3.11 STATUS."""
    raw = imap.raw()
    raw.login(imap.account())
    msg = message(1)
    raw.send(f'a APPEND INBOX (\\Seen $Work) "05-Nov-2026 14:30:00 +0100" {{{len(msg)}}}\r\n')
    assert raw.readline().startswith(b"+ ")
    lines = raw.command(msg, tag="a")
    match = re.match(rb"a OK \[APPENDUID (\d+) 1\]", lines[-1])
    assert match, lines
    uidvalidity = int(match.group(1))
    msg2 = message(2)
    lines = raw.command(b"b APPEND INBOX {%d+}\r\n" % len(msg2) + msg2)  # LITERAL+ (RFC 7888)
    assert lines[-1].startswith(b"b OK [APPENDUID %d 2]" % uidvalidity)
    lines = raw.command("c STATUS INBOX (MESSAGES UNSEEN UIDNEXT UIDVALIDITY RECENT SIZE HIGHESTMODSEQ DELETED)")
    assert lines[0] == (
        b'* STATUS "INBOX" (MESSAGES 2 UNSEEN 1 UIDNEXT 3 UIDVALIDITY %d RECENT 2 SIZE %d HIGHESTMODSEQ 3 DELETED 0)\r\n'
        % (uidvalidity, len(msg) + len(msg2))
    )
    lines = raw.command("d SELECT INBOX")
    assert b"* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft $Work)\r\n" in lines
    assert (
        b"* OK [PERMANENTFLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft $Work \\*)] Flags permitted\r\n" in lines
    )
    assert b"* 2 EXISTS\r\n" in lines
    assert b"* 2 RECENT\r\n" in lines
    assert b"* OK [UNSEEN 2] First unseen\r\n" in lines
    assert b"* OK [UIDVALIDITY %d] UIDs valid\r\n" % uidvalidity in lines
    assert b"* OK [UIDNEXT 3] Predicted next UID\r\n" in lines
    assert lines[-1] == b"d OK [READ-WRITE] SELECT completed\r\n"
    lines = raw.command("e FETCH 1:* (FLAGS INTERNALDATE RFC822.SIZE)")
    assert (
        lines[0]
        == b'* 1 FETCH (FLAGS (\\Seen $Work \\Recent) INTERNALDATE "05-Nov-2026 13:30:00 +0000" RFC822.SIZE %d)\r\n'
        % len(msg)
    )
    # A second session does not see them as \Recent (RFC 3501 §2.3.2); EXAMINE is read-only.
    other = imap.raw()
    other.login(imap.account())
    lines = other.command("f EXAMINE INBOX")
    assert b"* 0 RECENT\r\n" in lines
    assert b"* OK [PERMANENTFLAGS ()] Flags permitted\r\n" in lines
    assert lines[-1] == b"f OK [READ-ONLY] EXAMINE completed\r\n"
    assert other.command("g STORE 1 +FLAGS (\\Deleted)")[-1].startswith(b"g NO [READ-ONLY]")
    # RFC 9051 §6.3.2: selecting again closes the previous mailbox first
    assert other.command("h SELECT Sent")[0] == b"* OK [CLOSED] Previous mailbox closed\r\n"
    assert raw.command("i APPEND Nowhere {1+}\r\nx")[-1].startswith(b"i NO [TRYCREATE]")
    raw.close()
    other.close()


def test_append_to_selected_mailbox_announces_exists(imap) -> None:
    """RFC 9051 §6.3.12: appending to the selected mailbox updates it (EXISTS) in the same session."""
    client = imap.client()
    ok(client.select())
    ok(client.append("INBOX", None, None, message(1)))
    assert client.untagged_responses.get("EXISTS")[-1] == b"1"
    client.logout()


# ---- fetch ---------------------------------------------------------------------------------------
def _fill(imap, count: int = 3) -> None:
    client = imap.client()
    for i in range(1, count + 1):
        ok(client.append("INBOX", None, None, message(i)))
    client.logout()


def test_fetch_body_sections_and_partial(imap) -> None:
    """RFC 9051 §6.4.5 FETCH: BODY[], BODY.PEEK, HEADER, TEXT, partial <n.m>, UID FETCH implies UID."""
    _fill(imap, 2)
    raw = imap.raw()
    raw.login(imap.account())
    raw.command("s SELECT INBOX")
    msg = message(1)
    lines = raw.command("a FETCH 1 (BODY.PEEK[])")
    assert lines[0] == b"* 1 FETCH (BODY[] {%d}\r\n" % len(msg) + msg + b")\r\n"
    lines = raw.command("b FETCH 1 (FLAGS)")
    assert lines[0] == b"* 1 FETCH (FLAGS (\\Recent))\r\n"  # PEEK left \Seen alone
    lines = raw.command("c UID FETCH 1 (BODY.PEEK[]<0.10> RFC822.SIZE)")
    assert lines[0] == b"* 1 FETCH (UID 1 BODY[]<0> {10}\r\n" + msg[:10] + b" RFC822.SIZE %d)\r\n" % len(msg)
    header = msg.split(b"\r\n\r\n")[0] + b"\r\n\r\n"
    lines = raw.command("d FETCH 1 (RFC822.HEADER)")
    assert lines[0] == b"* 1 FETCH (RFC822.HEADER {%d}\r\n" % len(header) + header + b")\r\n"
    lines = raw.command("e FETCH 2 (BODY[])")  # not PEEK: sets \Seen and says so
    assert lines[0].endswith(b" FLAGS (\\Seen \\Recent))\r\n")
    lines = raw.command("f FETCH 1:2 (UID)")
    assert lines[:-1] == [b"* 1 FETCH (UID 1)\r\n", b"* 2 FETCH (UID 2)\r\n"]
    assert raw.command("g UID FETCH 99 (FLAGS)") == [b"g OK FETCH completed\r\n"]
    assert raw.command("h FETCH 1 (BODY[1.]")[-1].startswith(b"h BAD")
    raw.close()


def test_fetch_envelope_bodystructure_and_sections(imap) -> None:
    """RFC 9051 §7.5.2 ENVELOPE and BODYSTRUCTURE, §6.4.5 BODY[HEADER.FIELDS], BODY[1], BINARY (RFC 3516)."""
    _fill(imap, 1)
    raw = imap.raw()
    raw.login(imap.account())
    raw.command("s SELECT INBOX")
    lines = raw.command("a FETCH 1 (ENVELOPE)")
    # The To: address is 8-bit (EAI): a literal for a client that has not enabled UTF8=ACCEPT.
    assert lines[0] == (
        b'* 1 FETCH (ENVELOPE ("Mon, 2 Nov 2026 10:01:00 +0100" "Message number 1" '
        b'(("Sender 1" NIL "sender1" "example.org")) (("Sender 1" NIL "sender1" "example.org")) '
        b'(("Sender 1" NIL "sender1" "example.org")) ((NIL NIL {5}\r\nr\xc3\xa9mi "example.test")) '
        b'NIL NIL NIL "<m1@example.org>"))\r\n'
    )
    raw.command("u ENABLE UTF8=ACCEPT")
    lines = raw.command("b FETCH 1 (ENVELOPE)")
    assert b'((NIL NIL "r\xc3\xa9mi" "example.test"))' in lines[0]
    lines = raw.command("c FETCH 1 (BODYSTRUCTURE BODY)")
    assert lines[0] == (
        b'* 1 FETCH (BODYSTRUCTURE ("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 32 1 NIL NIL NIL NIL) '
        b'BODY ("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 32 1))\r\n'
    )
    lines = raw.command("d FETCH 1 (BODY.PEEK[HEADER.FIELDS (Subject Date)])")
    assert lines[0] == (
        b"* 1 FETCH (BODY[HEADER.FIELDS (Subject Date)] {67}\r\n"
        b"Subject: Message number 1\r\nDate: Mon, 2 Nov 2026 10:01:00 +0100\r\n\r\n)\r\n"
    )
    lines = raw.command("e FETCH 1 (BODY.PEEK[1] BINARY.PEEK[1] BINARY.SIZE[1] BODY.PEEK[1.MIME])")
    body = b"This is the body of message 1.\r\n"
    assert lines[0] == (
        b"* 1 FETCH (BODY[1] {32}\r\n" + body + b" BINARY[1] {32}\r\n" + body + b" BINARY.SIZE[1] 32"
        b" BODY[1.MIME] {219}\r\n" + message(1).split(b"\r\n\r\n")[0] + b"\r\n\r\n)\r\n"
    )
    lines = raw.command("f FETCH 1 (BODY.PEEK[5])")
    assert lines[0] == b"* 1 FETCH (BODY[5] NIL)\r\n"
    raw.close()


# ---- store, search, copy, move, expunge ----------------------------------------------------------
def test_store_flags_and_silent(imap) -> None:
    """RFC 9051 §6.4.6 STORE +FLAGS/-FLAGS/FLAGS and .SILENT; new keywords appear in FLAGS (§7.3.5)."""
    _fill(imap, 3)
    raw = imap.raw()
    raw.login(imap.account())
    raw.command("s SELECT INBOX")
    lines = raw.command("a STORE 1:2 +FLAGS (\\Flagged)")
    assert lines[:-1] == [b"* 1 FETCH (FLAGS (\\Flagged \\Recent))\r\n", b"* 2 FETCH (FLAGS (\\Flagged \\Recent))\r\n"]
    assert raw.command("b STORE 1 -FLAGS.SILENT (\\Flagged)") == [b"b OK STORE completed\r\n"]
    lines = raw.command("c UID STORE 3 FLAGS ($Label1 \\Seen)")
    assert lines[:-1] == [
        b"* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft $Label1)\r\n",
        b"* OK [PERMANENTFLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft $Label1 \\*)] Flags permitted\r\n",
        b"* 3 FETCH (UID 3 FLAGS (\\Seen $Label1 \\Recent))\r\n",
    ]
    assert raw.command("d STORE 1 +FLAGS (\\Bogus)")[-1].startswith(b"d BAD")
    raw.close()


def test_search(imap) -> None:
    """RFC 9051 §6.4.4 SEARCH keys; UID SEARCH; RFC 4731 ESEARCH RETURN options; BADCHARSET."""
    client = imap.client()
    for i in range(1, 6):
        ok(client.append("INBOX", "(\\Seen)" if i % 2 else None, None, message(i, subject=f"Report {i}")))
    ok(client.select())
    assert ok(client.search(None, "ALL")) == [b"1 2 3 4 5"]
    assert ok(client.search(None, "UNSEEN")) == [b"2 4"]
    assert ok(client.search(None, "SUBJECT", '"report 3"')) == [b"3"]
    assert ok(client.search(None, "FROM", "sender4")) == [b"4"]
    assert ok(client.search(None, "OR", "1", "5")) == [b"1 5"]
    assert ok(client.search(None, "2:4", "NOT", "3")) == [b"2 4"]
    assert ok(client.search(None, "UID", "4:*")) == [b"4 5"]
    assert ok(client.search(None, "HEADER", "Message-ID", "m2@")) == [b"2"]
    assert ok(client.search("UTF-8", "BODY", "message 5")) == [b"5"]
    assert ok(client.search(None, "SENTON", "2-Nov-2026")) == [b"1 2 3 4 5"]
    assert ok(client.search(None, "LARGER", "1", "SMALLER", "100000")) == [b"1 2 3 4 5"]
    assert ok(client.uid("SEARCH", "UNSEEN")) == [b"2 4"]
    assert client.search("KOI8-R", "ALL")[0] == "NO"
    raw = imap.raw()
    raw.login(imap.account())
    raw.command("s SELECT INBOX")
    assert raw.command("a SEARCH RETURN (MIN MAX COUNT) UNSEEN")[0] == b'* ESEARCH (TAG "a") MIN 2 MAX 4 COUNT 2\r\n'
    assert raw.command("b UID SEARCH RETURN () 1:3")[0] == b'* ESEARCH (TAG "b") UID ALL 1:3\r\n'
    assert raw.command("c SEARCH RETURN (COUNT) KEYWORD $Nothing")[0] == b'* ESEARCH (TAG "c") COUNT 0\r\n'
    assert raw.command("d SEARCH FOO")[-1].startswith(b"d BAD")
    raw.close()
    client.logout()


def test_copy_move_expunge_with_uidplus(imap) -> None:
    """RFC 4315 COPYUID and UID EXPUNGE, RFC 6851 MOVE, RFC 9051 §6.4.3 EXPUNGE and §6.4.1 CLOSE."""
    _fill(imap, 4)
    raw = imap.raw()
    raw.login(imap.account())
    raw.command("s SELECT INBOX")
    lines = raw.command("a COPY 1:2 Archive")
    assert re.match(rb"a OK \[COPYUID \d+ 1:2 1:2\] COPY completed", lines[-1]), lines
    assert raw.command("b COPY 1 Nowhere")[-1].startswith(b"b NO [TRYCREATE]")
    lines = raw.command("c UID MOVE 2 Trash")
    assert re.match(rb"\* OK \[COPYUID \d+ 2 1\] Moved", lines[0]), lines
    assert lines[1:] == [b"* 2 EXPUNGE\r\n", b"c OK MOVE completed\r\n"]
    raw.command("d STORE 1:3 +FLAGS.SILENT (\\Deleted)")  # UIDs 1, 3, 4 now
    lines = raw.command("e UID EXPUNGE 3")
    assert lines[:-1] == [b"* 2 EXPUNGE\r\n"]
    lines = raw.command("f EXPUNGE")
    assert lines[:-1] == [b"* 2 EXPUNGE\r\n", b"* 1 EXPUNGE\r\n"]
    assert raw.command('g STATUS "Archive" (MESSAGES)')[0] == b'* STATUS "Archive" (MESSAGES 2)\r\n'
    raw.command("h SELECT Archive")
    raw.command("i STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert raw.command("j CLOSE") == [b"j OK CLOSE completed\r\n"]  # expunges silently
    assert raw.command("k FETCH 1 FLAGS")[-1].startswith(b"k BAD")  # no mailbox selected any more
    assert raw.command('l STATUS "Archive" (MESSAGES)')[0] == b'* STATUS "Archive" (MESSAGES 1)\r\n'
    raw.close()


def test_condstore(imap) -> None:
    """RFC 7162 CONDSTORE: MODSEQ in FETCH, CHANGEDSINCE, UNCHANGEDSINCE and MODIFIED, SEARCH MODSEQ."""
    _fill(imap, 3)
    raw = imap.raw()
    raw.login(imap.account())
    lines = raw.command("a SELECT INBOX (CONDSTORE)")
    assert b"* OK [HIGHESTMODSEQ 4] Highest\r\n" in lines
    lines = raw.command("b FETCH 1:* (MODSEQ)")
    assert lines[:-1] == [b"* 1 FETCH (MODSEQ (2))\r\n", b"* 2 FETCH (MODSEQ (3))\r\n", b"* 3 FETCH (MODSEQ (4))\r\n"]
    lines = raw.command("c STORE 2 +FLAGS (\\Seen)")
    assert lines[0] == b"* 2 FETCH (FLAGS (\\Seen \\Recent) MODSEQ (5))\r\n"
    lines = raw.command("d UID FETCH 1:* (FLAGS) (CHANGEDSINCE 4)")
    assert lines[:-1] == [b"* 2 FETCH (UID 2 FLAGS (\\Seen \\Recent) MODSEQ (5))\r\n"]
    lines = raw.command("e STORE 1:3 (UNCHANGEDSINCE 4) +FLAGS.SILENT (\\Flagged)")
    assert lines[-1] == b"e OK [MODIFIED 2] Conditional STORE failed for some messages\r\n"
    assert lines[:-1] == [b"* 1 FETCH (MODSEQ (6))\r\n", b"* 3 FETCH (MODSEQ (6))\r\n"]
    assert raw.command("f SEARCH MODSEQ 6")[0] == b"* SEARCH 1 3 (MODSEQ 6)\r\n"
    raw.close()


def test_quota_and_id_and_enable(imap) -> None:
    """RFC 9208 QUOTA, RFC 2971 ID, RFC 5161 ENABLE, RFC 9051 IMAP4rev2 mode (ESEARCH answers, no RECENT)."""
    _fill(imap, 1)
    raw = imap.raw()
    assert raw.command('a ID ("name" "test")')[0] == b'* ID ("name" "Sealmail" "version" "0.1.0")\r\n'
    raw.login(imap.account())
    lines = raw.command("b GETQUOTAROOT INBOX")
    assert lines[0] == b'* QUOTAROOT "INBOX" ""\r\n'
    size = len(message(1))
    assert lines[1] == b'* QUOTA "" (STORAGE %d %d)\r\n' % ((size + 1023) // 1024, 10 * 1024 * 1024)
    assert raw.command('c SETQUOTA "" (STORAGE 1)')[-1].startswith(b"c NO")
    assert raw.command("d ENABLE IMAP4rev2 CONDSTORE X-UNKNOWN")[0] == b"* ENABLED IMAP4rev2 CONDSTORE\r\n"
    lines = raw.command("e SELECT INBOX")
    assert not any(b"RECENT" in line for line in lines)
    assert b'* LIST () "/" "INBOX"\r\n' in lines
    assert raw.command("f SEARCH ALL")[0] == b'* ESEARCH (TAG "f") ALL 1\r\n'
    assert raw.command("g FETCH 1 FLAGS")[0] == b"* 1 FETCH (FLAGS ())\r\n"
    raw.close()


def test_overquota_append(imap, monkeypatch) -> None:
    """STYLE.md: the store's QuotaExceeded becomes NO [OVERQUOTA] (RFC 9208 §4)."""
    from sealmail.store.mailboxdb import MailboxDB

    def refuse(self, extra):
        from sealmail.store.errors import QuotaExceeded

        raise QuotaExceeded("full")

    monkeypatch.setattr(MailboxDB, "check_quota", refuse)
    client = imap.client()
    typ, data = client.append("INBOX", None, None, message(1))
    assert typ == "NO"
    assert b"[OVERQUOTA]" in data[0]
    client.logout()


# ---- two sessions --------------------------------------------------------------------------------
def test_other_sessions_changes_reach_a_polling_session(imap) -> None:
    """RFC 9051 §7.4.1/§7.5.1: NOOP reports EXISTS, flag FETCHes and EXPUNGEs made by another session."""
    _fill(imap, 3)
    a, b = imap.raw(), imap.raw()
    a.login(imap.account())
    b.login(imap.account())
    a.command("s SELECT INBOX")
    b.command("s SELECT INBOX")
    b.command("x STORE 2 +FLAGS.SILENT (\\Seen)")
    b.command("y STORE 3 +FLAGS.SILENT (\\Deleted)")
    b.command("z EXPUNGE")
    imap.deliver(message(9))
    deadline = time.monotonic() + 5
    seen: list[bytes] = []
    while time.monotonic() < deadline:
        seen += a.command("n NOOP")[:-1]
        if b"* 3 EXISTS\r\n" in seen:
            break
        time.sleep(0.05)
    assert b"* 3 EXPUNGE\r\n" in seen
    assert b"* 2 FETCH (UID 2 FLAGS (\\Seen \\Recent))\r\n" in seen  # "a" selected first: \Recent is its
    assert b"* 3 EXISTS\r\n" in seen
    # No EXPUNGE while answering FETCH, STORE or SEARCH (RFC 9051 §7.5.1): it waits for the next NOOP.
    b.command("x2 STORE 1 +FLAGS.SILENT (\\Deleted)")
    b.command("y2 EXPUNGE")
    time.sleep(0.3)
    lines = a.command("f FETCH 1:* (UID)")
    assert not any(b"EXPUNGE" in line for line in lines)
    lines = a.command("n2 NOOP")
    assert b"* 1 EXPUNGE\r\n" in lines
    a.close()
    b.close()


def test_updates_from_another_session_come_in_a_fixed_order(imap) -> None:
    """RFC 9051 §7.5.1 and RFC 3501 §7.3: one NOOP reports what another session did, byte for byte and in
    order: EXPUNGE first (so what follows counts without the removed message), then EXISTS and RECENT (in
    the order SELECT gives them, RFC 3501 §6.3.1), and last the FETCH of flags changed elsewhere."""
    _fill(imap, 3)
    a, b = imap.raw(), imap.raw()
    a.login(imap.account())
    b.login(imap.account())
    a.command("s SELECT INBOX")  # a takes the \Recent flags of the three
    b.command("s SELECT INBOX")
    b.command("x STORE 1 +FLAGS.SILENT (\\Seen)")
    b.command("y STORE 3 +FLAGS.SILENT (\\Deleted)")
    b.command("z EXPUNGE")
    b.command(f"w APPEND INBOX {{{len(message(9))}+}}\r\n" + message(9).decode())  # b sees it first
    assert a.command("n NOOP") == [
        b"* 3 EXPUNGE\r\n",
        b"* 3 EXISTS\r\n",
        b"* 2 RECENT\r\n",
        b"* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent))\r\n",
        b"n OK NOOP completed\r\n",
    ]
    a.close()
    b.close()


@pytest.mark.parametrize("imap", [{"imap_append_limit": 2048}], indirect=True)
def test_appendlimit(imap) -> None:
    """RFC 7889: APPENDLIMIT is announced and a larger APPEND is refused before its literal is read."""
    raw = imap.raw()
    raw.login(imap.account())
    assert b"APPENDLIMIT=2048" in raw.command("a CAPABILITY")[0]
    raw.send("b APPEND INBOX {4096}\r\n")
    assert raw.readline().startswith(b"b NO [TOOBIG]")
    assert raw.command("c NOOP")[-1] == b"c OK NOOP completed\r\n"
    raw.close()


def test_listing_again_shows_what_changed_meanwhile(imap) -> None:
    """FETCH 1:* answers reflect every change since the last listing (RFC 9051 §6.4.5; RFC 7162 MODSEQ)."""
    _fill(imap, 4)
    a, b = imap.raw(), imap.raw()
    a.login(imap.account())
    b.login(imap.account())
    b.command("s SELECT INBOX")  # b takes the \Recent flags
    a.command("s EXAMINE INBOX")
    first = a.command("f FETCH 1:* (FLAGS ENVELOPE)")
    assert len(first) == 5
    b.command("x STORE 2 +FLAGS.SILENT (\\Flagged $Later)")
    b.command("y STORE 4 +FLAGS.SILENT (\\Deleted)")
    b.command("z EXPUNGE")
    b.command(f"w APPEND INBOX {{{len(message(9))}+}}\r\n" + message(9).decode())
    a.command("n NOOP")
    lines = a.command("g FETCH 1:* (UID FLAGS)")
    assert lines[:-1] == [
        b"* 1 FETCH (UID 1 FLAGS ())\r\n",
        b"* 2 FETCH (UID 2 FLAGS (\\Flagged $Later))\r\n",
        b"* 3 FETCH (UID 3 FLAGS ())\r\n",
        b"* 4 FETCH (UID 5 FLAGS ())\r\n",
    ]
    assert b'"Message number 9"' in a.command("h FETCH 4 (ENVELOPE)")[0]
    a.close()
    b.close()
