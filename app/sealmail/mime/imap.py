"""BODYSTRUCTURE, BODY and ENVELOPE (RFC 9051 §7.5.2, RFC 3501 §7.4.2) as nested values for a serializer.

Values: ``list`` for a parenthesised list, ``str``/``bytes`` for a string (``bytes`` when the header held
octets that are not UTF-8), ``int`` for a number, ``None`` for NIL. :func:`sealmail.imap.wire.imap_serialize`
writes them. Header values pass through raw: encoded-words intact, UTF-8 kept (RFC 6532).
"""

from __future__ import annotations

from typing import Any

from sealmail.mime.model import Address, Envelope, ParsedMessage, Part

Value = Any  # list | str | bytes | int | None, nested


class Adjacent(list[Any]):
    """A parenthesised list whose leading list items are written without spaces between them.

    RFC 9051 §9 has ``body-type-mpart = 1*body SP media-subtype`` and ``env-from = "(" 1*address ")"``:
    consecutive bodies and addresses are not separated. It is still a ``list`` for every other reader.
    """


# RFC 9051 §7.5.2: a multipart needs 1*body; Dovecot answers an empty one with one empty text/plain part.
_EMPTY_TEXT = Part(0, 0, 0, 0, lines=0)


def imap_string(value: str | None) -> str | bytes | None:
    """A header-derived string for IMAP: ``bytes`` if it holds octets that are not UTF-8.

    NUL cannot appear in an IMAP string (RFC 9051 §4.3); like Dovecot, it is sent as the octet 0x80.
    """
    if value is None:
        return None
    if "\x00" in value:
        return value.encode("utf-8", "surrogateescape").replace(b"\x00", b"\x80")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogateescape")
    return value


def _params(params: tuple[tuple[str, str], ...]) -> list[Any] | None:
    out: list[Any] = []
    for name, value in params:
        out.append(imap_string(name))
        out.append(imap_string(value))
    return out or None


def _content_params(part: Part) -> list[Any] | None:
    params = part.params
    # RFC 2045 §5.2: text without a charset is us-ascii; say so, as Dovecot and RFC 9051's examples do
    if part.type == "text" and not any(name.lower() == "charset" for name, _ in params):
        params = (*params, ("charset", "us-ascii"))
    return _params(params)


def _disposition(part: Part) -> list[Any] | None:
    if part.disposition is None:
        return None
    return [imap_string(part.disposition), _params(part.disposition_params)]


def _language(part: Part) -> list[Any] | None:
    return None if part.language is None else [imap_string(tag) for tag in part.language]


def _body(part: Part, extended: bool) -> list[Any]:
    if part.is_multipart:
        children = part.children or (_EMPTY_TEXT,)
        out: list[Any] = Adjacent(_body(child, extended) for child in children)
        out.append(imap_string(part.subtype))
        if extended:  # body-ext-mpart
            out += [_params(part.params), _disposition(part), _language(part), imap_string(part.location)]
        return out
    out = [
        imap_string(part.type),
        imap_string(part.subtype),
        _content_params(part),
        imap_string(part.id),
        imap_string(part.description),
        imap_string(part.encoding or "7bit"),
        part.size,
    ]
    if part.message is not None and part.envelope is not None:  # body-type-msg
        out += [envelope_value(part.envelope), _body(part.message, extended), part.lines or 0]
    elif part.type == "text":  # body-type-text
        out.append(part.lines or 0)
    if extended:  # body-ext-1part
        out += [imap_string(part.md5), _disposition(part), _language(part), imap_string(part.location)]
    return out


def bodystructure(parsed: ParsedMessage | Part) -> list[Any]:
    """FETCH BODYSTRUCTURE: the structure with extension data."""
    return _body(parsed.root if isinstance(parsed, ParsedMessage) else parsed, extended=True)


def body(parsed: ParsedMessage | Part) -> list[Any]:
    """FETCH BODY: the non-extensible form."""
    return _body(parsed.root if isinstance(parsed, ParsedMessage) else parsed, extended=False)


def _address(a: Address) -> list[Any]:
    return [imap_string(a.name), imap_string(a.adl), imap_string(a.mailbox), imap_string(a.host)]


def _addresses(addresses: tuple[Address, ...] | None) -> list[Any] | None:
    return None if not addresses else Adjacent(_address(a) for a in addresses)


def envelope_value(env: Envelope | ParsedMessage) -> list[Any]:
    """FETCH ENVELOPE. Sender and Reply-To default to From when absent or empty (RFC 9051 §7.5.2)."""
    if isinstance(env, ParsedMessage):
        env = env.envelope
    from_ = _addresses(env.from_)
    return [
        imap_string(env.date),
        imap_string(env.subject),
        from_,
        _addresses(env.sender) or from_,
        _addresses(env.reply_to) or from_,
        _addresses(env.to),
        _addresses(env.cc),
        _addresses(env.bcc),
        imap_string(env.in_reply_to),
        imap_string(env.message_id),
    ]
