"""MIME structure of stored messages, computed once at append time (RFC 2045-2049, RFC 5322, RFC 6532).

The store calls :func:`parse` on the raw octets, keeps ``ParsedMessage.to_json()`` next to the body,
and answers IMAP FETCH and SEARCH from it without parsing again:

* ``section_bytes`` / ``binary_bytes`` / ``binary_size`` slice ``BODY[...]`` and ``BINARY[...]``;
* ``bodystructure`` / ``body`` / ``envelope_value`` give FETCH values for ``sealmail.imap.wire``;
* ``search_headers``, ``header_field``, ``sent_date``, ``sent_day``, ``search_text`` feed SEARCH and the FTS index;
* ``attachments`` lists the body ranges worth deduplicating.

Nothing here does I/O. :func:`parse` never raises. The package imports nothing else from Sealmail: storage,
mail authentication (``mailauth``) and SMTP all read headers through it.
"""

from sealmail.mime.imap import body, bodystructure, envelope_value, imap_string
from sealmail.mime.model import Address, Envelope, HeaderField, HeaderValue, ParsedMessage, Part
from sealmail.mime.parser import MAX_DEPTH, MAX_HEADER_BYTES, MAX_PARTS, parse
from sealmail.mime.search import (
    ATTACHMENT_MIN_SIZE,
    MAX_SEARCH_TEXT,
    AttachmentRange,
    attachments,
    decoded_header,
    header_field,
    html_to_text,
    parse_date,
    search_headers,
    search_text,
    sent_date,
    sent_day,
)
from sealmail.mime.sections import (
    InvalidSection,
    Section,
    UnknownTransferEncoding,
    binary_bytes,
    binary_size,
    decode_transfer,
    find_part,
    numbered_parts,
    parse_section,
    section_bytes,
)


def canonical_line_ends(raw: bytes) -> bytes:
    """Bare LFs as CRLF (RFC 5322 §2.3). IMAP sizes and sections count CRLF octets, so the store should
    keep messages in this form; the parser itself accepts both."""
    if b"\n" not in raw:
        return raw
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


__all__ = [
    "ATTACHMENT_MIN_SIZE",
    "MAX_DEPTH",
    "MAX_HEADER_BYTES",
    "MAX_PARTS",
    "MAX_SEARCH_TEXT",
    "Address",
    "AttachmentRange",
    "Envelope",
    "HeaderField",
    "HeaderValue",
    "InvalidSection",
    "ParsedMessage",
    "Part",
    "Section",
    "UnknownTransferEncoding",
    "attachments",
    "binary_bytes",
    "binary_size",
    "body",
    "bodystructure",
    "canonical_line_ends",
    "decode_transfer",
    "decoded_header",
    "envelope_value",
    "find_part",
    "header_field",
    "html_to_text",
    "imap_string",
    "numbered_parts",
    "parse",
    "parse_date",
    "parse_section",
    "search_headers",
    "search_text",
    "section_bytes",
    "sent_date",
    "sent_day",
]
