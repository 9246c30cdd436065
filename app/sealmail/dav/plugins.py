"""Radicale plug-ins: authentication by alias password, owner-only rights, and storage inside the
alias's encrypted mailbox.

Radicale speaks WebDAV/CalDAV/CardDAV and parses iCalendar and vCard; these classes answer its
storage questions from ``sealmail.store.dav`` (no SQL here, and no file is ever written: Radicale's
own filesystem storage and its ``.Radicale.cache`` are never loaded).

Paths are ``/<address>/<collection>/<resource>``. Each request runs on one WSGI worker thread; the
authentication plug-in puts the signed-in account on that thread (``current``) and storage only ever
opens that account's mailbox, so even a rights mistake could not reach another alias's data.
"""

from __future__ import annotations

import contextlib
import posixpath
import re
import secrets
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any

from radicale import auth as radicale_auth
from radicale import item as radicale_item
from radicale import pathutils
from radicale import rights as radicale_rights
from radicale import storage as radicale_storage
from radicale.item import filter as radicale_filter
from radicale.xmlutils import make_clark

from sealmail.store.dav import DavCollection, DavItem, NewItem
from sealmail.store.errors import DavNotFound, InvalidSyncToken, StoreUnavailable

if TYPE_CHECKING:
    import xml.etree.ElementTree as ET

    from radicale import config as radicale_config

    from sealmail.dav.sessions import DavSessions, DavUser
    from sealmail.store.contract import MailboxOps as Mailbox

SYNC_PREFIX = "http://sealmail.invalid/ns/sync/"
_SYNC_TOKEN = re.compile(r"^http://sealmail\.invalid/ns/sync/([0-9a-f]{16})/([0-9]{1,18})$")
# vCard properties whose values are binary or huge: never worth a text-match index row.
_UNINDEXED = frozenset({"PHOTO", "LOGO", "SOUND", "KEY", "VERSION", "PRODID", "REV"})

_local = threading.local()


def current() -> DavUser | None:
    """The account signed in on this worker thread's request, if any."""
    return getattr(_local, "user", None)


def set_current(user: DavUser | None) -> None:
    _local.user = user


def take_unavailable() -> StoreUnavailable | None:
    """The ``StoreUnavailable`` that stopped this thread's sign-in, if any (and forget it)."""
    exc: StoreUnavailable | None = getattr(_local, "unavailable", None)
    _local.unavailable = None
    return exc


def _http_date(value: Any) -> str:
    return format_datetime(value, usegmt=True)


# ---- authentication -----------------------------------------------------------------------------
class Auth(radicale_auth.BaseAuth):
    """Basic credentials are an alias address and its password; success unlocks the mailbox."""

    def __init__(self, configuration: radicale_config.Configuration, sessions: DavSessions) -> None:
        super().__init__(configuration)
        self.sessions = sessions

    def _login_ext(self, login: str, password: str, context: radicale_auth.AuthContext) -> str:
        previous = current()
        if previous is not None:  # one sign-in per request
            return previous.address
        try:
            user = self.sessions.login(login, password, context.remote_addr or "unknown")
        except StoreUnavailable as exc:
            # Radicale answers 500 to an exception here; the application answers 503 instead.
            _local.unavailable = exc
            return ""
        if user is None:
            return ""
        set_current(user)
        return user.address


# ---- rights ---------------------------------------------------------------------------------------
class Rights(radicale_rights.BaseRights):
    """Owner only: the principal ``/<address>/`` and the collections directly in it (calendars,
    address books, and plain WebDAV collections, which hold no resources), nothing else."""

    def authorization(self, user: str, user_groups: set[str], path: str) -> str:
        signed_in = current()
        if not user or signed_in is None or user != signed_in.address:
            return ""
        sane = pathutils.strip_path(path)
        if not sane:
            return "R"
        parts = sane.split("/")
        if parts[0] != user:
            return ""
        if len(parts) == 1:
            return "RW"
        if len(parts) == 2:
            return "RWrw"
        return ""


# ---- storage ----------------------------------------------------------------------------------------
def _split(path: str) -> list[str]:
    sane = pathutils.strip_path(pathutils.sanitize_path(path))
    return sane.split("/") if sane else []


class _Root(radicale_storage.BaseCollection):
    """``/``: lists the signed-in principal only."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    @property
    def path(self) -> str:
        return ""

    @property
    def etag(self) -> str:
        return '"root"'

    def get_meta(self, key: str | None = None) -> Any:
        return None if key is not None else {}

    def set_meta(self, props: Mapping[str, str]) -> None:
        raise DavNotFound("the root has no properties to change")

    @property
    def last_modified(self) -> str:
        return _http_date_now()

    def get_all(self) -> Iterable[radicale_item.Item]:
        return ()

    def get_multi(self, hrefs: Iterable[str]) -> Iterable[tuple[str, radicale_item.Item | None]]:
        return ((href, None) for href in hrefs)


class _Principal(_Root):
    """``/<address>/``: the calendar-home-set and addressbook-home-set of its alias."""

    def __init__(self, storage: Storage, user: DavUser) -> None:
        super().__init__(storage)
        self._user = user

    @property
    def path(self) -> str:
        return self._user.address

    @property
    def etag(self) -> str:
        tokens = ",".join(f"{c.uid}:{c.sync_token}" for c in self._user.mailbox.dav_collections())
        return f'"{radicale_item.get_etag(tokens).strip(chr(34))[:32]}"'

    def get_meta(self, key: str | None = None) -> Any:
        meta = {"D:displayname": self._user.address}
        return meta.get(key) if key is not None else meta


def _http_date_now() -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())


class Collection(radicale_storage.BaseCollection):
    """A calendar, an address book or a plain WebDAV collection of one alias."""

    def __init__(self, storage: Storage, user: DavUser, row: DavCollection) -> None:
        self._storage = storage
        self._user = user
        self._row = row
        self._path = f"{user.address}/{row.name}"

    # ---- properties ----------------------------------------------------------------------------
    @property
    def path(self) -> str:
        return self._path

    @property
    def name(self) -> str:
        return self._row.name

    @property
    def mailbox(self) -> Mailbox:
        return self._user.mailbox

    @property
    def etag(self) -> str:
        return f'"{self._row.uid}-{self._row.sync_token}"'

    @property
    def tag(self) -> str:
        return self._row.kind

    def get_meta(self, key: str | None = None) -> Any:
        meta = dict(self._row.props)
        if self._row.kind:
            meta["tag"] = self._row.kind
        return meta.get(key) if key is not None else meta

    def set_meta(self, props: Mapping[str, str]) -> None:
        props = dict(props)
        kind = props.pop("tag", "")
        if kind != self._row.kind:
            raise ValueError("the type of an existing collection cannot change")
        self._row = self.mailbox.dav_set_props(self._row.name, props)

    @property
    def last_modified(self) -> str:
        return _http_date(self._row.modified)

    # ---- reading ---------------------------------------------------------------------------------
    def _item(self, row: DavItem) -> radicale_item.Item:
        return radicale_item.Item(
            collection_path=self._path,
            collection=self,
            href=row.href,
            last_modified=_http_date(row.modified),
            text=row.body,
            etag=row.etag,
            uid=row.uid,
            name=row.name,
            component_name=row.component,
            time_range=(row.tr_start, row.tr_end),
        )

    def sync(self, old_token: str = "") -> tuple[str, Iterable[str]]:
        since: int | None = None
        if old_token:
            match = _SYNC_TOKEN.match(old_token)
            if match is None or match.group(1) != self._row.uid:
                raise ValueError("this sync token belongs to no version of this collection")
            since = int(match.group(2))
        try:
            token, hrefs = self.mailbox.dav_changes(self._row.name, since)
        except InvalidSyncToken as exc:
            raise ValueError(str(exc)) from None
        return f"{SYNC_PREFIX}{self._row.uid}/{token}", hrefs

    def get_multi(self, hrefs: Iterable[str]) -> Iterable[tuple[str, radicale_item.Item | None]]:
        wanted = list(dict.fromkeys(hrefs))
        found = self.mailbox.dav_get_items(self._row.name, wanted)
        for href in wanted:
            row = found.get(href)
            yield href, (self._item(row) if row is not None else None)

    def get_all(self) -> Iterable[radicale_item.Item]:
        return [self._item(row) for row in self.mailbox.dav_items(self._row.name)]

    def get_filtered(self, filters: Iterable[ET.Element]) -> Iterable[tuple[radicale_item.Item, bool]]:
        """Answer calendar-query and addressbook-query from the indexes; Radicale checks the exact
        filter only on candidates the index cannot decide (RFC 4791 §7.8, RFC 6352 §8.6)."""
        filters = list(filters)
        if self.tag == "VCALENDAR":
            tag, start, end, simple = radicale_filter.simplify_prefilters(filters, self.tag)
            for row in self.mailbox.dav_items_in_range(self._row.name, tag, start, end):
                # A resource entirely inside the range matches a simple filter without parsing it;
                # a recurring one that straddles the range needs its instances looked at.
                exact = simple and (start <= row.tr_start or row.tr_end <= end)
                yield self._item(row), exact
        elif self.tag == "VADDRESSBOOK":
            candidates = self._card_candidates(filters)
            rows = (
                self.mailbox.dav_items(self._row.name)
                if candidates is None
                else self.mailbox.dav_get_items(self._row.name, candidates).values()
            )
            for row in rows:
                yield self._item(row), False

    def _card_candidates(self, filters: list[ET.Element]) -> set[str] | None:
        """A superset of the vCards that can match, or None when the index cannot narrow it."""
        result: set[str] | None = None
        for filter_ in filters:
            test = filter_.get("test", "anyof")
            sets = [self._prop_candidates(p) for p in filter_ if p.tag == make_clark("CR:prop-filter")]
            if not sets:
                continue
            if test == "allof":
                known = [s for s in sets if s is not None]
                narrowed = set.intersection(*known) if known else None
            else:
                narrowed = None if any(s is None for s in sets) else set().union(*sets)  # type: ignore[arg-type]
            if narrowed is not None:
                result = narrowed if result is None else result & narrowed
        return result

    def _prop_candidates(self, prop_filter: ET.Element) -> set[str] | None:
        prop = prop_filter.get("name", "").upper()
        if not prop or prop in _UNINDEXED:
            return None
        children = list(prop_filter)
        if any(c.tag == make_clark("CR:is-not-defined") for c in children):
            return None
        if not children:
            return self.mailbox.dav_card_hrefs_with(self._row.name, prop)
        sets = []
        for child in children:
            negated = child.get("negate-condition", "no") == "yes"
            if child.tag == make_clark("CR:text-match") and not negated:
                needle = "".join(child.itertext()).lower()
                sets.append(self.mailbox.dav_card_hrefs(self._row.name, prop, needle))
            else:  # the property must exist for any other test to hold
                sets.append(self.mailbox.dav_card_hrefs_with(self._row.name, prop))
        if prop_filter.get("test", "anyof") == "allof":
            return set.intersection(*sets)
        return set().union(*sets)

    def has_uid(self, uid: str) -> bool:
        return self.mailbox.dav_has_uid(self._row.name, uid)

    # ---- writing ---------------------------------------------------------------------------------
    def upload(self, href: str, item: radicale_item.Item) -> tuple[radicale_item.Item, radicale_item.Item | None]:
        stored, old = self.mailbox.dav_put_item(self._row.name, new_item(href, item), limits=self._user.limits)
        self._row = self.mailbox.dav_collection(self._row.name)
        return self._item(stored), (self._item(old) if old is not None else None)

    def delete(self, href: str | None = None) -> None:
        if href is None:
            self.mailbox.dav_delete_collection(self._row.name)
        else:
            self.mailbox.dav_delete_item(self._row.name, href)
            self._row = self.mailbox.dav_collection(self._row.name)


def new_item(href: str, item: radicale_item.Item) -> NewItem:
    """What the store keeps of a parsed resource: its text and the values queries are answered from."""
    start, end = item.time_range
    values: tuple[tuple[str, str], ...] = ()
    if item.name == "VCARD":
        values = tuple(_card_values(item))
    return NewItem(
        href=href,
        uid=item.uid,
        etag=item.etag,
        name=item.name,
        component=item.component_name,
        tr_start=start,
        tr_end=end,
        body=item.serialize(),
        card_values=values,
    )


def _card_values(item: radicale_item.Item) -> Iterator[tuple[str, str]]:
    seen = set()
    for name, children in item.vobject_item.contents.items():
        prop = name.upper()
        if prop in _UNINDEXED:
            continue
        for child in children:
            values = child.value if isinstance(child.value, list) else [child.value]
            for value in values:
                text = (value if isinstance(value, str) else str(value)).lower()
                if (prop, text) not in seen:
                    seen.add((prop, text))
                    yield prop, text


class Storage(radicale_storage.BaseStorage):
    _is_collision_free = True
    _supports_unicode = True
    _supports_trailing_whitespace = False
    _supports_problematic_chars = False

    def __init__(self, configuration: radicale_config.Configuration, sessions: DavSessions) -> None:
        super().__init__(configuration)
        self.sessions = sessions

    def discover(
        self,
        path: str,
        depth: str = "0",
        child_context_manager: Any = None,
        user_groups: set[str] | None = None,
    ) -> Iterable[Any]:
        user = current()
        parts = _split(path)
        if not parts:
            yield _Root(self)
            if depth != "0" and user is not None:
                yield _Principal(self, user)
            return
        if user is None or parts[0] != user.address or len(parts) > 3:
            return
        if len(parts) == 1:
            yield _Principal(self, user)
            if depth != "0":
                for row in user.mailbox.dav_collections():
                    yield Collection(self, user, row)
            return
        found = user.mailbox.dav_find_collection(parts[1])
        if found is None:
            return
        collection = Collection(self, user, found)
        if len(parts) == 2:
            yield collection
            if depth != "0":
                yield from collection.get_all()
            return
        item = user.mailbox.dav_get_item(found.name, parts[2])
        if item is not None:
            yield collection._item(item)

    def _owned(self, href: str) -> tuple[DavUser, list[str]]:
        user = current()
        parts = _split(href)
        if user is None or not parts or parts[0] != user.address:
            raise PermissionError("not your collection")
        return user, parts

    def create_collection(
        self,
        href: str,
        items: Iterable[radicale_item.Item] | None = None,
        props: Mapping[str, str] | None = None,
    ) -> tuple[Any, dict[str, radicale_item.Item], list[str]]:
        user, parts = self._owned(href)
        if len(parts) == 1:  # the principal always exists
            return _Principal(self, user), {}, []
        if len(parts) != 2:
            raise ValueError("collections live directly under the principal")
        name = parts[1]
        props = dict(props or {})
        kind = props.pop("tag", "")
        mailbox = user.mailbox
        existing = mailbox.dav_find_collection(name)
        if existing is not None and items is None and not props and not kind:
            return Collection(self, user, existing), {}, []
        replaced: dict[str, radicale_item.Item] = {}
        if existing is not None:
            old = Collection(self, user, existing)
            replaced = {i.href: i for i in old.get_all() if i.href}
        new_items = [new_item(_href_for(item, kind), item) for item in items or ()]
        row = mailbox.dav_create_collection(
            name, kind, props, new_items, replace=existing is not None, limits=user.limits
        )
        return Collection(self, user, row), replaced, [i.href for i in new_items]

    def move(self, item: radicale_item.Item, to_collection: radicale_storage.BaseCollection, to_href: str) -> None:
        user = current()
        if user is None or not isinstance(to_collection, Collection) or not isinstance(item.collection, Collection):
            raise PermissionError("not your collection")
        assert item.href is not None
        user.mailbox.dav_move_item(item.collection.name, item.href, to_collection.name, to_href, limits=user.limits)

    @contextlib.contextmanager
    def acquire_lock(self, mode: str, user: str = "", *args: Any, **kwargs: Any) -> Iterator[None]:
        """Writes run inside one mailbox transaction: Radicale's precondition checks (If-Match) and its
        writes are atomic, and anything failing half-way leaves nothing written."""
        signed_in = current()
        if mode == "w" and signed_in is not None:
            with signed_in.mailbox.dav_transaction():
                yield
        else:
            yield

    def verify(self) -> bool:
        return True


def _href_for(item: radicale_item.Item, kind: str) -> str:
    suffix = ".vcf" if kind == "VADDRESSBOOK" else ".ics"
    uid = item.uid
    if uid and re.fullmatch(r"[A-Za-z0-9@._+=-]{1,200}", uid) and posixpath.basename(uid) == uid:
        return uid + suffix
    return secrets.token_hex(16) + suffix
