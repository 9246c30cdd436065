"""FETCH's chunk reads (imap.fetch): what a chunk asks the store for and how it copes with what is gone."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from sealmail.imap.fetch import Fetcher
from sealmail.imap.parser import FetchAtt


class Store:
    """Just the call a whole-message FETCH makes: one ``raws`` per chunk."""

    def __init__(self, bodies: dict[int, bytes]) -> None:
        self.bodies = bodies
        self.calls: list[list[int]] = []

    def raws(self, body_ids: list[int]) -> dict[int, bytes]:
        self.calls.append(list(body_ids))
        return {b: self.bodies[b] for b in body_ids if b in self.bodies}


def fetcher(*atts: FetchAtt) -> Fetcher:
    session: Any = SimpleNamespace(mbox=None, caches=None, utf8=False)
    return Fetcher(session, SimpleNamespace(readonly=True), list(atts), None)


def test_a_chunk_reads_its_bodies_in_one_call_and_a_vanished_one_is_empty() -> None:
    store = Store({1: b"Subject: a\r\n\r\nx\r\n", 3: b"Subject: c\r\n\r\nz\r\n"})
    chunk: Any = [SimpleNamespace(body_id=b) for b in (1, 2, 3)]  # body 2 freed by another process meanwhile
    data = fetcher(FetchAtt("BODY[", "", "", peek=True), FetchAtt("RFC822"))._load(store, chunk)
    assert store.calls == [[1, 2, 3]]
    assert data["RAW"] == {1: store.bodies[1], 2: b"", 3: store.bodies[3]}
