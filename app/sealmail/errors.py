"""Domain errors shared by every layer.

Storage and services raise these; the edges translate them (the CLI prints one line and exits
non-zero, the API answers problem+json, the protocols answer with their own status codes).
"""

from __future__ import annotations


class SealmailError(Exception):
    """Base class: the message is meant for the person who caused it."""


class InvalidInput(SealmailError, ValueError):
    """Something a user typed (an address, a domain, a pattern) is not acceptable."""


class NotFound(SealmailError, LookupError):
    """The named object does not exist."""


class AlreadyExists(SealmailError):
    """An object with the same unique name exists already."""


class ScriptQuotaExceeded(SealmailError):
    """A per-account limit would be passed; ``limit`` names which (ManageSieve's ``QUOTA/<limit>``)."""

    limit = "quota"


class TooManyScripts(ScriptQuotaExceeded):
    limit = "maxscripts"


class ScriptTooLarge(ScriptQuotaExceeded):
    limit = "maxsize"


class ScriptActive(SealmailError):
    """The active Sieve script cannot be deleted (RFC 5804 §2.10): another one must be made active first."""


class ConfigStoreError(SealmailError):
    """The config store cannot be used (unknown schema version, unreachable server...)."""


class SchemaTooNew(ConfigStoreError):
    """A database was written by a newer Sealmail."""
