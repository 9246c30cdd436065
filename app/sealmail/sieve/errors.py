"""The two ways a Sieve script fails: when it is compiled, and while it runs on a message."""

from __future__ import annotations

from sealmail.errors import InvalidInput


class SieveError(InvalidInput):
    """The script is not valid Sieve (RFC 5228 §3.2, §8): refused when it is uploaded.

    ``line`` is 1-based, as ManageSieve's CHECKSCRIPT and PUTSCRIPT answers quote it (RFC 5804 §2.6).
    """

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


class SieveRuntimeError(Exception):
    """A valid script failed on one message (RFC 5228 §2.10.6): its actions are dropped and the
    message is kept in INBOX, so a broken script never loses mail."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message
