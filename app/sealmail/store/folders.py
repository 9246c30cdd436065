"""The folder part of a mailbox: list, create, rename, delete, subscribe, STATUS (RFC 9051 §6.3)."""

from __future__ import annotations

from sealmail.store import events as ev
from sealmail.store.errors import FolderExists, FolderNotFound, InvalidFolderName
from sealmail.store.mailboxdb import MailboxDB, as_int
from sealmail.store.model import (
    DEFAULT_FOLDERS,
    DELIMITER,
    FOLDER_COLUMNS,
    INBOX,
    SPECIAL_USES,
    Folder,
    FolderRow,
    FolderStatus,
    folder_from_row,
    new_object_id,
    normalize_folder_name,
    parents,
)
from sealmail.store.rows import MessageRows


class Folders:
    def __init__(self, db: MailboxDB, rows: MessageRows) -> None:
        self._db = db
        self._rows = rows

    def ensure_defaults(self) -> None:
        """INBOX and the special-use folders (RFC 6154), made once when the mailbox is new."""
        with self._db.read() as db:
            if db.execute("SELECT 1 FROM folders WHERE name = ?", (INBOX,)).fetchone():
                return
        with self._db.write() as events:
            for name, special in DEFAULT_FOLDERS:
                if not self._db.exists("SELECT 1 FROM folders WHERE name = ?", (name,)):
                    self._rows.insert_folder(name, special)
            events.append(ev.FoldersChanged(self._db.mailbox_id))

    def list_folders(self) -> list[Folder]:
        with self._db.read() as db:
            rows: list[FolderRow] = db.execute(f"SELECT {FOLDER_COLUMNS} FROM folders ORDER BY name").fetchall()
        return [folder_from_row(r) for r in rows]

    def folder(self, name: str) -> Folder:
        with self._db.read():
            return self._rows.folder_row(name)

    def create_folder(self, name: str, special_use: str | None = None) -> Folder:
        """Create a folder and any missing parents (RFC 9051 §6.3.4)."""
        name = normalize_folder_name(name)
        if special_use is not None and special_use not in SPECIAL_USES:
            raise InvalidFolderName(f"unknown special use {special_use!r}")
        with self._db.write() as events:
            existing = self._db.row("SELECT noselect FROM folders WHERE name = ?", (name,))
            if existing is not None and not existing[0]:
                raise FolderExists(f"folder {name!r} exists already")
            for parent in parents(name):
                if not self._db.exists("SELECT 1 FROM folders WHERE name = ?", (parent,)):
                    self._rows.insert_folder(parent, None)
            if existing is not None:  # a \Noselect placeholder becomes a real folder again
                self._db.conn.execute(
                    "UPDATE folders SET noselect = 0, special_use = ?, uidvalidity = ?, object_id = ? WHERE name = ?",
                    (special_use, self._rows.new_uidvalidity(), new_object_id("F"), name),
                )
            else:
                self._rows.insert_folder(name, special_use)
            self._take_back_subscriptions()
            events.append(ev.FoldersChanged(self._db.mailbox_id))
        return self.folder(name)

    def delete_folder(self, name: str) -> None:
        """RFC 9051 §6.3.5: messages go; a folder with children stays as a \\Noselect placeholder."""
        name = normalize_folder_name(name)
        if name == INBOX:
            raise InvalidFolderName("INBOX cannot be deleted")
        db = self._db.conn
        with self._db.write() as events:
            folder = self._rows.folder_row(name, selectable=False)
            if folder.noselect and not self._has_children(name):
                self._drop_folder_row(folder.id)
            elif folder.noselect:
                raise FolderNotFound(f"folder {name!r} does not exist")
            else:
                self._rows.remove(folder.id, None)
                db.execute("DELETE FROM expunged WHERE folder_id = ?", (folder.id,))
                if self._has_children(name):
                    db.execute("UPDATE folders SET noselect = 1 WHERE id = ?", (folder.id,))
                else:
                    self._drop_folder_row(folder.id)
            self._prune_placeholders(name)
            events.append(ev.FoldersChanged(self._db.mailbox_id))

    def _drop_folder_row(self, folder_id: int) -> None:
        """Delete a folder's row; its subscription, if any, stays with the name (RFC 9051 §6.3.9)."""
        self._db.conn.execute(
            "INSERT OR IGNORE INTO lost_subscriptions (name) SELECT name FROM folders WHERE id = ? AND subscribed",
            (folder_id,),
        )
        self._db.conn.execute("DELETE FROM folders WHERE id = ?", (folder_id,))

    def _take_back_subscriptions(self) -> None:
        """A folder that exists again under a subscribed name is subscribed (the subscription is the name's)."""
        db = self._db.conn
        db.execute("UPDATE folders SET subscribed = 1 WHERE name IN (SELECT name FROM lost_subscriptions)")
        db.execute("DELETE FROM lost_subscriptions WHERE name IN (SELECT name FROM folders)")

    def _has_children(self, name: str) -> bool:
        prefix = name + DELIMITER
        return self._db.exists("SELECT 1 FROM folders WHERE substr(name, 1, ?) = ? LIMIT 1", (len(prefix), prefix))

    def _prune_placeholders(self, name: str) -> None:
        for parent in reversed(parents(name)):
            row = self._db.row("SELECT id, noselect FROM folders WHERE name = ?", (parent,))
            if row is None or not row[1] or self._has_children(parent):
                return
            self._drop_folder_row(as_int(row[0]))

    def rename_folder(self, old: str, new: str) -> None:
        """Rename with every child (RFC 9051 §6.3.6); renaming INBOX moves its messages to a new folder."""
        old, new = normalize_folder_name(old), normalize_folder_name(new)
        if new == INBOX:
            raise InvalidFolderName("cannot rename to INBOX")
        if old != INBOX and (new == old or new.startswith(old + DELIMITER)):
            raise InvalidFolderName("cannot rename a folder into itself")
        db = self._db.conn
        with self._db.write() as events:
            source = self._rows.folder_row(old, selectable=old == INBOX)
            if self._db.exists("SELECT 1 FROM folders WHERE name = ? AND noselect = 0", (new,)):
                raise FolderExists(f"folder {new!r} exists already")
            db.execute("DELETE FROM folders WHERE name = ? AND noselect = 1", (new,))
            for parent in parents(new):
                if not self._db.exists("SELECT 1 FROM folders WHERE name = ?", (parent,)):
                    self._rows.insert_folder(parent, None)
            if old == INBOX:
                target = self._rows.insert_folder(new, None)
                uids: list[int] = [
                    r[0] for r in db.execute("SELECT uid FROM messages WHERE folder_id = ? ORDER BY uid", (source.id,))
                ]
                self._rows.copy(source, uids, self._rows.folder_by_id(target), move=True, events=events)
            else:
                prefix = old + DELIMITER
                db.execute("UPDATE folders SET name = ? WHERE id = ?", (new, source.id))
                db.execute(
                    "UPDATE folders SET name = ? || substr(name, ?) WHERE substr(name, 1, ?) = ?",
                    (new + DELIMITER, len(prefix) + 1, len(prefix), prefix),
                )
                self._prune_placeholders(old)
            self._take_back_subscriptions()
            events.append(ev.FoldersChanged(self._db.mailbox_id))

    def set_subscribed(self, name: str, subscribed: bool) -> None:
        """SUBSCRIBE (an existing folder only) or UNSUBSCRIBE (any subscribed name, existing or not)."""
        name = normalize_folder_name(name)
        with self._db.write() as events:
            cur = self._db.conn.execute("UPDATE folders SET subscribed = ? WHERE name = ?", (int(subscribed), name))
            if cur.rowcount == 0:
                if subscribed:
                    raise FolderNotFound(f"folder {name!r} does not exist")
                cur = self._db.conn.execute("DELETE FROM lost_subscriptions WHERE name = ?", (name,))
                if cur.rowcount == 0:
                    return
            events.append(ev.FoldersChanged(self._db.mailbox_id))

    def subscriptions(self) -> list[str]:
        """Every subscribed name, whether its folder exists or not (RFC 9051 §6.3.9), sorted."""
        with self._db.read() as db:
            rows: list[tuple[str]] = db.execute(
                "SELECT name FROM folders WHERE subscribed UNION SELECT name FROM lost_subscriptions ORDER BY name"
            ).fetchall()
        return [r[0] for r in rows]

    def status(self, name: str) -> FolderStatus:
        with self._db.read() as db:
            folder = self._rows.folder_row(name)
            row: tuple[int, int, int, int, int] = db.execute(
                "SELECT count(*), coalesce(sum((flags & 1) = 0), 0), coalesce(sum(recent), 0), "
                "coalesce(sum((flags & 8) != 0), 0), coalesce(sum(size), 0) FROM messages WHERE folder_id = ?",
                (folder.id,),
            ).fetchone()
        return FolderStatus(
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            folder.uidnext,
            folder.uidvalidity,
            folder.highestmodseq,
            folder.object_id,
        )

    def usage(self) -> int:
        """Octets of every message in every folder, calendars and contacts included (QUOTA STORAGE)."""
        with self._db.read():
            return self._db.used_octets()

    def keywords(self) -> list[str]:
        with self._db.read() as db:
            return [r[0] for r in db.execute("SELECT name FROM keyword_names ORDER BY name")]
