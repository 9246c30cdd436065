"""The ManageSieve server over real sockets and real TLS, command by command (RFC 5804).

Every exchange goes through ``managesievekit.Wire``: the exact answers a client reads.
"""

from __future__ import annotations

import base64
import logging

import pytest

from sealmail.config.models import MAX_SIEVE_SCRIPT_BYTES, MAX_SIEVE_SCRIPTS
from sealmail.sieve import actions, grammar
from sealmail.sieve.compile import compile as compile_script
from sealmail.sieve.errors import SieveError

from managesievekit import Wire, quoted, signed_in

KEEP = 'require "fileinto";\r\nif header :contains "Subject" "[list]" { fileinto "Lists"; }\r\n'
BROKEN = 'require "fileinto";\r\nif true {\r\n  fileinto "Lists"\r\n}\r\n'  # no ";" before the "}" of line 4


@pytest.fixture
def wire(server, client_context, account):
    """A signed-in connection."""
    connection = signed_in(server, client_context, account.address, account.password)
    yield connection
    connection.close()


def fresh(server) -> Wire:
    """A new connection whose greeting was read."""
    connection = Wire.connect(server)
    assert connection.reply().status == "OK"
    return connection


# ---- capabilities (§1.7) ---------------------------------------------------------------------------
def test_rfc5804_s1_7_the_greeting_is_the_capabilities_then_ok(server) -> None:
    connection = Wire.connect(server)
    greeting = connection.reply()
    connection.close()
    assert greeting.status == "OK"
    caps = greeting.capabilities
    assert caps["IMPLEMENTATION"].startswith("Sealmail")
    assert caps["VERSION"] == "1.0"
    assert caps["MAXREDIRECTS"] == str(actions.MAX_REDIRECTS)
    # Before TLS no mechanism is offered (allowed only beside STARTTLS), and no OWNER.
    assert caps["SASL"] == ""
    assert "STARTTLS" in caps
    assert "UNAUTHENTICATE" in caps
    assert "OWNER" not in caps


def test_rfc5804_s1_7_sieve_lists_exactly_what_the_compiler_accepts(server) -> None:
    connection = Wire.connect(server)
    listed = connection.reply().capabilities["SIEVE"].split()
    connection.close()
    assert listed == list(grammar.CAPABILITIES)
    for extension in listed:
        compile_script(f'require "{extension}";\r\n')  # each one a script may require
    with pytest.raises(SieveError):
        compile_script('require "enotify";\r\n')  # not listed, not accepted


def test_rfc5804_s2_2_starttls_resends_the_capabilities_without_starttls(server, client_context) -> None:
    connection = fresh(server)
    after = connection.starttls(client_context)
    connection.close()
    assert after.status == "OK"
    caps = after.capabilities
    assert "STARTTLS" not in caps
    assert caps["SASL"] == "PLAIN SCRAM-SHA-1 SCRAM-SHA-256"
    assert "OWNER" not in caps


def test_rfc5804_s1_7_after_authenticate_no_capabilities_then_owner_and_no_starttls(
    server, client_context, account
) -> None:
    """§4 response-authenticate: capabilities follow the OK only after a SASL security layer
    (PLAIN has none); CAPABILITY then shows OWNER, the signed-in address."""
    connection = fresh(server)
    connection.starttls(client_context)
    answer = connection.authenticate(account.address, account.password)
    assert (answer.status, answer.lines) == ("OK", [])
    caps = connection.cmd("CAPABILITY").capabilities
    connection.close()
    assert caps["OWNER"] == account.address  # UTF-8 local part as it is
    assert "STARTTLS" not in caps


def test_rfc5804_s2_2_starttls_is_refused_once_tls_is_on_and_after_authentication(
    server, client_context, account
) -> None:
    connection = fresh(server)
    connection.starttls(client_context)
    assert connection.cmd("STARTTLS").status == "NO"
    connection.authenticate(account.address, account.password)
    assert connection.cmd("STARTTLS").status == "NO"
    assert connection.cmd("NOOP").status == "OK"  # still going
    connection.close()


def test_rfc5804_s2_2_commands_pipelined_in_clear_behind_starttls_are_dropped(server, client_context) -> None:
    """What a man in the middle appends after STARTTLS in clear must not run under TLS (CVE-2011-0411)."""
    connection = fresh(server)
    connection.send(b'STARTTLS\r\nNOOP "injected"\r\n')
    assert connection.reply().status == "OK"
    connection.file.close()
    connection.sock = client_context.wrap_socket(connection.sock, server_hostname="localhost")
    connection.file = connection.sock.makefile("rb")
    assert connection.reply().status == "OK"  # the capabilities after TLS
    answer = connection.cmd('NOOP "mine"')
    connection.close()
    assert answer.code == 'TAG "mine"'  # the next answer is to this NOOP, not to the injected one


# ---- authentication (§2.1) ----------------------------------------------------------------------------
def test_rfc5804_s1_3_encrypt_needed_before_tls(server, account) -> None:
    """Plaintext PLAIN is refused on a connection without TLS, loopback included (as IMAP's LOGIN)."""
    connection = fresh(server)
    token = base64.b64encode(f"\0{account.address}\0{account.password}".encode()).decode()
    answer = connection.cmd(f'AUTHENTICATE "PLAIN" "{token}"')
    assert (answer.status, answer.code) == ("NO", "ENCRYPT-NEEDED")
    answer = connection.cmd('AUTHENTICATE "PLAIN"')  # and no challenge is sent for a password in clear
    assert (answer.status, answer.code) == ("NO", "ENCRYPT-NEEDED")
    assert connection.cmd("LISTSCRIPTS").status == "NO"
    connection.close()


def test_rfc5804_s5_loopback_plaintext_is_a_setting_for_a_webmail_on_the_host(serve, account) -> None:
    """With ``managesieve_loopback_plaintext`` a client on 127.0.0.1 may use PLAIN without TLS
    (SASL then lists it before STARTTLS), as a webmail on the same host would."""
    server = serve(managesieve_loopback_plaintext=True)
    connection = Wire.connect(server)
    caps = connection.reply().capabilities
    assert caps["SASL"] == "PLAIN SCRAM-SHA-1 SCRAM-SHA-256"
    assert "STARTTLS" in caps
    assert connection.authenticate(account.address, account.password).status == "OK"
    connection.close()


def test_rfc5804_s2_1_authenticate_plain_after_an_empty_challenge(server, client_context, account) -> None:
    connection = fresh(server)
    connection.starttls(client_context)
    connection.send(b'AUTHENTICATE "PLAIN"\r\n')
    assert connection.line() == b'""\r\n'  # §2.1: an empty challenge is an empty string
    token = base64.b64encode(f"\0{account.address}\0{account.password}".encode())
    connection.send(b'"' + token + b'"\r\n')
    assert connection.reply().status == "OK"
    assert connection.cmd("LISTSCRIPTS").status == "OK"
    connection.close()


def test_rfc5804_s2_1_the_sasl_response_may_be_a_literal(server, client_context, account) -> None:
    connection = fresh(server)
    connection.starttls(client_context)
    connection.send(b'AUTHENTICATE "PLAIN"\r\n')
    assert connection.line() == b'""\r\n'
    token = base64.b64encode(f"\0{account.address}\0{account.password}".encode())
    connection.send(b"{%d+}\r\n%s\r\n" % (len(token), token))
    assert connection.reply().status == "OK"
    connection.close()


def test_rfc5804_s2_1_a_star_cancels_authentication(server, client_context, account) -> None:
    connection = fresh(server)
    connection.starttls(client_context)
    connection.send(b'AUTHENTICATE "PLAIN"\r\n')
    assert connection.line() == b'""\r\n'
    connection.send(b'"*"\r\n')
    assert connection.reply().status == "NO"
    assert connection.authenticate(account.address, account.password).status == "OK"  # a new try works
    connection.close()


@pytest.mark.parametrize("mechanism", ["CRAM-MD5", "DIGEST-MD5", "ANONYMOUS"])
def test_rfc5804_s1_3_auth_too_weak_for_mechanisms_policy_forbids(server, client_context, mechanism) -> None:
    connection = fresh(server)
    connection.starttls(client_context)
    answer = connection.cmd(f'AUTHENTICATE "{mechanism}"')
    connection.close()
    assert (answer.status, answer.code) == ("NO", "AUTH-TOO-WEAK")


def test_rfc5804_s2_1_an_unknown_mechanism_gets_no(server, client_context) -> None:
    connection = fresh(server)
    connection.starttls(client_context)
    answer = connection.cmd('AUTHENTICATE "SCRAM-SHA-512"')
    connection.close()
    assert (answer.status, answer.code, answer.text) == ("NO", None, "Unsupported SASL mechanism SCRAM-SHA-512")


def test_rfc5804_s2_1_wrong_passwords_then_bye_after_three(server, client_context, account) -> None:
    """RFC 5804 §2.1's example: NO, NO, then BYE and the server hangs up."""
    connection = fresh(server)
    connection.starttls(client_context)
    assert connection.authenticate(account.address, "wrong one").status == "NO"
    assert connection.authenticate("nobody@example.test", "wrong two").status == "NO"  # same answer
    last = connection.authenticate(account.address, "wrong three")
    assert (last.status, last.text) == ("BYE", "Too many failed authentication attempts")
    assert connection.closed()
    connection.close()


def test_rfc5804_s2_1_authorization_as_another_user_is_refused(server, client_context, account) -> None:
    connection = fresh(server)
    connection.starttls(client_context)
    answer = connection.authenticate(account.address, account.password, authzid="admin@example.test")
    assert answer.status == "NO"
    # The same identity twice is the user acting as themselves.
    assert connection.authenticate(account.address, account.password, authzid=account.address).status == "OK"
    connection.close()


def test_rfc5804_s2_1_no_second_authenticate(wire, account) -> None:
    answer = wire.authenticate(account.address, account.password)
    assert answer.status == "NO"
    assert wire.cmd("LISTSCRIPTS").status == "OK"


def test_rfc5804_s2_commands_before_authentication_get_no_and_the_session_goes_on(server, client_context) -> None:
    connection = fresh(server)
    connection.starttls(client_context)
    for command in ("LISTSCRIPTS", 'GETSCRIPT "a"', 'SETACTIVE ""', "UNAUTHENTICATE", 'HAVESPACE "a" 10'):
        answer = connection.cmd(command)
        assert answer.status == "NO", command
        assert "not valid" in answer.text
    assert connection.putscript("a", KEEP).status == "NO"  # its literal read, not taken as a command
    assert connection.cmd("NOOP").status == "OK"
    connection.close()


def test_rfc5804_s2_14_1_unauthenticate_returns_to_non_authenticated(wire, account) -> None:
    assert wire.cmd("UNAUTHENTICATE").status == "OK"
    caps = wire.cmd("CAPABILITY").capabilities
    assert "OWNER" not in caps
    assert wire.cmd("LISTSCRIPTS").status == "NO"
    assert wire.cmd("UNAUTHENTICATE").status == "NO"  # §2.14.1: NO in the wrong state
    assert wire.authenticate(account.address, account.password).status == "OK"  # TLS stays; sign in again
    assert wire.cmd("LISTSCRIPTS").status == "OK"


def test_failed_and_successful_logins_are_logged_as_imap_logs_them_without_secrets(
    server, client_context, account, caplog
) -> None:
    """The audit lines IMAP writes ("login failed", "logged in", with connection and peer), and
    neither the password, nor the name typed at a failure, nor any script is logged."""
    caplog.set_level(logging.DEBUG)
    typed = "Tr0ub4dor&3-typed-as-a-name"
    connection = fresh(server)
    connection.starttls(client_context)
    assert connection.authenticate(typed, account.password).status == "NO"
    assert connection.authenticate(account.address, account.password).status == "OK"
    assert connection.putscript("secret plans", 'require "fileinto";\r\n# marker-7731\r\nkeep;\r\n').status == "OK"
    checked = b"# marker-8842\r\nkeep;"
    assert connection.cmd(b"CHECKSCRIPT {%d+}\r\n%s" % (len(checked), checked)).status == "OK"
    connection.cmd("LOGOUT")
    connection.close()
    logged = "\n".join(f"{r.getMessage()} {vars(r)}" for r in caplog.records if r.name.startswith("sealmail"))
    assert "login failed" in logged
    assert "logged in" in logged
    failed = next(r for r in caplog.records if r.getMessage() == "login failed")
    assert failed.__dict__["peer"] == "127.0.0.1"
    for secret in (account.password, typed, "marker-7731", "marker-8842", "secret plans"):
        assert secret not in logged


# ---- scripts (§2.5-§2.12) ------------------------------------------------------------------------------
def test_rfc5804_s2_6_putscript_then_s2_9_getscript_returns_the_same_octets(wire) -> None:
    script = 'require "fileinto";\r\n# Ferien – été\r\nif header :is "X-Tag" "\\"q\\"" { fileinto "Été"; }\r\n'
    assert wire.putscript('my "clever" script', script).status == "OK"
    answer = wire.cmd(b"GETSCRIPT " + quoted('my "clever" script'))
    assert answer.status == "OK"
    data = script.encode()
    assert answer.lines == [b"{%d}\r\n" % len(data) + data + b"\r\n"]  # a literal, then CRLF, then OK


def test_rfc5804_s2_6_a_synchronizing_literal_is_read_the_same(wire) -> None:
    assert wire.putscript("plain-literal", KEEP, plus=False).status == "OK"
    assert wire.cmd('GETSCRIPT "plain-literal"').lines[0].endswith(KEEP.encode() + b"\r\n")


def test_rfc5804_s2_6_a_broken_script_gets_no_with_its_line_and_is_not_stored(wire) -> None:
    answer = wire.putscript("b", BROKEN)
    assert answer.status == "NO"
    assert answer.text.startswith("line 4:"), answer.text
    assert wire.cmd("LISTSCRIPTS").lines == []


def test_rfc5804_s2_6_a_failed_putscript_leaves_the_old_script(wire) -> None:
    assert wire.putscript("main", KEEP).status == "OK"
    assert wire.cmd('SETACTIVE "main"').status == "OK"
    assert wire.putscript("main", BROKEN).status == "NO"
    assert wire.cmd('GETSCRIPT "main"').lines[0].endswith(KEEP.encode() + b"\r\n")
    # Replaced by a valid one, it stays the active script (§2.6: only SETACTIVE changes that).
    assert wire.putscript("main", "keep;\r\n").status == "OK"
    assert wire.cmd("LISTSCRIPTS").lines == [b'"main" ACTIVE\r\n']


def test_rfc5804_s2_6_an_empty_script_is_refused(wire) -> None:
    answer = wire.cmd('PUTSCRIPT "empty" {0+}\r\n')
    assert answer.status == "NO"
    assert wire.cmd("LISTSCRIPTS").lines == []


def test_rfc5804_s1_6_a_name_with_control_characters_is_refused(wire) -> None:
    assert wire.cmd('PUTSCRIPT "tab\there" "keep;"').status == "NO"
    assert wire.cmd(b'PUTSCRIPT "line\xe2\x80\xa8sep" "keep;"').status == "NO"  # U+2028
    assert wire.cmd('PUTSCRIPT "' + "n" * 129 + '" "keep;"').status == "NO"  # longer than 128: never cut
    assert wire.cmd("LISTSCRIPTS").lines == []


def test_rfc5804_s2_12_checkscript_checks_without_storing(wire) -> None:
    data = BROKEN.encode()
    answer = wire.cmd(b"CHECKSCRIPT {%d+}\r\n%s" % (len(data), data))
    assert answer.status == "NO"
    assert answer.text.startswith("line 4:")
    data = KEEP.encode()
    assert wire.cmd(b"CHECKSCRIPT {%d+}\r\n%s" % (len(data), data)).status == "OK"
    assert wire.cmd('CHECKSCRIPT "require \\"nosuchextension\\";"').text.startswith("line 1:")
    assert wire.cmd("LISTSCRIPTS").lines == []


def test_rfc5804_s2_6_s2_12_warnings_are_ok_with_the_line_and_the_script_is_stored(wire) -> None:
    """A script valid but likely not meant (more redirects on one path than a run may make): OK
    (WARNINGS) naming the line, for CHECKSCRIPT and PUTSCRIPT; the script is stored all the same."""
    script = "".join(f'redirect "r{n}@example.org";\r\n' for n in range(actions.MAX_REDIRECTS + 1)).encode()
    answer = wire.cmd(b"CHECKSCRIPT {%d+}\r\n%s" % (len(script), script))
    assert (answer.status, answer.code) == ("OK", "WARNINGS")
    assert answer.text.startswith(f"line {actions.MAX_REDIRECTS + 1}: ")
    answer = wire.putscript("forwards", script)
    assert (answer.status, answer.code) == ("OK", "WARNINGS")
    assert wire.cmd("LISTSCRIPTS").lines == [b'"forwards"\r\n']
    assert (wire.putscript("plain", KEEP).code, wire.putscript("plain", KEEP).text) == (None, None)


def test_rfc5804_s2_7_listscripts_marks_the_one_active_script(wire) -> None:
    for name in ("summer", 'clever"script', "main"):
        assert wire.putscript(name, KEEP).status == "OK"
    assert wire.cmd("LISTSCRIPTS").lines == [b'"clever\\"script"\r\n', b'"main"\r\n', b'"summer"\r\n']
    assert wire.cmd('SETACTIVE "main"').status == "OK"
    assert wire.cmd("LISTSCRIPTS").lines == [b'"clever\\"script"\r\n', b'"main" ACTIVE\r\n', b'"summer"\r\n']


def test_rfc5804_s2_8_setactive_switches_and_the_empty_name_deactivates(wire) -> None:
    assert wire.cmd('SETACTIVE ""').status == "OK"  # none active: still OK
    for name in ("a", "b"):
        wire.putscript(name, KEEP)
    assert wire.cmd('SETACTIVE "a"').status == "OK"
    assert wire.cmd('SETACTIVE "b"').status == "OK"
    assert wire.cmd("LISTSCRIPTS").lines == [b'"a"\r\n', b'"b" ACTIVE\r\n']
    assert wire.cmd('SETACTIVE ""').status == "OK"
    assert wire.cmd("LISTSCRIPTS").lines == [b'"a"\r\n', b'"b"\r\n']
    answer = wire.cmd('SETACTIVE "baz"')
    assert (answer.status, answer.code) == ("NO", "NONEXISTENT")


def test_rfc5804_s2_9_getscript_of_a_missing_script_is_nonexistent(wire) -> None:
    answer = wire.cmd('GETSCRIPT "nothing"')
    assert (answer.status, answer.code, answer.lines) == ("NO", "NONEXISTENT", [])


def test_rfc5804_s2_10_deletescript_not_the_active_one_not_a_missing_one(wire) -> None:
    wire.putscript("foo", KEEP)
    wire.cmd('SETACTIVE "foo"')
    answer = wire.cmd('DELETESCRIPT "foo"')
    assert (answer.status, answer.code) == ("NO", "ACTIVE")
    answer = wire.cmd('DELETESCRIPT "baz"')
    assert (answer.status, answer.code) == ("NO", "NONEXISTENT")
    wire.cmd('SETACTIVE ""')
    assert wire.cmd('DELETESCRIPT "foo"').status == "OK"
    assert wire.cmd("LISTSCRIPTS").lines == []


def test_rfc5804_s2_11_renamescript_keeps_the_script_active(wire) -> None:
    wire.putscript("foo", KEEP)
    wire.putscript("taken", KEEP)
    wire.cmd('SETACTIVE "foo"')
    assert wire.cmd('RENAMESCRIPT "foo" "bar"').status == "OK"
    assert wire.cmd("LISTSCRIPTS").lines == [b'"bar" ACTIVE\r\n', b'"taken"\r\n']
    answer = wire.cmd('RENAMESCRIPT "baz" "qux"')
    assert (answer.status, answer.code) == ("NO", "NONEXISTENT")
    answer = wire.cmd('RENAMESCRIPT "bar" "taken"')
    assert (answer.status, answer.code) == ("NO", "ALREADYEXISTS")


def test_rfc5804_s2_5_havespace_answers_for_size_and_count(wire) -> None:
    assert wire.cmd(f'HAVESPACE "s" {MAX_SIEVE_SCRIPT_BYTES}').status == "OK"
    answer = wire.cmd(f'HAVESPACE "s" {MAX_SIEVE_SCRIPT_BYTES + 1}')
    assert (answer.status, answer.code) == ("NO", "QUOTA/MAXSIZE")
    for n in range(MAX_SIEVE_SCRIPTS):
        assert wire.putscript(f"s{n:02}", KEEP).status == "OK"
    answer = wire.cmd('HAVESPACE "one more" 100')
    assert (answer.status, answer.code) == ("NO", "QUOTA/MAXSCRIPTS")
    assert wire.cmd('HAVESPACE "s00" 100').status == "OK"  # a replacement adds no script


def test_rfc5804_s1_5_putscript_past_the_script_count_is_quota_maxscripts(wire) -> None:
    for n in range(MAX_SIEVE_SCRIPTS):
        assert wire.putscript(f"s{n:02}", KEEP).status == "OK"
    answer = wire.putscript("one more", KEEP)
    assert (answer.status, answer.code) == ("NO", "QUOTA/MAXSCRIPTS")
    assert wire.putscript("s00", "keep;\r\n").status == "OK"


def test_rfc5804_s1_5_a_script_over_the_size_limit_is_refused_unread_and_the_session_goes_on(wire) -> None:
    """QUOTA/MAXSIZE; its octets are passed over (not kept), so the next command is found."""
    big = b"# " + b"x" * MAX_SIEVE_SCRIPT_BYTES + b"\r\nkeep;\r\n"
    answer = wire.cmd(b'PUTSCRIPT "big" {%d+}\r\n%s' % (len(big), big))
    assert (answer.status, answer.code) == ("NO", "QUOTA/MAXSIZE")
    answer = wire.cmd(b"CHECKSCRIPT {%d+}\r\n%s" % (len(big), big))
    assert (answer.status, answer.code) == ("NO", None)  # §2.12: CHECKSCRIPT checks no quota
    assert wire.cmd('NOOP "still here"').code == 'TAG "still here"'
    assert wire.cmd("LISTSCRIPTS").lines == []


def test_rfc5804_s1_2_a_literal_too_large_to_pass_over_gets_bye(server, client_context, account) -> None:
    """Past what the server will read and drop: BYE before a single octet is sent, and other sessions
    are not affected."""
    other = signed_in(server, client_context, account.address, account.password)
    connection = signed_in(server, client_context, account.address, account.password)
    connection.send(b'PUTSCRIPT "huge" {100000000+}\r\n')
    answer = connection.reply()
    assert (answer.status, answer.code) == ("BYE", "QUOTA/MAXSIZE")
    assert connection.closed()
    connection.close()
    assert other.putscript("fine", KEEP).status == "OK"
    other.close()


def test_rfc5804_s1_2_before_authentication_a_large_literal_gets_bye_unread(server, client_context) -> None:
    connection = fresh(server)
    connection.starttls(client_context)
    connection.send(b'AUTHENTICATE "PLAIN" {100000+}\r\n')
    answer = connection.reply()
    assert answer.status == "BYE"
    assert connection.closed()
    connection.close()


def test_rfc5804_s2_1_a_sasl_response_too_large_gets_bye(server, client_context, caplog) -> None:
    """The SASL response is read within the limits of a command before authentication."""
    connection = fresh(server)
    connection.starttls(client_context)
    connection.send(b'AUTHENTICATE "PLAIN"\r\n')
    assert connection.line() == b'""\r\n'
    connection.send(b"{100000+}\r\n")
    answer = connection.reply()
    assert answer.status == "BYE"
    assert connection.closed()
    connection.close()
    assert not [r for r in caplog.records if r.levelno >= 40]  # an answer, not a failed session


def test_rfc5804_s2_13_noop_echoes_its_tag(server) -> None:
    connection = fresh(server)
    assert connection.cmd("NOOP").raw == b'OK "NOOP completed"\r\n'
    assert connection.cmd('NOOP "STARTTLS-SYNC-42"').raw == b'OK (TAG "STARTTLS-SYNC-42") "Done"\r\n'
    assert connection.cmd('NOOP "a\\"b"').raw == b'OK (TAG "a\\"b") "Done"\r\n'
    assert connection.cmd("NOOP {3+}\r\na\r\n").raw == b'OK (TAG {3}\r\na\r\n) "Done"\r\n'  # §2.13's literal form
    connection.close()


def test_rfc5804_s2_3_logout_answers_ok_and_closes(server) -> None:
    connection = fresh(server)
    connection.send(b"LOGOUT\r\nNOOP\r\n")
    assert connection.reply().raw == b'OK "Logout completed"\r\n'
    assert connection.closed()  # §2.3: commands after LOGOUT are ignored
    connection.close()


# ---- bad input ---------------------------------------------------------------------------------------
def test_rfc5804_s2_malformed_commands_get_no_and_the_connection_goes_on(server) -> None:
    connection = fresh(server)
    for line in (b"FROBNICATE", b"CAPABILITY extra", b'GETSCRIPT "unterminated', b"\xff\xfe", b""):
        assert connection.cmd(line).status == "NO", line
    # A bad line that announces a literal: the literal is passed over, not read as a command.
    answer = connection.cmd(b'PUTSCRIPT "a\\q" {9+}\r\nLISTSCRIPT')
    assert answer.status == "NO"
    assert connection.cmd('NOOP "after"').code == 'TAG "after"'
    connection.close()


def test_rfc5804_s1_2_too_many_bad_commands_get_bye(server) -> None:
    connection = fresh(server)
    for _ in range(19):
        assert connection.cmd("NONSENSE").status == "NO"
    assert connection.cmd("NONSENSE").status == "NO"
    bye = connection.reply()
    assert (bye.status, bye.text) == ("BYE", "Too many invalid commands")
    assert connection.closed()
    connection.close()


def test_rfc5804_s1_2_a_line_too_long_gets_bye_and_other_sessions_go_on(server, client_context, account) -> None:
    other = signed_in(server, client_context, account.address, account.password)
    connection = fresh(server)
    connection.send(b'NOOP "' + b"x" * 20000 + b'"\r\n')
    answer = connection.reply()
    assert (answer.status, answer.text) == ("BYE", "Line too long")
    assert connection.closed()
    connection.close()
    assert other.cmd("LISTSCRIPTS").status == "OK"
    other.close()


def test_rfc5804_s1_2_an_idle_client_gets_bye(serve) -> None:
    """Before authentication the inactivity timeout may be short (§1.2); the server says BYE and hangs up."""
    server = serve(managesieve_login_timeout=0.5)
    connection = fresh(server)
    answer = connection.reply()
    assert answer.status == "BYE"
    assert "idle" in answer.text.lower()
    assert connection.closed()
    connection.close()


def test_rfc5804_s1_2_autologout_is_at_least_30_minutes() -> None:
    from pydantic import ValidationError

    from sealmail.settings import Settings

    assert Settings().managesieve_autologout == 1800
    with pytest.raises(ValidationError):
        Settings(managesieve_autologout=1799)


def test_rfc5804_s1_3_a_drained_server_says_bye_trylater_and_open_sessions_go_on(wire, server) -> None:
    """``sealmail drain on``: a new connection gets BYE (TRYLATER) instead of the greeting (RFC 5804
    §1.2: BYE may come at any time), and a session opened before goes on."""
    from sealmail.net.drain import set_draining

    set_draining(server.settings.run_dir, True)
    try:
        refused = Wire.connect(server)
        answer = refused.reply()
        assert (answer.status, answer.code, answer.lines) == ("BYE", "TRYLATER", [])
        assert refused.closed()
        refused.close()
        assert wire.cmd("LISTSCRIPTS").status == "OK"
    finally:
        set_draining(server.settings.run_dir, False)
    after = fresh(server)
    assert after.cmd("LOGOUT").status == "OK"
    after.close()


def test_rfc5804_s1_3_connections_over_the_per_address_limit_get_bye_trylater(serve) -> None:
    server = serve(managesieve_max_connections_per_ip=2)
    first, second = fresh(server), fresh(server)
    third = Wire.connect(server)
    answer = third.reply()
    assert (answer.status, answer.code) == ("BYE", "TRYLATER")
    assert third.closed()
    for connection in (first, second, third):
        connection.close()
