"""``sealmail dev`` without rspamd installed goes on without it, and says so."""

from __future__ import annotations

import pytest

from sealmail import dev
from sealmail.spam import localrspamd


def test_dev_goes_on_without_rspamd_and_says_so(settings, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setattr(localrspamd, "rspamd_binary", lambda: None)
    supervisor = dev.Supervisor(settings)
    assert supervisor.start_rspamd() is None
    assert supervisor.children == []
    assert "rspamd is not installed (apt-get install rspamd): mail is not scanned for spam" in capsys.readouterr().err
    assert dev._rspamd_info(supervisor) is None
