"""The whole first run in a real browser: Debian's chromium driven by Playwright.

basic-auth gate -> create the admin -> enable TOTP -> add example.test -> add an alias -> generate
its password -> sign in to the mailbox with that password (over IMAP when this version has the
IMAP component, else by unlocking the mailbox keys through the store, as IMAP would).

Screenshots of every step go to ``$SEALMAIL_TEST_OUTPUT/browser-first-run`` (default
``test-output/`` at the repository root).
"""

from __future__ import annotations

import imaplib
import ssl
from pathlib import Path

import pyotp
import pytest
from browserkit import launch, shots_dir

from sealmail import components
from sealmail.services import credentials

from support import ComponentThread
from webkit import ADMIN, BASIC

pytestmark = pytest.mark.slow


@pytest.fixture
def shots() -> Path:
    return shots_dir("browser-first-run")


@pytest.fixture
def imap(web_settings):
    """The IMAP server, when this version of Sealmail has one."""
    if "imap" not in components.available():
        yield None
        return
    running = ComponentThread("imap", web_settings.model_copy(update={"imaps_port": 0, "imap_port": 0}))
    yield running
    running.stop()


def test_first_run_in_chromium(web, imap, web_settings, store, certs, shots) -> None:
    from playwright.sync_api import expect, sync_playwright

    base = f"https://127.0.0.1:{web.ports['web']}"
    step = iter(range(1, 100))

    def shot(page, name: str) -> None:
        page.screenshot(path=str(shots / f"{next(step):02d}-{name}.png"), full_page=True)

    with sync_playwright() as p:
        browser = launch(p)
        try:
            # 1. Without the setup credentials, nothing but the basic-auth challenge (headless chromium
            # cannot show its login prompt, so the screenshot shows the answer it got).
            stranger = browser.new_context(ignore_https_errors=True)
            response = stranger.request.get(f"{base}/admin")
            assert response.status == 401
            challenge = response.headers["www-authenticate"]
            assert challenge.startswith("Basic")
            page = stranger.new_page()
            page.set_content(
                "<h1>What a browser without the setup password gets</h1>"
                f"<pre>HTTP {response.status}\nWWW-Authenticate: {challenge}\n\n{response.text()}</pre>"
            )
            shot(page, "basic-auth-gate")
            stranger.close()

            context = browser.new_context(
                ignore_https_errors=True, http_credentials={"username": BASIC[0], "password": BASIC[1]}
            )
            page = context.new_page()

            # 2. The wizard: create the admin account.
            page.goto(f"{base}/")
            expect(page).to_have_url(f"{base}/setup")
            expect(page.get_by_role("heading", name="Welcome to Sealmail")).to_be_visible()
            page.get_by_label("Your email address").fill(ADMIN[0])
            page.get_by_label("Password", exact=False).first.fill(ADMIN[1])
            page.get_by_label("Password again").fill(ADMIN[1])
            shot(page, "create-admin")
            page.get_by_role("button", name="Create the account").click()
            expect(page).to_have_url(f"{base}/setup/domain")
            shot(page, "first-domain-step")

            # 3. Two-factor authentication, then sign out and in again with it.
            page.get_by_role("link", name="Account").click()
            page.get_by_role("button", name="Enable two-factor authentication").click()
            expect(page.get_by_role("heading", name="Enable two-factor authentication")).to_be_visible()
            secret = page.locator("#totp-secret").inner_text().replace(" ", "")
            shot(page, "totp-qr-code")
            page.get_by_label("Code from the app").fill(pyotp.TOTP(secret).now())
            page.get_by_role("button", name="Turn on").click()
            expect(page.get_by_role("heading", name="Two-factor authentication is on")).to_be_visible()
            assert page.locator("#recovery-codes li").count() == 10
            shot(page, "recovery-codes")
            page.get_by_role("button", name="Sign out").click()
            expect(page).to_have_url(f"{base}/admin/login")
            page.get_by_label("Email address").fill(ADMIN[0])
            page.get_by_label("Password").fill(ADMIN[1])
            page.get_by_role("button", name="Sign in").click()
            expect(page).to_have_url(f"{base}/admin/login/2fa")
            page.get_by_label("The 6-digit code").fill(pyotp.TOTP(secret).now())
            shot(page, "sign-in-second-factor")
            page.get_by_role("button", name="Continue").click()
            expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
            shot(page, "dashboard")

            # 4. Add example.test: the wizard's next step, ending on its DNS records.
            page.goto(f"{base}/setup/domain")
            page.get_by_label("Domain").fill("example.test")
            page.get_by_role("button", name="Add the domain").click()
            expect(page.get_by_role("heading", name="DNS records for example.test")).to_be_visible()
            assert page.locator("table.dns tbody tr").count() >= 13
            shot(page, "dns-records")

            # 5. An alias with a mailbox.
            page.get_by_role("link", name="Add an alias on example.test").click()
            page.get_by_label("Address", exact=True).fill("alice@example.test")
            expect(page.get_by_label("Keep mail in an encrypted mailbox (IMAP, POP3)")).to_be_checked()
            shot(page, "new-alias")
            page.get_by_role("button", name="Create the alias").click()
            expect(page.get_by_role("heading", name="alice@example.test")).to_be_visible()
            shot(page, "alias-created")

            # 6. Generate its password: shown once, with a copy button and the client settings.
            page.get_by_role("button", name="Generate password").click()
            expect(page.get_by_role("heading", name="New password for alice@example.test")).to_be_visible()
            password = page.locator("#new-password").inner_text().strip()
            expect(page.get_by_role("button", name="Copy")).to_be_visible()  # JavaScript adds it
            table = page.locator("table.client-settings").inner_text()
            for cell in ("IMAP", "993", "SMTP", "465", "SSL/TLS", "alice@example.test"):
                assert cell in table
            shot(page, "password-shown-once")
            page.set_viewport_size({"width": 390, "height": 844})  # a phone
            shot(page, "password-on-a-phone")
            context.close()
        finally:
            browser.close()

    # 7. The password opens the mailbox.
    if imap is not None:
        context = ssl.create_default_context(cafile=str(certs.ca_cert))
        with imaplib.IMAP4_SSL("127.0.0.1", imap.ports["imaps"], ssl_context=context) as client:
            client.login("alice@example.test", password)
            assert client.select("INBOX")[0] == "OK"
    else:
        unlocked = credentials.unlock(store, web_settings, "alice@example.test", password)
        assert unlocked.alias.name == "alice"
    assert sorted(p.name for p in shots.iterdir())[0].startswith("01-basic-auth-gate")
