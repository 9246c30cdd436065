"""Shared network plumbing for Sealmail's own protocol servers (IMAP, POP3): TLS, listeners, login limits."""
