"""Calendar and contact data never reach the disk in clear: every file under the data directory is
read while the server runs (WAL and all) and after it stopped, and Radicale's own filesystem storage
and cache are never loaded."""

from __future__ import annotations

import sys
from pathlib import Path

from davserver import start_server
from davxml import event, vcard3

MARKERS = [
    "Quokka-Zanzibar-7731",  # event summary
    "Lighthouse keeper appointment",  # event description
    "Wilhelmina Fortescue-Smythe",  # contact name
    "wilhelmina@secret.example",  # contact e-mail (indexed, case-folded)
    "Therapy sessions",  # a calendar's display name
]


def _variants(marker: str) -> list[bytes]:
    return [
        marker.encode(),
        marker.lower().encode(),
        marker.upper().encode(),
        marker.encode("utf-16-le"),
        marker.lower().encode("utf-16-le"),
    ]


def _leaks(root: Path) -> list[str]:
    found = []
    files = [p for p in root.rglob("*") if p.is_file()]
    assert files, f"no files under {root}"
    for path in files:
        data = path.read_bytes()
        if data.startswith(b"SQLite format 3") and "mailboxes" in path.parts:
            found.append(f"{path}: plaintext SQLite header")
        for marker in MARKERS:
            if any(v in data for v in _variants(marker)):
                found.append(f"{path}: {marker}")
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
        assert _leaks(data_dir) == []
    finally:
        for _ in gen:
            pass
    assert _leaks(data_dir) == []
    # Radicale's filesystem storage (and its .Radicale.cache) was never even imported.
    assert "radicale.storage.multifilesystem" not in sys.modules
    assert not [p for p in tmp_path.rglob("*") if ".Radicale" in p.name or p.name == "collection-root"]
