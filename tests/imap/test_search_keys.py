"""SEARCH keys against RFC 9051 §6.4.4 over real sockets: dates, addresses, WITHIN (RFC 5032).

Dovecot's ImapTest scripts ``search-date`` and ``search-addresses`` found the gaps these tests pin down;
their cases are kept here as tables, with the RFC text they follow.
"""

from __future__ import annotations

import pytest

from .conftest import RawClient


def _append_all(raw: RawClient, messages: list[bytes], folder: str = "INBOX") -> None:
    for i, msg in enumerate(messages):
        lines = raw.command(b"ap%d APPEND %s {%d+}\r\n" % (i, folder.encode(), len(msg)) + msg)
        assert lines[-1].startswith(b"ap%d OK" % i), lines


def _search(raw: RawClient, criteria: str) -> list[int]:
    lines = raw.command(f"q SEARCH {criteria}")
    assert lines[-1].startswith(b"q OK"), lines
    found = [line for line in lines if line.startswith(b"* SEARCH")]
    assert len(found) == 1, lines
    return [int(n) for n in found[0].split()[2:]]


# ---- SENTBEFORE / SENTON / SENTSINCE: the Date header's own date --------------------------------
# The Date: values straddle the EET -> EEST switch (+0200 -> +0300) of 25 March 2007 and the way back
# on 28 October 2007: in UTC several fall on the day before, as written they do not.
DATES = [
    "Sat, 24 Mar 2007 23:00:00 +0200",  # 1
    "Sun, 25 Mar 2007 00:00:00 +0200",  # 2: 24 Mar 22:00 UTC
    "Sun, 25 Mar 2007 01:00:00 +0200",  # 3
    "Sun, 25 Mar 2007 02:00:00 +0200",  # 4
    "Sun, 25 Mar 2007 04:00:00 +0300",  # 5
    "Sun, 25 Mar 2007 23:00:00 +0300",  # 6
    "Mon, 26 Mar 2007 00:00:00 +0300",  # 7: 25 Mar 21:00 UTC
    "Sat, 27 Oct 2007 03:00:00 +0300",  # 8
    "Sun, 28 Oct 2007 00:00:00 +0300",  # 9: 27 Oct 21:00 UTC
    "Sun, 28 Oct 2007 01:00:00 +0300",  # 10
    "Sun, 28 Oct 2007 02:00:00 +0300",  # 11
    "Sun, 28 Oct 2007 03:00:00 +0300",  # 12
    "Sun, 28 Oct 2007 03:00:00 +0200",  # 13
    "Sun, 28 Oct 2007 04:00:00 +0200",  # 14
    "Sun, 28 Oct 2007 23:00:00 +0200",  # 15
    "Mon, 29 Oct 2007 00:00:00 +0200",  # 16: 28 Oct 22:00 UTC
]
SENT_CASES = [
    ("SENTBEFORE 24-Mar-2007", []),
    ("SENTBEFORE 25-Mar-2007", [1]),
    ("SENTBEFORE 26-Mar-2007", [1, 2, 3, 4, 5, 6]),
    ("SENTBEFORE 27-Mar-2007", [1, 2, 3, 4, 5, 6, 7]),
    ("SENTON 23-Mar-2007", []),
    ("SENTON 24-Mar-2007", [1]),
    ("SENTON 25-Mar-2007", [2, 3, 4, 5, 6]),
    ("SENTON 26-Mar-2007", [7]),
    ("1:7 SENTSINCE 24-Mar-2007", [1, 2, 3, 4, 5, 6, 7]),
    ("1:7 SENTSINCE 25-Mar-2007", [2, 3, 4, 5, 6, 7]),
    ("1:7 SENTSINCE 26-Mar-2007", [7]),
    ("1:7 SENTSINCE 27-Mar-2007", []),
    ("8:* SENTBEFORE 28-Oct-2007", [8]),
    ("8:* SENTBEFORE 29-Oct-2007", [8, 9, 10, 11, 12, 13, 14, 15]),
    ("8:* SENTON 28-Oct-2007", [9, 10, 11, 12, 13, 14, 15]),
    ("8:* SENTON 29-Oct-2007", [16]),
    ("8:* SENTSINCE 28-Oct-2007", [9, 10, 11, 12, 13, 14, 15, 16]),
    ("8:* SENTSINCE 29-Oct-2007", [16]),
    ("1:7 NOT SENTON 25-Mar-2007", [1, 7]),
    ("8:* NOT SENTSINCE 28-Oct-2007", [8]),
    ("8:* NOT SENTON 28-Oct-2007", [8, 16]),
]


def test_sent_date_keys_use_the_date_as_written(raw: RawClient) -> None:
    """RFC 9051 §6.4.4: SENTBEFORE/SENTON/SENTSINCE compare the Date: header's date "disregarding time and
    timezone": the calendar date the sender wrote, not that instant's date in UTC (ImapTest search-date)."""
    _append_all(raw, [f"Date: {d}\r\nSubject: {i}\r\n\r\nbody\r\n".encode() for i, d in enumerate(DATES, 1)])
    raw.command("s SELECT INBOX")
    failures = [(key, _search(raw, key), want) for key, want in SENT_CASES if _search(raw, key) != want]
    assert failures == []


@pytest.mark.parametrize(
    ("key", "want"),
    [("BEFORE 25-Mar-2007", [1]), ("ON 25-Mar-2007", [2]), ("SINCE 26-Mar-2007", [3])],
)
def test_internal_date_keys_compare_dates(raw: RawClient, key: str, want: list[int]) -> None:
    """RFC 9051 §6.4.4: BEFORE/ON/SINCE use the internal date, again without time or timezone. Sealmail
    keeps internal dates in UTC and reports them as +0000 (INTERNALDATE), so the date compared is the one
    the client is shown."""
    for i, when in enumerate(
        ["24-Mar-2007 23:59:59 +0000", "25-Mar-2007 00:00:00 +0000", "26-Mar-2007 01:00:00 +0100"]
    ):
        msg = b"Subject: x\r\n\r\nbody\r\n"
        lines = raw.command(b'a%d APPEND INBOX "%s" {%d+}\r\n' % (i, when.encode(), len(msg)) + msg)
        assert lines[-1].startswith(b"a%d OK" % i), lines
    raw.command("s SELECT INBOX")
    assert _search(raw, key) == want


# ---- FROM / TO / CC / BCC: the header text, and the addresses it denotes ------------------------
ADDRESSED = [
    b"From: user-from@domain.org\r\nTo: user-to@domain.org\r\nCc: user-cc@domain.org\r\nBcc: user-bcc@domain.org\r\n",
    b"From: RealFrom <user-from@domain.org>\r\nTo: RealTo <user-to@domain.org>\r\n"
    b"Cc: RealCc <user-cc@domain.org>\r\nBcc: RealBcc <user-bcc@domain.org>\r\n",
    b"From: <user-from (comment)@ (comment) domain.org>\r\nTo: <user-to@domain.org>\r\n"
    b"Cc: <user-cc@domain.org>\r\nBcc: <user-bcc@domain.org>\r\n",
    b"From: user-from@domain.org (RealFrom)\r\nTo: user-to@domain.org (RealTo)\r\n"
    b"Cc: user-cc@domain.org (RealCc)\r\nBcc: user-bcc@domain.org (RealBcc)\r\n",
    b"From: user-from1@domain.org, user-from2@domain.org\r\nCc: user-cc@domain.org\r\n",
    b"From: RealFrom <user-from@domain.org>\r\n"
    b"To: groupname: groupuser1@domain.org, groupuser2@domain.org;,\r\n  groupname2: groupuser3@domain.org;\r\n",
    b"From: RealFrom <user-from@domain.org>\r\nTo: groupname:;\r\n",
    b"From: =?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <jm@example.org>\r\n",
]
ADDRESS_CASES = [
    ("FROM user-from@domain.org", [1, 2, 3, 4, 6, 7]),  # 3: the address without its comments
    ("TO user-to@domain.org", [1, 2, 3, 4]),
    ("CC user-cc@domain.org", [1, 2, 3, 4, 5]),
    ("BCC user-bcc@domain.org", [1, 2, 3, 4]),
    ("FROM realfrom", [2, 4, 6, 7]),  # display names and comments
    ("TO realto", [2, 4]),
    ("BCC ealbc", [2, 4]),
    ("FROM ser-fro", [1, 2, 3, 4, 5, 6, 7]),  # substrings
    ("FROM user-from1", [5]),
    ("TO groupname", [6, 7]),  # group names
    ("TO groupuser3", [6]),
    ("TO groupuser4", []),
    ('FROM "Jürgen Müller"', [8]),  # RFC 2047 decoded (RFC 9051 §6.4.4: charset-aware matching)
    ('FROM "jm@example.org"', [8]),
    ('HEADER TO ""', [1, 2, 3, 4, 6, 7]),  # the field exists
]


def test_address_keys_match_header_text_and_addresses(raw: RawClient) -> None:
    """RFC 9051 §6.4.4: FROM/TO/CC/BCC "contain the specified string in the ... structure's field": the
    field as written (display names, comments, group names, decoded encoded-words) and the addresses it
    denotes, so "user-from@domain.org" finds "<user-from (comment)@ (comment) domain.org>" (ImapTest
    search-addresses)."""
    _append_all(raw, [head + b"Subject: s\r\n\r\nbody\r\n" for head in ADDRESSED])
    raw.command("s SELECT INBOX")
    failures = [(key, got, want) for key, want in ADDRESS_CASES if (got := _search(raw, key)) != want]
    assert failures == []


# ---- WITHIN (RFC 5032): OLDER / YOUNGER n seconds, on the internal date ----------------------------
WITHIN_CASES = [
    ("YOUNGER 259200", [3, 4]),  # RFC 5032 §3: "within the last 3 days" (the RFC's example interval)
    ("UNSEEN YOUNGER 259200", [4]),  # the RFC's example, with \Seen on message 3
    ("OLDER 259200", [1, 2]),
    ("OLDER 86400 YOUNGER 604800", [2, 3]),  # between one and seven days old
    ("OR OLDER 3600 YOUNGER 3600", [1, 2, 3, 4]),  # the two keys part the folder between them
    ("NOT YOUNGER 4000000000", []),
    ("OLDER 4000000000", []),
]


def test_within_older_and_younger(raw: RawClient) -> None:
    """RFC 5032 §2: OLDER n / YOUNGER n match messages whose internal date is older / younger than n
    seconds before now; §3's example (UNSEEN YOUNGER 259200) among them."""
    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    for i, age in enumerate([dt.timedelta(days=10), dt.timedelta(days=4), dt.timedelta(days=2), dt.timedelta(0)]):
        when = (now - age).strftime("%d-%b-%Y %H:%M:%S +0000")
        flags = "(\\Seen) " if i < 3 else ""
        msg = b"Subject: w\r\n\r\nbody\r\n"
        lines = raw.command(b'a%d APPEND INBOX %s"%s" {%d+}\r\n' % (i, flags.encode(), when.encode(), len(msg)) + msg)
        assert lines[-1].startswith(b"a%d OK" % i), lines
    assert b" WITHIN" in raw.command("c CAPABILITY")[0]
    raw.command("s SELECT INBOX")
    failures = [(key, got, want) for key, want in WITHIN_CASES if (got := _search(raw, key)) != want]
    assert failures == []


@pytest.mark.parametrize("criteria", ["OLDER 0", "YOUNGER", "OLDER -5", "YOUNGER 1d", "OLDER 99999999999"])
def test_within_needs_a_positive_interval(raw: RawClient, criteria: str) -> None:
    """RFC 5032 §4: interval = 1*DIGIT, at least 1 (nz-number); anything else is BAD and the session goes on."""
    raw.command("s SELECT INBOX")
    assert raw.command(f"b SEARCH {criteria}")[-1].startswith(b"b BAD")
    assert raw.command("n NOOP")[-1] == b"n OK NOOP completed\r\n"
