"""What a seized server gives up, checked byte for byte (DESIGN §4): a whole-directory scan for secrets.

``assert_no_secrets(root, secrets)`` reads EVERY regular file under ``root`` at any depth (SQLite
databases with their ``-wal``, ``-shm`` and ``-journal`` files, lock files, spools, queues, keys,
logs, whatever a component left behind) and looks for every form of every secret at every byte
offset of the whole file (``bytes.find`` over the entire content: no windows, no sampling, no size
limit). For SQLite files the raw file is what a thief reads, so that is what is scanned: free pages,
freelist trunks and WAL frames not yet checkpointed are all in it. A leak is reported with the
file, the offset, the secret's label and the encoding found.

Secrets are added by kind, each in the forms a careless program would write them:

- ``text``: message text (use a distinctive marker in the subject AND the body): UTF-8, lower and
  upper case (search indexes fold case), UTF-16-LE as written and lower-cased;
- ``password``: UTF-8 and UTF-16-LE;
- ``key``: raw bytes, hex (both cases), base64 and base64url (unpadded, so padded forms match too),
  base32 (both cases, the recovery key's alphabet);
- ``unlocked``: both keys of an unlocked mailbox (the SQLCipher mailbox key and the X25519 private key).

Files under a ``mailboxes`` directory must also not begin with the plaintext ``SQLite format 3``
header (they are SQLCipher files).
"""

from __future__ import annotations

import base64
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

MIN_FORM = 8  # shorter needles would match by chance


@dataclass(frozen=True, slots=True)
class Leak:
    path: Path
    offset: int
    label: str
    form: str

    def __str__(self) -> str:
        return f"{self.label} ({self.form}) at offset {self.offset} of {self.path}"


@dataclass
class Secrets:
    """Labelled secrets, each with the byte forms to look for."""

    needles: list[tuple[str, str, bytes]] = field(default_factory=list)

    def _add(self, label: str, form: str, data: bytes) -> None:
        if len(data) < MIN_FORM:
            raise ValueError(f"{label} ({form}) is too short to scan for without false alarms")
        if not any(lab == label and d == data for lab, _, d in self.needles):
            self.needles.append((label, form, data))

    def text(self, label: str, text: str) -> Secrets:
        self._add(label, "utf-8", text.encode())
        self._add(label, "lower", text.lower().encode())
        self._add(label, "upper", text.upper().encode())
        self._add(label, "utf-16-le", text.encode("utf-16-le"))
        self._add(label, "lower utf-16-le", text.lower().encode("utf-16-le"))
        return self

    def password(self, label: str, password: str) -> Secrets:
        self._add(label, "utf-8", password.encode())
        self._add(label, "utf-16-le", password.encode("utf-16-le"))
        return self

    def key(self, label: str, raw: bytes) -> Secrets:
        self._add(label, "raw", raw)
        self._add(label, "hex", raw.hex().encode())
        self._add(label, "HEX", raw.hex().upper().encode())
        self._add(label, "base64", base64.b64encode(raw).rstrip(b"="))
        self._add(label, "base64url", base64.urlsafe_b64encode(raw).rstrip(b"="))
        b32 = base64.b32encode(raw).rstrip(b"=")
        self._add(label, "base32", b32)
        self._add(label, "base32-lower", b32.lower())
        return self

    def unlocked(self, label: str, unlocked: object) -> Secrets:
        """Both keys of a ``services.credentials.Unlocked`` (or ``crypto.keys.MailboxSecrets``)."""
        found = getattr(unlocked, "secrets", unlocked)
        self.key(f"{label} mailbox key", found.mailbox_key)  # type: ignore[attr-defined]
        self.key(f"{label} private key", found.private_key)  # type: ignore[attr-defined]
        return self


def files_under(root: Path) -> list[Path]:
    """Every regular file below ``root`` at any depth (symlinks are not followed)."""
    found = []
    for folder, _dirs, names in os.walk(root, followlinks=False):
        for name in names:
            path = Path(folder) / name
            try:
                if stat.S_ISREG(path.lstat().st_mode):
                    found.append(path)
            except FileNotFoundError:
                continue
    return sorted(found)


def leaks(root: Path, secrets: Secrets) -> list[Leak]:
    """Every (file, secret form) found, with the offset of its first occurrence."""
    found: list[Leak] = []
    for path in files_under(root):
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # removed between listing and reading (a rolled-back journal)
            continue
        if "mailboxes" in path.relative_to(root).parts and data.startswith(b"SQLite format 3"):
            found.append(Leak(path, 0, "plaintext SQLite header in an encrypted mailbox", "raw"))
        for label, form, needle in secrets.needles:
            offset = data.find(needle)
            if offset >= 0:
                found.append(Leak(path, offset, label, form))
    return found


def assert_no_secrets(root: Path, secrets: Secrets, *, min_files: int = 1) -> int:
    """Fail naming every file and offset where a secret is found; returns how many files were read."""
    assert secrets.needles, "nothing to scan for"
    files = files_under(root)
    assert len(files) >= min_files, f"expected at least {min_files} file(s) under {root}, found {len(files)}"
    found = leaks(root, secrets)
    assert not found, "secrets on disk:\n" + "\n".join(str(leak) for leak in found[:40])
    return len(files)
