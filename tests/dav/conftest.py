"""DAV fixtures: the real component on loopback (see davserver.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from davserver import DavServer, start_server


@pytest.fixture
def dav(tmp_path: Path) -> Iterator[DavServer]:
    yield from start_server(tmp_path)


@pytest.fixture
def alice(dav: DavServer) -> Iterator[httpx.Client]:
    with dav.client("alice@example.test") as client:
        yield client


@pytest.fixture
def bob(dav: DavServer) -> Iterator[httpx.Client]:
    with dav.client("bob@example.test") as client:
        yield client
