"""Spam-learning jobs inside the encrypted mailbox (``store.learnjobs``): queued by the COPY/MOVE that
made them (RFC 9051 §6.4.7, RFC 6851 §3.1), in its transaction; the latest filing decides the class;
a job goes with its message; failed tries are counted and bounded; an older mailbox gets the table."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sealmail.store.db import open_encrypted
from sealmail.store.errors import QuotaExceeded
from sealmail.store.mailbox import LearnJob, Mailbox
from sealmail.store.schema import MIGRATIONS

RAW = b"From: a@example.org\r\nSubject: learn me\r\n\r\nsome text\r\n"


def test_move_and_copy_queue_a_job_per_message_and_the_latest_filing_wins(mailbox: Mailbox) -> None:
    mailbox.append("INBOX", RAW)
    mailbox.append("INBOX", RAW.replace(b"learn me", b"and me"))
    assert mailbox.move("INBOX", [1, 2], "Junk", learn="spam").pairs == ((1, 1), (2, 2))
    (first, second) = (i.body_id for i in mailbox.messages("Junk"))
    assert mailbox.learning_jobs(10) == [LearnJob(first, "spam", 0), LearnJob(second, "spam", 0)]
    mailbox.copy("Junk", [1], "INBOX", learn="ham")  # out again before it was learned: ham only
    assert mailbox.learning_jobs(10) == [LearnJob(first, "ham", 0), LearnJob(second, "spam", 0)]
    mailbox.copy("Junk", [2], "Archive")  # no class: no job
    assert len(mailbox.learning_jobs(10)) == 2


def test_a_copy_refused_over_quota_queues_nothing(mailbox: Mailbox) -> None:
    """The job commits with the copy or not at all."""
    mailbox.append("INBOX", RAW)
    mailbox.quota = mailbox.usage()
    with pytest.raises(QuotaExceeded):
        mailbox.copy("INBOX", [1], "Junk", learn="spam")
    assert mailbox.learning_jobs(10) == []


def test_a_job_goes_with_its_message(mailbox: Mailbox) -> None:
    mailbox.append("INBOX", RAW)
    mailbox.move("INBOX", [1], "Junk", learn="spam")
    mailbox.store_flags("Junk", [1], "add", ["\\Deleted"])
    mailbox.expunge("Junk")
    assert mailbox.learning_jobs(10) == []


def test_finishing_forgets_done_jobs_and_drops_a_job_out_of_tries(mailbox: Mailbox) -> None:
    for n in range(2):
        mailbox.append("INBOX", RAW + b"%d\r\n" % n)
    mailbox.move("INBOX", [1, 2], "Junk", learn="spam")
    done, failing = mailbox.learning_jobs(10)
    assert mailbox.finish_learning([done], [failing], max_attempts=2) == 0
    assert mailbox.learning_jobs(10) == [LearnJob(failing.body_id, "spam", 1)]
    assert mailbox.finish_learning([], [failing], max_attempts=2) == 1
    assert mailbox.learning_jobs(10) == []


def test_a_job_filed_again_meanwhile_is_not_finished_by_the_old_try(mailbox: Mailbox) -> None:
    """The learner tried "spam" while the user moved the message out again: the ham job stays."""
    mailbox.append("INBOX", RAW)
    mailbox.move("INBOX", [1], "Junk", learn="spam")
    (tried,) = mailbox.learning_jobs(10)
    mailbox.move("Junk", [1], "INBOX", learn="ham")
    mailbox.finish_learning([tried], [], max_attempts=8)
    assert mailbox.learning_jobs(10) == [LearnJob(tried.body_id, "ham", 0)]


def test_an_unknown_class_is_refused(mailbox: Mailbox) -> None:
    mailbox.append("INBOX", RAW)
    with pytest.raises(ValueError, match="unknown learning class"):
        mailbox.copy("INBOX", [1], "Junk", learn="maybe")
    assert mailbox.messages("Junk") == []


def test_a_mailbox_of_the_previous_version_gets_the_table(tmp_path: Path) -> None:
    key, path = os.urandom(32), tmp_path / "box.sqlite"
    Mailbox("f" * 24, path, key).close()
    db = open_encrypted(path, key)
    db.execute("DROP TABLE learn_jobs")
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) - 1}")
    db.close()
    box = Mailbox("f" * 24, path, key)
    try:
        assert box.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        box.append("INBOX", RAW)
        box.move("INBOX", [1], "Junk", learn="spam")
        assert len(box.learning_jobs(10)) == 1
    finally:
        box.close()
