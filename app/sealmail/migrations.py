"""Forward migrations for SQLite-family databases (the config store and every mailbox file).

The version lives in ``PRAGMA user_version``; a migration list only ever grows. One process
migrates inside ``BEGIN IMMEDIATE`` while the others wait and then see the new version.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from sealmail.errors import SchemaTooNew


def apply_migrations(db: Any, migrations: list[str], what: str) -> int:
    """Run the pending scripts of ``migrations`` on ``db`` (sqlite3 or sqlcipher3, autocommit mode)."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version > len(migrations):
        raise SchemaTooNew(
            f"{what} has schema version {version}, newer than this Sealmail understands "
            f"({len(migrations)}): upgrade Sealmail before using it"
        )
    if version == len(migrations):
        return version
    db.execute("BEGIN IMMEDIATE")
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        for number in range(version, len(migrations)):
            for statement in split_statements(migrations[number]):
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {number + 1}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return len(migrations)


def split_statements(script: str) -> list[str]:
    """Statements of a migration script (no semicolons inside literals in our scripts; a trigger's
    body keeps its own, as SQLite's tokenizer says where each statement ends)."""
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    statements, pending = [], ""
    for piece in "\n".join(lines).split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            statement = pending.strip()[:-1].strip()
            if statement:
                statements.append(statement)
            pending = ""
    if pending.strip(" \t\n;"):
        statements.append(pending.strip().rstrip(";"))  # incomplete: executing it reports the error
    return statements
