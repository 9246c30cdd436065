"""Log lines under systemd carry their syslog priority for journald (sd-daemon(3) ``<N>`` prefixes),
only when stderr really is the stream ``JOURNAL_STREAM`` names (systemd.exec(5))."""

from __future__ import annotations

import logging
import os
import sys

import pytest

from sealmail import logs


@pytest.fixture
def stderr_file(tmp_path):
    """A file to stand for stderr; the test puts it in place itself (pytest swaps sys.stderr for
    its own capture between a fixture's setup and the test)."""
    path = tmp_path / "stderr"
    stream = path.open("w")
    yield path, stream
    stream.close()
    for handler in list(logging.getLogger().handlers):
        logging.getLogger().removeHandler(handler)


def _log_all() -> None:
    log = logging.getLogger("sealmail.test")
    log.error("an error")
    log.warning("a warning password=hunter2")
    log.info("a note")


def test_under_the_journal_each_line_starts_with_its_priority(stderr_file, monkeypatch) -> None:
    path, stream = stderr_file
    found = os.fstat(stream.fileno())
    monkeypatch.setenv("JOURNAL_STREAM", f"{found.st_dev}:{found.st_ino}")
    monkeypatch.setattr(sys, "stderr", stream)
    logs.configure("doctor")
    _log_all()
    stream.flush()
    lines = path.read_text().splitlines()
    assert [line[:3] for line in lines] == ["<3>", "<4>", "<6>"]
    assert lines[0] == "<3>ERROR doctor conn=- peer=- user=- an error"
    assert "hunter2" not in lines[1]


@pytest.mark.parametrize("value", ["", "1:2", "not a stream"])
def test_elsewhere_lines_carry_the_time_instead(stderr_file, monkeypatch, value) -> None:
    path, stream = stderr_file
    monkeypatch.setenv("JOURNAL_STREAM", value)
    monkeypatch.setattr(sys, "stderr", stream)
    logs.configure("doctor")
    _log_all()
    stream.flush()
    lines = path.read_text().splitlines()
    assert len(lines) == 3
    assert not any(line.startswith("<") for line in lines)
    assert lines[0].endswith("Z ERROR doctor conn=- peer=- user=- an error")


def test_priorities_follow_syslog() -> None:
    assert [logs.priority(level) for level in (50, 40, 30, 20, 10, 5)] == [2, 3, 4, 6, 7, 7]
