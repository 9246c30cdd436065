"""Store errors. Protocol glue translates them (STYLE.md): QuotaExceeded becomes SMTP 552 5.2.2,
IMAP NO [OVERQUOTA] and DAV 507; FolderNotFound becomes IMAP NO [NONEXISTENT]; and so on."""

from sealmail.errors import InvalidInput, NotFound, SealmailError


class MailboxLocked(SealmailError):
    """The mailbox file does not open with this key (wrong key, or not a mailbox)."""


class QuotaExceeded(SealmailError):
    """Storing this would take the mailbox over its quota."""


class FolderNotFound(NotFound):
    pass


class FolderExists(SealmailError):
    pass


class InvalidFolderName(InvalidInput):
    pass


class FolderNotEmpty(SealmailError):
    """An operation that needs an empty (or childless) folder met one that is not."""


class UnknownSection(InvalidInput):
    """A FETCH section specifier that the message does not have."""


class UnknownEncoding(SealmailError):
    """A part's Content-Transfer-Encoding cannot be decoded (IMAP NO [UNKNOWN-CTE])."""
