"""DAV with the mailboxes behind a store component (issue 19), whatever SEALMAIL_TEST_STORE says."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from davserver import DavServer, start_server


@pytest.fixture
def remote_dav(tmp_path: Path) -> Iterator[DavServer]:
    yield from start_server(tmp_path, remote=True)


def test_sign_in_with_the_store_down_is_503_with_retry_after(remote_dav: DavServer) -> None:
    """RFC 9110 §15.6.4: the data host being away is a temporary condition (503, Retry-After), not a
    server error and not a wrong password (the login limiter does not count it)."""
    assert remote_dav.store is not None
    remote_dav.store.stop()
    with remote_dav.client("alice@example.test") as client:
        answer = client.request("PROPFIND", remote_dav.principal("alice@example.test"), headers={"Depth": "0"})
    assert answer.status_code == 503, answer.text
    assert int(answer.headers["Retry-After"]) > 0
    assert "store" in answer.text
