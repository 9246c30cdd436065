"""How a command ends: the tagged reply (status, text, response code), or an exception carrying one.

A command handler returns ``None`` (plain "OK <name> completed"), a ``Reply``, or raises ``Done``
(``no()`` / ``bad()`` build the usual ones); ``Silent`` says the command has answered already.
"""

from __future__ import annotations

Reply = tuple[str, str, str | None]


class Done(Exception):
    """Ends a command with a tagged response."""

    def __init__(self, status: str, text: str, code: str | None = None) -> None:
        super().__init__(text)
        self.status, self.text, self.code = status, text, code


class Silent(Done):
    """The command has answered already (STARTTLS, autologout)."""

    def __init__(self) -> None:
        super().__init__("", "")


def no(text: str, code: str | None = None) -> Done:
    return Done("NO", text, code)


def bad(text: str, code: str | None = None) -> Done:
    return Done("BAD", text, code)
