"""RFC 5232 imap4flags: the internal variable, named flag variables, :flags, hasflag."""

from __future__ import annotations

import pytest

from sievekit import message, run, summary

BOX = ("INBOX", "INBOX.From Boss", "INBOX.imap-list")


def test_rfc5232_3_addflag_accumulates_once_each() -> None:
    """RFC 5232 §3.2's example: the same flag added twice is there once."""
    script = """require ["imap4flags", "variables", "fileinto"];
addflag "flagvar" "\\\\Deleted";
addflag "flagvar" "\\\\Answered";
addflag "flagvar" ["\\\\Deleted", "\\\\Answered"];
addflag "flagvar" "\\\\Deleted \\\\Answered";
keep :flags "${flagvar}";
"""
    assert summary(run(script)) == ("keep[\\Deleted \\Answered]",)


def test_rfc5232_3_removeflag_example() -> None:
    """RFC 5232 §3.3's example."""
    script = """require ["imap4flags", "fileinto", "variables"];
if header :contains "Disposition-Notification-To" "mel@example.com" {
    addflag "flagvar" "$MDNRequired";
}
if header :contains "from" "imap@cac.washington.example.edu" {
    removeflag "flagvar" "$MDNRequired";
    fileinto :flags "${flagvar}" "INBOX.imap-list";
}
"""
    raw = message(Disposition_Notification_To="mel@example.com", From="imap@cac.washington.example.edu")
    assert summary(run(script, raw, mailboxes=BOX)) == ("fileinto:INBOX.imap-list",)
    raw = message(Disposition_Notification_To="mel@example.com")
    assert summary(run(script, raw, mailboxes=BOX)) == ("keep",)  # a named variable does not flag the keep


def test_rfc5232_5_internal_variable_on_implicit_keep_and_fileinto() -> None:
    """RFC 5232 §5's example: setflag on the internal variable flags every copy stored after."""
    script = """require ["imap4flags", "fileinto"];
if size :over 500K {
    setflag "\\\\Deleted";
}
if header :contains "from" "boss@frobnitzm.example.edu" {
    setflag "\\\\Flagged";
    fileinto "INBOX.From Boss";
}
"""
    assert summary(run(script, message("x" * 600_000), mailboxes=BOX)) == ("keep[\\Deleted]",)
    boss = message(From="boss@frobnitzm.example.edu")
    assert summary(run(script, boss, mailboxes=BOX)) == ("fileinto:INBOX.From Boss[\\Flagged]",)


def test_rfc5232_5_flags_argument_replaces_the_internal_variable() -> None:
    script = """require ["imap4flags", "fileinto", "copy"];
addflag ["\\\\Seen", "$Work"];
fileinto :copy :flags "\\\\Flagged" "INBOX.From Boss";
removeflag "$Work";
"""
    assert summary(run(script, mailboxes=BOX)) == ("fileinto:INBOX.From Boss[\\Flagged]", "keep[\\Seen]")


def test_rfc5228_2_10_3_one_copy_per_mailbox_with_the_flags_of_each() -> None:
    """Filed twice into one mailbox: stored once, with every flag asked for."""
    script = """require ["imap4flags", "fileinto"];
fileinto :flags "\\\\Seen" "INBOX.From Boss";
fileinto :flags ["\\\\Flagged", "\\\\seen"] "INBOX.From Boss";
"""
    assert summary(run(script, mailboxes=BOX)) == ("fileinto:INBOX.From Boss[\\Seen \\Flagged]",)


def test_flags_imap_cannot_store_are_dropped() -> None:
    """\\Recent and unknown system flags, and keywords that are not IMAP atoms, are not stored."""
    script = 'require "imap4flags";\nkeep :flags ["\\\\Recent", "\\\\Frob", "\\\\seen", "ok", "bad(flag"];'
    assert summary(run(script)) == ("keep[\\Seen ok]",)


HASFLAG = [
    # RFC 5232 §4's examples on "MyVar"
    ('hasflag :contains "MyVar" "Junk"', True),
    ('hasflag :contains "MyVar" "forward"', True),
    ('hasflag :contains "MyVar" ["label", "forward"]', True),
    ('hasflag :contains "MyVar" ["junk", "forward"]', True),
    ('hasflag :is "MyVar" "Junk"', True),
    ('hasflag :is "MyVar" "label"', False),
    ('hasflag :is "MyVar" ["label", "NotJunk"]', True),
    ('hasflag :count "ge" :comparator "i;ascii-numeric" "MyVar" "8"', True),
    ('hasflag :count "gt" :comparator "i;ascii-numeric" "MyVar" "8"', False),
    ('hasflag "\\\\Seen"', True),  # the internal variable
    ('hasflag "MyVar" "\\\\Seen"', False),
]


@pytest.mark.parametrize(("test", "expected"), HASFLAG, ids=[h[0] for h in HASFLAG])
def test_rfc5232_4_hasflag(test: str, expected: bool) -> None:
    script = f"""require ["imap4flags", "variables", "relational", "comparator-i;ascii-numeric"];
set "MyVar" "NonJunk Junk gnus-forward $Forwarded NotJunk JunkRecorded $Junk $NotJunk";
setflag "\\\\Seen";
if {test} {{ discard; }}
"""
    assert summary(run(script)) == (("discard",) if expected else ("keep[\\Seen]",))
