"""The IMAP process caches are per mailbox, whatever handles the store gives the sessions.

The in-process store hands every session of an account the same handle; the remote store opens one
per session. Keyed by handle alone, the caches were per session in multi-server mode, and every IDLE
session on a front-end claimed \\Recent from the data host for each new message
(bench/imap.py --store remote: 1,000 sessions took seconds to hear one message).
"""

from __future__ import annotations

import gc
from dataclasses import dataclass

from sealmail.imap.caches import ImapCaches


@dataclass(eq=False)
class Handle:
    mailbox_id: str


def test_handles_on_one_mailbox_share_its_caches() -> None:
    caches = ImapCaches()
    first, second, other = Handle("a" * 24), Handle("a" * 24), Handle("b" * 24)
    caches.of(first).claimed[7] = 42
    assert caches.of(second) is caches.of(first)
    assert caches.of(second).claimed == {7: 42}
    assert caches.of(other) is not caches.of(first)
    assert caches.of(other).claimed == {}


def test_the_entry_goes_with_the_last_handle() -> None:
    caches = ImapCaches()
    first, second = Handle("a" * 24), Handle("a" * 24)
    caches.of(first).claimed[7] = 42
    caches.of(second)
    del first
    gc.collect()
    assert caches.of(second).claimed == {7: 42}  # still held by the second handle
    del second
    gc.collect()
    assert caches.of(Handle("a" * 24)).claimed == {}  # a fresh start once no handle is open
