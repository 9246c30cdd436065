"""Fuzz targets: DAV request bodies our code reads, and the message headers mail authentication parses.

* ``fastpaths.requested_props`` reads every depth-1 PROPFIND body (RFC 4918 §9.1) before Radicale
  does: a property list, or None to hand the request to Radicale, which answers bad XML with 400;
* ``dkimcanon.relaxed_headers`` (RFC 6376 §3.4.2) and the From/Authentication-Results readers of
  ``mailauth.checks`` (RFC 7489 §6.6.1, RFC 8601 §5) see every inbound message's header.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sealmail.dav import fastpaths
from sealmail.mailauth import checks, dkimcanon

from .fuzzkit import fuzz, lines_from

XML_WORDS = [
    "<", ">", "</", "/>", "=", '"', "'", " ", "\n", "&", ";", "&amp;", "&x;", "<?xml version=\"1.0\"?>",
    "<!DOCTYPE d [<!ENTITY x \"y\">]>", "<![CDATA[", "]]>", "<!--", "-->", "<?pi x?>", "xmlns=\"DAV:\"",
    "xmlns:C=\"urn:ietf:params:xml:ns:caldav\"", "xmlns:D=\"DAV:\"", "D:", "C:", "propfind", "prop", "allprop",
    "propname", "getetag", "getcontenttype", "resourcetype", "current-user-principal", "calendar-data",
    "calendar-multiget", "sync-collection", "sync-token", "href", "\x00", "é", "\xff",
]  # fmt: skip


@fuzz()
@given(st.one_of(st.binary(max_size=400), lines_from(XML_WORDS, max_size=40)))
def test_propfind_bodies_give_properties_or_none(body: bytes) -> None:
    props = fastpaths.requested_props(body)
    assert props is None or (props and all(isinstance(p, str) for p in props) and len(set(props)) == len(props))


HEADER_WORDS = [
    "From: ", "from:", "Authentication-Results: ", "DKIM-Signature: ", "mx.example.test", "; ", "dkim=pass",
    "spf=fail", "(", ")", "\\", '"', "<", ">", "@", ",", ":", "\r\n", "\n", "\r\n ", "\r\n\t", "\r\n\r\n", " ", "\t",
    "\x0b", "\x0c", "a@example.org", "Name <x@universitéxyz.fr>", "group: a@b, c@d;", "xn--", "@.", "@" + "a" * 70,
    "=?utf-8?q?x?=", "é", "\xff", "\x00",
]  # fmt: skip
message_header = st.one_of(st.binary(max_size=500), lines_from(HEADER_WORDS, max_size=40))


@fuzz()
@given(st.lists(st.tuples(st.binary(max_size=20), st.binary(max_size=60)), max_size=5))
def test_relaxed_header_canonicalization(fields: list[tuple[bytes, bytes]]) -> None:
    """RFC 6376 §3.4.2: lower-cased names, no WSP around the colon, runs of WSP as one SP, CRLF end."""
    out = dkimcanon.relaxed_headers([(name, value + b"\r\n") for name, value in fields])
    assert len(out) == len(fields)
    for name, value in out:
        assert name == name.lower()
        assert not name.endswith((b" ", b"\t"))
        assert value.endswith(b"\r\n")
        assert b"  " not in value
        assert b"\t" not in value
        assert not value[:-2].startswith(b" ")
        assert not value[:-2].endswith(b" ")


@fuzz()
@given(message_header, st.sampled_from(["mx.example.test", "MX.Example.Test", "é"]))
def test_header_readers(message: bytes, authserv_id: str) -> None:
    domains = checks.from_domains(message)
    assert all(isinstance(d, str) for d in domains)
    kept = checks.remove_forged_results(message, authserv_id)
    assert kept is None or len(kept) < len(message)
    assert isinstance(checks._tags(message), dict)
