"""The DAV part of the mailbox store: collections, items, sync tokens, limits, nested transactions."""

from __future__ import annotations

import pytest

from sealmail.store import dav as davstore
from sealmail.store import events as ev
from sealmail.store.dav import DavLimits, NewItem
from sealmail.store.errors import (
    DavCollectionExists,
    DavConflict,
    DavLimitExceeded,
    DavNotFound,
    DavPreconditionFailed,
    InvalidSyncToken,
    ItemTooLarge,
    QuotaExceeded,
)


def item(href: str, uid: str | None = None, body: str = "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", etag: str = '"1"'):
    return NewItem(href, uid or href, etag, "VCALENDAR", "VEVENT", 100, 200, body)


def test_collections_and_items_round_trip(mailbox):
    mailbox.dav_create_collection("cal", "VCALENDAR", {"D:displayname": "Cal"})
    with pytest.raises(DavCollectionExists):
        mailbox.dav_create_collection("cal", "VCALENDAR")
    stored, old = mailbox.dav_put_item("cal", item("a.ics"))
    assert old is None
    assert stored.size == len(stored.body.encode())
    assert [i.href for i in mailbox.dav_items("cal")] == ["a.ics"]
    assert mailbox.dav_collection("cal").props == {"D:displayname": "Cal"}
    assert mailbox.dav_items_in_range("cal", "VEVENT", 150, 160)[0].href == "a.ics"
    assert mailbox.dav_items_in_range("cal", "VEVENT", 200, 300) == []  # ranges are half-open
    assert mailbox.dav_items_in_range("cal", "VTODO", 0, 1000) == []
    with pytest.raises(DavNotFound):
        mailbox.dav_items("nope")


def test_preconditions_and_uid_conflicts(mailbox):
    mailbox.dav_create_collection("cal", "VCALENDAR")
    mailbox.dav_put_item("cal", item("a.ics", etag='"v1"'))
    with pytest.raises(DavPreconditionFailed):
        mailbox.dav_put_item("cal", item("a.ics"), if_none_match=True)
    with pytest.raises(DavPreconditionFailed):
        mailbox.dav_put_item("cal", item("a.ics", etag='"v2"'), if_match='"old"')
    mailbox.dav_put_item("cal", item("a.ics", etag='"v2"'), if_match='"v1"')
    with pytest.raises(DavConflict):
        mailbox.dav_put_item("cal", item("b.ics", uid="a.ics"))
    with pytest.raises(DavPreconditionFailed):
        mailbox.dav_delete_item("cal", "a.ics", if_match='"v1"')
    assert mailbox.dav_delete_item("cal", "a.ics", if_match='"v2"').etag == '"v2"'


def test_sync_tokens_report_changes_and_deletions(mailbox):
    mailbox.dav_create_collection("cal", "VCALENDAR")
    token0, everything = mailbox.dav_changes("cal", None)
    assert everything == []
    mailbox.dav_put_item("cal", item("a.ics"))
    mailbox.dav_put_item("cal", item("b.ics"))
    token1, changed = mailbox.dav_changes("cal", token0)
    assert changed == ["a.ics", "b.ics"]
    mailbox.dav_delete_item("cal", "a.ics")
    token2, changed = mailbox.dav_changes("cal", token1)
    assert changed == ["a.ics"]
    assert token2 > token1 > token0
    assert mailbox.dav_changes("cal", token2) == (token2, [])
    with pytest.raises(InvalidSyncToken):
        mailbox.dav_changes("cal", token2 + 1)


def test_old_tombstones_are_forgotten_and_their_tokens_refused(mailbox, monkeypatch):
    monkeypatch.setattr(davstore, "MAX_TOMBSTONES", 4)
    mailbox.dav_create_collection("cal", "VCALENDAR")
    start, _ = mailbox.dav_changes("cal", None)
    for n in range(6):
        mailbox.dav_put_item("cal", item(f"{n}.ics"))
        mailbox.dav_delete_item("cal", f"{n}.ics")
    with pytest.raises(InvalidSyncToken):
        mailbox.dav_changes("cal", start)
    latest, _ = mailbox.dav_changes("cal", None)
    assert mailbox.dav_changes("cal", latest - 1)[1] == ["5.ics"]


def test_limits(mailbox):
    limits = DavLimits(max_item_size=100, max_collection_items=1, max_collections=1)
    mailbox.dav_create_collection("cal", "VCALENDAR", limits=limits)
    with pytest.raises(DavLimitExceeded):
        mailbox.dav_create_collection("more", "VCALENDAR", limits=limits)
    with pytest.raises(ItemTooLarge):
        mailbox.dav_put_item("cal", item("big.ics", body="x" * 101), limits=limits)
    mailbox.dav_put_item("cal", item("a.ics"), limits=limits)
    mailbox.dav_put_item("cal", item("a.ics", body="y" * 50), limits=limits)  # replacing is not growing
    with pytest.raises(DavLimitExceeded):
        mailbox.dav_put_item("cal", item("b.ics"), limits=limits)


def test_dav_items_count_toward_the_quota(mailbox):
    mailbox.dav_create_collection("cal", "VCALENDAR")
    mailbox.dav_put_item("cal", item("a.ics", body="z" * 1000))
    assert mailbox.usage() == 1000
    mailbox.quota = 1500
    with pytest.raises(QuotaExceeded):
        mailbox.dav_put_item("cal", item("b.ics", body="z" * 600))
    with pytest.raises(QuotaExceeded):
        mailbox.append("INBOX", b"Subject: x\r\n\r\n" + b"y" * 600)


def test_a_failure_inside_a_request_transaction_leaves_nothing(mailbox):
    delivered: list[ev.ChangeEvent] = []
    mailbox.notify = delivered.extend
    mailbox.dav_create_collection("cal", "VCALENDAR")
    delivered.clear()

    def failing_request() -> None:
        with mailbox.dav_transaction():
            mailbox.dav_put_item("cal", item("a.ics"))
            raise RuntimeError("the request failed after writing")

    with pytest.raises(RuntimeError):
        failing_request()
    assert mailbox.dav_items("cal") == []
    assert delivered == []
    with mailbox.dav_transaction():
        mailbox.dav_put_item("cal", item("a.ics"))
        with pytest.raises(DavConflict):
            mailbox.dav_put_item("cal", item("b.ics", uid="a.ics"))  # a savepoint: only this part undone
        mailbox.dav_put_item("cal", item("c.ics"))
    assert [i.href for i in mailbox.dav_items("cal")] == ["a.ics", "c.ics"]
    assert [type(e) for e in delivered] == [ev.CollectionsChanged, ev.CollectionsChanged]


def test_move_and_card_index(mailbox):
    mailbox.dav_create_collection("a", "VADDRESSBOOK")
    mailbox.dav_create_collection("b", "VADDRESSBOOK")
    card = NewItem(
        "x.vcf", "x", '"1"', "VCARD", "VCARD", 0, 1, "BEGIN:VCARD\r\nEND:VCARD\r\n", (("FN", "ada lovelace"),)
    )
    mailbox.dav_put_item("a", card)
    assert mailbox.dav_card_hrefs("a", "FN", "lace") == {"x.vcf"}
    mailbox.dav_move_item("a", "x.vcf", "b", "y.vcf")
    assert mailbox.dav_items("a") == []
    assert mailbox.dav_card_hrefs("b", "FN", "ada") == {"y.vcf"}
    assert mailbox.dav_card_hrefs_with("b", "FN") == {"y.vcf"}


def test_defaults_are_made_once(mailbox):
    defaults = [("calendar", "VCALENDAR", {}), ("contacts", "VADDRESSBOOK", {})]
    assert mailbox.dav_ensure_defaults(defaults)
    mailbox.dav_delete_collection("calendar")
    assert not mailbox.dav_ensure_defaults(defaults)
    assert [c.name for c in mailbox.dav_collections()] == ["contacts"]
