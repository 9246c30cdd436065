"""Subscriptions outlive their mailboxes (RFC 9051 §6.3.9, RFC 3501 §6.3.6, RFC 5258 §3), over sockets.

ImapTest's ``listext`` deletes a subscribed mailbox and expects ``LIST (SUBSCRIBED)`` to go on
showing its name, as ``\\Subscribed \\NonExistent``.
"""

from __future__ import annotations

from .conftest import RawClient


def _ok(raw: RawClient, line: str) -> list[bytes]:
    lines = raw.command("x " + line)
    assert lines[-1].startswith(b"x OK"), lines
    return lines[:-1]


def test_deleted_subscribed_mailbox_stays_subscribed_as_nonexistent(raw: RawClient) -> None:
    """RFC 9051 §6.3.9: the server "MUST NOT unilaterally remove an existing mailbox name from the
    subscription list even if a mailbox by that name no longer exists"; RFC 5258 §3: LIST (SUBSCRIBED)
    returns such a name with \\Subscribed and \\NonExistent (which implies \\Noselect, so that is not
    repeated); LSUB lists it too; a RETURN (SUBSCRIBED) of the existing mailboxes does not."""
    for line in ("CREATE lx/test1", "CREATE lx/test6", "SUBSCRIBE lx/test1", "SUBSCRIBE lx/test6"):
        _ok(raw, line)
    _ok(raw, "DELETE lx/test6")
    assert _ok(raw, 'LIST (SUBSCRIBED) "" lx/*') == [
        b'* LIST (\\HasNoChildren \\Subscribed) "/" "lx/test1"\r\n',
        b'* LIST (\\Subscribed \\NonExistent) "/" "lx/test6"\r\n',
    ]
    assert _ok(raw, 'LSUB "" lx/*') == [b'* LSUB () "/" "lx/test1"\r\n', b'* LSUB () "/" "lx/test6"\r\n']
    assert _ok(raw, 'LIST "" lx/* RETURN (SUBSCRIBED)') == [b'* LIST (\\HasNoChildren \\Subscribed) "/" "lx/test1"\r\n']
    # RFC 5258 §3.5: a subscribed descendant counts for CHILDINFO whether it exists or not
    assert _ok(raw, 'LIST (SUBSCRIBED RECURSIVEMATCH) "" lx RETURN (CHILDREN)') == [
        b'* LIST (\\HasChildren) "/" "lx" ("CHILDINFO" ("SUBSCRIBED"))\r\n'
    ]


def test_unsubscribe_and_create_again(raw: RawClient) -> None:
    """RFC 9051 §6.3.10: UNSUBSCRIBE removes a name whether or not the mailbox exists. A mailbox made
    again under a subscribed name is subscribed (the subscription is to the name); CREATE subscribes
    nothing else (RFC 9051 §6.3.4)."""
    for line in ("CREATE gone", "SUBSCRIBE gone", "DELETE gone", "CREATE back", "SUBSCRIBE back", "DELETE back"):
        _ok(raw, line)
    _ok(raw, "UNSUBSCRIBE gone")
    assert _ok(raw, 'LSUB "" gone') == []
    _ok(raw, "CREATE back")
    _ok(raw, "CREATE fresh")
    assert _ok(raw, 'LIST "" (back fresh) RETURN (SUBSCRIBED)') == [
        b'* LIST (\\HasNoChildren \\Subscribed) "/" "back"\r\n',
        b'* LIST (\\HasNoChildren) "/" "fresh"\r\n',
    ]
    # still one subscription per name, existing again
    assert _ok(raw, 'LIST (SUBSCRIBED) "" back') == [b'* LIST (\\HasNoChildren \\Subscribed) "/" "back"\r\n']


def test_rename_carries_the_subscription(raw: RawClient) -> None:
    """RENAME (RFC 9051 §6.3.6) says nothing of subscriptions: Sealmail's follow the mailbox to its new
    name, so a client that renames a folder keeps seeing it, and the old name is not left behind as
    \\NonExistent. (Dovecot keeps subscriptions by name and shows the old one; both are allowed.)"""
    for line in ("CREATE old", "SUBSCRIBE old", "RENAME old new"):
        _ok(raw, line)
    assert _ok(raw, 'LIST (SUBSCRIBED) "" (old new)') == [
        b'* LIST (\\HasNoChildren \\Subscribed) "/" "new"\r\n',
    ]
