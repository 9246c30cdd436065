"""The folder commands: LIST/LSUB, STATUS, CREATE, DELETE, RENAME, (UN)SUBSCRIBE, NAMESPACE, quotas.

Each is a function of the session and its parsed command (``session`` dispatches to them). The
store holds the folders; here are the IMAP views of them: LIST's attributes and wildcards (RFC 9051
§6.3.9, RFC 5258 LIST-EXTENDED, RFC 5819 LIST-STATUS, RFC 6154 SPECIAL-USE), STATUS items, and the
one quota root "" (RFC 9208).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from sealmail.imap import parser as p
from sealmail.imap import wire
from sealmail.imap.replies import Reply, no
from sealmail.imap.states import AUTHENTICATED
from sealmail.store.mailbox import DELIMITER, INBOX, SPECIAL_USES, Folder, FolderStatus

if TYPE_CHECKING:
    from sealmail.imap.session import Session


async def cmd_namespace(s: Session, c: p.Command) -> None:
    # RFC 2342: one personal namespace, no others
    s.untagged('NAMESPACE (("" "/")) NIL NIL')


async def cmd_create(s: Session, c: p.Create) -> Reply:
    assert s.mbox is not None
    name = c.mailbox.rstrip(DELIMITER)  # RFC 9051 §6.3.4: a trailing delimiter only declares intent
    if not name:
        raise no("Empty mailbox name", "CANNOT")
    if name.upper() == INBOX:
        raise no("INBOX exists already", "ALREADYEXISTS")
    special = None
    if c.special_use is not None:
        special = next((u for u in SPECIAL_USES if u.lower() == c.special_use.lower()), None)
        if special is None:
            raise no(f"Unknown special use {c.special_use[:20]}", "USEATTR")
    mailbox = s.mbox.mailbox

    def make() -> Folder:
        before = {f.name for f in mailbox.list_folders()}
        subscribed = set(mailbox.subscriptions())
        folder = mailbox.create_folder(name, special)
        # RFC 9051 §6.3.4: CREATE does not subscribe (the store subscribes new folders by default),
        # nor the parents it had to make; a name subscribed before it existed stays so (§6.3.9)
        for made in {folder.name, *(f.name for f in mailbox.list_folders())} - before - subscribed:
            mailbox.set_subscribed(made, False)
        return folder

    folder = await s.mbox.run(make)
    return "OK", "CREATE completed", f"MAILBOXID ({folder.object_id})"  # RFC 8474 §4.1


async def cmd_delete(s: Session, c: p.MailboxCommand) -> None:
    assert s.mbox is not None
    if c.mailbox.upper() == INBOX:
        raise no("INBOX cannot be deleted", "CANNOT")
    await s.mbox.delete_folder(c.mailbox)
    if s.sel is not None and s.sel.name == canonical(c.mailbox):
        s.sel = None
        s.state = AUTHENTICATED


async def cmd_rename(s: Session, c: p.Rename) -> None:
    assert s.mbox is not None
    old, new = canonical(c.old), canonical(c.new.rstrip(DELIMITER))
    await s.mbox.rename_folder(old, new)
    sel = s.sel
    if sel is not None and old != INBOX:
        if sel.name == old:
            sel.name = new
        elif sel.name.startswith(old + DELIMITER):
            sel.name = new + sel.name[len(old) :]


async def cmd_subscribe(s: Session, c: p.MailboxCommand) -> None:
    assert s.mbox is not None
    await s.mbox.set_subscribed(c.mailbox, c.name == "SUBSCRIBE")


async def cmd_list(s: Session, c: p.ListCommand) -> None:
    assert s.mbox is not None
    if c.name == "LIST" and c.patterns == ("",) and not c.extended:
        # RFC 9051 §6.3.9: the hierarchy delimiter and root
        s.untagged('LIST (\\Noselect) "/" ""')
        return
    lsub = c.name == "LSUB"
    subscribed_only = lsub or "SUBSCRIBED" in c.select_opts
    mailbox = s.mbox.mailbox

    def load() -> tuple[list[Folder], list[str]]:
        return mailbox.list_folders(), mailbox.subscriptions() if subscribed_only else []

    folders, subscriptions = await s.mbox.run(load)
    by_name = {f.name: f for f in folders}
    # RFC 9051 §6.3.9, RFC 5258 §3: subscribed names whose mailbox no longer exists are listed too
    lost = [n for n in subscriptions if n not in by_name]
    names = sorted([*by_name, *lost])
    subscribed_names = {f.name for f in folders if f.subscribed} | set(lost)
    matchers = [pattern(c.reference + pat) for pat in c.patterns if c.reference + pat]
    show_subscribed = subscribed_only or "SUBSCRIBED" in c.return_opts
    special_only = "SPECIAL-USE" in c.select_opts
    rows: list[tuple[str, list[str], bytes]] = []
    seen: set[str] = set()
    for name in names:
        matched = any(m(name) for m in matchers)
        attrs: list[str] = []
        extra = b""
        subscribed_child = (
            subscribed_only
            and not lsub
            and "RECURSIVEMATCH" in c.select_opts
            and any(
                n in subscribed_names and not any(m(n) for m in matchers)
                for n in names
                if n.startswith(name + DELIMITER)
            )
        )
        if not matched:
            continue
        folder = by_name.get(name)
        if folder is None:
            if special_only:
                continue
            # RFC 5258 §3: \NonExistent (it implies \Noselect, which is therefore not repeated)
            rows.append((name, [] if lsub else ["\\Subscribed", "\\NonExistent"], b""))
            seen.add(name)
            continue
        if subscribed_only and not folder.subscribed and not subscribed_child:
            continue
        if subscribed_child:
            # RFC 5258 §3.5: subscribed descendants the patterns themselves do not match
            extra = b' ("CHILDINFO" ("SUBSCRIBED"))'
        if subscribed_only and not folder.subscribed:
            rows.append((name, ["\\HasChildren"] if "CHILDREN" in c.return_opts else [], extra))
            seen.add(name)
            continue
        if special_only and not folder.special_use:
            continue
        if folder.noselect:
            attrs.append("\\Noselect")
        if not lsub:
            has_children = any(n.startswith(name + DELIMITER) for n in by_name)
            attrs.append("\\HasChildren" if has_children else "\\HasNoChildren")
            if folder.special_use:
                attrs.append(folder.special_use)
        if show_subscribed and folder.subscribed and not lsub:
            attrs.append("\\Subscribed")
        rows.append((name, attrs, extra))
        seen.add(name)
    if lsub:
        # RFC 3501 §6.3.9: "%" stops at a level whose subscribed children lie deeper: shown \Noselect
        for name in names:
            if name not in subscribed_names:
                continue
            parts = name.split(DELIMITER)
            for i in range(1, len(parts)):
                parent = DELIMITER.join(parts[:i])
                if parent not in seen and any(m(parent) for m in matchers):
                    seen.add(parent)
                    rows.append((parent, ["\\Noselect"], b""))
        rows.sort(key=lambda r: r[0])
    statuses: dict[str, FolderStatus] = {}
    if c.status_items:
        wanted = [n for n, _, _ in rows if n in by_name and not by_name[n].noselect]

        def load_status() -> dict[str, FolderStatus]:
            return {n: mailbox.status(n) for n in wanted}

        statuses = await s.mbox.run(load_status)
    word = c.name.encode()
    for name, attrs, extra in rows:
        s.untagged(word + b" (" + " ".join(attrs).encode() + b') "/" ' + wire.mailbox(name, s.utf8) + extra)
        if name in statuses:
            status_response(s, name, statuses[name], c.status_items)


async def cmd_status(s: Session, c: p.Status) -> None:
    assert s.mbox is not None
    status = await s.mbox.status(c.mailbox)
    status_response(s, canonical(c.mailbox), status, c.items)


def status_response(s: Session, name: str, status: FolderStatus, items: Iterable[str]) -> None:
    values = {
        "MESSAGES": status.messages,
        "RECENT": status.recent,
        "UIDNEXT": status.uidnext,
        "UIDVALIDITY": status.uidvalidity,
        "UNSEEN": status.unseen,
        "DELETED": status.deleted,
        "SIZE": status.size,
        "HIGHESTMODSEQ": status.highestmodseq,
        "APPENDLIMIT": s.options.append_limit,
        "MAILBOXID": f"({status.object_id})",  # RFC 8474 §4.3
    }
    body = " ".join(f"{item} {values[item]}" for item in dict.fromkeys(items))
    s.untagged(b"STATUS " + wire.mailbox(name, s.utf8) + f" ({body})".encode())


async def cmd_getquotaroot(s: Session, c: p.MailboxCommand) -> None:
    assert s.mbox is not None
    await s.mbox.folder(c.mailbox)  # NONEXISTENT for an unknown mailbox
    s.untagged(b"QUOTAROOT " + wire.mailbox(canonical(c.mailbox), s.utf8) + b' ""')
    await quota_response(s)


async def cmd_getquota(s: Session, c: p.GetQuota) -> None:
    if c.root != "":
        raise no("No such quota root", "NONEXISTENT")
    await quota_response(s)


async def cmd_setquota(s: Session, c: p.SetQuota) -> None:
    raise no("Quotas are set by the administrator", "CANNOT")


async def quota_response(s: Session) -> None:
    # RFC 9208 §5.1: STORAGE in units of 1024 octets
    assert s.mbox is not None
    used = await s.mbox.usage()
    limit = s.mbox.mailbox.quota
    resources = "" if limit is None else f"STORAGE {(used + 1023) // 1024} {limit // 1024}"
    s.untagged(f'QUOTA "" ({resources})')


def canonical(name: str) -> str:
    parts = name.split(DELIMITER)
    if parts[0].upper() == INBOX:
        parts[0] = INBOX
    return DELIMITER.join(parts)


def pattern(pattern: str) -> Callable[[str], bool]:
    """LIST wildcards (RFC 9051 §6.3.9): "*" matches anything, "%" anything but the delimiter."""
    pattern = canonical(pattern) if pattern.upper().startswith(INBOX) else pattern
    regex = "".join(".*" if ch == "*" else "[^/]*" if ch == "%" else re.escape(ch) for ch in pattern)
    compiled = re.compile(regex + r"\Z", re.DOTALL)
    return lambda name: compiled.match(name) is not None
