"""A user's self-service area in a real browser: Debian's chromium driven by Playwright (issue 22).

Mail APPENDed over IMAP -> sign in at /account with the EAI address -> change the password ->
download the export (mbox) and read it with Python's ``mailbox`` -> over IMAP the old password is
refused and the new one reads the same mail.

Screenshots of every step go to ``$SEALMAIL_TEST_OUTPUT/browser-self-service`` (default
``test-output/`` at the repository root).
"""

from __future__ import annotations

import imaplib
from pathlib import Path

import pytest
from browserkit import launch, shots_dir

from selfkit import ADDRESS, append_all, imap_client, make_alias, mbox_messages, messages, read_zip
from support import ComponentThread

pytestmark = pytest.mark.slow

NEW_PASSWORD = "correct horse, new stable"


@pytest.fixture
def shots() -> Path:
    return shots_dir("browser-self-service")


@pytest.fixture
def imap(web_settings):
    running = ComponentThread("imap", web_settings.model_copy(update={"imaps_port": 0, "imap_port": 0}))
    yield running
    running.stop()


def test_a_user_changes_the_password_and_takes_the_mail_in_chromium(
    web, imap, web_settings, store, certs, shots, tmp_path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    password = make_alias(store, web_settings)
    client = imap_client(imap.ports["imaps"], certs.ca_cert, ADDRESS, password)
    sent = messages()
    append_all(client, sent)
    client.logout()
    base = f"https://127.0.0.1:{web.ports['web']}"
    step = iter(range(1, 100))

    def shot(page, name: str) -> None:
        page.screenshot(path=str(shots / f"{next(step):02d}-{name}.png"), full_page=True)

    with sync_playwright() as p:
        browser = launch(p)
        try:
            context = browser.new_context(ignore_https_errors=True, accept_downloads=True)
            page = context.new_page()

            # 1. Sign in with the address (an EAI local part at an IDN domain) and its password.
            page.goto(f"{base}/account/")
            expect(page).to_have_url(f"{base}/account/login?next=/account/")
            expect(page.get_by_role("heading", name="Sign in to your mailbox")).to_be_visible()
            page.get_by_label("Email address").fill(ADDRESS)
            page.get_by_label("Password").fill(password)
            shot(page, "sign-in")
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("heading", name=ADDRESS)).to_be_visible()
            expect(page.locator("#usage-text")).to_contain_text("used")
            shot(page, "overview")

            # 2. Change the password.
            page.get_by_role("link", name="Password and security").first.click()
            page.get_by_label("Current password").fill(password)
            page.get_by_label("New password", exact=False).first.fill(NEW_PASSWORD)
            page.get_by_label("New password again").fill(NEW_PASSWORD)
            shot(page, "change-password")
            page.get_by_role("button", name="Change password").click()
            expect(page.get_by_role("status").first).to_contain_text("Password changed")
            shot(page, "password-changed")

            # 3. Take the mail: the export, as mbox files in a zip.
            page.get_by_role("link", name="Take your mail").click()
            expect(page.get_by_role("heading", name="Take your mail with you")).to_be_visible()
            expect(page.locator("#backup-state")).to_contain_text("This server has no backup it can give you.")
            page.get_by_label("mbox (one file per folder)").check()
            page.get_by_label("Your password").fill(NEW_PASSWORD)
            shot(page, "export")
            with page.expect_download() as download:
                page.get_by_role("button", name="Download the export").click()
            saved = tmp_path / download.value.suggested_filename
            download.value.save_as(saved)
            assert saved.name.startswith(ADDRESS)
            assert saved.name.endswith("-mbox.zip")

            page.get_by_role("button", name="Sign out").click()
            expect(page).to_have_url(f"{base}/account/login")
            page.set_viewport_size({"width": 390, "height": 844})  # a phone
            shot(page, "signed-out-on-a-phone")
            context.close()
        finally:
            browser.close()

    archive = read_zip(saved.read_bytes())
    inbox = [m for m, _ in mbox_messages(archive, "INBOX.mbox", tmp_path)]
    assert inbox == [raw for folder, raw, _ in sent if folder == "INBOX"]
    assert [m for m, _ in mbox_messages(archive, "Archive/2026.mbox", tmp_path)] == [sent[2][1]]

    # 4. Over IMAP: the old password is refused, the new one reads the same mail.
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        imap_client(imap.ports["imaps"], certs.ca_cert, ADDRESS, password)
    client = imap_client(imap.ports["imaps"], certs.ca_cert, ADDRESS, NEW_PASSWORD)
    client.select("INBOX")
    _, data = client.fetch("1", "(BODY.PEEK[])")
    assert data[0][1] == sent[0][1]
    client.logout()
    assert sorted(p.name for p in shots.iterdir())[0].startswith("01-sign-in")
