"""Teaching rspamd from the user's own filing: the learning jobs of a mailbox, done in the background.

A COPY or MOVE into or out of Junk queues a job inside the encrypted mailbox, in the command's own
transaction (``spam.learning`` says what a filing means, ``store.learnjobs`` keeps the jobs). Only
a process holding the mailbox key can read the message, so the one whose session filed it does the
job, right after the command has been answered: ``SpamLearner.kick`` starts a task that opens the
mailbox with the session's keys (its own reference: the job goes on if the client logs out at
once), reads each message in memory and posts it to the controller (``spam.rspamd``), then forgets
the job. Nothing of it is written anywhere else, and the log says counts only.

A job outlives a stopped process: it waits in the mailbox, and the next session that signs in to
that mailbox on any host kicks the learner again. While the controller fails (refused, silent, a
5xx, a wrong password), each try counts against the job (``MAX_ATTEMPTS``, then it is dropped)
and this process leaves the controller alone for a while (5 s, doubling up to 15 min): a mailbox
whose jobs wait is tried again at its next login or SELECT after that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

from sealmail.spam.learning import MAX_ATTEMPTS
from sealmail.spam.rspamd import RspamdController, RspamdUnavailable
from sealmail.store.errors import StoreUnavailable

if TYPE_CHECKING:
    from sealmail.crypto.keys import MailboxSecrets
    from sealmail.settings import Settings
    from sealmail.store.contract import MailboxHandle, MailStoreAPI
    from sealmail.store.model import LearnJob

log = logging.getLogger("sealmail.spam")
BATCH = 16  # jobs read (and finished) per round trip to the mailbox
FIRST_PAUSE = 5.0
LONGEST_PAUSE = 900.0


class SpamLearner:
    """One per IMAP process: at most one learning task per mailbox at a time."""

    def __init__(
        self, controller: RspamdController, mailstore: MailStoreAPI, *, max_attempts: int = MAX_ATTEMPTS
    ) -> None:
        self._controller = controller
        self._mailstore = mailstore
        self._max_attempts = max_attempts
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()  # kicked while its task ran: look for jobs once more
        self._waiting: set[str] = set()  # jobs left for a later try (the controller failed)
        self._pause_until = 0.0
        self._pause = 0.0

    @classmethod
    def from_settings(cls, settings: Settings, mailstore: MailStoreAPI) -> SpamLearner | None:
        """None without ``rspamd_controller_url``: then nothing is learned, and nothing is queued."""
        if settings.rspamd_controller_url is None:
            return None
        password = settings.rspamd_controller_password
        controller = RspamdController(
            settings.rspamd_controller_url,
            password.get_secret_value() if password is not None else None,
            settings.rspamd_timeout,
        )
        return cls(controller, mailstore)

    def waiting(self, mailbox_id: str) -> bool:
        """Whether this mailbox has jobs that failed here and wait for a later try."""
        return mailbox_id in self._waiting

    def kick(self, mailbox_id: str, secrets: MailboxSecrets) -> None:
        """Do the mailbox's waiting jobs in the background (returns at once)."""
        if mailbox_id in self._tasks:
            self._again.add(mailbox_id)
            return
        if time.monotonic() < self._pause_until:
            self._waiting.add(mailbox_id)  # the controller failed moments ago: a later kick tries
            return
        self._tasks[mailbox_id] = asyncio.create_task(self._run(mailbox_id, secrets), name="spam-learning")

    async def close(self) -> None:
        """Stop the tasks (their jobs stay in the mailboxes) and the controller's connections."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._controller.close()

    async def _run(self, mailbox_id: str, secrets: MailboxSecrets) -> None:
        handle: MailboxHandle | None = None
        learned = dropped = 0
        try:
            handle = await self._mailstore.open(mailbox_id, secrets)
            while True:
                self._again.discard(mailbox_id)
                jobs = await handle.learning_jobs(BATCH)
                if not jobs:
                    if mailbox_id in self._again:  # kicked while it looked: a job may have come since
                        continue
                    self._waiting.discard(mailbox_id)
                    break
                done, failed, why = await self._teach(handle, jobs)
                dropped += await handle.finish_learning(done, failed, self._max_attempts)
                learned += len(done)
                if why is not None:
                    self._waiting.add(mailbox_id)
                    log.warning("spam learning: %s; the jobs wait in the mailbox for a later try", why)
                    break
        except StoreUnavailable:
            self._waiting.add(mailbox_id)
            log.warning("spam learning: the mailbox store is unavailable; the jobs wait in the mailbox")
        except Exception:
            self._waiting.add(mailbox_id)
            log.exception("spam learning failed; the jobs wait in the mailbox")
        finally:
            # Out of the table before the release awaits: a kick from now on starts a new task.
            self._tasks.pop(mailbox_id, None)
            if handle is not None:
                await handle.release()
        if learned or dropped:
            log.info("spam learning: %d message(s) taught to rspamd, %d given up", learned, dropped)

    async def _teach(
        self, handle: MailboxHandle, jobs: list[LearnJob]
    ) -> tuple[list[LearnJob], list[LearnJob], str | None]:
        """Post each job's message; (done, failed, why the controller stopped us or None)."""
        done: list[LearnJob] = []
        failed: list[LearnJob] = []
        for job in jobs:
            try:
                raw = await handle.raw(job.body_id)  # decrypted in this process's memory only
            except StoreUnavailable:
                raise
            except Exception:
                failed.append(job)  # unreadable: a try counts, so it cannot come back for ever
                continue
            try:
                await self._controller.learn(raw, "spam" if job.kind == "spam" else "ham")
            except RspamdUnavailable as exc:
                failed.append(job)
                self._pause = min(max(2 * self._pause, FIRST_PAUSE), LONGEST_PAUSE)
                self._pause_until = time.monotonic() + self._pause
                return done, failed, f"the rspamd controller is unavailable ({exc})"
            done.append(job)  # learned, known already, or one it cannot learn: nothing more to do
        self._pause, self._pause_until = 0.0, 0.0
        return done, failed, None
