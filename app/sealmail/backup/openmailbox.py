"""Open a Sealmail mailbox backup with its password: ``python3 open-mailbox.py``.

This file travels, as it is, in the archive the self-service area hands a user with their
mailbox's latest encrypted backup (``sealmail.backup.mailboxcopy``), beside ``mailbox.sqlite``
(and its ``-wal``) and ``keys.json``. It needs nothing of Sealmail, only three packages from PyPI:

    python3 -m pip install argon2-cffi cryptography sqlcipher3

What it does, in the open so that anyone can check it or do it another way:

1. ``keys.json`` holds the mailbox key wrapped with a key derived from the password (Argon2id with
   the salt and parameters given there), and possibly wrapped a second time with the recovery key
   (HKDF-SHA256). The wrapping is ChaCha20-Poly1305: ``version (1 byte) || nonce (12) || ciphertext``,
   with ``sealmail/v1/mailbox-key/<alias id>`` as associated data.
2. The unwrapped 32-byte key opens ``mailbox.sqlite`` with SQLCipher 4's defaults as a raw key
   (``PRAGMA key = "x'<64 hex digits>'"``). ``--key`` prints it in the form DB Browser for SQLite
   takes ("Raw key", ``0x...``); ``--decrypt FILE`` writes an ordinary SQLite copy (every table:
   folders, messages, the messages' parts) that any SQLite tool opens — it is your mail in clear,
   so keep it where you keep your mail.
"""

from __future__ import annotations

import argparse
import base64
import getpass
import json
import sys
from pathlib import Path
from typing import Any

FORMAT = "sealmail-mailbox-keys"
RECOVERY_PREFIX = "smrk1-"


def _b64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"))


def _unwrap(kek: bytes, blob: bytes, alias_id: str) -> bytes:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    if len(blob) < 29 or blob[0] != 1:
        raise SystemExit("keys.json: the wrapped key is damaged or of a version this script does not know")
    try:
        return ChaCha20Poly1305(kek).decrypt(blob[1:13], blob[13:], f"sealmail/v1/mailbox-key/{alias_id}".encode())
    except InvalidTag:
        raise SystemExit("wrong password or recovery key") from None


def key_from_password(keys: dict[str, Any], password: str) -> bytes:
    from argon2.low_level import Type, hash_secret_raw

    kind, _, rest = keys["kdf"].partition(":")
    if kind != "argon2id":
        raise SystemExit(f"keys.json: unknown key derivation {kind!r}")
    params = dict(item.split("=", 1) for item in rest.split(","))
    kek = hash_secret_raw(
        password.encode("utf-8"),
        _b64(keys["salt"]),
        time_cost=int(params["t"]),
        memory_cost=int(params["m"]),
        parallelism=int(params["p"]),
        hash_len=32,
        type=Type.ID,
    )
    return _unwrap(kek, _b64(keys["mailbox_key"]), keys["alias_id"])


def key_from_recovery_key(keys: dict[str, Any], recovery_key: str) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    wrapped = keys.get("recovery")
    if not wrapped:
        raise SystemExit("this mailbox had no recovery key when the archive was made")
    text = recovery_key.strip().lower().replace(" ", "")
    if not text.startswith(RECOVERY_PREFIX):
        raise SystemExit(f"a recovery key starts with {RECOVERY_PREFIX}")
    body = text.removeprefix(RECOVERY_PREFIX).upper()
    raw = base64.b32decode(body + "=" * (-len(body) % 8))
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=_b64(wrapped["salt"]), info=b"sealmail recovery kek")
    return _unwrap(hkdf.derive(raw), _b64(wrapped["mailbox_key"]), keys["alias_id"])


def decrypt(database: Path, key: bytes, target: Path) -> None:
    """An ordinary SQLite copy of ``database`` at ``target`` (SQLCipher's own export)."""
    import sqlcipher3

    if target.exists():
        raise SystemExit(f"{target} exists already: give another name")
    db = sqlcipher3.connect(str(database))
    try:
        db.execute(f"PRAGMA key = \"x'{key.hex()}'\"")
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        db.execute("ATTACH DATABASE ? AS plain KEY ''", (str(target),))
        db.execute("SELECT sqlcipher_export('plain')").fetchone()
        db.execute("DETACH DATABASE plain")
    finally:
        db.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--dir", type=Path, default=Path(__file__).resolve().parent, help="where the archive was unpacked"
    )
    parser.add_argument("--recovery", action="store_true", help="ask for the recovery key instead of the password")
    parser.add_argument("--key", action="store_true", help="print the database key (for DB Browser for SQLite)")
    parser.add_argument("--decrypt", type=Path, metavar="FILE", help="write an ordinary SQLite copy to FILE")
    parser.add_argument("--stdin", action="store_true", help="read the password (or key) from standard input")
    args = parser.parse_args(argv)
    keys = json.loads((args.dir / "keys.json").read_text(encoding="utf-8"))
    if keys.get("format") != FORMAT:
        raise SystemExit("keys.json is not a Sealmail mailbox key file")
    prompt = "Recovery key: " if args.recovery else "Password: "
    secret = sys.stdin.readline().rstrip("\r\n") if args.stdin else getpass.getpass(prompt)
    key = key_from_recovery_key(keys, secret) if args.recovery else key_from_password(keys, secret)
    if args.decrypt is not None:
        decrypt(args.dir / "mailbox.sqlite", key, args.decrypt)
        print(f"wrote {args.decrypt}: an ordinary SQLite database, your mail in clear")
    if args.key or args.decrypt is None:
        print(f"database key (SQLCipher 4 defaults, raw key): 0x{key.hex()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
