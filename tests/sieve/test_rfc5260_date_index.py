"""RFC 5260 date, currentdate and index, on a fixed clock (sievekit.NOW: 2026-12-07 10:00 +0100)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sievekit import message, run, summary

BOX = ("INBOX", "urgent", "weekend")
RECEIVED = [
    "from a.example by b.example; Mon, 07 Dec 2026 08:00:00 -0500",
    "from c.example by a.example; Sun, 06 Dec 2026 23:30:00 +0000",
    "from d.example by c.example; Sat, 05 Dec 2026 12:00:00 +0000",
]

BOSS = """require ["date", "relational", "fileinto"];
if allof(header :is "from" "boss@example.com",
         date :value "ge" :originalzone "date" "hour" "09",
         date :value "lt" :originalzone "date" "hour" "17")
{ fileinto "urgent"; }
"""

WEEKEND = """require ["date", "relational", "fileinto", "index"];
if anyof(date :is "received" "weekday" "0",
         date :is "received" "weekday" "6")
{ fileinto "weekend"; }
"""

CASES = [
    # RFC 5260 §4's examples
    pytest.param(
        BOSS, message(From="boss@example.com"), "fileinto:urgent", id="§4 boss in office hours (its own zone)"
    ),
    pytest.param(
        BOSS,
        message(From="boss@example.com", Date="Mon, 7 Dec 2026 18:30:00 +0100"),
        "keep",
        id="§4 boss after hours",
    ),
    pytest.param(
        BOSS,
        message(From="boss@example.com", Date="Mon, 7 Dec 2026 16:30:00 -0300"),
        "fileinto:urgent",
        id="§4 :originalzone keeps the sender's hours (16:30 there, 20:30 here)",
    ),
    pytest.param(
        BOSS.replace(":originalzone", ':zone "+0900"'),
        message(From="boss@example.com", Date="Mon, 7 Dec 2026 16:30:00 -0300"),
        "keep",
        id="§4.1 :zone moves the date (04:30 in +0900)",
    ),
    pytest.param(
        BOSS.replace(":originalzone ", ""),
        message(From="boss@example.com", Date="Mon, 7 Dec 2026 16:30:00 -0300"),
        "keep",
        id="§4.1 without a zone: the local one (20:30)",
    ),
    pytest.param(BOSS, message(From="boss@example.com", Date="not a date"), "keep", id="§4 a date that does not parse"),
    pytest.param(WEEKEND, message(Received=RECEIVED), "fileinto:weekend", id="§4 received on a weekend, any of them"),
    pytest.param(
        WEEKEND.replace('date :is "received"', 'date :index 1 :is "received"'),
        message(Received=RECEIVED),
        "keep",
        id="§6 :index 1 is the newest Received (a Monday)",
    ),
    pytest.param(
        WEEKEND.replace('date :is "received"', 'date :index 1 :last :is "received"'),
        message(Received=RECEIVED),
        "fileinto:weekend",
        id="§6 :index 1 :last is the oldest (a Saturday)",
    ),
    pytest.param(
        'require ["date", "relational", "index"];\n'
        'if date :value "gt" :index 2 :zone "-0500" "received" "iso8601" "2026-12-06T18:00:00-05:00"'
        ' { redirect "aftercutoff@example.org"; }',
        message(Received=RECEIVED),
        "redirect:aftercutoff@example.org",
        id="§6 example: the second Received after a cutoff",
    ),
    pytest.param(
        'require ["index"];\nif header :index 2 :contains "received" "c.example" { discard; }',
        message(Received=RECEIVED),
        "discard",
        id="§6 header :index",
    ),
    pytest.param(
        'require ["index"];\nif header :index 4 :contains "received" "" { discard; }',
        message(Received=RECEIVED),
        "keep",
        id="§6 :index past the last field matches nothing",
    ),
]


@pytest.mark.parametrize(("script", "raw", "expected"), CASES)
def test_rfc5260_date_and_index(script: str, raw: bytes, expected: str) -> None:
    assert summary(run(script, raw, mailboxes=BOX)) == (expected,)


PARTS = [
    # every date part of RFC 5260 §4.2 for Date: Mon, 7 Dec 2026 09:30:05 +0100, in its own zone
    ("year", "2026"),
    ("month", "12"),
    ("day", "07"),
    ("date", "2026-12-07"),
    ("julian", "61381"),
    ("hour", "09"),
    ("minute", "30"),
    ("second", "05"),
    ("time", "09:30:05"),
    ("iso8601", "2026-12-07T09:30:05+01:00"),
    ("std11", "Mon, 07 Dec 2026 09:30:05 +0100"),
    ("zone", "+0100"),
    ("weekday", "1"),
]


@pytest.mark.parametrize(("part", "value"), PARTS, ids=[p[0] for p in PARTS])
def test_rfc5260_4_2_date_parts(part: str, value: str) -> None:
    script = f'require "date";\nif date :originalzone :is "date" "{part}" "{value}" {{ discard; }}'
    assert summary(run(script, message(Date="Mon, 7 Dec 2026 09:30:05 +0100"))) == ("discard",)


def test_rfc5260_4_julian_day_and_utc() -> None:
    """RFC 5260 §4.2: julian is the Modified Julian Day (1858-11-17 is day 0)."""
    script = 'require "date";\nif date :zone "+0000" :is "date" "julian" "0" { discard; }'
    assert summary(run(script, message(Date="Wed, 17 Nov 1858 12:00:00 +0000"))) == ("discard",)


def test_rfc5260_5_currentdate_vacation_window() -> None:
    """RFC 5260 §5's example: a vacation during a date range, on the injected clock."""
    script = """require ["date", "relational", "vacation"];
if allof(currentdate :value "ge" "date" "2026-12-01",
         currentdate :value "le" "date" "2026-12-07")
{ vacation :days 7 "I'm away during the first week in December."; }
"""
    assert summary(run(script)) == ("keep", "vacation")
    assert summary(run(script, now=datetime(2026, 12, 8, 12, tzinfo=UTC))) == ("keep",)


def test_rfc5260_5_currentdate_into_variables() -> None:
    """RFC 5260 §5's example: file by month and year; the clock's zone is the local zone."""
    script = """require ["date", "variables", "fileinto", "mailbox"];
if currentdate :matches "month" "*" { set "month" "${1}"; }
if currentdate :matches "year"  "*" { set "year" "${1}"; }
fileinto :create "${month}-${year}";
"""
    assert summary(run(script)) == ("fileinto:12-2026",)
    new_year = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)
    assert summary(run(script, now=new_year)) == ("fileinto:12-2026",)
    zoned = script.replace('currentdate :matches "month"', 'currentdate :zone "+0100" :matches "month"')
    assert summary(run(zoned, now=new_year)) == ("fileinto:01-2026",)
