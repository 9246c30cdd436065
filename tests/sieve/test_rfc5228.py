"""RFC 5228, the Sieve base language: its examples as a table, run on one message each.

Each row is (script, message, actions): the id names the section the example comes from.
"""

from __future__ import annotations

import pytest

from sealmail.sieve.compile import compile as compile_script
from sealmail.sieve.errors import SieveError

from sievekit import SENDER, message, run, summary

FRIEND = "friend@elsewhere.example"
BOSS = message(From="boss@example.com", To="me@example.com")

EXTENDED_EXAMPLE = """#
# Example Sieve Filter
# Declare any optional features or extension used by the script
#
require ["fileinto"];

#
# Handle messages from known mailing lists
# Move messages from IETF filter discussion list to filter mailbox
#
if header :is "Sender" "owner-ietf-mta-filters@imc.org"
        {
        fileinto "filter";  # move to "filter" mailbox
        }
#
# Keep all messages to or from people in my company
#
elsif address :DOMAIN :is ["From", "To"] "example.com"
        {
        keep;               # keep in "In" mailbox
        }

#
# Try and catch unsolicited email.  If a message is not to me,
# or it contains a subject known to be spam, file it away.
#
elsif anyof (NOT address :all :contains
               ["To", "Cc", "Bcc"] "me@example.com",
             header :matches "subject"
               ["*make*money*fast*", "*university*dipl*mas*"])
        {
        fileinto "spam";   # move to "spam" mailbox
        }
else
        {
        # Move all other (non-company) mail to "personal"
        # mailbox.
        fileinto "personal";
        }
"""

IF_ELSIF = """if header :contains ["From"] ["coyote"] {
   redirect "acm@example.com";
} elsif header :contains "Subject" "$$$" {
   redirect "postmaster@example.com";
} else {
   redirect "field@example.com";
}
"""

CASES = [
    # §2.7.1 match types; §2.7.3 the default comparator folds ASCII case
    pytest.param(
        'if header :is "Subject" "i HAVE a present for YOU" { discard; }',
        None,
        ("discard",),
        id="§2.7.1 :is, i;ascii-casemap by default",
    ),
    pytest.param(
        'if header :is :comparator "i;octet" "Subject" "i HAVE a present for YOU" { discard; }',
        None,
        ("keep",),
        id="§2.7.3 i;octet compares octets",
    ),
    pytest.param('if header :contains "Subject" "PRESENT" { discard; }', None, ("discard",), id="§2.7.1 :contains"),
    pytest.param(
        'if header :matches "Subject" "I have ? present*" { discard; }',
        None,
        ("discard",),
        id="§2.7.1 :matches ? and *",
    ),
    pytest.param(
        'if header :matches "Subject" "I have ? present" { discard; }',
        None,
        ("keep",),
        id="§2.7.1 :matches is anchored",
    ),
    pytest.param(
        'if header :matches "Subject" "\\\\*" { discard; }',
        message(Subject="*"),
        ("discard",),
        id="§2.7.1 \\\\* matches a literal star",
    ),
    pytest.param(
        'if header :matches "Subject" "\\\\*" { discard; }', None, ("keep",), id="§2.7.1 \\\\* matches only a star"
    ),
    pytest.param(
        'if header :is "X-Caffeine" "" { discard; }', None, ("keep",), id="§5.7 :is '' is false for an absent field"
    ),
    pytest.param(
        'if header :contains "X-Caffeine" "" { discard; }',
        message(X_Caffeine="high"),
        ("discard",),
        id="§5.7 :contains '' is true for a present field",
    ),
    pytest.param(
        'if header :is "Subject" "café" { discard; }',
        message(Subject="=?utf-8?q?caf=C3=A9?="),
        ("discard",),
        id="§2.7.4 header values are RFC 2047 decoded",
    ),
    # §3 control commands
    pytest.param(IF_ELSIF, None, ("redirect:acm@example.com",), id="§3.1 if"),
    pytest.param(
        IF_ELSIF,
        message(From="boss@example.com", Subject="win $$$"),
        ("redirect:postmaster@example.com",),
        id="§3.1 elsif",
    ),
    pytest.param(IF_ELSIF, BOSS, ("redirect:field@example.com",), id="§3.1 else"),
    pytest.param("discard; stop; keep;", None, ("discard",), id="§3.3 stop ends the script"),
    pytest.param("stop; discard;", None, ("keep",), id="§3.3 stop keeps the implicit keep"),
    # §4 actions
    pytest.param(
        'require "fileinto";\nif header :contains ["from"] "coyote" {\n   fileinto "INBOX.harassment";\n}',
        None,
        ("error@3", "keep"),
        id="§4.1 fileinto to a missing mailbox is a run-time error",
    ),
    pytest.param(
        'require "fileinto";\nif header :contains ["from"] "coyote" {\n   fileinto "filter";\n}',
        None,
        ("fileinto:filter",),
        id="§4.1 fileinto cancels the implicit keep",
    ),
    pytest.param('redirect "bart@example.com";', None, ("redirect:bart@example.com",), id="§4.2 redirect"),
    pytest.param("if size :under 1M { keep; } else { discard; }", None, ("keep",), id="§4.3 keep"),
    pytest.param(
        'if header :contains ["from"] ["idiot@example.com"] { discard; }',
        message(From="idiot@example.com"),
        ("discard",),
        id="§4.4 discard",
    ),
    pytest.param("discard; keep;", None, ("keep",), id="§4.4 discard then keep: kept"),
    # §2.10.3: one copy per mailbox, one redirect per address
    pytest.param(
        'require "fileinto"; fileinto "filter"; fileinto "filter"; keep; fileinto "INBOX";',
        None,
        ("fileinto:filter", "keep"),
        id="§2.10.3 stored once per mailbox",
    ),
    pytest.param(
        'redirect "a@example.net"; redirect "A@example.net";',
        None,
        ("redirect:a@example.net",),
        id="§2.10.3 redirected once per address",
    ),
    # §5 tests
    pytest.param(
        'if address :is :all "from" "tim@example.com" { discard; }',
        message(From="Tim <tim@example.com>"),
        ("discard",),
        id="§5.1 address :all",
    ),
    pytest.param(
        'if address :localpart "from" "coyote" { discard; }', None, ("discard",), id="§5.1 address :localpart"
    ),
    pytest.param(
        'if address :domain :is "from" "DESERT.example.ORG" { discard; }', None, ("discard",), id="§5.1 address :domain"
    ),
    pytest.param(
        'if address :all :is "to" "wile@example.com" { discard; }',
        message(To="friends: wile@example.com, me@example.com;"),
        ("discard",),
        id="§5.1 address in a group",
    ),
    pytest.param(
        'if address :localpart :is "to" "friends" { discard; }',
        message(To="friends: wile@example.com;"),
        ("keep",),
        id="§5.1 a group name is no address",
    ),
    pytest.param(
        'if allof (header :contains "From" "Coyote", header :contains "To" "Me") { discard; }',
        None,
        ("discard",),
        id="§5.2 allof",
    ),
    pytest.param(
        'if allof (header :contains "From" "Coyote", false) { discard; }', None, ("keep",), id="§5.2 allof false"
    ),
    pytest.param('if anyof (false, header :contains "To" "Me") { discard; }', None, ("discard",), id="§5.3 anyof"),
    pytest.param(
        'require "envelope";\nif envelope :all :is "from" "tim@example.com" { discard; }',
        None,
        ("keep",),
        id="§5.4 envelope from",
    ),
    pytest.param(
        f'require "envelope";\nif envelope :all :is "from" "{SENDER}" {{ discard; }}',
        None,
        ("discard",),
        id="§5.4 envelope from matches",
    ),
    pytest.param(
        'require "envelope";\nif envelope :domain :is "to" "example.com" { discard; }',
        None,
        ("discard",),
        id="§5.4 envelope to :domain",
    ),
    pytest.param(
        'require "envelope";\nif envelope :is "from" "" { discard; }',
        "null",
        ("discard",),
        id="§5.4 the null reverse-path is the empty string",
    ),
    pytest.param('if not exists ["From","Date"] { discard; }', None, ("keep",), id="§5.5 exists"),
    pytest.param(
        'if not exists ["From","Date"] { discard; }', message(Date=""), ("discard",), id="§5.5 exists needs every field"
    ),
    pytest.param("if false { discard; }", None, ("keep",), id="§5.6 false"),
    pytest.param(
        'if header :contains ["From", "To"] "me@example.com" { discard; }',
        None,
        ("discard",),
        id="§5.7 header, several fields",
    ),
    pytest.param('if not header :contains "Subject" "present" { discard; }', None, ("keep",), id="§5.8 not"),
    pytest.param("if size :over 100K { discard; }", message("x" * 102_500), ("discard",), id="§5.9 size :over 100K"),
    pytest.param("if size :over 100K { discard; }", None, ("keep",), id="§5.9 size not over"),
    pytest.param("if true { discard; }", None, ("discard",), id="§5.10 true"),
    # §9: the extended example
    pytest.param(
        EXTENDED_EXAMPLE,
        message(Sender="owner-ietf-mta-filters@imc.org"),
        ("fileinto:filter",),
        id="§9 extended example: list",
    ),
    pytest.param(EXTENDED_EXAMPLE, BOSS, ("keep",), id="§9 extended example: company"),
    pytest.param(
        EXTENDED_EXAMPLE,
        message(To="someone@else.example", Subject="hi"),
        ("fileinto:spam",),
        id="§9 extended example: not to me",
    ),
    pytest.param(
        EXTENDED_EXAMPLE,
        message(To=FRIEND, Cc="me@example.com", Subject="MAKE big MONEY FAST"),
        ("fileinto:spam",),
        id="§9 extended example: spam subject",
    ),
    pytest.param(
        EXTENDED_EXAMPLE,
        message(To=FRIEND, Cc="me@example.com"),
        ("fileinto:personal",),
        id="§9 extended example: personal",
    ),
]


@pytest.mark.parametrize(("script", "raw", "expected"), CASES)
def test_rfc5228_examples(script: str, raw: bytes | str | None, expected: tuple[str, ...]) -> None:
    if raw == "null":
        assert summary(run(script, mail_from="")) == expected
    else:
        assert summary(run(script, raw if isinstance(raw, bytes) else None)) == expected


def test_multiline_string_is_dot_unstuffed() -> None:
    """RFC 5228 §2.4.2: text: ... a line starting with ".." stands for one starting with "."."""
    outcome = run('require "reject";\nreject text:\nline one\n..dot line\n.\n;\n')
    assert [a.reason for a in outcome.actions] == ["line one\n.dot line\n"]  # type: ignore[union-attr]


def test_quoted_string_escapes() -> None:
    """RFC 5228 §2.4.2: \\" is a quote and \\\\ a backslash inside a quoted string."""
    outcome = run('require "reject"; reject "say \\"hi\\" \\\\ bye";')
    assert summary(outcome) == ('reject:say "hi" \\ bye',)


ENCODED = [
    # RFC 5228 §2.4.2.4's examples
    ("$${hex:40}", "$@"),
    ("${hex: 40 }", "@"),
    ("${HEX: 40}", "@"),
    ("${hex:40", "${hex:40"),
    ("${hex:400}", "${hex:400}"),
    ("${hex:4${hex:30}}", "${hex:40}"),
    ("${unicode:40}", "@"),
    ("${ unicode:40}", "${ unicode:40}"),
    ("${UNICODE:40}", "@"),
    ("${UnICoDE:0000040}", "@"),
    ("${Unicode:40}", "@"),
    ("${Unicode:Cool}", "${Unicode:Cool}"),
    ("${hex:e2 98 ba} ${unicode: 263a 263A }", "☺ ☺☺"),
]


@pytest.mark.parametrize(("text", "value"), ENCODED, ids=[e[0] for e in ENCODED])
def test_rfc5228_2_4_2_4_encoded_characters(text: str, value: str) -> None:
    assert summary(run(f'require ["encoded-character", "reject"];\nreject "{text}";')) == (f"reject:{value}",)


def test_rfc5228_2_4_2_4_only_when_required() -> None:
    assert summary(run('require "reject";\nreject "${hex:40}";')) == ("reject:${hex:40}",)


@pytest.mark.parametrize("text", ["${unicode:200000}", "${Unicode:DF01}", "${hex:ff fe}"])
def test_rfc5228_2_4_2_4_an_encoding_of_no_character_is_an_error(text: str) -> None:
    with pytest.raises(SieveError, match="not a character") as caught:
        compile_script(f'require ["encoded-character", "fileinto"];\nif true {{\n  fileinto "{text}";\n}}')
    assert caught.value.line == 3
