"""RFC 5229 variables: its examples, checked through the mailbox a script files into."""

from __future__ import annotations

import pytest

from sievekit import message, run, summary

ALL = ("INBOX", "Partners", "filter")


def filed(script: str, raw: bytes | None = None) -> tuple[str, ...]:
    return summary(run('require ["variables", "fileinto", "mailbox"];\n' + script, raw, mailboxes=ALL))


MODIFIERS = [
    # RFC 5229 §4.1's table, as written there
    ('set "b" "${a}";', "juMBlEd lETteRS"),
    ('set :length "b" "${a}";', "15"),
    ('set :lower "b" "${a}";', "jumbled letters"),
    ('set :upperfirst "b" "${a}";', "JuMBlEd lETteRS"),
    ('set :upperfirst :lower "b" "${a}";', "Jumbled letters"),
    ('set :quotewildcard "b" "Rock*";', "Rock\\*"),
]


@pytest.mark.parametrize(("command", "value"), MODIFIERS, ids=[m[0] for m in MODIFIERS])
def test_rfc5229_4_1_set_modifiers(command: str, value: str) -> None:
    """RFC 5229 §4.1: modifiers apply by precedence, whatever order they are written in."""
    out = filed(f'set "a" "juMBlEd lETteRS";\n{command}\nfileinto :create "${{b}}";')
    assert out == (f"fileinto:{value}",)


REFERENCES = [
    # RFC 5229 §3's examples, with "company" set to "ACME"
    ("&%${}!", "&%${}!"),  # the empty string is no identifier
    ("${doh!}", "${doh!}"),  # "!" is no identifier character
    ("${company}", "ACME"),
    ("${BAD${Company}", "${BADACME"),
    ("${President, ${Company} Inc.}", "${President, ACME Inc.}"),
    ("${unset}x", "x"),  # an unknown variable is the empty string
    ("${ns.name}", "${ns.name}"),  # no namespaces here: left as written
]


@pytest.mark.parametrize(("text", "value"), REFERENCES, ids=[r[0] for r in REFERENCES])
def test_rfc5229_3_references(text: str, value: str) -> None:
    out = filed(f'set "company" "ACME";\nfileinto :create "{text}";')
    assert out == (f"fileinto:{value}",)


def test_rfc5229_3_names_are_case_insensitive_and_text_strings_expand() -> None:
    """RFC 5229 §3: "${HONORIFIC}" reads "honorific"; a multi-line string expands too."""
    script = """require ["variables", "reject"];
set "honorific" "Mr";
set "first_name" "Wile";
set "last_name" "Coyote";
set "vacation" text:
Dear ${HONORIFIC} ${last_name},
I'm out, please leave a message after the meep.
.
;
reject "${vacation}";
"""
    assert summary(run(script)) == ("reject:Dear Mr Coyote,\nI'm out, please leave a message after the meep.\n",)


MATCH_EXAMPLE = """if header :matches "List-ID" "*<*@*" {
    fileinto :create "INBOX.lists.${2}"; stop;
}
# Subject: [acme-users] [fwd] version 1.0 is out
if header :matches "Subject" "[*] *" {
    fileinto :create "INBOX.lists.${1}"; stop;
}
# To: coyote@ACME.Example.COM
if address :matches ["To", "From"] ["coyote@**.com", "wile@**.com"] {
    fileinto :create "INBOX.business.${2}|${1}|${0}"; stop;
} else {
    fileinto :create "none|${1}";
}
if anyof (true, address :domain :matches "To" "*.com") {
    fileinto :create "still none|${1}";
    stop;
}
"""


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(
            message(List_ID="ACME users <acme-users@lists.example.com>"),
            "INBOX.lists.acme-users",
            id="List-ID: ${2} is between < and @",
        ),
        pytest.param(
            message(Subject="[acme-users] [fwd] version 1.0 is out"),
            "INBOX.lists.acme-users",
            id="Subject: * matches as little as it can",
        ),
        pytest.param(
            message(To="coyote@ACME.Example.COM", From="x@y.example"),
            "INBOX.business.ACME.Example||coyote@ACME.Example.COM",
            id="address: ${1} empty, ${2} the domain, ${0} the address",
        ),
    ],
)
def test_rfc5229_3_2_match_variables(raw: bytes, expected: str) -> None:
    assert filed(MATCH_EXAMPLE, raw) == (f"fileinto:{expected}",)


def test_rfc5229_3_2_a_failed_match_sets_nothing() -> None:
    """RFC 5229 §3.2: no match variables are set when no :matches succeeded; anyof stops at true."""
    out = filed(MATCH_EXAMPLE, message(To="road@runner.example", From="x@y.example"))
    assert out == ("fileinto:none|", "fileinto:still none|")


def test_rfc5229_5_string_test() -> None:
    """RFC 5229 §5: the string test, and an empty source does not count for :count."""
    script = """require ["variables", "relational", "comparator-i;ascii-numeric"];
set "state" "${state} pending";
if string :matches " ${state} " "* pending *" { set "ok" "yes"; }
if string :count "eq" :comparator "i;ascii-numeric" ["${ok}", "", "${nothing}"] "1" { discard; }
"""
    assert summary(run(script)) == ("discard",)


def test_rfc5229_6_values_are_cut_at_the_limit() -> None:
    """RFC 5229 §6: long values may be cut; at least 4000 octets are kept."""
    script = """require ["variables", "relational", "comparator-i;ascii-numeric"];
set "a" "${b}";
set "x" "0123456789";
set "x" "${x}${x}${x}${x}${x}${x}${x}${x}${x}${x}";
set "x" "${x}${x}${x}${x}${x}${x}${x}${x}${x}${x}";
set "x" "${x}${x}${x}${x}${x}${x}${x}${x}${x}${x}";
set :length "n" "${x}";
if string :value "eq" :comparator "i;ascii-numeric" "${n}" "4000" { discard; }
"""
    assert summary(run(script)) == ("discard",)


def test_regex_sets_match_variables() -> None:
    """draft-ietf-sieve-regex: ${0} the match, ${n} the groups (run on RE2)."""
    script = """require ["variables", "regex", "fileinto", "mailbox"];
if header :regex "Subject" "^I have (a|an) ([a-z]+)" { fileinto :create "${2}-${1}"; }
"""
    assert summary(run(script, mailboxes=("INBOX",))) == ("fileinto:present-a",)
