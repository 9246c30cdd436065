"""Wire target: fuzzed request bodies to the real DAV component over HTTPS.

PROPFIND and REPORT bodies (RFC 4918 §9.1, RFC 4791 §7, RFC 6578 §3) and PUT bodies of iCalendar
(RFC 5545) and vCard (RFC 6350): a body the server cannot read is a 4xx (400 Bad Request, 403 for
a precondition, 415 for a media type, RFC 4918 §8.7 / RFC 4791 §5.3.2.1), never a 5xx; and the
collection still answers a well-formed PROPFIND afterwards.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from .fuzzkit import WIRE_DEADLINE, fuzz, lines_from
from .test_dav_mailauth_fuzz import XML_WORDS

CAL = "/alice%40example.test/calendar/"
BOOK = "/alice%40example.test/contacts/"
WELL_FORMED = b'<?xml version="1.0"?><propfind xmlns="DAV:"><prop><getetag/></prop></propfind>'
ICS_WORDS = [
    "BEGIN:VCALENDAR\r\n", "END:VCALENDAR\r\n", "BEGIN:VEVENT\r\n", "END:VEVENT\r\n", "BEGIN:VTODO\r\n",
    "END:VTODO\r\n", "BEGIN:VTIMEZONE\r\n", "END:VTIMEZONE\r\n", "VERSION:2.0\r\n", "PRODID:-//f//f//EN\r\n",
    "UID:", "fuzz-1", "\r\n", "DTSTART:", "DTSTART;TZID=Nowhere/Else:", "DTEND:", "DURATION:", "RRULE:",
    "FREQ=DAILY;COUNT=", "FREQ=SECONDLY", ";BYDAY=MO", "UNTIL=", "20260101T000000Z", "20261301T256161",
    "P1D", "P", "-PT1H", "SUMMARY:", "é", ";", ":", ",", "\r\n ", "\\", "BEGIN:VCARD\r\n", "END:VCARD\r\n",
    "VERSION:3.0\r\n", "VERSION:4.0\r\n", "FN:", "N:", "EMAIL:", "\x00",
]  # fmt: skip
xml_body = st.one_of(st.binary(max_size=300), lines_from(XML_WORDS, max_size=30))
ics_body = st.one_of(st.binary(max_size=300), lines_from(ICS_WORDS, max_size=30))


@pytest.fixture
def alice(dav_server):
    with dav_server.client("alice@example.test") as client:
        yield client


def _still_serving(alice) -> None:
    answer = alice.request("PROPFIND", CAL, content=WELL_FORMED, headers={"Depth": "0"})
    assert answer.status_code == 207, answer.text


@fuzz(scale=0.5, deadline=WIRE_DEADLINE)
@given(st.sampled_from([("PROPFIND", "0"), ("PROPFIND", "1"), ("REPORT", "1"), ("REPORT", "0")]), xml_body)
def test_fuzzed_xml_bodies_get_a_client_error_or_an_answer(alice, request_kind: tuple[str, str], body: bytes) -> None:
    method, depth = request_kind
    answer = alice.request(method, CAL, content=body, headers={"Depth": depth, "Content-Type": "application/xml"})
    assert answer.status_code < 500, (method, body, answer.status_code, answer.text[:300])
    _still_serving(alice)


@fuzz(scale=0.5, deadline=WIRE_DEADLINE)
@given(st.sampled_from([(CAL + "fuzz.ics", "text/calendar"), (BOOK + "fuzz.vcf", "text/vcard")]), ics_body)
def test_fuzzed_items_get_a_client_error_or_are_stored(alice, target: tuple[str, str], body: bytes) -> None:
    path, kind = target
    answer = alice.put(path, content=body, headers={"Content-Type": f"{kind}; charset=utf-8"})
    assert answer.status_code < 500, (path, body, answer.status_code, answer.text[:300])
    if answer.status_code in (201, 204):
        assert alice.get(path).status_code == 200
        assert alice.delete(path).status_code in (200, 204)
    _still_serving(alice)
