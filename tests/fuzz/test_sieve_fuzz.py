"""Fuzz targets: Sieve (sealmail/sieve).

``compile`` either returns a script or raises ``SieveError`` with a line inside the script; a
compiled script run on any bytes ends without an internal error (a broken message is filtered, not
bounced, and never lost).
"""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from sealmail.sieve.compile import compile as compile_script
from sealmail.sieve.errors import SieveError
from sealmail.sieve.evaluate import Envelope, Spam, evaluate
from sealmail.sieve.grammar import CAPABILITIES

from .fuzzkit import fuzz, lines_from
from .test_mime_fuzz import message_bytes

SIEVE_WORDS = [
    "\n", " ", ";", "{", "}", "(", ")", "[", "]", ",", '"', "\\", "#", "/*", "*/", "text:\n", "\n.\n", "..",
    "require ", "if ", "elsif ", "else ", "stop", "keep", "discard", "fileinto ", "redirect ", "reject ",
    "ereject ", "vacation ", "set ", "setflag ", "addflag ", "removeflag ", "header ", "address ", "envelope ",
    "exists ", "size ", "body ", "date ", "currentdate ", "string ", "hasflag ", "mailboxexists ", "spamtest ",
    "allof ", "anyof ", "not ", "true", "false", ":is ", ":contains ", ":matches ", ":regex ", ":count ",
    ":value ", '"gt" ', ":comparator ", '"i;ascii-numeric" ', ":all ", ":localpart ", ":domain ", ":index ",
    ":last ", ":zone ", ":originalzone ", ":copy ", ":create ", ":flags ", ":days ", ":subject ", ":from ",
    ":addresses ", ":mime ", ":handle ", ":raw ", ":content ", ":text ", ":percent ", ":over ", ":under ",
    ":lower ", ":upper ", ":length ", ":quotewildcard ", "1", "10K", "0", '"Subject" ', '"From" ', '"Date" ',
    '"received" ', '"hour" ', '"*" ', '"${1}" ', '"${a}" ', '"a@b.example" ', '"INBOX" ', '"\\\\Seen" ',
    '"(a+)+$" ', '"+0100" ', '"x" ', "é", "\x00", "\xff",
]  # fmt: skip
REQUIRE_ALL = "require [" + ", ".join(f'"{c}"' for c in CAPABILITIES) + "];\n"
ENVELOPE = Envelope(mail_from="a@b.example", rcpt_to="me@example.com", alias="me@example.com")
NOW = datetime(2026, 12, 7, tzinfo=UTC)
SCRIPTS = [
    compile_script(
        REQUIRE_ALL
        + """if anyof (header :matches "Subject" "*", address :domain :contains ["From", "To"] "b",
    body :text :contains "x", body :content "" :regex "a+", date :value "ge" "Date" "hour" "09",
    exists "Received", size :over 1K, spamtest :percent :value "gt" :comparator "i;ascii-numeric" "50",
    header :index 1 :last :count "ge" :comparator "i;ascii-numeric" "Received" "2") {
  set :lower "s" "${1}";
  addflag "\\\\Seen ${s}";
  fileinto :create :copy "${s}";
  vacation :days 1 "away";
}
"""
    ),
    compile_script('require "fileinto";\nfileinto "missing";'),
]


@fuzz(scale=0.5)
@given(lines_from(SIEVE_WORDS, max_size=60))
def test_compile_refuses_with_a_line_or_compiles(source: bytes) -> None:
    line = None
    try:
        compile_script(REQUIRE_ALL.encode() + source)
    except SieveError as exc:
        line = exc.line
    if line is not None:  # within the script: the require line, then the source's lines
        assert 1 <= line <= source.count(b"\n") + 2


@fuzz(scale=0.5)
@given(message_bytes, st.sampled_from(SCRIPTS), st.none() | st.floats(-10, 50).map(lambda s: Spam(s, 6.0)))
def test_any_message_is_filtered_without_an_internal_error(raw: bytes, script, spam) -> None:
    outcome = evaluate(script, raw, ENVELOPE, spam=spam, now=NOW, mailbox_exists=lambda name: name == "x")
    assert not (outcome.error or "").startswith("internal error"), outcome.error
    assert outcome.actions
