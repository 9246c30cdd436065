"""Debian's Roundcube 1.6 as a user drives it (chromium through Playwright) against a `sealmail dev` tree.

Issue 22: Roundcube's managesieve plugin lists, uploads, activates and deletes Sieve scripts on our
ManageSieve server (STARTTLS, SASL PLAIN), and the filter it writes files the next message the MX takes.
Issue 20: a whole Roundcube session (sign in, folders, sorting and threading on the server, reading,
flagging, moving, searching, signing out) in which our IMAP server answers no command NO or BAD, as
seen by a relay between Roundcube and the IMAP port (``roundcubekit.ImapRecorder``).

Roundcube runs under PHP's built-in server with a config of its own in a temporary directory; it
reaches IMAP (through the relay), ManageSieve and submission over TLS verified against the tree's CA.
Screenshots go to ``$SEALMAIL_TEST_OUTPUT/roundcube`` (default ``test-output/``).
"""

from __future__ import annotations

import contextlib
import imaplib
import json
import smtplib
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from browserkit import launch, shots_dir
from devtree import clean_environ, port_env, start, stop, wait_for_dev_json
from roundcubekit import ImapRecorder, Roundcube, commands, require_roundcube, tagged_failures

from sealmail.imap import mutf7
from sealmail.sieve.compile import compile as compile_script

from managesievekit import Wire

pytestmark = [pytest.mark.slow, pytest.mark.tool("rspamd", "chromium", "php")]

SENDER = "someone@example.org"


@dataclass
class World:
    info: dict
    env: dict[str, str]
    data_dir: Path
    recorder: ImapRecorder
    roundcube: Roundcube

    @property
    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.info["ca_cert"])


@pytest.fixture(scope="module")
def world(sealmail_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One `sealmail dev` tree, the IMAP relay and Roundcube, for the whole module."""
    php = require_roundcube()
    base = tmp_path_factory.mktemp("roundcube")
    data_dir = base / "dev-data"
    env = {**clean_environ(), **port_env()}
    with contextlib.ExitStack() as stack:
        started = time.time() - 1
        proc = start(sealmail_bin, data_dir, env)
        stack.callback(stop, proc)
        info = wait_for_dev_json(proc, data_dir / "dev.json", started)
        ca_cert = Path(info["ca_cert"])
        recorder = ImapRecorder(
            info["ports"]["imaps"], ca_cert.parent / "server.pem", ca_cert.parent / "server.key", ca_cert
        )
        stack.callback(recorder.stop)
        roundcube = Roundcube(
            php,
            base / "webmail",
            imap_port=recorder.port,
            managesieve_port=info["ports"]["managesieve"],
            submission_port=info["ports"]["submission"],
            ca_cert=ca_cert,
        )
        stack.callback(roundcube.stop)
        yield World(info, env, data_dir, recorder, roundcube)


@pytest.fixture
def browser(request: pytest.FixtureRequest) -> Iterator[tuple]:
    """A chromium page and a function that saves a numbered screenshot of it."""
    from playwright.sync_api import expect, sync_playwright

    shots = shots_dir("roundcube", request.node.name)
    # Roundcube answers each click with a request to PHP's one-process server, which asks our servers:
    # on a loaded 2-core machine that takes seconds, so assertions wait as long as actions do.
    expect.set_options(timeout=30_000)
    with sync_playwright() as p:
        chromium = launch(p)
        try:
            page = chromium.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(30_000)
            taken = iter(range(1, 100))
            yield page, lambda name: page.screenshot(path=str(shots / f"{next(taken):02d}-{name}.png"))
        finally:
            chromium.close()
            expect.set_options(timeout=5_000)  # Playwright's default, for the tests that run after


# ---- helpers ---------------------------------------------------------------------------------------


def _sign_in(page, world: World, address: str, password: str) -> None:
    page.goto(world.roundcube.url)
    page.get_by_label("Username").fill(address)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Login").click()
    page.wait_for_url("**_task=mail**")


def _idle(page) -> None:
    """Roundcube ignores a command given while a request of its own is in flight (``rcmail.busy``,
    app.js's ``command()``): a user waits for the spinner to go, and so does the test."""
    page.wait_for_function("() => window.rcmail !== undefined && !window.rcmail.busy")


def _confirmed(page, text: str) -> None:
    """Roundcube's confirmation toast (when it does not come, the assertion shows what the stack
    said instead, an error toast included)."""
    from playwright.sync_api import expect

    expect(page.locator("#messagestack")).to_contain_text(text)


def _deliver(world: World, rcpt: str, messages: list[tuple[str, str, str]]) -> None:
    """(Subject as sent, Message-ID local part, extra header lines) through the tree's MX."""
    when = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    with smtplib.SMTP("127.0.0.1", world.info["ports"]["mx"], timeout=30) as client:
        for n, (subject, mid, extra) in enumerate(messages):
            client.sendmail(
                SENDER,
                [rcpt],
                f"From: Someone <{SENDER}>\r\nTo: {rcpt}\r\nSubject: {subject}\r\n"
                f"Date: {format_datetime(when + timedelta(hours=n))}\r\nMessage-ID: <{mid}@example.org>\r\n{extra}"
                f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe text of {mid}.\r\n".encode(),
            )


def _folder(world: World, address: str, password: str, folder: str, want: int = 1) -> list[tuple[bytes, bytes]]:
    """(FLAGS, header) of each message in ``folder`` (a UTF-8 name), read over IMAP directly, waiting
    until at least ``want`` are there (mail waits sealed until a sign-in drains it, then is filed)."""
    deadline = time.monotonic() + 30
    with imaplib.IMAP4_SSL("127.0.0.1", world.info["ports"]["imaps"], ssl_context=world.tls, timeout=30) as imap:
        imap.login(address, password)
        while True:
            status, _ = imap.select('"' + mutf7.encode(folder) + '"', readonly=True)
            numbers = imap.search(None, "ALL")[1][0].split() if status == "OK" else []
            if len(numbers) >= want or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        out = []
        for number in numbers:
            _, data = imap.fetch(number, "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT MESSAGE-ID)])")
            out.append((data[0][0], data[0][1]))
        return out


def _sieve(world: World) -> Wire:
    """Our own ManageSieve client, signed in as the demo user (STARTTLS, SASL PLAIN)."""
    wire = Wire(socket.create_connection(("127.0.0.1", world.info["ports"]["managesieve"]), timeout=30))
    assert wire.reply().status == "OK"
    wire.starttls(world.tls)
    assert wire.authenticate(world.info["alias"], world.info["password"]).status == "OK"
    return wire


def _scripts(wire: Wire) -> list[str]:
    listed = wire.cmd("LISTSCRIPTS")
    assert listed.status == "OK", listed
    return sorted(line.decode().strip() for line in listed.lines)


def _no_failures(world: World, mark: int) -> list[str]:
    """Every command since ``mark`` was answered OK, and Roundcube logged no error; the command names."""
    lines = world.recorder.since(mark)
    assert lines, "Roundcube reached the IMAP server through the relay"
    assert not world.recorder.opaque, "a connection switched to COMPRESS: the relay could not read it"
    assert tagged_failures(lines) == []
    assert world.roundcube.errors() == []
    return commands(lines)


# ---- issue 22 --------------------------------------------------------------------------------------

FILTER_FOLDER = "Reçus"
FILTER_WORDS = "Quittance n°"


def test_rfc5804_roundcube_managesieve_lists_uploads_activates_and_deletes_a_filter_set(
    world: World, browser: tuple
) -> None:
    """RFC 5804 §2.6-2.10 through Roundcube's managesieve plugin (PUTSCRIPT, SETACTIVE, LISTSCRIPTS,
    GETSCRIPT, DELETESCRIPT), and the filter it wrote run by the MX (RFC 5228 §4.1 fileinto)."""
    from playwright.sync_api import expect

    page, shot = browser
    mark = world.recorder.mark()
    _sign_in(page, world, world.info["alias"], world.info["password"])

    # A folder for the filter, made in Settings > Folders (IMAP CREATE of a non-ASCII name).
    page.goto(world.roundcube.url + "?_task=settings&_action=folders")
    _idle(page)
    page.get_by_role("button", name="Create").click()
    page.frame_locator("#preferences-frame").get_by_label("Folder name").fill(FILTER_FOLDER)
    page.frame_locator("#preferences-frame").get_by_role("button", name="Save").click()
    _confirmed(page, "Folder created successfully")
    shot("folder-created")

    # A filter set of its own, made active (PUTSCRIPT, then SETACTIVE).
    page.goto(world.roundcube.url + "?_task=settings&_action=plugin.managesieve")
    _idle(page)
    page.get_by_role("button", name="Actions").click()
    page.get_by_role("menuitem", name="Add filter set").click()
    sets = page.frame_locator("#filter-box")
    sets.get_by_label("Filter set name").fill("Sealmail")
    sets.get_by_role("button", name="Save").click()
    _confirmed(page, "Filter set created successfully")
    page.locator("#filterset-name").click()
    # The list of sets is LISTSCRIPTS: the new one beside the one Roundcube made at its first visit.
    expect(page.locator("#filtersetslist tr")).to_have_count(2)
    expect(page.locator("#filtersetslist")).to_contain_text("roundcube")
    page.locator("#filtersetslist tr", has_text="Sealmail").click()
    _idle(page)
    page.get_by_role("button", name="Actions").click()
    page.get_by_role("menuitem", name="Enable/disable filter set").click()
    _confirmed(page, "Filter set activated successfully")
    _idle(page)

    # The filter: Subject contains X -> move to the folder (PUTSCRIPT of the set with the rule).
    page.get_by_role("button", name="Create").click()
    form = page.frame_locator("#filter-box")
    form.get_by_label("Filter name").fill("Receipts")
    form.locator("#header0").select_option("subject")
    form.locator("#rule_op0").select_option("contains")
    form.locator("input[name='_rule_target[0][]']").fill(FILTER_WORDS)
    form.locator("#action_type0").select_option("fileinto")
    form.locator("#action_mailbox0").select_option(label=FILTER_FOLDER)
    shot("filter-form")
    form.get_by_role("button", name="Save").click()
    _confirmed(page, "Filter saved successfully")
    shot("filter-saved")

    # Over ManageSieve: the set is stored and active, and it compiles (our compiler and CHECKSCRIPT).
    wire = _sieve(world)
    try:
        listed = _scripts(wire)
        assert '"Sealmail" ACTIVE' in listed, listed
        got = wire.cmd('GETSCRIPT "Sealmail"')
        assert got.status == "OK", got
        script = got.lines[0].split(b"\r\n", 1)[1].decode()
        compile_script(script)
        checked = wire.cmd(b"CHECKSCRIPT {%d+}\r\n%s" % (len(script.encode()), script.encode()))
        assert checked.status == "OK", checked
        assert f'fileinto "{FILTER_FOLDER}"' in script, script
    finally:
        wire.close()

    # The MX runs it: a receipt (its Subject RFC 2047-encoded) goes to the folder, other mail to INBOX.
    _deliver(
        world,
        world.info["alias"],
        [("=?utf-8?q?Quittance_n=C2=B0_117?=", "receipt-117", ""), ("Lunch on Friday?", "lunch", "")],
    )
    filed = _folder(world, world.info["alias"], world.info["password"], FILTER_FOLDER)
    assert [header for _, header in filed if b"<receipt-117@example.org>" in header], filed
    kept = _folder(world, world.info["alias"], world.info["password"], "INBOX")
    assert [header for _, header in kept if b"<lunch@example.org>" in header], kept
    assert not [header for _, header in kept if b"receipt-117" in header], kept

    # Roundcube shows the filed message in that folder.
    page.goto(world.roundcube.url + "?_task=mail&_mbox=" + quote(mutf7.encode(FILTER_FOLDER), safe=""))
    page.locator("#messagelist tr.message", has_text="Quittance n° 117").wait_for()
    shot("filed")

    # Delete the filter, then the set (SETACTIVE "" and DELETESCRIPT: RFC 5804 §2.10 refuses an active one).
    page.goto(world.roundcube.url + "?_task=settings&_action=plugin.managesieve")
    _idle(page)
    page.locator("#filterslist tr", has_text="Receipts").click()
    # Roundcube enables Delete once the filter's form has loaded.
    expect(page.frame_locator("#filter-box").get_by_label("Filter name")).to_have_value("Receipts")
    _idle(page)
    page.get_by_role("button", name="Delete").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    _confirmed(page, "Filter deleted successfully")
    _idle(page)
    page.get_by_role("button", name="Actions").click()
    page.get_by_role("menuitem", name="Delete filter set").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    _confirmed(page, "Filter set deleted successfully")
    shot("set-deleted")

    wire = _sieve(world)
    try:
        listed = _scripts(wire)
        assert not [name for name in listed if "Sealmail" in name], listed
        assert not [name for name in listed if name.endswith(" ACTIVE")], listed
    finally:
        wire.close()
    # Nothing files it any more: the next receipt stays in INBOX.
    _deliver(world, world.info["alias"], [("=?utf-8?q?Quittance_n=C2=B0_118?=", "receipt-118", "")])
    kept = _folder(world, world.info["alias"], world.info["password"], "INBOX", want=len(kept) + 1)
    assert [header for _, header in kept if b"<receipt-118@example.org>" in header], kept

    sent = _no_failures(world, mark)
    assert "CREATE" in sent


# ---- issue 20 --------------------------------------------------------------------------------------

# Arrival order differs from the subject order, which RFC 5256 §2.1 defines on the base subject
# (RFC 2047 decoded; "Re:", "Fwd:" and "[blob]" prefixes removed), ties by sequence number; strings
# compare as i;unicode-casemap (RFC 5051, as docs/protocols.md says and Dovecot does): "Été" with the E's.
SESSION_MAIL = [
    ("Zebra crossing", "zebra", ""),
    ("=?utf-8?q?=C3=89t=C3=A9_au_lac?=", "ete", ""),
    ("[list] Fwd: Mangoes", "mangoes", ""),
    ("banana split", "banana", ""),
    ("Re: Apples and pears", "apples", ""),
    ("Re: Zebra crossing", "zebra-reply", "In-Reply-To: <zebra@example.org>\r\nReferences: <zebra@example.org>\r\n"),
]
BY_SUBJECT = [
    "Re: Apples and pears",
    "banana split",
    "Été au lac",
    "[list] Fwd: Mangoes",
    "Zebra crossing",
    "Re: Zebra crossing",
]
SESSION_FOLDER = "Projets 2027"


def _subjects(page) -> list[str]:
    """The subjects of the message list's visible rows, top to bottom."""
    return page.locator("#messagelist tbody tr.message:visible span.subject a span").all_inner_texts()


def _list_options(page, column: str, mode: str) -> None:
    _idle(page)
    page.locator("#listmenulink").click()
    dialog = page.get_by_role("dialog", name="List options")
    dialog.get_by_label("Sorting column").select_option(column)
    dialog.get_by_label("Sorting order").select_option("ASC")
    dialog.get_by_label("List mode").select_option(mode)
    dialog.get_by_role("button", name="Save").click()


def test_rfc5256_a_roundcube_session_sorts_and_threads_on_the_server_and_gets_no_bad_or_no(
    world: World, browser: tuple, sealmail_bin: str
) -> None:
    """Issue 20: a whole session; SORT (RFC 5256 §3) and THREAD=REFERENCES (RFC 5256 §4) done by our
    server, and no tagged NO or BAD (RFC 9051 §7.1) for anything Roundcube sent."""
    from playwright.sync_api import expect

    page, shot = browser
    address = "reader@example.test"
    made = subprocess.run(
        [sealmail_bin, "alias", "add", address, "--password", "--json", "--data-dir", str(world.data_dir)],
        env=world.env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    password = json.loads(made.stdout)["password"]
    _deliver(world, address, SESSION_MAIL)

    mark = world.recorder.mark()
    _sign_in(page, world, address, password)
    expect(page.locator("#messagelist tbody tr.message")).to_have_count(len(SESSION_MAIL))

    # Sorted by subject, on the server.
    _list_options(page, "subject", "list")
    expect(page.locator("#messagelist tbody tr.message:visible span.subject a span")).to_have_text(BY_SUBJECT)
    shot("sorted-by-subject")
    sorts = [line.text for line in world.recorder.since(mark) if line.side == "C" and " SORT " in line.text]
    assert any("(SUBJECT)" in text for text in sorts), sorts

    # Threads, on the server: the reply sits under its parent (collapsed, then expanded).
    _list_options(page, "date", "threads")
    expect(page.locator("#messagelist tbody tr.message:visible")).to_have_count(len(SESSION_MAIL) - 1)
    page.locator("#messagelist tbody tr.message", has_text="Zebra crossing").first.locator("td.threads div").click()
    visible = page.locator("#messagelist tbody tr.message:visible span.subject a span")
    expect(visible).to_have_count(len(SESSION_MAIL))
    subjects = visible.all_inner_texts()
    assert subjects[subjects.index("Zebra crossing") + 1] == "Re: Zebra crossing", subjects
    shot("threads")
    threads = [line.text for line in world.recorder.since(mark) if line.side == "C" and " THREAD " in line.text]
    assert any("THREAD REFERENCES" in text for text in threads), threads
    _list_options(page, "subject", "list")

    # A folder for the session (Folders > Create).
    page.goto(world.roundcube.url + "?_task=settings&_action=folders")
    _idle(page)
    page.get_by_role("button", name="Create").click()
    page.frame_locator("#preferences-frame").get_by_label("Folder name").fill(SESSION_FOLDER)
    page.frame_locator("#preferences-frame").get_by_role("button", name="Save").click()
    _confirmed(page, "Folder created successfully")
    page.goto(world.roundcube.url + "?_task=mail&_mbox=INBOX")

    # Read one, flag it, move it.
    _idle(page)
    page.locator("#messagelist tbody tr.message", has_text="banana split").click()
    expect(page.frame_locator("#messagecontframe").locator("body")).to_contain_text("The text of banana.")
    shot("read")
    _idle(page)
    page.get_by_role("button", name="Mark").click()
    page.get_by_role("menuitem", name="As flagged").click()
    expect(page.locator("#messagelist tbody tr.message.flagged", has_text="banana split")).to_have_count(1)
    _confirmed(page, "Message(s) marked successfully")
    _idle(page)
    page.get_by_role("button", name="More").click()
    page.get_by_role("menuitem", name="Move to...").click()
    # The selector takes clicks once it has marked the folders a message can go to as active.
    page.locator("#folder-selector a.active", has_text=SESSION_FOLDER).click()
    # Roundcube hides the moved row (it keeps it in the page until the list is drawn again).
    expect(page.locator("#messagelist tbody tr.message:visible", has_text="banana split")).to_have_count(0)
    _confirmed(page, "Message(s) moved successfully")
    shot("moved")

    # Search (the quick search box; subject and from by default).
    _idle(page)
    page.locator("#mailsearchform").fill("mangoes")
    page.locator("#mailsearchform").press("Enter")
    expect(page.locator("#messagelist tbody tr.message:visible span.subject a span")).to_have_text(
        ["[list] Fwd: Mangoes"]
    )
    shot("search")

    _idle(page)
    page.get_by_role("button", name="Logout").click()
    _confirmed(page, "You have successfully terminated the session")
    expect(page.get_by_label("Password")).to_be_visible()
    shot("signed-out")

    # What Roundcube did is what the mailbox holds, read without Roundcube.
    moved = _folder(world, address, password, SESSION_FOLDER)
    assert len(moved) == 1, moved
    flags, header = moved[0]
    assert b"<banana@example.org>" in header
    assert b"\\Flagged" in flags, flags
    assert b"\\Seen" in flags, flags
    inbox = _folder(world, address, password, "INBOX", want=len(SESSION_MAIL) - 1)
    assert len(inbox) == len(SESSION_MAIL) - 1, inbox

    sent = _no_failures(world, mark)
    for needed in ("AUTHENTICATE", "SORT", "THREAD", "SELECT", "FETCH", "STORE", "CREATE", "LOGOUT"):
        assert needed in sent, (needed, sorted(set(sent)))
    assert "MOVE" in sent or "COPY" in sent, sorted(set(sent))
