"""Request bodies with DTDs and entity declarations (found by tests/fuzz)."""

from __future__ import annotations

import pytest

CAL = "/alice%40example.test/calendar/"
BODIES = [
    b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x "y">]><propfind xmlns="DAV:"><prop><getetag/></prop></propfind>',
    b'<!DOCTYPE _[<!ENTITY A ""',  # cut short inside the declaration
    b'<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><propfind xmlns="DAV:"><prop>&x;</prop></propfind>',
]


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize(
    ("method", "depth"), [("PROPFIND", "0"), ("PROPFIND", "1"), ("REPORT", "1"), ("PROPPATCH", "0")]
)
def test_entity_declarations_are_a_bad_request_rfc4918_s8_2_s20_6(alice, method: str, depth: str, body: bytes) -> None:
    """RFC 4918 §20.6 (external entities) and §8.2: a body the server will not read is rejected as a
    whole with 400 (Bad Request), not a 500, and the collection goes on answering."""
    answer = alice.request(method, CAL, content=body, headers={"Depth": depth, "Content-Type": "application/xml"})
    assert answer.status_code == 400, answer.text
    again = alice.request(
        "PROPFIND", CAL, content=BODIES[0].replace(b'<!DOCTYPE d [<!ENTITY x "y">]>', b""), headers={"Depth": "0"}
    )
    assert again.status_code == 207
