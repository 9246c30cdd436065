"""Login throttling over real IMAP with real Redis: parallel guesses and respelled addresses."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from sealmail.net.limits import LimitPolicy
from sealmail.services import credentials


@pytest.fixture
def counted_checks(monkeypatch):
    """Counts every password check (the Argon2id derivation in ``credentials.unlock``)."""
    lock, count = threading.Lock(), [0]
    real = credentials.unlock

    def unlock(*args, **kwargs):
        with lock:
            count[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(credentials, "unlock", unlock)
    return count


def _login(imap, user: str, password: str) -> bytes:
    client = imap.raw()
    try:
        client.send(f'a1 LOGIN "{user}" "{password}"\r\n')
        return client.readline()
    finally:
        client.sock.close()


def test_fifty_parallel_wrong_logins_reach_argon2_at_most_the_limit(imap, counted_checks) -> None:
    """RFC 9051 §11.3 (guessing attacks): the attempt is reserved before the password is checked."""
    with ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(lambda _: _login(imap, "alice@example.test", "wrong"), range(50)))
    assert all(a.startswith(b"a1 NO") for a in answers), answers
    assert counted_checks[0] <= LimitPolicy().per_account
    assert sum(b"AUTHENTICATIONFAILED" in a for a in answers) == counted_checks[0]
    assert sum(b"UNAVAILABLE" in a for a in answers) == 50 - counted_checks[0]


def test_respelled_addresses_share_one_counter(imap, counted_checks) -> None:
    """RFC 5890 / UTS 46: a fullwidth letter, upper case or a trailing dot name the same account."""
    spellings = ["alice@example.test", "ALICE@EXAMPLE.TEST.", "alice@\uff45xample.test", "Alice@Example.Test"]
    for i in range(LimitPolicy().per_account):
        assert b"AUTHENTICATIONFAILED" in _login(imap, spellings[i % len(spellings)], "wrong")
    for spelling in spellings:
        assert b"UNAVAILABLE" in _login(imap, spelling, imap.account("alice@example.test").password)
    assert counted_checks[0] == LimitPolicy().per_account


def test_a_failed_login_does_not_log_the_user_name_typed(imap, caplog) -> None:
    """A password typed into the user-name field must not reach the log (RFC 9051 §11.3)."""
    import logging

    caplog.set_level(logging.INFO)
    typed = "Tr0ub4dor&3-correct-horse"
    assert b"NO" in _login(imap, typed, "anything")
    logged = "\n".join(f"{r.getMessage()} {vars(r)}" for r in caplog.records)
    assert "login failed" in logged
    assert typed not in logged
