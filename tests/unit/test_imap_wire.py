"""IMAP wire forms of nested values (RFC 9051 §4, §9): NIL, numbers, quoted strings, literals, lists."""

from __future__ import annotations

import pytest

from sealmail import mime
from sealmail.imap.wire import imap_serialize, string
from sealmail.mime.imap import Adjacent


def test_atoms_numbers_and_nil() -> None:
    assert imap_serialize(None) == b"NIL"
    assert imap_serialize(0) == b"0"
    assert imap_serialize(4294967295) == b"4294967295"
    assert imap_serialize([]) == b"()"


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        ("text", b'"text"'),
        ("", b'""'),
        ('say "hi" \\o/', b'"say \\"hi\\" \\\\o/"'),
        ("two\r\nlines", b"{10}\r\ntwo\r\nlines"),
        ("Jörg", b"{5}\r\nJ\xc3\xb6rg"),  # 8-bit without UTF8=ACCEPT: a literal
        (b"\xe9t\xe9", b"{3}\r\n\xe9t\xe9"),
    ],
)
def test_strings_are_quoted_or_literal(value, wire: bytes) -> None:
    assert imap_serialize(value) == wire


def test_utf8_accept_allows_quoted_utf8_rfc6855() -> None:
    assert imap_serialize("Jörg", utf8=True) == b'"J\xc3\xb6rg"'
    assert imap_serialize(b"\xe9t\xe9", utf8=True) == b"{3}\r\n\xe9t\xe9"  # not UTF-8: still a literal


def test_long_strings_become_literals() -> None:
    assert string(b"x" * 2000).startswith(b"{2000}\r\n")


def test_nul_is_refused() -> None:
    with pytest.raises(ValueError, match="literal8"):
        imap_serialize("a\x00b")


@pytest.mark.parametrize("bad", [True, -1, 1.5, object()])
def test_values_without_a_wire_form_are_refused(bad) -> None:
    with pytest.raises((TypeError, ValueError)):
        imap_serialize([bad])


def test_adjacent_lists_have_no_separator_rfc9051_body_type_mpart() -> None:
    """``1*body SP media-subtype`` and ``"(" 1*address ")"``: bodies and addresses are not separated."""
    assert (
        imap_serialize(Adjacent([[1], [2], "mixed", ["a", "b"], None, ["x"]]))
        == b'((1)(2) "mixed" ("a" "b") NIL ("x"))'
    )
    assert imap_serialize([[1], [2]]) == b"((1) (2))"


def test_bodystructure_on_the_wire() -> None:
    raw = (
        b"From: A <a@example.org>, b@example.org\r\nSubject: hi\r\n"
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n"
        b"--x\r\n\r\none\r\n--x\r\nContent-Type: image/png\r\n\r\nPNG\r\n--x--\r\n"
    )
    msg = mime.parse(raw)
    assert imap_serialize(mime.bodystructure(msg)) == (
        b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 0 NIL NIL NIL NIL)'
        b'("image" "png" NIL NIL NIL "7bit" 3 NIL NIL NIL NIL) "mixed" ("boundary" "x") NIL NIL NIL)'
    )
    assert imap_serialize(mime.envelope_value(msg)[2]) == b'(("A" NIL "a" "example.org")(NIL NIL "b" "example.org"))'
