"""The self-service rules written as Sieve (``sieve.rules``): rules -> text -> compiled -> the same
rules, and each generated script run by the evaluator does what the form said (RFC 5228, RFC 5230,
RFC 5232, RFC 5260, RFC 3894, RFC 5490)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from sealmail.errors import InvalidInput
from sealmail.sieve import rules
from sealmail.sieve.actions import Vacation
from sealmail.sieve.compile import compile as compile_script

from sievekit import ME, NOW, SENDER, message, run, summary

EVERYTHING = {
    "vacation": {
        "enabled": True,
        "subject": 'Out "now" \\ back soon, café ☕',
        "message": 'Back on Monday.\nEn cas d\'urgence : "Zoé" \\ ${not a variable}\n.\nend',
        "days": 10,
        "start": "2026-12-01",
        "end": "2026-12-31",
        "addresses": ["me@other.example", "rémi@universitéxyz.fr"],
    },
    "forwarding": {"enabled": True, "to": ["a@b.example", "zoé@exemple.fr"], "keep_copy": False},
    "filters": [
        {
            "field": "subject",
            "match": "contains",
            "value": '[list] "quoted" \\',
            "action": "fileinto",
            "folder": "Listes/Été",
        },
        {"field": "from", "match": "is", "value": "boss@x.example", "action": "mark_read"},
        {"field": "header", "header": "List-Id", "match": "matches", "value": "*spam*", "action": "discard"},
        {"field": "to", "match": "contains", "value": "Bob", "action": "stop"},
    ],
}


def script_of(data: dict) -> str:
    return rules.to_sieve(rules.validate(data))


# ---- round trip ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "data",
    [
        {},
        EVERYTHING,
        {"vacation": {"enabled": True, "message": "away"}},
        {"vacation": {"enabled": True, "message": "away", "end": "2027-01-02"}},
        {"forwarding": {"enabled": True, "to": ["a@b.example"]}},
        {
            "filters": [
                {"field": "from", "match": "matches", "value": "*@x.example", "action": "fileinto", "folder": "INBOX/X"}
            ]
        },
        {"vacation": {"enabled": False, "message": "kept for later"}, "forwarding": {"to": ["a@b.example"]}},
    ],
)
def test_rules_text_compile_and_read_back_equal(data: dict) -> None:
    given = rules.validate(data)
    text = rules.to_sieve(given)
    compile_script(text)  # RFC 5228 §8: valid Sieve
    assert rules.read(text).rules == given
    assert rules.read(text.replace("\n", "\r\n")).rules == given  # a textarea's line endings


def test_a_script_edited_by_hand_is_text_only() -> None:
    text = script_of(EVERYTHING)
    assert rules.read(text).note == ""
    assert rules.read(text.replace("redirect", "redirect :copy", 1)).rules is None
    assert rules.read('require "fileinto";\nfileinto "x";\n').note == rules.HAND_EDITED
    assert rules.read(text.split("\n", 1)[1]).rules is None  # marker gone
    broken = text.replace(f'"version":{rules.VERSION}', '"version":99', 1)
    assert rules.read(broken).rules is None
    assert rules.read("# sealmail-rules: {not json\n").rules is None
    assert rules.read(None).rules == rules.Rules()  # no script yet: an empty form


def test_rfc5228_2_4_2_strings_are_quoted_and_utf8_stays_as_it_is() -> None:
    assert rules.quote('a "b" \\c') == '"a \\"b\\" \\\\c"'
    text = script_of(EVERYTHING)
    assert "café ☕" in text
    assert 'fileinto :create "Listes/Été";' in text
    compiled = compile_script(text)
    assert "variables" not in compiled.extensions  # "${...}" in the message stays text (RFC 5229 §3)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"vacation": {"enabled": True, "message": " "}}, "needs a message"),
        ({"vacation": {"enabled": True, "message": "x", "days": 31}}, "vacation.days"),
        ({"vacation": {"enabled": True, "message": "x", "days": 0}}, "vacation.days"),
        ({"vacation": {"subject": "two\nlines"}}, "one line"),
        ({"vacation": {"message": "x", "start": "2026-12-10", "end": "2026-12-01"}}, "before the first"),
        ({"vacation": {"addresses": ["not an address"]}}, "vacation.addresses"),
        ({"forwarding": {"enabled": True, "to": []}}, "at least one address"),
        ({"forwarding": {"to": ["a@b.example"] * 2 + ["c@d.example", "e@f.example", "g@h.example"]}}, "forwarding.to"),
        ({"forwarding": {"to": ['"x"@b.example']}}, "forwarding.to"),
        ({"forwarding": {"to": ["a(b)@c.example"]}}, "is not allowed"),
        ({"filters": [{"field": "subject", "value": "x", "action": "fileinto", "folder": "a//b"}]}, "empty level"),
        ({"filters": [{"field": "subject", "value": "x", "action": "fileinto", "folder": ""}]}, "empty"),
        (
            {"filters": [{"field": "header", "header": "Bad Name:", "value": "x", "action": "stop"}]},
            "header field name",
        ),
        ({"filters": [{"field": "subject", "value": "", "action": "stop"}]}, "filters.0.value"),
        ({"filters": [{"field": "body", "value": "x", "action": "stop"}]}, "filters.0.field"),
        ({"filters": [{"field": "subject", "value": "x", "action": "reject"}]}, "filters.0.action"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_bad_rules_are_refused_with_where(data: dict, problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem):
        rules.validate(data)


def test_folder_names_take_the_mailboxs_normal_form() -> None:
    """NFC, INBOX in any case (RFC 9051 §5.1): the name the drain files into."""
    rule = rules.validate(
        {"filters": [{"field": "subject", "value": "x", "action": "fileinto", "folder": "inbox/Cafe\u0301"}]}
    ).filters[0]
    assert rule.folder == "INBOX/Café"


# ---- what the scripts do --------------------------------------------------------------------------------
def _filter(**kw: str) -> str:
    return script_of({"filters": [{"match": "contains", **kw}]})


@pytest.mark.parametrize(
    ("rule", "fields", "expected"),
    [
        ({"field": "subject", "value": "present", "action": "fileinto", "folder": "Été"}, {}, ("fileinto:Été",)),
        ({"field": "subject", "value": "PRESENT", "action": "fileinto", "folder": "Été"}, {}, ("fileinto:Été",)),
        ({"field": "subject", "value": "absent", "action": "fileinto", "folder": "Été"}, {}, ("keep",)),
        ({"field": "from", "value": "Wile E.", "action": "discard"}, {}, ("discard",)),
        ({"field": "from", "match": "is", "value": SENDER, "action": "mark_read"}, {}, ("keep[\\Seen]",)),
        (
            {"field": "from", "match": "matches", "value": "*@desert.example.org", "action": "mark_read"},
            {},
            ("keep[\\Seen]",),
        ),
        ({"field": "from", "match": "is", "value": "Wile E. Coyote", "action": "mark_read"}, {}, ("keep",)),
        (
            {"field": "to", "match": "is", "value": "x@cc.example", "action": "discard"},
            {"Cc": "x@cc.example"},
            ("discard",),
        ),
        (
            {
                "field": "header",
                "header": "List-Id",
                "match": "matches",
                "value": "*announce*",
                "action": "fileinto",
                "folder": "Lists",
            },
            {"List_Id": "<announce.example.org>"},
            ("fileinto:Lists",),
        ),
        (
            {"field": "subject", "match": "is", "value": 'Say "hi" \\ café', "action": "fileinto", "folder": "Q"},
            {"Subject": 'Say "hi" \\ café'},
            ("fileinto:Q",),
        ),
    ],
)
def test_rfc5228_each_filter_does_what_it_says(rule: dict, fields: dict, expected: tuple) -> None:
    assert summary(run(_filter(**rule), message(**fields))) == expected


def test_rfc5490_fileinto_creates_the_folder() -> None:
    outcome = run(
        _filter(field="subject", value="present", action="fileinto", folder="Nouveau/Été"), mailboxes=("INBOX",)
    )
    (action,) = outcome.actions
    assert action.mailbox == "Nouveau/Été"
    assert action.create


def test_rfc5232_mark_read_then_file_keeps_the_flag() -> None:
    text = script_of(
        {
            "filters": [
                {"field": "from", "value": "coyote", "action": "mark_read"},
                {"field": "subject", "value": "present", "action": "fileinto", "folder": "Lus"},
            ]
        }
    )
    assert summary(run(text)) == ("fileinto:Lus[\\Seen]",)


def test_rfc5228_stop_and_discard_end_the_rules_before_forwarding_and_vacation() -> None:
    base = {
        "forwarding": {"enabled": True, "to": ["elsewhere@example.net"], "keep_copy": True},
        "vacation": {"enabled": True, "message": "away"},
    }
    stop = script_of({**base, "filters": [{"field": "subject", "value": "present", "action": "stop"}]})
    assert summary(run(stop)) == ("keep",)
    discard = script_of({**base, "filters": [{"field": "subject", "value": "present", "action": "discard"}]})
    assert summary(run(discard)) == ("discard",)
    neither = script_of({**base, "filters": [{"field": "subject", "value": "nothing", "action": "discard"}]})
    assert summary(run(neither)) == ("keep", "redirect:elsewhere@example.net:copy", "vacation")


@pytest.mark.parametrize(
    ("keep", "expected"),
    [
        (True, ("keep", "redirect:a@b.example:copy", "redirect:zoé@exemple.fr:copy")),
        (False, ("redirect:a@b.example", "redirect:zoé@exemple.fr")),
    ],
)
def test_rfc3894_forwarding_with_or_without_a_copy(keep: bool, expected: tuple) -> None:
    text = script_of({"forwarding": {"enabled": True, "to": ["a@b.example", "zoé@exemple.fr"], "keep_copy": keep}})
    assert summary(run(text)) == expected


def _reply(text: str, raw: bytes | None = None, **kw: object) -> Vacation | None:
    found = [a for a in run(text, raw, **kw).actions if isinstance(a, Vacation)]  # type: ignore[arg-type]
    return found[0] if found else None


def test_rfc5230_vacation_answers_once_per_sender_and_says_what_the_form_said() -> None:
    text = script_of(
        {"vacation": {"enabled": True, "subject": 'Parti "loin" \\ ☀', "message": "Retour lundi.\nZoé", "days": 3}}
    )
    first = _reply(text)
    assert first is not None
    assert (first.recipient, first.days, first.subject, first.reason) == (
        SENDER,
        3,
        'Parti "loin" \\ ☀',
        "Retour lundi.\nZoé",
    )
    # The delivery code remembers ``key`` for ``days``: the same sender gets the same key (answered once),
    # another sender another one.
    again = _reply(text, message(Subject="another one"))
    assert again is not None
    assert again.key == first.key
    other = _reply(text, message(From="Road Runner <rr@desert.example.org>"), mail_from="rr@desert.example.org")
    assert other is not None
    assert other.key != first.key
    default = _reply(script_of({"vacation": {"enabled": True, "message": "away"}}))
    assert default is not None
    assert default.days == 7
    assert default.subject == "Auto: I have a present for you"


@pytest.mark.parametrize(
    "fields",
    [{"List_Id": "<list.example.org>"}, {"Precedence": "bulk"}, {"Auto_Submitted": "auto-generated"}],
)
def test_rfc5230_4_6_vacation_never_answers_lists_or_robots(fields: dict) -> None:
    text = script_of({"vacation": {"enabled": True, "message": "away"}})
    outcome = run(text, message(**fields))
    assert summary(outcome) == ("keep",)
    assert outcome.vacation_skipped


def test_rfc5230_4_5_the_extra_addresses_are_answered_too() -> None:
    text = script_of({"vacation": {"enabled": True, "message": "away", "addresses": ["tjs@example.edu"]}})
    assert _reply(text, message(To="tjs@example.edu")) is not None
    assert _reply(text, message(To="someone@else.example")) is None
    assert _reply(script_of({"vacation": {"enabled": True, "message": "away"}}), message(To="tjs@example.edu")) is None
    assert ME


@pytest.mark.parametrize(
    ("start", "end", "answered"),
    [
        ("2026-12-07", "2026-12-07", True),  # the first and last day are inclusive
        ("2026-12-01", None, True),
        (None, "2026-12-06", False),
        ("2026-12-08", "2026-12-31", False),
        (None, "2026-12-07", True),
    ],
)
def test_rfc5260_vacation_dates(start: str | None, end: str | None, answered: bool) -> None:
    text = script_of({"vacation": {"enabled": True, "message": "away", "start": start, "end": end}})
    assert (_reply(text) is not None) is answered


def test_rfc5260_the_day_is_the_servers_zone() -> None:
    """23:30 on the 6th at +0100 is the 6th here; the 7th in UTC+2 would not be asked for."""
    text = script_of({"vacation": {"enabled": True, "message": "away", "start": "2026-12-07"}})
    late = datetime(2026, 12, 6, 23, 30, tzinfo=timezone(timedelta(hours=1)))
    assert _reply(text, now=late) is None
    assert _reply(text, now=NOW) is not None


# ---- i;unicode-casemap (RFC 5051) -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("rule", "fields", "expected"),
    [
        ({"field": "subject", "value": "ÉTÉ", "action": "fileinto", "folder": "Été"}, {"Subject": "Notre été"}, True),
        ({"field": "subject", "value": "été", "action": "fileinto", "folder": "Été"}, {"Subject": "NOTRE ÉTÉ"}, True),
        ({"field": "subject", "value": "été", "action": "fileinto", "folder": "Été"}, {"Subject": "Notre ete"}, False),
        (
            {"field": "from", "match": "is", "value": "ZOÉ@EXEMPLE.FR", "action": "fileinto", "folder": "Zoé"},
            {"From": "Zoé <zoé@exemple.fr>"},
            True,
        ),
        (
            {"field": "to", "match": "matches", "value": "*@UNIVERSITÉXYZ.FR", "action": "fileinto", "folder": "U"},
            {"To": "rémi@universitéxyz.fr"},
            True,
        ),
        (
            {"field": "header", "header": "X-Liste", "value": "ΣΥΝΈΔΡΙΟ", "action": "fileinto", "folder": "G"},
            {"X_Liste": "Το συνέδριο"},
            True,
        ),
        ({"field": "subject", "value": "STRASSE", "action": "fileinto", "folder": "S"}, {"Subject": "Straße"}, False),
    ],
)
def test_rfc5051_filters_ignore_case_beyond_ascii(rule: dict, fields: dict, expected: bool) -> None:
    """The form promises a comparison that ignores case: the script says i;unicode-casemap (and
    requires it, RFC 5228 §2.7.3), so "ÉTÉ" finds "été" and Greek capitals their small letters.
    RFC 5051 keeps ß as it is: "STRASSE" does not find "Straße"."""
    text = _filter(**rule)
    assert 'require ["fileinto", "mailbox", "comparator-i;unicode-casemap"];' in text
    assert ':comparator "i;unicode-casemap"' in text
    assert summary(run(text, message(**fields))) == ((f"fileinto:{rule['folder']}",) if expected else ("keep",))


# What the previous version of the form wrote (version 1: the default comparator, A-Z only), saved
# by users before this one: it must still read back as its rules and run as it did.
VERSION_1 = (
    '# sealmail-rules: {"version":1,"vacation":{"enabled":false,"subject":"","message":"","days":7,"start":null,'
    '"end":null,"addresses":[]},"forwarding":{"enabled":true,"to":["a@b.example"],"keep_copy":true},"filters":'
    '[{"field":"subject","header":"","match":"contains","value":"\\u00c9t\\u00e9","action":"fileinto",'
    '"folder":"Vacances"},{"field":"from","header":"","match":"is","value":"zo\\u00e9@exemple.fr","action":'
    '"mark_read","folder":""}]}\n'
    "# Written by the account page's Filters and vacation form. Edit it there, or edit this text:\n"
    "# the form then shows the text only, and saving the form would replace it.\n"
    'require ["fileinto", "mailbox", "imap4flags", "copy"];\n'
    "# filter 1\n"
    'if header :contains "subject" "Été" {\n'
    '    fileinto :create "Vacances";\n'
    "}\n"
    "# filter 2\n"
    'if address :all :is "from" "zoé@exemple.fr" {\n'
    '    addflag "\\\\Seen";\n'
    "}\n"
    "# forwarding\n"
    'redirect :copy "a@b.example";\n'
)


def test_a_script_the_previous_form_wrote_still_reads_back_and_runs_as_before() -> None:
    found = rules.read(VERSION_1)
    assert found.note == ""
    assert found.rules is not None
    assert [f.value for f in found.rules.filters] == ["Été", "zoé@exemple.fr"]
    assert found.rules.forwarding.to == ("a@b.example",)
    assert rules.read(VERSION_1.replace("\n", "\r\n")).rules == found.rules
    assert rules.read(VERSION_1.replace("Vacances", "Autre", 1)).rules is None  # edited by hand: text only
    # Until it is saved again it compares as it always did (A-Z only) ...
    assert summary(run(VERSION_1, message(Subject="Notre Été"))) == ("fileinto:Vacances", "redirect:a@b.example:copy")
    assert summary(run(VERSION_1, message(Subject="NOTRE ÉTÉ"))) == ("keep", "redirect:a@b.example:copy")
    # ... and saving it writes the current version, which ignores case beyond A-Z.
    again = rules.to_sieve(found.rules)
    assert f'"version":{rules.VERSION}' in again
    assert rules.read(again).rules == found.rules
    assert summary(run(again, message(Subject="NOTRE ÉTÉ"))) == ("fileinto:Vacances", "redirect:a@b.example:copy")
