"""The ManageSieve grammar (RFC 5804 §4) and the server's strings, as pure functions."""

from __future__ import annotations

import pytest

from sealmail.managesieve import parser as p
from sealmail.managesieve import wire


def parse(*pieces: bytes) -> p.Command:
    """Lines (each with its CRLF) and literal octets, in the order a client sends them."""
    reader = p.CommandParser()
    pending: p.LiteralHead | None = None
    for piece in pieces:
        if pending is not None:
            assert len(piece) == pending.size
            reader.literal(piece)
            pending = None
        else:
            pending = reader.feed(piece)
    assert pending is None, "a literal was announced but not given"
    return reader.command()


def test_rfc5804_s4_command_names_are_case_insensitive() -> None:
    assert parse(b"capability\r\n") == p.Command("CAPABILITY")
    assert parse(b"LiStScRiPtS\r\n") == p.Command("LISTSCRIPTS")
    assert parse(b"Logout\n") == p.Command("LOGOUT")  # a bare LF ends a line too


def test_rfc5804_s4_quoted_strings_unescape_quoted_specials() -> None:
    command = parse(b'PUTSCRIPT "a \\"b\\" \\\\c" "keep;"\r\n')
    assert command == p.PutScript("PUTSCRIPT", 'a "b" \\c', "keep;")


def test_rfc5804_s4_quoted_strings_carry_utf8() -> None:
    assert parse('GETSCRIPT "Ferien – été"\r\n'.encode()) == p.Named("GETSCRIPT", "Ferien – été")


@pytest.mark.parametrize("head", [b"{13+}", b"{13}"])
def test_rfc5804_s4_literals_plus_and_plain_are_read_the_same(head: bytes) -> None:
    """literal-c2s ``{N+}``; ``{N}`` too: ManageSieve has no continuation, the octets follow at once."""
    reader = p.CommandParser()
    announced = reader.feed(b'PUTSCRIPT "s" ' + head + b"\r\n")
    assert announced == p.LiteralHead(13, plus=head.endswith(b"+}"))
    reader.literal(b"keep;\r\nstop;\r\n")
    assert reader.feed(b"\r\n") is None
    assert reader.command() == p.PutScript("PUTSCRIPT", "s", "keep;\r\nstop;\r\n")


def test_rfc5804_s4_a_line_goes_on_after_a_literal() -> None:
    command = parse(b"RENAMESCRIPT {3+}\r\n", b"old", b' "new"\r\n')
    assert command == p.RenameScript("RENAMESCRIPT", "old", "new")
    command = parse(b"RENAMESCRIPT {1+}\r\n", b"a", b" {1+}\r\n", b"b", b"\r\n")
    assert command == p.RenameScript("RENAMESCRIPT", "a", "b")


def test_rfc5804_s4_an_empty_literal_is_an_empty_string() -> None:
    assert parse(b"SETACTIVE {0+}\r\n", b"", b"\r\n") == p.Named("SETACTIVE", "")


def test_rfc5804_s2_8_setactive_takes_the_empty_name_other_commands_do_not() -> None:
    assert parse(b'SETACTIVE ""\r\n') == p.Named("SETACTIVE", "")
    for name in ("GETSCRIPT", "DELETESCRIPT"):
        with pytest.raises(p.ParseError, match="empty"):
            parse(f'{name} ""\r\n'.encode())


def test_rfc5804_s2_1_authenticate_with_and_without_initial_response() -> None:
    assert parse(b'AUTHENTICATE "plain"\r\n') == p.Authenticate("AUTHENTICATE", "PLAIN", None)
    assert parse(b'AUTHENTICATE "PLAIN" "AGEAYg=="\r\n') == p.Authenticate("AUTHENTICATE", "PLAIN", b"AGEAYg==")
    # sieve-connect sends the initial response as a literal
    assert parse(b'AUTHENTICATE "PLAIN" {8+}\r\n', b"AGEAYg==", b"\r\n") == p.Authenticate(
        "AUTHENTICATE", "PLAIN", b"AGEAYg=="
    )


def test_rfc5804_s2_1_a_sasl_response_is_one_string() -> None:
    for pieces in ([b'"AGEAYg=="\r\n'], [b"{8+}\r\n", b"AGEAYg==", b"\r\n"]):
        reader = p.CommandParser()
        pending = reader.feed(pieces[0])
        if pending is not None:
            reader.literal(pieces[1])
            assert reader.feed(pieces[2]) is None
        assert reader.response() == b"AGEAYg=="
    reader = p.CommandParser()
    reader.feed(b"AGEAYg==\r\n")  # an atom, not a string
    with pytest.raises(p.ParseError):
        reader.response()


def test_rfc5804_s2_5_havespace_takes_a_name_and_a_32_bit_number() -> None:
    assert parse(b'HAVESPACE "myscript" 999999\r\n') == p.HaveSpace("HAVESPACE", "myscript", 999999)
    assert parse(b'HAVESPACE "s" 4294967295\r\n').size == 2**32 - 1  # type: ignore[attr-defined]
    with pytest.raises(p.ParseError, match="too large"):
        parse(b'HAVESPACE "s" 4294967296\r\n')
    with pytest.raises(p.ParseError, match="number"):
        parse(b'HAVESPACE "s" "12"\r\n')


def test_rfc5804_s2_13_noop_keeps_its_tag_as_sent() -> None:
    assert parse(b"NOOP\r\n") == p.Noop("NOOP", None)
    assert parse(b'NOOP "STARTTLS-SYNC-42"\r\n') == p.Noop("NOOP", b"STARTTLS-SYNC-42")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"\r\n", "Empty"),
        (b"FROBNICATE\r\n", "Unknown command FROBNICATE"),
        (b'"CAPABILITY"\r\n', "starts with its name"),
        (b"CAPABILITY extra\r\n", "takes 0 arguments"),
        (b'PUTSCRIPT "s"\r\n', "takes 2 arguments"),
        (b"GETSCRIPT name\r\n", "quoted string or a literal"),
        (b'GETSCRIPT "unterminated\r\n', "Unterminated"),
        (b'GETSCRIPT "bad \\n escape"\r\n', "may only precede"),
        (b'GETSCRIPT "a""b"\r\n', "space"),
        (b"GETSCRIPT (x)\r\n", "Unexpected character 0x28"),
        (b'GETSCRIPT "\xff\xfe"\r\n', "not valid UTF-8"),
        (b"GETSCRIPT {5+} tail\r\n", "end of a line"),
        (b"GETSCRIPT {+}\r\n", "end of a line"),
    ],
)
def test_rfc5804_s2_malformed_commands_are_parse_errors(line: bytes, message: str) -> None:
    """RFC 5804 §2: the server answers NO to what it cannot accept (ManageSieve has no BAD)."""
    with pytest.raises(p.ParseError, match=message):
        parse(line)


def test_rfc5804_s4_a_malformed_line_still_names_the_literal_to_skip() -> None:
    """Its octets are on their way whatever the server answers: the reader must pass over them."""
    reader = p.CommandParser()
    with pytest.raises(p.ParseError) as raised:
        reader.feed(b'PUTSCRIPT "a\\x" {42+}\r\n')
    assert raised.value.skip == p.LiteralHead(42, plus=True)


def test_rfc5228_s2_1_a_script_that_is_not_utf8_is_refused() -> None:
    with pytest.raises(p.ParseError, match="script is not valid UTF-8"):
        parse(b'PUTSCRIPT "s" {2+}\r\n', b"\xc3(", b"\r\n")


# ---- the server's side ---------------------------------------------------------------------------
def test_rfc5804_s4_server_strings_are_quoted_or_literal_s2c() -> None:
    assert wire.string("fileinto vacation") == b'"fileinto vacation"'
    assert wire.string('clever"script') == b'"clever\\"script"'
    assert wire.string("a\\b") == b'"a\\\\b"'
    assert wire.string("été") == '"été"'.encode()
    assert wire.string("two\r\nlines") == b"{10}\r\ntwo\r\nlines"
    assert wire.string("x" * 1025).startswith(b"{1025}\r\n")
    assert wire.string(b"\xff") == b"{1}\r\n\xff"


def test_rfc5804_s4_responses_with_codes_and_text() -> None:
    assert wire.response("OK") == b"OK\r\n"
    assert wire.response("NO", "There is no script by that name", "NONEXISTENT") == (
        b'NO (NONEXISTENT) "There is no script by that name"\r\n'
    )
    assert wire.response("NO", "Quota exceeded", "QUOTA/MAXSIZE") == b'NO (QUOTA/MAXSIZE) "Quota exceeded"\r\n'
    # RFC 5804 §2.13's example: the tag comes back as the client sent it
    assert wire.response("OK", "Done", wire.tag_code(b"STARTTLS-SYNC-42")) == (
        b'OK (TAG "STARTTLS-SYNC-42") "Done"\r\n'
    )
    assert wire.capability("STARTTLS") == b'"STARTTLS"\r\n'
    assert wire.capability("VERSION", "1.0") == b'"VERSION" "1.0"\r\n'
