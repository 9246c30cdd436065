"""Each recipient's active Sieve script at delivery: read at RCPT, compiled once, run off the event loop.

**Reading** (:class:`Scripts`, on the RCPT's worker thread, beside the alias lookups): the alias's
active script comes from the config store -- the server reads scripts in the clear, it must run them
while the user is offline -- and an answer younger than ``mx_lookup_fresh`` is reused (5 s where the
config store is a round trip away, 0 with the local SQLite file, whose read costs less than the cache
would save). No change event tells the MX that a script changed, so that age is how late a change can
be seen. An older answer is never used: while the config store is unreachable the message is kept
(``UNAVAILABLE``) and the log says so, rather than running a script the user may have changed.
Compiling is cached by the script's text (a changed script compiles again, an unchanged one never).

**Running** (:class:`Runner`): on two threads of its own, so a slow script waits neither the event
loop nor the threads that write the spool; each run is bounded by the core's work budget
(``sieve.evaluate.MAX_WORK``) and here by ``mx_sieve_timeout`` seconds, after which the message is
kept (the thread finishes its bounded work and its answer is dropped).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sealmail.sieve import tree
from sealmail.sieve.actions import Keep, Outcome
from sealmail.sieve.compile import compile as compile_script
from sealmail.sieve.errors import SieveError
from sealmail.sieve.evaluate import Envelope, Spam, evaluate
from sealmail.smtp.lastknown import LastKnown

if TYPE_CHECKING:
    from sealmail.config.base import ConfigStore
    from sealmail.config.models import SieveScript

log = logging.getLogger("sealmail.mx")
THREADS = 2  # scripts run at once per MX process; the rest wait their turn (within the timeout)
COMPILED = 256  # distinct script texts kept compiled
REMEMBERED = 1000  # aliases whose last answer is kept (a compiled script is about its text's size)


@dataclass(frozen=True, slots=True)
class ScriptLookup:
    """An alias's active script as RCPT found it: compiled, broken, none, or unknown (config store away)."""

    name: str | None = None
    script: tree.Script | None = None
    error: SieveError | None = None  # stored, but it does not compile (stored before a change of ours)
    unavailable: bool = False

    @property
    def active(self) -> bool:
        return self.name is not None


NO_SCRIPT = ScriptLookup()
UNAVAILABLE = ScriptLookup(unavailable=True)


class Scripts:
    """The active script of each alias, remembered (``LastKnown``) and compiled once per text."""

    def __init__(self, fresh: float) -> None:
        self.known = LastKnown(size=REMEMBERED, max_age=fresh, fresh=fresh)  # fresh answers only
        self._compiled: OrderedDict[bytes, tree.Script | SieveError] = OrderedDict()
        self._lock = threading.Lock()

    def lookup(self, config: ConfigStore, alias_id: str) -> ScriptLookup:
        """Blocking (a worker thread): never raises; ``UNAVAILABLE`` when the config store cannot say."""
        try:
            return self.known.through(("sieve", alias_id), lambda: self._read(config, alias_id))
        except Exception as exc:
            log.warning("the Sieve script of alias %s could not be read (%s); its mail is kept", alias_id, exc)
            return UNAVAILABLE

    def _read(self, config: ConfigStore, alias_id: str) -> ScriptLookup:
        found = config.active_sieve_script(alias_id)
        return NO_SCRIPT if found is None else self.compiled(found)

    def compiled(self, found: SieveScript) -> ScriptLookup:
        digest = hashlib.sha256(found.content.encode("utf-8", "surrogatepass")).digest()
        with self._lock:
            result = self._compiled.get(digest)
            if result is not None:
                self._compiled.move_to_end(digest)
        if result is None:
            try:
                result = compile_script(found.content)
            except SieveError as exc:
                result = exc
            with self._lock:
                self._compiled[digest] = result
                while len(self._compiled) > COMPILED:
                    self._compiled.popitem(last=False)
        if isinstance(result, SieveError):
            return ScriptLookup(found.name, error=result)
        return ScriptLookup(found.name, script=result)


class Runner:
    """Runs scripts on threads of their own, each within ``timeout`` seconds."""

    def __init__(self, timeout: float, secret: bytes) -> None:
        self.timeout = timeout
        self.secret = secret  # vacation memory keys (``sieve.vacation.reply_key``)
        self._pool = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="sealmail-sieve")

    async def run(
        self, lookup: ScriptLookup, message: Callable[[], bytes], envelope: Envelope, spam: Spam | None
    ) -> Outcome:
        """What ``lookup``'s script does with the message (``message()`` gives its bytes); never raises."""
        if lookup.error is not None:  # RFC 5228 §2.10.6: a script that cannot run keeps the message
            return Outcome((Keep(),), error=lookup.error.message, error_line=lookup.error.line)
        script = lookup.script
        assert script is not None

        def work() -> Outcome:
            # The MX cannot list the encrypted mailbox's folders: every folder exists here, and the
            # drain files a copy whose folder is missing where keep would (``smtp.sieveplan``).
            return evaluate(
                script, message(), envelope, spam=spam, mailbox_exists=lambda _name: True, vacation_secret=self.secret
            )

        future = asyncio.wrap_future(self._pool.submit(work))
        try:
            return await asyncio.wait_for(future, self.timeout)
        except TimeoutError:
            return Outcome((Keep(),), error=f"the script ran longer than {self.timeout:g} s on this message")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def derived_key(secret: bytes, purpose: str) -> bytes:
    """A key for one purpose from the SRS secret, which every MX host shares already."""
    return hmac.new(secret, f"sealmail sieve {purpose}".encode(), hashlib.sha256).digest()
