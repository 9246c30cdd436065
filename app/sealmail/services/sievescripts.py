"""Each alias's Sieve scripts: the one policy the CLI, ManageSieve, the web, the API and the MX share.

A script is compiled before it is stored (RFC 5804 §2.6: the server refuses what it could not run),
so a stored script that fails later does so only because Sealmail changed; the MX then keeps the
message (``sieve.evaluate``). Scripts are kept in the config store where the server can read them:
the MX runs the active one while the user is offline, so they are not sealed like mail.
"""

from __future__ import annotations

from sealmail.config.base import ConfigStore
from sealmail.config.models import SieveScript
from sealmail.sieve import compile as sieve_compile


def check(content: str) -> None:
    """Compile only (ManageSieve's CHECKSCRIPT); ``SieveError`` names the line of the first problem."""
    sieve_compile.compile(content)


def save(store: ConfigStore, alias_id: str, name: str, content: str) -> SieveScript:
    """Compile, then create or replace the script (an active one stays active)."""
    check(content)
    return store.put_sieve_script(alias_id, name, content)


def save_and_activate(store: ConfigStore, alias_id: str, name: str, content: str) -> SieveScript:
    script = save(store, alias_id, name, content)
    store.activate_sieve_script(alias_id, name)
    script.active = True
    return script
