"""Calendars and address books inside the encrypted mailbox (CalDAV RFC 4791, CardDAV RFC 6352).

A part of ``Mailbox`` (``mailbox.parts.dav``), given its ``MailboxDB``: the same SQLCipher
connection, the same writer lock and transactions, the same change events. Protocol code
(``sealmail.dav``) never sees SQL: it calls these methods with collection names and hrefs and gets
typed rows back. The DAV layer parses iCalendar and vCard; this layer stores what it is given (the
text and the values it was indexed by) and enforces the limits.

Every change bumps the collection's sync token (RFC 6578) in the same transaction and, after COMMIT,
publishes ``CollectionsChanged`` with the collection's random uid and the new token: never its name.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sealmail.store import events as ev
from sealmail.store.errors import (
    DavCollectionExists,
    DavConflict,
    DavLimitExceeded,
    DavNotFound,
    DavPreconditionFailed,
    InvalidSyncToken,
    ItemTooLarge,
)
from sealmail.store.mailboxdb import Events, MailboxDB, chunks

KINDS = ("VCALENDAR", "VADDRESSBOOK", "")
MAX_COLLECTION_NAME = 255
MAX_HREF = 1024
# Deletions remembered per collection for sync-collection; older tokens are refused (RFC 6578 §3.2:
# the client then starts again with an empty token).
MAX_TOMBSTONES = 10_000


@dataclass(frozen=True, slots=True)
class DavLimits:
    max_item_size: int = 1024**2  # octets of one calendar object or vCard
    max_collection_items: int = 100_000
    max_collections: int = 1_000


@dataclass(frozen=True, slots=True)
class DavCollection:
    id: int
    name: str
    uid: str  # random; also in sync tokens, so a collection made again never takes an old token
    kind: str  # VCALENDAR, VADDRESSBOOK or "" (plain WebDAV collection)
    props: Mapping[str, str]
    sync_token: int
    sync_floor: int
    modified: datetime


@dataclass(frozen=True, slots=True)
class NewItem:
    """What the DAV layer hands over for one resource: its text and what it was indexed by."""

    href: str
    uid: str
    etag: str
    name: str  # VCALENDAR or VCARD
    component: str  # VEVENT, VTODO, VJOURNAL, VCARD...
    tr_start: int  # enclosing time range, UTC seconds (recurrences included)
    tr_end: int
    body: str
    card_values: tuple[tuple[str, str], ...] = field(default=())  # (PROPERTY, case-folded value)


@dataclass(frozen=True, slots=True)
class DavItem:
    href: str
    uid: str
    etag: str
    name: str
    component: str
    tr_start: int
    tr_end: int
    size: int
    sync_token: int
    modified: datetime
    body: str


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _check_collection_name(name: str) -> str:
    if not name or "/" in name or name in (".", "..") or len(name.encode()) > MAX_COLLECTION_NAME:
        raise DavNotFound(f"invalid collection name {name!r}")
    return name


def _check_href(href: str) -> str:
    if not href or "/" in href or href in (".", "..") or len(href.encode()) > MAX_HREF:
        raise DavNotFound(f"invalid resource name {href!r}")
    return href


_ITEM_COLUMNS = "href, uid, etag, name, component, tr_start, tr_end, size, sync_token, modified, body"


def _item(row: tuple[Any, ...]) -> DavItem:
    return DavItem(
        row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8], datetime.fromisoformat(row[9]), row[10]
    )


class DavStore:
    """The DAV part of a mailbox: its calendars and address books on the mailbox's one connection."""

    def __init__(self, db: MailboxDB) -> None:
        self._db = db
        self._conn = db.conn

    # ---- transactions ----------------------------------------------------------------------------
    def dav_transaction(self) -> AbstractContextManager[Events]:
        """One write transaction around a whole DAV request: checks (If-Match) and writes are atomic,
        and a failure anywhere rolls everything back. Calls inside nest as savepoints."""
        return self._db.write()

    # ---- collections -----------------------------------------------------------------------------
    _COLLECTION_COLUMNS = "id, name, uid, kind, props, sync_token, sync_floor, modified"

    @staticmethod
    def _collection(row: tuple[Any, ...]) -> DavCollection:
        return DavCollection(
            row[0], row[1], row[2], row[3], json.loads(row[4]), row[5], row[6], datetime.fromisoformat(row[7])
        )

    def _collection_row(self, name: str) -> DavCollection:
        row = self._conn.execute(
            f"SELECT {self._COLLECTION_COLUMNS} FROM dav_collections WHERE name = ?", (name,)
        ).fetchone()
        if row is None:
            raise DavNotFound(f"collection {name!r} does not exist")
        return self._collection(row)

    def dav_collections(self) -> list[DavCollection]:
        with self._db.read() as db:
            rows = db.execute(f"SELECT {self._COLLECTION_COLUMNS} FROM dav_collections ORDER BY name").fetchall()
        return [self._collection(r) for r in rows]

    def dav_collection(self, name: str) -> DavCollection:
        with self._db.read():
            return self._collection_row(name)

    def dav_find_collection(self, name: str) -> DavCollection | None:
        try:
            return self.dav_collection(name)
        except DavNotFound:
            return None

    def dav_create_collection(
        self,
        name: str,
        kind: str,
        props: Mapping[str, str] | None = None,
        items: Iterable[NewItem] | None = None,
        *,
        replace: bool = False,
        limits: DavLimits | None = None,
    ) -> DavCollection:
        """Make a collection (MKCOL, MKCALENDAR, or a PUT of a whole calendar with ``items``).

        With ``replace`` an existing collection of that name is deleted first (its sync tokens die
        with it); otherwise it is ``DavCollectionExists``.
        """
        _check_collection_name(name)
        if kind not in KINDS:
            raise DavConflict(f"unsupported collection type {kind!r}")
        limits = limits or DavLimits()
        with self._db.write() as events:
            existing = self._conn.execute("SELECT id FROM dav_collections WHERE name = ?", (name,)).fetchone()
            if existing is not None:
                if not replace:
                    raise DavCollectionExists(f"collection {name!r} exists already")
                self._conn.execute("DELETE FROM dav_collections WHERE id = ?", (existing[0],))
            count = self._conn.execute("SELECT count(*) FROM dav_collections").fetchone()[0]
            if count >= limits.max_collections:
                raise DavLimitExceeded(f"at most {limits.max_collections} collections per account")
            uid = secrets.token_hex(8)
            cur = self._conn.execute(
                "INSERT INTO dav_collections (name, uid, kind, props, modified) VALUES (?, ?, ?, ?, ?)",
                (name, uid, kind, json.dumps(dict(props or {}), sort_keys=True), _now()),
            )
            collection = self._collection_row(name)
            assert collection.id == cur.lastrowid
            token = self._bump(collection)
            for item in items or ():
                self._put_locked(collection, item, token, limits)
            events.append(ev.CollectionsChanged(self._db.mailbox_id, collection=uid, sync_token=token))
        return self.dav_collection(name)

    def dav_set_props(self, name: str, props: Mapping[str, str]) -> DavCollection:
        """Replace the collection's properties (PROPPATCH); the collection's tag changes with them."""
        with self._db.write() as events:
            collection = self._collection_row(name)
            self._conn.execute(
                "UPDATE dav_collections SET props = ? WHERE id = ?",
                (json.dumps(dict(props), sort_keys=True), collection.id),
            )
            token = self._bump(collection)
            events.append(ev.CollectionsChanged(self._db.mailbox_id, collection=collection.uid, sync_token=token))
        return self.dav_collection(name)

    def dav_delete_collection(self, name: str) -> None:
        with self._db.write() as events:
            collection = self._collection_row(name)
            self._conn.execute("DELETE FROM dav_collections WHERE id = ?", (collection.id,))
            events.append(
                ev.CollectionsChanged(
                    self._db.mailbox_id, collection=collection.uid, sync_token=collection.sync_token + 1
                )
            )

    def dav_ensure_defaults(self, defaults: Iterable[tuple[str, str, Mapping[str, str]]]) -> bool:
        """Create the default calendar and address book once, at first use; never again (a user who
        deleted them meant it). Returns whether they were made now."""
        with self._db.read():
            if self._db.meta("dav_initialized"):
                return False
        with self._db.write() as events:
            if self._db.meta("dav_initialized"):
                return False
            for name, kind, props in defaults:
                if self._conn.execute("SELECT 1 FROM dav_collections WHERE name = ?", (name,)).fetchone():
                    continue
                uid = secrets.token_hex(8)
                self._conn.execute(
                    "INSERT INTO dav_collections (name, uid, kind, props, sync_token, modified) VALUES (?, ?, ?, ?, 1, ?)",
                    (name, uid, kind, json.dumps(dict(props), sort_keys=True), _now()),
                )
                events.append(ev.CollectionsChanged(self._db.mailbox_id, collection=uid, sync_token=1))
            self._db.set_meta("dav_initialized", 1)
        return True

    def _bump(self, collection: DavCollection) -> int:
        row = self._conn.execute(
            "UPDATE dav_collections SET sync_token = sync_token + 1, modified = ? WHERE id = ? RETURNING sync_token",
            (_now(), collection.id),
        ).fetchone()
        return int(row[0])

    # ---- items: reading --------------------------------------------------------------------------
    def dav_items(self, name: str) -> list[DavItem]:
        with self._db.read() as db:
            collection = self._collection_row(name)
            rows = db.execute(
                f"SELECT {_ITEM_COLUMNS} FROM dav_items WHERE collection_id = ? ORDER BY href", (collection.id,)
            ).fetchall()
        return [_item(r) for r in rows]

    def dav_item_heads(self, name: str) -> list[DavItem]:
        """Every item without its text (``body`` is empty): what a PROPFIND of the members needs."""
        with self._db.read() as db:
            collection = self._collection_row(name)
            rows = db.execute(
                "SELECT href, uid, etag, name, component, tr_start, tr_end, size, sync_token, modified, '' "
                "FROM dav_items WHERE collection_id = ? ORDER BY href",
                (collection.id,),
            ).fetchall()
        return [_item(r) for r in rows]

    def dav_get_items(self, name: str, hrefs: Iterable[str]) -> dict[str, DavItem]:
        wanted = sorted(set(hrefs))
        found: dict[str, DavItem] = {}
        with self._db.read() as db:
            collection = self._collection_row(name)
            for chunk in chunks(wanted, 500):
                marks = ",".join("?" * len(chunk))
                for row in db.execute(
                    f"SELECT {_ITEM_COLUMNS} FROM dav_items WHERE collection_id = ? AND href IN ({marks})",
                    [collection.id, *chunk],
                ):
                    found[row[0]] = _item(row)
        return found

    def dav_get_item(self, name: str, href: str) -> DavItem | None:
        return self.dav_get_items(name, [href]).get(href)

    def dav_items_in_range(self, name: str, component: str | None, start: int, end: int) -> list[DavItem]:
        """Items whose enclosing time range overlaps [start, end) (RFC 4791 §9.9), from the index."""
        with self._db.read() as db:
            collection = self._collection_row(name)
            sql = f"SELECT {_ITEM_COLUMNS} FROM dav_items WHERE collection_id = ? AND tr_start < ? AND tr_end > ?"
            params: list[Any] = [collection.id, end, start]
            if component is not None:
                sql += " AND component = ?"
                params.append(component)
            rows = db.execute(sql + " ORDER BY href", params).fetchall()
        return [_item(r) for r in rows]

    def dav_card_hrefs(self, name: str, prop: str, needle: str) -> set[str]:
        """hrefs of vCards with a ``prop`` value containing ``needle`` (both case-folded by the caller).
        A superset test for every text-match collation and match type (RFC 6352 §10.5.4)."""
        with self._db.read() as db:
            collection = self._collection_row(name)
            rows = db.execute(
                "SELECT DISTINCT i.href FROM dav_card_values v JOIN dav_items i ON i.id = v.item_id "
                "WHERE i.collection_id = ? AND v.prop = ? AND instr(v.value, ?) > 0",
                (collection.id, prop, needle),
            ).fetchall()
        return {r[0] for r in rows}

    def dav_card_hrefs_with(self, name: str, prop: str) -> set[str]:
        """hrefs of vCards that have ``prop`` at all (is-defined tests)."""
        with self._db.read() as db:
            collection = self._collection_row(name)
            rows = db.execute(
                "SELECT DISTINCT i.href FROM dav_card_values v JOIN dav_items i ON i.id = v.item_id "
                "WHERE i.collection_id = ? AND v.prop = ?",
                (collection.id, prop),
            ).fetchall()
        return {r[0] for r in rows}

    def dav_has_uid(self, name: str, uid: str) -> bool:
        with self._db.read() as db:
            collection = self._collection_row(name)
            return bool(
                db.execute(
                    "SELECT 1 FROM dav_items WHERE collection_id = ? AND uid = ? LIMIT 1", (collection.id, uid)
                ).fetchone()
            )

    def dav_changes(self, name: str, since: int | None) -> tuple[int, list[str]]:
        """(current token, hrefs changed or deleted after ``since``); every href when ``since`` is None.
        Raises ``InvalidSyncToken`` for a token this collection cannot answer (RFC 6578 §3.2)."""
        with self._db.read() as db:
            collection = self._collection_row(name)
            if since is None:
                rows = db.execute(
                    "SELECT href FROM dav_items WHERE collection_id = ? ORDER BY href", (collection.id,)
                ).fetchall()
                return collection.sync_token, [r[0] for r in rows]
            if since < collection.sync_floor or since > collection.sync_token:
                raise InvalidSyncToken(f"sync token {since} is not valid for this collection")
            rows = db.execute(
                "SELECT href FROM dav_items WHERE collection_id = ? AND sync_token > ? "
                "UNION SELECT href FROM dav_tombstones WHERE collection_id = ? AND sync_token > ? ORDER BY 1",
                (collection.id, since, collection.id, since),
            ).fetchall()
        return collection.sync_token, [r[0] for r in rows]

    # ---- items: writing --------------------------------------------------------------------------
    def dav_put_item(
        self,
        name: str,
        item: NewItem,
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
        limits: DavLimits | None = None,
    ) -> tuple[DavItem, DavItem | None]:
        """Create or replace one resource; returns (stored item, replaced item or None).

        ``if_match``: the ETag the client last saw ("*": any existing); ``if_none_match``: create only.
        Both are checked inside the write transaction (RFC 9110 §13.1), so concurrent editors cannot
        both win. Raises ``DavPreconditionFailed``, ``DavConflict`` (UID used by another resource,
        RFC 4791 §5.3.2.1 no-uid-conflict), ``ItemTooLarge``, ``DavLimitExceeded``, ``QuotaExceeded``.
        """
        limits = limits or DavLimits()
        with self._db.write() as events:
            collection = self._collection_row(name)
            old = self._item_row(collection.id, item.href)
            if if_none_match and old is not None:
                raise DavPreconditionFailed(f"{item.href} exists already")
            if if_match is not None and (old is None or (if_match not in ("*", old.etag))):
                raise DavPreconditionFailed(f"{item.href} has changed (ETag does not match)")
            token = self._bump(collection)
            stored = self._put_locked(collection, item, token, limits, old=old)
            events.append(ev.CollectionsChanged(self._db.mailbox_id, collection=collection.uid, sync_token=token))
        return stored, old

    def _item_row(self, collection_id: int, href: str) -> DavItem | None:
        row = self._conn.execute(
            f"SELECT {_ITEM_COLUMNS} FROM dav_items WHERE collection_id = ? AND href = ?", (collection_id, href)
        ).fetchone()
        return _item(row) if row else None

    def _put_locked(
        self, collection: DavCollection, item: NewItem, token: int, limits: DavLimits, *, old: DavItem | None = None
    ) -> DavItem:
        _check_href(item.href)
        size = len(item.body.encode())
        if size > limits.max_item_size:
            raise ItemTooLarge(f"{item.href} is {size} octets; the limit is {limits.max_item_size}")
        if old is None:
            old = self._item_row(collection.id, item.href)
        clash = self._conn.execute(
            "SELECT href FROM dav_items WHERE collection_id = ? AND uid = ? AND href != ? LIMIT 1",
            (collection.id, item.uid, item.href),
        ).fetchone()
        if clash is not None:
            raise DavConflict(f"UID {item.uid!r} is already used by {clash[0]}")
        if old is None:
            count = self._conn.execute(
                "SELECT count(*) FROM dav_items WHERE collection_id = ?", (collection.id,)
            ).fetchone()[0]
            if count >= limits.max_collection_items:
                raise DavLimitExceeded(f"the collection is full ({limits.max_collection_items} resources)")
        growth = size - (old.size if old else 0)
        if growth > 0:
            self._db.check_quota(growth)
        modified = _now()
        if old is not None:
            row = self._conn.execute(
                "UPDATE dav_items SET uid = ?, etag = ?, name = ?, component = ?, tr_start = ?, tr_end = ?, size = ?, "
                "sync_token = ?, modified = ?, body = ? WHERE collection_id = ? AND href = ? RETURNING id",
                (
                    item.uid,
                    item.etag,
                    item.name,
                    item.component,
                    item.tr_start,
                    item.tr_end,
                    size,
                    token,
                    modified,
                    item.body,
                    collection.id,
                    item.href,
                ),
            ).fetchone()
            self._conn.execute("DELETE FROM dav_card_values WHERE item_id = ?", (row[0],))
        else:
            row = self._conn.execute(
                "INSERT INTO dav_items (collection_id, href, uid, etag, name, component, tr_start, tr_end, size, "
                "sync_token, modified, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    collection.id,
                    item.href,
                    item.uid,
                    item.etag,
                    item.name,
                    item.component,
                    item.tr_start,
                    item.tr_end,
                    size,
                    token,
                    modified,
                    item.body,
                ),
            ).fetchone()
            self._conn.execute(
                "DELETE FROM dav_tombstones WHERE collection_id = ? AND href = ?", (collection.id, item.href)
            )
        if item.card_values:
            self._conn.executemany(
                "INSERT INTO dav_card_values (item_id, prop, value) VALUES (?, ?, ?)",
                [(row[0], prop, value) for prop, value in item.card_values],
            )
        return DavItem(
            item.href,
            item.uid,
            item.etag,
            item.name,
            item.component,
            item.tr_start,
            item.tr_end,
            size,
            token,
            datetime.fromisoformat(modified),
            item.body,
        )

    def dav_delete_item(self, name: str, href: str, *, if_match: str | None = None) -> DavItem:
        with self._db.write() as events:
            collection = self._collection_row(name)
            old = self._item_row(collection.id, href)
            if old is None:
                raise DavNotFound(f"{href} does not exist")
            if if_match is not None and if_match not in ("*", old.etag):
                raise DavPreconditionFailed(f"{href} has changed (ETag does not match)")
            token = self._bump(collection)
            self._remove_locked(collection, href, token)
            events.append(ev.CollectionsChanged(self._db.mailbox_id, collection=collection.uid, sync_token=token))
        return old

    def _remove_locked(self, collection: DavCollection, href: str, token: int) -> None:
        self._conn.execute("DELETE FROM dav_items WHERE collection_id = ? AND href = ?", (collection.id, href))
        self._conn.execute(
            "INSERT OR REPLACE INTO dav_tombstones (collection_id, href, sync_token) VALUES (?, ?, ?)",
            (collection.id, href, token),
        )
        count = self._conn.execute(
            "SELECT count(*) FROM dav_tombstones WHERE collection_id = ?", (collection.id,)
        ).fetchone()[0]
        if count > MAX_TOMBSTONES:
            # Forget the oldest half; tokens from before them can no longer be answered.
            floor = self._conn.execute(
                "SELECT sync_token FROM dav_tombstones WHERE collection_id = ? ORDER BY sync_token LIMIT 1 OFFSET ?",
                (collection.id, count // 2),
            ).fetchone()[0]
            self._conn.execute(
                "DELETE FROM dav_tombstones WHERE collection_id = ? AND sync_token < ?", (collection.id, floor)
            )
            self._conn.execute("UPDATE dav_collections SET sync_floor = ? WHERE id = ?", (floor - 1, collection.id))

    def dav_move_item(
        self, source: str, href: str, target: str, target_href: str, *, limits: DavLimits | None = None
    ) -> DavItem:
        """MOVE (RFC 4918 §9.9) of one resource, replacing any resource at the target."""
        _check_href(target_href)
        limits = limits or DavLimits()
        with self._db.write() as events:
            src = self._collection_row(source)
            dst = self._collection_row(target)
            old = self._item_row(src.id, href)
            if old is None:
                raise DavNotFound(f"{href} does not exist")
            values = tuple(
                (r[0], r[1])
                for r in self._conn.execute(
                    "SELECT v.prop, v.value FROM dav_card_values v WHERE v.item_id IN "
                    "(SELECT id FROM dav_items WHERE collection_id = ? AND href = ?)",
                    (src.id, href),
                )
            )
            src_token = self._bump(src)
            self._remove_locked(src, href, src_token)
            dst_token = self._bump(dst) if dst.id != src.id else src_token
            moved = self._put_locked(
                dst,
                NewItem(
                    target_href,
                    old.uid,
                    old.etag,
                    old.name,
                    old.component,
                    old.tr_start,
                    old.tr_end,
                    old.body,
                    values,
                ),
                dst_token,
                limits,
            )
            events.append(ev.CollectionsChanged(self._db.mailbox_id, collection=src.uid, sync_token=src_token))
            if dst.id != src.id:
                events.append(ev.CollectionsChanged(self._db.mailbox_id, collection=dst.uid, sync_token=dst_token))
        return moved
