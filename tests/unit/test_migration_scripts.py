"""Migration scripts are split into statements as SQLite reads them: a trigger's body keeps its semicolons."""

from __future__ import annotations

import sqlite3

from sealmail.migrations import apply_migrations, split_statements

SCRIPT = """
-- a comment; with a semicolon
CREATE TABLE t (n INTEGER);
CREATE TABLE total (n INTEGER);
INSERT INTO total VALUES (0);
CREATE TRIGGER t_added AFTER INSERT ON t BEGIN
    UPDATE total SET n = n + NEW.n;
    UPDATE total SET n = n + 0;
END;
"""


def test_a_trigger_is_one_statement() -> None:
    statements = split_statements(SCRIPT)
    assert len(statements) == 4
    assert statements[-1].startswith("CREATE TRIGGER")
    assert statements[-1].endswith("END")


def test_a_migration_with_a_trigger_applies() -> None:
    db = sqlite3.connect(":memory:", isolation_level=None)
    assert apply_migrations(db, [SCRIPT], "test") == 1
    db.execute("INSERT INTO t VALUES (5)")
    assert db.execute("SELECT n FROM total").fetchone() == (5,)
