"""A user's own filters and vacation reply (issue 22): what the account page's "Filters and vacation"
room and ``/v1/me/sieve`` share.

The form's rules (``sieve.rules``) are kept as one Sieve script named :data:`SCRIPT` among the
alias's scripts (``services.sievescripts``: compiled before it is stored); the text can be edited
too. Saving makes it the active script — unless another one is active (uploaded from a mail program
over ManageSieve): then the caller must say whether to replace which one is active
(:class:`OtherScriptActive`), and may store it without activating it. The MX logs a script that
fails at delivery in the error log under the alias's address; :func:`view` shows the newest such
entry when it is newer than the script.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sealmail.config.models import LogEntry, LogQuery
from sealmail.errors import SealmailError
from sealmail.services import eventlog, sievescripts
from sealmail.sieve import rules as sieve_rules

if TYPE_CHECKING:
    from sealmail.config.base import ConfigStore
    from sealmail.config.models import SieveScript
    from sealmail.services.eventlog import Actor
    from sealmail.services.selfservice import Member

SCRIPT = "sealmail"
ERROR_STATUS = "sieve-error"  # the MX's error-log status for a script that failed on a message


class OtherScriptActive(SealmailError):
    """Another script is active: saving here would replace it as the active one."""

    def __init__(self, name: str) -> None:
        super().__init__(f"the script {name!r} is active; saving these rules would make {SCRIPT!r} active instead")
        self.name = name


@dataclass(frozen=True, slots=True)
class View:
    script: SieveScript | None  # ours (``SCRIPT``), if it exists
    active: str | None  # the name of the active script, ours or another
    reading: sieve_rules.Reading  # the rules for the form, or why it shows the text only
    last_error: LogEntry | None  # the newest failure at delivery since the script last changed
    scripts: list[str] = field(default_factory=list)  # every script's name

    @property
    def text(self) -> str:
        return self.script.content if self.script else sieve_rules.to_sieve(sieve_rules.Rules())

    @property
    def other_active(self) -> str | None:
        return self.active if self.active not in (None, SCRIPT) else None


def view(store: ConfigStore, who: Member) -> View:
    scripts = store.list_sieve_scripts(who.alias.id)
    ours = next((s for s in scripts if s.name == SCRIPT), None)
    active = next((s for s in scripts if s.active), None)
    return View(
        ours,
        active.name if active else None,
        sieve_rules.read(ours.content if ours else None),
        last_error(store, who, active),
        [s.name for s in scripts],
    )


def last_error(store: ConfigStore, who: Member, active: SieveScript | None) -> LogEntry | None:
    """The newest delivery failure of the address's active script, if it came after its last change."""
    if active is None:
        return None
    page = store.query_logs(LogQuery(kind="error", address=who.address, status=ERROR_STATUS, limit=1))
    found = page.entries[0] if page.entries else None
    return found if found is not None and found.time >= active.updated_at else None


def check(text: str) -> list[str]:
    """Compile only: ``SieveError`` (with its line) when it is not valid, else its warnings."""
    return sievescripts.check(text)


def save_rules(
    store: ConfigStore, who: Member, rules: sieve_rules.Rules, actor: Actor, *, activate: bool | None = None
) -> tuple[SieveScript, list[str]]:
    """Write the rules as our script (see :func:`save_text` for ``activate``)."""
    return save_text(store, who, sieve_rules.to_sieve(rules), actor, activate=activate, how="form")


def save_text(
    store: ConfigStore, who: Member, text: str, actor: Actor, *, activate: bool | None = None, how: str = "text"
) -> tuple[SieveScript, list[str]]:
    """Compile and store ``text`` as our script; returns it and its warnings.

    ``activate``: None makes it active unless another script is (then ``OtherScriptActive``, and
    nothing is stored); True makes it active in any case; False stores it and changes nothing else."""
    active = store.active_sieve_script(who.alias.id)
    if activate is None and active is not None and active.name != SCRIPT:
        sievescripts.check(text)  # a script that does not compile is the first thing to say
        raise OtherScriptActive(active.name)
    script, warnings = sievescripts.save_with_warnings(store, who.alias.id, SCRIPT, text.replace("\r\n", "\n"))
    if activate is not False:
        store.activate_sieve_script(who.alias.id, SCRIPT)
        script.active = True
    detail = f"{how}, {'active' if script.active else 'not active'}"
    eventlog.record(store, actor, "account.sieve", domain=who.alias.domain, address=who.address, detail=detail)
    return script, warnings
