"""Folder names as every layer sees them (the store keeps them, Sieve's rules name them).

Below the store so the pure Sieve code can normalise a folder the way the drain files into it.
"""

from __future__ import annotations

import unicodedata

from sealmail.errors import InvalidInput

INBOX = "INBOX"
DELIMITER = "/"
MAX_FOLDER_NAME = 500


class InvalidFolderName(InvalidInput):
    pass


def normalize_folder_name(name: str) -> str:
    """NFC, ``INBOX`` case-insensitive (RFC 9051 §5.1), no empty levels or list wildcards."""
    if not isinstance(name, str) or not name:
        raise InvalidFolderName("folder name is empty")
    name = unicodedata.normalize("NFC", name)
    parts = name.split(DELIMITER)
    if parts[0].upper() == INBOX:
        parts[0] = INBOX
    if any(p == "" for p in parts):
        raise InvalidFolderName(f"folder name {name!r} has an empty level")
    if len(name.encode()) > MAX_FOLDER_NAME:
        raise InvalidFolderName(f"folder name longer than {MAX_FOLDER_NAME} octets")
    for ch in name:
        if ch in "%*" or unicodedata.category(ch)[0] == "C":
            raise InvalidFolderName(f"folder name {name!r}: character U+{ord(ch):04X} is not allowed")
    return DELIMITER.join(parts)
