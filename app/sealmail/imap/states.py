"""The states of an IMAP session (RFC 9051 §3): not authenticated -> authenticated -> selected -> logout.

Kept apart from ``session`` so that the command modules can name them without importing the session.
"""

from __future__ import annotations

NOT_AUTHENTICATED = "not authenticated"
AUTHENTICATED = "authenticated"
SELECTED = "selected"
LOGOUT = "logout"
