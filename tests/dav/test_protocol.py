"""CalDAV / CardDAV over real HTTPS (httpx against the running component): discovery, CRUD, queries,
sync tokens, conflicts, limits and isolation between aliases."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from davxml import (
    addressbook_query,
    calendar_query,
    event,
    mkcalendar,
    mkcol_addressbook,
    multiget,
    prop_element,
    prop_text,
    propfind,
    responses,
    status_of,
    sync_collection,
    sync_token,
    todo,
    vcard3,
    vcard4,
)

ALICE = "alice@example.test"
BOB = "bob@example.test"
CAL = "/alice%40example.test/calendar/"
BOOK = "/alice%40example.test/contacts/"
ICS = {"Content-Type": "text/calendar; charset=utf-8"}
VCF = {"Content-Type": "text/vcard; charset=utf-8"}


def put(client: httpx.Client, path: str, body: str, **headers: str) -> httpx.Response:
    kind = VCF if path.endswith(".vcf") else ICS
    return client.put(path, content=body.encode(), headers={**kind, **headers})


def report(client: httpx.Client, path: str, body: str, depth: str = "1") -> httpx.Response:
    return client.request(
        "REPORT", path, content=body.encode(), headers={"Depth": depth, "Content-Type": "application/xml"}
    )


# ---- discovery (RFC 6764, RFC 5397, RFC 4791 §6.2.1, RFC 6352 §7.1.1) ------------------------------
@pytest.mark.parametrize(("port", "path"), [("caldav", "/.well-known/caldav"), ("carddav", "/.well-known/carddav")])
def test_well_known_leads_to_the_principal_and_its_homes(dav, port, path):
    with dav.client(ALICE, base=getattr(dav, port)) as client:
        moved = client.request("PROPFIND", path)
        assert moved.status_code == 301
        root = client.request(
            "PROPFIND", moved.headers["location"], content=propfind("d:current-user-principal"), headers={"Depth": "0"}
        )
        assert root.status_code == 207
        principal = prop_text(responses(root.text)["/"], "d:current-user-principal/d:href")
        assert principal == CAL.removesuffix("calendar/")
        homes = client.request(
            "PROPFIND",
            principal,
            content=propfind("c:calendar-home-set", "cr:addressbook-home-set", "d:principal-URL"),
            headers={"Depth": "0"},
        )
        found = next(iter(responses(homes.text).values()))
        assert prop_text(found, "c:calendar-home-set/d:href") == principal
        assert prop_text(found, "cr:addressbook-home-set/d:href") == principal


def test_an_internationalized_address_finds_and_uses_its_principal_rfc6764_rfc6530(dav):
    """EAI/IDN (RFC 6530, RFC 5890): rémi@universitéxyz.fr signs in with the address as typed, is led
    to its principal (its path in UTF-8, percent-encoded, RFC 3986 §2.5) and may read and write there."""
    typed = "rémi@universitéxyz.fr"
    with dav.client(typed, password=dav.accounts[typed], base=dav.caldav) as client:
        moved = client.request("PROPFIND", "/.well-known/caldav")
        root = client.request(
            "PROPFIND", moved.headers["location"], content=propfind("d:current-user-principal"), headers={"Depth": "0"}
        )
        principal = prop_text(responses(root.text)["/"], "d:current-user-principal/d:href")
        assert principal == "/r%C3%A9mi%40xn--universitxyz-jeb.fr/"
        homes = client.request("PROPFIND", principal, content=propfind("c:calendar-home-set"), headers={"Depth": "0"})
        assert homes.status_code == 207, homes.text
        calendars = client.request("PROPFIND", principal, content=propfind("d:resourcetype"), headers={"Depth": "1"})
        assert calendars.status_code == 207, calendars.text
        created = put(
            client, principal + "calendar/r.ics", event("rémi-1", "20261224T180000Z", "20261224T200000Z", "Réveillon")
        )
        assert created.status_code == 201, created.text
        assert client.get(principal + "calendar/r.ics").status_code == 200


def test_default_calendar_and_address_book_exist_at_first_use(alice):
    listing = alice.request(
        "PROPFIND",
        "/alice%40example.test/",
        content=propfind("d:resourcetype", "d:displayname", "d:sync-token"),
        headers={"Depth": "1"},
    )
    assert listing.status_code == 207
    found = responses(listing.text)
    calendar = prop_element(found["/alice@example.test/calendar/"], "d:resourcetype")
    book = prop_element(found["/alice@example.test/contacts/"], "d:resourcetype")
    assert calendar is not None
    assert calendar.find("{urn:ietf:params:xml:ns:caldav}calendar") is not None
    assert book is not None
    assert book.find("{urn:ietf:params:xml:ns:carddav}addressbook") is not None
    assert prop_text(found["/alice@example.test/calendar/"], "d:sync-token")


def test_credentials_are_required_and_checked(dav):
    with dav.client() as anonymous:
        assert anonymous.request("PROPFIND", CAL).status_code == 401
    with dav.client(ALICE, "not the password") as wrong:
        refused = wrong.request("PROPFIND", CAL)
        assert refused.status_code == 401
        assert "Basic" in refused.headers["www-authenticate"]
    with dav.client("nobody@example.test", "x") as unknown:
        assert unknown.request("PROPFIND", CAL).status_code == 401


def test_failed_logins_are_throttled(dav):
    with dav.client(ALICE, "wrong") as wrong:
        for _ in range(6):
            wrong.request("PROPFIND", CAL)
    with dav.client(ALICE) as right:  # the account is locked for the window, even with its password
        assert right.request("PROPFIND", CAL).status_code == 401


# ---- CRUD, ETags and preconditions (RFC 4791 §5.3.2, RFC 9110 §13.1) -------------------------------
def test_create_read_update_delete_with_etags(alice):
    body = event("crud-1", "20260105T100000Z", "20260105T110000Z", "First")
    created = put(alice, CAL + "crud-1.ics", body, **{"If-None-Match": "*"})
    assert created.status_code == 201
    etag = created.headers["etag"]
    got = alice.get(CAL + "crud-1.ics")
    assert got.status_code == 200
    assert "SUMMARY:First" in got.text
    assert got.headers["etag"] == etag

    again = put(alice, CAL + "crud-1.ics", body, **{"If-None-Match": "*"})
    assert again.status_code == 412

    updated = put(
        alice,
        CAL + "crud-1.ics",
        event("crud-1", "20260105T100000Z", "20260105T120000Z", "Second"),
        **{"If-Match": etag},
    )
    assert updated.status_code == 204
    new_etag = updated.headers["etag"]
    assert new_etag != etag

    stale = put(alice, CAL + "crud-1.ics", body, **{"If-Match": etag})  # someone else changed it meanwhile
    assert stale.status_code == 412
    assert "SUMMARY:Second" in alice.get(CAL + "crud-1.ics").text

    assert alice.request("DELETE", CAL + "crud-1.ics", headers={"If-Match": etag}).status_code == 412
    assert alice.request("DELETE", CAL + "crud-1.ics", headers={"If-Match": new_etag}).status_code in (200, 204)
    assert alice.get(CAL + "crud-1.ics").status_code == 404


def test_vtodo_is_stored_and_queried(alice):
    assert put(alice, CAL + "task.ics", todo("task-1", "20260110T090000Z", "Buy milk")).status_code == 201
    found = report(alice, CAL, calendar_query("20260101T000000Z", "20260201T000000Z", "VTODO"))
    assert found.status_code == 207
    assert list(responses(found.text)) == [CAL.replace("%40", "@") + "task.ics"]
    none = report(alice, CAL, calendar_query("20260101T000000Z", "20260201T000000Z", "VEVENT"))
    assert responses(none.text) == {}


def test_uid_used_by_another_resource_is_a_conflict(alice):
    assert put(alice, CAL + "a.ics", event("same-uid", "20260105T100000Z", "20260105T110000Z")).status_code == 201
    clash = put(alice, CAL + "b.ics", event("same-uid", "20260106T100000Z", "20260106T110000Z"))
    assert clash.status_code == 409
    assert "no-uid-conflict" in clash.text


def test_mkcalendar_mkcol_proppatch_and_delete_collection(alice):
    made = alice.request("MKCALENDAR", "/alice%40example.test/work/", content=mkcalendar("Work").encode())
    assert made.status_code == 201
    # RFC 4791 §5.3.1.2 DAV:resource-must-be-null
    assert alice.request("MKCALENDAR", "/alice%40example.test/work/").status_code == 409
    book = alice.request("MKCOL", "/alice%40example.test/friends/", content=mkcol_addressbook("Friends").encode())
    assert book.status_code == 201
    patch = (
        '<?xml version="1.0"?><d:propertyupdate xmlns:d="DAV:"><d:set><d:prop>'
        "<d:displayname>Work (renamed)</d:displayname></d:prop></d:set></d:propertyupdate>"
    )
    assert alice.request("PROPPATCH", "/alice%40example.test/work/", content=patch.encode()).status_code == 207
    listing = responses(
        alice.request(
            "PROPFIND", "/alice%40example.test/", content=propfind("d:displayname"), headers={"Depth": "1"}
        ).text
    )
    assert prop_text(listing["/alice@example.test/work/"], "d:displayname") == "Work (renamed)"
    assert prop_text(listing["/alice@example.test/friends/"], "d:displayname") == "Friends"
    assert put(alice, "/alice%40example.test/work/x.ics", event("x", "20260105T100000Z", "20260105T110000Z")).is_success
    assert alice.request("DELETE", "/alice%40example.test/work/").status_code in (200, 204)
    assert alice.request("PROPFIND", "/alice%40example.test/work/", headers={"Depth": "0"}).status_code == 404


# ---- queries (RFC 4791 §7.8, §9.9; RFC 6352 §8.6) ----------------------------------------------------
def test_time_range_query_expands_recurrences(alice):
    put(alice, CAL + "jan.ics", event("jan", "20260105T100000Z", "20260105T110000Z", "January only"))
    put(alice, CAL + "mar.ics", event("mar", "20260305T100000Z", "20260305T110000Z", "March only"))
    # Weekly since 2024: has instances in February 2026.
    put(
        alice,
        CAL + "weekly.ics",
        event("weekly", "20240102T090000Z", "20240102T093000Z", "Standup", "RRULE:FREQ=WEEKLY\r\n"),
    )
    # Weekly but ended in 2025: its enclosing range is before February 2026.
    put(
        alice,
        CAL + "ended.ics",
        event("ended", "20240102T090000Z", "20240102T093000Z", "Old", "RRULE:FREQ=WEEKLY;UNTIL=20250101T000000Z\r\n"),
    )
    # Yearly on 1 January: instances every year, none in February.
    put(
        alice,
        CAL + "yearly.ics",
        event("yearly", "20200101T120000Z", "20200101T130000Z", "New year", "RRULE:FREQ=YEARLY\r\n"),
    )
    # Monthly with February's instance excluded.
    put(
        alice,
        CAL + "exdate.ics",
        event(
            "exdate",
            "20251210T080000Z",
            "20251210T090000Z",
            "Monthly",
            "RRULE:FREQ=MONTHLY;COUNT=4\r\nEXDATE:20260210T080000Z\r\n",
        ),
    )
    feb = report(alice, CAL, calendar_query("20260201T000000Z", "20260301T000000Z"))
    assert feb.status_code == 207
    names = sorted(href.rsplit("/", 1)[1] for href in responses(feb.text))
    assert names == ["weekly.ics"]

    jan = report(alice, CAL, calendar_query("20260101T000000Z", "20260201T000000Z"))
    names = sorted(href.rsplit("/", 1)[1] for href in responses(jan.text))
    assert names == ["exdate.ics", "jan.ics", "weekly.ics", "yearly.ics"]

    expanded = report(alice, CAL, calendar_query("20260201T000000Z", "20260301T000000Z", expand=True))
    data = prop_text(next(iter(responses(expanded.text).values())), "c:calendar-data") or ""
    assert data.count("BEGIN:VEVENT") == 4  # the Tuesdays of February 2026
    assert "RECURRENCE-ID" in data
    assert "RRULE" not in data


def test_calendar_multiget_reports_missing_resources(alice):
    put(alice, CAL + "m1.ics", event("m1", "20260105T100000Z", "20260105T110000Z", "Multi"))
    got = report(alice, CAL, multiget("calendar", [CAL + "m1.ics", CAL + "gone.ics"]))
    found = responses(got.text)
    assert "SUMMARY:Multi" in (prop_text(found["/alice@example.test/calendar/m1.ics"], "c:calendar-data") or "")
    assert "404" in status_of(found["/alice@example.test/calendar/gone.ics"])


def test_vcard_3_and_4_addressbook_query_and_multiget(alice):
    assert put(alice, BOOK + "ada.vcf", vcard3("ada", "Ada Lovelace", "ada@example.org")).status_code == 201
    assert put(alice, BOOK + "alan.vcf", vcard4("alan", "Alan Turing", "alan@example.org")).status_code == 201
    assert put(alice, BOOK + "grace.vcf", vcard3("grace", "Grace Hopper", "grace@navy.example")).status_code == 201
    assert "VERSION:4.0" in alice.get(BOOK + "alan.vcf").text

    by_name = report(alice, BOOK, addressbook_query("FN", "turing"))
    assert by_name.status_code == 207
    assert list(responses(by_name.text)) == ["/alice@example.test/contacts/alan.vcf"]
    by_mail = report(alice, BOOK, addressbook_query("EMAIL", "example.org"))
    assert sorted(responses(by_mail.text)) == [
        "/alice@example.test/contacts/ada.vcf",
        "/alice@example.test/contacts/alan.vcf",
    ]
    starts = report(alice, BOOK, addressbook_query("FN", "grace", "starts-with"))
    assert list(responses(starts.text)) == ["/alice@example.test/contacts/grace.vcf"]
    equals = report(alice, BOOK, addressbook_query("FN", "Grace", "equals"))
    assert responses(equals.text) == {}

    got = report(alice, BOOK, multiget("addressbook", [BOOK + "ada.vcf", BOOK + "alan.vcf"]))
    found = responses(got.text)
    assert "FN:Ada Lovelace" in (prop_text(found["/alice@example.test/contacts/ada.vcf"], "cr:address-data") or "")
    assert "FN:Alan Turing" in (prop_text(found["/alice@example.test/contacts/alan.vcf"], "cr:address-data") or "")


# ---- sync-collection (RFC 6578) ----------------------------------------------------------------------
def test_sync_collection_reports_changes_and_deletions_with_stable_tokens(alice):
    first = report(alice, CAL, sync_collection(), depth="0")
    assert first.status_code == 207
    token0 = sync_token(first.text)
    again = report(alice, CAL, sync_collection(token0), depth="0")
    assert sync_token(again.text) == token0  # nothing changed: the same token, nothing listed
    assert responses(again.text) == {}

    put(alice, CAL + "s1.ics", event("s1", "20260105T100000Z", "20260105T110000Z"))
    put(alice, CAL + "s2.ics", event("s2", "20260106T100000Z", "20260106T110000Z"))
    changed = report(alice, CAL, sync_collection(token0), depth="0")
    token1 = sync_token(changed.text)
    assert token1 != token0
    assert sorted(responses(changed.text)) == [
        "/alice@example.test/calendar/s1.ics",
        "/alice@example.test/calendar/s2.ics",
    ]

    put(alice, CAL + "s1.ics", event("s1", "20260105T100000Z", "20260105T113000Z", "Longer"))
    alice.request("DELETE", CAL + "s2.ics")
    delta = responses(report(alice, CAL, sync_collection(token1), depth="0").text)
    assert sorted(delta) == ["/alice@example.test/calendar/s1.ics", "/alice@example.test/calendar/s2.ics"]
    assert prop_text(delta["/alice@example.test/calendar/s1.ics"], "d:getetag")
    assert "404" in status_of(delta["/alice@example.test/calendar/s2.ics"])

    # The token from before still answers the whole difference.
    assert len(responses(report(alice, CAL, sync_collection(token0), depth="0").text)) == 2


def test_unknown_sync_token_is_refused(alice):
    bad = report(alice, CAL, sync_collection("http://sealmail.invalid/ns/sync/0000000000000000/1"), depth="0")
    assert bad.status_code == 403
    assert "valid-sync-token" in bad.text
    book_token = sync_token(report(alice, BOOK, sync_collection(), depth="0").text)
    assert report(alice, CAL, sync_collection(book_token), depth="0").status_code == 403


# ---- isolation (one alias never reaches another's collections) --------------------------------------
def test_one_alias_cannot_reach_another_alias_collections(alice, bob):
    put(alice, CAL + "private.ics", event("private", "20260105T100000Z", "20260105T110000Z", "Alice only"))
    assert bob.get(CAL + "private.ics").status_code == 403
    assert bob.request("PROPFIND", CAL, headers={"Depth": "1"}).status_code == 403
    assert bob.request("PROPFIND", "/alice%40example.test/", headers={"Depth": "1"}).status_code == 403
    assert report(bob, CAL, calendar_query("20260101T000000Z", "20270101T000000Z")).status_code == 403
    assert put(bob, CAL + "planted.ics", event("planted", "20260105T100000Z", "20260105T110000Z")).status_code == 403
    assert bob.request("DELETE", CAL + "private.ics").status_code == 403
    assert bob.request("MKCALENDAR", "/alice%40example.test/evil/").status_code == 403
    assert (
        bob.request(
            "MOVE", CAL + "private.ics", headers={"Destination": "/bob%40example.test/calendar/x.ics"}
        ).status_code
        == 403
    )
    # Bob's own root listing shows only Bob.
    root = bob.request("PROPFIND", "/", headers={"Depth": "1"})
    assert "alice" not in root.text
    assert alice.get(CAL + "private.ics").status_code == 200


# ---- limits and malformed data ----------------------------------------------------------------------
def test_malformed_data_is_refused_with_a_reason_and_nothing_is_written(alice):
    broken = put(alice, CAL + "broken.ics", "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nDTSTART:nonsense\r\n")
    assert broken.status_code == 400
    assert broken.text.startswith("Bad Request: ")
    assert len(broken.text) > len("Bad Request: ")
    no_uid_card = put(
        alice, BOOK + "card.vcf", "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:X\r\nthis is not a line\r\nEND:VCARD\r\n"
    )
    assert no_uid_card.status_code == 400
    assert no_uid_card.text.startswith("Bad Request: ")
    wrong_kind = put(alice, BOOK + "event.vcf", event("in-book", "20260105T100000Z", "20260105T110000Z"))
    assert wrong_kind.status_code == 400
    listing = responses(alice.request("PROPFIND", CAL, headers={"Depth": "1"}).text)
    assert list(listing) == ["/alice@example.test/calendar/"]


def test_size_limits_answer_413_and_507(tmp_path):
    from davserver import start_server

    gen = start_server(tmp_path, dav_max_item_size=2048, dav_max_collection_items=2, dav_max_request_size=8192)
    dav = next(gen)
    try:
        with dav.client(ALICE) as alice:
            big = event("big", "20260105T100000Z", "20260105T110000Z", "x" * 3000)
            too_large = put(alice, CAL + "big.ics", big)
            assert too_large.status_code == 413
            assert "2048" in too_large.text
            huge = alice.put(CAL + "huge.ics", content=b"x" * 9000, headers=ICS)
            assert huge.status_code == 413
            assert put(alice, CAL + "1.ics", event("1", "20260105T100000Z", "20260105T110000Z")).status_code == 201
            assert put(alice, CAL + "2.ics", event("2", "20260105T100000Z", "20260105T110000Z")).status_code == 201
            full = put(alice, CAL + "3.ics", event("3", "20260105T100000Z", "20260105T110000Z"))
            assert full.status_code == 507
            assert "full" in full.text
            assert alice.get(CAL + "3.ics").status_code == 404
    finally:
        for _ in gen:
            pass


def test_mailbox_quota_answers_507(tmp_path):
    from davserver import start_server

    gen = start_server(tmp_path, default_quota=1500)
    dav = next(gen)
    try:
        with dav.client(ALICE) as alice:
            assert put(alice, CAL + "1.ics", event("1", "20260105T100000Z", "20260105T110000Z")).status_code == 201
            over = put(alice, CAL + "2.ics", event("2", "20260105T100000Z", "20260105T110000Z", "y" * 1200))
            assert over.status_code == 507
            assert "quota" in over.text
    finally:
        for _ in gen:
            pass


# ---- change events (for push) ------------------------------------------------------------------------
def test_changes_publish_collection_events(dav, alice):
    from sealmail.config.sqlite import SQLiteConfigStore
    from sealmail.services.aliases import get_alias
    from sealmail.store import events as ev

    store = SQLiteConfigStore(dav.settings.config_db_path)
    try:
        mailbox_id = store.get_credential(get_alias(store, ALICE).id).mailbox_id
    finally:
        store.close()
    alice.request("PROPFIND", CAL, headers={"Depth": "0"})  # signs in
    bus = dav.component.app.bus
    subscription = asyncio.run_coroutine_threadsafe(bus.subscribe(mailbox_id), dav.loop).result(10)
    created = put(alice, CAL + "evt.ics", event("evt", "20260105T100000Z", "20260105T110000Z"))
    assert created.status_code == 201
    got = asyncio.run_coroutine_threadsafe(subscription.get(timeout=5), dav.loop).result(10)
    assert isinstance(got, ev.CollectionsChanged)
    assert got.mailbox_id == mailbox_id
    assert got.sync_token > 0
    assert "calendar" not in got.collection  # an opaque id, never the collection's name
    token = sync_token(report(alice, CAL, sync_collection(), depth="0").text)
    assert token.endswith(f"/{got.sync_token}")
    asyncio.run_coroutine_threadsafe(subscription.close(), dav.loop).result(10)


# ---- TLS only ------------------------------------------------------------------------------------------
def test_plain_http_is_not_served(dav):
    plain = dav.caldav.replace("https://", "http://")
    with httpx.Client(timeout=5) as client, pytest.raises(httpx.HTTPError):
        client.request("PROPFIND", plain + "/")


def test_no_certificate_means_no_server_unless_loopback_plaintext_is_asked_for(settings):
    from sealmail.dav.component import DavComponent
    from sealmail.errors import InvalidInput
    from sealmail.net.tls import TLSUnavailable

    with pytest.raises(TLSUnavailable):
        asyncio.run(DavComponent(settings).start())
    for addresses in (["0.0.0.0"], ["127.0.0.1", "::"]):  # noqa: S104 - the point; one exposed address is enough
        exposed = settings.model_copy(update={"dav_insecure_http": True, "bind_addresses": addresses})
        with pytest.raises(InvalidInput, match="loopback"):
            asyncio.run(DavComponent(exposed).start())


# ---- PROPFIND depth 1 answered from the rows matches Radicale's own answer ---------------------------
def _canonical(text: str) -> dict:
    from defusedxml.ElementTree import fromstring

    out = {}
    for response in fromstring(text).findall("{DAV:}response"):
        href = response.findtext("{DAV:}href")
        stats = {}
        for propstat in response.findall("{DAV:}propstat"):
            props = propstat.find("{DAV:}prop")
            stats[propstat.findtext("{DAV:}status")] = sorted(
                (p.tag, "".join(p.itertext()), tuple(c.tag for c in p.iter())) for p in props
            )
        out[href] = stats
    return out


@pytest.mark.parametrize(
    "props",
    [
        ("d:getetag",),
        ("d:getetag", "d:getcontenttype", "d:resourcetype", "cs:getctag"),
        ("d:getlastmodified", "d:getcontentlength", "d:owner", "d:principal-collection-set", "d:displayname"),
        ("d:sync-token", "c:supported-calendar-component-set", "x:unknown"),
    ],
)
def test_propfind_depth_1_from_the_rows_matches_radicale(alice, monkeypatch, props):
    from sealmail.dav import fastpaths

    put(alice, CAL + "one.ics", event("one", "20260105T100000Z", "20260105T110000Z"))
    put(alice, CAL + "two.ics", todo("two", "20260106T100000Z"))
    put(alice, BOOK + "c.vcf", vcard4("c", "Ada Lovelace", "ada@example.org"))
    body = propfind(*props).replace(
        'xmlns:cs="http://calendarserver.org/ns/"', 'xmlns:cs="http://calendarserver.org/ns/" xmlns:x="urn:x"'
    )
    calls = []
    original = fastpaths.member_responses
    for collection in (CAL, BOOK):
        monkeypatch.setattr(fastpaths, "member_responses", lambda *a: calls.append(1) or original(*a))
        fast = alice.request("PROPFIND", collection, content=body, headers={"Depth": "1"})
        assert calls, "the fast path did not answer"
        monkeypatch.setattr(fastpaths, "requested_props", lambda _body: None)
        slow = alice.request("PROPFIND", collection, content=body, headers={"Depth": "1"})
        monkeypatch.undo()
        assert fast.status_code == slow.status_code == 207
        assert _canonical(fast.text) == _canonical(slow.text)
        assert len(_canonical(fast.text)) == (3 if collection == CAL else 2)


def test_move_between_collections_keeps_the_resource_and_both_sync_tokens_move(alice):
    assert alice.request("MKCALENDAR", "/alice%40example.test/work/", content=mkcalendar("Work").encode()).is_success
    put(alice, CAL + "mv.ics", event("mv", "20260105T100000Z", "20260105T110000Z", "Moving"))
    before_cal = sync_token(report(alice, CAL, sync_collection(), depth="0").text)
    before_work = sync_token(report(alice, "/alice%40example.test/work/", sync_collection(), depth="0").text)
    moved = alice.request(
        "MOVE", CAL + "mv.ics", headers={"Destination": "/alice%40example.test/work/moved.ics", "Overwrite": "F"}
    )
    assert moved.status_code in (201, 204)
    assert alice.get(CAL + "mv.ics").status_code == 404
    assert "SUMMARY:Moving" in alice.get("/alice%40example.test/work/moved.ics").text
    gone = responses(report(alice, CAL, sync_collection(before_cal), depth="0").text)
    assert "404" in status_of(gone["/alice@example.test/calendar/mv.ics"])
    arrived = responses(report(alice, "/alice%40example.test/work/", sync_collection(before_work), depth="0").text)
    assert list(arrived) == ["/alice@example.test/work/moved.ics"]


def test_a_changed_password_ends_the_cached_login(dav):
    from sealmail.config.sqlite import SQLiteConfigStore
    from sealmail.services import credentials

    old = dav.accounts[ALICE]
    with dav.client(ALICE) as alice:
        assert alice.request("PROPFIND", CAL, headers={"Depth": "0"}).status_code == 207
        dav.component.sessions.recheck = 0  # re-check the credential on every request
        store = SQLiteConfigStore(dav.settings.config_db_path)
        try:
            new = credentials.set_password(store, dav.settings, ALICE, old_password=old)
        finally:
            store.close()
        assert alice.request("PROPFIND", CAL, headers={"Depth": "0"}).status_code == 401
    with dav.client(ALICE, new) as again:
        assert again.request("PROPFIND", CAL, headers={"Depth": "0"}).status_code == 207


def test_plain_mkcol_and_mkcol_bodies(alice):
    assert alice.request("MKCOL", "/alice%40example.test/plain/").status_code == 201
    weird = alice.request(
        "MKCOL", "/alice%40example.test/weird/", content=b"abcdef", headers={"Content-Type": "xzy-foo/bar-512"}
    )
    assert weird.status_code == 415
    # A plain collection holds no resources: only calendar objects and vCards are stored.
    planted = put(alice, "/alice%40example.test/plain/x.ics", event("x", "20260105T100000Z", "20260105T110000Z"))
    assert planted.status_code == 403
