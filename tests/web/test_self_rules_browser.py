"""The Filters and vacation room in a real browser: Debian's chromium driven by Playwright (issue 22).

Sign in at /account with the EAI address -> Filters and vacation -> fill in the vacation reply
(UTF-8, quotes, a backslash, dates) -> save -> the stored Sieve script is read back and compiles,
and the page shows the form again as it was filled in.

Screenshots go to ``$SEALMAIL_TEST_OUTPUT/browser-self-rules`` (default ``test-output/``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from browserkit import launch, shots_dir

from sealmail.services import aliases, sieverules
from sealmail.sieve import rules as sieve_rules
from sealmail.sieve.compile import compile as compile_script

from selfkit import ADDRESS, make_alias

pytestmark = pytest.mark.slow

SUBJECT = 'Absent "jusqu\'au" 5 janvier \\ ☃'
MESSAGE = "Bonjour,\nje suis en congé jusqu'au 5 janvier."


@pytest.fixture
def shots() -> Path:
    return shots_dir("browser-self-rules")


def test_rfc5230_a_user_sets_a_vacation_reply_in_chromium(web, web_settings, store, shots) -> None:
    from playwright.sync_api import expect, sync_playwright

    password = make_alias(store, web_settings)
    base = f"https://127.0.0.1:{web.ports['web']}"
    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_context(ignore_https_errors=True).new_page()
            page.goto(f"{base}/account/rules")
            page.get_by_label("Email address").fill(ADDRESS)
            page.get_by_label("Password").fill(password)
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("heading", name="Filters and vacation", exact=True)).to_be_visible()
            page.screenshot(path=str(shots / "01-rules.png"), full_page=True)

            page.get_by_label("Send a vacation reply").check()
            page.get_by_label("Subject", exact=False).first.fill(SUBJECT)
            page.get_by_label("Message", exact=True).fill(MESSAGE)
            page.get_by_label("Answer each sender again after (days, 1 to 30)").fill("5")
            page.get_by_label("First day").fill("2026-12-20")
            page.get_by_label("Last day").fill("2027-01-05")
            page.screenshot(path=str(shots / "02-vacation-filled.png"), full_page=True)
            page.get_by_role("button", name="Save the vacation reply").click()
            expect(page.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
            expect(page.get_by_label("Subject", exact=False).first).to_have_value(SUBJECT)
            expect(page.get_by_label("Send a vacation reply")).to_be_checked()
            page.screenshot(path=str(shots / "03-saved.png"), full_page=True)

            page.get_by_role("link", name="edit it as Sieve").click()
            expect(page.get_by_label("Script")).to_contain_text("vacation :days 5")
        finally:
            browser.close()

    script = store.get_sieve_script(aliases.get_alias(store, ADDRESS).id, sieverules.SCRIPT)
    assert script is not None
    assert script.active
    compile_script(script.content)
    rules = sieve_rules.read(script.content).rules
    assert rules is not None
    v = rules.vacation
    assert (v.enabled, v.subject, v.message, v.days) == (True, SUBJECT, MESSAGE, 5)
    assert (str(v.start), str(v.end)) == ("2026-12-20", "2027-01-05")
