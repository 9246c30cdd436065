"""The self-service area's Filters and vacation room over real HTTPS (issue 22): the forms write one
Sieve script (RFC 5228) that the page reads back, the text view checks and saves with the error's
line, CSRF on every form, UTF-8 everywhere, and a script uploaded from a mail program is not
replaced as the active one without asking."""

from __future__ import annotations

import html
import re

import pytest
from markupsafe import escape

from sealmail.config.models import LogEntry
from sealmail.services import aliases, selfservice, sieverules, sievescripts
from sealmail.sieve import rules as sieve_rules
from sealmail.sieve.compile import compile as compile_script

from selfkit import ADDRESS, make_alias
from webkit import AccountBrowser


def esc(text: str) -> str:
    """As Jinja writes text into a page."""
    return str(escape(text))


SUBJECT = 'Absent "jusqu\'au" 5 \\ janvier ☃'
MESSAGE = "Bonjour,\nje suis en congé.\n${pas une variable}"


@pytest.fixture
def password(store, web_settings) -> str:
    return make_alias(store, web_settings)


@pytest.fixture
def b(web, certs, password):
    browser = AccountBrowser(f"https://127.0.0.1:{web.ports['web']}", certs.ca_cert, None)
    assert browser.sign_in(ADDRESS, password).status_code == 303
    yield browser
    browser.close()


def alias_id(store) -> str:
    return aliases.get_alias(store, ADDRESS).id


def stored(store) -> str:
    script = store.get_sieve_script(alias_id(store), sieverules.SCRIPT)
    assert script is not None
    return script.content


def stored_rules(store) -> sieve_rules.Rules:
    found = sieve_rules.read(stored(store)).rules
    assert found is not None
    return found


VACATION = {
    "enabled": "on",
    "subject": SUBJECT,
    "message": MESSAGE.replace("\n", "\r\n"),
    "days": "5",
    "start": "2026-12-20",
    "end": "2027-01-05",
    "addresses": "moi@exemple.fr\r\nzoé@exemple.fr",
}


def test_the_room_needs_a_sign_in_and_is_in_the_navigation(web, certs, b) -> None:
    anonymous = AccountBrowser(f"https://127.0.0.1:{web.ports['web']}", certs.ca_cert, None)
    try:
        r = anonymous.get("/account/rules")
        assert r.status_code == 303
        assert r.headers["location"] == "/account/login?next=/account/rules"
    finally:
        anonymous.close()
    page = b.get("/account/rules")
    assert page.status_code == 200
    assert 'href="/account/rules" aria-current="page">Filters and vacation' in page.text
    assert "No filters yet." in page.text


def test_rfc5230_the_vacation_form_writes_an_active_script_that_reads_back(b, store) -> None:
    r = b.post("/account/rules/vacation", VACATION)
    assert r.status_code == 303, r.text
    script = store.get_sieve_script(alias_id(store), sieverules.SCRIPT)
    assert script is not None
    assert script.active
    compile_script(script.content)
    v = stored_rules(store).vacation
    assert (v.enabled, v.subject, v.message, v.days) == (True, SUBJECT, MESSAGE, 5)
    assert (v.start.isoformat(), v.end.isoformat()) == ("2026-12-20", "2027-01-05")  # type: ignore[union-attr]
    assert v.addresses == ("moi@exemple.fr", "zoé@exemple.fr")
    page = b.get("/account/rules").text
    assert esc(SUBJECT) in page
    assert "je suis en congé." in page
    assert 'value="2027-01-05"' in page
    assert 'id="hand-edited"' not in page
    # Turning it off keeps what it said, for next time.
    assert b.post("/account/rules/vacation", {**VACATION, "enabled": ""}).status_code == 303
    assert stored_rules(store).vacation.subject == SUBJECT
    assert "vacation :days" not in stored(store)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"days": "31"}, "Vacation.days"),
        ({"days": "many"}, "Days and dates must be numbers"),
        ({"message": ""}, "Vacation: a vacation reply needs a message"),
        ({"end": "2026-12-01"}, "the last day comes before the first"),
        ({"addresses": "not-an-address"}, "Vacation.addresses"),
    ],
)
def test_a_bad_vacation_form_says_why_and_keeps_what_was_typed(b, store, change: dict, error: str) -> None:
    r = b.post("/account/rules/vacation", {**VACATION, **change})
    assert r.status_code == 422
    assert error in html.unescape(re.search(r'id="vacation-error">([^<]*)<', r.text).group(1))
    assert esc(SUBJECT) in r.text  # what was typed is still there
    assert store.get_sieve_script(alias_id(store), sieverules.SCRIPT) is None  # nothing stored


def test_rfc3894_forwarding_form(b, store) -> None:
    r = b.post("/account/rules/forwarding", {"enabled": "on", "to": "a@b.example, zoé@exemple.fr", "keep_copy": "on"})
    assert r.status_code == 303, r.text
    assert stored_rules(store).forwarding.to == ("a@b.example", "zoé@exemple.fr")
    assert 'redirect :copy "zoé@exemple.fr";' in stored(store)
    assert b.post("/account/rules/forwarding", {"enabled": "on", "to": "a@b.example"}).status_code == 303
    assert 'redirect "a@b.example";' in stored(store)
    r = b.post("/account/rules/forwarding", {"enabled": "on", "to": ""})
    assert r.status_code == 422
    assert "needs at least one address" in r.text


def _filter(value: str, folder: str = "", action: str = "fileinto") -> dict[str, str]:
    return {"field": "subject", "match": "contains", "value": value, "action": action, "folder": folder}


def test_filters_are_added_reordered_and_removed(b, store) -> None:
    for value, folder in (("facture", "Factures/Électricité"), ("[liste]", "Listes"), ('"cité" \\', "Été")):
        assert b.post("/account/rules/filters", _filter(value, folder)).status_code == 303
    assert [f.value for f in stored_rules(store).filters] == ["facture", "[liste]", '"cité" \\']
    assert 'fileinto :create "Factures/Électricité";' in stored(store)
    assert b.post("/account/rules/filters/2/up").status_code == 303
    assert [f.value for f in stored_rules(store).filters] == ["facture", '"cité" \\', "[liste]"]
    assert b.post("/account/rules/filters/0/down").status_code == 303
    assert [f.value for f in stored_rules(store).filters] == ['"cité" \\', "facture", "[liste]"]
    assert b.post("/account/rules/filters/1/remove").status_code == 303
    assert [f.value for f in stored_rules(store).filters] == ['"cité" \\', "[liste]"]
    assert b.post("/account/rules/filters/0/up").headers["location"] == "/account/rules"  # nothing above the first
    assert b.post("/account/rules/filters/9/remove").headers["location"] == "/account/rules"
    page = b.get("/account/rules").text
    assert esc('"cité" \\') in page
    r = b.post("/account/rules/filters", _filter("x", "a//b"))
    assert r.status_code == 422
    assert "empty level" in r.text
    r = b.post("/account/rules/filters", {**_filter("x", action="mark_read"), "field": "header", "header": "Bad name"})
    assert r.status_code == 422
    assert "header field name" in r.text
    compile_script(stored(store))


def test_rfc5051_a_filter_ignores_case_beyond_ascii_and_an_older_script_still_reads_back(b, store) -> None:
    """The form says the comparison ignores case: the script it writes uses i;unicode-casemap, so
    "ÉTÉ" files a message whose subject says "été". A script the form wrote before (version 1, no
    comparator) still shows as the form, and saving the form again writes the current version."""
    from sievekit import message, run, summary

    assert b.post("/account/rules/filters", _filter("ÉTÉ 2026", "Vacances/Été")).status_code == 303
    text = stored(store)
    assert '"comparator-i;unicode-casemap"' in text
    assert 'header :contains :comparator "i;unicode-casemap" "subject" "ÉTÉ 2026"' in text
    assert summary(run(text, message(Subject="Photos de l'été 2026"))) == ("fileinto:Vacances/Été",)
    assert summary(run(text, message(Subject="Photos de l'ete 2026"))) == ("keep",)
    assert esc("ÉTÉ 2026") in b.get("/account/rules").text

    older = sieve_rules.to_sieve(stored_rules(store), 1)
    assert "comparator" not in older
    sievescripts.save_and_activate(store, alias_id(store), sieverules.SCRIPT, older)
    page = b.get("/account/rules").text
    assert 'id="hand-edited"' not in page
    assert esc("ÉTÉ 2026") in page
    assert b.post("/account/rules/filters", _filter("facture", "Factures")).status_code == 303
    assert f'"version":{sieve_rules.VERSION}' in stored(store)
    assert [f.value for f in stored_rules(store).filters] == ["ÉTÉ 2026", "facture"]


def test_every_form_needs_its_csrf_token(b, store) -> None:
    assert b.post("/account/rules/filters", _filter("x", "X")).status_code == 303
    for path in (
        "/account/rules/vacation",
        "/account/rules/forwarding",
        "/account/rules/filters",
        "/account/rules/filters/0/remove",
        "/account/rules/sieve",
    ):
        assert b.post(path, {**VACATION, "script": "keep;"}, csrf=False).status_code == 403, path
        assert b.client.post(path, data={"csrf": "forged", "script": "keep;"}).status_code == 403, path
    assert [f.value for f in stored_rules(store).filters] == ["x"]


def test_rfc5804_the_text_view_checks_and_saves_with_the_errors_line(b, store) -> None:
    page = b.get("/account/rules/sieve").text
    assert sieve_rules.MARKER in page  # no script yet: the empty rules' script
    broken = 'require "fileinto";\r\n\r\nif header :contains "subject" "café" {\r\n  fileinto "Été"\r\n}\r\n'
    r = b.post("/account/rules/sieve", {"script": broken, "do": "check"})
    assert r.status_code == 422
    assert re.search(r'id="sieve-error">Line 5: ', r.text), r.text
    assert esc('fileinto "Été"') in r.text  # the text is kept as typed
    r = b.post("/account/rules/sieve", {"script": broken, "do": "save"})
    assert r.status_code == 422
    assert "Line 5: " in r.text
    assert store.get_sieve_script(alias_id(store), sieverules.SCRIPT) is None
    fixed = broken.replace('"Été"\r\n', '"Été";\r\n')
    r = b.post("/account/rules/sieve", {"script": fixed, "do": "check"})
    assert r.status_code == 200
    assert 'id="sieve-ok">No errors.' in r.text
    assert store.get_sieve_script(alias_id(store), sieverules.SCRIPT) is None  # check stores nothing
    assert b.post("/account/rules/sieve", {"script": fixed, "do": "save"}).status_code == 303
    assert stored(store) == fixed.replace("\r\n", "\n")
    assert store.active_sieve_script(alias_id(store)).name == sieverules.SCRIPT
    # The form now shows the text only, and saving a form replaces it.
    page = b.get("/account/rules").text
    assert 'id="hand-edited"' in page
    assert esc('fileinto "Été";') in page
    assert b.post("/account/rules/filters", _filter("x", "X")).status_code == 303
    assert 'fileinto "Été"' not in stored(store)
    assert 'id="hand-edited"' not in b.get("/account/rules").text


def test_a_script_from_a_mail_program_stays_active_until_the_user_says(b, store) -> None:
    mine = alias_id(store)
    sievescripts.save_and_activate(store, mine, "from-thunderbird", 'require "fileinto";\nfileinto "Tb";\n')
    page = b.get("/account/rules").text
    assert 'id="other-active"' in page
    assert "from-thunderbird" in page
    r = b.post("/account/rules/vacation", VACATION)
    assert r.status_code == 409
    assert "Nothing has been saved yet." in r.text
    assert store.get_sieve_script(mine, sieverules.SCRIPT) is None
    # The question carries the form's fields.
    assert esc(SUBJECT) in r.text
    assert b.post("/account/rules/vacation", {**VACATION, "activate": "no"}).status_code == 303
    assert store.active_sieve_script(mine).name == "from-thunderbird"
    assert stored_rules(store).vacation.subject == SUBJECT
    assert (
        b.post("/account/rules/forwarding", {"enabled": "on", "to": "a@b.example", "activate": "yes"}).status_code
        == 303
    )
    assert store.active_sieve_script(mine).name == sieverules.SCRIPT
    assert store.get_sieve_script(mine, "from-thunderbird") is not None  # kept, just not active
    assert stored_rules(store).vacation.subject == SUBJECT


def test_the_last_sieve_error_at_delivery_is_shown_until_the_script_changes(b, store) -> None:
    assert b.post("/account/rules/filters", _filter("x", "X")).status_code == 303
    me = selfservice.member(store, alias_id(store))
    store.append_log(
        LogEntry(
            kind="error",
            component="mx",
            status=sieverules.ERROR_STATUS,
            domain=me.alias.domain,
            address=me.address,
            detail="Sieve script 'sealmail', line 3: a test error; the message was kept in INBOX",
        )
    )
    page = b.get("/account/rules").text
    assert 'id="last-sieve-error"' in page
    assert "line 3: a test error" in page
    assert "line 3: a test error" in b.get("/account/rules/sieve").text
    assert b.post("/account/rules/filters/0/remove").status_code == 303
    assert 'id="last-sieve-error"' not in b.get("/account/rules").text
