"""The forms protocols send (store/wireform.py): CRLF sizes and RFC 6858 header downgrading."""

from __future__ import annotations

import base64
import email
import email.policy
import email.utils

from hypothesis import given
from hypothesis import strategies as st

from sealmail.store.wireform import (
    _FIELD,
    ascii_form,
    ascii_size,
    crlf_size,
    downgrade_header,
    encode_words,
    split_header,
    to_crlf,
)

# Messages made of the bytes that matter here: CR, LF, dots, 8-bit text.
_pieces = st.sampled_from([b"\r", b"\n", b"\r\n", b".", b"..", b"a", b" ", b"\xc3\xa9", b"Subject: x", b":"])
messages = st.lists(_pieces, max_size=40).map(b"".join)


@given(messages)
def test_crlf_size_is_the_length_of_the_crlf_form(raw: bytes) -> None:
    """RFC 1939 §11: the size the store records at append is the octets a POP3 RETR sends."""
    sent = to_crlf(raw)
    assert len(sent) == crlf_size(raw)
    assert b"\n" not in sent.replace(b"\r\n", b"")  # no bare LF left
    assert not sent or sent.endswith(b"\r\n")


@given(messages, st.booleans())
def test_ascii_size_is_the_length_of_the_ascii_form(body: bytes, eight_bit: bool) -> None:
    """RFC 6856 §2: LIST sizes match RETR also for messages downgraded for a client without UTF-8."""
    header = b"From: R\xc3\xa9mi <r\xc3\xa9mi@example.test>\nSubject: caf\xc3\xa9\n" if eight_bit else b"Subject: x\n"
    for raw in (header + b"\n" + body, body):
        assert b"".join(_FIELD.findall(to_crlf(split_header(raw)))) == to_crlf(split_header(raw))  # nothing lost
        sent = ascii_form(raw)
        assert len(sent) == ascii_size(raw)
        assert split_header(sent).isascii()
        assert sent[len(split_header(sent)) :] == to_crlf(raw)[len(to_crlf(split_header(raw))) :]  # same body
        if split_header(raw).isascii():
            assert sent == to_crlf(raw)


@given(st.text(min_size=1, max_size=300).filter(lambda t: "\r" not in t and "\n" not in t))
def test_encoded_words_round_trip(text: str) -> None:
    """RFC 2047 §2, §5: words of at most 75 characters, whole characters only, decoding to the text."""
    encoded = encode_words(text)
    assert encoded.isascii()
    words = encoded.split("\r\n ")
    assert all(len(word) <= 75 for word in words)
    decoded = b"".join(base64.b64decode(word[len("=?utf-8?b?") : -2]) for word in words)
    assert decoded == text.encode("utf-8", "surrogateescape")
    for word in words:
        base64.b64decode(word[len("=?utf-8?b?") : -2]).decode("utf-8")  # no character split


def test_downgrade_keeps_ascii_fields_and_readable_values() -> None:
    """RFC 6858 §3: an all-ASCII header that decodes back to the original values."""
    header = (
        "From: Rémi Dupont <rémi@universitéxyz.fr>\r\n"
        "To: Zoë <zoe@example.org>, bob@example.org\r\n"
        "Subject: Réunion du conseil d'administration de l'université, demain, très important\r\n"
        'Content-Type: text/plain; charset=utf-8; name="résumé.txt"\r\n'
        "X-Plain: stays\r\n"
        "\r\n"
    ).encode()
    out = downgrade_header(header)
    assert out.isascii()
    assert b"X-Plain: stays\r\n" in out
    assert out.endswith(b"\r\n\r\n")
    assert b"\n" not in out.replace(b"\r\n", b"")
    parsed = email.message_from_bytes(out, policy=email.policy.default)
    assert parsed["Subject"] == "Réunion du conseil d'administration de l'université, demain, très important"
    assert parsed["To"].addresses[0].display_name == "Zoë"
    assert "rémi@universitéxyz.fr" in str(parsed["From"])  # a group named by the original address
    assert parsed.get_param("name") == "résumé.txt"


def test_simple_addresses_parse_like_the_standard_library() -> None:
    from sealmail.store.wireform import _addresses

    for text in (
        "Chloé Durand <chloé@example.org>",
        '"Durand, Chloé" <c@example.org>',
        "<zoë@x.test>",
        "zoë@x.test",
        "Zoë <zoe@example.org>, bob@example.org",
        "Rémi (work) <r@x.test>",
        "  Zoë   <zoe@example.org> ",
    ):
        assert _addresses(text) == email.utils.getaddresses([text]), text
