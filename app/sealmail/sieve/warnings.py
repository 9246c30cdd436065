"""What is valid Sieve but probably not what its writer meant. The script is still stored; ManageSieve
answers ``OK (WARNINGS)`` with the text, naming the line (RFC 5804 §2.6, §2.12).

One check today: more ``redirect`` commands than a run may make (``actions.MAX_REDIRECTS``,
RFC 5228 §2.10.6) on one path through the script. A run that reaches the next one fails, and the
message is kept in INBOX without any of the script's actions. The path with the most redirects is
found in one pass from the end of the script (``if`` takes its worst branch, ``stop`` ends a path);
redirects to the same address are counted each time, so the warning says "can".
"""

from __future__ import annotations

from collections.abc import Sequence

from sealmail.sieve import tree
from sealmail.sieve.actions import MAX_REDIRECTS


def warnings(script: tree.Script) -> list[str]:
    """The warnings for a compiled script, each ``line N: ...``; empty when there is nothing to say."""
    path = _redirects(script.commands, ())
    if len(path) > MAX_REDIRECTS:
        return [
            f"line {path[MAX_REDIRECTS]}: a run can reach more than {MAX_REDIRECTS} redirects; such a run fails "
            "and the message is kept in INBOX (RFC 5228 §2.10.6)"
        ]
    return []


def _redirects(commands: Sequence[tree.Command], after: tuple[int, ...]) -> tuple[int, ...]:
    """The lines of the redirects on the path with the most of them, from ``commands`` on, when
    ``after`` is that path for what follows ``commands``."""
    path = after
    for command in reversed(commands):
        if isinstance(command, tree.Redirect):
            path = (command.line, *path)
        elif isinstance(command, tree.Stop):
            path = ()  # nothing after a stop runs
        elif isinstance(command, tree.If):
            branches = [_redirects(body, path) for _, body in command.branches]
            if command.branches[-1][0] is not None:  # no else: the path past every test
                branches.append(path)
            path = max(branches, key=len)
    return path
