"""RFC 3894 copy, RFC 5429 reject/ereject, RFC 5490 mailbox: how actions combine with the implicit keep."""

from __future__ import annotations

import pytest

from sievekit import message, run, summary

CASES = [
    # RFC 3894 §3: :copy does not cancel the implicit keep
    pytest.param(
        'require ["copy", "fileinto"];\nfileinto :copy "incoming";',
        ("fileinto:incoming", "keep"),
        id="RFC 3894 §3 fileinto :copy",
    ),
    pytest.param(
        'require ["copy"];\nredirect :copy "sales@example.com";',
        ("keep", "redirect:sales@example.com:copy"),
        id="RFC 3894 §3 redirect :copy",
    ),
    pytest.param(
        'require ["copy"];\nredirect :copy "a@example.com";\nredirect "b@example.com";',
        ("redirect:a@example.com:copy", "redirect:b@example.com"),
        id="RFC 3894 §3 a plain redirect still cancels",
    ),
    pytest.param(
        'require ["copy", "fileinto"];\nfileinto :copy "incoming";\ndiscard;',
        ("fileinto:incoming",),
        id="RFC 3894 discard cancels only the implicit keep",
    ),
    # RFC 5429 §2.1 / §2.2
    pytest.param(
        'require ["reject"];\nif header :contains "from" "coyote@desert.example.org" {\n   reject text:\nI am not taking mail from you, and I don\'t\nwant your birdseed, either!\n.\n;\n}',
        ("reject:I am not taking mail from you, and I don't\nwant your birdseed, either!\n",),
        id="RFC 5429 §2.2 reject example",
    ),
    pytest.param(
        'require ["ereject"];\nif address :is "from" "coyote@desert.example.org" {\n    ereject "I no longer accept mail from this address";\n}',
        ("ereject:I no longer accept mail from this address",),
        id="RFC 5429 §2.1 ereject example",
    ),
    pytest.param('require ["reject"];\ndiscard;\nreject "no";', ("reject:no",), id="RFC 5429 reject after discard"),
    pytest.param(
        'require ["reject", "fileinto"];\nfileinto "filter";\nreject "no";',
        ("error@3", "keep"),
        id="RFC 5429 §2.1 reject after fileinto is an error",
    ),
    pytest.param(
        'require ["reject"];\nreject "no";\nkeep;',
        ("error@3", "keep"),
        id="RFC 5429 §2.1 keep after reject is an error",
    ),
    pytest.param(
        'require ["reject", "ereject"];\nreject "a";\nereject "b";',
        ("error@3", "keep"),
        id="RFC 5429 §2.1 two rejects are an error",
    ),
    pytest.param(
        'require ["reject"];\nredirect "a@example.com";\nreject "no";',
        ("error@3", "keep"),
        id="RFC 5429 §2.1 reject after redirect is an error",
    ),
    # RFC 5490 §3
    pytest.param(
        'require ["fileinto", "reject", "mailbox"];\nif mailboxexists "Partners" {\n  fileinto "Partners";\n} else {\n  reject "This message was not accepted by the Mailstore";\n}',
        ("fileinto:Partners",),
        id="RFC 5490 §3.1 mailboxexists example",
    ),
    pytest.param(
        'require ["fileinto", "reject", "mailbox"];\nif mailboxexists "Nope" {\n  fileinto "Nope";\n} else {\n  reject "This message was not accepted by the Mailstore";\n}',
        ("reject:This message was not accepted by the Mailstore",),
        id="RFC 5490 §3.1 mailboxexists false",
    ),
    pytest.param(
        'require ["mailbox"];\nif mailboxexists ["INBOX", "filter"] { discard; }',
        ("discard",),
        id="RFC 5490 §3.1 every mailbox must exist",
    ),
    pytest.param(
        'require ["mailbox"];\nif mailboxexists ["INBOX", "Nope"] { discard; }',
        ("keep",),
        id="RFC 5490 §3.1 one missing",
    ),
    pytest.param(
        'require ["fileinto", "mailbox"];\nfileinto :create "New/Box";',
        ("fileinto:New/Box",),
        id="RFC 5490 §3.2 fileinto :create",
    ),
    pytest.param(
        'require ["fileinto"];\n\nfileinto "New/Box";',
        ("error@3", "keep"),
        id="RFC 5490 §3.2 no :create: run-time error, kept",
    ),
    pytest.param('require ["fileinto"];\nfileinto "inbox";', ("keep",), id="RFC 3501 §5.1 INBOX in any case exists"),
]


@pytest.mark.parametrize(("script", "expected"), CASES)
def test_actions_and_the_implicit_keep(script: str, expected: tuple[str, ...]) -> None:
    boxes = ("INBOX", "filter", "incoming", "Partners")
    assert summary(run(script, message(), mailboxes=boxes)) == expected


def test_a_created_mailbox_is_marked_for_creation() -> None:
    from sealmail.sieve.actions import FileInto

    outcome = run('require ["fileinto", "mailbox"];\nfileinto :create "New";', mailboxes=("INBOX",))
    assert outcome.actions == (FileInto("New", (), create=True, copy=False),)


@pytest.mark.parametrize(
    ("script", "named"),
    [
        pytest.param("keep;", False, id="RFC 5228 §4.3 keep: the default location"),
        pytest.param("", False, id="RFC 5228 §2.10.2 the implicit keep: the default location"),
        pytest.param('require "fileinto";\nfileinto "inbox";', True, id="fileinto names INBOX"),
        pytest.param('require ["fileinto", "copy"];\nfileinto :copy "INBOX";', True, id="RFC 3894 :copy names INBOX"),
    ],
)
def test_a_fileinto_that_names_inbox_is_told_from_a_keep(script: str, named: bool) -> None:
    """Delivery files a keep of spam in Junk (the default location), a fileinto "INBOX" in INBOX."""
    from sealmail.sieve.actions import Keep

    (action,) = run(script).actions
    assert action == Keep((), named=named)
