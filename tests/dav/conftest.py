"""DAV fixtures: the real component on loopback (see davserver.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from davserver import DavServer, start_server
from storekit import remote_mode


@pytest.fixture
def dav(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[DavServer]:
    """SEALMAIL_TEST_STORE=remote: the mailboxes behind a store component, change events on a real
    Redis both share (as front-ends and data hosts do)."""
    if remote_mode():
        redis_url = request.getfixturevalue("redis_url")
        redis.Redis.from_url(redis_url).flushdb()  # login throttling state of earlier tests
        yield from start_server(tmp_path, redis_url=redis_url)
    else:
        yield from start_server(tmp_path)


@pytest.fixture
def alice(dav: DavServer) -> Iterator[httpx.Client]:
    with dav.client("alice@example.test") as client:
        yield client


@pytest.fixture
def bob(dav: DavServer) -> Iterator[httpx.Client]:
    with dav.client("bob@example.test") as client:
        yield client
