"""Store errors. Protocol glue translates them (STYLE.md): QuotaExceeded becomes SMTP 552 5.2.2,
IMAP NO [OVERQUOTA] and DAV 507; FolderNotFound becomes IMAP NO [NONEXISTENT]; and so on."""

from sealmail.errors import InvalidInput, NotFound, SealmailError
from sealmail.foldernames import InvalidFolderName as InvalidFolderName  # noqa: PLC0414 - raised by the store too


class MailboxLocked(SealmailError):
    """The mailbox file does not open with this key (wrong key, or not a mailbox)."""


class QuotaExceeded(SealmailError):
    """Storing this would take the mailbox over its quota."""


class FolderNotFound(NotFound):
    pass


class FolderExists(SealmailError):
    pass


class UnknownSection(InvalidInput):
    """A FETCH section specifier that the message does not have."""


class UnknownEncoding(SealmailError):
    """A part's Content-Transfer-Encoding cannot be decoded (IMAP NO [UNKNOWN-CTE])."""


# ---- calendars and address books (DAV glue: 404, 405/409, 409, 412, 403 valid-sync-token, 413, 507) ----
class DavNotFound(NotFound):
    """No such collection or resource."""


class DavCollectionExists(SealmailError):
    pass


class DavConflict(SealmailError):
    """The request conflicts with the stored state (a UID used by another resource, RFC 4791 §5.3.2.1)."""


class DavPreconditionFailed(SealmailError):
    """If-Match / If-None-Match did not hold (RFC 9110 §13.1)."""


class InvalidSyncToken(SealmailError):
    """A sync token this collection cannot answer (RFC 6578 §3.2)."""


class ItemTooLarge(SealmailError):
    """One calendar object or vCard is larger than the limit."""


class DavLimitExceeded(SealmailError):
    """Too many resources in a collection, or too many collections."""


# ---- the store component (store.remote) ----
class StoreUnavailable(SealmailError):
    """The data host's store cannot be reached now (connection lost, refused or timed out): a temporary
    failure, mapped to IMAP NO [UNAVAILABLE], POP3 -ERR [SYS/TEMP] and DAV 503. The client reconnects
    by itself on the next call."""


class MailboxElsewhere(SealmailError):
    """The config store records another data host as this mailbox's home: this store refuses to open it
    or deliver to it, so two data hosts never write one mailbox."""
