"""Calendar and contact data never reach the disk in clear: every file under the data directory is
read at every offset (``privacyscan``) while the server runs (WAL and all) and after it stopped, for
the data, the accounts' passwords and their mailbox keys; and Radicale's own filesystem storage and
cache are never loaded."""

from __future__ import annotations

import sys

from davserver import start_server
from davxml import event, vcard3

from privacyscan import Secrets, assert_no_secrets

MARKERS = [
    "Quokka-Zanzibar-7731",  # event summary
    "Lighthouse keeper appointment",  # event description
    "Wilhelmina Fortescue-Smythe",  # contact name
    "wilhelmina@secret.example",  # contact e-mail (indexed, case-folded)
    "Therapy sessions",  # a calendar's display name
]


def _secrets(dav) -> Secrets:
    """The markers, every account's password, and every account's unwrapped keys."""
    from sealmail.config.sqlite import SQLiteConfigStore
    from sealmail.services import credentials

    found = Secrets()
    for marker in MARKERS:
        found.text("calendar or contact text", marker)
    config = SQLiteConfigStore(dav.settings.config_db_path)
    try:
        for address, password in dav.accounts.items():
            found.password(f"password of {address}", password)
            found.unlocked(address, credentials.unlock(config, dav.settings, address, password))
    finally:
        config.close()
    return found


def test_calendar_and_contact_data_are_absent_from_every_file(tmp_path):
    gen = start_server(tmp_path)
    dav = next(gen)
    try:
        with dav.client("alice@example.test") as alice:
            cal = "/alice%40example.test/calendar/"
            body = event(
                "privacy-1",
                "20260105T100000Z",
                "20260105T110000Z",
                MARKERS[0],
                f"DESCRIPTION:{MARKERS[1]}\r\n",
            )
            assert alice.put(cal + "p.ics", content=body, headers={"Content-Type": "text/calendar"}).status_code == 201
            card = vcard3("privacy-card", MARKERS[2], MARKERS[3])
            book = "/alice%40example.test/contacts/"
            assert alice.put(book + "c.vcf", content=card, headers={"Content-Type": "text/vcard"}).status_code == 201
            patch = (
                '<?xml version="1.0"?><d:propertyupdate xmlns:d="DAV:"><d:set><d:prop>'
                f"<d:displayname>{MARKERS[4]}</d:displayname></d:prop></d:set></d:propertyupdate>"
            )
            assert alice.request("PROPPATCH", cal, content=patch).status_code == 207
            assert MARKERS[0] in alice.get(cal + "p.ics").text
        data_dir = dav.settings.data_dir
        assert list((data_dir / "mailboxes").glob("*.sqlite-wal")), "expected a live WAL to inspect"
        secrets = _secrets(dav)
        assert_no_secrets(data_dir, secrets, min_files=4)  # while it runs, WAL and all
    finally:
        for _ in gen:
            pass
    assert_no_secrets(data_dir, secrets, min_files=4)  # after it stopped
    # Radicale's filesystem storage (and its .Radicale.cache) was never even imported.
    assert "radicale.storage.multifilesystem" not in sys.modules
    assert not [p for p in tmp_path.rglob("*") if ".Radicale" in p.name or p.name == "collection-root"]
